// Hardware task switches (SDM Vol. 3A chapter 7): JMP or CALL to a TSS or task gate, INT through
// a task gate, and IRET with NT set. 32-bit and 16-bit TSSs, busy bits, the back link and NT,
// saving the outgoing task, loading the incoming one (CR3, LDTR, segment registers) and the T
// (debug trap) bit.
//
// Everything before the commit point (new-TSS checks, reading the new TSS, saving the old state,
// busy bits, back link) faults in the context of the old task with nothing of the CPU changed.
// After it, the new task's registers are in place and the segment descriptors are checked in the
// P6 order of SDM Table 7-1; a fault there is delivered in the new task (its CS:EIP).

import {
  CR0_TS, CS, DS, EAX, ES, EXC_GP, EXC_NP, EXC_SS, EXC_TS, FS, GS, LDTR, NT, SS,
  SYS_LDT, SYS_TSS16_AVAIL, SYS_TSS16_BUSY, SYS_TSS32_AVAIL, SYS_TSS32_BUSY, TR,
} from './constants.js';
import type { Cpu } from './cpu.js';
import { flushTlb } from './paging.js';
import { EXIT_REASON_TASK_SWITCH, instructionExit } from './vmx/exit.js';
import { Descriptor, isNullSelector, loadCacheFromDesc, loadNull, markAccessed, readDescriptor } from './segment-load.js';

/** What starts a task switch: they differ in busy bits, NT and the back link (SDM Table 7-2). */
export const TS_JMP = 0, TS_CALL = 1, TS_IRET = 2, TS_INT = 3;

/** DR6.BT: the debug trap raised after switching to a task whose TSS has T set. */
const DR6_BT = 1 << 15;

const tssDesc = new Descriptor();
const segDesc = new Descriptor();
const csDesc = new Descriptor();
const ssDesc = new Descriptor();

/** The incoming task's state, read completely before anything is written. */
const next = {
  cr3: 0, eip: 0, eflags: 0, ldt: 0, trap: false,
  regs: new Int32Array(8),
  /** Selectors ES, CS, SS, DS, FS, GS. */
  segs: new Uint16Array(6),
};

function isAvailableTss(d: Descriptor): boolean {
  return !d.isSegment && (d.type === SYS_TSS32_AVAIL || d.type === SYS_TSS16_AVAIL);
}
function isBusyTss(d: Descriptor): boolean {
  return !d.isSegment && (d.type === SYS_TSS32_BUSY || d.type === SYS_TSS16_BUSY);
}

/**
 * JMP/CALL through a task gate, or INT through one (the gate's own DPL and present checks are
 * the caller's): the TSS selector must name an available, present TSS in the GDT; #GP(sel | ext)
 * or #NP(sel | ext) otherwise (SDM JMP/CALL/INT "TASK-GATE").
 */
export function taskGateSwitch(cpu: Cpu, tssSel: number, source: number, ext: number): boolean {
  const err = (tssSel & 0xfffc) | ext;
  const d = tssDesc;
  if (tssSel & 4 || !readDescriptor(cpu, tssSel, d) || !isAvailableTss(d)) cpu.fault(EXC_GP, err);
  if (!d.present) cpu.fault(EXC_NP, err);
  return taskSwitch(cpu, tssSel, d, source, ext);
}

/**
 * IRET with NT set (SDM IRET "TASK-RETURN"): back to the task named by the current TSS's link
 * field, which must be a busy TSS in the GDT (#TS(link) otherwise, #NP(link) when not present).
 */
export function taskReturn(cpu: Cpu): void {
  const link = cpu.readLinear16(cpu.segBase[TR], false);
  const err = link & 0xfffc;
  const d = tssDesc;
  if (link & 4 || !readDescriptor(cpu, link, d) || !isBusyTss(d)) cpu.fault(EXC_TS, err);
  if (!d.present) cpu.fault(EXC_NP, err);
  taskSwitch(cpu, link, d, TS_IRET, 0);
}

/** The source field (bits 31:30) of a task-switch exit qualification, by TS_* (SDM Vol. 3C Table 27-2). */
const EXIT_SOURCE = [2 /* JMP */, 0 /* CALL */, 1 /* IRET */, 3 /* task gate in the IDT */];

/**
 * Switches to the task whose TSS descriptor (already checked for type, privilege and presence by
 * the caller) is `d`, selected by `sel`. cpu.eip must hold the EIP to save for the old task.
 * `ext` is ORed into the error codes (1 while delivering an external event or exception).
 * In VMX non-root operation the switch is a VM exit once the new TSS descriptor passed its
 * checks, limit included (SDM Vol. 3C 25.4.2): returns false then, true after a switch.
 */
export function taskSwitch(cpu: Cpu, sel: number, d: Descriptor, source: number, ext: number): boolean {
  const new32 = (d.type & 8) !== 0;
  if (d.limit < (new32 ? 0x67 : 0x2b)) cpu.fault(EXC_TS, (sel & 0xfffc) | ext);
  if (cpu.vmx.nonRoot) {
    // An external event or exception interrupted no instruction: the guest resumes where it was.
    if (ext) cpu.prevEip = cpu.eip;
    instructionExit(cpu, EXIT_REASON_TASK_SWITCH, (sel & 0xffff) | (EXIT_SOURCE[source] << 30));
    return false;
  }
  // The old TSS must hold the dynamic fields the switch writes (through GS, or DS for 16-bit).
  const old32 = (cpu.segAr[TR] & 8) !== 0;
  if (cpu.segLimit[TR] < (old32 ? 0x5f : 0x29)) cpu.fault(EXC_TS, (cpu.seg[TR] & 0xfffc) | ext);

  readNewTss(cpu, d.base, new32);
  saveOldTask(cpu, old32, source);
  if (source === TS_CALL || source === TS_INT) cpu.writeLinear16(d.base, cpu.seg[TR], false);
  if (source === TS_JMP || source === TS_IRET) {
    // The outgoing task is no longer busy: clear bit 1 of its TSS type in the GDT.
    const at = (cpu.gdtrBase + (cpu.seg[TR] & 0xfff8) + 5) | 0;
    cpu.writeLinear8(at, cpu.readLinear8(at, false) & ~2, false);
  }
  if (source !== TS_IRET && !(d.hi & 0x200)) {
    d.hi |= 0x200;
    cpu.writeLinear8((d.addr + 5) | 0, (d.hi >>> 8) & 0xff, false);
  }

  // ---- commit point: from here on the CPU is in the new task ----
  cpu.setSegCache(TR, sel, d.base, d.limit, d.ar | 2);
  cpu.cr0 |= CR0_TS;
  if (new32 && cpu.pagingOn) {
    cpu.cr3 = next.cr3;
    flushTlb(cpu, true);
  }
  let eflags = next.eflags;
  if (source === TS_CALL || source === TS_INT) eflags |= NT;
  cpu.setEflags(eflags);
  cpu.regs.set(next.regs);
  cpu.eip = cpu.prevEip = next.eip;
  cpu.yieldBlock = true;
  // Selectors first, caches unusable until checked: a fault below reports the new task's selectors.
  for (let s = ES; s <= GS; s++) loadNull(cpu, s, next.segs[s]);
  loadNull(cpu, LDTR, next.ldt);
  if (cpu.v86) {
    cpu.setCpl(3);
    loadLdt(cpu, ext);
    for (let s = ES; s <= GS; s++) cpu.setSegCache(s, next.segs[s], next.segs[s] << 4, 0xffff, 0xf3);
  } else {
    cpu.setCpl(next.segs[CS] & 3);
    loadLdt(cpu, ext);
    loadTaskSegments(cpu, ext);
  }
  if (cpu.eip > cpu.segLimit[CS]) cpu.fault(EXC_GP, ext);
  if (next.trap) {
    cpu.debugTrap |= DR6_BT;
    cpu.attention = true;
  }
  return true;
}

/** Reads every field the switch loads from the new TSS (so a page fault comes before any write). */
function readNewTss(cpu: Cpu, base: number, new32: boolean): void {
  if (new32) {
    next.cr3 = r32(cpu, base, 0x1c);
    next.eip = r32(cpu, base, 0x20) >>> 0;
    next.eflags = r32(cpu, base, 0x24);
    for (let r = 0; r < 8; r++) next.regs[r] = r32(cpu, base, 0x28 + 4 * r);
    for (let s = 0; s < 6; s++) next.segs[s] = r16(cpu, base, 0x48 + 4 * s);
    next.ldt = r16(cpu, base, 0x60);
    next.trap = (r16(cpu, base, 0x64) & 1) !== 0;
  } else {
    // A 16-bit TSS (model-specific, as Bochs): the upper words of the general registers become
    // 0xffff, those of EIP and EFLAGS 0; FS and GS become null.
    next.eip = r16(cpu, base, 0x0e);
    next.eflags = r16(cpu, base, 0x10);
    for (let r = 0; r < 8; r++) next.regs[r] = 0xffff0000 | r16(cpu, base, 0x12 + 2 * r);
    for (let s = 0; s < 4; s++) next.segs[s] = r16(cpu, base, 0x22 + 2 * s);
    next.segs[FS] = next.segs[GS] = 0;
    next.ldt = r16(cpu, base, 0x2a);
    next.trap = false;
  }
}

function r16(cpu: Cpu, base: number, off: number): number {
  return cpu.readLinear16((base + off) | 0, false);
}
function r32(cpu: Cpu, base: number, off: number): number {
  return cpu.readLinear32((base + off) | 0, false);
}

/** Writes the outgoing task's dynamic state into its TSS (NT cleared in the image for IRET). */
function saveOldTask(cpu: Cpu, old32: boolean, source: number): void {
  const base = cpu.segBase[TR];
  let eflags = cpu.getEflags();
  if (source === TS_IRET) eflags &= ~NT;
  if (old32) {
    cpu.writeLinear32((base + 0x20) | 0, cpu.eip, false);
    cpu.writeLinear32((base + 0x24) | 0, eflags, false);
    for (let r = 0; r < 8; r++) cpu.writeLinear32((base + 0x28 + 4 * r) | 0, cpu.regs[EAX + r], false);
    for (let s = 0; s < 6; s++) cpu.writeLinear16((base + 0x48 + 4 * s) | 0, cpu.seg[s], false);
  } else {
    cpu.writeLinear16((base + 0x0e) | 0, cpu.eip & 0xffff, false);
    cpu.writeLinear16((base + 0x10) | 0, eflags & 0xffff, false);
    for (let r = 0; r < 8; r++) cpu.writeLinear16((base + 0x12 + 2 * r) | 0, cpu.regs[EAX + r] & 0xffff, false);
    for (let s = 0; s < 4; s++) cpu.writeLinear16((base + 0x22 + 2 * s) | 0, cpu.seg[s], false);
  }
}

/**
 * The new task's LDT: null leaves LDTR unusable; otherwise the selector must name a present LDT
 * descriptor in the GDT, else #TS(ldt). (Table 7-1 checks "valid" and "present" at two points
 * with the same error; both are checked here, first.)
 */
function loadLdt(cpu: Cpu, ext: number): void {
  const sel = next.ldt;
  if (isNullSelector(sel)) return;
  const d = segDesc;
  if (sel & 4 || !readDescriptor(cpu, sel, d) || d.isSegment || d.type !== SYS_LDT || !d.present) {
    cpu.fault(EXC_TS, (sel & 0xfffc) | ext);
  }
  loadCacheFromDesc(cpu, LDTR, sel, d);
}

/** CS, SS, then DS/ES/FS/GS of the new task, checked in the order of SDM Table 7-1. */
function loadTaskSegments(cpu: Cpu, ext: number): void {
  const csSel = next.segs[CS], ssSel = next.segs[SS], cpl = csSel & 3;
  const csErr = (csSel & 0xfffc) | ext, ssErr = (ssSel & 0xfffc) | ext;
  const cs = csDesc, ss = ssDesc;
  const csRead = !isNullSelector(csSel) && readDescriptor(cpu, csSel, cs);
  // Code segment DPL matches selector RPL (conforming: DPL <= RPL).
  if (csRead && cs.isCode && (cs.isConformingCode ? cs.dpl > cpl : cs.dpl !== cpl)) cpu.fault(EXC_TS, csErr);
  // SS selector valid, present, DPL = CPL.
  if (isNullSelector(ssSel) || !readDescriptor(cpu, ssSel, ss) || !ss.isWritableData) cpu.fault(EXC_TS, ssErr);
  if (!ss.present) cpu.fault(EXC_SS, ssErr);
  if (ss.dpl !== cpl) cpu.fault(EXC_TS, ssErr);
  // CS selector valid, present.
  if (!csRead || !cs.isCode) cpu.fault(EXC_TS, csErr);
  if (!cs.present) cpu.fault(EXC_NP, csErr);
  // SS DPL matches selector RPL.
  if ((ssSel & 3) !== ss.dpl) cpu.fault(EXC_TS, ssErr);
  markAccessed(cpu, cs);
  loadCacheFromDesc(cpu, CS, csSel, cs);
  markAccessed(cpu, ss);
  loadCacheFromDesc(cpu, SS, ssSel, ss);
  for (let k = 0; k < 4; k++) loadTaskDataSeg(cpu, TASK_DATA_SEGS[k], cpl, ext);
}
const TASK_DATA_SEGS = [DS, ES, FS, GS];

/** One of DS/ES/FS/GS: valid and readable (#TS), present (#NP), DPL >= CPL and RPL unless conforming (#TS). */
function loadTaskDataSeg(cpu: Cpu, s: number, cpl: number, ext: number): void {
  const sel = next.segs[s], err = (sel & 0xfffc) | ext, d = segDesc;
  if (isNullSelector(sel)) return; // stays null (unusable)
  if (!readDescriptor(cpu, sel, d) || !d.isDataOrReadableCode) cpu.fault(EXC_TS, err);
  if (!d.present) cpu.fault(EXC_NP, err);
  if (!d.isConformingCode && (d.dpl < cpl || d.dpl < (sel & 3))) cpu.fault(EXC_TS, err);
  markAccessed(cpu, d);
  loadCacheFromDesc(cpu, s, sel, d);
}
