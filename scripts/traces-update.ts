// `npm run traces:update -- [NAME...]`
//
// Re-records, on purpose, the regression traces of traces/ (test/traces.test.ts replays each in
// `npm test`): every run of every corpus guest (corpus/*/guest.json, with its loader, memory,
// budget and VMX option) under the live environment, through `trapdiff record`, as
// traces/<image base name>[-novmx].trace, with a checkpoint every K = 10,000 instructions and a
// stored snapshot every M = 100,000 (the traces stay a few KiB each). NAMEs limit it to those
// traces.
//
// For each trace it shows what changed from the committed one: instructions, inputs, the debug
// console output, the final state's hash, and a verdict: whether the old trace still replays on
// this trapdiff (then only the live inputs differ) or not (trapdiff's behaviour changed: the
// reason to re-record). Progress goes to stderr, the report to stdout. Exit status 1 when a
// recording failed.

import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { main, type CliIo } from '../src/cli/main.js';
import { CORPUS_DIR, listGuests, regressionTraceName, type GuestRun } from '../src/cli/corpus.js';
import { openTrace, traceImage } from '../src/cli/trace-input.js';
import { readTrace, type CheckpointEvent, type EndEvent, type TraceFile } from '../src/record/format.js';
import { replay } from '../src/record/replayer.js';

const TRACES_DIR = join(CORPUS_DIR, '../traces');
const CHECKPOINT_EVERY = 10_000;
const SNAPSHOT_EVERY = 100_000;
/** The isa-debug-console port, whose writes are the guest's debug output. */
const DEBUG_PORT = 0xe9;

interface Planned {
  name: string;
  args: string[];
}

/** The trace of each corpus run and the `trapdiff record` arguments that make it. */
function plan(): Planned[] {
  const out: Planned[] = [];
  for (const g of listGuests()) {
    for (const r of g.runs) {
      const name = regressionTraceName(r);
      out.push({ name, args: recordArgs(join(g.dir, r.image), r, join(TRACES_DIR, `${name}.trace`)) });
    }
  }
  return out;
}

function recordArgs(image: string, r: GuestRun, out: string): string[] {
  return [
    'record', relative(process.cwd(), image), '--load', r.load, ...(r.at === undefined ? [] : ['--at', r.at]),
    ...(r.mem === undefined ? [] : ['--mem', String(r.mem)]), '--max-insns', String(r.maxInsns ?? 100_000_000),
    ...(r.vmx === false ? ['--no-vmx'] : []), '--env', 'live',
    '--checkpoint-every', String(CHECKPOINT_EVERY), '--snapshot-every', String(SNAPSHOT_EVERY), '-o', relative(process.cwd(), out),
  ];
}

/** What a trace says about its run, for the before/after comparison. */
interface Summary {
  instructions: number | null;
  stop: string | null;
  inputs: number;
  output: string;
  finalHash: string | null;
  bytes: number;
}

function summarize(t: TraceFile): Summary {
  let output = '', inputs = 0, last: CheckpointEvent | null = null, end: EndEvent | null = null;
  for (const e of t.events) {
    if (e.kind === 'input') inputs++;
    else if (e.kind === 'end') end = e;
    else if (e.kind === 'io-write' && e.port === DEBUG_PORT) output += String.fromCharCode(e.value & 0xff);
    else if (e.kind === 'checkpoint') last = e;
  }
  return {
    instructions: end?.icount ?? null, stop: end === null ? null : `${end.stop}${end.exitCode === null ? '' : ` ${end.exitCode}`}`,
    inputs, output, finalHash: last?.hash ?? null, bytes: t.bytes,
  };
}

/** Whether the committed trace still replays on this trapdiff, in one line. */
function oldVerdict(path: string): { replays: boolean; line: string } {
  try {
    const t = openTrace(path, false);
    const r = replay(t, traceImage(t, path, undefined));
    if (r.ok) return { replays: true, line: 'the old trace still replays exactly on this trapdiff: only the live inputs differ' };
    return { replays: false, line: `trapdiff's behaviour changed: the old trace diverges (${r.divergence!.message})` };
  } catch (e) {
    return { replays: false, line: `the old trace could not be replayed (${e instanceof Error ? e.message : String(e)})` };
  }
}

const show = (v: string | number | null): string => (v === null ? '-' : typeof v === 'string' ? JSON.stringify(v) : String(v));
const change = (what: string, a: string | number | null, b: string | number | null): string =>
  a === b ? `  ${what}: ${show(b)} (same)` : `  ${what}: ${show(a)} -> ${show(b)}`;

function run(): number {
  const wanted = process.argv.slice(2);
  const planned = plan().filter((p) => wanted.length === 0 || wanted.includes(p.name));
  const unknown = wanted.filter((w) => !planned.some((p) => p.name === w));
  if (unknown.length > 0) {
    process.stderr.write(`traces:update: no corpus run makes ${unknown.join(', ')} (there are ${plan().map((p) => p.name).join(', ')})\n`);
    return 2;
  }
  mkdirSync(TRACES_DIR, { recursive: true });
  let failed = 0;
  for (const [k, p] of planned.entries()) {
    const path = join(TRACES_DIR, `${p.name}.trace`);
    process.stderr.write(`traces:update: [${k + 1}/${planned.length}] trapdiff ${p.args.join(' ')}\n`);
    const before = existsSync(path) ? readTrace(path) : null;
    const verdict = before === null ? null : oldVerdict(path);
    let stderr = '';
    // The guest's output is left out (the report shows the trace's); the record report kept for failures.
    const io: CliIo = { stdout: { write: () => true }, stderr: { write: (s) => (stderr += String(s)) }, stderrIsTTY: false };
    const status = main(p.args, io);
    if (status !== 0) {
      failed++;
      process.stdout.write(`${p.name}: RECORDING FAILED (status ${status}): ${stderr.trim()}\n`);
      continue;
    }
    const after = summarize(readTrace(path));
    const old = before === null ? null : summarize(before);
    const lines = [`${p.name}: ${after.bytes} bytes, stop ${after.stop}`];
    lines.push(change('instructions', old?.instructions ?? null, after.instructions));
    lines.push(change('inputs', old?.inputs ?? null, after.inputs));
    lines.push(change('debug output', old?.output ?? null, after.output));
    lines.push(change('final state hash', old?.finalHash ?? null, after.finalHash));
    lines.push(`  verdict: ${verdict === null ? 'new trace' : verdict.line}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  const stale = readdirSync(TRACES_DIR).filter((f) => f.endsWith('.trace') && !plan().some((p) => `${p.name}.trace` === f));
  for (const f of stale) process.stdout.write(`${f}: no corpus run makes this trace any more; delete it (git rm traces/${f})\n`);
  const total = readdirSync(TRACES_DIR).filter((f) => f.endsWith('.trace')).reduce((n, f) => n + readFileSync(join(TRACES_DIR, f)).length, 0);
  process.stdout.write(`traces/: ${total} bytes in all\n`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = run();
