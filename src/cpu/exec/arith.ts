// The arith family: the eight classic ALU operations in all their encodings, INC/DEC, NEG/NOT,
// TEST, MUL/IMUL (one-, two- and three-operand), DIV/IDIV, the sign extensions CBW/CWDE and
// CWD/CDQ, the BCD adjustments and SALC (SDM Vol. 2).
//
// Flags are lazy (cpu.setLazy) wherever the hub has a matching lazy operation; the others are
// written eagerly through the small helpers below, which the shift and bit families share.
// Undefined flags take the values Bochs gives them (listed at each helper's use):
// MUL/IMUL set SF/ZF/PF from the low half of the product and clear AF; DIV/IDIV leave every
// flag unchanged; AAM/AAD set SF/ZF/PF from AL and clear OF/AF/CF; AAA/AAS clear OF and set
// SF/ZF/PF from the final AL; DAA/DAS clear OF. (Checked with the Bochs cross-check run with
// the undefined flags unmasked: no disagreement in 14,000 generated sequences.)

import { AF, CF, EAX, EDX, EXC_DE, OF } from '../constants.js';
import { LZ_ADC, LZ_ADD, LZ_DEC, LZ_INC, LZ_LOGIC, LZ_SBB, LZ_SUB, type Cpu } from '../cpu.js';
import type { Exec } from '../insn.js';
import {
  byteForm, bySize, maskOf, readMemV, readModifyV, regV, setRegV, sized, writeModifiedV, type ByteShapes,
  type SizedShapes,
} from './variants.js';

// ---------------------------------------------------------------- shared flag helpers

/** Sets SF/ZF/PF from `res`, clears AF, and sets CF and OF as given (the Bochs "logic + CO" shape). */
export function setLogicCO(cpu: Cpu, res: number, size: number, cf: boolean, of: boolean): void {
  cpu.setLazy(LZ_LOGIC, 0, 0, res, size);
  cpu.materializeFlags();
  if (cf) cpu.flags |= CF;
  if (of) cpu.flags |= OF;
}

/** Writes only CF and OF (rotates), keeping the other arithmetic flags. */
export function setCO(cpu: Cpu, cf: boolean, of: boolean): void {
  cpu.materializeFlags();
  cpu.flags = (cpu.flags & ~(CF | OF)) | (cf ? CF : 0) | (of ? OF : 0);
}

/** Writes only CF (BT family, CMC/CLC/STC), keeping the others. */
export function setCF(cpu: Cpu, cf: boolean): void {
  cpu.materializeFlags();
  cpu.flags = (cpu.flags & ~CF) | (cf ? CF : 0);
}

// ---------------------------------------------------------------- ADD/OR/ADC/SBB/AND/SUB/XOR/CMP

/**
 * One ALU operation on `size`-bit operands (zero-extended): sets the lazy flags and returns the
 * masked result. One small function per operation, so that a handler built for one operation
 * and one size inlines to a few instructions. (The LZ_* constants are read inside the
 * functions: cpu.ts is still loading when this module runs.)
 */
type AluOp = (cpu: Cpu, a: number, b: number, size: number) => number;

const add: AluOp = (cpu, a, b, size) => {
  const r = (a + b) & maskOf(size);
  cpu.setLazy(LZ_ADD, a, b, r, size);
  return r;
};
const or: AluOp = (cpu, a, b, size) => {
  const r = a | b;
  cpu.setLazy(LZ_LOGIC, a, b, r, size);
  return r;
};
const adc: AluOp = (cpu, a, b, size) => {
  const r = (a + b + (cpu.getCF() ? 1 : 0)) & maskOf(size);
  cpu.setLazy(LZ_ADC, a, b, r, size);
  return r;
};
const sbb: AluOp = (cpu, a, b, size) => {
  const r = (a - b - (cpu.getCF() ? 1 : 0)) & maskOf(size);
  cpu.setLazy(LZ_SBB, a, b, r, size);
  return r;
};
const and: AluOp = (cpu, a, b, size) => {
  const r = a & b;
  cpu.setLazy(LZ_LOGIC, a, b, r, size);
  return r;
};
/** SUB and CMP. */
const sub: AluOp = (cpu, a, b, size) => {
  const r = (a - b) & maskOf(size);
  cpu.setLazy(LZ_SUB, a, b, r, size);
  return r;
};
const xor: AluOp = (cpu, a, b, size) => {
  const r = a ^ b;
  cpu.setLazy(LZ_LOGIC, a, b, r, size);
  return r;
};

/**
 * The shapes of `f` with an r/m destination (a result is stored when `write`; CMP only reads)
 * and a source that is the immediate (`imm`) or ModRM.reg. Each call makes new closures with
 * `f`, `write` and `imm` fixed, so an inlined handler keeps none of the choices.
 */
function ebShapes(f: AluOp, write: boolean, imm: boolean): ByteShapes {
  return {
    r: (cpu, i) => {
      const r = f(cpu, cpu.getReg8(i.rm), imm ? i.imm : cpu.getReg8(i.reg), 8);
      if (write) cpu.setReg8(i.rm, r);
    },
    m: (cpu, i) => {
      const b = imm ? i.imm : cpu.getReg8(i.reg);
      if (write) cpu.writeModified8(f(cpu, cpu.readModify8(i.seg, cpu.ea(i)), b, 8));
      else f(cpu, cpu.read8(i.seg, cpu.ea(i)), b, 8);
    },
  };
}
function evShapes(f: AluOp, write: boolean, imm: boolean): SizedShapes {
  const reg = (size: number): Exec => (cpu, i) => {
    const r = f(cpu, regV(cpu, i.rm, size), imm ? i.imm & maskOf(size) : regV(cpu, i.reg, size), size);
    if (write) setRegV(cpu, i.rm, r, size);
  };
  const mem = (size: number): Exec => (cpu, i) => {
    const b = imm ? i.imm & maskOf(size) : regV(cpu, i.reg, size);
    if (write) writeModifiedV(cpu, f(cpu, readModifyV(cpu, i, size), b, size), size);
    else f(cpu, readMemV(cpu, i, size), b, size);
  };
  return { r16: reg(16), r32: reg(32), m16: mem(16), m32: mem(32) };
}
/** Register destination, r/m source (GbEb, GvEv). */
function gbShapes(f: AluOp, write: boolean): ByteShapes {
  const shape = (memory: boolean): Exec => (cpu, i) => {
    const b = memory ? cpu.read8(i.seg, cpu.ea(i)) : cpu.getReg8(i.rm);
    const r = f(cpu, cpu.getReg8(i.reg), b, 8);
    if (write) cpu.setReg8(i.reg, r);
  };
  return { r: shape(false), m: shape(true) };
}
function gvShapes(f: AluOp, write: boolean): SizedShapes {
  const shape = (memory: boolean, size: number): Exec => (cpu, i) => {
    const b = memory ? readMemV(cpu, i, size) : regV(cpu, i.rm, size);
    const r = f(cpu, regV(cpu, i.reg, size), b, size);
    if (write) setRegV(cpu, i.reg, r, size);
  };
  return { r16: shape(false, 16), r32: shape(false, 32), m16: shape(true, 16), m32: shape(true, 32) };
}
/** Accumulator destination, immediate source (eAX, Iz). */
function eAXShape(f: AluOp, write: boolean, size: number): Exec {
  return (cpu, i) => {
    const r = f(cpu, regV(cpu, EAX, size), i.imm & maskOf(size), size);
    if (write) setRegV(cpu, EAX, r, size);
  };
}

/** The handlers and variants of one ALU operation in its nine encodings (00-05, 80/81/82/83). */
function aluForms(name: string, f: AluOp, write = true): Record<string, Exec> {
  return {
    ...byteForm(`${name}_EbGb`, ebShapes(f, write, false)),
    ...sized(`${name}_EvGv`, evShapes(f, write, false)),
    ...byteForm(`${name}_GbEb`, gbShapes(f, write)),
    ...sized(`${name}_GvEv`, gvShapes(f, write)),
    [`${name}_ALIb`]: (cpu, i) => {
      const r = f(cpu, cpu.regs[EAX] & 0xff, i.imm, 8);
      if (write) cpu.setReg8(EAX, r);
    },
    ...bySize(`${name}_eAXIz`, eAXShape(f, write, 16), eAXShape(f, write, 32)),
    ...byteForm(`${name}_EbIb`, ebShapes(f, write, true)), // 80 and 82
    ...sized(`${name}_EvIz`, evShapes(f, write, true)),
    ...sized(`${name}_EvIb`, evShapes(f, write, true)), // 83: the decoder sign-extended the byte
  };
}

// ---------------------------------------------------------------- INC/DEC/NEG/NOT

/** Handlers of a one-operand read-modify-write op on Eb and Ev; `f` returns the new value. */
function unaryForms(name: string, f: (cpu: Cpu, v: number, size: number) => number): Record<string, Exec> {
  const reg = (size: number): Exec => (cpu, i) => setRegV(cpu, i.rm, f(cpu, regV(cpu, i.rm, size), size), size);
  const mem = (size: number): Exec => (cpu, i) => writeModifiedV(cpu, f(cpu, readModifyV(cpu, i, size), size), size);
  return {
    ...byteForm(`${name}_Eb`, {
      r: (cpu, i) => cpu.setReg8(i.rm, f(cpu, cpu.getReg8(i.rm), 8)),
      m: (cpu, i) => cpu.writeModified8(f(cpu, cpu.readModify8(i.seg, cpu.ea(i)), 8)),
    }),
    ...sized(`${name}_Ev`, { r16: reg(16), r32: reg(32), m16: mem(16), m32: mem(32) }),
  };
}

/** INC/DEC r16/r32 (40-4F): the register is in ModRM.reg's place. */
function zvForms(name: string, f: (cpu: Cpu, v: number, size: number) => number): Record<string, Exec> {
  const z = (size: number): Exec => (cpu, i) => setRegV(cpu, i.reg, f(cpu, regV(cpu, i.reg, size), size), size);
  return bySize(`${name}_Zv`, z(16), z(32));
}

function inc(cpu: Cpu, v: number, size: number): number {
  const r = (v + 1) & maskOf(size);
  cpu.setLazyIncDec(LZ_INC, v, r, size);
  return r;
}
function dec(cpu: Cpu, v: number, size: number): number {
  const r = (v - 1) & maskOf(size);
  cpu.setLazyIncDec(LZ_DEC, v, r, size);
  return r;
}
/** NEG is SUB from zero: CF = (operand != 0), OF for the most negative value. */
function neg(cpu: Cpu, v: number, size: number): number {
  const r = -v & maskOf(size);
  cpu.setLazy(LZ_SUB, 0, v, r, size);
  return r;
}
function not(_cpu: Cpu, v: number, size: number): number {
  return ~v & maskOf(size);
}

// ---------------------------------------------------------------- TEST

/** TEST r/m, reg or imm: the AND without the store. */
function testShapes(imm: boolean): { b: ByteShapes; v: SizedShapes } {
  const v = (memory: boolean, size: number): Exec => (cpu, i) => {
    const a = memory ? readMemV(cpu, i, size) : regV(cpu, i.rm, size);
    const b = imm ? i.imm & maskOf(size) : regV(cpu, i.reg, size);
    cpu.setLazy(LZ_LOGIC, a, b, a & b, size);
  };
  const b = (memory: boolean): Exec => (cpu, i) => {
    const a = memory ? cpu.read8(i.seg, cpu.ea(i)) : cpu.getReg8(i.rm);
    const b = imm ? i.imm : cpu.getReg8(i.reg);
    cpu.setLazy(LZ_LOGIC, a, b, a & b, 8);
  };
  return {
    b: { r: b(false), m: b(true) },
    v: { r16: v(false, 16), r32: v(false, 32), m16: v(true, 16), m32: v(true, 32) },
  };
}
const testG = testShapes(false), testI = testShapes(true);

// ---------------------------------------------------------------- multiplication

/** High and low halves of the last 32x32 multiplication (module state: no allocation). */
let mulHi = 0, mulLo = 0;

/** Unsigned 32x32 -> 64 multiplication into mulHi:mulLo, exact, in 16-bit pieces. */
function mulU32(a: number, b: number): void {
  const aL = a & 0xffff, aH = a >>> 16, bL = b & 0xffff, bH = b >>> 16;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  mulLo = (mid << 16) | (ll & 0xffff);
  mulHi = (aH * bH + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
}

/** Signed 32x32 -> 64: the unsigned product with the high half corrected for negative factors. */
function mulS32(a: number, b: number): void {
  mulU32(a, b);
  mulHi = (mulHi - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
}

/** Signed product of `size`-bit values truncated to `size` bits, flags as IMUL (2/3 operands). */
function imulTrunc(cpu: Cpu, a: number, b: number, size: number): number {
  let r: number, overflow: boolean;
  if (size === 32) {
    mulS32(a, b);
    r = mulLo;
    overflow = mulHi !== r >> 31;
  } else {
    const p = ((a << 16) >> 16) * ((b << 16) >> 16);
    r = p & 0xffff;
    overflow = p !== (r << 16) >> 16;
  }
  setLogicCO(cpu, r, size, overflow, overflow);
  return r;
}

const mulForms: Record<string, Exec> = {
  mul_Eb: (cpu, i) => {
    const p = (cpu.regs[EAX] & 0xff) * cpu.readE8(i);
    cpu.setReg16(EAX, p);
    setLogicCO(cpu, p & 0xff, 8, p > 0xff, p > 0xff);
  },
  imul_Eb: (cpu, i) => {
    const p = ((cpu.regs[EAX] << 24) >> 24) * ((cpu.readE8(i) << 24) >> 24);
    cpu.setReg16(EAX, p);
    const overflow = p !== (p << 24) >> 24;
    setLogicCO(cpu, p & 0xff, 8, overflow, overflow);
  },
  mul_Ev: (cpu, i) => {
    if (i.o32) {
      mulU32(cpu.regs[EAX], cpu.readE32(i));
      cpu.regs[EAX] = mulLo;
      cpu.regs[EDX] = mulHi;
      setLogicCO(cpu, mulLo, 32, mulHi !== 0, mulHi !== 0);
    } else {
      const p = (cpu.regs[EAX] & 0xffff) * cpu.readE16(i);
      cpu.setReg16(EAX, p);
      cpu.setReg16(EDX, p >>> 16);
      setLogicCO(cpu, p & 0xffff, 16, p > 0xffff, p > 0xffff);
    }
  },
  imul_Ev: (cpu, i) => {
    if (i.o32) {
      mulS32(cpu.regs[EAX], cpu.readE32(i));
      cpu.regs[EAX] = mulLo;
      cpu.regs[EDX] = mulHi;
      const overflow = mulHi !== mulLo >> 31;
      setLogicCO(cpu, mulLo, 32, overflow, overflow);
    } else {
      const p = ((cpu.regs[EAX] << 16) >> 16) * ((cpu.readE16(i) << 16) >> 16);
      cpu.setReg16(EAX, p);
      cpu.setReg16(EDX, p >> 16);
      const overflow = p !== (p << 16) >> 16;
      setLogicCO(cpu, p & 0xffff, 16, overflow, overflow);
    }
  },
  imul_GvEv: (cpu, i) => {
    const size = i.o32 ? 32 : 16;
    cpu.setReg(i.reg, imulTrunc(cpu, cpu.regs[i.reg], cpu.readEv(i), size), i.o32);
  },
  imul_GvEvIz: (cpu, i) => {
    const size = i.o32 ? 32 : 16;
    cpu.setReg(i.reg, imulTrunc(cpu, cpu.readEv(i), i.imm, size), i.o32);
  },
  imul_GvEvIb: (cpu, i) => {
    const size = i.o32 ? 32 : 16;
    cpu.setReg(i.reg, imulTrunc(cpu, cpu.readEv(i), i.imm, size), i.o32);
  },
};

// ---------------------------------------------------------------- division

/** Quotient and remainder of the last 64/32 division (module state: no allocation). */
let divQ = 0, divR = 0;

/**
 * Unsigned (hi:lo) / d for hi < d (so the quotient fits 32 bits), in two 16-bit steps whose
 * partial dividends stay below 2^48, where doubles are exact. All arguments unsigned.
 */
function divU64(hi: number, lo: number, d: number): void {
  const x1 = hi * 0x10000 + (lo >>> 16);
  const q1 = Math.floor(x1 / d);
  const x0 = (x1 - q1 * d) * 0x10000 + (lo & 0xffff);
  const q0 = Math.floor(x0 / d);
  divQ = q1 * 0x10000 + q0;
  divR = x0 - q0 * d;
}

const divForms: Record<string, Exec> = {
  div_Eb: (cpu, i) => {
    const d = cpu.readE8(i);
    const n = cpu.regs[EAX] & 0xffff;
    if (d === 0) cpu.faultNoCode(EXC_DE);
    const q = Math.floor(n / d);
    if (q > 0xff) cpu.faultNoCode(EXC_DE);
    cpu.setReg16(EAX, ((n - q * d) << 8) | q);
  },
  idiv_Eb: (cpu, i) => {
    const d = (cpu.readE8(i) << 24) >> 24;
    const n = (cpu.regs[EAX] << 16) >> 16;
    if (d === 0) cpu.faultNoCode(EXC_DE);
    const q = Math.trunc(n / d);
    if (q > 0x7f || q < -0x80) cpu.faultNoCode(EXC_DE);
    cpu.setReg16(EAX, (((n - q * d) & 0xff) << 8) | (q & 0xff));
  },
  div_Ev: (cpu, i) => {
    if (i.o32) {
      const d = cpu.readE32(i) >>> 0;
      const hi = cpu.regs[EDX] >>> 0;
      if (d === 0 || hi >= d) cpu.faultNoCode(EXC_DE);
      divU64(hi, cpu.regs[EAX] >>> 0, d);
      cpu.regs[EAX] = divQ;
      cpu.regs[EDX] = divR;
    } else {
      const d = cpu.readE16(i);
      const n = ((cpu.regs[EDX] & 0xffff) * 0x10000) + (cpu.regs[EAX] & 0xffff);
      if (d === 0) cpu.faultNoCode(EXC_DE);
      const q = Math.floor(n / d);
      if (q > 0xffff) cpu.faultNoCode(EXC_DE);
      cpu.setReg16(EAX, q);
      cpu.setReg16(EDX, n - q * d);
    }
  },
  idiv_Ev: (cpu, i) => {
    if (i.o32) idiv32(cpu, cpu.readE32(i));
    else {
      const d = (cpu.readE16(i) << 16) >> 16;
      const n = ((cpu.regs[EDX] & 0xffff) << 16) | (cpu.regs[EAX] & 0xffff);
      if (d === 0) cpu.faultNoCode(EXC_DE);
      const q = Math.trunc(n / d);
      if (q > 0x7fff || q < -0x8000) cpu.faultNoCode(EXC_DE);
      cpu.setReg16(EAX, q);
      cpu.setReg16(EDX, n - q * d);
    }
  },
};

/** Signed EDX:EAX / d: divides the magnitudes, then applies the signs (remainder takes the dividend's). */
function idiv32(cpu: Cpu, d: number): void {
  if (d === 0) cpu.faultNoCode(EXC_DE);
  let hi = cpu.regs[EDX], lo = cpu.regs[EAX];
  const negN = hi < 0;
  if (negN) { // 64-bit two's-complement negation
    lo = -lo | 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) | 0;
  }
  const ad = Math.abs(d); // up to 2^31, as a double
  if (hi >>> 0 >= ad) cpu.faultNoCode(EXC_DE);
  divU64(hi >>> 0, lo >>> 0, ad);
  const negQ = negN !== d < 0;
  if (negQ ? divQ > 0x80000000 : divQ > 0x7fffffff) cpu.faultNoCode(EXC_DE);
  cpu.regs[EAX] = negQ ? -divQ : divQ;
  cpu.regs[EDX] = negN ? -divR : divR;
}

// ---------------------------------------------------------------- BCD and friends

/** Eager flags for the BCD instructions: SF/ZF/PF from AL, CF and AF as given, OF cleared. */
function setBcdFlags(cpu: Cpu, al: number, cf: boolean, af: boolean): void {
  setLogicCO(cpu, al, 8, cf, false);
  if (af) cpu.flags |= AF;
}

const bcdForms: Record<string, Exec> = {
  daa: (cpu) => {
    const old = cpu.regs[EAX] & 0xff, oldCF = cpu.getCF();
    let al = old, af = false;
    if ((al & 0xf) > 9 || cpu.getAF()) {
      al = (al + 6) & 0xff;
      af = true;
    }
    const cf = old > 0x99 || oldCF;
    if (cf) al = (al + 0x60) & 0xff;
    cpu.setReg8(EAX, al);
    setBcdFlags(cpu, al, cf, af);
  },
  das: (cpu) => {
    const old = cpu.regs[EAX] & 0xff, oldCF = cpu.getCF();
    let al = old, af = false, cf = false;
    if ((al & 0xf) > 9 || cpu.getAF()) {
      cf = oldCF || al < 6;
      al = (al - 6) & 0xff;
      af = true;
    }
    if (old > 0x99 || oldCF) {
      al = (al - 0x60) & 0xff;
      cf = true;
    }
    cpu.setReg8(EAX, al);
    setBcdFlags(cpu, al, cf, af);
  },
  aaa: (cpu) => {
    const adjust = (cpu.regs[EAX] & 0xf) > 9 || cpu.getAF();
    if (adjust) cpu.setReg16(EAX, cpu.regs[EAX] + 0x106);
    const al = cpu.regs[EAX] & 0xf;
    cpu.setReg8(EAX, al);
    setBcdFlags(cpu, al, adjust, adjust);
  },
  aas: (cpu) => {
    const adjust = (cpu.regs[EAX] & 0xf) > 9 || cpu.getAF();
    if (adjust) cpu.setReg16(EAX, cpu.regs[EAX] - 6 - 0x100);
    const al = cpu.regs[EAX] & 0xf;
    cpu.setReg8(EAX, al);
    setBcdFlags(cpu, al, adjust, adjust);
  },
  aam_Ib: (cpu, i) => {
    if (i.imm === 0) cpu.faultNoCode(EXC_DE);
    const al = cpu.regs[EAX] & 0xff;
    const q = Math.floor(al / i.imm), r = al - q * i.imm;
    cpu.setReg16(EAX, (q << 8) | r);
    setBcdFlags(cpu, r, false, false);
  },
  aad_Ib: (cpu, i) => {
    const al = ((cpu.regs[EAX] & 0xff) + ((cpu.regs[EAX] >> 8) & 0xff) * i.imm) & 0xff;
    cpu.setReg16(EAX, al);
    setBcdFlags(cpu, al, false, false);
  },
  salc: (cpu) => cpu.setReg8(EAX, cpu.getCF() ? 0xff : 0),
  cbw: (cpu, i) => {
    if (i.o32) cpu.regs[EAX] = (cpu.regs[EAX] << 16) >> 16; // CWDE
    else cpu.setReg16(EAX, (cpu.regs[EAX] << 24) >> 24);
  },
  cwd: (cpu, i) => {
    if (i.o32) cpu.regs[EDX] = cpu.regs[EAX] >> 31; // CDQ
    else cpu.setReg16(EDX, (cpu.regs[EAX] << 16) >> 31);
  },
};

export const handlers: Record<string, Exec> = {
  ...aluForms('add', add),
  ...aluForms('or', or),
  ...aluForms('adc', adc),
  ...aluForms('sbb', sbb),
  ...aluForms('and', and),
  ...aluForms('sub', sub),
  ...aluForms('xor', xor),
  ...aluForms('cmp', sub, false),
  ...zvForms('inc', inc),
  ...zvForms('dec', dec),
  ...unaryForms('inc', inc),
  ...unaryForms('dec', dec),
  ...unaryForms('neg', neg),
  ...unaryForms('not', not),
  ...byteForm('test_EbGb', testG.b),
  ...sized('test_EvGv', testG.v),
  test_ALIb: (cpu, i) => cpu.setLazy(LZ_LOGIC, 0, 0, cpu.regs[EAX] & i.imm & 0xff, 8),
  ...bySize('test_eAXIz',
    (cpu, i) => cpu.setLazy(LZ_LOGIC, 0, 0, cpu.regs[EAX] & i.imm & 0xffff, 16),
    (cpu, i) => cpu.setLazy(LZ_LOGIC, 0, 0, cpu.regs[EAX] & i.imm, 32)),
  ...byteForm('test_EbIb', testI.b),
  ...sized('test_EvIz', testI.v),
  ...mulForms,
  ...divForms,
  ...bcdForms,
};
