// The opcode table is the single list of instruction forms: every form must have a handler,
// every handler must belong to a form, and keys must be unique per position.

import { describe, expect, it } from 'vitest';
import { HANDLERS, missingHandlers } from '../src/cpu/dispatch.js';
import { FORMS } from '../src/cpu/opcodes.js';

describe('opcode table', () => {
  it('has a handler for every form', () => {
    expect(missingHandlers().map((f) => f.key)).toEqual([]);
  });

  it('has no handler that no form uses', () => {
    const keys = new Set(FORMS.map((f) => f.key));
    expect([...HANDLERS.keys()].filter((k) => !keys.has(k))).toEqual([]);
  });

  it('declares each position (map, opcode, reg, ModRM, prefix) once', () => {
    const seen = new Map<string, string>();
    for (const f of FORMS) {
      const at = `${f.code}/${f.reg}=${f.modrm}@${f.prefix}`;
      expect(seen.get(at), `${f.key} and ${seen.get(at)} at ${at}`).toBeUndefined();
      seen.set(at, f.key);
    }
  });
});
