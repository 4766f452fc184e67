// The recorder: runs an image on a machine whose Env is wrapped in a RecordingEnv and writes one
// ordered event stream: every input with the instruction count at which it was asked, every
// observation, a checkpoint (hash + compact architectural state) every K instructions and a
// stored snapshot every M instructions (and at instruction 0), then the end. The machine runs
// in budget slices of K instructions (Machine.run stops exactly at a budget and resumes as if it
// had not stopped), so the checkpoints land on exact multiples of K; the last one is where the
// run ended.

import { envFor, type Env } from '../machine/env.js';
import { UserError } from '../machine/errors.js';
import type { LoaderKind, LoadOptions } from '../machine/loaders/index.js';
import { DEFAULT_MEM_MIB, DEFAULT_VMX, type Machine, type RunResult } from '../machine/machine.js';
import { TRAPDIFF_VERSION } from '../version.js';
import {
  TRACE_FORMAT_VERSION, type EndEvent, type TraceEvent, type TraceFile, type TraceHeader,
} from './format.js';
import { envShape, RecordingEnv } from './inputs.js';
import { observe, ObservationEvents, type ObservationEvent, type ObservationLog } from './observations.js';
import { buildMachine, encodeSnapshot, sha256Hex, type RebuildOptions } from './rebuild.js';
import { stateHash, StateTracker } from './state.js';

/**
 * Default K: a checkpoint every 1,000,000 instructions (about 10 ms of guest time). A checkpoint
 * costs about 0.3 ms (the devices' save() and the state hash): with K = 100,000 recording the
 * alu benchmark took 36% longer than a plain run, with 1,000,000 about 5% (docs/BENCH.md).
 */
export const DEFAULT_CHECKPOINT_EVERY = 1_000_000;
/** Default M: a stored snapshot every 5,000,000 instructions (every 5th checkpoint). */
export const DEFAULT_SNAPSHOT_EVERY = 5_000_000;

/**
 * Where a recording's events go: a TraceWriter (format.ts) for a file, or a MemoryTrace.
 * Observations come through the ObservationLog methods, everything else through append().
 */
export interface TraceSink extends ObservationLog {
  append(e: TraceEvent): void;
  /** Events taken so far, by kind. */
  counts(): Record<string, number>;
  close(end: EndEvent): void;
  /** Stops without an end (the events so far stay a replayable prefix). */
  abort(): void;
}

/** A trace held in memory, readable as a TraceFile once closed (or as a prefix before). */
export class MemoryTrace extends ObservationEvents implements TraceSink {
  readonly events: TraceEvent[] = [];
  private closed = false;
  constructor(readonly header: TraceHeader) {
    super();
  }
  append(e: TraceEvent): void {
    this.events.push(e);
  }
  protected emit(e: ObservationEvent): void {
    this.events.push(e);
  }
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const e of this.events) counts[e.kind] = (counts[e.kind] ?? 0) + 1;
    return counts;
  }
  close(end: EndEvent): void {
    this.events.push(end);
    this.closed = true;
  }
  abort(): void {}
  toTraceFile(): TraceFile {
    return { header: this.header, events: this.events, complete: this.closed, bytes: 0,
      ...(this.closed ? {} : { stoppedAt: 'recording not finished' }) };
  }
}

export interface RecordProgress {
  instructions: number;
  seconds: number;
  mips: number;
  events: number;
}

export interface RecordOptions extends RebuildOptions {
  image: Uint8Array;
  /** The image's name for the header (a file name). */
  imageName: string;
  loader: LoaderKind;
  loadOptions?: LoadOptions;
  memMiB?: number;
  vmx?: boolean;
  /** The environment whose answers are recorded (default 'deterministic'; an Env given here is not disposed). */
  env?: 'deterministic' | 'live' | Env;
  /** Instruction budget (default: none). */
  maxInsns?: number;
  /** K: instructions between checkpoints. */
  checkpointEvery?: number;
  /** M: instructions between stored snapshots; a multiple of K. */
  snapshotEvery?: number;
  /** Makes the sink for the header (e.g. `(h) => TraceWriter.create(path, h)`); default: a MemoryTrace. */
  sink?: (header: TraceHeader) => TraceSink;
  /** About once a second of host time. */
  onProgress?: (p: RecordProgress) => void;
  /** Called with the machine once it is built and loaded, before it runs (tests, tools). */
  configure?: (m: Machine) => void;
}

export interface RecordResult {
  header: TraceHeader;
  /** The run as Machine.run reports it (instructions counted from 0). */
  run: RunResult;
  end: EndEvent;
  /** Events written, by kind. */
  counts: Record<string, number>;
  /** The trace, when the sink was the default MemoryTrace. */
  trace: TraceFile | null;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new UserError(`${name} must be a positive integer, not ${v}`);
  return v;
}

/** Records a run of `opts.image`; see the file comment for what the trace holds. */
export function record(opts: RecordOptions): RecordResult {
  const k = positiveInt('checkpointEvery', opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY);
  const mEvery = positiveInt('snapshotEvery', opts.snapshotEvery ?? Math.max(k, Math.floor(DEFAULT_SNAPSHOT_EVERY / k) * k));
  if (mEvery % k !== 0) throw new UserError(`snapshotEvery (${mEvery}) must be a multiple of checkpointEvery (${k})`);
  const maxInsns = opts.maxInsns === undefined ? null : positiveInt('maxInsns', opts.maxInsns);
  const inner = envFor(opts.env);
  const header: TraceHeader = {
    format: TRACE_FORMAT_VERSION,
    trapdiffVersion: TRAPDIFF_VERSION,
    machine: {
      memMiB: opts.memMiB ?? DEFAULT_MEM_MIB, vmx: opts.vmx ?? DEFAULT_VMX, loader: opts.loader,
      imageName: opts.imageName, imageSha256: sha256Hex(opts.image), loadOptions: { ...opts.loadOptions },
    },
    env: { ...envShape(inner) },
    options: { checkpointEvery: k, snapshotEvery: mEvery, maxInsns },
  };
  const sink = opts.sink?.(header) ?? new MemoryTrace(header);
  const emit = (e: TraceEvent): void => sink.append(e);
  const env = new RecordingEnv(inner, emit);
  let m: Machine | null = null;
  let tracker: StateTracker | null = null;
  try {
    m = buildMachine(header.machine, opts.image, env, opts);
    opts.configure?.(m);
    const cpu = m.cpu;
    cpu.events = observe(cpu, sink);
    tracker = new StateTracker(m, true);
    const checkpoint = (): void => {
      const state = tracker!.capture();
      emit({ kind: 'checkpoint', icount: state.icount, hash: stateHash(state), state });
      if (state.icount % mEvery === 0) emit({ kind: 'snapshot', icount: state.icount, data: encodeSnapshot(m!, tracker!.takeWrittenPages()) });
    };
    checkpoint();
    const end = maxInsns ?? Infinity;
    const t0 = performance.now();
    let nextProgress = t0 + 1000;
    let run: RunResult;
    for (;;) {
      const target = Math.min(end, (Math.floor(cpu.icount / k) + 1) * k);
      run = m.run({ maxInsns: target - cpu.icount });
      if (run.stop !== 'budget' || cpu.icount >= end) break;
      checkpoint();
      if (opts.onProgress && performance.now() >= nextProgress) {
        const seconds = (performance.now() - t0) / 1000;
        const events = Object.values(sink.counts()).reduce((a, b) => a + b, 0);
        opts.onProgress({ instructions: cpu.icount, seconds, mips: cpu.icount / seconds / 1e6, events });
        nextProgress += 1000;
      }
    }
    checkpoint(); // where the run ended (the loop stopped before checkpointing it)
    const seconds = (performance.now() - t0) / 1000;
    const endEvent: EndEvent = { kind: 'end', icount: cpu.icount, stop: run.stop, exitCode: run.exitCode };
    sink.close(endEvent);
    return {
      header, end: endEvent, counts: sink.counts(),
      run: { ...run, instructions: cpu.icount, seconds, mips: seconds > 0 ? cpu.icount / seconds / 1e6 : 0 },
      trace: sink instanceof MemoryTrace ? sink.toTraceFile() : null,
    };
  } catch (e) {
    sink.abort();
    throw e;
  } finally {
    tracker?.dispose();
    if (inner !== opts.env) inner.dispose(); // the caller's own Env stays theirs to dispose
  }
}
