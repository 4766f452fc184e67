// The machine core: physical memory semantics (RAM, ROM, MMIO, unmapped), copy-on-write
// snapshots, the port bus, the deterministic Env, and the run loop's stops (budget exactness,
// isa-debug-exit, HLT, triple fault, idle skipping to a device deadline) and machine snapshots.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { PF_SLOW, PF_TRACK, PhysicalMemory } from '../src/machine/memory.js';
import { IoBus } from '../src/machine/iobus.js';
import { DETERMINISTIC_EPOCH_MS, DeterministicEnv, LiveEnv } from '../src/machine/env.js';
import type { AccessSize, Device, DeviceSet, MachineContext } from '../src/machine/device.js';
import { createMachine, IDLE_LIMIT_SECONDS } from '../src/machine/machine.js';

const MiB = 1024 * 1024;
const SEED = 0x5eed_c0de;

/** A write as the CPU does it: straight to RAM when the page's flags are clear, else writeSlow. */
function cpuWrite(mem: PhysicalMemory, addr: number, size: AccessSize, v: number): void {
  if (mem.pageFlags[addr >>> 12] !== 0) mem.writeSlow(addr, size, v);
  else if (size === 1) mem.ram[addr] = v;
  else if (size === 2) mem.view.setUint16(addr, v, true);
  else mem.view.setInt32(addr, v, true);
}

function recorder(name: string, extra: Partial<Device> = {}): Device & { log: string[] } {
  const log: string[] = [];
  return {
    name,
    log,
    mmioRead: (off, size) => {
      log.push(`r${size}@${off.toString(16)}`);
      return 0x1234_5678 & (size === 4 ? -1 : size === 2 ? 0xffff : 0xff);
    },
    mmioWrite: (off, size, v) => void log.push(`w${size}@${off.toString(16)}=${(v >>> 0).toString(16)}`),
    ...extra,
  };
}

describe('PhysicalMemory', () => {
  it('is plain RAM below its size and unmapped above: reads all-ones, writes ignored', () => {
    const mem = new PhysicalMemory(2 * MiB);
    expect(mem.pageFlags[0]).toBe(0);
    expect(mem.pageFlags[(2 * MiB >>> 12) - 1]).toBe(0);
    expect(mem.pageFlags[2 * MiB >>> 12]! & PF_SLOW).toBe(PF_SLOW);
    expect(mem.pageFlags[0xfffff]! & PF_SLOW).toBe(PF_SLOW);
    expect(mem.readSlow(2 * MiB, 1)).toBe(0xff);
    expect(mem.readSlow(0x8000_0000, 2)).toBe(0xffff);
    expect(mem.readSlow(0xffff_fffc, 4) | 0).toBe(-1);
    mem.writeSlow(2 * MiB + 8, 4, 0x1234);
    expect(mem.readSlow(2 * MiB + 8, 4) | 0).toBe(-1);
    // readSlow/writeSlow on RAM pages behave as RAM (the CPU calls them for flagged RAM pages).
    mem.writeSlow(0x1ffe, 2, 0xbeef);
    expect(mem.ram[0x1ffe]).toBe(0xef);
    expect(mem.readSlow(0x1ffe, 2)).toBe(0xbeef);
  });

  it('rejects sizes that are not whole pages', () => {
    expect(() => new PhysicalMemory(1000)).toThrow(RangeError);
    expect(() => new PhysicalMemory(0)).toThrow(RangeError);
  });

  it('maps ROM read-only, over RAM and above it, as slow pages', () => {
    const mem = new PhysicalMemory(4 * MiB);
    const rom = new Uint8Array(0x2000).map((_, k) => k & 0xff);
    mem.ram[0xfe000] = 0x55;
    mem.mapRom(0xfe000, rom);
    mem.mapRom(0xffffe000, rom);
    for (const base of [0xfe000, 0xffffe000]) {
      expect(mem.pageFlags[base >>> 12]! & PF_SLOW).toBe(PF_SLOW);
      expect(mem.readSlow(base, 1)).toBe(0);
      expect(mem.readSlow(base + 0x1ffc, 4)).toBe(0xfffefdfc | 0);
      expect(mem.readSlow(base + 0x102, 2)).toBe(0x0302);
      mem.writeSlow(base + 4, 4, 0);
      expect(mem.readSlow(base + 4, 4)).toBe(0x07060504);
    }
    expect(mem.ram[0xfe000]).toBe(0x55); // the RAM under the ROM is untouched
    expect(() => mem.mapRom(0xff000, new Uint8Array(0x1000))).toThrow(/overlaps/);
    expect(() => mem.mapRom(0x800, new Uint8Array(0x1000))).toThrow(RangeError);
  });

  it('dispatches MMIO ranges to their device with the offset and size', () => {
    const mem = new PhysicalMemory(MiB);
    const dev = recorder('apic', { mmio: { base: 0xfee00000, length: 0x400 } });
    mem.mapMmio(dev);
    expect(mem.readSlow(0xfee00020, 4)).toBe(0x12345678);
    expect(mem.readSlow(0xfee00030, 1)).toBe(0x78);
    mem.writeSlow(0xfee000b0, 4, 0xdeadbeef);
    // Past `length` but inside the mapped page: nothing answers.
    expect(mem.readSlow(0xfee00800, 2)).toBe(0xffff);
    mem.writeSlow(0xfee00800, 2, 1);
    expect(dev.log).toEqual(['r4@20', 'r1@30', 'w4@b0=deadbeef']);
  });

  it('restores RAM bit-exactly after copy-on-write snapshots (property, seed printed)', () => {
    console.log(`COW property seed ${SEED}`);
    const mem = new PhysicalMemory(MiB);
    const writes = fc.array(fc.record({
      addr: fc.integer({ min: 0, max: MiB - 4 }),
      size: fc.constantFrom<AccessSize>(1, 2, 4),
      value: fc.integer(),
    }), { maxLength: 60 });
    fc.assert(fc.property(writes, writes, (before, after) => {
      for (const w of before) cpuWrite(mem, w.addr & ~(w.size - 1), w.size, w.value);
      const baseline = mem.ram.slice();
      const id = mem.snapshot();
      for (let round = 0; round < 2; round++) {
        for (const w of after) cpuWrite(mem, w.addr & ~(w.size - 1), w.size, w.value);
        mem.restore(id);
        if (!Buffer.from(mem.ram).equals(Buffer.from(baseline))) return false;
        // Every RAM page is tracked again, so the next round is caught too.
        if (mem.pageFlags.subarray(0, MiB >>> 12).some((f) => (f & PF_TRACK) === 0)) return false;
      }
      return mem.dirtyPages === 0;
    }), { seed: SEED, numRuns: 200 });
  });

  it('copies only written pages, refuses a superseded snapshot, and is fast', () => {
    const mem = new PhysicalMemory(64 * MiB);
    const first = mem.snapshot();
    cpuWrite(mem, 0x5000, 4, 1);
    cpuWrite(mem, 0x5004, 4, 2); // same page: copied once
    cpuWrite(mem, 0x100000, 1, 3);
    expect(mem.dirtyPages).toBe(2);
    const second = mem.snapshot();
    expect(() => mem.restore(first)).toThrow(/not the current/);
    // A small guest: touches 16 pages between restores.
    const n = 2000;
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      for (let p = 0; p < 16; p++) cpuWrite(mem, 0x100000 + p * 4096 + (k & 0xffc), 4, k);
      mem.restore(second);
    }
    const perSecond = n / ((performance.now() - t0) / 1000);
    console.log(`memory: ${perSecond.toFixed(0)} write-16-pages + restore cycles per second (64 MiB RAM)`);
    expect(mem.view.getUint32(0x5000, true)).toBe(1);
    expect(mem.ram[0x100000]).toBe(3);
    expect(perSecond).toBeGreaterThan(1000);
  });
});

describe('IoBus', () => {
  it('routes ports to their device, reads all-ones where nothing answers, reports accesses', () => {
    const bus = new IoBus();
    const writes: number[] = [];
    bus.attach({ name: 'a', ports: [0x60, 0x64], ioRead: (p) => p, ioWrite: (_p, _s, v) => void writes.push(v) });
    const seen: string[] = [];
    bus.observer = (port, size, value, write) => void seen.push(`${write ? 'out' : 'in'} ${port.toString(16)}/${size}=${value}`);
    expect(bus.read(0x64, 1)).toBe(0x64);
    expect(bus.read(0x61, 1)).toBe(0xff);
    expect(bus.read(0x1234, 2)).toBe(0xffff);
    expect(bus.read(0x1234, 4)).toBe(-1);
    bus.write(0x60, 1, 7);
    bus.write(0x61, 1, 8);
    expect(writes).toEqual([7]);
    expect(seen).toEqual(['in 64/1=100', 'in 61/1=255', 'in 1234/2=65535', 'in 1234/4=-1', 'out 60/1=7', 'out 61/1=8']);
    expect(() => bus.attach({ name: 'b', ports: [0x64] })).toThrow(/claimed by both a and b/);
  });
});

describe('DeterministicEnv', () => {
  it('answers as a function of virtual time', () => {
    const a = new DeterministicEnv({ serialInput: new Uint8Array([1, 2]) });
    const b = new DeterministicEnv({ serialInput: new Uint8Array([1, 2]) });
    expect(a.wallClockMs(0)).toBe(DETERMINISTIC_EPOCH_MS);
    expect(new Date(a.wallClockMs(a.cyclesPerSecond * 90)).toISOString()).toBe('2000-01-01T00:01:30.000Z');
    expect(a.tsc(12345)).toBe(12345);
    expect([a.entropy(), a.entropy()]).toEqual([b.entropy(), b.entropy()]);
    expect([a.serialInput(0), a.serialInput(0), a.serialInput(0)]).toEqual([1, 2, null]);
  });
});

describe('LiveEnv', () => {
  it('answers from the host: TSC non-decreasing, wall clock now, 32-bit entropy', () => {
    const env = new LiveEnv();
    const t1 = env.tsc(0), t2 = env.tsc(0);
    expect(t2).toBeGreaterThanOrEqual(t1);
    expect(Math.abs(env.wallClockMs(0) - Date.now())).toBeLessThan(1000);
    const e = Array.from({ length: 64 }, () => env.entropy());
    expect(e.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)).toBe(true);
    expect(new Set(e).size).toBeGreaterThan(60);
    env.dispose();
  });
});

// ---- Running guests: flat images of hand-assembled 32-bit code at 0x100000 ----

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

function runFlat(code: number[] | Uint8Array, maxInsns?: number, createDevices?: (ctx: MachineContext) => DeviceSet) {
  const m = createMachine({ memMiB: 4, ...(createDevices ? { createDevices } : {}) });
  m.load(Uint8Array.from(code), 'flat');
  return { m, r: m.run(maxInsns === undefined ? {} : { maxInsns }) };
}

describe('Machine.run', () => {
  it('stops at the instruction budget exactly', () => {
    // loop: inc eax; jmp loop
    for (const budget of [1, 2, 7, 1000, 123457]) {
      const { m, r } = runFlat([0x40, 0xeb, 0xfd], budget);
      expect(r.stop).toBe('budget');
      expect(r.instructions).toBe(budget);
      expect(m.cpu.regs[0]).toBe(Math.ceil(budget / 2));
    }
  });

  it('counts a REP string instruction once, so the budget stays exact across its iterations', () => {
    // loop: mov ecx, 37; mov esi, 0x200000; mov edi, 0x300000; rep movsb; jmp loop
    const code = [0xb9, ...le32(37), 0xbe, ...le32(0x200000), 0xbf, ...le32(0x300000), 0xf3, 0xa4, 0xeb, 0xed];
    for (const budget of [4, 5, 6, 23, 1001]) {
      const { m, r } = runFlat(code, budget);
      expect(r.instructions).toBe(budget);
      expect(m.cpu.icount).toBe(budget);
      // Virtual time also counts the iterations: 36 more cycles per completed REP MOVSB (the
      // 4th instruction of each 5).
      expect(m.cpu.cycles).toBe(budget + 36 * Math.floor((budget + 1) / 5));
    }
  });

  it('stops on isa-debug-exit with status (value << 1) | 1', () => {
    // mov al, 5; out 0xf4, al; jmp $
    const { r } = runFlat([0xb0, 0x05, 0xe6, 0xf4, 0xeb, 0xfe], 1000);
    expect(r.stop).toBe('exit');
    expect(r.exitCode).toBe(11);
    expect(r.instructions).toBe(2);
  });

  it('collects port 0xE9 output and stops on HLT with IF=0', () => {
    // mov al, 'k'; out 0xe9, al; cli; hlt
    const { r } = runFlat([0xb0, 0x6b, 0xe6, 0xe9, 0xfa, 0xf4], 1000);
    expect(r).toMatchObject({ stop: 'hlt', debugOutput: 'k', exitCode: null, instructions: 4 });
  });

  it('stops on a triple fault (an IDT too small for any vector)', () => {
    // lidt [0x100010]; ud2; (0x100010: limit 0, base 0)
    const code = [0x0f, 0x01, 0x1d, ...le32(0x100010), 0x0f, 0x0b];
    while (code.length < 0x10) code.push(0x90);
    code.push(0, 0, 0, 0, 0, 0);
    const { r } = runFlat(code, 1000);
    expect(r.stop).toBe('shutdown');
  });

  it('skips idle time to the next device deadline and takes the interrupt', () => {
    // A one-shot timer at cycle 50000 into a fake interrupt controller delivering vector 0x20.
    let fired = false;
    let intr = false;
    const devices = (ctx: MachineContext): DeviceSet => ({
      devices: [
        { name: 'timer', nextDeadline: () => (fired ? Infinity : 50_000), tick: () => { fired = true; ctx.raiseIrq(0); } },
        { name: 'exit', ports: [0xf4], ioWrite: (_p, _s, v) => ctx.requestStop('exit', ((v & 0xff) << 1) | 1) },
      ],
      interruptController: {
        setIrq: (_line, level) => { intr = level; ctx.setIntr(level); },
        acknowledge: () => { ctx.setIntr(false); return intr ? 0x20 : 0x27; },
      },
    });
    // lidt [0x100020]; sti; hlt; jmp $; handler (0x10000b): mov al, 0x21; out 0xf4, al; jmp $
    const handler = 0x10000b;
    const code = new Uint8Array(0x208);
    code.set([0x0f, 0x01, 0x1d, ...le32(0x100020), 0xfb, 0xf4, 0xeb, 0xfe, 0xb0, 0x21, 0xe6, 0xf4, 0xeb, 0xfe]);
    code.set([0x07, 0x01, ...le32(0x100100)], 0x20); // IDTR: limit 8 * 0x21 - 1, base 0x100100
    // IDT entry 0x20: a 32-bit interrupt gate to CS 0x08:handler.
    code.set([handler & 0xff, (handler >>> 8) & 0xff, 0x08, 0x00, 0x00, 0x8e, (handler >>> 16) & 0xff, handler >>> 24], 0x100 + 0x20 * 8);
    const { m, r } = runFlat(code, 1000, devices);
    expect(r.stop).toBe('exit');
    expect(r.exitCode).toBe(0x43);
    expect(r.instructions).toBe(5);
    expect(m.cpu.cycles).toBeGreaterThanOrEqual(50_000);
  });

  it('re-reads deadlines when one device\'s tick moves another\'s', () => {
    let aDue = Infinity, bDue = 1000, aTickedAt = -1;
    const devices = (ctx: MachineContext): DeviceSet => ({
      devices: [
        { name: 'a', nextDeadline: () => aDue, tick: (now) => { aTickedAt = now; aDue = Infinity; ctx.requestStop('exit', 1); } },
        { name: 'b', nextDeadline: () => bDue, tick: (now) => { bDue = Infinity; aDue = now + 5; ctx.deadlineChanged(); } },
      ],
      interruptController: { setIrq() {}, acknowledge: () => 0xff },
    });
    const { r } = runFlat([0xeb, 0xfe], 100_000, devices); // jmp $
    expect(r.stop).toBe('exit');
    expect(aTickedAt).toBe(1005);
  });

  it('stops on HLT with IF=1 when nothing can ever raise an interrupt', () => {
    // sti; hlt
    const { r } = runFlat([0xfb, 0xf4], 1000, () => ({ devices: [], interruptController: { setIrq() {}, acknowledge: () => 0xff } }));
    expect(r.stop).toBe('hlt');
  });

  it('stops a CPU halted with IF=1 whose timer never interrupts after the idle limit', () => {
    let next = 1_000_000;
    const ticking = (): DeviceSet => ({
      devices: [{ name: 'masked timer', nextDeadline: () => next, tick: (now) => { next = now + 1_000_000; } }],
      interruptController: { setIrq() {}, acknowledge: () => 0xff },
    });
    const { m, r } = runFlat([0xfb, 0xf4], 1000, ticking);
    expect(r.stop).toBe('hlt');
    expect(m.cpu.cycles).toBeGreaterThan(IDLE_LIMIT_SECONDS * m.env.cyclesPerSecond);
  });

  it('tells the local APIC of WRMSR to IA32_APIC_BASE', () => {
    const seen: number[] = [];
    const withApic = (): DeviceSet => ({
      devices: [],
      interruptController: { setIrq() {}, acknowledge: () => 0xff },
      apic: { setBaseMsr: (v) => void seen.push(v >>> 0) },
    });
    // mov ecx, 0x1b; rdmsr; and ah, 0xf7 (clear the global enable, bit 11); wrmsr; cli; hlt
    const { r } = runFlat([0xb9, ...le32(0x1b), 0x0f, 0x32, 0x80, 0xe4, 0xf7, 0x0f, 0x30, 0xfa, 0xf4], 100, withApic);
    expect(r.stop).toBe('hlt');
    expect(seen).toEqual([0xfee00100]);
  });

  it('replays identically from a snapshot taken mid-run with timers and interrupts in flight', () => {
    const m = createMachine({ memMiB: 4 });
    m.load(readFileSync(new URL('../corpus/timer/timer-bios.rom', import.meta.url)), 'bios');
    expect(m.run({ maxInsns: 150 }).stop).toBe('budget');
    // The PIT is counting toward its next tick: device state is part of what gets restored.
    expect(m.devices.some((d) => Number.isFinite(d.nextDeadline?.() ?? Infinity))).toBe(true);
    const snap = m.snapshot();
    const end = (): [string, number, number | null, number] => {
      const r = m.run({ maxInsns: 1_000_000 });
      return [r.stop, r.instructions, r.exitCode, m.cpu.cycles];
    };
    const first = end();
    expect(first[0]).toBe('exit');
    m.restore(snap);
    expect(end()).toEqual(first);
    m.restore(snap);
    expect(end()).toEqual(first);
  });

  it('restores a machine snapshot: same registers, memory and further run', () => {
    // loop: inc eax; mov [0x200000 + eax*4], eax; jmp loop
    const code = [0x40, 0x89, 0x04, 0x85, ...le32(0x200000), 0xeb, 0xf6];
    const m = createMachine({ memMiB: 4 });
    m.load(Uint8Array.from(code), 'flat');
    m.run({ maxInsns: 3000 });
    const snap = m.snapshot();
    const ram = m.mem.ram.slice();
    const eax = m.cpu.regs[0];
    const first = m.run({ maxInsns: 3000 });
    const afterFirst = m.mem.ram.slice();
    for (let k = 0; k < 5; k++) {
      m.restore(snap);
      expect(m.cpu.regs[0]).toBe(eax);
      expect(Buffer.from(m.mem.ram).equals(Buffer.from(ram))).toBe(true);
      expect(m.run({ maxInsns: 3000 })).toMatchObject({ stop: 'budget', instructions: 3000 });
      expect(Buffer.from(m.mem.ram).equals(Buffer.from(afterFirst))).toBe(true);
    }
    const n = 1000;
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      m.restore(snap);
      m.run({ maxInsns: 3000 });
    }
    const perSecond = n / ((performance.now() - t0) / 1000);
    console.log(`machine: ${perSecond.toFixed(0)} restores + 3000-instruction runs per second`);
    expect(perSecond).toBeGreaterThan(200);
    expect(first.stop).toBe('budget');
  });
});

describe('exception loops', () => {
  it('stop as livelock, not a hang: a #UD handler that is itself UD2', async () => {
    const { createMachine } = await import('../src/machine/machine.js');
    const m = createMachine({ memMiB: 1 });
    // Real mode: IVT vector 6 -> 0000:0500, where UD2 sits; the guest starts there too.
    const img = new Uint8Array(0x10000).fill(0x90);
    m.load(img, 'flat', { at: 0x10000 });
    const cpu = m.cpu;
    cpu.cr0 &= ~1;
    for (const s of [0, 1, 3, 4, 5]) cpu.setSegCache(s, 0, 0, 0xffff, s === 1 ? 0x9b : 0x93);
    cpu.setSegCache(2, 0x2000, 0x20000, 0xffff, 0x93); // the stack wraps inside its own 64 KiB
    cpu.updateMode();
    cpu.idtrBase = 0;
    cpu.idtrLimit = 0x3ff;
    m.cpu.mem.view.setUint32(6 * 4, 0x0500, true);
    m.cpu.mem.ram.set([0x0f, 0x0b], 0x500);
    cpu.eip = 0x500;
    cpu.regs[4] = 0x8000;
    const r = m.run({ maxInsns: 1000 });
    expect(r.stop).toBe('livelock');
    expect(r.instructions).toBe(0);
    expect(cpu.faultStreak).toBeGreaterThanOrEqual(100_000);
  });
});
