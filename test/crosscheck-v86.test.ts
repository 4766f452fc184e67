// trapdiff against v86 on a fixed-seed sample of generated test ROMs (docs/CROSSCHECK.md): every
// mode (real, protected ring 0/3, paging on and off); fails under 99.5% agreement and prints the
// seed and each disagreement class with a minimal example, so that a failure reproduces with
// `npx tsx scripts/crosscheck.ts --peer v86 --seed <seed> --count <n>`.

import { describe, expect, it } from 'vitest';
import { MODES } from '../src/crosscheck/modes.js';
import { makePeer } from '../src/crosscheck/peers.js';
import { crossCheck, formatSummary } from '../src/crosscheck/run.js';

const SEED = 20260101;
const COUNT = 500;

describe('cross-check trapdiff vs v86', () => {
  it(`agrees on >= 99.5% of ${COUNT} generated sequences (seed ${SEED})`, async () => {
    const s = await crossCheck({ a: makePeer('trapdiff'), b: makePeer('v86'), seed: SEED, count: COUNT, modes: MODES, minimizePerClass: 3 });
    console.log(formatSummary(s));
    expect(s.total).toBe(COUNT);
    expect(s.percent, `seed ${SEED}: ${s.agreed}/${s.total}`).toBeGreaterThanOrEqual(99.5);
  }, 120_000);
});
