// 32-bit paging: translation, accessed/dirty bits, page-fault error codes and the TLB.
import type { Cpu } from './cpu.js';

export function translate(cpu: Cpu, lin: number, access: number, user: boolean): number {
  void cpu; void lin; void access; void user;
  throw new Error('paging: not implemented yet');
}
export function flushTlb(cpu: Cpu, keepGlobal: boolean): void { void cpu; void keepGlobal; }
export function invalidatePage(cpu: Cpu, lin: number): void { void cpu; void lin; }
