// Divergence search (issue 6): a deliberately changed instruction semantic, injected into one
// machine through cpu.onDecode, is located by replay at the exact first instruction whose
// result it changes (with a reference executor; without one, to the checkpoint interval, exact
// when K = 1), with the diff of registers, flags and memory; bisection of two traces of one
// image finds the same instruction; a tampered input log is caught.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CORPUS_DIR } from '../src/cli/corpus.js';
import type { Cpu } from '../src/cpu/cpu.js';
import type { Insn } from '../src/cpu/insn.js';
import { createMachine, type Machine } from '../src/machine/machine.js';
import { bisect } from '../src/record/bisect.js';
import type { TraceEvent, TraceFile } from '../src/record/format.js';
import { record } from '../src/record/recorder.js';
import { replay } from '../src/record/replayer.js';

const LIVE = readFileSync(join(CORPUS_DIR, 'live/live.rom'));
const TIMER = readFileSync(join(CORPUS_DIR, 'timer/timer-bios.rom'));

/**
 * INC of form `key` ('inc_Zv': INC r16/r32; 'inc_Ev': INC r/m) that, when its result's low byte
 * is `target`, adds one more: a semantic that differs from the real one only at some executions.
 * `onHit` is told the instruction count and EIP of each execution whose result the change
 * alters (or would alter, with change = false).
 */
function changedInc(key: string, target: number, change: boolean, onHit: (icount: number, eip: number) => void = () => {}) {
  const get = (cpu: Cpu, i: Insn): number => (key === 'inc_Zv' ? cpu.getReg(i.reg, i.o32) : cpu.readEv(i));
  const set = (cpu: Cpu, i: Insn, v: number): void => (key === 'inc_Zv' ? cpu.setReg(i.reg, v, i.o32) : cpu.writeEv(i, v));
  return (m: Machine): void => {
    m.cpu.onDecode = (i) => {
      if (i.form?.key !== key) return;
      const real = i.exec;
      i.exec = (cpu, insn) => {
        real(cpu, insn);
        const v = get(cpu, insn);
        if ((v & 0xff) !== target) return;
        onHit(cpu.icount, cpu.prevEip);
        if (change) set(cpu, insn, v + 1);
      };
    };
  };
}

/** The first execution whose result the change alters, found on a plain machine that only watches. */
function firstAltered(image: Uint8Array, key: string, target: number): { icount: number; eip: number } {
  let first: { icount: number; eip: number } | null = null;
  const m = createMachine({ memMiB: 2 });
  m.load(image, 'bios');
  changedInc(key, target, false, (icount, eip) => void (first ??= { icount, eip }))(m);
  m.run({ maxInsns: 10_000_000 });
  expect(first).not.toBeNull();
  return first!;
}

const liveOpts = { image: LIVE, imageName: 'live.rom', loader: 'bios', memMiB: 2, checkpointEvery: 50_000, snapshotEvery: 500_000 } as const;
const liveTrace = record(liveOpts).trace!;
// INC DI in hex32 reaching 0x610: its 4th execution in the run, near the end (after 3 snapshots).
const incDi = changedInc('inc_Zv', 0x10, true);
const incDiTruth = firstAltered(LIVE, 'inc_Zv', 0x10);

describe('a changed instruction semantic', () => {
  it('the ground truth is not the first execution of the instruction', () => {
    let executions = 0;
    const m = createMachine({ memMiB: 2 });
    m.load(LIVE, 'bios');
    m.cpu.onDecode = (i) => {
      if (i.form?.key !== 'inc_Zv') return;
      const real = i.exec;
      i.exec = (cpu, insn) => {
        if (cpu.icount <= incDiTruth.icount) executions++;
        real(cpu, insn);
      };
    };
    m.run({ maxInsns: incDiTruth.icount + 1 });
    expect(executions).toBe(4);
    expect(incDiTruth.icount).toBeGreaterThan(1_500_000);
  });

  it('is located by replay with a reference executor at the exact first instruction it changes', () => {
    const r = replay(liveTrace, LIVE, { configure: incDi, reference: true });
    expect(r.ok).toBe(false);
    const d = r.divergence!;
    expect(d.exact).toBe(true);
    expect(d.lastGood).toBeLessThanOrEqual(incDiTruth.icount);
    expect(d.first).not.toBeNull();
    expect(d.first!.kind).toBe('state');
    expect(d.first!.icount).toBe(incDiTruth.icount);
    expect(d.first!.eip).toBe(incDiTruth.eip);
    expect(d.first!.instruction).toMatch(/^inc di /);
    // The diff: EDI by name, both sides, as JSON and as a unified diff.
    expect(d.diff!.registers).toContainEqual({ name: 'EDI', a: '00000610', b: '00000611' });
    expect(d.text).toContain('-EDI 00000610');
    expect(d.text).toContain('+EDI 00000611');
    expect(d.message).toContain(`instruction ${incDiTruth.icount} at ${incDiTruth.eip.toString(16).padStart(8, '0')} (inc di`);
  });

  it('without a reference executor, is located to its checkpoint interval with the register diff', () => {
    const r = replay(liveTrace, LIVE, { configure: incDi });
    const d = r.divergence!;
    expect(d.exact).toBe(false);
    expect(d.first).toBeNull();
    expect(d.lastGood).toBeLessThanOrEqual(incDiTruth.icount);
    expect(d.detectedAt).toBeGreaterThanOrEqual(incDiTruth.icount);
    expect(d.detectedAt - d.lastGood).toBeLessThanOrEqual(50_000);
    if (d.detectedBy === 'checkpoint') expect(d.diff!.registers.length + d.diff!.other.length).toBeGreaterThan(0);
  });

  it('with a checkpoint every instruction, is exact without a reference (memory operand, flags, memory diff)', () => {
    const trace = record({ image: TIMER, imageName: 'timer-bios.rom', loader: 'bios', memMiB: 2, checkpointEvery: 1, snapshotEvery: 100 }).trace!;
    const truth = firstAltered(TIMER, 'inc_Ev', 3);
    const plain = replay(trace, TIMER, { configure: changedInc('inc_Ev', 3, true) });
    expect(plain.divergence).toMatchObject({ detectedBy: 'checkpoint', detectedAt: truth.icount + 1, lastGood: truth.icount, exact: true });
    expect(plain.divergence!.text).toContain('memory hash');
    const exact = replay(trace, TIMER, { configure: changedInc('inc_Ev', 3, true), reference: true });
    const f = exact.divergence!.first!;
    expect([f.icount, f.eip]).toEqual([truth.icount, truth.eip]);
    expect(f.instruction).toMatch(/^inc word \[0x500\]/);
    expect(f.diff.memory).toEqual([{ start: 0x500, end: 0x501, a: '03', b: '04' }]);
    expect(f.text).toContain('-mem 00000500-00000500 03');
    // Both sides keep the flags of the real INC (result 3): only the memory byte differs.
    expect(f.diff.flags).toEqual([]);
  });

  it('bisect of a trace with the change (another "emulator version") finds the same instruction', () => {
    const changed = record({ ...liveOpts, configure: incDi }).trace!;
    const b = bisect(liveTrace, changed, LIVE, { configureB: incDi });
    expect(b.same).toBe(false);
    expect(b.firstInput).toBeNull();
    expect(b.first!.icount).toBe(incDiTruth.icount);
    expect(b.first!.eip).toBe(incDiTruth.eip);
    expect(b.firstBadCheckpoint).toBeGreaterThan(incDiTruth.icount);
    expect(b.lastCommon).toBeLessThanOrEqual(incDiTruth.icount);
  });
});

describe('a tampered input log', () => {
  it('is caught: the replayed run leaves the recorded one', () => {
    const live = record({ ...liveOpts, env: 'live' }).trace!;
    const tsc = live.events.findIndex((e) => e.kind === 'input' && e.source === 'tsc');
    const events: TraceEvent[] = live.events.map((e, k) => (k === tsc && e.kind === 'input' ? { ...e, value: (e.value ?? 0) + 0x10_0000 } : e));
    const tampered: TraceFile = { ...live, events };
    expect(replay(live, LIVE).ok).toBe(true);
    const r = replay(tampered, LIVE, { reference: true });
    expect(r.ok).toBe(false);
    expect(r.divergence!.detectedAt).toBeGreaterThanOrEqual((live.events[tsc] as { icount: number }).icount);
  });

  it('a log that lacks an input the replay asks for is an input divergence at that instruction', () => {
    const live = record({ ...liveOpts, env: 'live' }).trace!;
    const tsc = live.events.findIndex((e) => e.kind === 'input' && e.source === 'tsc');
    const r = replay({ ...live, events: live.events.filter((_, k) => k !== tsc) }, LIVE);
    expect(r.divergence).toMatchObject({ detectedBy: 'input', detectedAt: (live.events[tsc] as { icount: number }).icount });
    expect(r.divergence!.message).toMatch(/replay asked for input 'tsc' at instruction \d+, but the log holds/);
  });
});
