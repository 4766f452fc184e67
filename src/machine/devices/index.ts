// The PC's devices, wired as on a PC: ISA IRQs into the 8259 pair, whose INT output reaches the
// CPU's INTR through the local APIC's LINT0 (virtual-wire mode); the CPU's interrupt acknowledge
// goes to the APIC, which hands ExtINT acknowledges on to the 8259s.

import type { DeviceSet, InterruptController, MachineContext } from '../device.js';
import { LocalApic } from './apic.js';
import { DebugPorts } from './debug.js';
import { KeyboardController } from './kbc.js';
import { PicPair } from './pic.js';
import { Pit8254 } from './pit.js';
import { Rtc } from './rtc.js';
import { Uart16550 } from './uart.js';

/** The device set with its parts named, for the machine's extra wiring and for tests. */
export interface PcDevices extends DeviceSet {
  readonly pic: PicPair;
  readonly pit: Pit8254;
  readonly rtc: Rtc;
  readonly kbc: KeyboardController;
  readonly com1: Uart16550;
  /** The CPU's WRMSR/RDMSR of IA32_APIC_BASE (0x1B) go to apic.setBaseMsr / apic.baseMsr. */
  readonly apic: LocalApic;
  readonly debug: DebugPorts;
}

export function createDevices(ctx: MachineContext): PcDevices {
  // The PIC's INT output changes are pushed to the APIC, which exists only after the PIC.
  let apic: LocalApic | null = null;
  const pic = new PicPair(() => apic?.updateIntr());
  apic = new LocalApic(ctx, pic);
  const a = apic;
  const interruptController: InterruptController = {
    setIrq: (line, level) => pic.setIrq(line, level),
    acknowledge: () => a.acknowledge(),
  };
  const pit = new Pit8254(ctx), rtc = new Rtc(ctx), kbc = new KeyboardController(ctx);
  const com1 = new Uart16550(ctx), debug = new DebugPorts(ctx);
  return {
    devices: [pic, pit, rtc, kbc, com1, apic, debug],
    interruptController, pic, pit, rtc, kbc, com1, apic, debug,
  };
}
