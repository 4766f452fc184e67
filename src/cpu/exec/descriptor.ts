// Descriptor-table instructions (SDM Vol. 2): LAR, LSL, VERR, VERW, ARPL, SLDT, STR, LLDT, LTR,
// SGDT, SIDT, LGDT, LIDT. With "descriptor-table exiting" the last eight are VM exits in VMX
// non-root operation, after their #UD and CPL checks (SDM Vol. 3C 25.1.3).

import {
  EXC_GP, EXC_NP, EXC_UD, LDTR, SYS_CALLGATE16, SYS_CALLGATE32, SYS_LDT, SYS_TASKGATE,
  SYS_TSS16_AVAIL, SYS_TSS16_BUSY, SYS_TSS32_AVAIL, SYS_TSS32_BUSY, TR, ZF,
} from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { descriptorTableExits } from '../vmx/intercept.js';
import { desc, isNullSelector, loadCacheFromDesc, loadNull, readDescriptor } from '../segment-load.js';

/** LAR, LSL, VERR, VERW, ARPL, SLDT, STR, LLDT, LTR are #UD in real and virtual-8086 mode. */
function requireProtected(cpu: Cpu): void {
  if (!cpu.protectedMode || cpu.v86) cpu.faultNoCode(EXC_UD);
}
/** LLDT, LTR, LGDT, LIDT: #GP(0) unless CPL = 0 (virtual-8086 mode runs at CPL 3). */
function requireCpl0(cpu: Cpu): void {
  if (cpu.v86 || cpu.cpl !== 0) cpu.fault(EXC_GP, 0);
}
function setZf(cpu: Cpu, on: boolean): void {
  cpu.setFlagBits(ZF, on ? ZF : 0);
}

// System descriptor types LAR and LSL accept (SDM LAR/LSL tables): bit n set = type n valid.
const LAR_SYSTEM = (1 << SYS_TSS16_AVAIL) | (1 << SYS_LDT) | (1 << SYS_TSS16_BUSY) | (1 << SYS_CALLGATE16) |
  (1 << SYS_TASKGATE) | (1 << SYS_TSS32_AVAIL) | (1 << SYS_TSS32_BUSY) | (1 << SYS_CALLGATE32);
const LSL_SYSTEM = (1 << SYS_TSS16_AVAIL) | (1 << SYS_LDT) | (1 << SYS_TSS16_BUSY) | (1 << SYS_TSS32_AVAIL) |
  (1 << SYS_TSS32_BUSY);

/**
 * The common check of LAR and LSL: the selector is not null, lies within its table, names a
 * code/data segment or a system type in `systemTypes`, and (unless conforming code) DPL >= CPL
 * and DPL >= RPL. Leaves the descriptor in `desc`. No fault but those of reading the table.
 */
function accessible(cpu: Cpu, sel: number, systemTypes: number): boolean {
  if (isNullSelector(sel) || !readDescriptor(cpu, sel)) return false;
  if (!desc.isSegment && ((systemTypes >>> desc.type) & 1) === 0) return false;
  return desc.isConformingCode || (desc.dpl >= cpu.cpl && desc.dpl >= (sel & 3));
}

/**
 * LAR: the access-rights bytes of the second dword. 32-bit operand size: AND 00FFFF00H (bits
 * 16-19, the limit's high nibble, are "undefined": this model returns them, as Intel CPUs and
 * Bochs do); 16-bit: AND FF00H.
 */
const lar: Exec = (cpu, i) => {
  requireProtected(cpu);
  const ok = accessible(cpu, cpu.readE16(i), LAR_SYSTEM);
  if (ok) cpu.setReg(i.reg, desc.hi & (i.o32 ? 0x00ffff00 : 0xff00), i.o32);
  setZf(cpu, ok);
};

/** LSL: the byte-granular segment limit (truncated to 16 bits with a 16-bit operand size). */
const lsl: Exec = (cpu, i) => {
  requireProtected(cpu);
  const ok = accessible(cpu, cpu.readE16(i), LSL_SYSTEM);
  if (ok) cpu.setReg(i.reg, desc.limit | 0, i.o32);
  setZf(cpu, ok);
};

/** VERR/VERW: ZF = 1 when the segment is readable (writable) at CPL and RPL; presence is not checked. */
function verify(write: boolean): Exec {
  return (cpu, i) => {
    requireProtected(cpu);
    const sel = cpu.readE16(i);
    let ok = !isNullSelector(sel) && readDescriptor(cpu, sel) && desc.isSegment;
    if (ok) {
      ok = write ? desc.isWritableData : desc.isDataOrReadableCode;
      if (ok && !desc.isConformingCode) ok = desc.dpl >= cpu.cpl && desc.dpl >= (sel & 3);
    }
    setZf(cpu, ok);
  };
}

/** ARPL: raise the destination selector's RPL to the source's; ZF tells whether it changed. */
const arpl: Exec = (cpu, i) => {
  requireProtected(cpu);
  const src = cpu.getReg16(i.reg);
  const memory = i.mod !== 3;
  const dst = memory ? cpu.readModify16(i.seg, cpu.ea(i)) : cpu.getReg16(i.rm);
  const raise = (dst & 3) < (src & 3);
  if (raise) {
    const v = (dst & ~3) | (src & 3);
    if (memory) cpu.writeModified16(v);
    else cpu.setReg16(i.rm, v);
  }
  setZf(cpu, raise);
};

/**
 * SLDT/STR: the selector; memory receives 16 bits, a 32-bit register gets it zero-extended
 * (P6 and later, SDM SLDT/STR). No CPL restriction (this model has no UMIP).
 */
function storeSelector(s: number): Exec {
  return (cpu, i) => {
    requireProtected(cpu);
    if (cpu.vmx.nonRoot && descriptorTableExits(cpu, i, false)) return;
    const v = cpu.seg[s];
    if (i.mod === 3 && i.o32) cpu.regs[i.rm] = v;
    else cpu.writeE16(i, v);
  };
}

/** LLDT: null makes LDTR unusable; otherwise a present LDT descriptor in the GDT (SDM LLDT). */
const lldt: Exec = (cpu, i) => {
  requireProtected(cpu);
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot && descriptorTableExits(cpu, i, false)) return;
  const sel = cpu.readE16(i), err = sel & 0xfffc;
  if (isNullSelector(sel)) {
    loadNull(cpu, LDTR, sel);
    return;
  }
  if (sel & 4 || !readDescriptor(cpu, sel)) cpu.fault(EXC_GP, err);
  if (desc.isSegment || desc.type !== SYS_LDT) cpu.fault(EXC_GP, err);
  if (!desc.present) cpu.fault(EXC_NP, err);
  loadCacheFromDesc(cpu, LDTR, sel);
};

/** LTR: an available, present TSS in the GDT; it is marked busy in memory and in TR (SDM LTR). */
const ltr: Exec = (cpu, i) => {
  requireProtected(cpu);
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot && descriptorTableExits(cpu, i, false)) return;
  const sel = cpu.readE16(i), err = sel & 0xfffc;
  if (isNullSelector(sel)) cpu.fault(EXC_GP, 0);
  if (sel & 4 || !readDescriptor(cpu, sel)) cpu.fault(EXC_GP, err);
  if (desc.isSegment || (desc.type !== SYS_TSS16_AVAIL && desc.type !== SYS_TSS32_AVAIL)) cpu.fault(EXC_GP, err);
  if (!desc.present) cpu.fault(EXC_NP, err);
  desc.hi |= 0x200;
  cpu.writeLinear8((desc.addr + 5) | 0, (desc.hi >>> 8) & 0xff, false);
  loadCacheFromDesc(cpu, TR, sel);
};

/**
 * SGDT/SIDT: limit, then the full 32-bit base, whatever the operand size: the current SDM text
 * ("full 32-bit base address stored" for 16- and 32-bit operand sizes) and Bochs. (QEMU stores
 * a 24-bit base with a zero high byte for a 16-bit operand size.) Both parts are checked before
 * either is written.
 */
function storeTable(idt: boolean): Exec {
  return (cpu, i) => {
    if (cpu.vmx.nonRoot && descriptorTableExits(cpu, i, true)) return;
    const off = cpu.ea(i);
    const baseOff = i.a32 ? (off + 2) | 0 : (off + 2) & 0xffff;
    const limLin = cpu.linear(i.seg, off, 2, true);
    const baseLin = cpu.linear(i.seg, baseOff, 4, true);
    cpu.probeWrite(limLin, 2);
    cpu.probeWrite(baseLin, 4);
    const user = cpu.cpl === 3;
    cpu.writeLinear16(limLin, idt ? cpu.idtrLimit : cpu.gdtrLimit, user);
    cpu.writeLinear32(baseLin, idt ? cpu.idtrBase : cpu.gdtrBase, user);
  };
}

/** LGDT/LIDT: a 16-bit operand size loads only 24 bits of base (SDM LGDT/LIDT). */
function loadTable(idt: boolean): Exec {
  return (cpu: Cpu, i: Insn) => {
    requireCpl0(cpu);
    if (cpu.vmx.nonRoot && descriptorTableExits(cpu, i, true)) return;
    const off = cpu.ea(i);
    const limit = cpu.read16(i.seg, off);
    let base = cpu.read32(i.seg, i.a32 ? (off + 2) | 0 : (off + 2) & 0xffff);
    if (!i.o32) base &= 0xffffff;
    if (idt) {
      cpu.idtrLimit = limit;
      cpu.idtrBase = base;
    } else {
      cpu.gdtrLimit = limit;
      cpu.gdtrBase = base;
    }
  };
}

export const handlers: Record<string, Exec> = {
  lar_GvEw: lar,
  lsl_GvEw: lsl,
  verr_Ew: verify(false),
  verw_Ew: verify(true),
  arpl_EwGw: arpl,
  sldt_Ev: storeSelector(LDTR),
  str_Ev: storeSelector(TR),
  lldt_Ew: lldt,
  ltr_Ew: ltr,
  sgdt_Ms: storeTable(false),
  sidt_Ms: storeTable(true),
  lgdt_Ms: loadTable(false),
  lidt_Ms: loadTable(true),
};
