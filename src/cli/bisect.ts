// `trapdiff bisect A B [--image IMAGE] [--prefix] [--json] [--progress]`
//
// Two traces of one image (another environment's inputs, another trapdiff version): the first
// instruction at which they diverge (src/record/bisect.ts), with the unified diff of the two
// states after it on stdout. The image is found from trace A (trace-input.ts); both traces must
// have been recorded from it.
//
// Exit status: 0 the traces do not diverge, 6 (DIVERGENCE_EXIT) they do, 2 bad input.

import { bisect, type BisectResult } from '../record/bisect.js';
import { parseArgs, UserError } from './args.js';
import { millions, progressLine } from './machine-setup.js';
import type { CliIo } from './main.js';
import { DIVERGENCE_EXIT, openTrace, traceImage } from './trace-input.js';

export const BISECT_USAGE = 'trapdiff bisect A B [--image IMAGE] [--prefix] [--json] [--progress]';

const SPEC = { image: 'string', prefix: 'boolean', json: 'boolean', progress: 'boolean' } as const;

export function bisectCommand(args: readonly string[], io: CliIo): number {
  const p = parseArgs('bisect', args, SPEC);
  if (p.positional.length !== 2) throw new UserError(`bisect takes two trace files A and B (usage: ${BISECT_USAGE})`);
  const [pathA, pathB] = p.positional as [string, string];
  const prefix = p.flags.has('prefix');
  const a = openTrace(pathA, prefix), b = openTrace(pathB, prefix);
  const image = traceImage(a, pathA, p.strings.get('image'));
  const progress = progressLine(io, p.flags.has('progress'));
  const t0 = performance.now();
  const r: BisectResult = bisect(a, b, image, progress.enabled ? {
    onProgress: (icount) => progress.show(`trapdiff: comparing in lockstep, ${millions(icount)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`),
  } : {});
  progress.done();
  if (p.flags.has('json')) {
    io.stdout.write(JSON.stringify({ a: pathA, b: pathB, ...r }) + '\n');
  } else if (r.first !== null) {
    io.stdout.write(r.first.text);
  }
  if (r.same) {
    io.stderr.write(`trapdiff: ${pathA} and ${pathB} do not diverge (${r.message})\n`);
    return 0;
  }
  const start = `the search started at their last common checkpoint, instruction ${r.lastCommon}` +
    (r.firstBadCheckpoint === null ? '' : `; the first common checkpoint that differs is at ${r.firstBadCheckpoint}`);
  io.stderr.write(`trapdiff: ${pathA} and ${pathB} DIVERGE: ${r.message}\ntrapdiff: ${start}\n`);
  return DIVERGENCE_EXIT;
}
