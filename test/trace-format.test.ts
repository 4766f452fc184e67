// The trace file format (src/record/format.ts, docs/TRACE-FORMAT.md): round trips of every event
// kind, and the documented outcome of every truncation, corruption and version mismatch.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Packr, unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32, crc32Portable } from '../src/record/crc.js';
import { FIRST_SKIPPABLE_TAG, KINDS } from '../src/record/event-codec.js';
import {
  readTrace,
  TRACE_FORMAT_VERSION,
  TRACE_MAGIC,
  TraceError,
  TraceReader,
  TraceWriter,
  type EndEvent,
  type TraceEvent,
  type TraceHeader,
  type TraceWriterOptions,
} from '../src/record/format.js';
import { MsgpackWriter } from '../src/record/msgpack-writer.js';
import { TRAPDIFF_VERSION } from '../src/version.js';

const dir = mkdtempSync(join(tmpdir(), 'trapdiff-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpPath = (): string => join(dir, `t${fileNo++}.trace`);

const HEADER: TraceHeader = {
  format: TRACE_FORMAT_VERSION,
  trapdiffVersion: TRAPDIFF_VERSION,
  machine: {
    memMiB: 16,
    vmx: true,
    loader: 'flat',
    imageName: 'timer.bin',
    imageSha256: 'ab'.repeat(32),
    loadOptions: { base: 0xf0000, entry: null },
  },
  env: { kind: 'live', cyclesPerSecond: 100_000_000, seed: 7 },
  options: { checkpointEvery: 1_000_000, snapshotEvery: 10_000_000, maxInsns: null },
};

const BIG = 2 ** 53 - 1;
const END: EndEvent = { kind: 'end', icount: BIG, stop: 'maxInsns', exitCode: null };

/** Every kind, with the extreme values each field can take. */
const EVERY_KIND: TraceEvent[] = [
  { kind: 'input', icount: 0, source: 'tsc', value: 2 ** 40 + 3 },
  { kind: 'input', icount: 5, source: 'serial', value: null },
  { kind: 'input', icount: 5, source: 'pit-latch', value: -1 },
  { kind: 'input', icount: 6, source: 'entropy', value: 0xffff_ffff },
  { kind: 'exception', icount: 2 ** 32 + 1, vector: 14, errorCode: 6, eip: 0xffff_fff0 },
  { kind: 'exception', icount: 2 ** 32 + 1, vector: 6, errorCode: null, eip: 0 },
  { kind: 'interrupt', icount: 2 ** 33, vector: 0x20, source: 1 },
  { kind: 'io-write', icount: 2 ** 33 + 10, port: 0xe9, size: 1, value: -0x8000_0000 },
  { kind: 'halt', icount: 2 ** 34 },
  { kind: 'vm-exit', icount: 2 ** 34 + 1, reason: 0x8000_0021, qualification: BIG },
  {
    kind: 'checkpoint',
    icount: 2 ** 50,
    hash: 'deadbeef'.repeat(8),
    state: { regs: [1, -2, 0xffff_ffff, 0, 0, 0, 0, 0], eip: 0x7c00, eflags: 0x202, cr0: 0x8000_0011 },
  },
  { kind: 'snapshot', icount: 2 ** 50, data: Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff) },
  { kind: 'snapshot', icount: 2 ** 50 + 1, data: new Uint8Array(0) },
  { kind: 'shutdown', icount: BIG - 1 },
  END,
];

/** Events with snapshot bytes as base64: vitest compares a long string much faster than bytes. */
function comparable(events: readonly TraceEvent[]): unknown[] {
  return events.map((e) => (e.kind === 'snapshot' ? { ...e, data: Buffer.from(e.data).toString('base64') } : e));
}

function writeTrace(events: readonly TraceEvent[], opts: TraceWriterOptions = {}, path = tmpPath()): string {
  const w = TraceWriter.create(path, HEADER, opts);
  for (const e of events.slice(0, -1)) w.append(e);
  w.close(events.at(-1) as EndEvent);
  return path;
}

/** A small trace of several chunks, its bytes and where each chunk and the footer start. */
function smallTrace(): { bytes: Uint8Array; events: TraceEvent[]; chunkStarts: number[]; footerStart: number } {
  const events: TraceEvent[] = [
    { kind: 'input', icount: 10, source: 'tsc', value: 123_456_789_012 },
    { kind: 'interrupt', icount: 11, vector: 8, source: 0 },
    { kind: 'io-write', icount: 40, port: 0x3f8, size: 1, value: 65 },
    { kind: 'input', icount: 41, source: 'clock', value: 946_684_800_000 },
    { kind: 'halt', icount: 50 },
    { kind: 'end', icount: 50, stop: 'halt', exitCode: 0 },
  ];
  const bytes = readFileSync(writeTrace(events, { chunkEvents: 2 }));
  const reader = TraceReader.open(bytes);
  const chunkStarts = [...reader.chunks()].map((c) => c.offset);
  expect(reader.complete).toBe(true);
  return { bytes, events, chunkStarts, footerStart: footerOffset(bytes, chunkStarts) };
}

function footerOffset(bytes: Uint8Array, chunkStarts: number[]): number {
  const last = chunkStarts.at(-1)!;
  return last + 12 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(last, true);
}

/** Events of the chunks that lie entirely before byte `end`. */
function eventsBefore(end: number, events: TraceEvent[], chunkStarts: number[], footerStart: number, perChunk: number): TraceEvent[] {
  const bounds = [...chunkStarts.slice(1), footerStart];
  const whole = bounds.filter((b) => b <= end).length;
  return events.slice(0, whole * perChunk);
}

/** A frame as the spec defines it: length, count, CRC-32 of both and the payload. */
function frame(count: number, payload: Uint8Array): Uint8Array {
  const head = Buffer.alloc(12);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(count, 4);
  head.writeUInt32LE(crc32(payload, crc32(head.subarray(0, 8))), 8);
  return Buffer.concat([head, payload]);
}

/** The preamble and header of a trace, followed by chunks built here from raw rows. */
function handMadeTrace(chunks: unknown[][][]): Uint8Array {
  const { bytes, chunkStarts } = smallTrace();
  const packr = new Packr({ useRecords: false });
  return Buffer.concat([bytes.subarray(0, chunkStarts[0]), ...chunks.map((rows) => frame(rows.length, packr.pack(rows)))]);
}

function withVersion(bytes: Uint8Array, version: number): Uint8Array {
  const copy = Buffer.from(bytes);
  copy.writeUInt32LE(version, 8);
  return copy;
}

function expectTraceError(read: () => unknown, message: string | RegExp): void {
  let thrown: unknown;
  try {
    read();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(TraceError);
  const text = (thrown as Error).message;
  expect(text).not.toContain('\n');
  if (typeof message === 'string') expect(text).toBe(message);
  else expect(text).toMatch(message);
}

describe('round trip', () => {
  it('keeps every event kind exactly, icounts up to 2^53 - 1 and snapshot bytes included', () => {
    const path = writeTrace(EVERY_KIND, { chunkEvents: 4 });
    expect(existsSync(`${path}.partial`)).toBe(false);
    const t = readTrace(path);
    expect(t.complete).toBe(true);
    expect(t.stoppedAt).toBeUndefined();
    expect(t.header).toEqual(HEADER);
    expect(comparable(t.events)).toEqual(comparable(EVERY_KIND));
    const snapshot = t.events.find((e) => e.kind === 'snapshot')!;
    expect(Object.getPrototypeOf(snapshot.data)).toBe(Uint8Array.prototype);
    expect(t.footer).toEqual({
      eventCount: EVERY_KIND.length,
      countsByKind: { input: 4, exception: 2, interrupt: 1, 'io-write': 1, halt: 1, 'vm-exit': 1, checkpoint: 1, snapshot: 2, shutdown: 1, end: 1 },
    });
    expect(t.bytes).toBe(readFileSync(path).length);
    const fromBytes = readTrace(readFileSync(path));
    expect({ ...fromBytes, events: comparable(fromBytes.events) }).toEqual({ ...t, events: comparable(t.events) });
  });

  it('covers every kind in the format table', () => {
    expect(new Set(EVERY_KIND.map((e) => e.kind))).toEqual(new Set(KINDS.map((k) => k.kind)));
    expect(KINDS.every((k) => k.tag < FIRST_SKIPPABLE_TAG)).toBe(true);
  });

  it('stores each event as [tag, icount delta, ...fields] with the documented tags', () => {
    const path = writeTrace(EVERY_KIND, { chunkEvents: 1000, chunkBytes: 1e9 });
    const bytes = readFileSync(path);
    const start = [...TraceReader.open(bytes).chunks()][0]!.offset;
    const rows = unpack(bytes.subarray(start + 12, footerOffset(bytes, [start]))) as unknown[][];
    expect(rows.map((r) => r[0])).toEqual(EVERY_KIND.map((e) => KINDS.find((k) => k.kind === e.kind)!.tag));
    expect(rows[0]).toEqual([0, 0, 0, 2 ** 40 + 3]); // source 'tsc' is code 0
    expect(rows[1]).toEqual([0, 5, 2, null]); // icount 5 - 0; 'serial' is code 2
    expect(rows[2]).toEqual([0, 0, 'pit-latch', -1]); // an uncoded source stays a string
    expect(rows[4]![1]).toBe(2 ** 32 + 1 - 6);
  });

  it("writes observations given field by field (the recorder's path) byte for byte as append() does", () => {
    const byFields = (w: TraceWriter, e: TraceEvent): void => {
      switch (e.kind) {
        case 'exception': return w.exception(e.icount, e.vector, e.errorCode, e.eip);
        case 'interrupt': return w.interrupt(e.icount, e.vector, e.source);
        case 'io-write': return w.ioWrite(e.icount, e.port, e.size, e.value);
        case 'halt': return w.halt(e.icount);
        case 'shutdown': return w.shutdown(e.icount);
        case 'vm-exit': return w.vmExit(e.icount, e.reason, e.qualification);
        default: return w.append(e);
      }
    };
    const viaFields = tmpPath();
    const w = TraceWriter.create(viaFields, HEADER, { chunkEvents: 3 });
    for (const e of EVERY_KIND.slice(0, -1)) byFields(w, e);
    expect(w.counts()).toEqual({ input: 4, exception: 2, interrupt: 1, 'io-write': 1, halt: 1, 'vm-exit': 1, checkpoint: 1, snapshot: 2, shutdown: 1 });
    w.close(END);
    expect(readFileSync(viaFields).equals(readFileSync(writeTrace(EVERY_KIND, { chunkEvents: 3 })))).toBe(true);
  });

  it('streams chunk by chunk with the same events', () => {
    const path = writeTrace(EVERY_KIND, { chunkEvents: 4 });
    const reader = TraceReader.open(path);
    const chunks = [...reader.chunks()];
    reader.close();
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    expect(comparable(chunks.flatMap((c) => c.events))).toEqual(comparable(EVERY_KIND));
    expect(reader.complete).toBe(true);
    expect(reader.footer?.eventCount).toBe(EVERY_KIND.length);
  });

  it('closes a chunk once its bytes pass chunkBytes', () => {
    const path = writeTrace(EVERY_KIND, { chunkEvents: 1000, chunkBytes: 1000 });
    const reader = TraceReader.open(path);
    // the 70,000-byte snapshot closes its chunk; the rest fit in one chunk each side of it
    expect([...reader.chunks()].map((c) => c.events.length)).toEqual([12, 3]);
  });

  it('takes few bytes per logged input', () => {
    const inputs = (source: string, value: (i: number) => number): TraceEvent[] => [
      ...Array.from({ length: 10_000 }, (_, i): TraceEvent => ({ kind: 'input', icount: 5_000_000_000 + i * 250, source, value: value(i) })),
      { kind: 'end', icount: 6_000_000_000, stop: 'halt', exitCode: 0 },
    ];
    const perInput = (events: TraceEvent[]): number => readFileSync(writeTrace(events)).length / (events.length - 1);
    const tsc = perInput(inputs('tsc', (i) => 7_000_000_000 + i * 1234));
    const serial = perInput(inputs('serial', (i) => i & 0x7f));
    console.log(`trace bytes per input: tsc ${tsc.toFixed(2)}, serial ${serial.toFixed(2)} (headers and footer included)`);
    expect(tsc).toBeLessThan(14.2); // fixarray, tag, delta (2), source code, float64 (9)
    expect(serial).toBeLessThan(7);
  });
});

describe('MsgpackWriter', () => {
  it('writes integers and strings at every size boundary as msgpackr reads them', () => {
    const ints = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, BIG, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -BIG];
    const strs = [31, 32, 255, 256, 65535, 65536].flatMap((n) => ['a'.repeat(n), 'é'.repeat(Math.ceil(n / 2)), '€'.repeat(Math.ceil(n / 3))]);
    const out = new MsgpackWriter();
    const at = out.array32Placeholder();
    for (const n of ints) out.int(n);
    for (const s of strs) out.str(s);
    out.bin(new Uint8Array(300));
    out.nil();
    out.patchArray32(at, ints.length + strs.length + 2);
    expect(unpack(out.bytes())).toEqual([...ints, ...strs, new Uint8Array(300), null]);
  });
});

describe('CRC-32', () => {
  it('is the zlib polynomial, natively and portably, and continues across calls', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Portable(check)).toBe(0xcbf43926);
    expect(crc32Portable(check.subarray(4), crc32Portable(check.subarray(0, 4)))).toBe(0xcbf43926);
    const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919) & 0xff);
    expect(crc32Portable(data)).toBe(crc32(data));
  });
});

describe('writing', () => {
  it('leaves the chunks written so far readable in the .partial file while recording', () => {
    const path = tmpPath();
    const w = TraceWriter.create(path, HEADER, { chunkEvents: 4 });
    for (let i = 0; i < 10; i++) w.append({ kind: 'input', icount: i, source: 'entropy', value: i * 1000 });
    // as after a crash: nothing closed, two full chunks on disk
    const t = readTrace(`${path}.partial`);
    expect(t.events.map((e) => e.icount)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(t).toMatchObject({ complete: false, stoppedAt: 'chunk 2: missing (the trace ends without a footer)' });
    w.abort();
  });

  it('abort() writes what is buffered and leaves the .partial file as a replayable prefix', () => {
    const path = tmpPath();
    const w = TraceWriter.create(path, HEADER, { chunkEvents: 4 });
    for (const e of EVERY_KIND.slice(0, 6)) w.append(e);
    w.abort();
    expect(existsSync(path)).toBe(false);
    const t = readTrace(`${path}.partial`);
    expect(comparable(t.events)).toEqual(comparable(EVERY_KIND.slice(0, 6)));
    expect(t.complete).toBe(false);
    expect(t.footer).toBeUndefined();
    expect(() => w.append(END)).toThrow(/closed/);
  });

  it('refuses an event it cannot store without damaging the chunk', () => {
    const path = tmpPath();
    const w = TraceWriter.create(path, HEADER);
    w.append(EVERY_KIND[0]!);
    expect(() => w.append({ kind: 'io-write', icount: 1, port: 0xe9, size: 1, value: 1.5 })).toThrow(TypeError);
    expect(() => w.append({ kind: 'input', icount: -1, source: 'tsc', value: 0 })).toThrow(/icount/);
    expect(() => w.append({ kind: 'input', icount: 2 ** 53, source: 'tsc', value: 0 })).toThrow(/icount/);
    expect(() => w.append({ kind: 'bogus', icount: 1 } as unknown as TraceEvent)).toThrow(/not in the format/);
    expect(() => w.append({ kind: 'checkpoint', icount: 1, hash: 'x', state: { eip: 0 } } as unknown as TraceEvent)).toThrow(/state/);
    w.close({ kind: 'end', icount: 3, stop: 'halt', exitCode: 0 });
    expect(readTrace(path)).toMatchObject({ complete: true, events: [EVERY_KIND[0], { kind: 'end', icount: 3 }] });
  });

  it('reports a file it cannot create as a one-line TraceError', () => {
    expectTraceError(() => TraceWriter.create(join(dir, 'no-such-dir', 'x.trace'), HEADER), /^cannot write trace .*x\.trace\.partial: ENOENT$/);
  });

  it('refuses a header that is not one', () => {
    expect(() => TraceWriter.create(tmpPath(), { ...HEADER, format: 2 })).toThrow(/header.format/);
    expect(() => TraceWriter.create(tmpPath(), { ...HEADER, machine: { ...HEADER.machine, vmx: 1 } } as unknown as TraceHeader)).toThrow(
      'trace header: header.machine.vmx is not a boolean',
    );
  });
});

describe('damage', () => {
  it('reads a prefix of whole chunks at every truncation point, throwing only inside the header', () => {
    const { bytes, events, chunkStarts, footerStart } = smallTrace();
    for (let end = 0; end < bytes.length; end++) {
      const cut = bytes.subarray(0, end);
      if (end < chunkStarts[0]!) {
        expectTraceError(() => readTrace(cut), end === 0 ? 'trace: empty file, not a trapdiff trace' : /^trace: truncated inside the trace header/);
        continue;
      }
      const t = readTrace(cut);
      expect(t.complete, `cut at ${end}`).toBe(false);
      expect(t.events, `cut at ${end}`).toEqual(eventsBefore(end, events, chunkStarts, footerStart, 2));
      expect(t.stoppedAt, `cut at ${end}`).toMatch(/^chunk \d: (truncated|missing)/);
    }
  });

  it('gives the documented outcome for a flipped bit at every byte', () => {
    const { bytes, events, chunkStarts, footerStart } = smallTrace();
    for (let at = 0; at < bytes.length; at++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(bytes);
        bad[at]! ^= bit;
        const where = `bit ${bit} of byte ${at}`;
        if (at < 8) expectTraceError(() => readTrace(bad), 'trace: not a trapdiff trace (bad magic)');
        else if (at < 12) expectTraceError(() => readTrace(bad), /^trace: trace format \d+ is (newer than this trapdiff|no longer read)/);
        else if (at < chunkStarts[0]!) expectTraceError(() => readTrace(bad), /^trace: (corrupt trace header \(CRC mismatch\)|truncated inside the trace header)/);
        else {
          const t = readTrace(bad);
          const chunk = [...chunkStarts, footerStart].filter((s) => s <= at).length - 1;
          expect(t.complete, where).toBe(false);
          expect(t.events, where).toEqual(events.slice(0, chunk * 2));
          expect(t.stoppedAt, where).toMatch(new RegExp(`^chunk ${chunk}: (CRC mismatch|truncated)`));
        }
      }
    }
  });

  it('reports a corrupt chunk in the middle by number and keeps the events before it', () => {
    const { bytes, events, chunkStarts } = smallTrace();
    const bad = Buffer.from(bytes);
    bad[chunkStarts[1]! + 14]! ^= 0xff;
    expect(readTrace(bad)).toMatchObject({ complete: false, stoppedAt: 'chunk 1: CRC mismatch', events: events.slice(0, 2) });
  });

  it('notices a missing chunk and stray bytes through the footer', () => {
    const { bytes, events, chunkStarts } = smallTrace();
    const holed = Buffer.concat([bytes.subarray(0, chunkStarts[1]), bytes.subarray(chunkStarts[2])]);
    const t = readTrace(holed);
    expect(t.events).toEqual([...events.slice(0, 2), ...events.slice(4)]);
    expect(t).toMatchObject({ complete: false, stoppedAt: 'footer: counts 6 events in 3 chunks, the trace holds 4 in 2' });
    const padded = readTrace(Buffer.concat([bytes, Buffer.from([0])]));
    expect(padded).toMatchObject({ complete: false, stoppedAt: 'footer: followed by 1 stray bytes', events });
  });

  it('skips unknown observation kinds (tag >= 64) and stops at unknown input kinds', () => {
    const skip = readTrace(handMadeTrace([[[0, 5, 0, 9], [FIRST_SKIPPABLE_TAG + 6, 10, 'future'], [4, 1]]]));
    expect(skip.events).toEqual([
      { kind: 'input', icount: 5, source: 'tsc', value: 9 },
      { kind: 'halt', icount: 16 },
    ]);
    const stop = readTrace(handMadeTrace([[[4, 1]], [[0, 5, 0, 9], [20, 1]]]));
    expect(stop.events).toEqual([{ kind: 'halt', icount: 1 }]);
    expect(stop.stoppedAt).toBe('chunk 1: event 1 has kind 20, unknown to this trapdiff (a newer one wrote it)');
  });

  it('treats a CRC-valid chunk that is not events as malformed', () => {
    const cases: [unknown[][], RegExp][] = [
      [[[4]], /event 0 is not an array/],
      [[[0, 1, 99, 5]], /unknown source code 99/],
      [[[1, 1, 14, 'x', 0]], /errorCode is not a safe integer or null/],
      [[[4, -1]], /icount/],
      [[[4, 1, 'extra']], /1 fields, expected 0/],
      [[[8, 1, 'not bytes']], /data is not bytes/],
    ];
    for (const [rows, message] of cases) {
      const t = readTrace(handMadeTrace([[[4, 3]], rows]));
      expect(t.events).toEqual([{ kind: 'halt', icount: 3 }]);
      expect(t.stoppedAt).toMatch(/^chunk 1: malformed/);
      expect(t.stoppedAt).toMatch(message);
    }
  });
});

describe('refusals', () => {
  it('refuses a trace from a newer format and names the versions it reads', () => {
    const { bytes } = smallTrace();
    expectTraceError(() => readTrace(withVersion(bytes, 3)), 'trace: trace format 3 is newer than this trapdiff, which reads formats 1..1');
    expectTraceError(() => readTrace(withVersion(bytes, 0)), 'trace: trace format 0 is no longer read by this trapdiff, which reads formats 1..1');
  });

  it('refuses files that are not traces, with one line naming the file', () => {
    const empty = tmpPath();
    writeFileSync(empty, '');
    expectTraceError(() => readTrace(empty), `${empty}: empty file, not a trapdiff trace`);
    expectTraceError(() => readTrace('package.json'), 'package.json: not a trapdiff trace (bad magic)');
    expectTraceError(() => readTrace(join(dir, 'absent.trace')), /^cannot read trace .*absent\.trace: ENOENT$/);
    expectTraceError(() => TraceReader.open(dir), /^cannot read trace .*: EISDIR$/);
    expectTraceError(() => readTrace(TRACE_MAGIC.subarray(0, 5)), 'trace: truncated inside the trace header (5 bytes)');
  });

  it('refuses a header whose CRC holds but whose content is not a header', () => {
    const { bytes } = smallTrace();
    const payload = new Packr({ useRecords: false }).pack({ ...HEADER, env: 'live' });
    const head = Buffer.alloc(8);
    head.writeUInt32LE(payload.length, 0);
    head.writeUInt32LE(crc32(payload, crc32(head.subarray(0, 4))), 4);
    const forged = Buffer.concat([bytes.subarray(0, 12), head, payload]);
    expectTraceError(() => readTrace(forged), 'trace: corrupt trace header (header.env is not an object)');
  });
});

describe('properties', () => {
  const seed = 0x7ace;
  const icount = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const int = fc.oneof(fc.integer(), fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), fc.constantFrom(0, -1, 2 ** 32, 2 ** 31));
  const event: fc.Arbitrary<TraceEvent> = fc.oneof(
    fc.record({ kind: fc.constant('input' as const), icount, source: fc.oneof(fc.constantFrom('tsc', 'clock', 'serial', 'entropy', 'rtc'), fc.string()), value: fc.option(int, { nil: null }) }),
    fc.record({ kind: fc.constant('exception' as const), icount, vector: int, errorCode: fc.option(int, { nil: null }), eip: int }),
    fc.record({ kind: fc.constant('interrupt' as const), icount, vector: int, source: int }),
    fc.record({ kind: fc.constant('io-write' as const), icount, port: int, size: int, value: int }),
    fc.record({ kind: fc.constantFrom('halt' as const, 'shutdown' as const), icount }),
    fc.record({ kind: fc.constant('vm-exit' as const), icount, reason: int, qualification: int }),
    fc.record({ kind: fc.constant('checkpoint' as const), icount, hash: fc.string(), state: fc.record({ regs: fc.array(int, { maxLength: 8 }), eip: int, eflags: int }) }),
    fc.record({ kind: fc.constant('snapshot' as const), icount, data: fc.uint8Array({ maxLength: 600 }) }),
  );
  const end = fc.record({ kind: fc.constant('end' as const), icount, stop: fc.string(), exitCode: fc.option(int, { nil: null }) });
  const options = fc.record({ chunkEvents: fc.integer({ min: 1, max: 8 }), chunkBytes: fc.integer({ min: 64, max: 4096 }) });

  it(`round-trips random event sequences (seed ${seed})`, () => {
    console.log(`trace-format property seed ${seed}`);
    const path = tmpPath();
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), end, options, (events, last, opts) => {
        writeTrace([...events, last], opts, path);
        const t = readTrace(path);
        expect(t.complete).toBe(true);
        expect(t.events).toEqual([...events, last]);
      }),
      { seed, numRuns: 150 },
    );
  });

  it(`never throws anything but TraceError on a corrupted trace, and keeps a prefix (seed ${seed})`, () => {
    const path = tmpPath();
    const damage = fc.oneof(
      fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ truncateAt: fc.nat() }),
      fc.record({ at: fc.nat(), insert: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 12 }), end, options, fc.array(damage, { minLength: 1, maxLength: 3 }), (events, last, opts, damages) => {
        writeTrace([...events, last], opts, path);
        let bytes: Uint8Array = readFileSync(path);
        for (const d of damages) {
          if ('truncateAt' in d) bytes = bytes.subarray(0, d.truncateAt % (bytes.length + 1));
          else if ('xor' in d) {
            if (bytes.length === 0) continue;
            bytes = Buffer.from(bytes);
            bytes[d.at % bytes.length]! ^= d.xor;
          } else bytes = Buffer.concat([bytes.subarray(0, d.at % (bytes.length + 1)), d.insert, bytes.subarray(d.at % (bytes.length + 1))]);
        }
        try {
          const t = readTrace(bytes);
          expect(t.events).toEqual([...events, last].slice(0, t.events.length));
        } catch (err) {
          if (!(err instanceof TraceError)) throw err;
          expect(err.message).not.toContain('\n');
        }
      }),
      { seed, numRuns: 300 },
    );
  });
});
