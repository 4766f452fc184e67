// The local APIC of the (single) processor, an xAPIC as in the Core Duo (Intel SDM Vol. 3A
// ch. 10), memory-mapped at 0xFEE00000 and sitting between the 8259 pair and the CPU's INTR.
//
// Modelled: ID, version (0x00050014: version 0x14, six LVT entries - timer, thermal,
// performance, LINT0, LINT1, error - as on Pentium 4 and Core processors; the brief's "P6
// family" value), TPR, APR, PPR, EOI, LDR, DFR, SVR (software enable, spurious vector), ISR,
// TMR, IRR, ESR (with its write-to-update protocol), ICR (self-directed fixed and NMI IPIs;
// there are no other processors), the LVT and the timer (one-shot and periodic, divide
// configuration), and interrupt acceptance by priority class against PPR.
//
// Interrupts from the 8259: LINT0 in ExtINT mode (virtual wire) passes the PIC's INT to INTR
// and the acknowledge to the PIC; so does an APIC that is globally disabled (IA32_APIC_BASE
// bit 11 clear) or software-disabled (SVR bit 8 clear), which is how a PC boots and runs DOS-era
// software. A software-enabled APIC with LINT0 masked (or in another delivery mode, which this
// model does not implement) cuts the PIC off.
//
// Time: the timer counts at the virtual cycle rate divided by the divide configuration (the
// APIC's bus clock is taken as the cycle clock, 1:1). The MMIO window is fixed at 0xFEE00000:
// relocating it through IA32_APIC_BASE is not modelled. Registers are 32 bits wide at 16-byte
// offsets; narrower reads return part of the register, narrower or misaligned writes are
// ignored (the SDM leaves them undefined).

import type { Device, MachineContext } from '../device.js';
import type { PicPair } from './pic.js';
import { cloneState } from './ports.js';

export const APIC_BASE = 0xfee00000;
export const APIC_VERSION = 0x00050014;
/** IA32_APIC_BASE at reset: base 0xFEE00000, bootstrap processor (bit 8), enabled (bit 11). */
export const APIC_BASE_MSR_RESET = APIC_BASE | 0x900;
const MSR_ENABLE = 0x800;

// Register offsets.
const R_ID = 0x20, R_VERSION = 0x30, R_TPR = 0x80, R_APR = 0x90, R_PPR = 0xa0, R_EOI = 0xb0, R_LDR = 0xd0,
  R_DFR = 0xe0, R_SVR = 0xf0, R_ISR = 0x100, R_TMR = 0x180, R_IRR = 0x200, R_ESR = 0x280, R_ICR_LO = 0x300,
  R_ICR_HI = 0x310, R_LVT = 0x320, R_TIMER_INIT = 0x380, R_TIMER_CUR = 0x390, R_TIMER_DIV = 0x3e0;
// LVT entries in register order (R_LVT + 0x10 * index).
const LVT_TIMER = 0, LVT_LINT0 = 3, LVT_ERROR = 5, LVT_COUNT = 6;
/** Writable bits of each LVT entry (delivery status and remote IRR are read-only). */
const LVT_WRITABLE = [0x300ff, 0x107ff, 0x107ff, 0x1a7ff, 0x1a7ff, 0x100ff] as const;
const LVT_MASKED = 0x10000, LVT_PERIODIC = 0x20000;
const DM_FIXED = 0, DM_LOWEST = 1, DM_NMI = 4, DM_EXTINT = 7;
const SVR_ENABLE = 0x100;
// ESR bits.
const ESR_SEND_ILLEGAL = 0x20, ESR_RECV_ILLEGAL = 0x40;

interface ApicState {
  baseMsr: number;
  id: number;
  tpr: number;
  ldr: number;
  dfr: number;
  svr: number;
  /** ESR as software reads it, and the errors logged since the last ESR write. */
  esr: number;
  esrPending: number;
  icrLo: number;
  icrHi: number;
  lvt: number[];
  /** 256-bit registers as eight 32-bit words (bit v % 32 of word v >> 5). */
  isr: number[];
  tmr: number[];
  irr: number[];
  timerInitial: number;
  timerDivCfg: number;
  /** The count runs from `timerBase` at cycle `timerStart`; `timerFired` expirations delivered. */
  timerRunning: boolean;
  timerStart: number;
  timerBase: number;
  timerFired: number;
  intr: boolean;
}

function fresh(baseMsr: number): ApicState {
  return {
    baseMsr, id: 0, tpr: 0, ldr: 0, dfr: -1, svr: 0xff, esr: 0, esrPending: 0, icrLo: 0, icrHi: 0,
    lvt: new Array<number>(LVT_COUNT).fill(LVT_MASKED), isr: new Array<number>(8).fill(0),
    tmr: new Array<number>(8).fill(0), irr: new Array<number>(8).fill(0), timerInitial: 0,
    timerDivCfg: 0, timerRunning: false, timerStart: 0, timerBase: 0, timerFired: 0, intr: false,
  };
}

/** Highest vector set in a 256-bit register, or -1. */
function highest(r: number[]): number {
  for (let w = 7; w >= 0; w--) if (r[w] !== 0) return (w << 5) + 31 - Math.clz32(r[w]!);
  return -1;
}

function setBit(r: number[], v: number): void {
  r[v >> 5] = r[v >> 5]! | (1 << (v & 31));
}

function clearBit(r: number[], v: number): void {
  r[v >> 5] = r[v >> 5]! & ~(1 << (v & 31));
}

export class LocalApic implements Device {
  readonly name = 'lapic';
  readonly mmio = { base: APIC_BASE, length: 0x1000 } as const;
  private s = fresh(APIC_BASE_MSR_RESET);

  constructor(private readonly ctx: MachineContext, private readonly pic: PicPair) {}

  private hwEnabled(): boolean {
    return (this.s.baseMsr & MSR_ENABLE) !== 0;
  }

  private swEnabled(): boolean {
    return (this.s.svr & SVR_ENABLE) !== 0;
  }

  /** The PIC's INT reaches INTR (virtual-wire mode, or the APIC out of the way). */
  private picPassThrough(): boolean {
    const lint0 = this.s.lvt[LVT_LINT0]!;
    return !this.hwEnabled() || !this.swEnabled() || ((lint0 & LVT_MASKED) === 0 && ((lint0 >> 8) & 7) === DM_EXTINT);
  }

  /** IA32_APIC_BASE as the CPU's RDMSR should return it. */
  get baseMsr(): number {
    return this.s.baseMsr >>> 0;
  }

  /**
   * WRMSR IA32_APIC_BASE (the CPU forwards it): clearing the enable bit puts the APIC back in
   * its power-up state and hands INTR to the PIC.
   */
  setBaseMsr(v: number): void {
    if ((v & MSR_ENABLE) === 0) this.powerUp(0);
    this.s.baseMsr = APIC_BASE | 0x100 | (v & MSR_ENABLE);
    this.updateIntr();
  }

  private ppr(): number {
    const isrv = Math.max(highest(this.s.isr), 0);
    return this.s.tpr >> 4 >= isrv >> 4 ? this.s.tpr : isrv & 0xf0;
  }

  /** The highest requested vector that PPR lets through, or -1. */
  private deliverable(): number {
    if (!this.hwEnabled()) return -1;
    const irrv = highest(this.s.irr);
    return irrv >= 0 && irrv >> 4 > this.ppr() >> 4 ? irrv : -1;
  }

  /** Recomputes INTR; the PIC calls it (through index.ts) when its INT output changes. */
  updateIntr(): void {
    const level = (this.picPassThrough() && this.pic.intLevel) || this.deliverable() >= 0;
    if (level !== this.s.intr) {
      this.s.intr = level;
      this.ctx.setIntr(level);
    }
  }

  /**
   * The CPU's interrupt acknowledge: ExtINT (the PIC) first, then the APIC's own IRR. When the
   * request went away before the acknowledge, the cycle still reaches the PIC in virtual-wire
   * mode (which answers with its spurious IRQ7) and otherwise yields the APIC's spurious vector.
   */
  acknowledge(): number {
    const passThrough = this.picPassThrough();
    if (passThrough && this.pic.intLevel) return this.pic.acknowledge();
    const v = this.deliverable();
    if (v < 0) {
      if (passThrough) return this.pic.acknowledge();
      this.updateIntr();
      return this.s.svr & 0xff;
    }
    clearBit(this.s.irr, v);
    setBit(this.s.isr, v);
    this.updateIntr();
    return v;
  }

  private logError(bits: number): void {
    const s = this.s;
    s.esrPending |= bits;
    const lvt = s.lvt[LVT_ERROR]!;
    // An illegal error vector is dropped rather than logged again.
    if ((lvt & LVT_MASKED) === 0 && (lvt & 0xff) >= 16) this.accept(lvt & 0xff);
  }

  /** A fixed interrupt arrives: vectors 0-15 are illegal (ESR receive-illegal-vector). */
  private accept(vector: number): void {
    if (vector < 16) {
      this.logError(ESR_RECV_ILLEGAL);
      return;
    }
    setBit(this.s.irr, vector);
    clearBit(this.s.tmr, vector);
    this.updateIntr();
  }

  private deliverLvt(index: number): void {
    const lvt = this.s.lvt[index]!;
    if ((lvt & LVT_MASKED) === 0) this.accept(lvt & 0xff);
  }

  // ---- timer ----

  private timerDivisor(): number {
    const cfg = this.s.timerDivCfg, d = ((cfg >> 1) & 4) | (cfg & 3);
    return d === 7 ? 1 : 2 << d;
  }

  private timerPeriodic(): boolean {
    return (this.s.lvt[LVT_TIMER]! & LVT_PERIODIC) !== 0;
  }

  /** Timer ticks (after the divider) since the count started. */
  private timerElapsed(now: number): number {
    return Math.floor((now - this.s.timerStart) / this.timerDivisor());
  }

  /** Expirations of the running count by virtual time `now`. */
  private expirations(now: number): number {
    const s = this.s, e = this.timerElapsed(now);
    if (e < s.timerBase) return 0;
    return this.timerPeriodic() ? 1 + Math.floor((e - s.timerBase) / s.timerInitial) : 1;
  }

  private currentCount(now: number): number {
    const s = this.s;
    if (!s.timerRunning) return 0;
    const e = this.timerElapsed(now);
    if (e < s.timerBase) return s.timerBase - e;
    return this.timerPeriodic() ? s.timerInitial - ((e - s.timerBase) % s.timerInitial) : 0;
  }

  /** Delivers the expirations due by `now` (coalesced into one request, as IRR would). */
  private syncTimer(now: number): void {
    const s = this.s;
    if (!s.timerRunning) return;
    const n = this.expirations(now);
    if (n > s.timerFired) {
      s.timerFired = n;
      this.deliverLvt(LVT_TIMER);
      if (!this.timerPeriodic()) s.timerRunning = false;
    }
  }

  /** Restarts the count from its current value (the divider or the mode changes mid-count). */
  private rebaseTimer(now: number): void {
    const s = this.s;
    this.syncTimer(now);
    const cur = this.currentCount(now);
    s.timerStart = now;
    s.timerBase = cur;
    s.timerFired = 0;
    s.timerRunning = cur > 0;
  }

  nextDeadline(): number {
    const s = this.s;
    if (!s.timerRunning || s.lvt[LVT_TIMER]! & LVT_MASKED) return Infinity;
    // Expiration j (from 0) comes when the count has run timerBase + j * timerInitial ticks.
    return s.timerStart + (s.timerBase + s.timerFired * s.timerInitial) * this.timerDivisor();
  }

  tick(now: number): void {
    this.syncTimer(now);
  }

  // ---- registers ----

  private readReg(reg: number): number {
    const s = this.s, now = this.ctx.now();
    if (reg >= R_ISR && reg < R_ISR + 0x80) return s.isr[(reg - R_ISR) >> 4]!;
    if (reg >= R_TMR && reg < R_TMR + 0x80) return s.tmr[(reg - R_TMR) >> 4]!;
    if (reg >= R_IRR && reg < R_IRR + 0x80) return s.irr[(reg - R_IRR) >> 4]!;
    if (reg >= R_LVT && reg < R_LVT + LVT_COUNT * 0x10) return s.lvt[(reg - R_LVT) >> 4]!;
    switch (reg) {
      case R_ID: return s.id;
      case R_VERSION: return APIC_VERSION;
      case R_TPR: return s.tpr;
      case R_APR: {
        const irrv = Math.max(highest(s.irr), 0), isrv = Math.max(highest(s.isr), 0);
        if (s.tpr >> 4 >= irrv >> 4 && s.tpr >> 4 > isrv >> 4) return s.tpr;
        return Math.max(s.tpr & 0xf0, isrv & 0xf0, irrv & 0xf0);
      }
      case R_PPR: return this.ppr();
      case R_LDR: return s.ldr;
      case R_DFR: return s.dfr;
      case R_SVR: return s.svr;
      case R_ESR: return s.esr;
      case R_ICR_LO: return s.icrLo;
      case R_ICR_HI: return s.icrHi;
      case R_TIMER_INIT: return s.timerInitial;
      case R_TIMER_CUR:
        this.syncTimer(now);
        return this.currentCount(now);
      case R_TIMER_DIV: return s.timerDivCfg;
      default: return 0; // EOI is write-only; reserved offsets read 0
    }
  }

  private writeReg(reg: number, v: number): void {
    const s = this.s, now = this.ctx.now();
    if (reg >= R_LVT && reg < R_LVT + LVT_COUNT * 0x10) {
      const i = (reg - R_LVT) >> 4;
      const old = s.lvt[i]!;
      let val = (old & ~LVT_WRITABLE[i]!) | (v & LVT_WRITABLE[i]!);
      if (!this.swEnabled()) val |= LVT_MASKED;
      if (i === LVT_TIMER) {
        // Settle the count under the old entry: expirations while masked are dropped, and a
        // mode change continues from the current count.
        if ((old ^ val) & LVT_PERIODIC) this.rebaseTimer(now);
        else this.syncTimer(now);
      }
      s.lvt[i] = val;
      this.updateIntr();
      this.ctx.deadlineChanged();
      return;
    }
    switch (reg) {
      case R_ID: s.id = v & 0xff000000; break;
      case R_TPR: s.tpr = v & 0xff; break;
      case R_EOI: {
        const isrv = highest(s.isr);
        if (isrv >= 0) {
          clearBit(s.isr, isrv);
          clearBit(s.tmr, isrv);
        }
        break;
      }
      case R_LDR: s.ldr = v & 0xff000000; break;
      case R_DFR: s.dfr = v | 0x0fffffff; break;
      case R_SVR:
        s.svr = v & 0x3ff;
        if (!this.swEnabled()) for (let i = 0; i < LVT_COUNT; i++) s.lvt[i]! |= LVT_MASKED;
        break;
      case R_ESR:
        s.esr = s.esrPending;
        s.esrPending = 0;
        break;
      case R_ICR_LO:
        s.icrLo = v & 0x000ccfff; // delivery status (bit 12) reads 0: delivery is immediate
        this.sendIpi();
        break;
      case R_ICR_HI: s.icrHi = v & 0xff000000; break;
      case R_TIMER_INIT:
        s.timerInitial = v >>> 0;
        s.timerStart = now;
        s.timerBase = s.timerInitial;
        s.timerFired = 0;
        s.timerRunning = s.timerInitial !== 0;
        this.ctx.deadlineChanged();
        break;
      case R_TIMER_DIV:
        // Rebase under the old divisor, then count on under the new one.
        this.rebaseTimer(now);
        s.timerDivCfg = v & 0xb;
        this.ctx.deadlineChanged();
        break;
      // Read-only and reserved registers ignore writes.
    }
    this.updateIntr();
  }

  /** Whether the ICR's destination includes this processor. */
  private ipiTargetsSelf(): boolean {
    const s = this.s, shorthand = (s.icrLo >> 18) & 3;
    if (shorthand === 1 || shorthand === 2) return true; // self, all including self
    if (shorthand === 3) return false; // all excluding self
    const dest = s.icrHi >>> 24;
    if ((s.icrLo & 0x800) === 0) return dest === 0xff || dest === s.id >>> 24;
    const ldr = s.ldr >>> 24;
    // Logical destination: flat model (DFR 0xF) matches any common bit; cluster model matches
    // the cluster (high nibble) and a common member bit.
    if (s.dfr >>> 28 === 0xf) return (dest & ldr) !== 0;
    return dest >> 4 === ldr >> 4 && (dest & ldr & 0xf) !== 0;
  }

  private sendIpi(): void {
    const s = this.s, mode = (s.icrLo >> 8) & 7, vector = s.icrLo & 0xff;
    if (mode === DM_FIXED || mode === DM_LOWEST) {
      if (vector < 16) {
        this.logError(ESR_SEND_ILLEGAL);
        return;
      }
      if (this.ipiTargetsSelf()) this.accept(vector);
    } else if (mode === DM_NMI && this.ipiTargetsSelf()) {
      this.ctx.nmi();
    }
    // INIT, SIPI and SMI have no other processor to go to (and an INIT to oneself is not modelled).
  }

  mmioRead(offset: number, size: 1 | 2 | 4): number {
    if (!this.hwEnabled()) return size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
    const sub = offset & 0xf;
    if (sub + size > 4) return 0;
    const v = this.readReg(offset & 0xff0) >>> (8 * sub);
    return size === 4 ? v | 0 : v & (size === 2 ? 0xffff : 0xff);
  }

  mmioWrite(offset: number, size: 1 | 2 | 4, v: number): void {
    if (!this.hwEnabled() || size !== 4 || (offset & 0xf) !== 0) return;
    this.writeReg(offset & 0xff0, v);
  }

  /** Back to the power-up register state; INTR's current level is kept for updateIntr to drive. */
  private powerUp(baseMsr: number): void {
    const intr = this.s.intr;
    this.s = fresh(baseMsr);
    this.s.intr = intr;
  }

  reset(): void {
    this.powerUp(APIC_BASE_MSR_RESET);
    this.updateIntr();
  }

  save(): unknown {
    return cloneState(this.s);
  }

  restore(saved: unknown): void {
    this.s = cloneState(saved as ApicState);
  }
}
