// Segment-register moves: MOV Sw,Ew / MOV Ev,Sw, PUSH/POP of ES, CS, SS, DS, FS, GS, and
// LDS/LES/LFS/LGS/LSS (SDM Vol. 2). The mode-specific load rules are cpu.loadSeg's (protected
// mode: segment-load.ts); the decoder already makes MOV to CS and sreg numbers above 5 #UD.

import { AR_DB, CS, DS, ES, ESP, FS, GS, SS } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';

/** MOV Sw,Ew: a 16-bit source whatever the operand size; MOV SS starts the interrupt shadow (cpu.loadSeg). */
const movSwEw: Exec = (cpu, i) => {
  cpu.loadSeg(i.reg, cpu.readE16(i));
};

/**
 * MOV Ev,Sw: memory always receives 16 bits. A 32-bit register destination gets the selector
 * zero-extended (the SDM leaves the high word implementation-dependent; P6 and later clear it).
 */
const movEvSw: Exec = (cpu, i) => {
  const v = cpu.seg[i.reg];
  if (i.mod === 3 && i.o32) cpu.regs[i.rm] = v;
  else cpu.writeE16(i, v);
};

/**
 * PUSH sreg. With a 32-bit operand size only the low 16 bits of the 4-byte slot are written
 * and ESP moves by 4: the 16-bit move of P6 and later processors (SDM PUSH), as Bochs does.
 */
function pushSeg(s: number): Exec {
  return (cpu, i) => {
    const v = cpu.seg[s];
    if (!i.o32) {
      cpu.push16(v);
      return;
    }
    const sp = cpu.sp, off = cpu.segAr[SS] & AR_DB ? (sp - 4) | 0 : (sp - 4) & 0xffff;
    cpu.write16(SS, off, v);
    cpu.addSp(-4);
  };
}

/**
 * POP sreg: the selector is read (16 bits, or the low half of a 32-bit slot), loaded with all
 * checks, and only then is ESP moved, by the old stack's size: a failing load leaves ESP as it was.
 */
function popSeg(s: number): Exec {
  return (cpu, i) => {
    const big = (cpu.segAr[SS] & AR_DB) !== 0, n = i.o32 ? 4 : 2;
    const sel = i.o32 ? cpu.read32(SS, cpu.sp) & 0xffff : cpu.read16(SS, cpu.sp);
    const esp = cpu.regs[ESP];
    cpu.loadSeg(s, sel);
    cpu.regs[ESP] = big ? (esp + n) | 0 : (esp & ~0xffff) | ((esp + n) & 0xffff);
  };
}

/**
 * LDS/LES/LFS/LGS/LSS: offset then selector from memory; the segment load comes first (it may
 * fault), then the general register. LSS loads SS:ESP together, so it starts no interrupt shadow.
 */
function loadFarPointer(s: number): Exec {
  return (cpu: Cpu, i: Insn) => {
    const off = cpu.ea(i);
    const offset = i.o32 ? cpu.read32(i.seg, off) : cpu.read16(i.seg, off);
    const selOff = off + (i.o32 ? 4 : 2);
    const sel = cpu.read16(i.seg, i.a32 ? selOff | 0 : selOff & 0xffff);
    const shadow = cpu.shadowAt, inhibitDebug = cpu.inhibitDebugAt;
    cpu.loadSeg(s, sel);
    if (s === SS) {
      cpu.shadowAt = shadow;
      cpu.inhibitDebugAt = inhibitDebug;
    }
    cpu.setReg(i.reg, offset, i.o32);
  };
}

export const handlers: Record<string, Exec> = {
  mov_SwEw: movSwEw,
  mov_EvSw: movEvSw,
  push_ES: pushSeg(ES), pop_ES: popSeg(ES),
  push_CS: pushSeg(CS),
  push_SS: pushSeg(SS), pop_SS: popSeg(SS),
  push_DS: pushSeg(DS), pop_DS: popSeg(DS),
  push_FS: pushSeg(FS), pop_FS: popSeg(FS),
  push_GS: pushSeg(GS), pop_GS: popSeg(GS),
  les_GvMp: loadFarPointer(ES),
  lds_GvMp: loadFarPointer(DS),
  lss_GvMp: loadFarPointer(SS),
  lfs_GvMp: loadFarPointer(FS),
  lgs_GvMp: loadFarPointer(GS),
};
