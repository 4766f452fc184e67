// Handler variants: a family builds a form's handlers from one function per operand shape
// (register or memory operand, 16- or 32-bit operand size), and exports each shape under its
// variant key besides the generic handler, which picks among the same shapes at run time.
// The decoder links the most specific variant that exists for the decoded instruction
// (dispatch.ts, selectHandler), so a compiled block calls a handler with no run-time choice
// of shape left in it: V8 inlines it into straight-line code.
//
// Variant keys (docs/ARCHITECTURE.md): `${key}:r16`, `:r32`, `:m16`, `:m32`, and `:r` / `:m`
// for forms whose behaviour does not depend on the operand size (byte forms). `r` means the
// instruction has no memory operand (ModRM.mod = 3, or a form without ModRM), `m` that it has
// one; the number is the operand-size attribute.

import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';

/** The four shapes of a form with a v-sized operand and a ModRM r/m operand. */
export interface SizedShapes {
  r16: Exec;
  r32: Exec;
  m16: Exec;
  m32: Exec;
}

/** The two shapes of a byte form with a ModRM r/m operand. */
export interface ByteShapes {
  r: Exec;
  m: Exec;
}

/**
 * `key` as the generic handler (choosing the shape from the Insn) and as its four variants.
 * The generic handler is the reference the variant test compares the variants against: it
 * must choose exactly as the decoder does.
 */
export function sized(key: string, s: SizedShapes): Record<string, Exec> {
  const { r16, r32, m16, m32 } = s;
  return {
    [key]: (cpu, i) => (i.mod === 3 ? (i.o32 ? r32 : r16) : i.o32 ? m32 : m16)(cpu, i),
    [`${key}:r16`]: r16,
    [`${key}:r32`]: r32,
    [`${key}:m16`]: m16,
    [`${key}:m32`]: m32,
  };
}

/** `key` and its variants for a byte form (register or memory r/m operand). */
export function byteForm(key: string, s: ByteShapes): Record<string, Exec> {
  const { r, m } = s;
  return {
    [key]: (cpu, i) => (i.mod === 3 ? r : m)(cpu, i),
    [`${key}:r`]: r,
    [`${key}:m`]: m,
  };
}

/** `key` and its variants for a form without a memory operand whose behaviour depends on the operand size. */
export function bySize(key: string, r16: Exec, r32: Exec): Record<string, Exec> {
  return {
    [key]: (cpu, i) => (i.o32 ? r32 : r16)(cpu, i),
    [`${key}:r16`]: r16,
    [`${key}:r32`]: r32,
  };
}

/** The variant suffixes the decoder tries for an Insn, most specific first. */
export function variantSuffixes(i: Pick<Insn, 'mod' | 'o32'>): string[] {
  const m = i.mod === 3 ? 'r' : 'm';
  return [`${m}${i.o32 ? 32 : 16}`, m];
}

// ---- Operand access for shapes: `size` (8, 16 or 32) is a constant in every caller, so these
// fold away once inlined. They are kept branch-free where possible: V8's inlining budget for a
// compiled block counts their bytecode, folded or not.

/** Mask of an operand of `size` bits, as an int32 pattern (2 << 31 is 0: -1 for 32 bits). */
export function maskOf(size: number): number {
  return (2 << (size - 1)) - 1;
}
/** Register n at the operand size (16 or 32), zero-extended. */
export function regV(cpu: Cpu, n: number, size: number): number {
  return cpu.regs[n] & maskOf(size);
}
/** Writes the low `size` bits (16 or 32) of register n. */
export function setRegV(cpu: Cpu, n: number, v: number, size: number): void {
  const m = maskOf(size);
  cpu.regs[n] = (cpu.regs[n] & ~m) | (v & m);
}
/** The ModRM memory operand at 16 or 32 bits. */
export function readMemV(cpu: Cpu, i: Insn, size: number): number {
  return size === 32 ? cpu.read32(i.seg, cpu.ea(i)) : cpu.read16(i.seg, cpu.ea(i));
}
export function writeMemV(cpu: Cpu, i: Insn, v: number, size: number): void {
  if (size === 32) cpu.write32(i.seg, cpu.ea(i), v);
  else cpu.write16(i.seg, cpu.ea(i), v);
}
/** Read of a read-modify-write memory operand (write permission checked first), then its write. */
export function readModifyV(cpu: Cpu, i: Insn, size: number): number {
  return size === 32 ? cpu.readModify32(i.seg, cpu.ea(i)) : cpu.readModify16(i.seg, cpu.ea(i));
}
export function writeModifiedV(cpu: Cpu, v: number, size: number): void {
  if (size === 32) cpu.writeModified32(v);
  else cpu.writeModified16(v);
}
