// Cross-checks trapdiff (or any two peers) on generated test ROMs; see docs/CROSSCHECK.md.
// usage: npx tsx scripts/crosscheck.ts --peer v86|bochs|qemu [--against trapdiff|v86|bochs|qemu]
//          --count N --seed S [--mode real|pm0|pm3|pm0-paging|pm3-paging|all] [--json] [--no-minimize]
// Exits 1 when agreement is under 99.5%, 2 on bad usage; a peer missing here skips the run (exit 0).

import { MODES, type Mode } from '../src/crosscheck/modes.js';
import { makePeer, peerAvailable, type PeerName } from '../src/crosscheck/peers.js';
import { crossCheck, formatSummary } from '../src/crosscheck/run.js';

const TARGET_PERCENT = 99.5;
const PEERS: PeerName[] = ['v86', 'bochs', 'qemu', 'trapdiff'];

function usage(msg: string): never {
  process.stderr.write(`crosscheck: ${msg}\nusage: crosscheck --peer v86|bochs|qemu [--against trapdiff] --count N --seed S [--mode ${MODES.join('|')}|all] [--json] [--no-minimize]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const peerName = opt('peer') as PeerName | undefined;
const against = (opt('against') ?? 'trapdiff') as PeerName;
if (!peerName || !PEERS.includes(peerName)) usage('--peer is required');
if (!PEERS.includes(against)) usage(`unknown peer ${against}`);
const count = Number(opt('count') ?? 1000);
const seed = Number(opt('seed') ?? 1);
if (!Number.isInteger(count) || count < 1) usage('--count must be a positive integer');
if (!Number.isInteger(seed)) usage('--seed must be an integer');
const modeArg = opt('mode') ?? 'all';
const modes: readonly Mode[] = modeArg === 'all' ? MODES : (MODES as readonly string[]).includes(modeArg) ? [modeArg as Mode] : usage(`unknown mode ${modeArg}`);
// A peer missing here (no ../shared for Bochs, no QEMU installed) skips the run, successfully.
for (const p of [peerName, against]) if (!peerAvailable(p)) { process.stderr.write(`crosscheck: skipped, peer ${p} is not available here\n`); process.exit(0); }

const t0 = Date.now();
const summary = await crossCheck({
  a: makePeer(against),
  b: makePeer(peerName),
  seed,
  count,
  modes,
  minimize: !args.includes('--no-minimize'),
  onProgress: (done, total, agreed) => {
    process.stderr.write(`\r${done}/${total} tests, ${agreed} agree (${((100 * agreed) / done).toFixed(2)}%), ${((Date.now() - t0) / 1000).toFixed(0)} s   `);
  },
});
process.stderr.write('\n');
process.stdout.write(args.includes('--json') ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
process.exit(summary.percent < TARGET_PERCENT ? 1 : 0);
