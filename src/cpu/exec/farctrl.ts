// Far control transfers: CALL/JMP ptr16:16/32 (Ap, Mp) and RETF / RETF imm16, in real mode,
// virtual-8086 mode and protected mode (SDM Vol. 2 CALL, JMP, RET; Vol. 3A 5.8 and 7.3):
// conforming and non-conforming code targets, call gates with the inner-privilege stack switch
// and parameter copy, task gates and TSSs (tasks.ts), and returns to the same or an outer level.
//
// Every check precedes every register write: return addresses and stack-switch frames are
// written below the stack pointer first (StackFrame), and ESP, SS, CS, CPL and EIP change last.

import {
  AR_DB, CS, ESP, EXC_GP, EXC_NP, SS, SYS_CALLGATE16, SYS_CALLGATE32, SYS_TASKGATE,
  SYS_TSS16_AVAIL, SYS_TSS32_AVAIL,
} from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import {
  Descriptor, StackFrame, checkInnerStack, checkReturnCs, checkReturnSs, invalidateSegsForCpl,
  loadCacheFromDesc, loadCs, markAccessed, readDescriptor, readTssStack, tssStack,
} from '../segment-load.js';
import { TS_CALL, TS_JMP, taskGateSwitch, taskSwitch } from '../tasks.js';

const target = new Descriptor();
const code = new Descriptor();
const stack = new Descriptor();
const frame = new StackFrame();

/** Reads an m16:16 / m16:32 far pointer operand: offset into farOffset, selector into farSel. */
let farOffset = 0, farSel = 0;
function readFarPointer(cpu: Cpu, i: Insn): void {
  const off = cpu.ea(i);
  farOffset = i.o32 ? cpu.read32(i.seg, off) >>> 0 : cpu.read16(i.seg, off);
  const selOff = off + (i.o32 ? 4 : 2);
  farSel = cpu.read16(i.seg, i.a32 ? selOff | 0 : selOff & 0xffff);
}

/**
 * Writes a far return address (CS, then EIP, each `width` bytes; CS zero-extended) below the
 * current stack pointer with the SS checks (#SS(0)); returns the new ESP without setting it.
 */
function writeReturnAddress(cpu: Cpu, width: number): number {
  frame.onCurrentStack(cpu, width, cpu.regs[ESP], 0);
  frame.push(cpu.seg[CS]);
  frame.push(cpu.eip);
  return frame.write(cpu);
}

/** Far JMP/CALL to sel:offset (offset already sized by the operand size). */
function farTransfer(cpu: Cpu, sel: number, offset: number, o32: boolean, call: boolean): void {
  if (!cpu.protectedMode || cpu.v86) {
    // Real and virtual-8086 mode: CS base = sel << 4, no descriptor checks.
    const esp = call ? writeReturnAddress(cpu, o32 ? 4 : 2) : 0;
    if (offset > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
    if (call) cpu.regs[ESP] = esp;
    cpu.loadSeg(CS, sel);
    cpu.eip = offset;
    return;
  }
  const err = sel & 0xfffc, rpl = sel & 3, cpl = cpu.cpl;
  if (err === 0) cpu.fault(EXC_GP, 0);
  const d = target;
  if (!readDescriptor(cpu, sel, d)) cpu.fault(EXC_GP, err);
  if (d.isSegment) {
    if (!d.isCode) cpu.fault(EXC_GP, err);
    if (d.isConformingCode ? d.dpl > cpl : rpl > cpl || d.dpl !== cpl) cpu.fault(EXC_GP, err);
    if (!d.present) cpu.fault(EXC_NP, err);
    sameLevel(cpu, sel, d, offset, o32, call);
    return;
  }
  switch (d.type) {
    case SYS_CALLGATE16: case SYS_CALLGATE32:
      if (d.dpl < cpl || rpl > d.dpl) cpu.fault(EXC_GP, err);
      if (!d.present) cpu.fault(EXC_NP, err);
      throughCallGate(cpu, d, call);
      return;
    case SYS_TASKGATE:
      if (d.dpl < cpl || rpl > d.dpl) cpu.fault(EXC_GP, err);
      if (!d.present) cpu.fault(EXC_NP, err);
      taskGateSwitch(cpu, d.gateSelector, call ? TS_CALL : TS_JMP, 0);
      return;
    case SYS_TSS16_AVAIL: case SYS_TSS32_AVAIL:
      if (d.dpl < cpl || rpl > d.dpl) cpu.fault(EXC_GP, err);
      if (!d.present) cpu.fault(EXC_NP, err);
      taskSwitch(cpu, sel, d, call ? TS_CALL : TS_JMP, 0);
      return;
    default:
      cpu.fault(EXC_GP, err); // busy TSS, LDT, interrupt/trap gate, reserved type
  }
}

/**
 * Transfer to a checked code segment without a privilege change: CALL writes the return address
 * (#SS(0)), then the target offset must lie within the limit (#GP(0)); CS.RPL := CPL.
 */
function sameLevel(cpu: Cpu, sel: number, d: Descriptor, offset: number, o32: boolean, call: boolean): void {
  const esp = call ? writeReturnAddress(cpu, o32 ? 4 : 2) : 0;
  if (offset > d.limit) cpu.fault(EXC_GP, 0);
  loadCs(cpu, sel, d, cpu.cpl);
  if (call) cpu.regs[ESP] = esp;
  cpu.eip = offset;
}

/** JMP/CALL through a checked, present call gate `g` (SDM CALL/JMP "CALL-GATE"). */
function throughCallGate(cpu: Cpu, g: Descriptor, call: boolean): void {
  const csSel = g.gateSelector, err = csSel & 0xfffc, cpl = cpu.cpl;
  const gate32 = g.type === SYS_CALLGATE32;
  const offset = gate32 ? g.gateOffset : g.gateOffset & 0xffff;
  if (err === 0) cpu.fault(EXC_GP, 0);
  const d = code;
  if (!readDescriptor(cpu, csSel, d)) cpu.fault(EXC_GP, err);
  if (!d.isCode || d.dpl > cpl) cpu.fault(EXC_GP, err);
  if (!call && !d.isConformingCode && d.dpl !== cpl) cpu.fault(EXC_GP, err);
  if (!d.present) cpu.fault(EXC_NP, err);
  if (call && !d.isConformingCode && d.dpl < cpl) {
    callInner(cpu, g, csSel, d, offset, gate32);
    return;
  }
  sameLevel(cpu, csSel, d, offset, gate32, call);
}

/**
 * CALL through a gate to a more privileged non-conforming segment: the stack of the new level
 * comes from the TSS; the caller's SS:ESP, `count` parameters copied from its stack, and CS:EIP
 * are pushed on it (sized by the gate), then SS, CS, CPL and EIP are loaded.
 */
function callInner(cpu: Cpu, g: Descriptor, csSel: number, d: Descriptor, offset: number, gate32: boolean): void {
  const newCpl = d.dpl, width = gate32 ? 4 : 2, count = g.gateParams;
  readTssStack(cpu, newCpl, 0);
  const ssSel = tssStack.ss;
  checkInnerStack(cpu, ssSel, newCpl, 0, stack);
  // ESP := ESPn from the TSS; on a 16-bit stack the pushes then move only SP.
  frame.onDescribedStack(stack, width, tssStack.esp, ssSel & 0xfffc);
  // The room check precedes the parameter reads from the caller's stack (SDM CALL).
  frame.checkRoom(cpu, 4 + count);
  frame.push(cpu.seg[SS]);
  frame.push(cpu.regs[ESP]);
  // Parameters keep their order: the deepest one (highest address) is pushed first.
  const oldSp = cpu.sp, spMask = cpu.segAr[SS] & AR_DB ? -1 : 0xffff;
  for (let k = count - 1; k >= 0; k--) {
    const off = (oldSp + k * width) & spMask;
    frame.push(gate32 ? cpu.read32(SS, off) : cpu.read16(SS, off));
  }
  frame.push(cpu.seg[CS]);
  frame.push(cpu.eip);
  const newEsp = frame.write(cpu);
  if (offset > d.limit) cpu.fault(EXC_GP, 0);
  loadCs(cpu, csSel, d, newCpl);
  loadCacheFromDesc(cpu, SS, ssSel, stack);
  cpu.regs[ESP] = newEsp;
  cpu.eip = offset;
}

/** A whole 2- or 4-byte stack slot (its full width is limit-checked, as a POP would). */
function stackSlot(cpu: Cpu, off: number, o32: boolean): number {
  return o32 ? cpu.read32(SS, off) : cpu.read16(SS, off);
}

/** RETF / RETF imm16: `imm` extra bytes released from each stack. */
function farReturn(cpu: Cpu, o32: boolean, imm: number): void {
  const w = o32 ? 4 : 2;
  const sp = cpu.sp, mask = cpu.segAr[SS] & AR_DB ? -1 : 0xffff;
  const eip = stackSlot(cpu, sp & mask, o32) >>> 0;
  const csSel = stackSlot(cpu, (sp + w) & mask, o32) & 0xffff;
  if (!cpu.protectedMode || cpu.v86) {
    if (eip > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
    cpu.loadSeg(CS, csSel);
    cpu.eip = eip;
    cpu.addSp(2 * w + imm);
    return;
  }
  const d = code;
  checkReturnCs(cpu, csSel, d);
  const rpl = csSel & 3;
  if (rpl === cpu.cpl) {
    if (eip > d.limit) cpu.fault(EXC_GP, 0);
    loadCs(cpu, csSel, d, rpl);
    cpu.eip = eip;
    cpu.addSp(2 * w + imm);
    return;
  }
  // Return to an outer level: the caller's SS:ESP lies above the released parameters.
  const newEsp = stackSlot(cpu, (sp + 2 * w + imm) & mask, o32);
  const ssSel = stackSlot(cpu, (sp + 3 * w + imm) & mask, o32) & 0xffff;
  checkReturnSs(cpu, ssSel, rpl, stack);
  if (eip > d.limit) cpu.fault(EXC_GP, 0);
  // Commit; the accessed-bit writes (the only possible faults) come first.
  markAccessed(cpu, stack);
  loadCs(cpu, csSel, d, rpl);
  // The imm bytes are released on the caller's stack too.
  loadCacheFromDesc(cpu, SS, ssSel, stack);
  if (stack.hi & 0x400000) cpu.regs[ESP] = (newEsp + imm) | 0;
  else cpu.setReg16(ESP, newEsp + imm);
  cpu.eip = eip;
  invalidateSegsForCpl(cpu);
}

const callAp: Exec = (cpu, i) => farTransfer(cpu, i.imm2, i.imm >>> 0, i.o32, true);
const jmpAp: Exec = (cpu, i) => farTransfer(cpu, i.imm2, i.imm >>> 0, i.o32, false);
const callMp: Exec = (cpu, i) => {
  readFarPointer(cpu, i);
  farTransfer(cpu, farSel, farOffset, i.o32, true);
};
const jmpMp: Exec = (cpu, i) => {
  readFarPointer(cpu, i);
  farTransfer(cpu, farSel, farOffset, i.o32, false);
};

export const handlers: Record<string, Exec> = {
  call_Ap: callAp,
  jmp_Ap: jmpAp,
  call_Mp: callMp,
  jmp_Mp: jmpMp,
  retf: (cpu, i) => farReturn(cpu, i.o32, 0),
  retf_Iw: (cpu, i) => farReturn(cpu, i.o32, i.imm & 0xffff),
};
