// Events <-> the positional arrays stored in a chunk (docs/TRACE-FORMAT.md, "Events"). An event
// is `[tag, icountDelta, ...fields]`: a numeric kind tag instead of string keys keeps a logged
// input near a dozen bytes. KINDS declares each kind once: its fields for decoding and
// validation, and an encoder that writes them in order straight into the chunk buffer (its own
// function per kind, so the property reads stay monomorphic: it runs per recorded event).

import { Packr } from 'msgpackr';
import type { CheckpointState, TraceEvent } from './format.js';
import { MalformedMsgpack, MsgpackReader } from './msgpack-reader.js';
import type { MsgpackWriter } from './msgpack-writer.js';

type FieldType = 'int' | 'int?' | 'str' | 'source' | 'bin' | 'state';
type EventOf<K extends TraceEvent['kind']> = Extract<TraceEvent, { kind: K }>;

export interface KindSpec {
  readonly tag: number;
  readonly kind: TraceEvent['kind'];
  readonly fields: readonly string[];
  readonly types: readonly FieldType[];
  /** Writes the fields, in order, through `f`. */
  readonly encode: (e: TraceEvent, f: FieldEncoder) => void;
}

function kind<K extends TraceEvent['kind']>(
  tag: number,
  name: K,
  fields: readonly [string, FieldType][],
  encode: (e: EventOf<K>, f: FieldEncoder) => void,
): KindSpec {
  const types = fields.map(([, type]) => type);
  return { tag, kind: name, fields: fields.map(([field]) => field), types, encode: encode as KindSpec['encode'] };
}

/** Format 1's event kinds. Tags are permanent: a new kind takes a new tag (see the spec). */
export const KINDS: readonly KindSpec[] = [
  kind(0, 'input', [['source', 'source'], ['value', 'int?']], (e, f) => f.source(e.source).intOrNull(e.value)),
  kind(1, 'exception', [['vector', 'int'], ['errorCode', 'int?'], ['eip', 'int']], (e, f) => f.int(e.vector).intOrNull(e.errorCode).int(e.eip)),
  kind(2, 'interrupt', [['vector', 'int'], ['source', 'int']], (e, f) => f.int(e.vector).int(e.source)),
  kind(3, 'io-write', [['port', 'int'], ['size', 'int'], ['value', 'int']], (e, f) => f.int(e.port).int(e.size).int(e.value)),
  kind(4, 'halt', [], () => {}),
  kind(5, 'shutdown', [], () => {}),
  kind(6, 'vm-exit', [['reason', 'int'], ['qualification', 'int']], (e, f) => f.int(e.reason).int(e.qualification)),
  kind(7, 'checkpoint', [['hash', 'str'], ['state', 'state']], (e, f) => f.str(e.hash).state(e.state)),
  kind(8, 'snapshot', [['data', 'bin']], (e, f) => f.bin(e.data)),
  kind(9, 'end', [['stop', 'str'], ['exitCode', 'int?']], (e, f) => f.str(e.stop).intOrNull(e.exitCode)),
];

/**
 * Tags from this value up are observations a reader may skip when it does not know them; an
 * unknown tag below it could change what a replay must feed the machine, so reading stops there.
 */
export const FIRST_SKIPPABLE_TAG = 64;

/** Input sources stored as one-byte codes; any other source is stored as its string. */
export const INPUT_SOURCE_CODES: readonly string[] = ['tsc', 'clock', 'serial', 'entropy', 'rtc'];

/** Each kind's tag. */
export const TAG = Object.fromEntries(KINDS.map((s) => [s.kind, s.tag])) as Readonly<Record<TraceEvent['kind'], number>>;

const SPEC_BY_KIND = new Map(KINDS.map((s) => [s.kind, s]));
const SPEC_BY_TAG = new Map(KINDS.map((s) => [s.tag, s]));
const SOURCE_CODE = new Map(INPUT_SOURCE_CODES.map((s, i) => [s, i]));

/** Checks each field against its declared type and writes it; one instance serves every event. */
class FieldEncoder {
  private out!: MsgpackWriter;
  private event!: TraceEvent;
  private spec!: KindSpec;
  private index = 0;
  /** Checkpoint states are free-form maps: msgpackr encodes them. */
  private readonly statePackr = new Packr({ useRecords: false });

  begin(out: MsgpackWriter, event: TraceEvent, spec: KindSpec): void {
    this.out = out;
    this.event = event;
    this.spec = spec;
    this.index = 0;
  }

  int(v: number): this {
    this.check('int', v).int(v);
    return this;
  }

  intOrNull(v: number | null): this {
    if (v === null) this.check('int?', v).nil();
    else this.check('int?', v).int(v);
    return this;
  }

  str(v: string): this {
    this.check('str', v).str(v);
    return this;
  }

  source(v: string): this {
    const code = SOURCE_CODE.get(v);
    if (code === undefined) this.check('source', v).str(v);
    else this.check('source', v).int(code);
    return this;
  }

  bin(v: Uint8Array): this {
    this.check('bin', v).bin(v);
    return this;
  }

  state(v: CheckpointState): this {
    this.check('state', v).raw(this.statePackr.pack(v));
    return this;
  }

  /** The writer, once `value` is known to be a `type`; a TypeError naming the field otherwise. */
  private check(type: FieldType, value: unknown): MsgpackWriter {
    const problem = checkField(type, value);
    if (problem !== undefined) {
      const e = this.event;
      throw new TypeError(`trace event ${e.kind} at icount ${e.icount}: ${this.spec.fields[this.index]} ${problem}`);
    }
    this.index++;
    return this.out;
  }
}

const fieldEncoder = new FieldEncoder();

/**
 * Appends the positional form of `e` to `out`, its icount relative to `previousIcount`.
 * Throws a TypeError for an event the format cannot store, having written nothing.
 */
export function encodeEvent(e: TraceEvent, previousIcount: number, out: MsgpackWriter): void {
  const spec = SPEC_BY_KIND.get(e.kind);
  if (spec === undefined) throw new TypeError(`trace event kind '${String(e.kind)}' is not in the format`);
  if (!isIcount(e.icount)) throw new TypeError(`trace event ${e.kind}: icount ${e.icount} is not a safe non-negative integer`);
  const start = out.length;
  startRow(out, spec.tag, spec.fields.length, e.icount - previousIcount);
  fieldEncoder.begin(out, e, spec);
  try {
    spec.encode(e, fieldEncoder);
  } catch (err) {
    out.length = start;
    throw err;
  }
}

/**
 * Starts the row of an event: its array header, tag and icount delta; its `fields` fields, in
 * KINDS' order, come next. (The TraceWriter's observation methods write rows this way straight
 * from the CPU's hooks, with no event object; encodeEvent validates first.)
 */
export function startRow(out: MsgpackWriter, tag: number, fields: number, icountDelta: number): void {
  out.fixArray(2 + fields);
  out.int(tag);
  out.int(icountDelta);
}

/**
 * Called for each row of a known kind, once the row is known valid (fields as stored: source
 * codes, raw bytes). `row` is reused for the next row: it is valid only during the call.
 */
export type RowVisitor = (spec: KindSpec, row: readonly unknown[], icount: number) => void;

const reader = new MsgpackReader();
/** One reusable row per field count a known kind can have: decoding makes no array per row. */
const ROWS: readonly unknown[][] = Array.from({ length: 16 }, (_, n) => new Array<unknown>(n).fill(null));

/**
 * Decodes a chunk payload (an array of `count` rows), checks each row and passes each row of a
 * known kind to `visit` with its absolute icount; returns why the payload is malformed or
 * unreadable, or undefined. Rows of unknown skippable kinds are left out, their icounts still
 * counted.
 */
export function visitRows(payload: Uint8Array, count: number, visit: RowVisitor): string | undefined {
  reader.reset(payload);
  try {
    const rows = reader.arrayLength();
    if (rows < 0) return 'malformed (payload is not an array of events)';
    if (rows !== count) return `malformed (${rows} events, the frame says ${count})`;
    let icount = 0;
    for (let i = 0; i < rows; i++) {
      const length = reader.arrayLength();
      if (length < 2) return `malformed (event ${i} is not an array [tag, icount, ...])`;
      const tag: unknown = reader.value(), delta: unknown = reader.value();
      icount += typeof delta === 'number' ? delta : NaN;
      if (typeof tag !== 'number' || !Number.isInteger(tag) || tag < 0) return `malformed (event ${i}: bad tag ${String(tag)})`;
      if (!isIcount(icount)) return `malformed (event ${i}: icount is not a safe non-negative integer)`;
      const spec = SPEC_BY_TAG.get(tag);
      if (spec === undefined) {
        if (tag < FIRST_SKIPPABLE_TAG) return `event ${i} has kind ${tag}, unknown to this trapdiff (a newer one wrote it)`;
        for (let j = 2; j < length; j++) reader.skip();
        continue;
      }
      if (length !== 2 + spec.fields.length) return `malformed (event ${i}: ${spec.kind}: ${length - 2} fields, expected ${spec.fields.length})`;
      const row = ROWS[length]!;
      row[0] = tag;
      row[1] = delta;
      for (let j = 2; j < length; j++) row[j] = reader.value();
      const problem = rowProblem(spec, row);
      if (problem !== undefined) return `malformed (event ${i}: ${spec.kind}: ${problem})`;
      visit(spec, row, icount);
    }
    return reader.done ? undefined : `malformed (${payload.length - reader.pos} bytes after the events)`;
  } catch (err) {
    if (err instanceof MalformedMsgpack) return `malformed (${err.message})`;
    throw err;
  }
}

/** The kind of tag `tag` (undefined for an unknown one). */
export function kindOfTag(tag: number): KindSpec | undefined {
  return SPEC_BY_TAG.get(tag);
}

/** A stored field value as the event holds it: a source code as its name, bytes as a Uint8Array. */
function fieldValue(type: FieldType, value: unknown): unknown {
  if (type === 'source' && typeof value === 'number') return INPUT_SOURCE_CODES[value];
  if (type === 'bin' && value instanceof Uint8Array) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return value;
}

/** The event of a valid row (fields as stored, or as events hold them: `row` may be either). */
export function rowEvent(spec: KindSpec, row: readonly unknown[], icount: number): TraceEvent {
  const event: Record<string, unknown> = { kind: spec.kind, icount };
  for (let i = 0; i < spec.fields.length; i++) event[spec.fields[i]!] = fieldValue(spec.types[i]!, row[2 + i]);
  return event as unknown as TraceEvent;
}

/** What is wrong with the fields of a row of a known kind (its length checked), or undefined. */
function rowProblem(spec: KindSpec, row: readonly unknown[]): string | undefined {
  for (let i = 0; i < spec.fields.length; i++) {
    const type = spec.types[i]!, raw = row[2 + i];
    const value = fieldValue(type, raw);
    if (type === 'source' && value === undefined) return `unknown source code ${String(raw)}`;
    const problem = checkField(type, value);
    if (problem !== undefined) return `${spec.fields[i]} ${problem}`;
  }
  return undefined;
}

function isIcount(n: unknown): boolean {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

/** Why `value` is not of `type`, or undefined when it is. */
function checkField(type: FieldType, value: unknown): string | undefined {
  switch (type) {
    case 'int':
      return Number.isSafeInteger(value) ? undefined : 'is not a safe integer';
    case 'int?':
      return value === null || Number.isSafeInteger(value) ? undefined : 'is not a safe integer or null';
    case 'str':
    case 'source':
      return typeof value === 'string' ? undefined : 'is not a string';
    case 'bin':
      return value instanceof Uint8Array ? undefined : 'is not bytes';
    case 'state':
      return isCheckpointState(value) ? undefined : 'is not a checkpoint state {regs: number[], eip, eflags, ...}';
  }
}

function isCheckpointState(value: unknown): value is CheckpointState {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const s = value as Record<string, unknown>;
  return (
    Array.isArray(s.regs) &&
    s.regs.every((r) => typeof r === 'number') &&
    typeof s.eip === 'number' &&
    typeof s.eflags === 'number'
  );
}
