// Whole-machine snapshots: the CPU's state by value, RAM by copy-on-write (memory.ts), and each
// device's save() data. Restoring costs the CPU state, the devices and the RAM pages written
// since the snapshot, so a small guest can be rewound thousands of times a second.
//
// RAM keeps one copy-on-write baseline: taking a snapshot supersedes the previous one, and
// restoring a superseded snapshot throws. Outputs collected by the machine (debug console,
// serial, POST codes) are observations, not machine state, and are not rewound.

import type { CpuState } from '../cpu/cpu.js';
import type { Machine } from './machine.js';

export interface MachineSnapshot {
  readonly cpu: CpuState;
  readonly memory: number;
  /** save() of each device, in machine.devices order (undefined for stateless devices). */
  readonly devices: readonly unknown[];
  /** Machine.clockSyncAt. */
  readonly clockSyncAt: number;
}

export function takeSnapshot(m: Machine): MachineSnapshot {
  return {
    cpu: m.cpu.saveState(),
    memory: m.mem.snapshot(),
    devices: m.devices.map((d) => d.save?.()),
    clockSyncAt: m.clockSyncAt,
  };
}

export function restoreSnapshot(m: Machine, s: MachineSnapshot): void {
  m.mem.restore(s.memory);
  // Also drops the CPU's decoded blocks, which the memory restore may have made stale.
  m.cpu.restoreState(s.cpu);
  m.devices.forEach((d, k) => {
    if (d.restore && s.devices[k] !== undefined) d.restore(s.devices[k]);
  });
  m.clockSyncAt = s.clockSyncAt;
}
