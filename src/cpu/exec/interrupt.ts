// The interrupt family: INT n / INT3 / INTO / INT1, IRET in every mode, HLT, CLI/STI and
// PUSHF/POPF with their CPL/IOPL/virtual-8086/VME/PVI rules (SDM Vol. 2 and Vol. 3A 20.3-20.4).

import {
  AC, CR4_PVI, CR4_VME, CS, DS, ES, EXC_BP, EXC_DB, EXC_GP, EXC_OF, FS, GS, ID, IF,
  IOPL, NT, RF, SS, TF, VIF, VIP, VM, ESP,
} from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec } from '../insn.js';
import { deliverInterrupt, EV_PRIVSW, EV_SOFTWARE, EV_SOFT_EXCEPTION } from '../interrupts.js';
import {
  checkReturnCs, checkReturnSs, Descriptor, invalidateSegsForCpl, loadCacheFromDesc, loadCs, markAccessed,
} from '../segment-load.js';
import { taskReturn } from '../tasks.js';
import { skipSingleStep } from '../debug.js';
import { PROC_HLT_EXITING } from '../vmx/controls.js';
import { EXIT_REASON_HLT } from '../vmx/exit.js';
import { exitsByControl } from '../vmx/intercept.js';
import { guestIret } from '../vmx/events.js';

/** Arithmetic flags plus TF, DF, NT: what POPF/IRET may always change (IF and IOPL excluded). */
const BASE_FLAGS = 0x4dd5;

function iopl(cpu: Cpu): number {
  return (cpu.flags >>> 12) & 3; // IOPL is never lazy
}
/**
 * The EFLAGS bits POPF and IRET may change at the current CPL and IOPL (SDM POPF, IRET): IF only
 * when CPL <= IOPL, IOPL only at CPL 0, the high flags only with a 32-bit operand.
 */
function writableFlags(cpu: Cpu, o32: boolean): number {
  let m = BASE_FLAGS;
  if (o32) m |= AC | ID;
  if (cpu.cpl <= iopl(cpu)) m |= IF;
  if (cpu.cpl === 0) m |= IOPL;
  return m;
}
/** True in V86 with IOPL < 3, where PUSHF/POPF/IRET need CR4.VME and a 16-bit operand, else #GP(0). */
function vmeSensitive(cpu: Cpu, o32: boolean): boolean {
  if (!cpu.v86 || iopl(cpu) === 3) return false;
  if (o32 || !(cpu.cr4 & CR4_VME)) cpu.fault(EXC_GP, 0);
  return true;
}
/**
 * The VME POPF/IRET flag load (SDM 20.4.4): #GP(0) when it would set TF, or set IF while VIP is
 * pending; otherwise IF and IOPL stay and the popped IF goes to VIF.
 */
function loadFlagsVme(cpu: Cpu, temp: number): void {
  const cur = cpu.getEflags();
  if (temp & TF || (cur & VIP && temp & IF)) cpu.fault(EXC_GP, 0);
  cpu.setEflags((cur & ~(BASE_FLAGS | VIF)) | (temp & BASE_FLAGS) | (temp & IF ? VIF : 0));
}

// ---------------------------------------------------------------- INT n and friends

function softInt(cpu: Cpu, vector: number, kind: number): void {
  const tf = cpu.flags & TF;
  cpu.events?.onInterrupt?.(vector, kind);
  deliverInterrupt(cpu, vector, kind);
  if (tf) skipSingleStep(cpu);
}
const int_Ib: Exec = (cpu, i) => softInt(cpu, i.imm & 0xff, EV_SOFTWARE);
const int3: Exec = (cpu) => softInt(cpu, EXC_BP, EV_SOFT_EXCEPTION);
const into: Exec = (cpu) => {
  if (cpu.getOF()) softInt(cpu, EXC_OF, EV_SOFT_EXCEPTION);
};
/** INT1 (ICEBP): delivered as a hardware #DB (no gate DPL check, EXT = 1), DR6 untouched. */
const int1: Exec = (cpu) => softInt(cpu, EXC_DB, EV_PRIVSW);

// ---------------------------------------------------------------- IRET

/** Reads the k-th stack slot of `w` bytes above SS:eSP without popping. */
function stackSlot(cpu: Cpu, k: number, w: number): number {
  const off = cpu.sp + k * w;
  if (cpu.segAr[SS] & 0x4000) return w === 4 ? cpu.read32(SS, off) : cpu.read16(SS, off);
  return w === 4 ? cpu.read32(SS, off & 0xffff) : cpu.read16(SS, off & 0xffff);
}

const iret: Exec = (cpu, i) => {
  // NMI blocking ends here even if the IRET faults. In VMX non-root operation "NMI exiting" and
  // "virtual NMIs" change that, and a VM exit during this IRET reports the unblocking (vmx/events.ts).
  if (cpu.vmx.nonRoot) {
    guestIret(cpu);
  } else {
    cpu.nmiBlocked = false;
    if (cpu.nmiPending) cpu.attention = true;
  }
  const o32 = i.o32;
  if (!cpu.protectedMode) {
    iretRealStyle(cpu, o32, writableFlags(cpu, o32) | (o32 ? RF : 0));
  } else if (cpu.v86) {
    if (vmeSensitive(cpu, o32)) iretVme(cpu);
    else iretRealStyle(cpu, o32, writableFlags(cpu, o32) | (o32 ? RF : 0));
  } else if (cpu.getEflags() & NT) {
    taskReturn(cpu); // back to the task in the TSS back link (SDM 7.3)
  } else {
    iretProtected(cpu, o32);
  }
};

/** Real mode and V86 with IOPL = 3: pop (E)IP, CS, (E)FLAGS; `mask` says which flags load. */
function iretRealStyle(cpu: Cpu, o32: boolean, mask: number): void {
  const w = o32 ? 4 : 2;
  const eip = stackSlot(cpu, 0, w) >>> 0;
  const cs = stackSlot(cpu, 1, w) & 0xffff;
  const flags = stackSlot(cpu, 2, w);
  if (eip > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
  cpu.loadSeg(CS, cs);
  cpu.eip = eip;
  cpu.setEflags((cpu.getEflags() & ~mask) | (flags & mask));
  cpu.addSp(3 * w);
}

/** V86 with IOPL < 3 under CR4.VME (16-bit operand only). */
function iretVme(cpu: Cpu): void {
  const ip = stackSlot(cpu, 0, 2);
  const cs = stackSlot(cpu, 1, 2);
  const flags = stackSlot(cpu, 2, 2);
  if (ip > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
  loadFlagsVme(cpu, flags);
  cpu.loadSeg(CS, cs);
  cpu.eip = ip;
  cpu.addSp(6);
}

function iretProtected(cpu: Cpu, o32: boolean): void {
  const w = o32 ? 4 : 2;
  const eip = o32 ? stackSlot(cpu, 0, 4) >>> 0 : stackSlot(cpu, 0, 2);
  const cs = stackSlot(cpu, 1, w) & 0xffff;
  const temp = o32 ? stackSlot(cpu, 2, 4) : (cpu.getEflags() & ~0xffff) | stackSlot(cpu, 2, 2);
  if (o32 && temp & VM && cpu.cpl === 0) {
    iretToV86(cpu, eip, cs, temp);
    return;
  }
  checkReturnCs(cpu, cs, csDesc);
  const rpl = cs & 3;
  const outer = rpl > cpu.cpl;
  let esp = 0, ss = 0;
  if (outer) {
    esp = stackSlot(cpu, 3, w);
    ss = stackSlot(cpu, 4, w) & 0xffff;
    checkReturnSs(cpu, ss, rpl, ssDesc);
  }
  if (eip > csDesc.limit) cpu.fault(EXC_GP, 0);
  markAccessed(cpu, csDesc);
  if (outer) markAccessed(cpu, ssDesc);

  // Commit. The flags load by the rules of the CPL being left.
  const mask = writableFlags(cpu, o32) | (o32 ? RF : 0) | (o32 && cpu.cpl === 0 ? VIF | VIP : 0);
  cpu.setEflags((cpu.getEflags() & ~mask) | (temp & mask));
  cpu.eip = eip;
  if (outer) {
    loadCacheFromDesc(cpu, SS, ss, ssDesc);
    if (ssDesc.hi & 0x400000) cpu.regs[ESP] = esp;
    else cpu.setReg16(ESP, esp);
  } else {
    cpu.addSp(3 * w);
  }
  loadCs(cpu, cs, csDesc, rpl);
  if (outer) invalidateSegsForCpl(cpu);
}
const csDesc = new Descriptor();
const ssDesc = new Descriptor();

/** IRET at CPL 0 with VM set in the popped EFLAGS: RETURN-TO-VIRTUAL-8086-MODE. */
function iretToV86(cpu: Cpu, eip: number, cs: number, flags: number): void {
  const esp = stackSlot(cpu, 3, 4);
  const ss = stackSlot(cpu, 4, 4);
  const es = stackSlot(cpu, 5, 4);
  const ds = stackSlot(cpu, 6, 4);
  const fs = stackSlot(cpu, 7, 4);
  const gs = stackSlot(cpu, 8, 4);
  cpu.setEflags(flags);
  cpu.setCpl(3);
  cpu.loadSeg(CS, cs & 0xffff);
  cpu.loadSeg(SS, ss & 0xffff);
  cpu.loadSeg(ES, es & 0xffff);
  cpu.loadSeg(DS, ds & 0xffff);
  cpu.loadSeg(FS, fs & 0xffff);
  cpu.loadSeg(GS, gs & 0xffff);
  cpu.shadowAt = cpu.inhibitDebugAt = -1; // the SS load of IRET is not MOV SS: no shadow
  cpu.regs[ESP] = esp;
  cpu.eip = eip & 0xffff;
}

// ---------------------------------------------------------------- HLT, CLI, STI

const hlt: Exec = (cpu) => {
  if (cpu.cpl !== 0) cpu.fault(EXC_GP, 0);
  if (cpu.vmx.nonRoot && exitsByControl(cpu, PROC_HLT_EXITING, EXIT_REASON_HLT)) return;
  cpu.halted = true;
  cpu.attention = true;
  cpu.events?.onHalt?.();
};

/**
 * Which flag CLI/STI change (SDM CLI/STI tables): IF when IOPL allows; VIF in V86 under VME or
 * at CPL 3 under PVI; otherwise #GP(0).
 */
function interruptFlagFor(cpu: Cpu): number {
  if (!cpu.protectedMode) return IF;
  const pl = iopl(cpu);
  if (cpu.v86) {
    if (pl === 3) return IF;
    if (cpu.cr4 & CR4_VME) return VIF;
  } else {
    if (cpu.cpl <= pl) return IF;
    if (cpu.cpl === 3 && cpu.cr4 & CR4_PVI) return VIF;
  }
  return cpu.fault(EXC_GP, 0);
}
const cli: Exec = (cpu) => {
  cpu.setFlagBits(interruptFlagFor(cpu), 0);
};
const sti: Exec = (cpu) => {
  const bit = interruptFlagFor(cpu), flags = cpu.getEflags();
  if (bit === VIF) {
    if (flags & VIP) cpu.fault(EXC_GP, 0);
  } else if (!(flags & IF)) {
    cpu.shadowAt = cpu.icount + 1; // interrupts stay masked until after the next instruction
  }
  cpu.setFlagBits(bit, bit);
};

// ---------------------------------------------------------------- PUSHF, POPF

const pushf: Exec = (cpu, i) => {
  const flags = cpu.getEflags();
  if (vmeSensitive(cpu, i.o32)) {
    cpu.push16((flags & ~IF & 0xffff) | IOPL | (flags & VIF ? IF : 0));
  } else if (i.o32) {
    cpu.push32(flags & 0x00fcffff); // VM and RF read as 0 in the image
  } else {
    cpu.push16(flags & 0xffff);
  }
};
const popf: Exec = (cpu, i) => {
  const o32 = i.o32;
  const temp = o32 ? cpu.read32(SS, cpu.sp) : cpu.read16(SS, cpu.sp);
  if (vmeSensitive(cpu, o32)) {
    loadFlagsVme(cpu, temp);
  } else {
    const mask = writableFlags(cpu, o32);
    cpu.setEflags((cpu.getEflags() & ~(mask | RF)) | (temp & mask));
  }
  cpu.addSp(o32 ? 4 : 2);
};

export const handlers: Record<string, Exec> = {
  int_Ib, int3, into, int1, iret, hlt, cli, sti, pushf, popf,
};
