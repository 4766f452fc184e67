// Record/replay (issue 6): a guest taking live timer interrupts, RTC and TSC reads is recorded
// under the live environment and replays bit-exactly; a second live recording diverges from the
// first while each replays exactly; a trace is refused against another image; time travel gives
// the state of a fresh run stopped at N, across snapshots, and steps back.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMachine } from '../src/machine/machine.js';
import { readTrace, TraceError, TraceWriter, type TraceFile } from '../src/record/format.js';
import { bisect } from '../src/record/bisect.js';
import { record, type RecordOptions } from '../src/record/recorder.js';
import { isObservation } from '../src/record/observations.js';
import { replay } from '../src/record/replayer.js';
import { indexTrace, loadTrace } from '../src/record/trace-index.js';
import { StateTracker, stateHash, type ArchState } from '../src/record/state.js';
import { stateAt, TimeTravel } from '../src/record/timetravel.js';
import { CORPUS_DIR } from '../src/cli/corpus.js';

const LIVE = readFileSync(join(CORPUS_DIR, 'live/live.rom'));
const HELLO = readFileSync(join(CORPUS_DIR, 'hello/hello-bios.rom'));
const K = 10_000, M = 100_000;
const base: Omit<RecordOptions, 'env'> = {
  image: LIVE, imageName: 'live.rom', loader: 'bios', memMiB: 2, maxInsns: 10_000_000, checkpointEvery: K, snapshotEvery: M,
};
const tmp = mkdtempSync(join(tmpdir(), 'trapdiff-rr-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Records through the trace file format (TraceWriter, readTrace), as the CLI will. */
function recordToFile(name: string, opts: Omit<RecordOptions, 'sink'>): { trace: TraceFile; output: string; stop: string } {
  const path = join(tmp, name);
  const r = record({ ...opts, sink: (h) => TraceWriter.create(path, h) });
  return { trace: readTrace(path), output: r.run.debugOutput, stop: r.end.stop };
}

/** The state of a fresh deterministic machine stopped by the budget at instruction n. */
function freshState(image: Uint8Array, n: number): ArchState {
  const m = createMachine({ memMiB: 2 });
  m.load(image, 'bios');
  const r = m.run({ maxInsns: n });
  expect(m.cpu.icount).toBe(n);
  expect(r.stop).toBe(n > 0 ? 'budget' : 'budget');
  const t = new StateTracker(m);
  const s = t.capture();
  t.dispose();
  return s;
}

describe('live recording', () => {
  const first = recordToFile('live1.trace', { ...base, env: 'live' });
  const second = recordToFile('live2.trace', { ...base, env: 'live' });

  it('logs timer interrupts, the RTC at power-on, TSC reads and clock synchronisations with their instruction counts', () => {
    const ev = first.trace.events;
    expect(first.trace.complete).toBe(true);
    expect(first.stop).toBe('exit');
    expect(first.output).toMatch(/^live: spins [0-9a-f]{8}, tsc [0-9a-f]{16}, rtc \d\d:\d\d:\d\d\n$/);
    const inputs = ev.filter((e) => e.kind === 'input');
    expect(inputs[0]).toMatchObject({ source: 'rtc', icount: 0 });
    expect(inputs.filter((e) => e.source === 'tsc')).toHaveLength(1);
    expect(inputs.filter((e) => e.source === 'clock').length).toBeGreaterThan(10);
    // Virtual time was moved to follow the host: some synchronisation jumped.
    expect(inputs.some((e) => e.source === 'clock' && (e.value ?? 0) > 0)).toBe(true);
    expect(ev.filter((e) => e.kind === 'interrupt' && e.vector === 8)).toHaveLength(20);
    const checkpoints = ev.filter((e) => e.kind === 'checkpoint');
    expect(checkpoints.slice(0, -1).every((c) => c.icount % K === 0)).toBe(true);
    expect(ev.filter((e) => e.kind === 'snapshot').every((s) => s.icount % M === 0)).toBe(true);
  });

  it('replays bit-exactly: every checkpoint, observation and input, the end and the output', () => {
    for (const rec of [first, second]) {
      const r = replay(rec.trace, LIVE);
      expect(r.divergence).toBeNull();
      expect(r.ok).toBe(true);
      expect(r.checkpoints).toBe(rec.trace.events.filter((e) => e.kind === 'checkpoint').length);
      expect(r.stop).toBe('exit');
      expect(r.exitCode).toBe(33);
      expect(r.debugOutput).toBe(rec.output);
    }
  });

  it('a trace loaded chunk by chunk into columns (loadTrace) is the index of the trace read whole, and replays', () => {
    const loaded = loadTrace(join(tmp, 'live1.trace'));
    const whole = indexTrace(first.trace);
    expect(loaded.observations.length).toBeGreaterThan(10);
    expect(loaded.observations.length).toBe(whole.observations.length);
    const events = (t: typeof loaded) => Array.from({ length: t.observations.length }, (_, i) => t.observations.event(i));
    expect(events(loaded)).toEqual(first.trace.events.filter(isObservation));
    expect(events(whole)).toEqual(events(loaded));
    expect(loaded.inputs).toEqual(whole.inputs);
    expect(loaded.checkpoints).toEqual(whole.checkpoints);
    expect(loaded.end).toEqual(whole.end);
    expect(replay(loaded, LIVE).ok).toBe(true);
  });

  it('a replayed observation that differs from the recorded one is reported with both', () => {
    const t = loadTrace(join(tmp, 'live1.trace'));
    const i = Math.floor(t.observations.length / 2), recorded = t.observations.event(i)!;
    const changed = indexTrace({ ...first.trace, events: first.trace.events.map((e) =>
      isObservation(e) && e.icount === recorded.icount && e.kind === recorded.kind ? { ...e, icount: e.icount + 1 } : e) });
    const r = replay(changed, LIVE);
    expect(r.ok).toBe(false);
    expect(r.divergence!.detectedBy).toBe('observation');
    expect(r.divergence!.message).toContain(`the trace holds ${recorded.kind} at instruction ${recorded.icount + 1}`);
  });

  it('a second live run diverges from the first; bisect names the first differing input and instruction', () => {
    const b = bisect(first.trace, second.trace, LIVE);
    expect(b.same).toBe(false);
    // The power-on RTC read already differs (host wall clock in ms).
    expect(b.firstInput).not.toBeNull();
    expect(b.firstInput!.a?.value).not.toBe(b.firstInput!.b?.value);
    expect(b.first).not.toBeNull();
    expect(b.first!.icount).toBeLessThanOrEqual(b.firstBadCheckpoint ?? Infinity);
    expect(b.first!.text).toContain('--- A');
    expect(b.message).toContain('first differing input');
  });

  it('bisect of a trace with itself finds nothing', () => {
    expect(bisect(first.trace, first.trace, LIVE)).toMatchObject({ same: true, first: null, firstInput: null });
  });

  it('a trace of one image replayed against another is refused with a one-line error', () => {
    expect(() => replay(first.trace, HELLO)).toThrow(TraceError);
    expect(() => replay(first.trace, HELLO)).toThrow(/^the trace was recorded from live\.rom \(sha256 [0-9a-f]{16}…\), not from this image \(sha256 [0-9a-f]{16}…\)$/);
    const other = record({ ...base, image: HELLO, imageName: 'hello-bios.rom', env: 'deterministic' }).trace!;
    expect(() => bisect(first.trace, other, LIVE)).toThrow(/different images/);
  });

  it('time travel reaches the recorded checkpoints of the live trace', () => {
    const cps = first.trace.events.filter((e) => e.kind === 'checkpoint');
    // A live run's length follows the host's speed (a loaded host takes its timer ticks sooner):
    // pick checkpoints by position, out of order, so the test does not depend on how many there are.
    expect(cps.length).toBeGreaterThanOrEqual(5);
    const tt = new TimeTravel(first.trace, LIVE);
    for (const c of [cps[3]!, cps[cps.length >> 1]!, cps[1]!, cps.at(-2)!]) expect(tt.at(c.icount).hash).toBe(c.hash);
    tt.dispose();
  });
});

describe('time travel (deterministic trace of the live guest)', () => {
  const { trace } = recordToFile('det.trace', { ...base, env: 'deterministic' });

  it('stateAt(N) is the state of a fresh run stopped at N, across snapshots', () => {
    for (const n of [0, 1, 77, K - 1, M, M + 1, 3 * M + 12_345, 1_234_567]) {
      const p = stateAt(trace, LIVE, n);
      const fresh = freshState(LIVE, n);
      expect(p.state).toEqual(fresh);
      expect(p.hash).toBe(stateHash(fresh));
    }
  });

  it('steps back across a snapshot boundary, each step equal to a fresh run', () => {
    const tt = new TimeTravel(trace, LIVE, { backWindow: 8 });
    let p = tt.at(2 * M + 3);
    for (let k = 1; k <= 12; k++) {
      p = tt.back();
      expect(p.icount).toBe(2 * M + 3 - k);
      expect(p.hash).toBe(stateHash(freshState(LIVE, p.icount)));
    }
    expect(tt.forward(5).hash).toBe(stateHash(freshState(LIVE, 2 * M - 4)));
    expect(() => tt.at(tt.last + 1)).toThrow(RangeError);
    tt.dispose();
  });
});
