// A bare CPU on plain RAM for instruction-level tests: no devices, a port bus that records
// writes, and ready-made real-mode and flat protected-mode setups. Guest code comes from NASM
// (`asm`) or raw bytes.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cpu, type PortBus } from '../../src/cpu/cpu.js';
import { CR0_PE, CS, DS, ES, FS, GS, SS } from '../../src/cpu/constants.js';
import { PhysicalMemory } from '../../src/machine/memory.js';

export const GDT_BASE = 0x1000;
export const IDT_BASE = 0x2000;
export const CODE_BASE = 0x10000;
export const STACK_TOP = 0x9000;

/** Flat GDT: 0x08 code32 r0, 0x10 data32 r0, 0x18 code32 r3, 0x20 data32 r3, 0x28 code16 r0, 0x30 data16 r0. */
export const SEL = { code32: 0x08, data32: 0x10, code32r3: 0x1b, data32r3: 0x23, code16: 0x28, data16: 0x30 } as const;
const GDT: Array<[number, number]> = [
  [0, 0],
  [0x0000ffff, 0x00cf9b00],
  [0x0000ffff, 0x00cf9300],
  [0x0000ffff, 0x00cffb00],
  [0x0000ffff, 0x00cff300],
  [0x0000ffff, 0x00009b00],
  [0x0000ffff, 0x00009300],
];

export class RecordingBus implements PortBus {
  readonly writes: Array<[number, number, number]> = [];
  readonly inputs = new Map<number, number>();
  read(port: number): number {
    return this.inputs.get(port) ?? 0xffffffff;
  }
  write(port: number, size: number, value: number): void {
    this.writes.push([port, size, value]);
  }
}

export interface Harness {
  cpu: Cpu;
  mem: PhysicalMemory;
  bus: RecordingBus;
}

/** A CPU in real mode (CS=DS=ES=SS=0) with `code` at 0x10000 via CS=0x1000, or flat 32-bit ring 0. */
export function makeCpu(mode: 'real' | 'pm32', code: Uint8Array, memMiB = 4): Harness {
  const mem = new PhysicalMemory(memMiB << 20);
  const bus = new RecordingBus();
  const cpu = new Cpu(mem, bus);
  mem.ram.set(code, CODE_BASE);
  GDT.forEach(([lo, hi], n) => {
    mem.view.setUint32(GDT_BASE + n * 8, lo, true);
    mem.view.setUint32(GDT_BASE + n * 8 + 4, hi, true);
  });
  cpu.gdtrBase = GDT_BASE;
  cpu.gdtrLimit = GDT.length * 8 - 1;
  if (mode === 'real') {
    for (const s of [DS, ES, SS, FS, GS]) cpu.setSegCache(s, 0, 0, 0xffff, 0x93);
    cpu.setSegCache(CS, CODE_BASE >> 4, CODE_BASE, 0xffff, 0x9b);
    cpu.eip = 0;
    cpu.regs[4] = STACK_TOP;
  } else {
    cpu.cr0 |= CR0_PE;
    cpu.idtrBase = IDT_BASE;
    cpu.idtrLimit = 0x7ff;
    for (const s of [DS, ES, SS, FS, GS]) cpu.setSegCache(s, SEL.data32, 0, 0xffffffff, 0xc093);
    cpu.setSegCache(CS, SEL.code32, 0, 0xffffffff, 0xc09b);
    cpu.eip = CODE_BASE;
    cpu.regs[4] = STACK_TOP;
    cpu.updateMode();
  }
  return { cpu, mem, bus };
}

/**
 * Runs exactly `n` instructions (or fewer if the CPU halts or shuts down). Virtual time also
 * moves for REP iterations and delivered exceptions, so the CPU is run until its retired count,
 * not its cycle count, has moved by `n` (bounded, for a guest stuck in an exception loop).
 */
export function step(cpu: Cpu, n = 1): void {
  const target = cpu.icount + n;
  for (let slice = 0; slice < 10_000 && cpu.icount < target && !cpu.halted && !cpu.shutdown; slice++) {
    cpu.run(cpu.cycles + (target - cpu.icount));
  }
}

/** An exception raised (and not delivered): vector and error code. */
export interface Caught {
  vector: number;
  errorCode: number;
}
class Stop {
  constructor(readonly caught: Caught) {}
}

/**
 * Runs `body` with cpu.events set to stop at the first exception instead of delivering it, and
 * returns that exception, or null if `body` finished without one. cpu.events stays set.
 */
export function catchException(cpu: Cpu, body: () => void): Caught | null {
  cpu.events = {
    onException(vector, errorCode) {
      throw new Stop({ vector, errorCode });
    },
  };
  try {
    body();
  } catch (e) {
    if (e instanceof Stop) return e.caught;
    throw e;
  }
  return null;
}

/** Runs until HLT (or the budget), returning the CPU. */
export function runToHlt(cpu: Cpu, budget = 1_000_000): Cpu {
  cpu.run(cpu.cycles + budget);
  return cpu;
}

let nasmChecked: boolean | undefined;
export function hasNasm(): boolean {
  if (nasmChecked === undefined) {
    try {
      execFileSync('nasm', ['-v'], { stdio: 'ignore' });
      nasmChecked = true;
    } catch {
      nasmChecked = false;
    }
  }
  return nasmChecked;
}

/** Assembles NASM source (flat binary) in 16- or 32-bit mode at origin `org`. */
export function asm(source: string, bits: 16 | 32 = 32, org = CODE_BASE): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-asm-'));
  try {
    writeFileSync(join(dir, 'a.asm'), `bits ${bits}\norg 0x${org.toString(16)}\n${source}\n`);
    execFileSync('nasm', ['-f', 'bin', '-o', join(dir, 'a.bin'), join(dir, 'a.asm')], { stdio: 'pipe' });
    return new Uint8Array(readFileSync(join(dir, 'a.bin')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
