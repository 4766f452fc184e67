// trapdiff's side of the benchmark: a workload ROM on a fresh machine, in-process, timed (wall
// and CPU time) over Machine.run() alone (making the machine and loading the ROM are not the
// guest's work); and the snapshot/restore rate.

import { createMachine, type Machine } from '../machine/machine.js';
import { instructionCount, patchIterations, readRom, romIterations, type Workload } from './workloads.js';

export interface TrapdiffRun {
  seconds: number;
  cpuSeconds: number;
  output: string;
  instructions: number;
}

/** RAM of the benchmark machines (the workloads use the first 640 KiB; the peers get 64 MiB too). */
const MEM_MIB = 64;

function bootMachine(rom: Uint8Array): Machine {
  const m = createMachine({ memMiB: MEM_MIB });
  m.load(rom, 'bios');
  return m;
}

/**
 * Runs the ROM to its end. Throws unless it stops at the power-off port having retired exactly
 * the workload's instruction count: a run that does something else measures nothing.
 */
export function runTrapdiff(w: Workload, rom: Uint8Array): TrapdiffRun {
  const expected = instructionCount(w, romIterations(rom));
  const m = bootMachine(rom);
  const c0 = process.cpuUsage();
  const r = m.run({ maxInsns: expected + 1000 });
  const c = process.cpuUsage(c0);
  if (r.stop !== 'poweroff' || r.instructions !== expected) {
    const why = r.error !== undefined ? `: ${r.error}` : '';
    throw new Error(`${w.name}: stopped by ${r.stop}${why} after ${r.instructions} instructions ` +
      `(expected poweroff after ${expected}), output ${JSON.stringify(r.debugOutput)}`);
  }
  return { seconds: r.seconds, cpuSeconds: (c.user + c.system) / 1e6, output: r.debugOutput, instructions: r.instructions };
}

export interface SnapshotRate {
  guest: string;
  /** Instructions run between a restore and the next. */
  runInsns: number;
  /** Restores per second, each after a run of runInsns from the snapshot (run time included). */
  restoresPerSecond: number;
  /** Snapshots per second (each superseding the last), with no run between them. */
  snapshotsPerSecond: number;
}

/** A host clock in seconds: wall time, or this process's CPU time (user + system). */
export type BenchClock = 'wall' | 'cpu';
export function hostSeconds(clock: BenchClock): number {
  if (clock === 'wall') return performance.now() / 1000;
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

/** Repeats `f` for about `seconds` by `clock`; returns calls per second. */
function rate(seconds: number, clock: BenchClock, f: () => void): number {
  const t0 = hostSeconds(clock);
  let n = 0;
  let t = t0;
  do {
    for (let k = 0; k < 16; k++) f();
    n += 16;
    t = hostSeconds(clock);
  } while (t - t0 < seconds);
  return n / (t - t0);
}

/**
 * The snapshot rate on a small guest: the paging workload past its setup, snapshotted once,
 * then run a little and restored, over and over (a restore rewrites the CPU, the devices and
 * the pages written since the snapshot: here the 64 pool pages and the page tables' A/D bits).
 */
export function snapshotRate(w: Workload, seconds: number, clock: BenchClock, runInsns = 1000): SnapshotRate {
  const m = bootMachine(patchIterations(readRom(w), 1_000_000));
  m.run({ maxInsns: w.fixed });
  const s = m.snapshot();
  const restoresPerSecond = rate(seconds, clock, () => {
    m.run({ maxInsns: runInsns });
    m.restore(s);
  });
  const snapshotsPerSecond = rate(seconds, clock, () => m.snapshot());
  return { guest: w.name, runInsns, restoresPerSecond, snapshotsPerSecond };
}
