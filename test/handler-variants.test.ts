// Handler variants (src/cpu/exec/variants.ts) must never drift from their generic handler:
// for every form that has variants, random instructions of that form (random ModRM, operand-
// and address-size prefixes, displacement and immediates, code size) are decoded, and the
// handler the decoder linked is run against the generic handler on two CPUs in the same random
// state (registers, lazy or eager flags, memory). Registers, EIP, EFLAGS, the whole CPU state,
// RAM and the fault raised, if any, must agree. The test also checks that the decoder linked
// the variant for the instruction's shape, so a variant filed under the wrong shape fails here.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cpu, LZ_ADC, LZ_ADD, LZ_DEC, LZ_INC, LZ_LOGIC, LZ_SBB, LZ_SUB } from '../src/cpu/cpu.js';
import { ArrayReader, decode } from '../src/cpu/decoder.js';
import { HANDLERS, VARIANTS, selectHandler } from '../src/cpu/dispatch.js';
import { Insn } from '../src/cpu/insn.js';
import { FORMS } from '../src/cpu/opcodes.js';
import { makeCpu } from './helpers/harness.js';

const SEED = 0x7a11a;
const RUNS = 60;
const LAZY_OPS = [LZ_ADD, LZ_ADC, LZ_SUB, LZ_SBB, LZ_LOGIC, LZ_INC, LZ_DEC];
const START = 0x10000;

const withVariants = FORMS.filter((f) => [...VARIANTS.keys()].some((k) => k.startsWith(`${f.key}:`)));

/** Instruction bytes of form f: prefixes, opcode, a ModRM with the form's reg, then filler. */
function encode(f: (typeof FORMS)[number], p66: boolean, p67: boolean, modrm: number, tail: number[]): number[] {
  const bytes: number[] = [];
  if (p66) bytes.push(0x66);
  if (p67) bytes.push(0x67);
  if (f.prefix) bytes.push(f.prefix);
  if (f.code >= 0x200) bytes.push(0x0f, 0x38, f.code & 0xff);
  else if (f.code >= 0x100) bytes.push(0x0f, f.code & 0xff);
  else bytes.push(f.code);
  bytes.push(f.reg >= 0 ? (modrm & 0xc7) | (f.reg << 3) : modrm);
  return bytes.concat(tail);
}

const a = makeCpu('pm32', new Uint8Array(0), 1);
const b = makeCpu('pm32', new Uint8Array(0), 1);
const initial = a.cpu.saveState();

interface State {
  regs: number[];
  lazy: number; // -1: eager flags
  fa: number;
  fb: number;
  flags: number;
  fill: number;
}

function prepare(h: typeof a, s: State, len: number): void {
  h.cpu.restoreState(initial);
  h.mem.ram.fill(s.fill);
  s.regs.forEach((v, n) => { h.cpu.regs[n] = v; });
  h.cpu.setEflags(s.flags);
  if (s.lazy >= 0) h.cpu.setLazy(LAZY_OPS[s.lazy], s.fa, s.fb, (s.fa + s.fb) & 0xffff, 16);
  h.cpu.prevEip = START;
  h.cpu.eip = START + len;
}

function run(cpu: Cpu, exec: (c: Cpu, i: Insn) => void, i: Insn): string {
  try {
    exec(cpu, i);
    return 'ok';
  } catch (e) {
    if (e instanceof Error) throw e;
    return `fault ${JSON.stringify(e)}`; // the fault sentinel: vector and error code
  }
}

describe('handler variants agree with their generic handler', () => {
  it('has variants for the hot forms', () => {
    for (const key of ['add_EvGv', 'xor_EvGv', 'dec_Zv', 'jnz_Jb', 'cmp_EvIb', 'test_EvGv']) {
      expect(withVariants.map((f) => f.key)).toContain(key);
    }
  });

  it(`on random instructions and states (fast-check seed ${SEED})`, () => {
    console.log(`handler-variants.test: fast-check seed ${SEED}, ${withVariants.length} forms`);
    const insn = new Insn(() => {});
    // Memory operands land anywhere; small register values keep many of them in RAM.
    const reg = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: -0x80000000, max: 0x7fffffff }));
    const state = fc.record({
      regs: fc.array(reg, { minLength: 8, maxLength: 8 }),
      lazy: fc.integer({ min: -1, max: LAZY_OPS.length - 1 }),
      fa: fc.integer({ min: 0, max: 0xffff }),
      fb: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.integer({ min: 0, max: 0xfff }).map((v) => v & 0x8d5), // OF SF ZF AF PF CF
      fill: fc.integer({ min: 0, max: 255 }),
    });
    for (const f of withVariants) {
      fc.assert(
        fc.property(
          fc.boolean(), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 255 }),
          fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 12, maxLength: 12 }), state,
          (d32, p66, p67, modrm, tail, s) => {
            decode(new ArrayReader(new Uint8Array(encode(f, p66, p67, modrm, tail))), d32, insn);
            if (insn.form?.key !== f.key) return; // e.g. a register ModRM for a memory-only form
            expect(insn.exec, `${f.key} links the variant for its shape`).toBe(selectHandler(f.key, insn));
            prepare(a, s, insn.len);
            prepare(b, s, insn.len);
            const ra = run(a.cpu, insn.exec, insn);
            const rb = run(b.cpu, HANDLERS.get(f.key)!, insn);
            expect(ra, f.key).toBe(rb);
            expect(a.cpu.getEflags(), f.key).toBe(b.cpu.getEflags());
            expect(a.cpu.saveState(), f.key).toEqual(b.cpu.saveState());
            expect(Buffer.from(a.mem.ram.buffer).equals(Buffer.from(b.mem.ram.buffer)), `${f.key} RAM`).toBe(true);
          },
        ),
        { seed: SEED, numRuns: RUNS },
      );
    }
  });
});
