// What the trace commands share (`record`, `replay`, `bisect`, `trace-info`): opening a trace
// (a damaged or unfinished one is bad input unless --prefix asks for its intact events), finding
// the image it was recorded from, the exit status of a divergence, and event counts in words.
//
// Where the image is: the recorder stores its path relative to the trace file's directory in
// the header (machine.imageName, '/'-separated), so a trace and its image can move together
// (traces/ names ../corpus/...); --image overrides it. Either way the image's SHA-256 must be
// the one recorded (machine.imageSha256), else the trace is refused.

import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { readTrace, type TraceFile, type TraceHeader } from '../record/format.js';
import { checkImage } from '../record/rebuild.js';
import { loadTrace, type IndexedTrace } from '../record/trace-index.js';
import { UserError } from './args.js';
import { readImage } from './machine-setup.js';

/** Exit status of `replay` and `bisect` when the runs diverge (run's statuses are 0 to 5 and odd guest codes). */
export const DIVERGENCE_EXIT = 6;

/** The header's image path for an image at `imagePath` recorded into a trace at `tracePath`. */
export function imagePathForHeader(imagePath: string, tracePath: string): string {
  return relative(dirname(resolve(tracePath)), resolve(imagePath)).split(sep).join('/');
}

/** The trace at `path`, refusing (UserError) one that is not complete unless `prefix`. */
export function openTrace(path: string, prefix: boolean): TraceFile {
  const t = readTrace(path);
  if (!t.complete && !prefix) refuseIncomplete(path, t.stoppedAt, t.events.length);
  return t;
}

/** The trace at `path` indexed for replay (loadTrace: no event object per observation), refused as openTrace does. */
export function openIndexedTrace(path: string, prefix: boolean): IndexedTrace {
  const t = loadTrace(path);
  if (t.stoppedAt !== undefined && !prefix) {
    refuseIncomplete(path, t.stoppedAt, t.inputs.length + t.observations.length + t.checkpoints.length + t.snapshots.length);
  }
  return t;
}

function refuseIncomplete(path: string, stoppedAt: string | undefined, events: number): never {
  throw new UserError(`${path} is incomplete (${stoppedAt ?? 'no footer'}); --prefix replays its ${events} intact event${events === 1 ? '' : 's'}`);
}

/** The image of trace `t` (read from `tracePath`): --image `given`, else the one the header names; checked by SHA-256. */
export function traceImage(t: { header: TraceHeader }, tracePath: string, given: string | undefined): Uint8Array {
  const named = t.header.machine.imageName;
  const path = given ?? (isAbsolute(named) ? named : resolve(dirname(tracePath), named));
  let image: Uint8Array;
  try {
    image = readImage(path);
  } catch (e) {
    if (given !== undefined || !(e instanceof UserError)) throw e;
    throw new UserError(`${e.message} (the image ${tracePath} names, relative to the trace); give the image with --image`);
  }
  checkImage(t.header.machine, image, tracePath);
  return image;
}

/** Events written, as "12 inputs, 20 checkpoints, ..." (the kinds in a fixed order, then the rest). */
export function describeCounts(counts: Record<string, number>): string {
  const order = ['input', 'checkpoint', 'snapshot', 'interrupt', 'exception', 'io-write', 'vm-exit', 'halt', 'shutdown', 'end'];
  const kinds = [...order.filter((k) => k in counts), ...Object.keys(counts).filter((k) => !order.includes(k)).sort()];
  return kinds.map((k) => `${counts[k]} ${k}${counts[k] === 1 ? '' : 's'}`).join(', ');
}
