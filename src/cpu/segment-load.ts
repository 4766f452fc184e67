// Protected-mode segment-register loads with every SDM check (owner: segmentation engineer).
import type { Cpu } from './cpu.js';

/** MOV/POP/LDS-family load of data or stack segment `seg` (not CS) in protected mode. */
export function loadSegProtected(cpu: Cpu, seg: number, sel: number): void {
  void cpu; void seg; void sel;
  throw new Error('loadSegProtected: not implemented yet');
}
