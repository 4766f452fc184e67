// A trace's events sorted into the streams replay needs: the input log, the observations, the
// checkpoints and stored snapshots, each checkpoint and snapshot with its position in the input
// and observation streams (how many of each came before it), so a replay restored at a snapshot
// knows where in the log it stands (several inputs can share one instruction count).

import { rowEvent, type KindSpec } from './event-codec.js';
import {
  TraceError, TraceReader, type CheckpointEvent, type EndEvent, type InputEvent, type SnapshotEvent, type TraceEvent, type TraceFile,
  type TraceHeader,
} from './format.js';
import type { EnvShape } from './inputs.js';
import { isObservation, OBSERVATION_TAGS, ObservationColumns } from './observations.js';
import type { ArchState } from './state.js';

export interface Positioned<E> {
  event: E;
  /** Input events before it in the trace. */
  inputs: number;
  /** Observation events before it. */
  observations: number;
}

export interface IndexedTrace {
  header: TraceHeader;
  env: EnvShape;
  inputs: InputEvent[];
  /** In columns: a long trace holds millions. */
  observations: ObservationColumns;
  checkpoints: Positioned<CheckpointEvent & { state: ArchState }>[];
  snapshots: Positioned<SnapshotEvent>[];
  /** The end event; null for a prefix (a recording that did not finish, or a damaged file). */
  end: EndEvent | null;
  /** Why the trace is a prefix, when it is one. */
  stoppedAt?: string;
}

/** Indexes a trace read whole (readTrace, or a recording kept in memory). */
export function indexTrace(t: TraceFile): IndexedTrace {
  const out = emptyIndex(t.header, t.complete, t.stoppedAt);
  for (const e of t.events) {
    if (isObservation(e)) out.observations.pushEvent(e);
    else add(out, e);
  }
  return finished(out);
}

/**
 * Reads and indexes a trace chunk by chunk: observations go from the decoded rows straight into
 * their columns, no event object each. Throws TraceError as TraceReader.open does.
 */
export function loadTrace(pathOrBytes: string | Uint8Array): IndexedTrace {
  const reader = TraceReader.open(pathOrBytes);
  let out: IndexedTrace;
  try {
    out = emptyIndex(reader.header, true, undefined);
    reader.visit((spec: KindSpec, row, icount) => {
      if (OBSERVATION_TAGS.has(spec.tag)) out.observations.push(spec.tag, icount, row);
      else add(out, rowEvent(spec, row, icount));
    });
  } finally {
    reader.close();
  }
  if (!reader.complete) out.stoppedAt = reader.stoppedAt ?? 'the trace has no end';
  return finished(out);
}

function emptyIndex(h: TraceHeader, complete: boolean, stoppedAt: string | undefined): IndexedTrace {
  const cps = h.env.cyclesPerSecond, sync = h.env['clockSyncCycles'] ?? null;
  if (!(Number.isInteger(cps) && cps > 0) || !(sync === null || (Number.isInteger(sync) && (sync as number) > 0))) {
    throw new TraceError(`the trace header's env (${JSON.stringify(h.env)}) has no valid cyclesPerSecond/clockSyncCycles`);
  }
  return {
    header: h, env: { kind: h.env.kind, cyclesPerSecond: cps, clockSyncCycles: sync as number | null },
    inputs: [], observations: new ObservationColumns(), checkpoints: [], snapshots: [], end: null,
    ...(complete ? {} : { stoppedAt: stoppedAt ?? 'the trace has no end' }),
  };
}

/** Sorts `e`, not an observation, into its stream. */
function add(out: IndexedTrace, e: TraceEvent): void {
  const at = { inputs: out.inputs.length, observations: out.observations.length };
  if (e.kind === 'input') out.inputs.push(e);
  else if (e.kind === 'checkpoint') out.checkpoints.push({ event: e as CheckpointEvent & { state: ArchState }, ...at });
  else if (e.kind === 'snapshot') out.snapshots.push({ event: e, ...at });
  else if (e.kind === 'end') out.end = e;
}

function finished(out: IndexedTrace): IndexedTrace {
  if (out.snapshots.length === 0 || out.snapshots[0]!.event.icount !== 0) {
    throw new TraceError('the trace has no snapshot at instruction 0 (every recording starts with one)');
  }
  return out;
}

/** The last element of `list` whose event's icount is <= n (list ordered by icount), or undefined. */
export function lastAtOrBefore<E extends { icount: number }>(list: readonly Positioned<E>[], n: number): { item: Positioned<E>; index: number } | undefined {
  let lo = 0, hi = list.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.event.icount <= n) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? undefined : { item: list[found]!, index: found };
}
