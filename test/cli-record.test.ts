// The record/replay commands as a user meets them, in-process through main(): record writes a
// trace that trace-info describes and replay verifies; replay --at/--back travels in time and
// agrees with a fresh run stopped by the budget; bisect finds where two live recordings part;
// a changed trace diverges with exit status 6 and the state diff; and every bad input (missing,
// not a trace, truncated, future version, corrupt header, wrong or missing image, bad options) is
// one line on stderr and exit status 2.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMachine } from '../src/machine/machine.js';
import { readTrace, TraceWriter, type CheckpointEvent, type EndEvent } from '../src/record/format.js';
import { StateTracker, stateHash, type ArchState } from '../src/record/state.js';
import { cliInProcess, ROOT } from './helpers/cli.js';

const LIVE = join(ROOT, 'corpus/live/live.rom');
const HELLO = join(ROOT, 'corpus/hello/hello-bios.rom');
const dir = mkdtempSync(join(tmpdir(), 'trapdiff-cli-record-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string): string => join(dir, name);

/** Records the live guest (2 MiB) into `name` with K = 10,000, M = 50,000 under `env`. */
function recordLive(name: string, env: 'live' | 'deterministic', ...more: string[]) {
  return cliInProcess('record', LIVE, '--mem', '2', '--env', env, '--checkpoint-every', '10000', '--snapshot-every', '50000', '-o', at(name), ...more);
}

/** Exit status 2 and exactly one line on stderr, matching `message`. */
function expectBadInput(r: ReturnType<typeof cliInProcess>, message: RegExp): void {
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).toMatch(/^trapdiff: /);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
}

const LIVE_OUTPUT = /^live: spins [0-9a-f]{8}, tsc [0-9a-f]{16}, rtc \d\d:\d\d:\d\d\n/;

describe('trapdiff record, trace-info, replay', () => {
  const rec = recordLive('live1.trace', 'live');

  it('record: the guest output on stdout, the trace written (no .partial left), a report on stderr, exit 0', () => {
    expect(rec.status).toBe(0);
    expect(rec.stdout).toMatch(LIVE_OUTPUT);
    expect(existsSync(at('live1.trace'))).toBe(true);
    expect(existsSync(at('live1.trace.partial'))).toBe(false);
    expect(rec.stderr).toMatch(/^trapdiff: recorded .*live1\.trace \(\d+ bytes; \d+ inputs, \d+ checkpoints, \d+ snapshots?, 20 interrupts, /);
    expect(rec.stderr).toMatch(/stop exit \(exit code 33\), \d+ instructions .* env live, loader bios\n$/);
    // The header names the image relative to the trace's directory.
    const h = readTrace(at('live1.trace')).header;
    expect(h.machine.imageName).toMatch(/^(\.\.\/)+.*corpus\/live\/live\.rom$/);
    expect(h.options).toMatchObject({ checkpointEvery: 10_000, snapshotEvery: 50_000, maxInsns: null });
    expect(h.env.kind).toBe('live');
  });

  it('record --json: one object on stdout with the counts and the guest output', () => {
    const r = recordLive('live-json.trace', 'deterministic', '--json', '--max-insns', '3000000');
    expect(r.status).toBe(0);
    const o = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(o).toMatchObject({ stop: 'exit', exitCode: 33, instructions: 1_900_976, trace: at('live-json.trace') });
    expect(o['debugOutput']).toBe('live: spins 0009a962, tsc 00000000001cfdd3, rtc 00:00:00\n');
    expect((o['events'] as Record<string, number>)['checkpoint']).toBe(Math.ceil(1_900_976 / 10_000) + 1);
    expect(o['bytes']).toBe(readFileSync(at('live-json.trace')).length);
  });

  it('trace-info: header, counts by kind, inputs by source, size, bytes per input; --json', () => {
    const r = cliInProcess('trace-info', at('live1.trace'));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^trace .*live1\.trace: \d+ bytes, complete; format 1, recorded by trapdiff \d+\.\d+\.\d+\n/);
    expect(r.stdout).toMatch(/\nimage: .*live\.rom \(sha256 [0-9a-f]{64}\), loader bios, 2 MiB, VMX on\n/);
    expect(r.stdout).toMatch(/\nenv: live, 100000000 cycles\/s, clockSyncCycles \d+\n/);
    expect(r.stdout).toMatch(/\noptions: checkpoint every 10000, snapshot every 50000, max-insns none\n/);
    expect(r.stdout).toMatch(/\nrun: \d+ instructions, stop exit \(exit code 33\)\n/);
    expect(r.stdout).toMatch(/\ninputs by source: clock \d+, .*rtc 1/);
    expect(r.stdout).toMatch(/\nbytes per input: \d+\.\d /);
    const j = cliInProcess('trace-info', at('live1.trace'), '--json');
    const info = JSON.parse(j.stdout) as { complete: boolean; bytes: number; countsByKind: Record<string, number>; events: number; bytesPerInput: number };
    const t = readTrace(at('live1.trace'));
    expect(info.complete).toBe(true);
    expect(info.bytes).toBe(t.bytes);
    expect(info.events).toBe(t.events.length);
    expect(info.countsByKind).toEqual(t.footer!.countsByKind);
    expect(info.bytesPerInput).toBeCloseTo(t.bytes / t.events.filter((e) => e.kind === 'input').length, 6);
  });

  it('replay: verifies the whole trace, exit 0, one line on stderr; --json', () => {
    const r = cliInProcess('replay', at('live1.trace'));
    expect(r).toMatchObject({ status: 0, stdout: '' });
    expect(r.stderr).toMatch(/^trapdiff: .*live1\.trace replays exactly: \d+ checkpoints verified, stop exit \(exit code 33\) at instruction \d+ as recorded/);
    const j = cliInProcess('replay', at('live1.trace'), '--json');
    const o = JSON.parse(j.stdout) as { ok: boolean; divergence: unknown; debugOutput: string; checkpoints: number };
    expect(o.ok).toBe(true);
    expect(o.divergence).toBeNull();
    expect(o.debugOutput).toBe(rec.stdout.split('\n')[0] + '\n');
    expect(o.checkpoints).toBe(readTrace(at('live1.trace')).events.filter((e) => e.kind === 'checkpoint').length);
  });

  it('replay --progress is accepted; progress lines, if any, have the documented form', () => {
    // Replays take under a second here and a progress line comes about once a second, so there may be none.
    const r = cliInProcess('replay', at('live1.trace'), '--progress');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/replays exactly/);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('trapdiff: replaying, ')).every((l) => /of \d+\.\d M instructions \(\d+%\)/.test(l))).toBe(true);
  });

  it('replay --at N --back K: the state a fresh run stopped at N has, then K steps back with what each instruction changed', () => {
    const n = 123_457; // past the stored snapshots at 50,000 and 100,000
    const r = cliInProcess('replay', at('live-json.trace'), '--at', String(n), '--back', '3', '--json');
    expect(r.status).toBe(0);
    const o = JSON.parse(r.stdout) as { at: number; hash: string; state: ArchState; back: Array<{ icount: number; instruction: string; changes: Array<{ name: string }> }> };
    const m = createMachine({ memMiB: 2 });
    m.load(readFileSync(LIVE), 'bios');
    m.run({ maxInsns: n });
    const tracker = new StateTracker(m);
    const fresh = tracker.capture();
    tracker.dispose();
    expect(o.hash).toBe(stateHash(fresh));
    expect(o.back.map((s) => s.icount)).toEqual([n - 1, n - 2, n - 3]);
    for (const s of o.back) {
      expect(s.instruction).toMatch(/\S+.*\[[0-9a-f]+\]$/);
      expect(s.changes.map((c) => c.name)).toContain('EIP');
    }
    const text = cliInProcess('replay', at('live-json.trace'), '--at', String(n), '--back', '2');
    expect(text.stdout).toMatch(new RegExp(`^state at instruction ${n} \\(hash ${o.hash}\\):\\n  icount ${n}\\n`));
    expect(text.stdout).toMatch(new RegExp(`\\nback 1: to instruction ${n - 1}, undoing [0-9a-f]{8} .*\\n  EIP [0-9a-f]{8} -> [0-9a-f]{8}\\n`));
    expect(text.stdout).toMatch(new RegExp(`\\nback 2: to instruction ${n - 2}, undoing `));
  });

  it('bisect: two live recordings diverge (exit 6, the diff on stdout); a trace and itself do not (exit 0)', () => {
    expect(recordLive('live2.trace', 'live').status).toBe(0);
    const r = cliInProcess('bisect', at('live1.trace'), at('live2.trace'));
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/DIVERGE: first differing input #\d+/);
    expect(r.stdout).toMatch(/^={10,}\n--- A\n\+\+\+ B\n/);
    const j = JSON.parse(cliInProcess('bisect', at('live1.trace'), at('live2.trace'), '--json').stdout) as { same: boolean; first: unknown };
    expect(j.same).toBe(false);
    expect(j.first).not.toBeNull();
    const same = cliInProcess('bisect', at('live1.trace'), at('live1.trace'));
    expect(same.status).toBe(0);
    expect(same.stderr).toMatch(/do not diverge/);
  });

  it('replay of a trace whose checkpoint was changed: exit 6, the interval and the recorded-vs-replayed diff', () => {
    const t = readTrace(at('live1.trace'));
    const cps = t.events.filter((e): e is CheckpointEvent => e.kind === 'checkpoint');
    const bad = cps[3]!;
    const state = { ...(bad.state as ArchState), regs: [...bad.state.regs] };
    state.regs[3] = (state.regs[3]! ^ 0x40) | 0; // EBX
    const w = TraceWriter.create(at('changed.trace'), t.header);
    for (const e of t.events) {
      if (e === bad) w.append({ ...bad, state, hash: stateHash(state) });
      else if (e.kind !== 'end') w.append(e);
    }
    w.close(t.events.at(-1) as EndEvent);
    const r = cliInProcess('replay', at('changed.trace'));
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(new RegExp(`DIVERGES: checkpoint at instruction ${bad.icount} differs \\(last good: ${cps[2]!.icount}\\)`));
    expect(r.stderr).toMatch(new RegExp(`between the checkpoint at instruction ${cps[2]!.icount} .* and instruction ${bad.icount}`));
    expect(r.stdout).toMatch(/\n-EBX [0-9a-f]{8}\n\+EBX [0-9a-f]{8}\n/);
    const j = JSON.parse(cliInProcess('replay', at('changed.trace'), '--json').stdout) as { ok: boolean; divergence: { detectedBy: string; diff: { registers: Array<{ name: string }> } } };
    expect(j.ok).toBe(false);
    expect(j.divergence.detectedBy).toBe('checkpoint');
    expect(j.divergence.diff.registers.map((c) => c.name)).toEqual(['EBX']);
  });
});

describe('bad input: one line, exit 2', () => {
  const good = at('good.trace');
  recordLive('good.trace', 'live');
  const bytes = readFileSync(good);
  const variant = (name: string, b: Uint8Array): string => {
    writeFileSync(at(name), b);
    return at(name);
  };

  it.each([
    ['a missing trace', () => ['replay', at('nope.trace')], /cannot read trace .*nope\.trace: ENOENT/],
    ['a file that is not a trace', () => ['replay', variant('text.trace', Buffer.from('hello\n'))], /not a trapdiff trace \(bad magic\)/],
    ['an empty file', () => ['trace-info', variant('empty.trace', new Uint8Array(0))], /empty file, not a trapdiff trace/],
    ['a future format version', () => {
      const b = Uint8Array.from(bytes);
      b[8] = 2;
      return ['replay', variant('future.trace', b)];
    }, /trace format 2 is newer than this trapdiff, which reads formats 1\.\.1/],
    ['a corrupt header', () => {
      const b = Uint8Array.from(bytes);
      b[30] = b[30]! ^ 0xff;
      return ['bisect', variant('corrupt.trace', b), good];
    }, /corrupt trace header \(CRC mismatch\)/],
    ['a truncated trace', () => ['replay', variant('cut.trace', bytes.subarray(0, bytes.length - 100))], /cut\.trace is incomplete \(chunk \d+: truncated .*\); --prefix replays its \d+ intact events/],
    ['a trace replayed against another image', () => ['replay', good, '--image', HELLO], /good\.trace was recorded from .*live\.rom \(sha256 [0-9a-f]{16}…\), not from this image/],
    ['traces of different images', () => {
      cliInProcess('record', HELLO, '--env', 'live', '-o', at('hello.trace'));
      return ['bisect', good, at('hello.trace')];
    }, /the traces are of different images/],
    ['record without -o', () => ['record', LIVE], /record needs -o FILE/],
    ['record with M not a multiple of K', () => ['record', LIVE, '-o', at('x.trace'), '--checkpoint-every', '300', '--snapshot-every', '1000'], /--snapshot-every \(1000\) must be a multiple of --checkpoint-every \(300\)/],
    ['record with K = 0', () => ['record', LIVE, '-o', at('x.trace'), '--checkpoint-every', '0'], /--checkpoint-every must be at least 1/],
    ['record into a missing directory', () => ['record', LIVE, '-o', at('no/such/dir/x.trace')], /cannot write trace .*: ENOENT/],
    ['record of a missing image', () => ['record', at('nope.rom'), '-o', at('x.trace')], /cannot read .*nope\.rom: ENOENT/],
    ['replay --back without --at', () => ['replay', good, '--back', '3'], /--back K steps back from --at N/],
    ['replay --at past the end', () => ['replay', good, '--at', '999999999'], /--at 999999999 is past the end of .*good\.trace \(instruction \d+\)/],
    ['replay --back before instruction 0', () => ['replay', good, '--at', '5', '--back', '6'], /--back 6 goes before instruction 0/],
    ['replay with two files', () => ['replay', good, good], /replay takes one trace FILE/],
    ['bisect with one file', () => ['bisect', good], /bisect takes two trace files/],
    ['trace-info with an unknown option', () => ['trace-info', good, '--frob'], /trace-info: unknown option --frob/],
  ])('%s', (_what, argv, message) => {
    const r = cliInProcess(...argv());
    expectBadInput(r, message);
    expect(r.stdout).toBe('');
  });

  it('a trace whose image is not where its header says: refused, naming --image; with --image it replays', () => {
    const moved = join(dir, 'elsewhere/deeper');
    mkdirSync(moved, { recursive: true });
    copyFileSync(good, join(moved, 'good.trace'));
    expectBadInput(cliInProcess('replay', join(moved, 'good.trace')), /cannot read .*live\.rom: ENOENT \(the image .* names, relative to the trace\); give the image with --image/);
    expect(cliInProcess('replay', join(moved, 'good.trace'), '--image', LIVE).status).toBe(0);
  });

  it('an incomplete trace: trace-info describes its intact prefix, then one line and exit 2; replay --prefix replays it', () => {
    const cut = variant('cut2.trace', bytes.subarray(0, bytes.length - 100));
    const info = cliInProcess('trace-info', cut);
    expect(info.status).toBe(2);
    expect(info.stdout).toMatch(/: \d+ bytes, INCOMPLETE \(chunk \d+: truncated .*\)/);
    expect(info.stdout).toMatch(/\nrun: no end recorded; the intact events reach instruction \d+\n/);
    expect(info.stderr).toMatch(/^trapdiff: .*cut2\.trace is incomplete \(chunk \d+: truncated .*\)\n$/);
    const r = cliInProcess('replay', cut, '--prefix');
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/the intact prefix of .*cut2\.trace replays exactly: \d+ checkpoints verified up to instruction \d+/);
  });

  it('help names the record/replay commands and the divergence status', () => {
    const help = cliInProcess('help').stdout;
    for (const c of ['trapdiff record IMAGE', 'trapdiff replay FILE', 'trapdiff bisect A B', 'trapdiff trace-info FILE']) expect(help).toContain(c);
    expect(help).toContain('6 diverges');
  });
});
