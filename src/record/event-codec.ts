// Events <-> the positional arrays stored in a chunk (docs/TRACE-FORMAT.md, "Events"). An event
// is `[tag, icountDelta, ...fields]`: a numeric kind tag instead of string keys keeps a logged
// input near a dozen bytes. One table drives both directions and the validation, so a writer
// cannot produce a row its own reader would reject.

import type { CheckpointState, TraceEvent } from './format.js';

type FieldType = 'int' | 'int?' | 'str' | 'source' | 'bin' | 'state';

interface KindSpec {
  readonly tag: number;
  readonly kind: TraceEvent['kind'];
  readonly fields: readonly string[];
  readonly types: readonly FieldType[];
}

/** Format 1's event kinds. Tags are permanent: a new kind takes a new tag (see the spec). */
const KINDS: readonly KindSpec[] = [
  { tag: 0, kind: 'input', fields: ['source', 'value'], types: ['source', 'int?'] },
  { tag: 1, kind: 'exception', fields: ['vector', 'errorCode', 'eip'], types: ['int', 'int?', 'int'] },
  { tag: 2, kind: 'interrupt', fields: ['vector', 'source'], types: ['int', 'int'] },
  { tag: 3, kind: 'io-write', fields: ['port', 'size', 'value'], types: ['int', 'int', 'int'] },
  { tag: 4, kind: 'halt', fields: [], types: [] },
  { tag: 5, kind: 'shutdown', fields: [], types: [] },
  { tag: 6, kind: 'vm-exit', fields: ['reason', 'qualification'], types: ['int', 'int'] },
  { tag: 7, kind: 'checkpoint', fields: ['hash', 'state'], types: ['str', 'state'] },
  { tag: 8, kind: 'snapshot', fields: ['data'], types: ['bin'] },
  { tag: 9, kind: 'end', fields: ['stop', 'exitCode'], types: ['str', 'int?'] },
];

/**
 * Tags from this value up are observations a reader may skip when it does not know them; an
 * unknown tag below it could change what a replay must feed the machine, so reading stops there.
 */
export const FIRST_SKIPPABLE_TAG = 64;

/** Input sources stored as one-byte codes; any other source is stored as its string. */
export const INPUT_SOURCE_CODES: readonly string[] = ['tsc', 'clock', 'serial', 'entropy', 'rtc'];

const SPEC_BY_KIND = new Map(KINDS.map((s) => [s.kind, s]));
const SPEC_BY_TAG = new Map(KINDS.map((s) => [s.tag, s]));
const SOURCE_CODE = new Map(INPUT_SOURCE_CODES.map((s, i) => [s, i]));

/** A row that is not a valid event; the reader reports it as a malformed chunk. */
export class MalformedEvent extends Error {}

/** Unknown tag below FIRST_SKIPPABLE_TAG: written by a newer trapdiff. */
export class UnknownEventKind extends Error {
  constructor(readonly tag: number) {
    super(`event kind ${tag} is unknown to this trapdiff (written by a newer one?)`);
  }
}

/**
 * Fills `row` (reused across chunks, so encoding allocates nothing per event) with the
 * positional form of `e`, whose icount is stored relative to `previousIcount`.
 * Throws a TypeError for an event the format cannot store.
 */
export function encodeEvent(e: TraceEvent, previousIcount: number, row: unknown[]): void {
  const spec = SPEC_BY_KIND.get(e.kind);
  if (spec === undefined) throw new TypeError(`trace event kind '${String(e.kind)}' is not in the format`);
  if (!isIcount(e.icount)) throw new TypeError(`trace event ${e.kind}: icount ${e.icount} is not a safe non-negative integer`);
  row.length = 2 + spec.fields.length;
  row[0] = spec.tag;
  row[1] = e.icount - previousIcount;
  const fields = e as unknown as Record<string, unknown>;
  for (let i = 0; i < spec.fields.length; i++) {
    const name = spec.fields[i]!;
    const value = fields[name];
    const problem = checkField(spec.types[i]!, value);
    if (problem !== undefined) throw new TypeError(`trace event ${e.kind} at icount ${e.icount}: ${name} ${problem}`);
    row[2 + i] = spec.types[i] === 'source' ? (SOURCE_CODE.get(value as string) ?? value) : value;
  }
}

/**
 * The event a decoded row stands for, or undefined for an unknown skippable kind. Throws
 * MalformedEvent or UnknownEventKind.
 */
export function decodeEvent(row: unknown, previousIcount: number): TraceEvent | undefined {
  if (!Array.isArray(row) || row.length < 2) throw new MalformedEvent('an event is not an array [tag, icount, ...]');
  const [tag, delta] = row as [unknown, unknown];
  if (typeof tag !== 'number' || !Number.isInteger(tag) || tag < 0) throw new MalformedEvent(`bad event tag ${String(tag)}`);
  const spec = SPEC_BY_TAG.get(tag);
  if (spec === undefined) {
    if (tag >= FIRST_SKIPPABLE_TAG) return undefined;
    throw new UnknownEventKind(tag);
  }
  const icount = typeof delta === 'number' ? previousIcount + delta : NaN;
  if (!isIcount(icount)) throw new MalformedEvent(`${spec.kind}: icount is not a safe non-negative integer`);
  if (row.length !== 2 + spec.fields.length) throw new MalformedEvent(`${spec.kind}: ${row.length - 2} fields, expected ${spec.fields.length}`);
  const event: Record<string, unknown> = { kind: spec.kind, icount };
  for (let i = 0; i < spec.fields.length; i++) {
    const type = spec.types[i]!;
    const value = type === 'source' ? decodeSource(row[2 + i]) : type === 'bin' ? plainBytes(row[2 + i]) : row[2 + i];
    const problem = checkField(type, value);
    if (problem !== undefined) throw new MalformedEvent(`${spec.kind}: ${spec.fields[i]} ${problem}`);
    event[spec.fields[i]!] = value;
  }
  return event as unknown as TraceEvent;
}

/** The numeric tag of an event kind (for the spec's table and the tests). */
export function eventTag(kind: TraceEvent['kind']): number {
  return SPEC_BY_KIND.get(kind)!.tag;
}

/** A rough size of the encoded event, for closing chunks near their byte budget. */
export function estimatedSize(e: TraceEvent): number {
  if (e.kind === 'snapshot') return 16 + e.data.length;
  if (e.kind === 'checkpoint') return 64 + e.hash.length + 9 * (e.state.regs?.length ?? 0);
  return 16;
}

function decodeSource(value: unknown): unknown {
  if (typeof value !== 'number') return value;
  const source = INPUT_SOURCE_CODES[value];
  if (source === undefined) throw new MalformedEvent(`input: unknown source code ${value}`);
  return source;
}

/** msgpackr decodes bin to a Buffer; events carry plain Uint8Arrays (a view, not a copy). */
function plainBytes(value: unknown): unknown {
  return value instanceof Uint8Array ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : value;
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
