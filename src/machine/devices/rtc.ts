// The CMOS real-time clock and NVRAM (Motorola MC146818A / the PC chipset's RTC) at 0x70/0x71,
// interrupting on IRQ8.
//
// Port 0x70 selects one of 128 bytes (bits 6:0) and holds the NMI-disable bit (bit 7); port
// 0x71 reads or writes the selected byte. Bytes 0x00-0x09 are the time and alarm registers,
// 0x0A-0x0D the status registers, 0x32 the century (IBM AT convention); the rest is NVRAM.
//
// Time: the RTC's 32.768 kHz time base is derived from virtual time by DeviceClock. At power-on
// the clock is set once from env.wallClockMs() and phased so that its seconds change where the
// Env's do; from then on it advances with virtual time only (like a real RTC, it does not
// follow the host). An update cycle completes every 32768 ticks; register A's UIP bit reads 1
// for the 244 us before the update cycle plus its 1984 us (73 ticks), and register C's flags,
// the alarm and the periodic interrupt follow the same divider chain. Taking the divider out of
// reset (DV = 010) schedules the first update half a second later.
//
// The time is held in binary and shown in BCD or binary, 12- or 24-hour, per register B at the
// time of reading (a real chip converts nothing: software that changes DM or 24/12 without
// rewriting the time sees its values reinterpreted; no PC OS does). Daylight-saving (DSE) and
// the square-wave output are not modelled.

import type { MachineContext } from '../device.js';
import { DeviceClock } from './clock.js';
import { ByteIoDevice, cloneState } from './ports.js';

const RTC_HZ = 32768;
/** UIP is high for 244 us + 1984 us before each update completes. */
const UIP_TICKS = 73;

// Register indexes.
const SEC = 0x00, SEC_ALARM = 0x01, MIN = 0x02, MIN_ALARM = 0x03, HOUR = 0x04, HOUR_ALARM = 0x05,
  DOW = 0x06, DOM = 0x07, MONTH = 0x08, YEAR = 0x09, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c,
  REG_D = 0x0d, CENTURY = 0x32;
// Register A/B/C bits.
const A_UIP = 0x80, A_DV = 0x70, A_DV_NORMAL = 0x20, A_RS = 0x0f;
const B_SET = 0x80, B_PIE = 0x40, B_AIE = 0x20, B_UIE = 0x10, B_SQWE = 0x08, B_DM = 0x04, B_24H = 0x02;
const C_IRQF = 0x80, C_PF = 0x40, C_AF = 0x20, C_UF = 0x10;
/** Alarm bytes with both top bits set match any value ("don't care"). */
const ALARM_ANY = 0xc0;

interface RtcState {
  index: number;
  nmiDisabled: boolean;
  /** NVRAM, including registers A-D (A without UIP, C the flags); time bytes live in `time`. */
  ram: Uint8Array;
  /** Binary time: sec, min, hour (0-23), day of week (1-7, Sunday 1), day, month, year (0-99), century. */
  time: { sec: number; min: number; hour: number; dow: number; dom: number; mon: number; year: number; century: number };
  /** RTC tick the divider chain counts from: updates complete at origin + k * 32768, k >= 1. */
  origin: number;
  /** Updates (and periodic-rate boundaries) accounted for so far, counted from origin. */
  updates: number;
  periods: number;
  irq: boolean;
}

function bcd(v: number): number {
  return ((Math.floor(v / 10) % 10) << 4) | (v % 10);
}

function unbcd(v: number): number {
  return (v >> 4) * 10 + (v & 0xf);
}

/** The MC146818 leap-year rule: every fourth year (right from 1901 to 2099). */
function daysInMonth(mon: number, year: number): number {
  return mon === 2 ? (year % 4 === 0 ? 29 : 28) : mon === 4 || mon === 6 || mon === 9 || mon === 11 ? 30 : 31;
}

/** Periodic interrupt period in 32.768 kHz ticks for rate select 1-15 (0: none). */
function periodTicks(rs: number): number {
  if (rs === 0) return 0;
  // Rates 1 and 2 repeat 256 Hz and 128 Hz (the 32.768 kHz time base's quirk).
  return rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
}

export class Rtc extends ByteIoDevice {
  readonly name = 'rtc';
  readonly ports = [0x70, 0x71] as const;
  private readonly clock: DeviceClock;
  private s: RtcState;

  constructor(private readonly ctx: MachineContext) {
    super();
    this.clock = new DeviceClock(ctx.env.cyclesPerSecond, RTC_HZ);
    this.s = this.powerOn();
  }

  private powerOn(): RtcState {
    const now = this.ctx.now();
    const ms = this.ctx.env.wallClockMs(now);
    const secs = Math.floor(ms / 1000);
    const days = Math.floor(secs / 86400);
    const daySec = secs - days * 86400;
    // civil_from_days (H. Hinnant), proleptic Gregorian, UTC.
    const z = days + 719468;
    const era = Math.floor(z / 146097);
    const doe = z - era * 146097;
    const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
    const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    const mp = Math.floor((5 * doy + 2) / 153);
    const dom = doy - Math.floor((153 * mp + 2) / 5) + 1;
    const mon = mp < 10 ? mp + 3 : mp - 9;
    const fullYear = yoe + era * 400 + (mon <= 2 ? 1 : 0);
    const ram = new Uint8Array(128);
    ram[REG_A] = A_DV_NORMAL | 0x06; // 32.768 kHz, 1024 Hz periodic rate (the BIOS default)
    ram[REG_B] = B_24H;
    ram[REG_D] = 0x80; // VRT: the battery is good
    // Phase the divider so that the next update lands where the Env's next second starts.
    const t = this.clock.ticksAt(now);
    const nextUpdate = t + Math.max(1, Math.round(((1000 - (ms - secs * 1000)) * RTC_HZ) / 1000));
    return {
      index: 0, nmiDisabled: false, ram,
      time: {
        sec: daySec % 60, min: Math.floor(daySec / 60) % 60, hour: Math.floor(daySec / 3600),
        dow: ((((days + 4) % 7) + 7) % 7) + 1, dom, mon, year: fullYear % 100, century: Math.floor(fullYear / 100),
      },
      origin: nextUpdate - RTC_HZ, updates: 0, periods: 0, irq: false,
    };
  }

  /** NMI-disable bit of port 0x70 (the machine's NMI sources consult it). */
  get nmiEnabled(): boolean {
    return !this.s.nmiDisabled;
  }

  private running(): boolean {
    return (this.s.ram[REG_A]! & A_DV) === A_DV_NORMAL;
  }

  private ticks(): number {
    return this.clock.ticksAt(this.ctx.now());
  }

  /** Applies the updates and periodic flags due by RTC tick t. */
  private sync(t: number): void {
    const s = this.s, ram = s.ram;
    if (!this.running()) return;
    const since = t - s.origin;
    const updates = Math.floor(since / RTC_HZ);
    if (updates > s.updates) {
      if ((ram[REG_B]! & B_SET) === 0) this.advance(updates - s.updates);
      s.updates = updates;
    }
    const period = periodTicks(ram[REG_A]! & A_RS);
    if (period !== 0) {
      const periods = Math.floor(since / period);
      if (periods > s.periods) ram[REG_C]! |= C_PF;
      s.periods = periods;
    }
    this.updateIrq();
  }

  /** Runs n update cycles: the time advances n seconds; UF, and AF on an alarm match. */
  private advance(n: number): void {
    const s = this.s;
    // An alarm matches at most once a second; only the last day can hold the last match that
    // matters, so older whole days are skipped in bulk.
    const bulk = n - 86400;
    if (bulk > 0) {
      this.tickSeconds(bulk);
      n -= bulk;
    }
    let alarm = false;
    for (let i = 0; i < n; i++) {
      this.tickSeconds(1);
      alarm ||= this.alarmMatches();
    }
    s.ram[REG_C]! |= C_UF | (alarm ? C_AF : 0);
  }

  /** Adds n seconds to the time with the chip's carries (garbage in a field just rolls over). */
  private tickSeconds(n: number): void {
    const tm = this.s.time;
    const sec = tm.sec + n;
    tm.sec = sec % 60;
    const min = tm.min + Math.floor(sec / 60);
    tm.min = min % 60;
    const hour = tm.hour + Math.floor(min / 60);
    tm.hour = hour % 24;
    for (let d = Math.floor(hour / 24); d > 0; d--) {
      tm.dow = (tm.dow % 7) + 1;
      if (++tm.dom <= daysInMonth(tm.mon, tm.year)) continue;
      tm.dom = 1;
      if (++tm.mon <= 12) continue;
      tm.mon = 1;
      if (++tm.year < 100) continue;
      tm.year = 0;
      tm.century++;
    }
  }

  private alarmMatches(): boolean {
    return this.alarmByteMatches(SEC_ALARM, SEC) && this.alarmByteMatches(MIN_ALARM, MIN) && this.alarmByteMatches(HOUR_ALARM, HOUR);
  }

  /** Alarm bytes compare with the time byte as software reads it (same BCD/binary, 12/24-hour). */
  private alarmByteMatches(alarmReg: number, reg: number): boolean {
    const a = this.s.ram[alarmReg]!;
    return (a & ALARM_ANY) === ALARM_ANY || a === this.readTimeReg(reg);
  }

  private updateIrq(): void {
    const ram = this.s.ram;
    const irqf = (ram[REG_C]! & ram[REG_B]! & (C_PF | C_AF | C_UF)) !== 0;
    ram[REG_C] = (ram[REG_C]! & ~C_IRQF) | (irqf ? C_IRQF : 0);
    if (irqf !== this.s.irq) {
      this.s.irq = irqf;
      if (irqf) this.ctx.raiseIrq(8);
      else this.ctx.lowerIrq(8);
    }
  }

  private encode(v: number): number {
    return this.s.ram[REG_B]! & B_DM ? v : bcd(v);
  }

  private decode(v: number): number {
    return this.s.ram[REG_B]! & B_DM ? v : unbcd(v);
  }

  private readTimeReg(reg: number): number {
    const tm = this.s.time;
    switch (reg) {
      case SEC: return this.encode(tm.sec);
      case MIN: return this.encode(tm.min);
      case HOUR: {
        if (this.s.ram[REG_B]! & B_24H) return this.encode(tm.hour);
        return this.encode(tm.hour % 12 || 12) | (tm.hour >= 12 ? 0x80 : 0);
      }
      case DOW: return this.encode(tm.dow);
      case DOM: return this.encode(tm.dom);
      case MONTH: return this.encode(tm.mon);
      case YEAR: return this.encode(tm.year);
      default: return this.encode(tm.century);
    }
  }

  private writeTimeReg(reg: number, v: number): void {
    const tm = this.s.time;
    switch (reg) {
      case SEC: tm.sec = this.decode(v & 0x7f); break;
      case MIN: tm.min = this.decode(v & 0x7f); break;
      case HOUR:
        if (this.s.ram[REG_B]! & B_24H) tm.hour = this.decode(v & 0x3f);
        else tm.hour = (this.decode(v & 0x7f) % 12) + (v & 0x80 ? 12 : 0);
        break;
      case DOW: tm.dow = this.decode(v); break;
      case DOM: tm.dom = this.decode(v); break;
      case MONTH: tm.mon = this.decode(v); break;
      case YEAR: tm.year = this.decode(v); break;
      default: tm.century = this.decode(v);
    }
  }

  private isTimeReg(reg: number): boolean {
    return reg === SEC || reg === MIN || reg === HOUR || (reg >= DOW && reg <= YEAR) || reg === CENTURY;
  }

  nextDeadline(): number {
    const ram = this.s.ram;
    if (!this.running()) return Infinity;
    let next = Infinity;
    const b = ram[REG_B]!;
    const period = periodTicks(ram[REG_A]! & A_RS);
    if (b & B_PIE && period !== 0) next = this.s.origin + (this.s.periods + 1) * period;
    if (b & (B_UIE | B_AIE) && (b & B_SET) === 0) next = Math.min(next, this.s.origin + (this.s.updates + 1) * RTC_HZ);
    return next === Infinity ? Infinity : this.clock.cycleOfTick(next);
  }

  tick(now: number): void {
    this.sync(this.clock.ticksAt(now));
  }

  protected readByte(port: number): number {
    // The index register is write-only.
    if (port === 0x70) return 0xff;
    const s = this.s, t = this.ticks();
    this.sync(t);
    const reg = s.index;
    if (this.isTimeReg(reg)) return this.readTimeReg(reg);
    switch (reg) {
      case REG_A: {
        const uip = this.running() && (s.ram[REG_B]! & B_SET) === 0 && (t - s.origin) % RTC_HZ >= RTC_HZ - UIP_TICKS;
        return (s.ram[REG_A]! & ~A_UIP) | (uip ? A_UIP : 0);
      }
      case REG_C: {
        // Reading C clears every flag and releases IRQ8.
        const v = s.ram[REG_C]!;
        s.ram[REG_C] = 0;
        this.updateIrq();
        return v;
      }
      default:
        return s.ram[reg]!;
    }
  }

  protected writeByte(port: number, v: number): void {
    const s = this.s;
    if (port === 0x70) {
      s.index = v & 0x7f;
      s.nmiDisabled = (v & 0x80) !== 0;
      return;
    }
    const t = this.ticks();
    this.sync(t);
    const reg = s.index;
    if (this.isTimeReg(reg)) {
      this.writeTimeReg(reg, v);
      return;
    }
    switch (reg) {
      case REG_A: {
        const wasRunning = this.running();
        s.ram[REG_A] = v & ~A_UIP;
        if (this.running() && !wasRunning) {
          // Out of divider reset: the first update completes half a second later.
          s.origin = t - RTC_HZ / 2;
          s.updates = 0;
        }
        // The periodic count restarts against the (possibly new) rate.
        const period = periodTicks(v & A_RS);
        s.periods = period !== 0 ? Math.floor((t - s.origin) / period) : 0;
        break;
      }
      case REG_B:
        // Setting SET aborts any update and clears UIE (MC146818A datasheet).
        s.ram[REG_B] = v & B_SET ? v & ~B_UIE : v;
        break;
      case REG_C: case REG_D:
        return; // read-only
      default:
        s.ram[reg] = v;
    }
    this.updateIrq();
    this.ctx.deadlineChanged();
  }

  /** The RESET# pin (system reset): interrupt enables and flags clear; time and NVRAM stay. */
  reset(): void {
    const ram = this.s.ram;
    this.sync(this.ticks());
    ram[REG_B]! &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
    ram[REG_C] = 0;
    this.updateIrq();
  }

  save(): unknown {
    return cloneState(this.s);
  }

  restore(saved: unknown): void {
    this.s = cloneState(saved as RtcState);
  }
}
