// A decoded instruction: everything execution needs, resolved once by the decoder and reused
// from the decoded-block cache. One shape for every instruction keeps the hot loop monomorphic.

import type { Cpu } from './cpu.js';
import type { OpForm } from './opcodes.js';

/** Executes one decoded instruction. On entry cpu.eip already points past it. */
export type Exec = (cpu: Cpu, i: Insn) => void;

export const REP_NONE = 0, REP_E = 1 /* F3 */, REP_NE = 2 /* F2 */;

export class Insn {
  exec: Exec;
  form: OpForm | null = null;
  /** Length in bytes (1-15). */
  len = 0;
  /** Operand size is 32 bits (else 16). */
  o32 = false;
  /** Address size is 32 bits (else 16). */
  a32 = false;
  /** Segment register of a memory operand: the default from the addressing form, or the override. */
  seg = 3;
  /** An explicit segment-override prefix was present. */
  segOverride = false;
  rep = REP_NONE;
  lock = false;
  /** ModRM fields; mod = 3 means a register operand. reg is also the register of "Z" forms. */
  mod = 3;
  reg = 0;
  rm = 0;
  /** Effective address parts: base and index register (-1 for none), scale shift, displacement. */
  base = -1;
  index = -1;
  scale = 0;
  disp = 0;
  /** First and second immediates (ENTER, far pointers: imm = offset, imm2 = selector). */
  imm = 0;
  imm2 = 0;

  constructor(exec: Exec) {
    this.exec = exec;
  }
}
