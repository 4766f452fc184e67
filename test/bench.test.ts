// Smoke test of the benchmark workloads (not timed): each ROM of corpus/bench, cut to its tiny
// known size, runs on trapdiff to the power-off port, retires exactly the instruction count the
// benchmark computes for it and prints the checksum all four emulators agreed on.

import { describe, expect, it } from 'vitest';
import { runTrapdiff } from '../src/bench/trapdiff.js';
import { NULL_WORKLOAD, patchIterations, readRom, romIterations, WORKLOADS } from '../src/bench/workloads.js';

describe('benchmark workloads on trapdiff', () => {
  for (const w of [NULL_WORKLOAD, ...WORKLOADS]) {
    it(`${w.name} runs to its checksum`, () => {
      const { iterations, checksum } = w.known[0];
      const r = runTrapdiff(w, patchIterations(readRom(w), iterations));
      expect(r.output).toBe(`${checksum}\n`);
    });
  }

  it('the committed ROMs run the full known size, and patching changes only the count', () => {
    for (const w of WORKLOADS) {
      const rom = readRom(w);
      expect(romIterations(rom)).toBe(w.known[w.known.length - 1].iterations);
      const patched = patchIterations(rom, 12345);
      expect(romIterations(patched)).toBe(12345);
      expect(patched.filter((b, k) => b !== rom[k]).length).toBeLessThanOrEqual(4);
    }
  });
});
