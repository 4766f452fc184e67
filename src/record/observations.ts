// Observations: what the CPU reports through cpu.events (exceptions and interrupts delivered,
// I/O writes, halts, shutdown, VM exits) as trace events keyed by the instruction count. They
// are logged for analysis and compared on replay; they are not inputs (a replay never needs
// them to reproduce a run).

import type { Cpu, CpuEvents } from '../cpu/cpu.js';
import { kindOfTag, rowEvent, TAG } from './event-codec.js';
import type {
  ExceptionEvent, HaltEvent, InterruptEvent, IoWriteEvent, ShutdownEvent, TraceEvent, VmExitEvent,
} from './format.js';

export type ObservationEvent = ExceptionEvent | InterruptEvent | IoWriteEvent | HaltEvent | ShutdownEvent | VmExitEvent;

/** The observation kinds' tags. */
export const OBSERVATION_TAGS: ReadonlySet<number> = new Set(
  (['exception', 'interrupt', 'io-write', 'halt', 'shutdown', 'vm-exit'] as const).map((k) => TAG[k]));

export function isObservation(e: TraceEvent): e is ObservationEvent {
  return OBSERVATION_TAGS.has(TAG[e.kind]);
}

/**
 * Where observations go: one call per observation with its fields, no event object (a guest
 * that faults every few instructions logs millions: an object each cost more than the rest).
 */
export interface ObservationLog {
  exception(icount: number, vector: number, errorCode: number | null, eip: number): void;
  interrupt(icount: number, vector: number, source: number): void;
  ioWrite(icount: number, port: number, size: number, value: number): void;
  halt(icount: number): void;
  shutdown(icount: number): void;
  vmExit(icount: number, reason: number, qualification: number): void;
}

/** CPU event hooks that pass each observation, keyed by the instruction count, to `log`. */
export function observe(cpu: Cpu, log: ObservationLog): CpuEvents {
  return {
    onException: (vector, errorCode, hasError, eip) => log.exception(cpu.icount, vector, hasError ? errorCode : null, eip),
    onInterrupt: (vector, source) => log.interrupt(cpu.icount, vector, source),
    onIo: (port, size, value, write) => {
      if (write) log.ioWrite(cpu.icount, port, size, value);
    },
    onHalt: () => log.halt(cpu.icount),
    onShutdown: () => log.shutdown(cpu.icount),
    onVmExit: (reason, qualification) => log.vmExit(cpu.icount, reason, qualification),
  };
}

/** An ObservationLog that makes each observation an event for `emit` (where objects are kept anyway). */
export abstract class ObservationEvents implements ObservationLog {
  protected abstract emit(e: ObservationEvent): void;
  exception(icount: number, vector: number, errorCode: number | null, eip: number): void {
    this.emit({ kind: 'exception', icount, vector, errorCode, eip });
  }
  interrupt(icount: number, vector: number, source: number): void {
    this.emit({ kind: 'interrupt', icount, vector, source });
  }
  ioWrite(icount: number, port: number, size: number, value: number): void {
    this.emit({ kind: 'io-write', icount, port, size, value });
  }
  halt(icount: number): void {
    this.emit({ kind: 'halt', icount });
  }
  shutdown(icount: number): void {
    this.emit({ kind: 'shutdown', icount });
  }
  vmExit(icount: number, reason: number, qualification: number): void {
    this.emit({ kind: 'vm-exit', icount, reason, qualification });
  }
}

/** The most fields an observation has (exception, io-write). */
const MAX_FIELDS = 3;

/**
 * The recorded observations as typed columns (kind tag, icount, fields; a null field is NaN):
 * a long trace holds millions, and an object each would cost a replay more than comparing them.
 * Rows are appended as decoded (fields in event-codec's KINDS order); event(i) makes the object
 * of one, for a report.
 */
export class ObservationColumns {
  length = 0;
  private tags = new Uint8Array(1024);
  private icounts = new Float64Array(1024);
  private fields = new Float64Array(1024 * MAX_FIELDS);

  /** Appends a row of an observation kind: `row` is [tag, delta, ...fields] (the delta is ignored). */
  push(tag: number, icount: number, row: readonly unknown[]): void {
    if (this.length === this.tags.length) this.grow();
    const i = this.length++, at = i * MAX_FIELDS;
    this.tags[i] = tag;
    this.icounts[i] = icount;
    for (let j = 2; j < row.length; j++) this.fields[at + j - 2] = (row[j] as number | null) ?? NaN;
  }

  /** Appends an observation event. */
  pushEvent(e: ObservationEvent): void {
    const spec = kindOfTag(TAG[e.kind])!;
    this.push(spec.tag, e.icount, [spec.tag, 0, ...spec.fields.map((f) => (e as unknown as Record<string, number | null>)[f])]);
  }

  tag(i: number): number {
    return this.tags[i]!;
  }
  icount(i: number): number {
    return this.icounts[i]!;
  }
  /** Field j of row i (NaN for null). */
  field(i: number, j: number): number {
    return this.fields[i * MAX_FIELDS + j]!;
  }

  /** Row i as an event (null past the end). */
  event(i: number): ObservationEvent | null {
    if (i >= this.length) return null;
    const spec = kindOfTag(this.tags[i]!)!;
    const row: unknown[] = [spec.tag, 0];
    for (let j = 0; j < spec.fields.length; j++) {
      const v = this.field(i, j);
      row.push(Number.isNaN(v) ? null : v);
    }
    return rowEvent(spec, row, this.icounts[i]!) as ObservationEvent;
  }

  private grow(): void {
    const n = this.tags.length * 2;
    const tags = new Uint8Array(n), icounts = new Float64Array(n), fields = new Float64Array(n * MAX_FIELDS);
    tags.set(this.tags);
    icounts.set(this.icounts);
    fields.set(this.fields);
    this.tags = tags;
    this.icounts = icounts;
    this.fields = fields;
  }
}

/** The first observation that differs from the recorded stream. */
export interface ObservationMismatch {
  icount: number;
  expected: ObservationEvent | null;
  got: ObservationEvent;
}

/** Equal, a null field (NaN) equal to null. */
const same = (x: number, y: number): boolean => x === y || (x !== x && y !== y);

/**
 * Compares each observation of a replayed run with the next recorded one, field by field, in
 * the recorded columns: an event object is made only for the first that differs (the report's).
 */
export class ObservationCheck extends ObservationEvents {
  /** Index of the next recorded observation. */
  position = 0;
  /** The first mismatch (every later observation is ignored). */
  mismatch: ObservationMismatch | null = null;

  constructor(readonly expected: ObservationColumns) {
    super();
  }

  /** Recorded observations not yet seen again. */
  get remaining(): number {
    return this.expected.length - this.position;
  }

  /**
   * Whether the next recorded observation is a `tag` at `icount` with fields a, b, c (NaN for
   * null; unused fields not compared), nothing having differed yet.
   */
  private matches(tag: number, icount: number, fields: number, a = 0, b = 0, c = 0): boolean {
    const x = this.expected, i = this.position;
    if (this.mismatch !== null || i >= x.length || x.tag(i) !== tag || x.icount(i) !== icount) return false;
    return (fields < 1 || same(x.field(i, 0), a)) && (fields < 2 || same(x.field(i, 1), b)) && (fields < 3 || same(x.field(i, 2), c));
  }

  override exception(icount: number, vector: number, errorCode: number | null, eip: number): void {
    if (this.matches(TAG.exception, icount, 3, vector, errorCode ?? NaN, eip)) this.position++;
    else super.exception(icount, vector, errorCode, eip);
  }
  override interrupt(icount: number, vector: number, source: number): void {
    if (this.matches(TAG.interrupt, icount, 2, vector, source)) this.position++;
    else super.interrupt(icount, vector, source);
  }
  override ioWrite(icount: number, port: number, size: number, value: number): void {
    if (this.matches(TAG['io-write'], icount, 3, port, size, value)) this.position++;
    else super.ioWrite(icount, port, size, value);
  }
  override halt(icount: number): void {
    if (this.matches(TAG.halt, icount, 0)) this.position++;
    else super.halt(icount);
  }
  override shutdown(icount: number): void {
    if (this.matches(TAG.shutdown, icount, 0)) this.position++;
    else super.shutdown(icount);
  }
  override vmExit(icount: number, reason: number, qualification: number): void {
    if (this.matches(TAG['vm-exit'], icount, 2, reason, qualification)) this.position++;
    else super.vmExit(icount, reason, qualification);
  }

  /** Only a differing observation gets here (super's calls): the first is the mismatch. */
  protected emit(got: ObservationEvent): void {
    this.mismatch ??= { icount: got.icount, expected: this.expected.event(this.position), got };
  }
}

/** A number as hex (int32 patterns as unsigned), else as is. */
const show = (v: unknown): string =>
  typeof v === 'number' && Number.isInteger(v) ? `0x${(v < 0 && v >= -0x8000_0000 ? v >>> 0 : v).toString(16)}` : String(v);

/** One line for a report: the event's kind and fields. */
export function describeEvent(e: TraceEvent | null): string {
  if (e === null) return 'nothing';
  const { kind, icount, ...rest } = e as TraceEvent & Record<string, unknown>;
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${show(v)}`);
  return `${kind} at instruction ${icount}${fields.length > 0 ? ` (${fields.join(' ')})` : ''}`;
}
