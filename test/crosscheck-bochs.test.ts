// trapdiff against Bochs (../shared/peers/bochs-vmx) on a small fixed-seed sample of generated
// test ROMs, every mode; skipped where ../shared is absent. The full run is
// `npx tsx scripts/crosscheck.ts --peer bochs --count 20000 --seed S`.

import { describe, expect, it } from 'vitest';
import { MODES } from '../src/crosscheck/modes.js';
import { makePeer, peerAvailable } from '../src/crosscheck/peers.js';
import { crossCheck, formatSummary } from '../src/crosscheck/run.js';

const SEED = 20260102;
const COUNT = 600;

describe.skipIf(!peerAvailable('bochs'))('cross-check trapdiff vs Bochs', () => {
  it(`agrees on >= 99.5% of ${COUNT} generated sequences (seed ${SEED})`, async () => {
    const s = await crossCheck({ a: makePeer('trapdiff'), b: makePeer('bochs'), seed: SEED, count: COUNT, modes: MODES, minimizePerClass: 3 });
    console.log(formatSummary(s));
    expect(s.total).toBe(COUNT);
    expect(s.percent, `seed ${SEED}: ${s.agreed}/${s.total}`).toBeGreaterThanOrEqual(99.5);
  }, 120_000);
});
