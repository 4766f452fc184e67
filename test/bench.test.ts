// Smoke test of the benchmark workloads (not timed): each ROM of corpus/bench, cut to its tiny
// known size, runs on trapdiff to the power-off port, retires exactly the instruction count the
// benchmark computes for it and prints the checksum all four emulators agreed on.

import { describe, expect, it } from 'vitest';
import { recordBench, seekBench } from '../src/bench/record.js';
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

  it('the record/replay section records a tiny run, replays it exactly and seeks in it', () => {
    const w = WORKLOADS.find((x) => x.name === 'alu')!;
    const rom = patchIterations(readRom(w), 50_000); // 200,121 instructions: checkpoints (K = 1,000,000) at 0 and the end
    const r = recordBench(w, rom, 1, 'cpu');
    expect(r.instructions).toBe(200_121);
    expect(r.events).toMatchObject({ checkpoint: 2, snapshot: 1, end: 1 });
    expect(r.events['input']).toBeGreaterThan(0);
    expect(r.bytesPerInput).toBeCloseTo(r.traceBytes / r.events['input']!, 6);
    expect(r.inputBytesPerInput).toBeGreaterThan(2);
    expect(r.inputBytesPerInput).toBeLessThan(20);
    const s = seekBench(w, rom, 'cpu');
    expect(s.points).toEqual([26015, 74044, 122073, 166100, 194117]);
    expect(s.viaSnapshotMs).toBeGreaterThan(0);
  });
});
