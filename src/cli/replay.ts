// `trapdiff replay FILE [--image IMAGE] [--at N [--back K]] [--prefix] [--json] [--progress]`
//
// Without --at: re-executes the trace from its log alone and verifies it whole (every
// checkpoint, observation and input, and the end; src/record/replayer.ts). A divergence is
// reported as the checkpoint interval it lies in and the unified diff of the recorded state
// against the replayed one (exact to the instruction when checkpoints are one instruction
// apart), on stdout.
// With --at N: time travel (src/record/timetravel.ts): the machine state after N instructions;
// --back K also steps back K instructions from N, each with the instruction that ran and what
// it changed.
//
// The image is found as trace-input.ts says. Exit status: 0 the trace replays (or the state was
// printed), 6 (DIVERGENCE_EXIT) it diverges, 2 bad input (incomplete trace without --prefix,
// wrong image, a damaged trace, N outside the trace).

import { diffStates, renderState, type Change } from '../record/diff.js';
import { codePlace, retiredInstruction, type CodePlace } from '../record/lockstep.js';
import { replay, type ReplayResult } from '../record/replayer.js';
import { TimeTravel, type TravelPoint } from '../record/timetravel.js';
import type { IndexedTrace } from '../record/trace-index.js';
import { parseArgs, parseUint, UserError } from './args.js';
import { millions, progressLine } from './machine-setup.js';
import type { CliIo } from './main.js';
import { DIVERGENCE_EXIT, openIndexedTrace, traceImage } from './trace-input.js';

export const REPLAY_USAGE = 'trapdiff replay FILE [--image IMAGE] [--at N [--back K]] [--prefix] [--json] [--progress]';

const SPEC = { image: 'string', at: 'string', back: 'string', prefix: 'boolean', json: 'boolean', progress: 'boolean' } as const;

/** One step back: the instruction that ran from `icount` to icount + 1, and what it changed. */
interface StepBack {
  icount: number;
  eip: number;
  linear: number;
  instruction: string;
  changes: Change[];
}

export function replayCommand(args: readonly string[], io: CliIo): number {
  const p = parseArgs('replay', args, SPEC);
  if (p.positional.length !== 1) throw new UserError(`replay takes one trace FILE (usage: ${REPLAY_USAGE})`);
  const path = p.positional[0]!;
  const at = p.strings.has('at') ? parseUint('--at', p.strings.get('at')!) : undefined;
  const back = p.strings.has('back') ? parseUint('--back', p.strings.get('back')!) : undefined;
  if (back !== undefined && at === undefined) throw new UserError('replay: --back K steps back from --at N; give --at too');
  const indexed = openIndexedTrace(path, p.flags.has('prefix'));
  const image = traceImage(indexed, path, p.strings.get('image'));
  const json = p.flags.has('json');
  return at === undefined
    ? verify(path, indexed, image, io, json, p.flags.has('progress'))
    : travel(path, indexed, image, at, back ?? 0, io, json);
}

function verify(path: string, t: IndexedTrace, image: Uint8Array, io: CliIo, json: boolean, progressFlag: boolean): number {
  const progress = progressLine(io, progressFlag);
  const r: ReplayResult = replay(t, image, progress.enabled ? {
    onProgress: ({ phase, icount, total, seconds }) => progress.show(
      `trapdiff: ${phase === 'replay' ? 'replaying' : 'locating the divergence'}, ${(icount / 1e6).toFixed(1)} of ${millions(total)}` +
      ` (${total > 0 ? Math.floor((icount / total) * 100) : 100}%), ${seconds.toFixed(0)} s`),
  } : {});
  progress.done();
  const ended = `stop ${r.stop}${r.exitCode === null ? '' : ` (exit code ${r.exitCode})`} at instruction ${r.icount}`;
  if (json) {
    const { ok, checkpoints, icount, stop, exitCode, debugOutput, serialOutput, seconds, mips, divergence } = r;
    io.stdout.write(JSON.stringify({
      trace: path, ok, complete: t.stoppedAt === undefined, checkpoints, icount, stop, exitCode, recordedEnd: r.recordedEnd,
      debugOutput, serialOutput, seconds, mips, divergence,
    }) + '\n');
  }
  const speed = `${r.seconds.toFixed(3)} s, ${r.mips.toFixed(1)} MIPS`;
  if (r.ok) {
    io.stderr.write(t.stoppedAt === undefined
      ? `trapdiff: ${path} replays exactly: ${r.checkpoints} checkpoints verified, ${ended} as recorded (${speed})\n`
      : `trapdiff: the intact prefix of ${path} replays exactly: ${r.checkpoints} checkpoints verified up to instruction ${r.icount} (${speed}; ${t.stoppedAt})\n`);
    return 0;
  }
  const d = r.divergence!;
  if (!json && d.text !== '') io.stdout.write(d.text);
  const where = d.exact
    ? `located exactly: instruction ${d.first?.icount ?? d.detectedAt - 1}`
    : `between the checkpoint at instruction ${d.lastGood} (the last that matched) and instruction ${d.detectedAt}`;
  io.stderr.write(`trapdiff: ${path} DIVERGES: ${d.message}\ntrapdiff: ${where}; the replay ended ${ended} (${speed})\n`);
  return DIVERGENCE_EXIT;
}

function travel(path: string, t: IndexedTrace, image: Uint8Array, at: number, back: number, io: CliIo, json: boolean): number {
  const tt = new TimeTravel(t, image);
  try {
    if (at > tt.last) throw new UserError(`--at ${at} is past the end of ${path} (instruction ${tt.last})`);
    if (back > at) throw new UserError(`--back ${back} goes before instruction 0 (from --at ${at})`);
    // One forward pass over the window [at - back, at] (from the nearest stored snapshot), then
    // shown from `at` backwards.
    const steps: StepBack[] = [];
    let point: TravelPoint | null = null, place: CodePlace | null = null;
    try {
      for (let n = at - back; n <= at; n++) {
        const next = tt.at(n);
        const m = tt.machineAt(n);
        if (point !== null && place !== null) {
          const { eip, linear, text } = retiredInstruction(m, place);
          steps.push({ icount: n - 1, eip, linear, instruction: text, changes: changesOf(point, next) });
        }
        point = next;
        place = codePlace(m);
      }
    } catch (e) {
      if (e instanceof UserError || !(e instanceof Error)) throw e;
      io.stderr.write(`trapdiff: ${path} DIVERGES: ${e.message}\n`);
      return DIVERGENCE_EXIT;
    }
    steps.reverse();
    const state = point!;
    if (json) {
      io.stdout.write(JSON.stringify({ trace: path, at, hash: state.hash, state: state.state, back: steps }) + '\n');
      return 0;
    }
    const lines = [`state at instruction ${at} (hash ${state.hash}):`, renderState(state.state).trimEnd().replace(/^/gm, '  ')];
    steps.forEach((s, k) => {
      lines.push(`back ${k + 1}: to instruction ${s.icount}, undoing ${(s.eip >>> 0).toString(16).padStart(8, '0')} ${s.instruction}`);
      for (const c of s.changes) lines.push(`  ${c.name} ${c.a} -> ${c.b}`);
    });
    io.stdout.write(lines.join('\n') + '\n');
    return 0;
  } finally {
    tt.dispose();
  }
}

/** What an instruction changed, from the state before it to the state after (the instruction count left out). */
function changesOf(before: TravelPoint, after: TravelPoint): Change[] {
  const d = diffStates(before.state, after.state);
  return [...d.registers, ...d.flags, ...d.segments, ...d.control, ...d.other.filter((c) => c.name !== 'icount'), ...d.devices];
}
