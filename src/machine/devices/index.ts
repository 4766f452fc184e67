// The PC's devices, wired as on a PC: ISA IRQs into the 8259 pair, whose INT output is the
// CPU's INTR.

import type { DeviceSet, MachineContext } from '../device.js';
import { DebugPorts } from './debug.js';
import { PicPair } from './pic.js';
import { Pit8254 } from './pit.js';
import { Rtc } from './rtc.js';

export function createDevices(ctx: MachineContext): DeviceSet {
  const pic = new PicPair((level) => ctx.setIntr(level));
  return {
    devices: [pic, new Pit8254(ctx), new Rtc(ctx), new DebugPorts(ctx)],
    interruptController: pic,
  };
}
