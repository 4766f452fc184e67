// The shift family: ROL/ROR/RCL/RCR/SHL/SAL/SHR/SAR and SHLD/SHRD (SDM Vol. 2).
//
// The count is masked to 5 bits; a masked count of 0 changes nothing (a memory operand is still
// read for writing, so its write permission is checked, as Bochs does). RCL/RCR on 8/16 bits
// rotate through CF modulo 9/17. Flags are written eagerly, with Bochs's values where the SDM
// leaves them undefined:
// - SHL/SAL/SHR/SAR: SF/ZF/PF from the result, AF = 0; SHL OF = CF ^ MSB(result) for every
//   count; SHR OF = MSB ^ MSB-1 of the result (the original MSB at count 1, 0 above); SAR OF = 0.
//   A count above the operand size gives result 0 (SAR: the sign), CF = 0 (SAR: the sign).
// - ROL/ROR change only CF and OF, OF from the result for every count (ROL: CF ^ MSB,
//   ROR: MSB ^ MSB-1), also when the count is a multiple of the size. RCL/RCR whose count is
//   0 modulo 9/17 change nothing; otherwise RCL OF = CF ^ MSB, RCR OF = MSB ^ MSB-1.
// - SHLD/SHRD: SF/ZF/PF from the result, AF = 0, OF = CF ^ MSB (SHLD) or MSB ^ MSB-1 (SHRD).
//   16-bit with a count above 16 (result undefined in the SDM) shifts the 48-bit pattern
//   D:S:D, which gives Bochs's (and P6-family hardware's) result; CF is the last bit shifted out
//   of that pattern.

import { ECX } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { setCO, setLogicCO } from './arith.js';
import { byteForm, maskOf, readModifyV, regV, setRegV, sized, writeModifiedV } from './variants.js';

/**
 * One shift or rotate of the zero-extended `size`-bit value v by c (1-31, already masked): sets
 * the flags and returns the result. One function per operation, so that a handler variant for
 * one operation inlines only its own code.
 */
type ShiftOp = (cpu: Cpu, v: number, c: number, size: number) => number;

const rol: ShiftOp = (cpu, v, c, size) => {
  const msb = size - 1, k = c & msb;
  const r = k === 0 ? v : ((v << k) | (v >>> (size - k))) & maskOf(size);
  const cf = r & 1;
  setCO(cpu, cf !== 0, (cf ^ (r >>> msb)) !== 0);
  return r;
};
const ror: ShiftOp = (cpu, v, c, size) => {
  const msb = size - 1, k = c & msb;
  const r = k === 0 ? v : ((v >>> k) | (v << (size - k))) & maskOf(size);
  const cf = (r >>> msb) & 1;
  setCO(cpu, cf !== 0, (cf ^ ((r >>> (msb - 1)) & 1)) !== 0);
  return r;
};
const rcl: ShiftOp = (cpu, v, c, size) => {
  const k = size === 32 ? c : c % (size + 1);
  if (k === 0) return v;
  const cin = cpu.getCF() ? 1 : 0;
  // A (size + 1)-bit rotation of CF:v; at k = 1 the wrapped part is empty (JS shifts are mod 32).
  const r = ((v << k) | (cin << (k - 1)) | (k === 1 ? 0 : v >>> (size + 1 - k))) & maskOf(size);
  const cf = (v >>> (size - k)) & 1;
  setCO(cpu, cf !== 0, (cf ^ (r >>> (size - 1))) !== 0);
  return r;
};
const rcr: ShiftOp = (cpu, v, c, size) => {
  const k = size === 32 ? c : c % (size + 1);
  if (k === 0) return v;
  const cin = cpu.getCF() ? 1 : 0;
  const r = ((v >>> k) | (cin << (size - k)) | (k === 1 ? 0 : v << (size + 1 - k))) & maskOf(size);
  const cf = (v >>> (k - 1)) & 1;
  setCO(cpu, cf !== 0, (((r >>> (size - 1)) ^ (r >>> (size - 2))) & 1) !== 0);
  return r;
};
/** SHL and SAL. */
const shl: ShiftOp = (cpu, v, c, size) => {
  let r: number, cf: number;
  if (c <= size) {
    r = (v << c) & maskOf(size);
    cf = (v >>> (size - c)) & 1;
  } else {
    r = cf = 0;
  }
  setLogicCO(cpu, r, size, cf !== 0, (cf ^ (r >>> (size - 1))) !== 0);
  return r;
};
const shr: ShiftOp = (cpu, v, c, size) => {
  const r = v >>> c;
  const cf = (v >>> (c - 1)) & 1;
  setLogicCO(cpu, r, size, cf !== 0, (((r << 1) ^ r) >>> (size - 1) & 1) !== 0);
  return r;
};
const sar: ShiftOp = (cpu, v, c, size) => {
  const sx = (v << (32 - size)) >> (32 - size);
  const r = (sx >> c) & maskOf(size);
  const cf = (sx >> (c - 1)) & 1;
  setLogicCO(cpu, r, size, cf !== 0, false);
  return r;
};

/** Where the count comes from: Ib, the constant 1, or CL; masked to 5 bits. */
type Count = (cpu: Cpu, i: Insn) => number;
const countIb: Count = (_cpu, i) => i.imm & 0x1f;
const count1: Count = () => 1;
const countCL: Count = (cpu) => cpu.regs[ECX] & 0x1f;

/**
 * The shapes of shift `f` with count `count` on Eb and Ev; a zero count writes nothing (a memory
 * operand is still read for writing).
 */
function shiftForms(name: string, f: ShiftOp, count: Count, suffix: string): Record<string, Exec> {
  const ev = (memory: boolean, size: number): Exec => (cpu, i) => {
    const c = count(cpu, i);
    if (memory) {
      const v = readModifyV(cpu, i, size) >>> 0;
      if (c !== 0) writeModifiedV(cpu, f(cpu, v, c, size), size);
    } else if (c !== 0) {
      setRegV(cpu, i.rm, f(cpu, regV(cpu, i.rm, size) >>> 0, c, size), size);
    }
  };
  return {
    ...byteForm(`${name}_Eb${suffix}`, {
      r: (cpu, i) => {
        const c = count(cpu, i);
        if (c !== 0) cpu.setReg8(i.rm, f(cpu, cpu.getReg8(i.rm), c, 8));
      },
      m: (cpu, i) => {
        const c = count(cpu, i);
        const v = cpu.readModify8(i.seg, cpu.ea(i));
        if (c !== 0) cpu.writeModified8(f(cpu, v, c, 8));
      },
    }),
    ...sized(`${name}_Ev${suffix}`, { r16: ev(false, 16), r32: ev(false, 32), m16: ev(true, 16), m32: ev(true, 32) }),
  };
}

/**
 * SHLD (left) or SHRD of destination d by source s, count c in 1-31; sets the flags and returns
 * the result. d and s are zero-extended.
 */
function doubleShift(cpu: Cpu, left: boolean, d: number, s: number, c: number, size: number): number {
  let r: number, cf: number;
  if (size === 16 && c > 16) { // the 48-bit pattern D:S:D: past 16 the source takes the lead
    const t = d;
    d = s;
    s = t;
    c -= 16;
  }
  const m = size === 32 ? -1 : 0xffff;
  if (left) {
    r = ((d << c) | (s >>> (size - c))) & m;
    cf = (d >>> (size - c)) & 1;
    setLogicCO(cpu, r, size, cf !== 0, (cf ^ (r >>> (size - 1))) !== 0);
  } else {
    r = ((d >>> c) | (s << (size - c))) & m;
    cf = (d >>> (c - 1)) & 1;
    setLogicCO(cpu, r, size, cf !== 0, (((r >>> (size - 1)) ^ (r >>> (size - 2))) & 1) !== 0);
  }
  return r;
}

function doubleShiftEv(cpu: Cpu, i: Insn, left: boolean, c: number): void {
  c &= 0x1f;
  const size = i.o32 ? 32 : 16;
  const s = i.o32 ? cpu.regs[i.reg] >>> 0 : cpu.regs[i.reg] & 0xffff;
  if (i.mod === 3) {
    if (c !== 0) cpu.setReg(i.rm, doubleShift(cpu, left, cpu.getReg(i.rm, i.o32) >>> 0, s, c, size), i.o32);
  } else if (i.o32) {
    const v = cpu.readModify32(i.seg, cpu.ea(i));
    if (c !== 0) cpu.writeModified32(doubleShift(cpu, left, v >>> 0, s, c, 32));
  } else {
    const v = cpu.readModify16(i.seg, cpu.ea(i));
    if (c !== 0) cpu.writeModified16(doubleShift(cpu, left, v, s, c, 16));
  }
}

export const handlers: Record<string, Exec> = {
  shld_EvGvIb: (cpu, i) => doubleShiftEv(cpu, i, true, i.imm),
  shld_EvGvCL: (cpu, i) => doubleShiftEv(cpu, i, true, cpu.regs[ECX]),
  shrd_EvGvIb: (cpu, i) => doubleShiftEv(cpu, i, false, i.imm),
  shrd_EvGvCL: (cpu, i) => doubleShiftEv(cpu, i, false, cpu.regs[ECX]),
};
const OPS: Array<[string, ShiftOp]> = [
  ['rol', rol], ['ror', ror], ['rcl', rcl], ['rcr', rcr], ['shl', shl], ['shr', shr], ['sal', shl], ['sar', sar],
];
for (const [name, f] of OPS) {
  Object.assign(handlers, shiftForms(name, f, countIb, 'Ib'), shiftForms(name, f, count1, '1'), shiftForms(name, f, countCL, 'CL'));
}
