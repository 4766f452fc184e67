// Debug registers and single-step (SDM Vol. 3B chapter 17): DR0-DR3 instruction breakpoints
// (faults, checked before an instruction unless RF is set), data and I/O breakpoints and
// single-step (traps, collected while the instruction runs in cpu.debugTrap and delivered after
// it retires, or one instruction later after MOV SS / POP SS), and the task-switch T-bit trap
// (pending in cpu.debugTrap, delivered at the next boundary).
// Everything here runs on the hub's per-instruction slow path only (cpu.slowMode).

import { CR4_DE, CS, EXC_DB, RF, TF } from './constants.js';
import type { Cpu } from './cpu.js';
import { raiseException } from './interrupts.js';
import { debugExits, trapExitFirst } from './vmx/events.js';

/** DR6 status bits. */
export const DR6_BD = 1 << 13, DR6_BS = 1 << 14, DR6_BT = 1 << 15;
/** DR6 bits that read as 1 (4-11, 16-31); bit 12 reads as 0 on this model. */
export const DR6_FIXED1 = 0xffff0ff0 | 0;
/** DR7: bit 10 reads as 1; bits 11, 12, 14 and 15 read as 0. */
export const DR7_FIXED1 = 0x400, DR7_FIXED0 = 0xd800;
export const DR7_GD = 1 << 13;
/**
 * Not a DR6 bit (bit 16 of DR6 always reads 1): the instruction was an INT n / INT3 / INTO / INT1
 * that cleared TF, so it takes no single-step trap. Its handler runs untraced and stepping
 * resumes after the instruction that follows the handler's IRET (as Bochs and QEMU do, and as the
 * 386 manual tells debuggers to expect).
 */
export const DB_NO_STEP = 1 << 16;

// DR7 R/W field values.
const RW_EXEC = 0, RW_WRITE = 1, RW_IO = 2, RW_READWRITE = 3;

/** True when DR7 enables any breakpoint: the CPU then runs the slow per-instruction path. */
export function breakpointsEnabled(cpu: Cpu): boolean {
  return (cpu.dr[7] & 0xff) !== 0;
}

/**
 * Breakpoints among DR0-DR3 that are enabled, of an R/W kind accepted by `kinds` (a bit mask
 * of 1 << RW), and whose range overlaps [addr, addr + size - 1]. LEN 10b is taken as 8 bytes.
 */
function hits(cpu: Cpu, kinds: number, addr: number, size: number): number {
  const dr7 = cpu.dr[7];
  let found = 0;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0 || ((kinds >>> ((dr7 >>> (16 + 4 * n)) & 3)) & 1) === 0) continue;
    const lenCode = (dr7 >>> (18 + 4 * n)) & 3;
    const len = lenCode === 0 ? 1 : lenCode === 1 ? 2 : lenCode === 3 ? 4 : 8;
    const start = (cpu.dr[n] & ~(len - 1)) >>> 0;
    // Overlap of two ranges, computed on offsets from the access so that wrap-around works.
    const rel = (start - addr) >>> 0;
    if (rel < size || ((addr - start) >>> 0) < len) found |= 1 << n;
  }
  return found;
}

/** Instruction breakpoints, checked before an instruction executes (raises #DB as a fault). */
export function debugBeforeInsn(cpu: Cpu): void {
  if (cpu.flags & RF) {
    // RF suppresses instruction breakpoints for this one instruction, then clears (SDM 17.3.1.1).
    cpu.setEflags(cpu.getEflags() & ~RF);
    return;
  }
  if (!breakpointsEnabled(cpu)) return;
  const found = hits(cpu, 1 << RW_EXEC, (cpu.segBase[CS] + cpu.eip) >>> 0, 1);
  if (found === 0) return;
  reportDebug(cpu, found);
  cpu.faultNoCode(EXC_DB);
}

/**
 * Single-step and data/I/O-breakpoint traps after an instruction retires. After MOV SS / POP SS
 * they wait one more instruction (SDM 6.8.3); an instruction that set TF did not start with it,
 * so it does not trap.
 */
export function debugAfterInsn(cpu: Cpu, tfBefore: boolean): void {
  const step = tfBefore && !(cpu.debugTrap & DB_NO_STEP) ? DR6_BS : 0;
  const bits = (cpu.debugTrap & ~DB_NO_STEP) | step;
  cpu.debugTrap = bits;
  if (bits === 0 || cpu.inhibitDebugAt === cpu.icount) return;
  if (trapExitFirst(cpu)) {
    cpu.attention = true;
    return;
  }
  takeTraps(cpu, bits);
}

/** Sets DR6 and delivers the #DB trap at cpu.eip. */
function takeTraps(cpu: Cpu, bits: number): void {
  cpu.debugTrap = 0;
  reportDebug(cpu, bits);
  raiseException(cpu, EXC_DB, 0, false);
}
/**
 * DR6 for a #DB about to be raised, unless in VMX non-root operation the #DB will be a VM exit:
 * then DR6 stays and the bits become the exit qualification (SDM Vol. 3C 27.1). Returns whether
 * DR6 was written.
 */
function reportDebug(cpu: Cpu, bits: number): boolean {
  if (cpu.vmx.nonRoot && debugExits(cpu, bits)) return false;
  setDr6(cpu, bits);
  return true;
}
/**
 * DR6 on a #DB: B0-B3 become the breakpoints that hit, cleared when none did (as Bochs and QEMU
 * do; the SDM allows it); BD, BS and BT accumulate (the SDM: never cleared by the processor).
 */
function setDr6(cpu: Cpu, bits: number): void {
  cpu.dr[6] = (cpu.dr[6] & ~0xf) | bits;
}

/** After INT n / INT3 / INTO / INT1 started with TF set: no single-step trap if TF is now clear. */
export function skipSingleStep(cpu: Cpu): void {
  if (!(cpu.flags & TF)) cpu.debugTrap |= DB_NO_STEP;
}

/** Records a data access for data breakpoints (called only while breakpoints are enabled). */
export function debugDataAccess(cpu: Cpu, lin: number, size: number, write: boolean): void {
  if (!breakpointsEnabled(cpu)) return;
  cpu.debugTrap |= hits(cpu, write ? (1 << RW_WRITE) | (1 << RW_READWRITE) : 1 << RW_READWRITE, lin >>> 0, size);
}

/** Records a port access for I/O breakpoints (R/W = 10b, defined only with CR4.DE). */
export function debugIoAccess(cpu: Cpu, port: number, size: number): void {
  if (!breakpointsEnabled(cpu) || !(cpu.cr4 & CR4_DE)) return;
  cpu.debugTrap |= hits(cpu, 1 << RW_IO, port, size);
}

/**
 * Delivers debug traps left pending at an instruction boundary outside the per-instruction path
 * (the T-bit trap of a task switch, SDM 7.2.1: tasks.ts sets DR6.BT in cpu.debugTrap). The run
 * loop calls it first among the boundary events, as traps of the previous instruction come
 * before NMI and INTR (SDM 6.9).
 */
export function deliverPendingDebugTrap(cpu: Cpu): void {
  takeTraps(cpu, cpu.debugTrap);
}

/** The general-detect fault of MOV to/from DRn while DR7.GD is set: DR6.BD, GD cleared. */
export function generalDetect(cpu: Cpu): void {
  if (!(cpu.dr[7] & DR7_GD)) return;
  if (reportDebug(cpu, DR6_BD)) cpu.dr[7] &= ~DR7_GD; // a VM exit leaves DR7.GD too (27.1)
  cpu.faultNoCode(EXC_DB);
}
