// trapdiff against Bochs (../shared/peers/bochs-vmx) on a small fixed-seed sample of generated
// test ROMs, every mode; skipped where ../shared is absent. The full run is
// `npx tsx scripts/crosscheck.ts --peer bochs --count 20000 --seed S`.

import { describe } from 'vitest';
import { peerAvailable } from '../src/crosscheck/peers.js';
import { itAgreesOnSample } from './helpers/crosscheck.js';

const SEED = 20260102;
const COUNT = 600;

describe.skipIf(!peerAvailable('bochs'))('cross-check trapdiff vs Bochs', () => {
  itAgreesOnSample('bochs', SEED, COUNT);
});
