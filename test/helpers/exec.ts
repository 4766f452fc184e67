// Running small NASM snippets for the instruction-family tests: assemble, load, run until EIP
// reaches the end of the snippet, and report the first exception instead of delivering it (so
// these tests do not depend on the interrupt-delivery code).

import type { Cpu } from '../../src/cpu/cpu.js';
import { asm, catchException, CODE_BASE, makeCpu, step, type Harness } from './harness.js';

export interface Run extends Harness {
  /** Vector of the first exception raised, or -1; EIP then points at the faulting instruction. */
  vector: number;
  errorCode: number;
  /** EIP (offset) where the snippet ends. */
  end: number;
}

/** Runs until EIP reaches `end` or an exception is raised (returned as a vector, else -1). */
export function runUntilEip(cpu: Cpu, end: number, maxSteps = 1_000_000): { vector: number; errorCode: number } {
  const caught = catchException(cpu, () => {
    for (let n = 0; n < maxSteps && cpu.eip !== end; n++) step(cpu, 1);
  });
  if (caught) return caught;
  if (cpu.eip !== end) throw new Error(`did not reach the end (eip ${cpu.eip.toString(16)})`);
  return { vector: -1, errorCode: 0 };
}

/**
 * Assembles `source` for `mode` (real: 16-bit at CS:0 with CS base 0x10000; pm32: flat 32-bit
 * at 0x10000), lets `setup` prepare the CPU and memory, and runs to the end of the snippet.
 */
export function run(mode: 'real' | 'pm32', source: string, setup?: (h: Harness) => void): Run {
  const org = mode === 'real' ? 0 : CODE_BASE;
  const code = asm(source, mode === 'real' ? 16 : 32, org);
  const h = makeCpu(mode, code);
  setup?.(h);
  const end = org + code.length;
  const r = runUntilEip(h.cpu, end);
  return { ...h, ...r, end };
}
