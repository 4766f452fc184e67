// The fixed-seed cross-check sample against one peer (docs/CROSSCHECK.md): every mode, fails
// under 99.5% agreement, printing the summary (seed and each disagreement class with a minimal
// example).

import { expect, it } from 'vitest';
import { MODES } from '../../src/crosscheck/modes.js';
import { makePeer, type PeerName } from '../../src/crosscheck/peers.js';
import { crossCheck, formatSummary } from '../../src/crosscheck/run.js';

/** Declares the test that trapdiff agrees with `peer` on `count` generated sequences from `seed`. */
export function itAgreesOnSample(peer: PeerName, seed: number, count: number): void {
  it(`agrees on >= 99.5% of ${count} generated sequences (seed ${seed})`, async () => {
    const s = await crossCheck({ a: makePeer('trapdiff'), b: makePeer(peer), seed, count, modes: MODES, minimizePerClass: 3 });
    console.log(formatSummary(s));
    expect(s.total).toBe(count);
    expect(s.percent, `seed ${seed}: ${s.agreed}/${s.total}`).toBeGreaterThanOrEqual(99.5);
  }, 120_000);
}
