// The PC's two 8259A programmable interrupt controllers (Intel 8259A datasheet, order 231468):
// master at 0x20/0x21 driving INTR, slave at 0xA0/0xA1 cascaded on master IR2, plus the PIIX
// edge/level control registers (ELCR) at 0x4D0/0x4D1.
//
// Modelled: the ICW1-ICW4 initialization sequence, OCW1 (mask), OCW2 (non-specific, specific
// and rotating EOI, set priority, rotate in auto-EOI), OCW3 (IRR/ISR read, poll, special mask
// mode), edge- and level-triggered inputs, rotating priorities, special fully nested mode,
// auto-EOI, and the spurious-interrupt rule: a request that goes away before the acknowledge
// yields IR7 of the chip that lost it (IRQ7 from the master, IRQ15 from the slave, in which case
// the master still puts IR2 in service).

import type { InterruptController } from '../device.js';
import { ByteIoDevice, cloneState } from './ports.js';

/** The master's input the slave's INT output is wired to. */
export const CASCADE_IRQ = 2;
const CASCADE_BIT = 1 << CASCADE_IRQ;

// ICW1 bits.
const ICW1_IC4 = 0x01, ICW1_SNGL = 0x02, ICW1_LTIM = 0x08, ICW1_INIT = 0x10;
// ICW4 bits.
const ICW4_AEOI = 0x02, ICW4_SFNM = 0x10;
// OCW3 bits.
const OCW3_SELECT = 0x08, OCW3_RIS = 0x01, OCW3_RR = 0x02, OCW3_POLL = 0x04, OCW3_SMM = 0x20, OCW3_ESMM = 0x40;

/** ELCR bits that exist on the PIIX (IRQ0, 1, 2, 8 and 13 are always edge-triggered). */
const ELCR_WRITABLE = [0xf8, 0xde] as const;

interface ChipState {
  /** Interrupt request register (latched requests). */
  irr: number;
  /** In-service register. */
  isr: number;
  /** Interrupt mask register (OCW1). */
  imr: number;
  /** Current level of the eight IR inputs (for edge detection). */
  lines: number;
  /** The IR level with the lowest priority (7 after ICW1; changed by rotation). */
  lowest: number;
  /** 0 when operational; otherwise the ICW (2, 3 or 4) the next odd-port write is. */
  initStep: number;
  icw1: number;
  /** Vector base (ICW2 bits 7:3). */
  base: number;
  icw3: number;
  icw4: number;
  /** OCW3 RR/RIS: the even port reads the ISR (else the IRR). */
  readIsr: boolean;
  /** OCW3 poll command issued: the next read is a poll. */
  poll: boolean;
  /** Special mask mode (OCW3 ESMM/SMM). */
  smm: boolean;
  /** OCW2 "rotate in automatic EOI mode". */
  rotateAeoi: boolean;
  /** ELCR: inputs that are level-triggered. */
  elcr: number;
}

function freshChip(): ChipState {
  return {
    irr: 0, isr: 0, imr: 0, lines: 0, lowest: 7, initStep: 0, icw1: 0, base: 0, icw3: 0, icw4: 0,
    readIsr: false, poll: false, smm: false, rotateAeoi: false, elcr: 0,
  };
}

/** One 8259A. `isMaster` decides how ICW3 and special fully nested mode read. */
class Chip {
  s = freshChip();

  constructor(readonly isMaster: boolean) {}

  /** Inputs that follow their level rather than a latched edge. */
  private levelMask(): number {
    // The master's cascade input is the slave's INT output, a level: treating it as one keeps a
    // slave request with a second one behind it (auto-EOI slaves) from being lost for want of
    // a fresh edge.
    return (this.s.icw1 & ICW1_LTIM ? 0xff : this.s.elcr) | (this.isMaster ? CASCADE_BIT : 0);
  }

  setLine(irq: number, level: boolean): void {
    const s = this.s, bit = 1 << irq;
    if (level) {
      if ((s.lines & bit) === 0 || this.levelMask() & bit) s.irr |= bit;
      s.lines |= bit;
    } else {
      // The datasheet: an IR input must stay high until the first INTA; a request that drops
      // earlier is gone (and the acknowledge that follows finds it spurious).
      s.lines &= ~bit;
      s.irr &= ~bit;
    }
  }

  /** Slave inputs in special fully nested mode: a request on one is not blocked by its own ISR bit. */
  private nestedBits(): number {
    return this.isMaster && this.s.icw4 & ICW4_SFNM ? CASCADE_BIT : 0;
  }

  /** The IR level the chip would hand out now, or -1 (nothing above what is in service). */
  pending(): number {
    const s = this.s;
    const req = s.irr & ~s.imr;
    if (req === 0) return -1;
    const inService = s.smm ? s.isr & ~s.imr : s.isr;
    const nested = this.nestedBits();
    for (let k = 1; k <= 8; k++) {
      const irq = (s.lowest + k) & 7, bit = 1 << irq;
      if (req & bit) return (inService & bit) === 0 || nested & bit ? irq : -1;
      if (inService & bit) return -1;
    }
    return -1;
  }

  /** INTA (or a poll): puts the best request in service and returns its level, or -1 if none. */
  acknowledge(): number {
    const s = this.s;
    const irq = this.pending();
    if (irq < 0) return -1;
    const bit = 1 << irq;
    s.irr &= ~bit;
    if (this.levelMask() & bit && s.lines & bit) s.irr |= bit;
    if (s.icw4 & ICW4_AEOI) {
      if (s.rotateAeoi) s.lowest = irq;
    } else {
      s.isr |= bit;
    }
    return irq;
  }

  /** Highest-priority in-service level, or -1. */
  private highestInService(): number {
    const s = this.s;
    for (let k = 1; k <= 8; k++) {
      const irq = (s.lowest + k) & 7;
      if (s.isr & (1 << irq)) return irq;
    }
    return -1;
  }

  writeCommand(v: number): void {
    const s = this.s;
    if (v & ICW1_INIT) {
      // ICW1: the datasheet's initialization reset (edge sense cleared: an input must go from
      // low to high again to request; IMR cleared, IR7 lowest, special mask mode off, status
      // read = IRR, ICW4 functions zero when IC4 = 0). The ISR is cleared as well (left alone by
      // the datasheet; Bochs and QEMU clear it).
      s.icw1 = v;
      s.initStep = 2;
      s.imr = 0;
      s.isr = 0;
      s.irr = v & ICW1_LTIM ? s.lines : s.lines & s.elcr;
      s.lowest = 7;
      s.smm = false;
      s.readIsr = false;
      s.poll = false;
      s.rotateAeoi = false;
      s.icw4 = 0;
      return;
    }
    if (v & OCW3_SELECT) {
      if (v & OCW3_ESMM) s.smm = (v & OCW3_SMM) !== 0;
      if (v & OCW3_POLL) s.poll = true;
      if (v & OCW3_RR) s.readIsr = (v & OCW3_RIS) !== 0;
      return;
    }
    // OCW2: R (bit 7), SL (bit 6), EOI (bit 5), L2-L0.
    const level = v & 7;
    switch (v >> 5) {
      case 0b001: // non-specific EOI
      case 0b101: { // rotate on non-specific EOI
        const irq = this.highestInService();
        if (irq >= 0) {
          s.isr &= ~(1 << irq);
          if (v & 0x80) s.lowest = irq;
        }
        break;
      }
      case 0b011: // specific EOI
        s.isr &= ~(1 << level);
        break;
      case 0b111: // rotate on specific EOI
        s.isr &= ~(1 << level);
        s.lowest = level;
        break;
      case 0b110: // set priority
        s.lowest = level;
        break;
      case 0b100: // rotate in automatic EOI mode (set)
        s.rotateAeoi = true;
        break;
      case 0b000: // rotate in automatic EOI mode (clear)
        s.rotateAeoi = false;
        break;
      // 0b010: no operation.
    }
  }

  writeData(v: number): void {
    const s = this.s;
    switch (s.initStep) {
      case 0:
        s.imr = v;
        return;
      case 2:
        s.base = v & 0xf8;
        s.initStep = s.icw1 & ICW1_SNGL ? (s.icw1 & ICW1_IC4 ? 4 : 0) : 3;
        return;
      case 3:
        s.icw3 = v;
        s.initStep = s.icw1 & ICW1_IC4 ? 4 : 0;
        return;
      default:
        s.icw4 = v;
        s.initStep = 0;
    }
  }

  /** A read in poll mode: 0x80 | level when a request was pending (and is now in service), else 0. */
  pollRead(): number {
    this.s.poll = false;
    const irq = this.acknowledge();
    return irq < 0 ? 0 : 0x80 | irq;
  }

  readCommand(): number {
    const s = this.s;
    if (s.poll) return this.pollRead();
    return s.readIsr ? s.isr : s.irr;
  }

  readData(): number {
    return this.s.poll ? this.pollRead() : this.s.imr;
  }
}

/** The master/slave pair as the PC wires it. */
export class PicPair extends ByteIoDevice implements InterruptController {
  readonly name = 'pic';
  readonly ports = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1] as const;
  readonly master = new Chip(true);
  readonly slave = new Chip(false);
  private int = false;

  /** `onInt` receives the master's INT output (the CPU's INTR, or the local APIC's LINT0). */
  constructor(private readonly onInt: (level: boolean) => void) {
    super();
  }

  /** The master's INT output now. */
  get intLevel(): boolean {
    return this.int;
  }

  setIrq(line: number, level: boolean): void {
    (line < 8 ? this.master : this.slave).setLine(line & 7, level);
    this.update();
  }

  acknowledge(): number {
    const m = this.master;
    const irq = m.acknowledge();
    let vector: number;
    if (irq < 0) {
      vector = m.s.base | 7;
    } else if (irq === CASCADE_IRQ && (m.s.icw1 & ICW1_SNGL) === 0) {
      const sirq = this.slave.acknowledge();
      vector = this.slave.s.base | (sirq < 0 ? 7 : sirq);
    } else {
      vector = m.s.base | irq;
    }
    this.update();
    return vector;
  }

  /** Propagates the slave's INT to master IR2 and the master's INT to the output. */
  private update(): void {
    this.master.setLine(CASCADE_IRQ, this.slave.pending() >= 0);
    const level = this.master.pending() >= 0;
    if (level !== this.int) {
      this.int = level;
      this.onInt(level);
    }
  }

  protected readByte(port: number): number {
    let v: number;
    switch (port) {
      case 0x20: v = this.master.readCommand(); break;
      case 0x21: v = this.master.readData(); break;
      case 0xa0: v = this.slave.readCommand(); break;
      case 0xa1: v = this.slave.readData(); break;
      case 0x4d0: return this.master.s.elcr;
      case 0x4d1: return this.slave.s.elcr;
      default: return 0xff;
    }
    // A poll read acknowledges.
    this.update();
    return v;
  }

  protected writeByte(port: number, v: number): void {
    switch (port) {
      case 0x20: this.master.writeCommand(v); break;
      case 0x21: this.master.writeData(v); break;
      case 0xa0: this.slave.writeCommand(v); break;
      case 0xa1: this.slave.writeData(v); break;
      case 0x4d0: this.master.s.elcr = v & ELCR_WRITABLE[0]; break;
      case 0x4d1: this.slave.s.elcr = v & ELCR_WRITABLE[1]; break;
    }
    this.update();
  }

  reset(): void {
    // The ELCR and the input levels are not the 8259's: they survive its re-initialization, but
    // a system reset clears the ELCR, and the devices driving the lines reset too.
    this.master.s = freshChip();
    this.slave.s = freshChip();
    this.update();
  }

  save(): unknown {
    return cloneState({ master: this.master.s, slave: this.slave.s, int: this.int });
  }

  restore(saved: unknown): void {
    const s = cloneState(saved as { master: ChipState; slave: ChipState; int: boolean });
    this.master.s = s.master;
    this.slave.s = s.slave;
    this.int = s.int;
  }
}
