// Replay: re-executes a trace from its header (the machine rebuilt from the image, whose SHA-256
// must be the recorded one) with the recorded inputs alone, and checks every checkpoint, every
// observation and the end. On the first mismatch it locates the divergence, at one of two levels
// (docs/RECORD-REPLAY.md):
//  - with a reference executor (opts.reference): a second machine built the reference way
//    replays the same log beside the machine under test, both from the last stored snapshot
//    before the last good checkpoint, compared after every instruction (lockstep.ts): the first
//    divergent instruction exactly, disassembled, with the full state diff and memory ranges;
//  - without one: the checkpoint interval [last good, first bad] and the diff of the replayed
//    state against the state recorded in the first bad checkpoint (exact when K = 1).

import type { Machine, RunResult, StopKind } from '../machine/machine.js';
import { diffStates, unifiedDiff, type StateDiff } from './diff.js';
import type { EndEvent, TraceFile } from './format.js';
import { lockstep, type FirstDifference } from './lockstep.js';
import type { RebuildOptions } from './rebuild.js';
import { ReplayMachine } from './replay-machine.js';
import { asRecorded, layoutDifference, stateHash } from './state.js';
import { indexTrace, type IndexedTrace } from './trace-index.js';

export interface ReplayProgress {
  /** replay: verifying checkpoints; locate: searching for the first divergent instruction. */
  phase: 'replay' | 'locate';
  icount: number;
  /** The trace's last instruction count. */
  total: number;
  seconds: number;
}

export interface ReplayOptions extends RebuildOptions {
  /** Called on every machine under test that replay builds (e.g. a test's changed semantic). */
  configure?: (m: Machine) => void;
  /**
   * A reference executor for the exact search: its machines are configured with this (true: a
   * plain machine). Without it a divergence is located to its checkpoint interval.
   */
  reference?: true | ((m: Machine) => void);
  /** About once a second of host time, in both phases. */
  onProgress?: (p: ReplayProgress) => void;
  /** Instructions per chunk of the lockstep search (see lockstep.ts). */
  lockstepChunk?: number;
}

export interface Divergence {
  /** What noticed it: a checkpoint hash, an input asked off the log, an observation, or the end. */
  detectedBy: 'checkpoint' | 'input' | 'observation' | 'end';
  /** Instruction count at which it was noticed. */
  detectedAt: number;
  /** Instruction count of the last checkpoint that matched (0 when none did). */
  lastGood: number;
  /** One line. */
  message: string;
  /** Located to one instruction: by the reference executor, or by checkpoints one instruction apart. */
  exact: boolean;
  /** The first divergent instruction (with a reference executor). */
  first: FirstDifference | null;
  /** Without a reference: the recorded checkpoint state against the replayed one (detectedBy 'checkpoint'). */
  diff: StateDiff | null;
  /** The same as a unified diff ('' when there is none). */
  text: string;
}

export interface ReplayResult {
  /** Every checkpoint, observation and input matched, and the run ended as recorded. */
  ok: boolean;
  /** Checkpoints verified. */
  checkpoints: number;
  /** Where the replay stopped. */
  icount: number;
  stop: StopKind;
  exitCode: number | null;
  /** The recorded end; null for a trace that is a prefix (then ok means the prefix replays). */
  recordedEnd: EndEvent | null;
  debugOutput: string;
  serialOutput: string;
  seconds: number;
  mips: number;
  divergence: Divergence | null;
}

/** Replays `trace` (a TraceFile, or one already indexed) against `image`. */
export function replay(trace: TraceFile | IndexedTrace, image: Uint8Array, opts: ReplayOptions = {}): ReplayResult {
  const t = 'inputs' in trace ? trace : indexTrace(trace);
  const rm = new ReplayMachine(t, image, { ...opts, checkObservations: true });
  const t0 = performance.now();
  let nextProgress = t0 + 1000;
  const total = t.end?.icount ?? t.checkpoints.at(-1)?.event.icount ?? 0;
  let verified = 0, lastGood = 0;
  let divergence: Divergence | null = null;
  let run: RunResult | null = null;
  try {
    for (let i = 0; i < t.checkpoints.length && divergence === null; i++) {
      const c = t.checkpoints[i]!.event;
      const final = t.end !== null && i === t.checkpoints.length - 1;
      const pastEnd = final && t.end!.stop !== 'budget';
      if (rm.icount !== c.icount || pastEnd) run = rm.runTo(c.icount, pastEnd);
      const off = rm.logMismatch();
      if (off !== null) {
        divergence = located(t, image, opts, off.icount, lastGood, rm.env.mismatch !== null && rm.env.mismatch.icount === off.icount ? 'input' : 'observation', off.message);
        break;
      }
      if (rm.icount !== c.icount) {
        divergence = located(t, image, opts, rm.icount, lastGood, 'end',
          `replay stopped (${run?.stop}${run?.error ? `: ${run.error}` : ''}) at instruction ${rm.icount}, before the checkpoint at ${c.icount}`);
        break;
      }
      const state = rm.state.capture();
      const comparable = asRecorded(state, c.state);
      if (stateHash(comparable) !== c.hash) {
        const layout = layoutDifference(c.state, comparable);
        divergence = located(t, image, opts, c.icount, lastGood, 'checkpoint',
          `checkpoint at instruction ${c.icount} differs (last good: ${lastGood})` + (layout === null ? '' :
            `; the recorded state has another layout at '${layout}': the trace comes from a trapdiff with other CPU state (re-record it: npm run traces:update)`));
        if (!divergence.exact || divergence.first === null) {
          divergence.diff = diffStates(c.state, comparable);
          divergence.text = unifiedDiff(c.state, comparable, ['recorded', 'replayed']);
          divergence.exact ||= c.icount - lastGood === 1;
        }
        break;
      }
      verified++;
      lastGood = c.icount;
      if (opts.onProgress && performance.now() >= nextProgress) {
        opts.onProgress({ phase: 'replay', icount: rm.icount, total, seconds: (performance.now() - t0) / 1000 });
        nextProgress += 1000;
      }
    }
    const end = t.end;
    if (divergence === null && end !== null) {
      const left = rm.env.remaining + rm.observationsLeft;
      if (run?.stop !== end.stop || run.exitCode !== end.exitCode || rm.icount !== end.icount || left !== 0) {
        divergence = {
          detectedBy: 'end', detectedAt: rm.icount, lastGood, exact: false, first: null, diff: null, text: '',
          message: `replay ended ${run?.stop} (exit code ${run?.exitCode}) at instruction ${rm.icount} with ${left} logged events unused; ` +
            `the trace ends ${end.stop} (exit code ${end.exitCode}) at ${end.icount}`,
        };
      }
    }
  } finally {
    rm.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    ok: divergence === null, checkpoints: verified, icount: rm.icount, stop: run?.stop ?? 'budget', exitCode: run?.exitCode ?? null,
    recordedEnd: t.end, debugOutput: run?.debugOutput ?? '', serialOutput: run?.serialOutput ?? '',
    seconds, mips: seconds > 0 ? rm.icount / seconds / 1e6 : 0, divergence,
  };
}

/**
 * A divergence noticed at instruction `detectedAt`, after the checkpoint at `lastGood` matched:
 * with a reference executor, searched for instruction by instruction from the last stored
 * snapshot before lastGood.
 */
function located(
  t: IndexedTrace, image: Uint8Array, opts: ReplayOptions, detectedAt: number, lastGood: number,
  detectedBy: Divergence['detectedBy'], message: string,
): Divergence {
  const d: Divergence = { detectedBy, detectedAt, lastGood, message, exact: false, first: null, diff: null, text: '' };
  if (opts.reference === undefined) return d;
  const cand = new ReplayMachine(t, image, opts.configure ? { configure: opts.configure } : {});
  const ref = new ReplayMachine(t, image, opts.reference === true ? {} : { configure: opts.reference });
  try {
    const k = cand.snapshotBefore(lastGood);
    cand.seekSnapshot(k);
    ref.seekSnapshot(k);
    cand.runTo(lastGood);
    ref.runTo(lastGood);
    const t0 = performance.now();
    const total = t.end?.icount ?? detectedAt;
    // The instruction that noticed it (an observation, an input asked) may itself be the first
    // to differ: search through it.
    d.first = lockstep(ref, cand, detectedAt + 1, {
      labels: ['reference', 'replayed'],
      ...(opts.lockstepChunk === undefined ? {} : { chunk: opts.lockstepChunk }),
      ...(opts.onProgress ? { onProgress: (icount: number) => opts.onProgress!({ phase: 'locate', icount, total, seconds: (performance.now() - t0) / 1000 }) } : {}),
    });
    if (d.first !== null) {
      d.exact = true;
      d.diff = d.first.diff;
      d.text = d.first.text;
      d.message = `${message}; first difference: ${d.first.message}`;
    }
  } finally {
    cand.dispose();
    ref.dispose();
  }
  return d;
}
