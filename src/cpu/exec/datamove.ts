// The datamove family: MOV (general, immediate and moffs forms), XCHG, LEA, MOVZX/MOVSX,
// CMPXCHG/CMPXCHG8B, XADD, XLAT, LAHF/SAHF, the CF/DF flag instructions, NOP/PAUSE/hint NOPs
// and BOUND (SDM Vol. 2). MOV to/from segment, control and debug registers belong to the
// segment and system families.

import { AF, CF, DF, EAX, EBX, ECX, EDX, EXC_BR, PF, SF, ZF } from '../constants.js';
import { LZ_ADD, LZ_SUB, type Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { PROC_PAUSE_EXITING } from '../vmx/controls.js';
import { EXIT_REASON_PAUSE } from '../vmx/exit.js';
import { exitsByControl } from '../vmx/intercept.js';
import { setCF } from './arith.js';
import { byteForm, bySize, readMemV, regV, setRegV, sized, writeMemV, type SizedShapes } from './variants.js';

/** The five flags LAHF/SAHF move between AH and EFLAGS. */
const AH_FLAGS = SF | ZF | AF | PF | CF;

const nop: Exec = () => {};
/** PAUSE is a NOP, but a VM exit in VMX non-root operation with "PAUSE exiting" (no PAUSE-loop exiting here). */
const pause: Exec = (cpu) => {
  if (cpu.vmx.nonRoot) exitsByControl(cpu, PROC_PAUSE_EXITING, EXIT_REASON_PAUSE);
};

// ---- Register and read-modify-write operands of CMPXCHG/XADD/XCHG at 8, 16 or 32 bits ----

/** Register n at `size` bits, zero-extended (8: the byte-register encoding). */
function readReg(cpu: Cpu, n: number, size: number): number {
  return size === 8 ? cpu.getReg8(n) : size === 16 ? cpu.regs[n] & 0xffff : cpu.regs[n];
}
function writeReg(cpu: Cpu, n: number, v: number, size: number): void {
  if (size === 8) cpu.setReg8(n, v);
  else cpu.setReg(n, v, size === 32);
}
/** The r/m memory operand read for writing (its write permission checked first). */
function readModify(cpu: Cpu, i: Insn, size: number): number {
  const off = cpu.ea(i);
  return size === 8 ? cpu.readModify8(i.seg, off) : size === 16 ? cpu.readModify16(i.seg, off) : cpu.readModify32(i.seg, off);
}
function writeModified(cpu: Cpu, v: number, size: number): void {
  if (size === 8) cpu.writeModified8(v);
  else if (size === 16) cpu.writeModified16(v);
  else cpu.writeModified32(v);
}

/**
 * CMPXCHG of a `size`-bit destination: compare the accumulator with it (flags of CMP); equal:
 * store the source; different: load the accumulator. A memory destination is always written,
 * with its own value on failure (SDM CMPXCHG: the processor never produces a locked read without
 * a locked write).
 */
function cmpxchg(cpu: Cpu, i: Insn, size: number): void {
  const acc = readReg(cpu, EAX, size), src = readReg(cpu, i.reg, size);
  const dest = i.mod === 3 ? readReg(cpu, i.rm, size) : readModify(cpu, i, size);
  cpu.setLazy(LZ_SUB, acc, dest, (acc - dest) & (size === 32 ? -1 : (1 << size) - 1), size);
  const equal = acc === dest;
  if (i.mod !== 3) writeModified(cpu, equal ? src : dest, size);
  else if (equal) writeReg(cpu, i.rm, src, size);
  if (!equal) writeReg(cpu, EAX, dest, size);
}

/** XADD: TEMP = SRC + DEST; SRC = DEST; DEST = TEMP (the destination written last). */
function xadd(cpu: Cpu, i: Insn, size: number): void {
  const src = readReg(cpu, i.reg, size);
  const dest = i.mod === 3 ? readReg(cpu, i.rm, size) : readModify(cpu, i, size);
  const sum = (src + dest) & (size === 32 ? -1 : (1 << size) - 1);
  if (i.mod !== 3) writeModified(cpu, sum, size);
  cpu.setLazy(LZ_ADD, dest, src, sum, size);
  writeReg(cpu, i.reg, dest, size);
  if (i.mod === 3) writeReg(cpu, i.rm, sum, size);
}

/** XCHG of a register with the r/m operand (memory: read-modify-write, register last). */
function xchg(cpu: Cpu, i: Insn, size: number): void {
  const g = readReg(cpu, i.reg, size);
  let e: number;
  if (i.mod === 3) {
    e = readReg(cpu, i.rm, size);
    writeReg(cpu, i.rm, g, size);
  } else {
    e = readModify(cpu, i, size);
    writeModified(cpu, g, size);
  }
  writeReg(cpu, i.reg, e, size);
}

// ---- Shapes of MOV and of the zero/sign extensions (exec/variants.ts) ----

/** MOV Ev, Gv (`imm`: MOV Ev, Iz). Stored values are masked to the operand size (MMIO sees them so). */
function movEvShapes(imm: boolean): SizedShapes {
  const shape = (memory: boolean, size: number): Exec => (cpu, i) => {
    const v = imm ? i.imm : regV(cpu, i.reg, size);
    if (memory) writeMemV(cpu, i, v, size);
    else setRegV(cpu, i.rm, v, size);
  };
  return { r16: shape(false, 16), r32: shape(false, 32), m16: shape(true, 16), m32: shape(true, 32) };
}
/** MOV Eb, Gb (`imm`: MOV Eb, Ib). */
function movEbShapes(imm: boolean): { r: Exec; m: Exec } {
  return {
    r: (cpu, i) => cpu.setReg8(i.rm, imm ? i.imm : cpu.getReg8(i.reg)),
    m: (cpu, i) => cpu.write8(i.seg, cpu.ea(i), imm ? i.imm : cpu.getReg8(i.reg)),
  };
}
/**
 * A register loaded from the r/m operand of `from` bits (8, 16 or 32; for 32 the operand size
 * decides), sign-extended when `signed`: MOV Gv, Ev and MOVZX/MOVSX.
 */
function loadShapes(from: number, signed: boolean): SizedShapes {
  const shape = (memory: boolean, size: number): Exec => (cpu, i) => {
    const n = from === 32 ? size : from;
    let v: number;
    if (n === 8) v = memory ? cpu.read8(i.seg, cpu.ea(i)) : cpu.getReg8(i.rm);
    else v = memory ? readMemV(cpu, i, n) : regV(cpu, i.rm, n);
    if (signed) v = (v << (32 - n)) >> (32 - n);
    setRegV(cpu, i.reg, v, size);
  };
  return { r16: shape(false, 16), r32: shape(false, 32), m16: shape(true, 16), m32: shape(true, 32) };
}

export const handlers: Record<string, Exec> = {
  ...byteForm('mov_EbGb', movEbShapes(false)),
  ...sized('mov_EvGv', movEvShapes(false)),
  ...byteForm('mov_GbEb', {
    r: (cpu, i) => cpu.setReg8(i.reg, cpu.getReg8(i.rm)),
    m: (cpu, i) => cpu.setReg8(i.reg, cpu.read8(i.seg, cpu.ea(i))),
  }),
  ...sized('mov_GvEv', loadShapes(32, false)),
  // moffs forms: the decoder leaves a displacement-only memory operand.
  mov_ALOb: (cpu, i) => cpu.setReg8(EAX, cpu.read8(i.seg, cpu.ea(i))),
  mov_eAXOv: (cpu, i) => cpu.setReg(EAX, cpu.readEv(i), i.o32),
  mov_ObAL: (cpu, i) => cpu.write8(i.seg, cpu.ea(i), cpu.regs[EAX] & 0xff),
  mov_OveAX: (cpu, i) => cpu.writeEv(i, cpu.getReg(EAX, i.o32)),
  mov_ZbIb: (cpu, i) => cpu.setReg8(i.reg, i.imm),
  ...bySize('mov_ZvIv', (cpu, i) => setRegV(cpu, i.reg, i.imm, 16), (cpu, i) => setRegV(cpu, i.reg, i.imm, 32)),
  ...byteForm('mov_EbIb', movEbShapes(true)),
  ...sized('mov_EvIz', movEvShapes(true)),
  xchg_ZveAX: (cpu, i) => {
    const a = cpu.regs[EAX];
    cpu.setReg(EAX, cpu.regs[i.reg], i.o32);
    cpu.setReg(i.reg, a, i.o32);
  },
  xchg_EbGb: (cpu, i) => xchg(cpu, i, 8),
  xchg_EvGv: (cpu, i) => xchg(cpu, i, i.o32 ? 32 : 16),
  lea_GvM: (cpu, i) => cpu.setReg(i.reg, cpu.ea(i), i.o32),
  // LEA has a memory operand only: its variants are the two operand sizes.
  'lea_GvM:m16': (cpu, i) => setRegV(cpu, i.reg, cpu.ea(i), 16),
  'lea_GvM:m32': (cpu, i) => setRegV(cpu, i.reg, cpu.ea(i), 32),
  ...sized('movzx_GvEb', loadShapes(8, false)),
  ...sized('movzx_GvEw', loadShapes(16, false)),
  ...sized('movsx_GvEb', loadShapes(8, true)),
  ...sized('movsx_GvEw', loadShapes(16, true)),
  cmpxchg_EbGb: (cpu, i) => cmpxchg(cpu, i, 8),
  cmpxchg_EvGv: (cpu, i) => cmpxchg(cpu, i, i.o32 ? 32 : 16),
  cmpxchg8b_Mq: (cpu, i) => {
    // Both dwords are checked for writing before anything is read or written; on a mismatch
    // the old value is written back (the locked cycle) and EDX:EAX receive it. Only ZF changes.
    const lin = cpu.linear(i.seg, cpu.ea(i), 8, true);
    cpu.probeWrite(lin, 8);
    const user = cpu.cpl === 3, hiLin = (lin + 4) | 0;
    const lo = cpu.readLinear32(lin, user), hi = cpu.readLinear32(hiLin, user);
    const equal = lo === cpu.regs[EAX] && hi === cpu.regs[EDX];
    cpu.writeLinear32(lin, equal ? cpu.regs[EBX] : lo, user);
    cpu.writeLinear32(hiLin, equal ? cpu.regs[ECX] : hi, user);
    if (!equal) {
      cpu.regs[EAX] = lo;
      cpu.regs[EDX] = hi;
    }
    cpu.setFlagBits(ZF, equal ? ZF : 0);
  },
  xadd_EbGb: (cpu, i) => xadd(cpu, i, 8),
  xadd_EvGv: (cpu, i) => xadd(cpu, i, i.o32 ? 32 : 16),
  xlat: (cpu, i) => {
    const off = i.a32 ? (cpu.regs[EBX] + (cpu.regs[EAX] & 0xff)) | 0 : (cpu.regs[EBX] + (cpu.regs[EAX] & 0xff)) & 0xffff;
    cpu.setReg8(EAX, cpu.read8(i.seg, off));
  },
  lahf: (cpu) => cpu.setReg8(4 /* AH */, cpu.getEflags() & 0xff),
  sahf: (cpu) => cpu.setFlagBits(AH_FLAGS, (cpu.regs[EAX] >> 8) & 0xff),
  clc: (cpu) => setCF(cpu, false),
  stc: (cpu) => setCF(cpu, true),
  cmc: (cpu) => setCF(cpu, !cpu.getCF()),
  cld: (cpu) => { cpu.flags &= ~DF; },
  std: (cpu) => { cpu.flags |= DF; },
  nop,
  pause,
  nop_Ev: nop, // hint NOPs and PREFETCHh: no memory access, no fault
  bound_GvMa: (cpu, i) => {
    const off = cpu.ea(i);
    let lower: number, upper: number;
    const index = i.o32 ? cpu.regs[i.reg] : (cpu.regs[i.reg] << 16) >> 16;
    if (i.o32) {
      lower = cpu.read32(i.seg, off);
      upper = cpu.read32(i.seg, i.a32 ? (off + 4) | 0 : (off + 4) & 0xffff);
    } else {
      lower = (cpu.read16(i.seg, off) << 16) >> 16;
      upper = (cpu.read16(i.seg, i.a32 ? (off + 2) | 0 : (off + 2) & 0xffff) << 16) >> 16;
    }
    if (index < lower || index > upper) cpu.faultNoCode(EXC_BR);
  },
};
