// Decoded blocks: a run of decoded instructions from one physical address within one page,
// their successor links, and the compiled form a hot block gets.
//
// Why compile: interpreting a block calls every handler through one megamorphic call site
// (`i.exec(cpu, i)`), so V8 can inline nothing. A block that has run HOT_RUNS times is turned
// into one JavaScript function whose call sites each see exactly one handler: V8 inlines the
// handlers and their helpers. The compiled function does exactly what the interpreter loop
// does, instruction by instruction (the same EIP, retire and stop rules), so the interpreter
// stays the reference and the two are interchangeable at every instruction boundary.

import { setFlagsFromString } from 'node:v8';
import type { Cpu } from './cpu.js';
import type { Insn } from './insn.js';

// V8 stops inlining into a function once the bytecode of what it inlined passes
// --max-inlined-bytecode-size-cumulative (920 by default), counted before constant folding; a
// compiled block's handlers with their helpers exceed that after a handful of instructions, and
// every call left out costs as much as the instruction. 4600 is V8's own absolute cap.
setFlagsFromString('--max-inlined-bytecode-size-cumulative=4600');

/** Runs of a block after which it is compiled. */
export const HOT_RUNS = 64;

/** A compiled block: executes the block's instructions until it ends, stops or yields. */
export type CompiledBlock = (cpu: Cpu, stopIcount: number) => void;

export class Block {
  readonly insns: Insn[] = [];
  valid = true;
  /** Times the block was entered, until it is compiled. */
  runs = 0;
  compiled: CompiledBlock | null = null;
  /**
   * Two successor links: the block that starts at `linkEip` was found for this block's exit,
   * and stays right while the CPU's code epoch (CS, paging, TLB, mode) is `linkEpoch`.
   */
  linkEip0 = -1;
  linkEpoch0 = -1;
  link0: Block | null = null;
  linkEip1 = -1;
  linkEpoch1 = -1;
  link1: Block | null = null;
  constructor(
    readonly phys: number,
    readonly d32: boolean,
    /** Bytes covered, for the CS-limit check at entry and for write invalidation. */
    public bytes: number,
  ) {}

  /** The linked successor for `eip`, or null. */
  successor(eip: number, epoch: number): Block | null {
    if (this.linkEip0 === eip && this.linkEpoch0 === epoch && this.link0!.valid) return this.link0;
    if (this.linkEip1 === eip && this.linkEpoch1 === epoch && this.link1!.valid) return this.link1;
    return null;
  }

  /** Records `next` as the successor for `eip`, replacing the older of the two links. */
  link(eip: number, epoch: number, next: Block): void {
    this.linkEip1 = this.linkEip0;
    this.linkEpoch1 = this.linkEpoch0;
    this.link1 = this.link0;
    this.linkEip0 = eip;
    this.linkEpoch0 = epoch;
    this.link0 = next;
  }
}

/**
 * Compiles a block into a function with one call site per instruction. Per instruction, as in
 * Cpu.runBlocks' interpreter loop: prevEip and EIP are set, the handler runs, a REP instruction
 * that stopped early (noRetire) ends the block unretired, otherwise the instruction retires;
 * then the block stops at the instruction limit or when something asked it to yield.
 */
export function compileBlock(b: Block): CompiledBlock {
  const n = b.insns.length;
  const body: string[] = [];
  // EIP is kept in a local between instructions: only a block's last instruction (A_END) may
  // move EIP other than by its length; the others either fall through or fault (a throw) or
  // stop unretired (noRetire), which return before the local is used again.
  body.push('let eip = cpu.eip;');
  for (let k = 0; k < n; k++) {
    body.push(
      `cpu.prevEip = eip; eip = (eip + ${b.insns[k].len}) >>> 0; cpu.eip = eip; h${k}(cpu, i${k});`,
      'if (cpu.noRetire) return; cpu.icount++;',
    );
    if (k < n - 1) body.push('if (cpu.icount >= stop || cpu.yieldBlock) return;');
  }
  const names = b.insns.map((_, k) => `h${k}`).concat(b.insns.map((_, k) => `i${k}`));
  // The address in the source keeps V8 from sharing one compiled function (and its call-site
  // feedback) between blocks.
  const factory = new Function(...names,
    `"use strict"; // block at physical 0x${b.phys.toString(16)}, ${b.d32 ? 32 : 16}-bit\n` +
    `return function block(cpu, stop) {\n${body.join('\n')}\n};`) as (...args: unknown[]) => CompiledBlock;
  return factory(...b.insns.map((i) => i.exec), ...b.insns);
}
