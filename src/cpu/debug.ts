// Debug registers and single-step (owner: interrupts engineer).
import type { Cpu } from './cpu.js';

/** True when DR7 enables any breakpoint: the CPU then runs the slow per-instruction path. */
export function breakpointsEnabled(cpu: Cpu): boolean {
  return (cpu.dr[7] & 0xff) !== 0;
}
/** Instruction breakpoints, checked before an instruction executes (raises #DB as a fault). */
export function debugBeforeInsn(cpu: Cpu): void { void cpu; }
/** Single-step and data-breakpoint traps after an instruction retires. */
export function debugAfterInsn(cpu: Cpu, tfBefore: boolean): void { void cpu; void tfBefore; }
/** Records a data access for data breakpoints (called only while breakpoints are enabled). */
export function debugDataAccess(cpu: Cpu, lin: number, size: number, write: boolean): void {
  void cpu; void lin; void size; void write;
}
