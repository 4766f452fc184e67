// The trace file format: a versioned header, then events in CRC-checked chunks, then a footer.
// docs/TRACE-FORMAT.md is the byte-level specification; this file and event-codec.ts implement
// it. The format knows nothing of the Machine: R2's recorder fills the header and the events.
//
// API (what the recorder and replayer import):
//   TRACE_FORMAT_VERSION; TRAPDIFF_VERSION for the header comes from src/version.ts
//   TraceHeader, TraceEvent (+ per-kind aliases), CheckpointState, TraceFooter, TraceFile
//   TraceWriter.create(path, header, opts?) -> append(e) / flush() / close(end) / abort()
//   readTrace(pathOrBytes): TraceFile           (everything in memory)
//   TraceReader.open(pathOrBytes) -> header; chunks() / events() generators; after the
//     iteration: complete, stoppedAt, footer; close()
//   TraceError (errors.ts): every refusal, always one line

import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { Packr, Unpackr } from 'msgpackr';
import { crc32 } from './crc.js';
import { TraceError } from './errors.js';
import { MsgpackWriter } from './msgpack-writer.js';
import { encodeEvent, KINDS, rowEvent, startRow, TAG, visitRows, type RowVisitor } from './event-codec.js';
import type { ObservationLog } from './observations.js';

export { TraceError };

export const TRACE_FORMAT_VERSION = 1;

export interface TraceHeader {
  format: number;
  trapdiffVersion: string;
  machine: {
    memMiB: number;
    vmx: boolean;
    loader: string;
    imageName: string;
    imageSha256: string;
    loadOptions: Record<string, unknown>;
  };
  env: { kind: string; cyclesPerSecond: number; [k: string]: unknown };
  options: { checkpointEvery: number; snapshotEvery: number; maxInsns: number | null; [k: string]: unknown };
}

export interface CheckpointState {
  regs: number[];
  eip: number;
  eflags: number;
  [k: string]: unknown;
}

export type InputEvent = { kind: 'input'; icount: number; source: string; value: number | null };
export type ExceptionEvent = { kind: 'exception'; icount: number; vector: number; errorCode: number | null; eip: number };
export type InterruptEvent = { kind: 'interrupt'; icount: number; vector: number; source: number };
export type IoWriteEvent = { kind: 'io-write'; icount: number; port: number; size: number; value: number };
export type HaltEvent = { kind: 'halt'; icount: number };
export type ShutdownEvent = { kind: 'shutdown'; icount: number };
export type VmExitEvent = { kind: 'vm-exit'; icount: number; reason: number; qualification: number };
export type CheckpointEvent = { kind: 'checkpoint'; icount: number; hash: string; state: CheckpointState };
export type SnapshotEvent = { kind: 'snapshot'; icount: number; data: Uint8Array };
export type EndEvent = { kind: 'end'; icount: number; stop: string; exitCode: number | null };

/** One record per event, keyed by the retired-instruction count `icount` at which it took effect. */
export type TraceEvent =
  | InputEvent
  | ExceptionEvent
  | InterruptEvent
  | IoWriteEvent
  | HaltEvent
  | ShutdownEvent
  | VmExitEvent
  | CheckpointEvent
  | SnapshotEvent
  | EndEvent;

export interface TraceFooter {
  eventCount: number;
  countsByKind: Record<string, number>;
}

export interface TraceFile {
  header: TraceHeader;
  events: TraceEvent[];
  /** True when the footer was read and agrees with the chunks before it. */
  complete: boolean;
  /** Why reading stopped early, when !complete: "chunk 3: CRC mismatch", "chunk 5: truncated"... */
  stoppedAt?: string;
  footer?: TraceFooter;
  /** Size of the trace in bytes. */
  bytes: number;
}

export interface TraceWriterOptions {
  /** A chunk is closed after this many events (default 1024). */
  chunkEvents?: number;
  /** ... or once its events take this many bytes (default 64 KiB). */
  chunkBytes?: number;
  /** fsync the file after every chunk (default false: a process crash loses nothing written). */
  fsync?: boolean;
}

// ---- Layout (docs/TRACE-FORMAT.md) ----

/** "\x89TDTR\r\n\x1a": a non-ASCII first byte and a CR LF, so text-mode mangling shows. */
export const TRACE_MAGIC = Uint8Array.of(0x89, 0x54, 0x44, 0x54, 0x52, 0x0d, 0x0a, 0x1a);
/** Magic, then the format version (u32 little-endian). */
const PREAMBLE_BYTES = 12;
/** Header record: payload length (u32), CRC-32 of length field + payload (u32), payload. */
const HEADER_FRAME_BYTES = 8;
/** Chunk: payload length (u32), event count (u32), CRC-32 of the 8 bytes before it + payload (u32). */
const CHUNK_FRAME_BYTES = 12;
/** The event count that marks the footer chunk. */
const FOOTER_MARK = 0xffff_ffff;

const DEFAULT_CHUNK_EVENTS = 1024;
const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** What each readable format version's chunks decode with: older versions migrate here. */
const EVENT_DECODERS: ReadonlyMap<number, typeof visitRows> = new Map([[1, visitRows]]);
const OLDEST_READABLE = Math.min(...EVENT_DECODERS.keys());

/** For the header and footer maps (each pack() result is written before the next call). */
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

// ---- Writing ----

/**
 * Writes a trace file. Events come through append(), checked and encoded; observations may also
 * come through the ObservationLog methods, encoded from their fields straight into the chunk
 * (the recorder's path: no event object per observation).
 */
export class TraceWriter implements ObservationLog {
  /** Where the trace is written until close() renames it to `path`. */
  readonly partialPath: string;
  private fd: number | undefined;
  private readonly chunkEvents: number;
  private readonly chunkBytes: number;
  private readonly fsyncChunks: boolean;
  /** The open chunk's payload: an array32 of events whose count is patched in at flush. */
  private readonly payload = new MsgpackWriter();
  private countAt = this.payload.array32Placeholder();
  private pendingEvents = 0;
  private previousIcount = 0;
  private readonly frame = Buffer.alloc(CHUNK_FRAME_BYTES);
  private chunkCount = 0;
  private eventCount = 0;
  /** Events written, by tag. */
  private readonly countsByTag = new Float64Array(KINDS.length);

  private constructor(
    readonly path: string,
    opts: TraceWriterOptions,
  ) {
    this.partialPath = `${path}.partial`;
    this.chunkEvents = Math.max(1, opts.chunkEvents ?? DEFAULT_CHUNK_EVENTS);
    this.chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.fsyncChunks = opts.fsync ?? false;
  }

  /** Opens `${path}.partial` and writes the preamble and header. */
  static create(path: string, header: TraceHeader, opts: TraceWriterOptions = {}): TraceWriter {
    const problem = headerProblem(header, TRACE_FORMAT_VERSION);
    if (problem !== undefined) throw new TypeError(`trace header: ${problem}`);
    const w = new TraceWriter(path, opts);
    const payload = packr.pack(header);
    const start = Buffer.alloc(PREAMBLE_BYTES + HEADER_FRAME_BYTES);
    start.set(TRACE_MAGIC, 0);
    start.writeUInt32LE(TRACE_FORMAT_VERSION, 8);
    start.writeUInt32LE(payload.length, 12);
    start.writeUInt32LE(crc32(payload, crc32(start.subarray(12, 16))), 16);
    const fd = guardIo('write', w.partialPath, () => openSync(w.partialPath, 'w'));
    w.fd = fd;
    writeAll(fd, w.partialPath, Buffer.concat([start, payload]));
    return w;
  }

  /** Buffers `e` (encoded now, so a bad event throws here); a full chunk is written out. */
  append(e: TraceEvent): void {
    if (this.fd === undefined) throw new Error(`trace ${this.path} is already closed`);
    encodeEvent(e, this.previousIcount, this.payload);
    this.previousIcount = e.icount;
    this.rowDone(TAG[e.kind]);
  }

  exception(icount: number, vector: number, errorCode: number | null, eip: number): void {
    const out = this.row(TAG.exception, 3, icount);
    out.int(vector);
    if (errorCode === null) out.nil();
    else out.int(errorCode);
    out.int(eip);
    this.rowDone(TAG.exception);
  }
  interrupt(icount: number, vector: number, source: number): void {
    const out = this.row(TAG.interrupt, 2, icount);
    out.int(vector);
    out.int(source);
    this.rowDone(TAG.interrupt);
  }
  ioWrite(icount: number, port: number, size: number, value: number): void {
    const out = this.row(TAG['io-write'], 3, icount);
    out.int(port);
    out.int(size);
    out.int(value);
    this.rowDone(TAG['io-write']);
  }
  halt(icount: number): void {
    this.row(TAG.halt, 0, icount);
    this.rowDone(TAG.halt);
  }
  shutdown(icount: number): void {
    this.row(TAG.shutdown, 0, icount);
    this.rowDone(TAG.shutdown);
  }
  vmExit(icount: number, reason: number, qualification: number): void {
    const out = this.row(TAG['vm-exit'], 2, icount);
    out.int(reason);
    out.int(qualification);
    this.rowDone(TAG['vm-exit']);
  }

  /** Starts an observation's row (the CPU's values need no checks: integers, icount never decreasing). */
  private row(tag: number, fields: number, icount: number): MsgpackWriter {
    if (this.fd === undefined) throw new Error(`trace ${this.path} is already closed`);
    startRow(this.payload, tag, fields, icount - this.previousIcount);
    this.previousIcount = icount;
    return this.payload;
  }

  /** Counts the row just written; writes the chunk out when full. */
  private rowDone(tag: number): void {
    this.pendingEvents++;
    this.countsByTag[tag]++;
    if (this.pendingEvents >= this.chunkEvents || this.payload.length >= this.chunkBytes) this.flush();
  }

  /** Events written so far, by kind (kinds written at least once). */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const s of KINDS) if (this.countsByTag[s.tag]! > 0) counts[s.kind] = this.countsByTag[s.tag]!;
    return counts;
  }

  /** Writes the buffered events as one chunk now (nothing when none are buffered). */
  flush(): void {
    if (this.fd === undefined || this.pendingEvents === 0) return;
    const n = this.pendingEvents;
    this.payload.patchArray32(this.countAt, n);
    this.writeChunk(n, this.payload.bytes());
    this.payload.reset();
    this.countAt = this.payload.array32Placeholder();
    this.eventCount += n;
    this.pendingEvents = 0;
    this.previousIcount = 0;
  }

  /** Appends `end`, writes the last chunk and the footer, and renames the file to `path`. */
  close(end: EndEvent): void {
    if (end.kind !== 'end') throw new TypeError(`a trace closes with an 'end' event, not '${String((end as TraceEvent).kind)}'`);
    this.append(end);
    this.flush();
    const fd = this.fd!;
    const footer = { eventCount: this.eventCount, chunkCount: this.chunkCount, countsByKind: this.counts() };
    this.writeChunk(FOOTER_MARK, packr.pack(footer));
    guardIo('write', this.partialPath, () => fsyncSync(fd));
    closeSync(fd);
    this.fd = undefined;
    guardIo('write', this.path, () => renameSync(this.partialPath, this.path));
  }

  /** Writes what is buffered and leaves `${path}.partial` as a replayable prefix. */
  abort(): void {
    if (this.fd === undefined) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }

  private writeChunk(count: number, payload: Uint8Array): void {
    if (payload.length > 0xffff_ffff) throw new RangeError(`trace chunk of ${payload.length} bytes exceeds 4 GiB`);
    const frame = this.frame;
    frame.writeUInt32LE(payload.length, 0);
    frame.writeUInt32LE(count, 4);
    frame.writeUInt32LE(crc32(payload, crc32(frame.subarray(0, 8))), 8);
    const fd = this.fd!;
    writeAll(fd, this.partialPath, frame);
    writeAll(fd, this.partialPath, payload);
    if (this.fsyncChunks) guardIo('write', this.partialPath, () => fsyncSync(fd));
    if (count !== FOOTER_MARK) this.chunkCount++;
  }
}

function writeAll(fd: number, path: string, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length; ) done += guardIo('write', path, () => writeSync(fd, bytes, done, bytes.length - done));
}

// ---- Reading ----

export interface TraceChunk {
  /** Position among the event chunks, from 0 (what stoppedAt messages count). */
  index: number;
  /** Byte offset of the chunk's frame in the file. */
  offset: number;
  events: TraceEvent[];
}

interface ByteSource {
  readonly size: number;
  /** `length` bytes at `offset`, all within size. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function bytesSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length), close() {} };
}

function fileSource(path: string): ByteSource {
  const fd = guardIo('read', path, () => openSync(path, 'r'));
  const size = guardIo('read', path, () => fstatSync(fd).size);
  return {
    size,
    read(offset, length) {
      const buf = Buffer.allocUnsafe(length);
      for (let done = 0; done < length; ) {
        const n = guardIo('read', path, () => readSync(fd, buf, done, length - done, offset + done));
        if (n === 0) throw new TraceError(`${path}: the file shrank while it was read`);
        done += n;
      }
      return buf;
    },
    close: () => closeSync(fd),
  };
}

/** Runs a file operation; a failure (ENOENT, ENOSPC, EISDIR...) becomes a one-line TraceError. */
function guardIo<T>(verb: 'read' | 'write', path: string, io: () => T): T {
  try {
    return io();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TraceError(`cannot ${verb} trace ${path}: ${e.code ?? e.message}`);
  }
}

/**
 * A trace read chunk by chunk: open() checks the preamble and header (throwing TraceError),
 * chunks() yields each intact chunk's events and never throws for damage after the header: it
 * stops and sets `stoppedAt`. `complete`, `stoppedAt` and `footer` describe the last iteration.
 */
export class TraceReader {
  complete = false;
  stoppedAt: string | undefined;
  footer: TraceFooter | undefined;

  private constructor(
    readonly header: TraceHeader,
    /** The format version the trace was written in. */
    readonly format: number,
    /** Size of the trace in bytes. */
    readonly bytes: number,
    private readonly source: ByteSource,
    private readonly firstChunkOffset: number,
  ) {}

  static open(pathOrBytes: string | Uint8Array): TraceReader {
    const label = typeof pathOrBytes === 'string' ? pathOrBytes : 'trace';
    const source = typeof pathOrBytes === 'string' ? fileSource(pathOrBytes) : bytesSource(pathOrBytes);
    try {
      const { header, format, end } = readStart(source, label);
      return new TraceReader(header, format, source.size, source, end);
    } catch (err) {
      source.close();
      throw err;
    }
  }

  /** Every event of every intact chunk, in order (unknown skippable kinds left out). */
  *events(): Generator<TraceEvent> {
    for (const chunk of this.chunks()) yield* chunk.events;
  }

  *chunks(): Generator<TraceChunk> {
    for (const p of this.payloads()) {
      const events: TraceEvent[] = [];
      const problem = p.visit((spec, row, icount) => events.push(rowEvent(spec, row, icount)));
      if (problem !== undefined) return this.stop(`chunk ${p.index}: ${problem}`);
      yield { index: p.index, offset: p.offset, events };
    }
  }

  /**
   * Passes every row of every intact chunk, in order, to `visit` without making event objects
   * (what a replay indexes a long trace with); stops at damage as chunks() does.
   */
  visit(visit: RowVisitor): void {
    for (const p of this.payloads()) {
      const problem = p.visit(visit);
      if (problem !== undefined) return this.stop(`chunk ${p.index}: ${problem}`);
    }
  }

  /** Each intact chunk's rows, ready to visit; the footer and damage end the iteration. */
  private *payloads(): Generator<{ index: number; offset: number; visit: (v: RowVisitor) => string | undefined }> {
    this.complete = false;
    this.stoppedAt = undefined;
    this.footer = undefined;
    const visitChunk = EVENT_DECODERS.get(this.format)!;
    const size = this.source.size;
    let offset = this.firstChunkOffset;
    let eventsSeen = 0;
    for (let index = 0; ; index++) {
      const remaining = size - offset;
      if (remaining === 0) return this.stop(`chunk ${index}: missing (the trace ends without a footer)`);
      if (remaining < CHUNK_FRAME_BYTES) return this.stop(`chunk ${index}: truncated (frame)`);
      const frame = this.source.read(offset, CHUNK_FRAME_BYTES);
      const length = u32(frame, 0);
      const count = u32(frame, 4);
      if (length > remaining - CHUNK_FRAME_BYTES) {
        return this.stop(`chunk ${index}: truncated (${remaining - CHUNK_FRAME_BYTES} of ${length} bytes)`);
      }
      const payload = this.source.read(offset + CHUNK_FRAME_BYTES, length);
      if (crc32(payload, crc32(frame.subarray(0, 8))) !== u32(frame, 8)) return this.stop(`chunk ${index}: CRC mismatch`);
      const chunkOffset = offset;
      offset += CHUNK_FRAME_BYTES + length;
      if (count === FOOTER_MARK) return this.readFooter(payload, index, eventsSeen, size - offset);
      eventsSeen += count;
      yield { index, offset: chunkOffset, visit: (v) => visitChunk(payload, count, v) };
    }
  }

  close(): void {
    this.source.close();
  }

  private stop(reason: string): void {
    this.stoppedAt = reason;
  }

  private readFooter(payload: Uint8Array, chunks: number, events: number, trailing: number): void {
    const footer = unpackOrUndefined(payload) as Record<string, unknown> | undefined;
    const counts = footer?.countsByKind as Record<string, unknown> | undefined;
    if (
      footer === undefined ||
      !Number.isSafeInteger(footer.eventCount) ||
      !Number.isSafeInteger(footer.chunkCount) ||
      typeof counts !== 'object' ||
      counts === null ||
      !Object.values(counts).every((n) => Number.isSafeInteger(n))
    ) {
      return this.stop(`chunk ${chunks} (footer): malformed`);
    }
    this.footer = { eventCount: footer.eventCount as number, countsByKind: counts as Record<string, number> };
    if (footer.eventCount !== events || footer.chunkCount !== chunks) {
      return this.stop(`footer: counts ${footer.eventCount} events in ${footer.chunkCount} chunks, the trace holds ${events} in ${chunks}`);
    }
    if (trailing > 0) return this.stop(`footer: followed by ${trailing} stray bytes`);
    this.complete = true;
  }
}

/** Reads the whole trace into memory; throws TraceError only for what TraceReader.open refuses. */
export function readTrace(pathOrBytes: string | Uint8Array): TraceFile {
  const reader = TraceReader.open(pathOrBytes);
  let events: TraceEvent[];
  try {
    events = [...reader.events()];
  } finally {
    reader.close();
  }
  const file: TraceFile = { header: reader.header, events, complete: reader.complete, bytes: reader.bytes };
  if (reader.stoppedAt !== undefined) file.stoppedAt = reader.stoppedAt;
  if (reader.footer !== undefined) file.footer = reader.footer;
  return file;
}

/** Checks the preamble and header record; returns the header and where the first chunk starts. */
function readStart(source: ByteSource, label: string): { header: TraceHeader; format: number; end: number } {
  const size = source.size;
  const refuse = (why: string): never => {
    throw new TraceError(`${label}: ${why}`);
  };
  if (size === 0) refuse('empty file, not a trapdiff trace');
  const magic = source.read(0, Math.min(size, TRACE_MAGIC.length));
  if (!magic.every((b, i) => b === TRACE_MAGIC[i])) refuse('not a trapdiff trace (bad magic)');
  const truncated = (): never => refuse(`truncated inside the trace header (${size} bytes)`);
  if (size < PREAMBLE_BYTES) truncated();
  const format = u32(source.read(8, 4), 0);
  if (format > TRACE_FORMAT_VERSION) {
    refuse(`trace format ${format} is newer than this trapdiff, which reads formats ${OLDEST_READABLE}..${TRACE_FORMAT_VERSION}`);
  }
  if (!EVENT_DECODERS.has(format)) {
    refuse(`trace format ${format} is no longer read by this trapdiff, which reads formats ${OLDEST_READABLE}..${TRACE_FORMAT_VERSION}`);
  }
  if (size < PREAMBLE_BYTES + HEADER_FRAME_BYTES) truncated();
  const frame = source.read(PREAMBLE_BYTES, HEADER_FRAME_BYTES);
  const length = u32(frame, 0);
  const end = PREAMBLE_BYTES + HEADER_FRAME_BYTES + length;
  if (end > size) truncated();
  const payload = source.read(PREAMBLE_BYTES + HEADER_FRAME_BYTES, length);
  if (crc32(payload, crc32(frame.subarray(0, 4))) !== u32(frame, 4)) refuse('corrupt trace header (CRC mismatch)');
  const header = unpackOrUndefined(payload);
  const problem = header === undefined ? 'not MessagePack' : headerProblem(header, format);
  if (problem !== undefined) refuse(`corrupt trace header (${problem})`);
  return { header: header as TraceHeader, format, end };
}

function unpackOrUndefined(payload: Uint8Array): unknown {
  try {
    return unpackr.unpack(payload);
  } catch {
    return undefined;
  }
}

function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

// ---- Header validation (writer and reader share it) ----

type Shape = 'number' | 'number?' | 'string' | 'boolean' | 'object' | { readonly [field: string]: Shape };

const HEADER_SHAPE: Shape = {
  format: 'number',
  trapdiffVersion: 'string',
  machine: { memMiB: 'number', vmx: 'boolean', loader: 'string', imageName: 'string', imageSha256: 'string', loadOptions: 'object' },
  env: { kind: 'string', cyclesPerSecond: 'number' },
  options: { checkpointEvery: 'number', snapshotEvery: 'number', maxInsns: 'number?' },
};

/** Why `header` is not a header of format `format`, or undefined. */
function headerProblem(header: unknown, format: number): string | undefined {
  const problem = shapeProblem(header, HEADER_SHAPE, 'header');
  if (problem !== undefined) return problem;
  const found = (header as TraceHeader).format;
  return found === format ? undefined : `header.format is ${found}, the file says ${format}`;
}

function shapeProblem(value: unknown, shape: Shape, path: string): string | undefined {
  if (typeof shape === 'object' || shape === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${path} is not an object`;
    if (shape === 'object') return undefined;
    for (const [field, inner] of Object.entries(shape)) {
      const problem = shapeProblem((value as Record<string, unknown>)[field], inner, `${path}.${field}`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (shape === 'number?' ? value === null || typeof value === 'number' : typeof value === shape) return undefined;
  return `${path} is not a ${shape === 'number?' ? 'number or null' : shape}`;
}
