// The PC devices as guest software drives them: first each device through its ports (and the
// APIC through its MMIO window) on a fake machine context whose virtual clock the test moves,
// then guest programs on the whole machine.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { DeviceStop, MachineContext } from '../src/machine/device.js';
import { DeterministicEnv, type Env, type EnvOptions } from '../src/machine/env.js';
import { createDevices, type PcDevices } from '../src/machine/devices/index.js';
import { DeviceClock } from '../src/machine/devices/clock.js';
import { PIT_HZ } from '../src/machine/devices/pit.js';
import { APIC_BASE_MSR_RESET, APIC_VERSION } from '../src/machine/devices/apic.js';
import { createMachine } from '../src/machine/machine.js';
import { readFileSync } from 'node:fs';
import { asm, hasNasm } from './helpers/harness.js';

const CPS = 100_000_000; // DeterministicEnv's default cycles per second

/**
 * The devices on a fake machine: virtual time moves only by advance(), which ticks devices at
 * their deadlines as the machine's loop does; every output of the context is recorded.
 */
class Bench {
  now = 0;
  intr = false;
  intrChanges = 0;
  a20 = true;
  resets = 0;
  nmis = 0;
  stops: Array<[DeviceStop, number | undefined]> = [];
  debug: number[] = [];
  serial: number[] = [];
  post: number[] = [];
  /** IRQ lines as the devices drive them, and rising edges per line. */
  lines = new Array<boolean>(16).fill(false);
  edges = new Array<number>(16).fill(0);
  readonly d: PcDevices;

  constructor(env: EnvOptions = {}) {
    const ctx: MachineContext = {
      env: new DeterministicEnv(env),
      now: () => this.now,
      raiseIrq: (l) => {
        if (!this.lines[l]) this.edges[l]!++;
        this.lines[l] = true;
        this.d.interruptController.setIrq(l, true);
      },
      lowerIrq: (l) => {
        this.lines[l] = false;
        this.d.interruptController.setIrq(l, false);
      },
      setIntr: (level) => {
        this.intr = level;
        this.intrChanges++;
      },
      nmi: () => void this.nmis++,
      deadlineChanged: () => {},
      requestStop: (kind, code) => void this.stops.push([kind, code]),
      requestReset: () => void this.resets++,
      setA20: (e) => void (this.a20 = e),
      debugOutput: (b) => void this.debug.push(b),
      serialOutput: (_com, b) => void this.serial.push(b),
      postCode: (v) => void this.post.push(v),
    };
    this.d = createDevices(ctx);
  }

  out(port: number, v: number, size: 1 | 2 | 4 = 1): void {
    const dev = this.d.devices.find((x) => x.ports?.includes(port));
    dev!.ioWrite!(port, size, v);
  }

  in(port: number, size: 1 | 2 | 4 = 1): number {
    const dev = this.d.devices.find((x) => x.ports?.includes(port));
    return dev!.ioRead!(port, size);
  }

  /** Moves virtual time to `to`, ticking each device at each of its deadlines on the way. */
  advance(to: number): void {
    for (;;) {
      let next = Infinity;
      for (const d of this.d.devices) if (d.nextDeadline) next = Math.min(next, d.nextDeadline());
      if (next > to) break;
      this.now = Math.max(this.now, next);
      for (const d of this.d.devices) if (d.nextDeadline && d.nextDeadline() <= this.now) d.tick!(this.now);
    }
    this.now = to;
  }

  ack(): number {
    return this.d.interruptController.acknowledge();
  }

  apicRead(reg: number): number {
    return this.d.apic.mmioRead(reg, 4) >>> 0;
  }

  apicWrite(reg: number, v: number): void {
    this.d.apic.mmioWrite(reg, 4, v);
  }
}

/** The PC BIOS's 8259 programming: vectors 0x08 and 0x70, cascade on IR2, 8086 mode. */
function initPics(b: Bench, master = 0x08, slave = 0x70, icw4 = 0x01): void {
  b.out(0x20, 0x11); b.out(0x21, master); b.out(0x21, 0x04); b.out(0x21, icw4);
  b.out(0xa0, 0x11); b.out(0xa1, slave); b.out(0xa1, 0x02); b.out(0xa1, icw4);
}

const ms = (x: number): number => Math.round((x * CPS) / 1000);
const SEED = 0x8254_8259;

describe('DeviceClock', () => {
  it('cycleOfTick is the first cycle of each tick, for any rates (property, seed printed)', () => {
    console.log(`DeviceClock property seed ${SEED}`);
    fc.assert(fc.property(
      fc.integer({ min: 1_000_000, max: 4_000_000_000 }), fc.integer({ min: 1, max: 20_000_000 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (cps, hz, frac) => {
        // Any tick whose cycle stays below 2^50 (years of virtual time at any rate).
        const tick = Math.floor(frac * Math.floor((2 ** 50 / cps) * hz));
        const c = new DeviceClock(cps, hz);
        const at = c.cycleOfTick(tick);
        return c.ticksAt(at) >= tick && (at === 0 || c.ticksAt(at - 1) < tick);
      }), { seed: SEED, numRuns: 500 });
  });
});

describe('8259A PIC pair', () => {
  it('ICW sequence, IRQ -> INTR -> acknowledge vector -> EOI', () => {
    const b = new Bench();
    initPics(b);
    expect(b.in(0x21)).toBe(0); // ICW1 cleared the mask
    b.d.pic.setIrq(1, true);
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x09);
    expect(b.intr).toBe(false);
    b.out(0x20, 0x0b); // OCW3: read ISR
    expect(b.in(0x20)).toBe(0x02);
    b.out(0x20, 0x20); // non-specific EOI
    expect(b.in(0x20)).toBe(0x00);
    b.out(0x20, 0x0a); // OCW3: read IRR
    expect(b.in(0x20)).toBe(0x00);
  });

  it('serves by priority and holds lower requests until EOI; edges do not repeat', () => {
    const b = new Bench();
    initPics(b);
    b.d.pic.setIrq(3, true);
    b.d.pic.setIrq(1, true);
    expect(b.ack()).toBe(0x09);
    expect(b.intr).toBe(false); // IRQ3 is below IRQ1 in service
    b.d.pic.setIrq(0, true); // IRQ0 is above: nests
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x08);
    b.out(0x20, 0x20); // EOI IRQ0
    expect(b.intr).toBe(false);
    b.out(0x20, 0x20); // EOI IRQ1
    expect(b.ack()).toBe(0x0b);
    b.out(0x20, 0x63); // specific EOI IRQ3
    // The lines are still high, but edge-triggered inputs need a new rising edge.
    expect(b.intr).toBe(false);
    b.d.pic.setIrq(3, false);
    b.d.pic.setIrq(3, true);
    expect(b.ack()).toBe(0x0b);
  });

  it('masks with OCW1 and reads the IMR back', () => {
    const b = new Bench();
    initPics(b);
    b.out(0x21, 0xfe);
    expect(b.in(0x21)).toBe(0xfe);
    b.d.pic.setIrq(4, true);
    expect(b.intr).toBe(false);
    b.out(0x21, 0xef);
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x0c);
  });

  it('cascades the slave through IR2 and needs an EOI to each chip', () => {
    const b = new Bench();
    initPics(b);
    b.d.pic.setIrq(14, true);
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x76);
    b.out(0x20, 0x0b);
    b.out(0xa0, 0x0b);
    expect(b.in(0x20)).toBe(0x04);
    expect(b.in(0xa0)).toBe(0x40);
    b.d.pic.setIrq(8, true); // higher than 14 on the slave, but the master has IR2 in service
    expect(b.intr).toBe(false);
    b.out(0xa0, 0x20);
    b.out(0x20, 0x20);
    expect(b.ack()).toBe(0x70);
  });

  it('special fully nested mode lets a higher slave request through while the slave is in service', () => {
    const b = new Bench();
    b.out(0x20, 0x11); b.out(0x21, 0x08); b.out(0x21, 0x04); b.out(0x21, 0x11); // master: SFNM
    b.out(0xa0, 0x11); b.out(0xa1, 0x70); b.out(0xa1, 0x02); b.out(0xa1, 0x01);
    b.d.pic.setIrq(12, true);
    expect(b.ack()).toBe(0x74);
    b.d.pic.setIrq(9, true);
    expect(b.intr).toBe(true); // master IR2 is in service, but SFNM lets IR2 in again
    expect(b.ack()).toBe(0x71);
    b.d.pic.setIrq(3, true);
    expect(b.intr).toBe(false); // lower than IR2 on the master: still held
  });

  it('gives the spurious IRQ7 vector when the request went away, without setting ISR', () => {
    const b = new Bench();
    initPics(b);
    b.d.pic.setIrq(5, true);
    expect(b.intr).toBe(true);
    b.d.pic.setIrq(5, false); // dropped before the acknowledge
    expect(b.intr).toBe(false);
    expect(b.ack()).toBe(0x0f);
    b.out(0x20, 0x0b);
    expect(b.in(0x20)).toBe(0);
  });

  it('auto-EOI leaves nothing in service; rotation makes the served level lowest', () => {
    const b = new Bench();
    initPics(b, 0x20, 0x28, 0x03);
    b.d.pic.setIrq(6, true);
    expect(b.ack()).toBe(0x26);
    b.out(0x20, 0x0b);
    expect(b.in(0x20)).toBe(0);

    const r = new Bench();
    initPics(r);
    r.d.pic.setIrq(0, true);
    expect(r.ack()).toBe(0x08);
    r.out(0x20, 0xa0); // rotate on non-specific EOI: IR0 becomes lowest, IR1 highest
    r.d.pic.setIrq(0, false);
    r.d.pic.setIrq(0, true);
    r.d.pic.setIrq(7, true);
    expect(r.ack()).toBe(0x0f); // IR7 now outranks IR0
    r.out(0x20, 0xc4); // set priority: IR4 lowest, IR5 highest
    r.out(0x20, 0x67);
    expect(r.ack()).toBe(0x08);
  });

  it('poll command acknowledges through a read', () => {
    const b = new Bench();
    initPics(b);
    b.d.pic.setIrq(3, true);
    b.out(0x20, 0x0c); // OCW3 poll
    expect(b.in(0x20)).toBe(0x83);
    b.out(0x20, 0x0c);
    expect(b.in(0x20)).toBe(0x00); // IR3 in service, nothing else
    b.out(0x20, 0x0b);
    expect(b.in(0x20)).toBe(0x08);
  });

  it('special mask mode lets lower levels through while the masked level is in service', () => {
    const b = new Bench();
    initPics(b);
    b.d.pic.setIrq(2 + 1, true);
    expect(b.ack()).toBe(0x0b);
    b.d.pic.setIrq(5, true);
    expect(b.intr).toBe(false);
    b.out(0x21, 0x08); // mask IR3 (in service)
    b.out(0x20, 0x68); // OCW3: set special mask mode
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x0d);
  });

  it('level-triggered inputs (ELCR) request again while the line stays high', () => {
    const b = new Bench();
    initPics(b);
    b.out(0x4d1, 0xff);
    expect(b.in(0x4d1)).toBe(0xde); // IRQ8 and IRQ13 cannot be level-triggered
    b.d.pic.setIrq(9, true);
    expect(b.ack()).toBe(0x71);
    b.out(0xa0, 0x20);
    b.out(0x20, 0x20);
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x71);
  });
});

describe('8254 PIT', () => {
  const tick = new DeviceClock(CPS, PIT_HZ);

  it('mode 2 on channel 0 raises IRQ0 once per period', () => {
    const b = new Bench();
    initPics(b);
    b.out(0x61, 0x01); // other PIT ports leave the unprogrammed channel 0 (OUT low) alone
    b.out(0x43, 0xb6);
    expect(b.edges[0]).toBe(0);
    b.out(0x43, 0x34); // channel 0, LSB then MSB, mode 2
    b.out(0x40, 1193 & 0xff);
    b.out(0x40, 1193 >> 8);
    // Setting mode 2 raised OUT (its first edge); the count loads at tick 1 and OUT rises again
    // every 1193 ticks after.
    expect(b.edges[0]).toBe(1);
    b.advance(tick.cycleOfTick(1 + 1193 * 100) - 1);
    expect(b.edges[0]).toBe(1 + 99);
    b.advance(tick.cycleOfTick(1 + 1193 * 100));
    expect(b.edges[0]).toBe(1 + 100);
    // The PIC saw them: IRQ0 pending.
    expect(b.ack()).toBe(0x08);
  });

  it('mode 3 is a square wave whose count drops by two; the latch holds its value', () => {
    const b = new Bench();
    b.out(0x43, 0x36); // channel 0, LSB/MSB, mode 3
    b.out(0x40, 100);
    b.out(0x40, 0);
    // Loaded on the next tick (t = 1); at t = 1 + 10 the count is 100 - 20.
    b.now = tick.cycleOfTick(11);
    expect(b.d.pit.out(0)).toBe(true);
    b.out(0x43, 0x00); // latch channel 0
    b.now = tick.cycleOfTick(31);
    expect(b.in(0x40) | (b.in(0x40) << 8)).toBe(80);
    expect(b.in(0x40) | (b.in(0x40) << 8)).toBe(40); // unlatched: live again
    b.now = tick.cycleOfTick(1 + 50);
    expect(b.d.pit.out(0)).toBe(false);
    b.now = tick.cycleOfTick(1 + 99);
    expect(b.d.pit.out(0)).toBe(false);
    b.now = tick.cycleOfTick(1 + 100);
    expect(b.d.pit.out(0)).toBe(true);
    // Odd count 5: high for 3 ticks, low for 2.
    b.out(0x43, 0x16); // channel 0, LSB only, mode 3
    b.out(0x40, 5);
    const t0 = tick.ticksAt(b.now) + 1;
    const wave = [];
    for (let i = 0; i < 10; i++) {
      b.now = tick.cycleOfTick(t0 + i);
      wave.push(b.d.pit.out(0) ? 1 : 0);
    }
    expect(wave.join('')).toBe('1110011100');
  });

  it('mode 2 and 3 counts follow the datasheet waveforms at any tick (property, seed printed)', () => {
    console.log(`PIT property seed ${SEED}`);
    fc.assert(fc.property(
      fc.constantFrom(2, 3), fc.integer({ min: 2, max: 0xffff }), fc.integer({ min: 0, max: 5_000_000 }),
      (mode, n, e) => {
        const b = new Bench();
        b.out(0x43, 0x30 | (mode << 1));
        b.out(0x40, n & 0xff);
        b.out(0x40, n >> 8);
        b.now = tick.cycleOfTick(1 + e); // loaded at tick 1
        b.out(0x43, 0x00);
        const ce = b.in(0x40) | (b.in(0x40) << 8);
        const p = e % n, h = Math.ceil(n / 2);
        const expected = mode === 2 ? n - p : (n & ~1) - 2 * (p < h ? p : p - h);
        const out = mode === 2 ? p !== n - 1 : p < h;
        return ce === expected && b.d.pit.out(0) === out;
      }), { seed: SEED, numRuns: 300 });
  });

  it('read-back returns status then count; LSB-only and MSB-only access', () => {
    const b = new Bench();
    b.out(0x43, 0x74); // channel 1, LSB/MSB, mode 2
    b.out(0x41, 0x34);
    b.out(0x41, 0x12);
    b.out(0x43, 0xc4); // read-back: count and status of channel 1
    expect(b.in(0x41)).toBe(0x40 | 0x80 | 0x34); // NULL COUNT (not loaded yet), OUT high, RW=3 mode 2
    expect(b.in(0x41) | (b.in(0x41) << 8)).toBe(0); // the CE before its first load
    b.now = tick.cycleOfTick(5);
    b.out(0x43, 0xe4); // status only
    expect(b.in(0x41)).toBe(0x80 | 0x34);
    expect(b.in(0x41) | (b.in(0x41) << 8)).toBe(0x1234 - 4);
    b.out(0x43, 0x52); // channel 1, LSB only, mode 1... then MSB-only on channel 0
    b.out(0x43, 0x20); // channel 0, MSB only, mode 0
    b.out(0x40, 0x02); // count 0x0200
    b.now = tick.cycleOfTick(5 + 1 + 0x100);
    expect(b.in(0x40)).toBe(0x01);
  });

  it('BCD counting', () => {
    const b = new Bench();
    b.out(0x43, 0x31); // channel 0, LSB/MSB, mode 0, BCD
    b.out(0x40, 0x00);
    b.out(0x40, 0x10); // 1000 decimal
    b.now = tick.cycleOfTick(1 + 1);
    expect(b.in(0x40) | (b.in(0x40) << 8)).toBe(0x0999);
  });

  it('mode 0 on channel 2, gated by port 0x61: OUT (bit 5) rises after the count', () => {
    const b = new Bench();
    b.out(0x61, 0x00); // gate low
    b.out(0x43, 0xb0); // channel 2, LSB/MSB, mode 0
    b.out(0x42, 100);
    b.out(0x42, 0);
    b.now = tick.cycleOfTick(500);
    expect(b.in(0x61) & 0x20).toBe(0); // not counting with the gate low
    expect(b.in(0x42) | (b.in(0x42) << 8)).toBe(100);
    b.out(0x61, 0x01); // gate high
    b.now = tick.cycleOfTick(500 + 99);
    expect(b.in(0x61) & 0x20).toBe(0);
    b.now = tick.cycleOfTick(500 + 100);
    expect(b.in(0x61) & 0x20).toBe(0x20);
    expect(b.in(0x61) & 0x0f).toBe(0x01);
  });

  it('a new mode 3 count takes effect at the next half-cycle boundary', () => {
    const b = new Bench();
    b.out(0x43, 0x36);
    b.out(0x40, 100);
    b.out(0x40, 0); // loaded at tick 1: high for ticks 1-50, low for 51-100
    b.now = tick.cycleOfTick(1 + 30);
    b.out(0x40, 40);
    b.out(0x40, 0);
    const wave = (from: number, to: number): string => {
      let w = '';
      for (let e = from; e < to; e += 5) {
        b.now = tick.cycleOfTick(1 + e);
        w += b.d.pit.out(0) ? '1' : '0';
      }
      return w;
    };
    // Still the old high half until 50, then the new count's low half (20 ticks), then its
    // 20/20 square wave.
    expect(wave(30, 130)).toBe('1111' + '0000' + '1111' + '0000' + '1111');
    b.now = tick.cycleOfTick(1 + 50);
    b.out(0x43, 0x00);
    expect(b.in(0x40) | (b.in(0x40) << 8)).toBe(40);
  });

  it('a tick called late still delivers one IRQ0 edge for the periods it missed', () => {
    const b = new Bench();
    b.out(0x43, 0x34);
    b.out(0x40, 100);
    b.out(0x40, 0);
    const before = b.edges[0]!;
    b.now = tick.cycleOfTick(1 + 100 * 7 + 50); // seven periods, no tick in between
    b.d.pit.tick(b.now);
    expect(b.edges[0]! - before).toBe(1);
    expect(b.lines[0]).toBe(true);
    b.advance(tick.cycleOfTick(1 + 100 * 8));
    expect(b.edges[0]! - before).toBe(2);
  });

  it('modes 1, 4 and 5: one-shot and strobes, triggered by the count or by GATE', () => {
    const b = new Bench();
    const out2 = (t: number): number => {
      b.now = tick.cycleOfTick(t);
      return (b.in(0x61) >> 5) & 1;
    };
    // Mode 4 on channel 2 (gate high): OUT drops for one tick when the count of 10 expires.
    b.out(0x61, 0x01);
    b.out(0x43, 0x98); // channel 2, LSB only, mode 4
    b.out(0x42, 10);
    expect([10, 11, 12].map(out2)).toEqual([1, 0, 1]); // loaded at tick 1, expires at 1 + 10
    // Mode 1: nothing until GATE rises; then OUT is low for the count's 5 ticks.
    b.out(0x61, 0x00);
    b.out(0x43, 0x92); // channel 2, LSB only, mode 1
    b.out(0x42, 5);
    expect(out2(100)).toBe(1);
    b.out(0x61, 0x01); // trigger at tick 100: loads at 101
    expect([100, 101, 105, 106].map(out2)).toEqual([1, 0, 0, 1]);
    // Retriggering restarts the one-shot.
    b.out(0x61, 0x00);
    expect(out2(200)).toBe(1);
    b.out(0x61, 0x01);
    expect([201, 206].map(out2)).toEqual([0, 1]);
    // Mode 5: the strobe comes the count's ticks after the trigger.
    b.out(0x61, 0x00);
    b.out(0x43, 0x9a); // channel 2, LSB only, mode 5
    b.out(0x42, 3);
    expect(out2(300)).toBe(1);
    b.out(0x61, 0x01);
    expect([301, 303, 304, 305].map(out2)).toEqual([1, 1, 0, 1]);
  });

  it('port 0x61 bit 4 toggles every refresh period', () => {
    const b = new Bench();
    const seen = new Set<number>();
    for (let t = 0; t < 40; t += 9) {
      b.now = tick.cycleOfTick(t);
      seen.add(b.in(0x61) & 0x10);
    }
    expect([...seen].sort()).toEqual([0, 0x10]);
  });

  it('a new mode 2 count takes effect at the end of the current period', () => {
    const b = new Bench();
    b.out(0x43, 0x34);
    b.out(0x40, 100);
    b.out(0x40, 0);
    b.now = tick.cycleOfTick(1 + 30);
    b.out(0x40, 50);
    b.out(0x40, 0);
    const latched = (): number => {
      b.out(0x43, 0x00);
      return b.in(0x40) | (b.in(0x40) << 8);
    };
    b.now = tick.cycleOfTick(1 + 60);
    expect(latched()).toBe(40); // still the old period
    b.now = tick.cycleOfTick(1 + 100 + 10);
    expect(latched()).toBe(40); // the new count of 50, 10 ticks in
    b.now = tick.cycleOfTick(1 + 100 + 50 + 5);
    expect(latched()).toBe(45);
  });
});

describe('16550A UART (COM1)', () => {
  it('transmits to the serial output with THRE/TEMT set', () => {
    const b = new Bench();
    expect(b.in(0x3fd)).toBe(0x60);
    for (const c of 'hi') b.out(0x3f8, c.charCodeAt(0));
    expect(String.fromCharCode(...b.serial)).toBe('hi');
    expect(b.in(0x3fa)).toBe(0x01); // no interrupt pending, FIFOs off
  });

  it('loopback: THR comes back in RBR, MSR mirrors MCR, and nothing leaves', () => {
    const b = new Bench();
    b.out(0x3fc, 0x10 | 0x03); // loop, DTR, RTS
    expect(b.in(0x3fe) & 0xf0).toBe(0x30); // CTS, DSR
    b.out(0x3f8, 0x5a);
    expect(b.serial).toEqual([]);
    expect(b.in(0x3fd) & 0x01).toBe(1);
    expect(b.in(0x3f8)).toBe(0x5a);
    expect(b.in(0x3fd) & 0x01).toBe(0);
    b.out(0x3f8, 1);
    b.out(0x3f8, 2); // overrun without FIFOs
    expect(b.in(0x3fd) & 0x02).toBe(0x02);
    expect(b.in(0x3fd) & 0x02).toBe(0); // cleared by the read
  });

  it('divisor latch, scratch register, FIFO enable', () => {
    const b = new Bench();
    b.out(0x3fb, 0x80);
    b.out(0x3f8, 0x01);
    b.out(0x3f9, 0x00);
    b.out(0x3fb, 0x03);
    b.out(0x3fb, 0x83);
    expect(b.in(0x3f8) | (b.in(0x3f9) << 8)).toBe(1);
    b.out(0x3fb, 0x03);
    b.out(0x3ff, 0xa5);
    expect(b.in(0x3ff)).toBe(0xa5);
    b.out(0x3fa, 0xc7);
    expect(b.in(0x3fa) & 0xc0).toBe(0xc0);
  });

  it('THRE interrupt on IRQ4 gated by OUT2, cleared by reading IIR', () => {
    const b = new Bench();
    initPics(b);
    b.out(0x3f9, 0x02); // ETBEI
    expect(b.lines[4]).toBe(false); // OUT2 off
    b.out(0x3fc, 0x08);
    expect(b.lines[4]).toBe(true);
    expect(b.ack()).toBe(0x0c);
    expect(b.in(0x3fa)).toBe(0x02);
    expect(b.lines[4]).toBe(false);
    b.out(0x3f8, 0x41); // a new THRE interrupt after the byte leaves
    expect(b.lines[4]).toBe(true);
  });

  it('receives Env input paced by the character time, with receive interrupts', () => {
    const b = new Bench({ serialInput: new TextEncoder().encode('abc') });
    b.out(0x3fb, 0x83);
    b.out(0x3f8, 1); // 115200 baud: 10 bits = 8681 cycles at 100 MHz
    b.out(0x3f9, 0);
    b.out(0x3fb, 0x03);
    b.out(0x3fc, 0x08);
    b.out(0x3f9, 0x01); // ERBFI
    b.advance(1);
    expect(b.lines[4]).toBe(true);
    expect(b.in(0x3fa)).toBe(0x04);
    expect(b.in(0x3f8)).toBe(0x61);
    expect(b.lines[4]).toBe(false);
    b.advance(8680);
    expect(b.in(0x3fd) & 1).toBe(0);
    b.advance(8681 + 1);
    expect(b.in(0x3f8)).toBe(0x62);
    b.advance(3 * 8681);
    expect(b.in(0x3f8)).toBe(0x63);
    b.advance(10 * 8681);
    expect(b.in(0x3fd) & 1).toBe(0);
  });

  it('FIFO mode: trigger level, then the character timeout', () => {
    const b = new Bench({ serialInput: new TextEncoder().encode('xy') });
    b.out(0x3fb, 0x83);
    b.out(0x3f8, 1);
    b.out(0x3fb, 0x03);
    b.out(0x3fa, 0x41); // FIFO on, trigger 4
    b.out(0x3fc, 0x08);
    b.out(0x3f9, 0x01);
    b.advance(3 * 8681);
    expect(b.in(0x3fa)).toBe(0xc1); // two bytes, below the trigger, no timeout yet
    b.advance(2 * 8681 + 4 * 8681);
    expect(b.in(0x3fa)).toBe(0xcc); // character timeout
    expect(b.in(0x3f8)).toBe(0x78);
    expect(b.in(0x3f8)).toBe(0x79);
    expect(b.in(0x3fa)).toBe(0xc1);
  });
});

describe('CMOS RTC', () => {
  const rd = (b: Bench, reg: number): number => {
    b.out(0x70, reg);
    return b.in(0x71);
  };
  const wr = (b: Bench, reg: number, v: number): void => {
    b.out(0x70, reg);
    b.out(0x71, v);
  };

  it('starts at the Env wall clock (2000-01-01 00:00:00, a Saturday) in BCD, 24-hour', () => {
    const b = new Bench();
    expect([0, 2, 4, 6, 7, 8, 9, 0x32].map((r) => rd(b, r))).toEqual([0, 0, 0, 7, 1, 1, 0, 0x20]);
    expect(rd(b, 0x0a)).toBe(0x26);
    expect(rd(b, 0x0b)).toBe(0x02);
    expect(rd(b, 0x0d)).toBe(0x80);
    expect(b.in(0x70)).toBe(0xff);
  });

  it('advances with virtual time, carries into days, and shows binary / 12-hour per register B', () => {
    const b = new Bench();
    b.now = 1.5 * CPS;
    expect(rd(b, 0)).toBe(1);
    b.now = (59 + 3600 * 13) * CPS;
    expect(rd(b, 0)).toBe(0x59);
    expect(rd(b, 4)).toBe(0x13);
    wr(b, 0x0b, 0x04); // binary, 12-hour
    expect(rd(b, 0)).toBe(59);
    expect(rd(b, 4)).toBe(0x81); // 1 PM
    b.now = (86400 * 31 + 10) * CPS;
    wr(b, 0x0b, 0x02);
    expect([rd(b, 7), rd(b, 8), rd(b, 6)]).toEqual([1, 2, 3]); // 1 February, a Tuesday
  });

  it('UIP is set for the 2228 us before each update', () => {
    const b = new Bench();
    b.now = ms(500);
    expect(rd(b, 0x0a) & 0x80).toBe(0);
    b.now = ms(999);
    expect(rd(b, 0x0a) & 0x80).toBe(0x80);
    b.now = ms(997.6);
    expect(rd(b, 0x0a) & 0x80).toBe(0);
    b.now = ms(1000);
    expect(rd(b, 0x0a) & 0x80).toBe(0);
    expect(rd(b, 0)).toBe(1);
  });

  it('SET stops the clock and lets software set the time', () => {
    const b = new Bench();
    wr(b, 0x0b, 0x82);
    wr(b, 0x00, 0x30);
    wr(b, 0x04, 0x23);
    b.now = 5 * CPS;
    expect(rd(b, 0)).toBe(0x30);
    wr(b, 0x0b, 0x02);
    b.now = 7 * CPS;
    expect(rd(b, 0)).toBe(0x32);
    b.now = 7 * CPS + 30 * 60 * CPS;
    expect(rd(b, 4)).toBe(0x23);
  });

  it('periodic interrupt on IRQ8 at the register A rate; reading C acknowledges', () => {
    const b = new Bench();
    initPics(b);
    wr(b, 0x0b, 0x42); // PIE
    b.advance(ms(0.97));
    expect(b.lines[8]).toBe(false);
    b.advance(ms(1));
    expect(b.lines[8]).toBe(true);
    expect(b.ack()).toBe(0x70);
    expect(rd(b, 0x0c)).toBe(0xc0);
    expect(b.lines[8]).toBe(false);
    expect(rd(b, 0x0c)).toBe(0x00);
    b.advance(ms(100));
    expect(b.edges[8]).toBe(2); // latched until C is read: one edge since
  });

  it('update-ended and alarm interrupts', () => {
    const b = new Bench();
    wr(b, 0x0b, 0x12); // UIE
    b.advance(ms(999));
    expect(b.lines[8]).toBe(false);
    b.advance(ms(1000));
    // PF is set too (the 1024 Hz rate runs with PIE off) but does not interrupt.
    expect(rd(b, 0x0c)).toBe(0xd0);
    wr(b, 0x0b, 0x22); // AIE
    wr(b, 0x01, 0x05); // alarm at hh:mm:05, any hour and minute
    wr(b, 0x03, 0xc0);
    wr(b, 0x05, 0xff);
    b.advance(ms(4500));
    expect(b.lines[8]).toBe(false);
    b.advance(ms(5000));
    expect(b.lines[8]).toBe(true);
    expect(rd(b, 0x0c)).toBe(0xf0);
  });

  it('NMI-disable bit and NVRAM', () => {
    const b = new Bench();
    b.out(0x70, 0x80 | 0x40);
    expect(b.d.rtc.nmiEnabled).toBe(false);
    b.out(0x71, 0x5a);
    b.out(0x70, 0x40);
    expect(b.d.rtc.nmiEnabled).toBe(true);
    expect(b.in(0x71)).toBe(0x5a);
  });
});

describe('8042 keyboard controller and port 0x92', () => {
  it('self-test, command byte, output buffer status', () => {
    const b = new Bench();
    expect(b.in(0x64) & 0x01).toBe(0);
    b.out(0x64, 0xaa);
    expect(b.in(0x64) & 0x05).toBe(0x05); // OBF, system flag
    expect(b.in(0x60)).toBe(0x55);
    expect(b.in(0x64) & 0x01).toBe(0);
    b.out(0x64, 0x60);
    b.out(0x60, 0x45);
    b.out(0x64, 0x20);
    expect(b.in(0x60)).toBe(0x45);
  });

  it('keyboard replies raise IRQ1 byte by byte', () => {
    const b = new Bench();
    initPics(b);
    b.out(0x60, 0xff); // keyboard reset
    expect(b.lines[1]).toBe(true);
    expect(b.ack()).toBe(0x09);
    expect(b.in(0x60)).toBe(0xfa);
    b.out(0x20, 0x20);
    expect(b.ack()).toBe(0x09); // a fresh edge for the next byte
    expect(b.in(0x60)).toBe(0xaa);
    expect(b.lines[1]).toBe(false);
  });

  it('A20 through the output port (0xD1), 0xDD/0xDF and port 0x92; both read back', () => {
    const b = new Bench();
    b.out(0x64, 0xd1);
    b.out(0x60, 0xdd); // A20 off, reset line high
    expect(b.a20).toBe(false);
    expect(b.resets).toBe(0);
    b.out(0x64, 0xd0);
    expect(b.in(0x60) & 0x03).toBe(0x01);
    expect(b.in(0x92) & 0x02).toBe(0);
    b.out(0x92, 0x02);
    expect(b.a20).toBe(true);
    b.out(0x64, 0xd0);
    expect(b.in(0x60) & 0x02).toBe(0x02);
    b.out(0x64, 0xdd);
    expect(b.a20).toBe(false);
    b.out(0x64, 0xdf);
    expect(b.a20).toBe(true);
  });

  it('resets the system by the 0xFE pulse, output port bit 0 and port 0x92 bit 0', () => {
    const b = new Bench();
    b.out(0x64, 0xff); // pulses nothing
    expect(b.resets).toBe(0);
    b.out(0x64, 0xfe);
    expect(b.resets).toBe(1);
    b.out(0x64, 0xd1);
    b.out(0x60, 0x02);
    expect(b.resets).toBe(2);
    b.out(0x92, 0x03);
    expect(b.resets).toBe(3);
    b.out(0x92, 0x03); // no new rising edge
    expect(b.resets).toBe(3);
  });
});

describe('local APIC', () => {
  it('power-up registers', () => {
    const b = new Bench();
    expect(b.apicRead(0x30)).toBe(APIC_VERSION);
    expect(b.apicRead(0xf0)).toBe(0xff);
    expect(b.apicRead(0xe0)).toBe(0xffffffff);
    expect(b.apicRead(0x350)).toBe(0x10000);
    expect(b.d.apic.baseMsr).toBe(APIC_BASE_MSR_RESET >>> 0);
  });

  it('passes the PIC through when disabled or in virtual-wire mode, and cuts it off otherwise', () => {
    const b = new Bench();
    initPics(b);
    b.d.pic.setIrq(1, true);
    expect(b.intr).toBe(true); // software-disabled APIC
    b.apicWrite(0xf0, 0x1ff); // enable: LINT0 is still masked
    expect(b.intr).toBe(false);
    b.apicWrite(0x350, 0x700); // LINT0 ExtINT
    expect(b.intr).toBe(true);
    expect(b.ack()).toBe(0x09);
    b.out(0x20, 0x20);
    b.d.pic.setIrq(1, false);
    b.d.pic.setIrq(1, true);
    b.apicWrite(0x350, 0x10700);
    expect(b.intr).toBe(false);
    b.d.apic.setBaseMsr(0); // globally disabled: the pins go straight through
    expect(b.intr).toBe(true);
    expect(b.apicRead(0x30)).toBe(0xffffffff);
  });

  it('one-shot timer: counts down at the divided rate, interrupts once, EOI', () => {
    const b = new Bench();
    b.apicWrite(0xf0, 0x1ff);
    b.apicWrite(0x3e0, 0x0); // divide by 2
    b.apicWrite(0x320, 0x40);
    b.apicWrite(0x380, 1000);
    b.advance(500);
    expect(b.apicRead(0x390)).toBe(750);
    b.advance(1999);
    expect(b.intr).toBe(false);
    b.advance(2000);
    expect(b.intr).toBe(true);
    expect(b.apicRead(0x390)).toBe(0);
    expect(b.apicRead(0x200 + 0x20)).toBe(1); // IRR bit 0x40
    expect(b.ack()).toBe(0x40);
    expect(b.apicRead(0x100 + 0x20)).toBe(1);
    expect(b.apicRead(0xa0)).toBe(0x40); // PPR
    b.apicWrite(0xb0, 0);
    expect(b.apicRead(0x100 + 0x20)).toBe(0);
    b.advance(100000);
    expect(b.intr).toBe(false);
  });

  it('periodic timer and TPR', () => {
    const b = new Bench();
    b.apicWrite(0xf0, 0x1ff);
    b.apicWrite(0x3e0, 0xb); // divide by 1
    b.apicWrite(0x320, 0x20000 | 0x51);
    b.apicWrite(0x380, 300);
    let n = 0;
    for (let t = 0; t <= 3000; t += 10) {
      b.advance(t);
      if (b.intr) {
        expect(b.ack()).toBe(0x51);
        b.apicWrite(0xb0, 0);
        n++;
      }
    }
    expect(n).toBe(10);
    expect(b.apicRead(0x390)).toBe(300);
    b.apicWrite(0x80, 0x50); // TPR class 5 blocks vector 0x51
    b.advance(3300);
    expect(b.intr).toBe(false);
    b.apicWrite(0x80, 0x40);
    expect(b.intr).toBe(true);
    b.apicWrite(0x320, 0x10000 | 0x20000 | 0x51); // masking does not withdraw the request
    b.apicWrite(0x80, 0);
    expect(b.ack()).toBe(0x51);
  });

  it('self IPIs, illegal vectors in ESR, and the error LVT', () => {
    const b = new Bench();
    b.apicWrite(0xf0, 0x1ff);
    b.apicWrite(0x300, 0x40000 | 0x66); // fixed, self
    expect(b.ack()).toBe(0x66);
    b.apicWrite(0xb0, 0);
    b.apicWrite(0x370, 0xee); // error LVT
    b.apicWrite(0x300, 0x40000 | 0x05); // illegal vector
    b.apicWrite(0x280, 0);
    expect(b.apicRead(0x280)).toBe(0x20);
    expect(b.ack()).toBe(0xee);
    b.apicWrite(0x300, 0x40000 | 0x400); // NMI to self
    expect(b.nmis).toBe(1);
    expect(b.ack()).toBe(0xff); // nothing pending: the spurious vector
  });
});

describe('debug ports', () => {
  it('0xE9 console, POST codes, isa-debug-exit and the Bochs shutdown string', () => {
    const b = new Bench();
    expect(b.in(0xe9)).toBe(0xe9);
    b.out(0xe9, 0x41);
    b.out(0x80, 0x12);
    b.out(0x190, 0x34);
    b.out(0x80, 0x56);
    expect(b.debug).toEqual([0x41]);
    expect(b.post).toEqual([0x12, 0x34, 0x56]);
    b.out(0xf4, 0x10);
    expect(b.stops).toEqual([['exit', 0x21]]);
    for (const c of 'ShutShutdown') b.out(0x8900, c.charCodeAt(0));
    expect(b.stops[1]).toEqual(['poweroff', undefined]);
  });
});

describe('device snapshots', () => {
  it('restore(save()) brings back the PIT, PIC and RTC exactly', () => {
    const b = new Bench();
    initPics(b);
    b.out(0x43, 0x34);
    b.out(0x40, 0x00);
    b.out(0x40, 0x10);
    b.advance(ms(3));
    const saved = b.d.devices.map((d) => d.save?.());
    const now = b.now;
    const probe = (): number[] => {
      b.out(0x43, 0x00);
      return [b.in(0x40), b.in(0x40), b.in(0x20), b.edges[0]!];
    };
    b.advance(ms(7));
    const later = probe();
    b.d.devices.forEach((d, i) => d.restore?.(saved[i]));
    b.now = now;
    b.edges[0] = 0;
    b.advance(ms(7));
    const again = probe();
    expect(again.slice(0, 3)).toEqual(later.slice(0, 3));
  });
});

// ---- guests on the whole machine ----

/**
 * 32-bit flat guests (flat loader at GUEST_AT): a prelude that builds an IDT whose every gate
 * goes to `unexpected` (prints "unexpected", exit 0x7f), remaps the 8259 pair to 0x20/0x28 with
 * everything masked, and offers set_gate (EAX handler, EBX vector), puts (ESI), putdec (EAX)
 * and exit (AL).
 */
const GUEST_AT = 0x200000;
const PRELUDE = `
start:
    mov edi, 0x80000
    xor ebx, ebx
.fill:
    mov eax, unexpected
    call set_gate
    inc ebx
    cmp ebx, 256
    jb .fill
    lidt [idtr]
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01
    out 0x21, al
    out 0xa1, al
    mov al, 0xff
    out 0x21, al
    out 0xa1, al
    jmp main

set_gate:                   ; EBX vector, EAX handler
    mov edx, eax
    and edx, 0xffff
    or edx, 0x80000         ; selector 0x08
    mov [0x80000 + ebx * 8], edx
    mov edx, eax
    and edx, 0xffff0000
    or edx, 0x8e00          ; present, DPL 0, 32-bit interrupt gate
    mov [0x80000 + ebx * 8 + 4], edx
    ret

puts:
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    jmp puts
.done:
    ret

putdec:                     ; EAX unsigned
    mov ecx, 10
    mov edi, numbuf + 11
    mov byte [edi], 0
.digit:
    xor edx, edx
    div ecx
    add dl, '0'
    dec edi
    mov [edi], dl
    test eax, eax
    jnz .digit
    mov esi, edi
    jmp puts

exit:
    out 0xf4, al
    cli
    hlt

unexpected:
    mov esi, unexpected_msg
    call puts
    mov al, 0x7f
    jmp exit

idtr: dw 256 * 8 - 1
      dd 0x80000
unexpected_msg: db "unexpected", 10, 0
numbuf: times 12 db 0
`;

function runGuest(body: string, opts: { load?: 'flat' | 'bios'; maxInsns?: number; source?: string; env?: Env } = {}) {
  const m = createMachine({ memMiB: 16, ...(opts.env ? { env: opts.env } : {}) });
  if (opts.load === 'bios') m.load(asm(opts.source!, 16, 0), 'bios');
  else m.load(asm(PRELUDE + body, 32, GUEST_AT), 'flat', { at: GUEST_AT });
  const r = m.run({ maxInsns: opts.maxInsns ?? 1_000_000 });
  return { m, r };
}

describe.runIf(hasNasm())('guests on the machine', () => {
  it('PIT mode 2 through the 8259 in protected mode: 10 ticks take 10 periods of virtual time', () => {
    const { m, r } = runGuest(`
main:
    mov ebx, 0x20
    mov eax, irq0
    call set_gate
    mov al, 0xfe
    out 0x21, al
    mov al, 0x34
    out 0x43, al
    mov ax, 11932           ; 100 Hz
    out 0x40, al
    mov al, ah
    out 0x40, al
    sti
.wait:
    hlt
    cmp dword [count], 11
    jb .wait
    cli
    mov eax, [count]
    call putdec
    mov al, 0
    jmp exit
irq0:
    inc dword [count]
    push eax
    mov al, 0x20
    out 0x20, al
    pop eax
    iret
count: dd 0`);
    expect(r.debugOutput).toBe('11');
    expect(r.stop).toBe('exit');
    // The first interrupt is the edge of programming mode 2; ten periods of 11932 PIT ticks follow.
    const tenPeriods = (10 * 11932 * CPS) / PIT_HZ;
    expect(m.cpu.cycles).toBeGreaterThan(tenPeriods);
    expect(m.cpu.cycles).toBeLessThan(tenPeriods + 20_000);
  });

  it('local APIC periodic timer with EOI, and TPR/ESR through MMIO', () => {
    const { m, r } = runGuest(`
main:
    mov ebx, 0x40
    mov eax, tick
    call set_gate
    mov ebx, 0xff
    mov eax, spurious
    call set_gate
    mov dword [0xfee000f0], 0x1ff           ; SVR: enable, spurious vector 0xFF
    mov dword [0xfee003e0], 0x3             ; divide by 16
    mov dword [0xfee00320], 0x20040         ; periodic, vector 0x40
    mov dword [0xfee00380], 2000            ; 32000 cycles per period
    sti
.wait:
    hlt
    cmp dword [count], 5
    jb .wait
    mov dword [0xfee00080], 0x40            ; TPR: vector 0x40 is blocked now
    mov ecx, 100000                         ; three periods pass
.spin:
    loop .spin
    mov eax, [0xfee00200 + 0x20]            ; IRR bit 0x40 is pending
    call putdec
    mov dword [0xfee00080], 0
    cli
    mov eax, [count]
    call putdec
    mov al, 0
    jmp exit
tick:
    inc dword [count]
    mov dword [0xfee000b0], 0               ; EOI
    iret
spurious:
    iret
count: dd 0`, { maxInsns: 10_000_000 });
    expect(r.debugOutput).toBe('16');
    expect(r.stop).toBe('exit');
    expect(m.cpu.cycles).toBeGreaterThan(5 * 32000 + 100000);
  });

  it('RTC periodic interrupts on IRQ8 through the slave, and the Env date in BCD', () => {
    const { r } = runGuest(`
main:
    mov ebx, 0x28
    mov eax, irq8
    call set_gate
    mov al, 0xfb            ; master: IRQ2 (cascade)
    out 0x21, al
    mov al, 0xfe            ; slave: IRQ8
    out 0xa1, al
    mov al, 0x0b
    out 0x70, al
    mov al, 0x42            ; PIE, 24-hour, BCD
    out 0x71, al
    sti
.wait:
    hlt
    cmp dword [count], 8
    jb .wait
    cli
    mov eax, [count]
    call putdec
    mov al, ' '
    out 0xe9, al
    mov al, 0x32            ; century, year, month, day as BCD -> decimal digits
    call cmos
    mov al, 0x09
    call cmos
    mov al, 0x08
    call cmos
    mov al, 0x07
    call cmos
    mov al, 0
    jmp exit
cmos:
    out 0x70, al
    in al, 0x71
    movzx eax, al
    mov ebx, eax
    shr eax, 4
    add al, '0'
    out 0xe9, al
    mov al, bl
    and al, 0x0f
    add al, '0'
    out 0xe9, al
    ret
irq8:
    push eax
    inc dword [count]
    mov al, 0x0c            ; read register C: acknowledges the RTC
    out 0x70, al
    in al, 0x71
    mov al, 0x20
    out 0xa0, al
    out 0x20, al
    pop eax
    iret
count: dd 0`);
    expect(r.debugOutput).toBe('8 20000101');
  });

  it('COM1 transmits a string from its THR-empty interrupt (IRQ4)', () => {
    const { r } = runGuest(`
main:
    mov ebx, 0x24
    mov eax, irq4
    call set_gate
    mov al, 0xef
    out 0x21, al
    mov dx, 0x3fc
    mov al, 0x08            ; OUT2: the IRQ reaches the PIC
    out dx, al
    mov dx, 0x3f9
    mov al, 0x02            ; ETBEI: THR is empty, so it interrupts at once
    out dx, al
.wait:
    cli                     ; test and sleep atomically: STI's shadow covers the HLT
    cmp byte [done], 0
    jne .out
    sti
    hlt
    jmp .wait
.out:
    mov al, 0
    jmp exit
irq4:
    pusha
    mov dx, 0x3fa
    in al, dx               ; IIR: THR empty (clears it)
    cmp al, 0x02
    jne .eoi
    mov esi, [next]
    lodsb
    test al, al
    jz .finished
    mov [next], esi
    mov dx, 0x3f8
    out dx, al
    jmp .eoi
.finished:
    mov dx, 0x3f9
    xor al, al
    out dx, al
    mov byte [done], 1
.eoi:
    mov al, 0x20
    out 0x20, al
    popa
    iret
next: dd text
done: db 0
text: db "interrupt-driven", 10, 0`);
    expect(r.serialOutput).toBe('interrupt-driven\n');
    expect(r.stop).toBe('exit');
  });

  it('PIT channel 2 one-shot polled through port 0x61 (TSC calibration style) takes 1 ms of virtual time', () => {
    const { r } = runGuest(`
main:
    in al, 0x61
    and al, 0xfc            ; gate low, speaker off
    out 0x61, al
    mov al, 0xb0            ; channel 2, LSB/MSB, mode 0
    out 0x43, al
    mov al, 1193 & 0xff     ; 1 ms
    out 0x42, al
    mov al, 1193 >> 8
    out 0x42, al
    rdtsc
    mov esi, eax
    in al, 0x61
    or al, 0x01             ; gate high: counting starts
    out 0x61, al
.poll:
    in al, 0x61
    test al, 0x20           ; OUT2
    jz .poll
    rdtsc
    sub eax, esi
    call putdec
    mov al, 0
    jmp exit`);
    // 1193 PIT ticks = 99 985 cycles at 100 MHz (the TSC runs at the cycle rate), give or
    // take the load tick and the polling loop's granularity.
    expect(r.stop).toBe('exit');
    const cycles = Number(r.debugOutput);
    expect(cycles).toBeGreaterThan(99_985);
    expect(cycles).toBeLessThan(99_985 + 200);
  });

  it('COM1 receives the Env\'s serial input, polled through LSR', () => {
    const env = new DeterministicEnv({ serialInput: new TextEncoder().encode('echo me\n') });
    const { r } = runGuest(`
main:
    mov dx, 0x3fb
    mov al, 0x83            ; DLAB, 8N1
    out dx, al
    mov dx, 0x3f8
    mov al, 1               ; divisor 1: 115200 baud
    out dx, al
    mov dx, 0x3fb
    mov al, 0x03
    out dx, al
    mov dx, 0x3fd
.wait:
    in al, dx
    test al, 0x01           ; DR
    jz .wait
    mov dx, 0x3f8
    in al, dx
    out 0xe9, al
    cmp al, 10
    mov dx, 0x3fd
    jne .wait
    mov al, 0
    jmp exit`, { env });
    expect(r.debugOutput).toBe('echo me\n');
  });

  it('A20 through the 8042 output port and port 0x92', () => {
    const { r } = runGuest(`
main:
    mov byte [0x400000], 0x11
    mov byte [0x500000], 0x22
    call kbc_wait
    mov al, 0xd1            ; write output port
    out 0x64, al
    call kbc_wait
    mov al, 0xdd            ; A20 off (bit 1 clear), no reset (bit 0 set)
    out 0x60, al
    call kbc_wait
    mov al, [0x500000]      ; aliases 0x400000 now
    call hex
    in al, 0x92
    call hex
    mov al, 0x02            ; fast A20 on
    out 0x92, al
    mov al, [0x500000]
    call hex
    mov al, 0
    jmp exit
kbc_wait:
    in al, 0x64
    test al, 0x02
    jnz kbc_wait
    ret
hex:
    movzx eax, al
    call putdec
    mov al, ' '
    out 0xe9, al
    ret`);
    expect(r.debugOutput).toBe('17 0 34 ');
  });

  it('the 8042 reset pulse restarts the CPU at the reset vector; CMOS NVRAM survives it', () => {
    const { r } = runGuest('', {
      load: 'bios',
      source: `
start:
    cli
    mov al, 0x40
    out 0x70, al
    in al, 0x71
    inc al
    mov ah, al
    mov al, 0x40
    out 0x70, al
    mov al, ah
    out 0x71, al
    add al, '0'
    out 0xe9, al
    cmp ah, 3
    je .done
    mov al, 0xfe            ; pulse RESET
    out 0x64, al
.hang:
    hlt
    jmp .hang
.done:
    mov al, 0x10
    out 0xf4, al
    times 0xfff0 - ($ - $$) db 0xff
    jmp 0xf000:start
    times 0x10000 - ($ - $$) db 0xff`,
    });
    expect(r.debugOutput).toBe('123');
    expect(r.exitCode).toBe(0x21);
  });

  it('a machine snapshot taken between timer ticks replays the rest of the corpus timer guest exactly', () => {
    const rom = new Uint8Array(readFileSync(new URL('../corpus/timer/timer-bios.rom', import.meta.url)));
    const m = createMachine({ memMiB: 16 });
    m.load(rom, 'bios');
    m.run({ maxInsns: 200 }); // PIT running, a few ticks counted
    const snap = m.snapshot();
    const icount = m.cpu.icount, cycles = m.cpu.cycles;
    const first = m.run();
    const end = [m.cpu.icount, m.cpu.cycles];
    m.restore(snap);
    expect([m.cpu.icount, m.cpu.cycles]).toEqual([icount, cycles]);
    const again = m.run();
    expect([m.cpu.icount, m.cpu.cycles]).toEqual(end);
    expect(again.stop).toBe('exit');
    expect(again.instructions).toBe(first.instructions);
    // Outputs accumulate over the machine's life: the replay printed the same line again.
    expect(again.debugOutput).toBe('timer: 10 ticks\ntimer: 10 ticks\n');
  });
});
