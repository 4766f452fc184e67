// Runs every VMX conformance ROM of the test suite on trapdiff and on the Bochs peer with VMX
// (../shared/peers/bochs-vmx/run-rom) and prints, per ROM, whether their port 0xE9 transcripts
// agree, then a summary line (docs/VMX.md, "Cross-checks with Bochs").
//
//   npx tsx scripts/vmx-bochs.ts [TEST_FILE...]     (default: every test/vmx-*.test.ts)
//
// The ROMs are the compareOnRom scenarios of those test files, enumerated without a second list:
// `vitest list` collects the files (running their compareOnRom declarations, not their tests)
// with TRAPDIFF_ROM_SCENARIO_DIR set, and each compareOnRom leaves its ROM, trapdiff's expected
// transcript and Bochs's run (model, expectation) there (test/helpers/rom-scenario.ts).
//
// Per ROM: "agree" (same transcript), "differs as documented" (the test gives Bochs its own
// expectation, which Bochs meets: docs/VMX.md says which side the SDM supports), or "DIFFERS"
// (anything else, with the first differing line; exit status 1). Skipped, with a message and
// status 0, where Bochs is absent.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makePeer } from '../src/crosscheck/peers.js';
import { BOCHS_RUN_ROM, peerInstalled, runProcessPeer } from '../src/peers/launch.js';
import { comparable, ROM_SCENARIO_DIR, type RomScenario } from '../test/helpers/rom-scenario.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
/** ROMs run at once: the machine has two cores. */
const PARALLEL = 2;

/**
 * The compareOnRom scenarios of `files`, as `vitest list` leaves them, and what went wrong in
 * collecting them (a test file that does not load, a ROM that does not assemble: '' if nothing).
 */
function collectScenarios(files: string[]): { scenarios: RomScenario[]; problem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-vmx-roms-'));
  try {
    const listed = spawnSync('npx', ['vitest', 'list', ...files], {
      cwd: ROOT, env: { ...process.env, [ROM_SCENARIO_DIR]: dir }, encoding: 'utf8',
    });
    const scenarios = readdirSync(dir)
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as RomScenario)
      .sort((a, b) => a.title.localeCompare(b.title));
    // vitest names the files it could not collect on FAIL lines.
    const failed = `${listed.stdout}${listed.stderr}`.split('\n').filter((l) => /FAIL|Error:/.test(l)).slice(0, 6);
    return { scenarios, problem: listed.status === 0 ? '' : failed.join('\n') || `vitest list exited with ${listed.status}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The first line where trapdiff's transcript differs from `other` (Bochs's, or the expected one). */
function firstDifference(ours: string, other: string, otherName = 'Bochs'): string {
  const x = ours.split('\n'), y = other.split('\n');
  for (let k = 0; k < Math.max(x.length, y.length); k++) {
    if (x[k] !== y[k]) return `line ${k + 1}: trapdiff ${JSON.stringify(x[k] ?? '(end)')}, ${otherName} ${JSON.stringify(y[k] ?? '(end)')}`;
  }
  return 'identical';
}
/** An expectation as a transcript (the lines of an array expectation each end in a newline). */
const asText = (want: string[] | string): string => (typeof want === 'string' ? want : want.map((l) => `${l}\n`).join(''));

type Verdict = 'agree' | 'documented' | 'differs';

async function check(s: RomScenario): Promise<{ verdict: Verdict; line: string }> {
  const rom = Buffer.from(s.rom, 'base64');
  const bochs = s.bochs;
  const [ours, theirs] = await Promise.all([
    makePeer('trapdiff').run(rom),
    runProcessPeer('bochs', rom, { seconds: bochs.seconds ?? 20, model: bochs.model }),
  ]);
  const model = bochs.model ? ` [Bochs model ${bochs.model}]` : '';
  const oursAsExpected = same(comparable(ours, s.expected), s.expected);
  if (!oursAsExpected) {
    return { verdict: 'differs', line: `DIFFERS   ${s.title}${model}: not as its test expects, ${firstDifference(ours, asText(s.expected), 'expected')}` };
  }
  if (ours === theirs) return { verdict: 'agree', line: `agree     ${s.title}${model}` };
  if (!same(s.bochs.expected, s.expected) && same(comparable(theirs, bochs.expected), bochs.expected)) {
    return { verdict: 'documented', line: `differs as documented  ${s.title}${model} (${bochs.title}); ${firstDifference(ours, theirs)}` };
  }
  return { verdict: 'differs', line: `DIFFERS   ${s.title}${model}: ${firstDifference(ours, theirs)}` };
}

async function main(): Promise<number> {
  if (!peerInstalled('bochs')) {
    console.log(`vmx-bochs: skipped: no Bochs with VMX at ${BOCHS_RUN_ROM} (../shared is absent)`);
    return 0;
  }
  const args = process.argv.slice(2);
  const files = args.length > 0 ? args : readdirSync(join(ROOT, 'test')).filter((f) => /^vmx-.*\.test\.ts$/.test(f)).map((f) => `test/${f}`);
  const { scenarios, problem } = collectScenarios(files);
  if (problem) console.log(`vmx-bochs: some ROMs could not be collected (their test files fail to load):\n${problem}`);
  console.log(`vmx-bochs: ${scenarios.length} ROMs of ${files.length} test files on trapdiff and Bochs`);
  const results: Array<{ verdict: Verdict; line: string }> = new Array(scenarios.length);
  let next = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < scenarios.length) {
      const k = next++;
      results[k] = await check(scenarios[k]!);
      console.log(results[k]!.line);
    }
  }));
  const count = (v: Verdict): number => results.filter((r) => r.verdict === v).length;
  console.log(`vmx-bochs: ${scenarios.length} ROMs: ${count('agree')} agree, ${count('documented')} differ as documented (docs/VMX.md), ${count('differs')} differ otherwise${problem ? '; some test files could not be collected' : ''}`);
  return count('differs') === 0 && !problem ? 0 : 1;
}

process.exitCode = await main();
