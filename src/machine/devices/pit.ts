// The 8254 programmable interval timer (Intel 8254 datasheet, order 231164) at 0x40-0x43, with
// port 0x61 (system control port B: channel 2 gate and OUT, the refresh toggle).
//
// Time: the counters' CLK is 1.193182 MHz, derived from virtual time by DeviceClock
// (PIT ticks = floor(cycles * 1193182 / env.cyclesPerSecond): at the default 100 MHz, one PIT
// tick every ~83.8 cycles). Nothing counts per tick: each counter remembers the tick at which
// its counting element (CE) was loaded, and its CE value and OUT level at any later tick are
// computed from the mode's waveform. Channel 0's OUT drives IRQ0; the device asks for a tick
// at each of its OUT transitions, and on catching up it still delivers the rising edge of a
// period it was called late for.
//
// Modes 0-5 follow the datasheet's waveforms, including GATE (channel 2's, from port 0x61):
// modes 0/4 pause while GATE is low; modes 1/5 are triggered by its rising edge; modes 2/3 stop
// with OUT high while it is low and restart on its rising edge. A count written while mode 2
// or 3 is counting takes effect at the end of the current period (mode 2) or half-cycle
// (mode 3). Counter latch and read-back commands, LSB/MSB/LSB-then-MSB access and BCD counting
// are modelled.

import type { MachineContext } from '../device.js';
import { DeviceClock } from './clock.js';
import { ByteIoDevice, cloneState } from './ports.js';

export const PIT_HZ = 1_193_182;
/** Port 0x61 bit 4 toggles once per DRAM refresh request: every 15.085 us (18 PIT ticks). */
const REFRESH_TICKS = 18;

// Access modes (control word bits 5:4).
const RW_LATCH = 0, RW_LSB = 1, RW_MSB = 2, RW_WORD = 3;

interface Channel {
  /** Control word bits 5:0 as written (RW, M2-M0, BCD), for the read-back status. */
  ctrl: number;
  /** Effective mode 0-5 (6 and 7 act as 2 and 3). */
  mode: number;
  rw: number;
  bcd: boolean;
  /** Count register as written; `crValid` once a whole count has been written. */
  cr: number;
  crValid: boolean;
  /** RW_WORD: the next write is the MSB. */
  writeMsb: boolean;
  /** RW_WORD: the next read is the MSB. */
  readMsb: boolean;
  latched: boolean;
  latch: number;
  statusLatched: boolean;
  status: number;
  gate: boolean;
  /** PIT tick at which the CE was loaded with `n` (Infinity: not counting). */
  start: number;
  /** The count being counted, as a number (1..65536, or 1..10000 in BCD). */
  n: number;
  /** Mode 3: ticks into the period at which counting started (0, or half a period). */
  phase: number;
  /** CE elapsed ticks held while GATE is low (modes 0/4 pause, modes 2/3 stop), else -1. */
  frozen: number;
  /** Modes 2/3 with GATE low: OUT high, not counting. */
  stopped: boolean;
  /** A count waiting for the end of the current period/half-cycle (modes 2/3), 0 if none. */
  pendingN: number;
  pendingAt: number;
  /** The read-back NULL COUNT bit is set until this tick (when CR reaches the CE). */
  nullUntil: number;
  /** OUT and CE before `start`. */
  outIdle: boolean;
  ceIdle: number;
  /** Rising OUT edges before the current `start` (channel 0's IRQ0 bookkeeping). */
  edgeBase: number;
}

function freshChannel(gate: boolean): Channel {
  return {
    ctrl: 0, mode: 0, rw: RW_LSB, bcd: false, cr: 0, crValid: false, writeMsb: false, readMsb: false,
    latched: false, latch: 0, statusLatched: false, status: 0, gate, start: Infinity, n: 0x10000,
    phase: 0, frozen: -1, stopped: false, pendingN: 0, pendingAt: Infinity, nullUntil: Infinity,
    // OUT is undefined until a control word is written; low keeps IRQ0 quiet until then.
    outIdle: false, ceIdle: 0, edgeBase: 0,
  };
}

interface PitState {
  ch: Channel[];
  /** Port 0x61 bits 3:0 (timer 2 gate, speaker data, parity/IOCHK enables). */
  portB: number;
  /** IRQ0 bookkeeping: channel 0's rising edges delivered, its line level, last synced tick. */
  edgesSent: number;
  irqLevel: boolean;
  syncedTick: number;
}

function fromBcd(v: number): number {
  return ((v >> 12) & 0xf) * 1000 + ((v >> 8) & 0xf) * 100 + ((v >> 4) & 0xf) * 10 + (v & 0xf);
}

function toBcd(v: number): number {
  return ((Math.floor(v / 1000) % 10) << 12) | ((Math.floor(v / 100) % 10) << 8) | ((Math.floor(v / 10) % 10) << 4) | (v % 10);
}

/** The count register as a count: 0 stands for the maximum, 65536 (10000 in BCD). */
function countOf(c: Channel): number {
  const v = c.bcd ? fromBcd(c.cr) : c.cr;
  return v === 0 ? (c.bcd ? 10000 : 0x10000) : v;
}

// The waveform of each mode after the CE was loaded with N, at e >= 0 ticks since.

function halfUp(n: number): number {
  return (n + 1) >> 1;
}

function outE(c: Channel, e: number): boolean {
  const n = c.n;
  switch (c.mode) {
    case 0: case 1: return e >= n;
    case 2: return e % n !== n - 1;
    case 3: return (e + c.phase) % n < halfUp(n);
    default: return e !== n; // 4, 5: one tick low when the count expires
  }
}

/** Rising OUT edges in [1, e] ticks since loading. */
function risingE(c: Channel, e: number): number {
  const n = c.n;
  switch (c.mode) {
    case 0: case 1: return e >= n ? 1 : 0;
    case 2: return n > 1 ? Math.floor(e / n) : 0;
    case 3: return n > 1 ? Math.floor((e + c.phase) / n) : 0;
    default: return e >= n + 1 ? 1 : 0;
  }
}

/** CE value (as a number, before BCD encoding). */
function ceE(c: Channel, e: number): number {
  const n = c.n, m = c.bcd ? 10000 : 0x10000;
  switch (c.mode) {
    case 2: return (n - (e % n)) % m;
    case 3: {
      // Mode 3 decrements by two; an odd count loads N - 1 (datasheet, "Mode 3").
      const p = (e + c.phase) % n, h = halfUp(n);
      return ((n & ~1) - 2 * (p < h ? p : p - h)) % m;
    }
    default: return (((n - e) % m) + m) % m;
  }
}

/** First e' > e at which OUT changes, or Infinity. */
function nextChangeE(c: Channel, e: number): number {
  const n = c.n;
  switch (c.mode) {
    case 0: case 1: return e < n ? n : Infinity;
    case 2: {
      if (n <= 1) return Infinity;
      const r = e % n;
      return r < n - 1 ? e + (n - 1 - r) : e + 1;
    }
    case 3: {
      if (n <= 1) return Infinity;
      const p = (e + c.phase) % n, h = halfUp(n);
      return p < h ? e + (h - p) : e + (n - p);
    }
    default: return e < n ? n : e < n + 1 ? n + 1 : Infinity;
  }
}

/** Ticks since the CE was loaded at tick t, or -1 before that. */
function elapsed(c: Channel, t: number): number {
  if (c.start > t) return -1;
  return c.frozen >= 0 ? c.frozen : t - c.start;
}

function outAt(c: Channel, t: number): boolean {
  if (c.stopped) return true;
  const e = elapsed(c, t);
  return e < 0 ? c.outIdle : outE(c, e);
}

function ceAt(c: Channel, t: number): number {
  const e = elapsed(c, t);
  return e < 0 ? c.ceIdle : ceE(c, e);
}

/** Channel 0's rising OUT edges since it was first programmed (monotonic). */
function edgesAt(c: Channel, t: number): number {
  const e = elapsed(c, t);
  return c.edgeBase + (e < 0 || c.stopped ? 0 : risingE(c, e));
}

/** Starts counting `n` from tick `start`, keeping OUT/CE/edge history continuous at tick t. */
function restart(c: Channel, t: number, start: number, n: number, phase: number): void {
  const e = elapsed(c, t);
  if (e >= 0 && !c.stopped) c.edgeBase += risingE(c, e);
  c.outIdle = outAt(c, t);
  c.ceIdle = ceAt(c, t);
  c.start = start;
  c.n = n;
  c.phase = phase;
  c.frozen = -1;
  c.stopped = false;
}

/** Applies a mode 2/3 count that was waiting for a period boundary at or before tick t. */
function normalize(c: Channel, t: number): void {
  if (c.pendingN !== 0 && t >= c.pendingAt) {
    const b = c.pendingAt;
    // Mode 3 at a falling boundary starts the new count in its low half.
    const phase = c.mode === 3 && !outE(c, b - c.start) ? halfUp(c.pendingN) : 0;
    restart(c, b, b, c.pendingN, phase);
    c.pendingN = 0;
    c.pendingAt = Infinity;
  }
}

/** First tick after t at which OUT changes (or a pending count loads), or Infinity. */
function nextChangeTick(c: Channel, t: number): number {
  const pending = c.pendingN !== 0 ? c.pendingAt : Infinity;
  if (c.stopped || c.start === Infinity) return pending;
  const e = elapsed(c, t);
  if (e >= 0 && c.frozen >= 0) return pending;
  // Not loaded yet: OUT may change at the load itself (mode 1 falls), else from there on.
  const at = e >= 0 ? nextChangeE(c, e) : outE(c, 0) !== c.outIdle ? 0 : nextChangeE(c, 0);
  return Math.min(pending, c.start + at);
}

export class Pit8254 extends ByteIoDevice {
  readonly name = 'pit';
  readonly ports = [0x40, 0x41, 0x42, 0x43, 0x61] as const;
  private readonly clock: DeviceClock;
  private s: PitState = Pit8254.fresh();

  constructor(private readonly ctx: MachineContext) {
    super();
    this.clock = new DeviceClock(ctx.env.cyclesPerSecond, PIT_HZ);
  }

  private static fresh(): PitState {
    // Channels 0 and 1 have GATE tied high; channel 2's comes from port 0x61 bit 0 (reset 0).
    return {
      ch: [freshChannel(true), freshChannel(true), freshChannel(false)], portB: 0, edgesSent: 0,
      irqLevel: false, syncedTick: 0,
    };
  }

  private ticks(): number {
    return this.clock.ticksAt(this.ctx.now());
  }

  /** Channel `i`'s state at the current tick (pending counts applied). */
  private channel(i: number, t: number): Channel {
    const c = this.s.ch[i]!;
    normalize(c, t);
    return c;
  }

  /** OUT of channel `i` now (what a speaker or a test would see). */
  out(i: number): boolean {
    const t = this.ticks();
    return outAt(this.channel(i, t), t);
  }

  /** Brings IRQ0 up to date with channel 0's OUT at tick t. */
  private syncIrq(t: number): void {
    const s = this.s, c = this.channel(0, t);
    const edges = edgesAt(c, t), out = outAt(c, t);
    if (edges > s.edgesSent) {
      // A rising edge happened since the last sync: present one to the PIC even if OUT has
      // since gone low again (the machine called late); edges in between coalesce, as the
      // PIC's IRR would have.
      if (s.irqLevel) this.ctx.lowerIrq(0);
      this.ctx.raiseIrq(0);
      s.irqLevel = true;
      s.edgesSent = edges;
    }
    if (out !== s.irqLevel) {
      if (out) this.ctx.raiseIrq(0);
      else this.ctx.lowerIrq(0);
      s.irqLevel = out;
    }
    s.syncedTick = t;
  }

  nextDeadline(): number {
    const s = this.s;
    const next = nextChangeTick(s.ch[0]!, s.syncedTick);
    return next === Infinity ? Infinity : this.clock.cycleOfTick(next);
  }

  tick(now: number): void {
    this.syncIrq(this.clock.ticksAt(now));
  }

  private writeControl(v: number, t: number): void {
    const sc = v >> 6;
    if (sc === 3) {
      // Read-back: bit 5 = 0 latches counts, bit 4 = 0 latches status, bits 3:1 select.
      for (let i = 0; i < 3; i++) {
        if ((v & (2 << i)) === 0) continue;
        const c = this.channel(i, t);
        if ((v & 0x20) === 0) this.latchCount(c, t);
        if ((v & 0x10) === 0 && !c.statusLatched) {
          c.statusLatched = true;
          c.status = (outAt(c, t) ? 0x80 : 0) | (t < c.nullUntil ? 0x40 : 0) | c.ctrl;
        }
      }
      return;
    }
    const c = this.channel(sc, t);
    const rw = (v >> 4) & 3;
    if (rw === RW_LATCH) {
      this.latchCount(c, t);
      return;
    }
    // A control word resets the counter's control logic: it stops until a count is written,
    // with OUT low in mode 0 and high in the others.
    restart(c, t, Infinity, c.n, 0);
    c.ctrl = v & 0x3f;
    c.rw = rw;
    c.mode = (v >> 1) & 7;
    if (c.mode > 5) c.mode -= 4;
    c.bcd = (v & 1) !== 0;
    c.writeMsb = false;
    c.readMsb = false;
    c.crValid = false;
    c.pendingN = 0;
    c.pendingAt = Infinity;
    c.nullUntil = Infinity;
    c.outIdle = c.mode !== 0;
  }

  private latchCount(c: Channel, t: number): void {
    if (c.latched) return; // a second latch before the first is read is ignored
    const v = ceAt(c, t);
    c.latch = c.bcd ? toBcd(v) : v;
    c.latched = true;
  }

  private writeCount(i: number, v: number, t: number): void {
    const c = this.channel(i, t);
    switch (c.rw) {
      case RW_LSB: c.cr = v; break;
      case RW_MSB: c.cr = v << 8; break;
      default:
        if (!c.writeMsb) {
          c.cr = (c.cr & 0xff00) | v;
          c.writeMsb = true;
          // Mode 0: the first byte of a two-byte count stops counting with OUT low.
          if (c.mode === 0) {
            restart(c, t, Infinity, c.n, 0);
            c.outIdle = false;
          }
          return;
        }
        c.cr = (c.cr & 0xff) | (v << 8);
        c.writeMsb = false;
    }
    c.crValid = true;
    const n = countOf(c);
    switch (c.mode) {
      case 0: case 4:
        // Loaded on the next CLK; counting (re)starts from it.
        restart(c, t, t + 1, n, 0);
        if (c.mode === 0) c.outIdle = false;
        if (!c.gate) c.frozen = 0;
        c.nullUntil = t + 1;
        break;
      case 1: case 5:
        // Waits for a GATE trigger.
        c.nullUntil = Infinity;
        break;
      default: { // 2, 3
        if (c.stopped || !c.gate) {
          c.nullUntil = Infinity;
        } else if (c.start <= t) {
          if (c.pendingN === 0) {
            const e = t - c.start;
            c.pendingAt = c.start + (c.mode === 2 ? (Math.floor(e / c.n) + 1) * c.n : nextChangeE(c, e));
          }
          c.pendingN = n;
          c.nullUntil = c.pendingAt;
        } else {
          restart(c, t, t + 1, n, 0);
          c.nullUntil = t + 1;
        }
      }
    }
  }

  private readCount(i: number, t: number): number {
    const c = this.channel(i, t);
    if (c.statusLatched) {
      c.statusLatched = false;
      return c.status;
    }
    let v: number;
    if (c.latched) {
      v = c.latch;
    } else {
      const ce = ceAt(c, t);
      v = c.bcd ? toBcd(ce) : ce;
    }
    let msb: boolean;
    if (c.rw === RW_WORD) {
      msb = c.readMsb;
      c.readMsb = !c.readMsb;
      if (msb) c.latched = false;
    } else {
      msb = c.rw === RW_MSB;
      c.latched = false;
    }
    return msb ? (v >> 8) & 0xff : v & 0xff;
  }

  private setGate2(level: boolean, t: number): void {
    const c = this.channel(2, t);
    if (level === c.gate) return;
    c.gate = level;
    switch (c.mode) {
      case 0: case 4:
        if (!level) {
          c.frozen = Math.max(0, t - c.start);
        } else if (c.frozen >= 0) {
          c.start = Math.max(c.start, t - c.frozen);
          c.frozen = -1;
        }
        break;
      case 1: case 5:
        // The rising edge triggers: the CE loads on the next CLK (mode 1: OUT falls then).
        if (level && c.crValid) {
          restart(c, t, t + 1, countOf(c), 0);
          c.nullUntil = t + 1;
        }
        break;
      default: // 2, 3
        if (!level) {
          if (c.start <= t && !c.stopped) {
            restart(c, t, Infinity, c.n, 0);
            c.stopped = true;
          }
        } else if (c.crValid) {
          c.stopped = false;
          c.pendingN = 0;
          c.pendingAt = Infinity;
          restart(c, t, t + 1, countOf(c), 0);
          c.nullUntil = t + 1;
        }
    }
  }

  protected readByte(port: number): number {
    const t = this.ticks();
    if (port === 0x61) {
      const refresh = Math.floor(t / REFRESH_TICKS) & 1;
      return (this.s.portB & 0x0f) | (refresh << 4) | (outAt(this.channel(2, t), t) ? 0x20 : 0);
    }
    if (port === 0x43) return 0xff; // the control register cannot be read
    return this.readCount(port - 0x40, t);
  }

  protected writeByte(port: number, v: number): void {
    const t = this.ticks();
    // Deliver channel 0's edges up to now before its programming changes.
    this.syncIrq(t);
    if (port === 0x61) {
      this.s.portB = v & 0x0f;
      this.setGate2((v & 1) !== 0, t);
      return;
    }
    if (port === 0x43) this.writeControl(v, t);
    else this.writeCount(port - 0x40, v, t);
    this.syncIrq(t);
    this.ctx.deadlineChanged();
  }

  reset(): void {
    this.s = Pit8254.fresh();
    this.s.syncedTick = this.ticks();
    this.ctx.lowerIrq(0);
  }

  save(): unknown {
    return cloneState(this.s);
  }

  restore(saved: unknown): void {
    this.s = cloneState(saved as PitState);
  }
}
