// `trapdiff record IMAGE [machine options] -o FILE [--checkpoint-every K] [--snapshot-every M]
//                       [--json] [--progress]`
//
// Runs one image as `run` does (same machine options, the guest's output on stdout) and records
// the run into the trace FILE (src/record/recorder.ts; docs/TRACE-FORMAT.md): every input with
// its instruction count, the observations, a checkpoint every K instructions and a stored
// snapshot every M. The trace is written to FILE.partial and renamed to FILE when the run ends;
// the header names the image by its path relative to FILE's directory (trace-input.ts).
//
// Exit status: 0 when the trace is written (however the guest stopped: the report says how),
// 1 when the run stopped by an internal error (the trace is still written), 2 bad input.

import { statSync } from 'node:fs';
import { TraceWriter } from '../record/format.js';
import { DEFAULT_CHECKPOINT_EVERY, record, type RecordResult } from '../record/recorder.js';
import { parseArgs, parseUint, UserError, type ParsedArgs } from './args.js';
import { guestOutput, MACHINE_SPEC, MACHINE_USAGE, machineSetup, millions, progressLine } from './machine-setup.js';
import type { CliIo } from './main.js';
import { describeCounts, imagePathForHeader } from './trace-input.js';

export const RECORD_USAGE =
  `trapdiff record IMAGE ${MACHINE_USAGE} -o FILE [--checkpoint-every K] [--snapshot-every M] [--json] [--progress]`;

const SPEC = {
  ...MACHINE_SPEC, output: 'string', 'checkpoint-every': 'string', 'snapshot-every': 'string', json: 'boolean', progress: 'boolean',
} as const;

/** Positive integer option `name` of `p`, or undefined. */
function positive(p: ParsedArgs, name: string): number | undefined {
  const text = p.strings.get(name);
  if (text === undefined) return undefined;
  const n = parseUint(`--${name}`, text);
  if (n === 0) throw new UserError(`--${name} must be at least 1`);
  return n;
}

export function recordCommand(args: readonly string[], io: CliIo): number {
  // -o (the one short option anywhere) is --output.
  const p = parseArgs('record', args.map((a) => (a === '-o' ? '--output' : a)), SPEC);
  if (p.positional.length !== 1) throw new UserError(`record takes one IMAGE (usage: ${RECORD_USAGE})`);
  const out = p.strings.get('output');
  if (out === undefined) throw new UserError(`record needs -o FILE, where the trace goes (usage: ${RECORD_USAGE})`);
  const k = positive(p, 'checkpoint-every') ?? DEFAULT_CHECKPOINT_EVERY;
  const m = positive(p, 'snapshot-every'); // default: the recorder's (a multiple of K)
  if (m !== undefined && m % k !== 0) throw new UserError(`--snapshot-every (${m}) must be a multiple of --checkpoint-every (${k})`);
  const setup = machineSetup(p, p.positional[0]!);
  const json = p.flags.has('json');
  const output = guestOutput(io, json);
  const progress = progressLine(io, p.flags.has('progress'), output.flush);

  const r: RecordResult = record({
    image: setup.image, imageName: imagePathForHeader(setup.path, out), loader: setup.load, loadOptions: setup.loadOptions,
    memMiB: setup.memMiB, vmx: setup.vmx, env: setup.env, checkpointEvery: k, ...(m === undefined ? {} : { snapshotEvery: m }),
    ...(setup.maxInsns === undefined ? {} : { maxInsns: setup.maxInsns }),
    ...output.options,
    sink: (header) => TraceWriter.create(out, header),
    ...(progress.enabled ? {
      onProgress: ({ instructions, seconds, mips, events }) =>
        progress.show(`trapdiff: recording, ${millions(instructions)}, ${events} events, ${seconds.toFixed(0)} s, ${mips.toFixed(1)} MIPS`),
    } : {}),
  });
  output.flush();
  progress.done();
  const bytes = statSync(out).size;
  const { run } = r;
  if (json) {
    io.stdout.write(JSON.stringify({
      trace: out, bytes, stop: run.stop, exitCode: run.exitCode, instructions: run.instructions, events: r.counts,
      debugOutput: run.debugOutput, serialOutput: run.serialOutput, seconds: run.seconds, mips: run.mips,
      ...(run.error ? { error: run.error } : {}),
    }) + '\n');
  }
  io.stderr.write(
    `trapdiff: recorded ${out} (${bytes} bytes; ${describeCounts(r.counts)})\n` +
    `trapdiff: stop ${run.stop}${run.exitCode === null ? '' : ` (exit code ${run.exitCode})`}${run.error ? `: ${run.error}` : ''}, ` +
    `${run.instructions} instructions in ${run.seconds.toFixed(3)} s (${run.mips.toFixed(1)} MIPS), env ${setup.env}, loader ${setup.load}\n`,
  );
  return run.stop === 'error' ? 1 : 0;
}
