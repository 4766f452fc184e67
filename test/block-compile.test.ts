// Compiled hot blocks (src/cpu/block.ts) must be indistinguishable from the interpreter loop,
// the reference: every benchmark workload (ALU, strings, paging with TLB misses, exceptions
// and interrupts across rings, self-modifying code) is run twice, once compiling every block at
// its first run and once never compiling, and the whole CPU state (hidden state and TLB
// included) and RAM must agree after every slice of a few hundred instructions.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMachine, type Machine } from '../src/machine/machine.js';
import { patchIterations, readRom, WORKLOADS } from '../src/bench/workloads.js';

const SLICE = 97; // not a multiple of any loop length, so slices end at varied instructions

function boot(rom: Uint8Array, compileThreshold: number): Machine {
  const m = createMachine({ memMiB: 2 });
  m.load(rom, 'bios');
  m.cpu.compileThreshold = compileThreshold;
  return m;
}

function fingerprint(m: Machine): string {
  return JSON.stringify(m.cpu.saveState()) + createHash('sha256').update(m.cpu.mem.ram).digest('hex');
}

describe('compiled blocks agree with the interpreter', () => {
  for (const w of WORKLOADS) {
    it(`${w.name}: identical state after every ${SLICE}-instruction slice`, () => {
      const rom = patchIterations(readRom(w), w.known[0].iterations);
      const compiled = boot(rom, 1);
      const interpreted = boot(rom, Infinity);
      let slices = 0;
      let stop: string;
      for (;;) {
        const a = compiled.run({ maxInsns: SLICE });
        const b = interpreted.run({ maxInsns: SLICE });
        expect(a.stop).toBe(b.stop);
        expect(a.instructions).toBe(b.instructions);
        expect(fingerprint(compiled)).toBe(fingerprint(interpreted));
        slices++;
        stop = a.stop;
        if (stop !== 'budget') break;
      }
      expect(slices).toBeGreaterThan(3);
      // The workloads end by writing "Shutdown" to port 0x8900: both ran to their real end.
      expect(stop).toBe('poweroff');
    });
  }
});
