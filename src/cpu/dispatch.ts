// Links the opcode table to the instruction families: each family file exports a map from
// handler key (`${name}_${operands}`, see opcodes.ts) to its Exec, and this module joins them.
// A family may also export variants of a handler, keyed `${key}:${shape}` (exec/variants.ts);
// selectHandler is the one place that picks a variant for a decoded instruction.

import type { Exec, Insn } from './insn.js';
import { FORMS, type OpForm } from './opcodes.js';
import { handlers as arith } from './exec/arith.js';
import { handlers as shift } from './exec/shift.js';
import { handlers as bit } from './exec/bit.js';
import { handlers as datamove } from './exec/datamove.js';
import { handlers as stack } from './exec/stack.js';
import { handlers as string } from './exec/string.js';
import { handlers as ctrl } from './exec/ctrl.js';
import { handlers as io } from './exec/io.js';
import { handlers as segment } from './exec/segment.js';
import { handlers as farctrl } from './exec/farctrl.js';
import { handlers as descriptor } from './exec/descriptor.js';
import { handlers as interrupt } from './exec/interrupt.js';
import { handlers as system } from './exec/system.js';
import { variantSuffixes } from './exec/variants.js';

const FAMILIES = { arith, shift, bit, datamove, stack, string, ctrl, io, segment, farctrl, descriptor, interrupt, system };

const all = new Map<string, Exec>();
const variants = new Map<string, Exec>();
for (const [family, map] of Object.entries(FAMILIES)) {
  for (const [key, exec] of Object.entries(map)) {
    const into = key.includes(':') ? variants : all;
    if (into.has(key)) throw new Error(`handler ${key} defined twice (second in ${family})`);
    into.set(key, exec);
  }
}
const SHAPES = new Set(['r16', 'r32', 'm16', 'm32', 'r', 'm']);
for (const key of variants.keys()) {
  const [base, shape] = key.split(':');
  if (!all.has(base) || !SHAPES.has(shape)) throw new Error(`handler variant ${key} has no generic handler or an unknown shape`);
}

/** Every generic handler by key; a key defined by two families is a table error caught at load. */
export const HANDLERS: ReadonlyMap<string, Exec> = all;
/** Handler variants by `${key}:${shape}` (exec/variants.ts); each has a generic handler. */
export const VARIANTS: ReadonlyMap<string, Exec> = variants;

/**
 * The handler to link for an instruction of form `key`: the most specific variant for its
 * shape (`:r32` before `:r`, see exec/variants.ts), else the generic handler. The decoder
 * calls it once per form and shape and caches the answer.
 */
export function selectHandler(key: string, i: Pick<Insn, 'mod' | 'o32'>): Exec | undefined {
  for (const shape of variantSuffixes(i)) {
    const v = variants.get(`${key}:${shape}`);
    if (v) return v;
  }
  return all.get(key);
}

/** Forms of the table that no family implements yet (the completeness test wants none). */
export function missingHandlers(): OpForm[] {
  return FORMS.filter((f) => !HANDLERS.has(f.key));
}
