// The bit family: BT/BTS/BTR/BTC, BSF/BSR, BSWAP, SETcc and CMOVcc (SDM Vol. 2).
//
// Model choices (undefined in the SDM):
// - BT/BTS/BTR/BTC change only CF (OF/SF/AF/PF keep their values, as in Bochs; ZF is defined
//   as unchanged).
// - BSF/BSR with a zero source set ZF and leave the destination and the other flags unchanged
//   (the Core-generation behaviour); with a nonzero source ZF = 0 and SF/PF come from the bit
//   index, CF = OF = AF = 0 (Bochs).
// - BSWAP with a 16-bit operand size clears the low 16 bits (what Intel processors and Bochs do).

import { ZF } from '../constants.js';
import { LZ_LOGIC, type Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { setCF } from './arith.js';
import { CC, cond } from './ctrl.js';

const BT = 0, BTS = 1, BTR = 2, BTC = 3;

/** The new value of the operand after BTS/BTR/BTC of `mask` (BT: unchanged). */
function modify(op: number, v: number, mask: number): number {
  switch (op) {
    case BTS: return v | mask;
    case BTR: return v & ~mask;
    case BTC: return v ^ mask;
    default: return v;
  }
}

/**
 * One bit-test operation. `offset` is the bit offset: for a register source it is signed and
 * a memory operand is addressed beyond its ModRM location (SDM BT: "bit offset ... -2^31 to
 * 2^31 - 1"); for an immediate it is taken modulo the operand size.
 */
function bitTest(cpu: Cpu, i: Insn, op: number, offset: number, fromReg: boolean): void {
  const size = i.o32 ? 32 : 16;
  const bit = offset & (size - 1);
  const mask = 1 << bit;
  if (i.mod === 3) {
    const v = cpu.getReg(i.rm, i.o32);
    if (op !== BT) cpu.setReg(i.rm, modify(op, v, mask), i.o32);
    setCF(cpu, ((v >>> bit) & 1) !== 0);
    return;
  }
  let off = cpu.ea(i);
  if (fromReg) {
    // Signed displacement in operand-sized units, wrapped to the address size.
    const words = i.o32 ? offset >> 5 : ((offset << 16) >> 16) >> 4;
    off = i.a32 ? (off + words * (size >> 3)) | 0 : (off + words * (size >> 3)) & 0xffff;
  }
  let v: number;
  if (op === BT) {
    v = i.o32 ? cpu.read32(i.seg, off) : cpu.read16(i.seg, off);
  } else if (i.o32) {
    v = cpu.readModify32(i.seg, off);
    cpu.writeModified32(modify(op, v, mask));
  } else {
    v = cpu.readModify16(i.seg, off);
    cpu.writeModified16(modify(op, v, mask));
  }
  setCF(cpu, ((v >>> bit) & 1) !== 0);
}

/** BSF/BSR: index of the lowest/highest set bit of the source. */
function bitScan(cpu: Cpu, i: Insn, reverse: boolean): void {
  const v = cpu.readEv(i);
  if (v === 0) {
    cpu.materializeFlags();
    cpu.flags |= ZF; // the destination keeps its value
    return;
  }
  const n = reverse ? 31 - Math.clz32(v) : 31 - Math.clz32(v & -v);
  cpu.setReg(i.reg, n, i.o32);
  cpu.setLazy(LZ_LOGIC, 0, 0, n, i.o32 ? 32 : 16);
  cpu.materializeFlags();
  cpu.flags &= ~ZF; // even for bit index 0
}

export const handlers: Record<string, Exec> = {
  bt_EvGv: (cpu, i) => bitTest(cpu, i, BT, cpu.regs[i.reg], true),
  bts_EvGv: (cpu, i) => bitTest(cpu, i, BTS, cpu.regs[i.reg], true),
  btr_EvGv: (cpu, i) => bitTest(cpu, i, BTR, cpu.regs[i.reg], true),
  btc_EvGv: (cpu, i) => bitTest(cpu, i, BTC, cpu.regs[i.reg], true),
  bt_EvIb: (cpu, i) => bitTest(cpu, i, BT, i.imm, false),
  bts_EvIb: (cpu, i) => bitTest(cpu, i, BTS, i.imm, false),
  btr_EvIb: (cpu, i) => bitTest(cpu, i, BTR, i.imm, false),
  btc_EvIb: (cpu, i) => bitTest(cpu, i, BTC, i.imm, false),
  bsf_GvEv: (cpu, i) => bitScan(cpu, i, false),
  bsr_GvEv: (cpu, i) => bitScan(cpu, i, true),
  bswap_Zd: (cpu, i) => {
    const v = cpu.regs[i.reg];
    if (i.o32) cpu.regs[i.reg] = (v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
    else cpu.setReg16(i.reg, 0);
  },
};
CC.forEach((cc, n) => {
  handlers[`set${cc}_Eb`] = (cpu, i) => cpu.writeE8(i, cond(cpu, n) ? 1 : 0);
  // The source is read even when the condition is false (its faults apply); a false condition
  // leaves the destination untouched (no zero-extension in IA-32).
  handlers[`cmov${cc}_GvEv`] = (cpu, i) => {
    const v = cpu.readEv(i);
    if (cond(cpu, n)) cpu.setReg(i.reg, v, i.o32);
  };
});
