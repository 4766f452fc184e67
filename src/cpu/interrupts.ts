// Exception and interrupt delivery (owner: interrupts engineer).
import type { Cpu } from './cpu.js';

/** Kinds of event delivery: they differ in privilege checks, EIP pushed and IDT gate rules. */
export const EV_EXCEPTION = 0, EV_EXTERNAL = 1, EV_NMI = 2, EV_SOFTWARE = 3, EV_SOFT_EXCEPTION = 4, EV_PRIVSW = 5;

/** Delivers a fault or trap raised by an instruction; cpu.eip is already set to the EIP to push. */
export function deliverException(cpu: Cpu, vector: number, errorCode: number, hasError: boolean): void {
  void cpu; void vector; void errorCode; void hasError;
  throw new Error('deliverException: not implemented yet');
}

/** Delivers an external interrupt, NMI or INT n/INT3/INTO/INT1 with the given kind. */
export function deliverInterrupt(cpu: Cpu, vector: number, kind: number): void {
  void cpu; void vector; void kind;
  throw new Error('deliverInterrupt: not implemented yet');
}
