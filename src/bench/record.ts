// The record/replay part of the benchmark (issue 6's targets): on a workload ROM under the live
// environment (so that inputs exist to log: a clock synchronisation every 100 us of virtual
// time), the same run three ways, each from a fresh machine to the power-off port and timed
// whole (machine built, image loaded, run; the recording's trace written to a temporary file):
//  - plain: Machine.run();
//  - record: record() with the default K and M into a trace file (target: within 5% of plain);
//  - replay: the trace read and replay()ed, every checkpoint verified (target: no slower than plain);
// and what the trace costs: its bytes per logged input (whole file / inputs) and the marginal
// bytes of one input (a trace holding only the input events). The seek figure: the time to put
// a machine at an arbitrary instruction count of a long trace, through the nearest stored
// snapshot (TimeTravel) against re-executing from instruction 0.

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine } from '../machine/machine.js';
import { readTrace, TraceWriter, type EndEvent, type TraceEvent, type TraceFile } from '../record/format.js';
import { record, type RecordResult } from '../record/recorder.js';
import { ReplayMachine } from '../record/replay-machine.js';
import { replay } from '../record/replayer.js';
import { TimeTravel } from '../record/timetravel.js';
import { indexTrace, loadTrace, type IndexedTrace } from '../record/trace-index.js';
import { hostSeconds, type BenchClock } from './trapdiff.js';
import { instructionCount, romIterations, type Workload } from './workloads.js';

/** RAM of the machines, as the other trapdiff runs of the benchmark. */
const MEM_MIB = 64;

export interface RecordBench {
  workload: string;
  instructions: number;
  /** Seconds (by the chosen clock) of each way's best run: the one least disturbed. */
  plainSeconds: number;
  recordSeconds: number;
  replaySeconds: number;
  /** Best recorded over best plain time - 1. Target: <= 0.05. */
  recordOverhead: number;
  /** Best replayed over best plain time. Target: <= 1. */
  replayRatio: number;
  /**
   * The same two figures as the medians of each round's ratio (a round runs the three ways one
   * after the other, so its ratios compare runs under about the same load).
   */
  median: { recordOverhead: number; replayRatio: number };
  traceBytes: number;
  events: Record<string, number>;
  /** traceBytes over the inputs logged. */
  bytesPerInput: number | null;
  /** Bytes of a trace holding only the inputs, over their number: what one more input costs. */
  inputBytesPerInput: number | null;
}

export interface SeekBench {
  workload: string;
  /** The trace's length in instructions and its snapshot interval M. */
  instructions: number;
  snapshotEvery: number;
  /** The instruction counts sought (fixed fractions of the trace). */
  points: number[];
  /** Median milliseconds to stand at a point: via the nearest snapshot, and from instruction 0. */
  viaSnapshotMs: number;
  fromStartMs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds of `f` by `clock`. */
function timed<T>(clock: BenchClock, f: () => T): { seconds: number; value: T } {
  const t0 = hostSeconds(clock);
  const value = f();
  return { seconds: hostSeconds(clock) - t0, value };
}

/** Throws unless the run ended at the power-off port after exactly the workload's instructions. */
function check(w: Workload, expected: number, stop: string, instructions: number): void {
  if (stop !== 'poweroff' || instructions !== expected) {
    throw new Error(`${w.name}: stopped by ${stop} after ${instructions} instructions (expected poweroff after ${expected})`);
  }
}

function plainRun(w: Workload, rom: Uint8Array, expected: number): void {
  const m = createMachine({ memMiB: MEM_MIB, env: 'live' });
  m.load(rom, 'bios');
  const r = m.run({ maxInsns: expected + 1000 });
  m.env.dispose();
  check(w, expected, r.stop, r.instructions);
}

function recordRun(w: Workload, rom: Uint8Array, expected: number, path: string): RecordResult {
  const r = record({
    image: rom, imageName: `${w.name}.rom`, loader: 'bios', memMiB: MEM_MIB, env: 'live', maxInsns: expected + 1000,
    sink: (h) => TraceWriter.create(path, h),
  });
  check(w, expected, r.end.stop, r.end.icount);
  return r;
}

/** The bytes one input adds to a trace: (a trace of `t`'s inputs alone - one without them) / their number. */
function inputBytes(t: TraceFile, dir: string): number | null {
  const inputs = t.events.filter((e) => e.kind === 'input');
  if (inputs.length === 0) return null;
  const size = (name: string, events: readonly TraceEvent[]): number => {
    const w = TraceWriter.create(join(dir, name), t.header);
    for (const e of events) w.append(e);
    w.close(t.events.at(-1) as EndEvent);
    return statSync(join(dir, name)).size;
  };
  return (size('inputs.trace', inputs) - size('empty.trace', [])) / inputs.length;
}

/** Plain, recorded and replayed runs of the ROM, `runs` times each, interleaved. */
export function recordBench(w: Workload, rom: Uint8Array, runs: number, clock: BenchClock): RecordBench {
  const expected = instructionCount(w, romIterations(rom));
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-bench-'));
  try {
    const path = join(dir, `${w.name}.trace`);
    const plain: number[] = [], rec: number[] = [], rep: number[] = [];
    let last: RecordResult | null = null;
    const ways = [
      () => plain.push(timed(clock, () => plainRun(w, rom, expected)).seconds),
      () => {
        const r = timed(clock, () => recordRun(w, rom, expected, path));
        rec.push(r.seconds);
        last = r.value;
      },
      () => {
        if (last === null) return; // nothing recorded yet: replayed after the recording, in the same round
        const p = timed(clock, () => replay(loadTrace(path), rom));
        if (!p.value.ok) throw new Error(`${w.name}: the recording does not replay: ${p.value.divergence?.message}`);
        rep.push(p.seconds);
      },
    ];
    // Each round starts with another way, so that warming up and load drifts do not favour one.
    for (let k = 0; k < runs; k++) for (let j = 0; j < 3; j++) ways[(k + j) % 3]!();
    while (rep.length < runs) ways[2]!();
    const traceBytes = statSync(path).size;
    const inputs = last!.counts['input'] ?? 0;
    const ratios = (xs: number[]): number => median(xs.map((x, k) => x / plain[k]!));
    const best = (xs: number[]): number => Math.min(...xs);
    return {
      workload: w.name, instructions: expected, plainSeconds: best(plain), recordSeconds: best(rec), replaySeconds: best(rep),
      recordOverhead: best(rec) / best(plain) - 1, replayRatio: best(rep) / best(plain),
      median: { recordOverhead: ratios(rec) - 1, replayRatio: ratios(rep) },
      traceBytes, events: last!.counts, bytesPerInput: inputs > 0 ? traceBytes / inputs : null,
      inputBytesPerInput: inputBytes(readTrace(path), dir),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where the seek points lie in a trace, as fractions of its length. */
const SEEK_FRACTIONS = [0.13, 0.37, 0.61, 0.83, 0.97];

/** Records the ROM once (default K and M), then times standing at each seek point both ways. */
export function seekBench(w: Workload, rom: Uint8Array, clock: BenchClock): SeekBench {
  const expected = instructionCount(w, romIterations(rom));
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-bench-'));
  let t: IndexedTrace;
  try {
    const path = join(dir, `${w.name}.trace`);
    recordRun(w, rom, expected, path);
    t = indexTrace(readTrace(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const points = SEEK_FRACTIONS.map((f) => Math.floor(expected * f));
  const via: number[] = [], start: number[] = [];
  for (const n of points) {
    via.push(timed(clock, () => {
      const tt = new TimeTravel(t, rom);
      tt.machineAt(n);
      tt.dispose();
    }).seconds);
    start.push(timed(clock, () => {
      const rm = new ReplayMachine(t, rom);
      rm.runTo(n);
      if (rm.icount !== n) throw new Error(`${w.name}: replay from the start stopped at ${rm.icount}, before ${n}`);
      rm.dispose();
    }).seconds);
  }
  return {
    workload: w.name, instructions: expected, snapshotEvery: t.header.options.snapshotEvery, points,
    viaSnapshotMs: median(via) * 1000, fromStartMs: median(start) * 1000,
  };
}
