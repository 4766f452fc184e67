// Any byte sequence run as guest code ends in a defined architectural outcome: a delivered
// exception (whose handler halts), a halt, a shutdown (triple fault) or the instruction budget,
// never a JavaScript exception. Run in ring 0 and ring 3 of a flat protected-mode setup, with
// paging off and on.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CR0_PG, TR } from '../src/cpu/constants.js';
import { SEL, makeCpu, type Harness } from './helpers/harness.js';
import { enterRing3, gate, INT_GATE } from './helpers/idt.js';
import { segDescriptor, setGdt } from './helpers/segments.js';

const SEED = 0x7a3d;
const HANDLER = 0x30000;
const TSS = 0x3000;
const TSS_SEL = 0x38;
const RING0_STACK = 0x8000;
const PD = 0x40000, PT = 0x41000;

/** Every vector 0-255 goes through a DPL-3 interrupt gate to `hlt` at HANDLER. */
function installIdt(h: Harness): void {
  for (let v = 0; v < 256; v++) gate(h, v, SEL.code32, HANDLER, INT_GATE, 3);
  h.cpu.idtrLimit = 256 * 8 - 1;
  h.mem.ram[HANDLER] = 0xf4; // hlt
  h.mem.ram[HANDLER + 1] = 0xeb; // jmp $-1 back to hlt if woken
  h.mem.ram[HANDLER + 2] = 0xfd;
}

/** A 32-bit TSS whose ring-0 stack the CPU switches to on a fault in ring 3. */
function installTss({ mem, cpu }: Harness): void {
  mem.view.setUint32(TSS + 4, RING0_STACK, true);
  mem.view.setUint32(TSS + 8, SEL.data32, true);
  setGdt(cpu, TSS_SEL >> 3, segDescriptor(TSS, 0x67, 0x8b, 0));
  cpu.setSegCache(TR, TSS_SEL, TSS, 0x67, 0x8b);
}

/** Identity-maps the first 4 MiB, user-accessible and writable. */
function enablePaging({ cpu, mem }: Harness): void {
  mem.view.setUint32(PD, PT | 7, true);
  for (let n = 0; n < 1024; n++) mem.view.setUint32(PT + n * 4, (n << 12) | 7, true);
  cpu.cr3 = PD;
  cpu.cr0 |= CR0_PG;
  cpu.updateMode();
}

type Outcome = 'halt' | 'shutdown' | 'budget';

function runBytes(code: Uint8Array, ring3: boolean, paging: boolean): { outcome: Outcome; cpl: number } {
  const h = makeCpu('pm32', code);
  installIdt(h);
  installTss(h);
  if (paging) enablePaging(h);
  if (ring3) enterRing3(h.cpu);
  h.cpu.run(h.cpu.cycles + 2000);
  const outcome = h.cpu.shutdown ? 'shutdown' : h.cpu.halted ? 'halt' : 'budget';
  return { outcome, cpl: h.cpu.cpl };
}

describe('any byte sequence ends in a defined outcome', () => {
  for (const ring3 of [false, true]) {
    for (const paging of [false, true]) {
      it(`ring ${ring3 ? 3 : 0}, paging ${paging ? 'on' : 'off'} (seed ${SEED})`, () => {
        console.log(`robustness seed ${SEED}`);
        fc.assert(
          fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
            const code = new Uint8Array(4096).fill(0xf4); // hlt after the sequence
            code.set(bytes);
            const { outcome, cpl } = runBytes(code, ring3, paging);
            expect(['halt', 'shutdown', 'budget']).toContain(outcome);
            // HLT only ever completes in ring 0: in ring 3 it faults to the (ring-0) handler.
            if (outcome === 'halt') expect(cpl).toBe(0);
          }),
          { seed: SEED, numRuns: 400 },
        );
      });
    }
  }
});
