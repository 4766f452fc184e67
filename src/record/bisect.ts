// Two traces of one image (another environment's inputs, another emulator version, later another
// monitor): where do they part? First from the logs alone: the first input that differs and the
// first checkpoint (at an instruction count both traces checkpoint: they may use other K) whose
// hash differs. Then both are replayed, each with its own log, from the last checkpoint they
// agree on (each from its own stored snapshot before it), in lockstep (lockstep.ts): the first
// instruction after which the states differ, or at which the inputs consumed differ.

import type { Machine } from '../machine/machine.js';
import { TraceError, type InputEvent, type TraceFile } from './format.js';
import { compareStanding, lockstep, type FirstDifference } from './lockstep.js';
import { describeEvent } from './observations.js';
import { checkImage } from './rebuild.js';
import { ReplayMachine } from './replay-machine.js';
import { indexTrace, type IndexedTrace } from './trace-index.js';

export interface BisectOptions {
  /** Configures the machines replaying trace A / trace B. */
  configureA?: (m: Machine) => void;
  configureB?: (m: Machine) => void;
  /** Called with the instruction count reached during the lockstep search. */
  onProgress?: (icount: number) => void;
}

export interface BisectResult {
  /** The traces agree everywhere they can be compared (inputs, checkpoints, end). */
  same: boolean;
  /** The first input that differs in log order (source, value or instruction count), with its index. */
  firstInput: { index: number; a: InputEvent | null; b: InputEvent | null } | null;
  /** Instruction count of the last common checkpoint the traces agree on (where the search starts). */
  lastCommon: number;
  /** Instruction count of the first common checkpoint that differs (null: none does). */
  firstBadCheckpoint: number | null;
  /** The first instruction after which the replays differ (or their states differ where the search starts). */
  first: FirstDifference | null;
  /** One line. */
  message: string;
}

const sameInput = (a: InputEvent | undefined, b: InputEvent | undefined): boolean =>
  a !== undefined && b !== undefined && a.icount === b.icount && a.source === b.source && a.value === b.value;

export function bisect(traceA: TraceFile | IndexedTrace, traceB: TraceFile | IndexedTrace, image: Uint8Array, opts: BisectOptions = {}): BisectResult {
  const a = 'inputs' in traceA ? traceA : indexTrace(traceA);
  const b = 'inputs' in traceB ? traceB : indexTrace(traceB);
  if (a.header.machine.imageSha256 !== b.header.machine.imageSha256) {
    throw new TraceError(`the traces are of different images (${a.header.machine.imageName}, sha256 ` +
      `${a.header.machine.imageSha256.slice(0, 16)}…; ${b.header.machine.imageName}, sha256 ${b.header.machine.imageSha256.slice(0, 16)}…)`);
  }
  checkImage(a.header.machine, image, 'trace A');

  let firstInput: BisectResult['firstInput'] = null;
  for (let i = 0; i < Math.max(a.inputs.length, b.inputs.length); i++) {
    if (!sameInput(a.inputs[i], b.inputs[i])) {
      firstInput = { index: i, a: a.inputs[i] ?? null, b: b.inputs[i] ?? null };
      break;
    }
  }
  const hashB = new Map<number, string>();
  for (const c of b.checkpoints) if (!hashB.has(c.event.icount)) hashB.set(c.event.icount, c.event.hash);
  let lastCommon = 0, firstBad: number | null = null;
  for (const c of a.checkpoints) {
    const other = hashB.get(c.event.icount);
    if (other === undefined) continue;
    if (other !== c.event.hash) {
      firstBad = c.event.icount;
      break;
    }
    lastCommon = c.event.icount;
  }
  const endA = a.end, endB = b.end;
  const sameEnd = endA !== null && endB !== null && endA.icount === endB.icount && endA.stop === endB.stop && endA.exitCode === endB.exitCode;
  if (firstInput === null && firstBad === null && sameEnd) {
    return { same: true, firstInput, lastCommon, firstBadCheckpoint: null, first: null, message: 'the traces do not diverge' };
  }

  const ra = new ReplayMachine(a, image, opts.configureA ? { configure: opts.configureA } : {});
  const rb = new ReplayMachine(b, image, opts.configureB ? { configure: opts.configureB } : {});
  let first: FirstDifference | null;
  try {
    ra.seekSnapshot(ra.snapshotBefore(lastCommon));
    rb.seekSnapshot(rb.snapshotBefore(lastCommon));
    ra.runTo(lastCommon);
    rb.runTo(lastCommon);
    const labels: [string, string] = ['A', 'B'];
    const lastA = endA?.icount ?? a.checkpoints.at(-1)!.event.icount, lastB = endB?.icount ?? b.checkpoints.at(-1)!.event.icount;
    first = compareStanding(ra, rb, labels) ??
      lockstep(ra, rb, Math.min(lastA, lastB) + 1, { labels, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  } finally {
    ra.dispose();
    rb.dispose();
  }
  const parts: string[] = [];
  if (firstInput !== null) parts.push(`first differing input #${firstInput.index}: A ${describeEvent(firstInput.a)}, B ${describeEvent(firstInput.b)}`);
  if (first !== null) parts.push(`first difference: ${first.message}`);
  else parts.push(`the replays agree from instruction ${lastCommon} on${sameEnd ? '' : ', but the traces end differently'}`);
  return { same: false, firstInput, lastCommon, firstBadCheckpoint: firstBad, first, message: parts.join('; ') };
}
