// Links the opcode table to the instruction families: each family file exports a map from
// handler key (`${name}_${operands}`, see opcodes.ts) to its Exec, and this module joins them.

import type { Exec } from './insn.js';
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

const FAMILIES = { arith, shift, bit, datamove, stack, string, ctrl, io, segment, farctrl, descriptor, interrupt, system };

/** Every handler by key; a key defined by two families is a table error caught at load. */
export const HANDLERS: ReadonlyMap<string, Exec> = (() => {
  const all = new Map<string, Exec>();
  for (const [family, map] of Object.entries(FAMILIES)) {
    for (const [key, exec] of Object.entries(map)) {
      if (all.has(key)) throw new Error(`handler ${key} defined twice (second in ${family})`);
      all.set(key, exec);
    }
  }
  return all;
})();

/** Forms of the table that no family implements yet (the completeness test wants none). */
export function missingHandlers(): OpForm[] {
  return FORMS.filter((f) => !HANDLERS.has(f.key));
}
