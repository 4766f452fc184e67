// Observations: what the CPU reports through cpu.events (exceptions and interrupts delivered,
// I/O writes, halts, shutdown, VM exits) as trace events keyed by the instruction count. They
// are logged for analysis and compared on replay; they are not inputs (a replay never needs
// them to reproduce a run).

import type { Cpu, CpuEvents } from '../cpu/cpu.js';
import type {
  ExceptionEvent, HaltEvent, InterruptEvent, IoWriteEvent, ShutdownEvent, TraceEvent, VmExitEvent,
} from './format.js';

export type ObservationEvent = ExceptionEvent | InterruptEvent | IoWriteEvent | HaltEvent | ShutdownEvent | VmExitEvent;

const KINDS: ReadonlySet<string> = new Set(['exception', 'interrupt', 'io-write', 'halt', 'shutdown', 'vm-exit']);

export function isObservation(e: TraceEvent): e is ObservationEvent {
  return KINDS.has(e.kind);
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

/** The first observation that differs from the recorded stream. */
export interface ObservationMismatch {
  icount: number;
  expected: ObservationEvent | null;
  got: ObservationEvent;
}

/**
 * Compares each observation of a replayed run with the next recorded one, field by field: an
 * event object is made only for the first that differs (the report's).
 */
export class ObservationCheck extends ObservationEvents {
  /** Index of the next recorded observation. */
  position = 0;
  /** The first mismatch (every later observation is ignored). */
  mismatch: ObservationMismatch | null = null;

  constructor(readonly expected: readonly ObservationEvent[]) {
    super();
  }

  /** Recorded observations not yet seen again. */
  get remaining(): number {
    return this.expected.length - this.position;
  }

  /** The next recorded observation when it is a `kind` at `icount` and nothing differed yet. */
  private next<K extends ObservationEvent['kind']>(kind: K, icount: number): Extract<ObservationEvent, { kind: K }> | undefined {
    const e = this.expected[this.position];
    return this.mismatch === null && e !== undefined && e.kind === kind && e.icount === icount
      ? (e as Extract<ObservationEvent, { kind: K }>) : undefined;
  }

  override exception(icount: number, vector: number, errorCode: number | null, eip: number): void {
    const e = this.next('exception', icount);
    if (e !== undefined && e.vector === vector && e.errorCode === errorCode && e.eip === eip) this.position++;
    else super.exception(icount, vector, errorCode, eip);
  }
  override interrupt(icount: number, vector: number, source: number): void {
    const e = this.next('interrupt', icount);
    if (e !== undefined && e.vector === vector && e.source === source) this.position++;
    else super.interrupt(icount, vector, source);
  }
  override ioWrite(icount: number, port: number, size: number, value: number): void {
    const e = this.next('io-write', icount);
    if (e !== undefined && e.port === port && e.size === size && e.value === value) this.position++;
    else super.ioWrite(icount, port, size, value);
  }
  override halt(icount: number): void {
    if (this.next('halt', icount) !== undefined) this.position++;
    else super.halt(icount);
  }
  override shutdown(icount: number): void {
    if (this.next('shutdown', icount) !== undefined) this.position++;
    else super.shutdown(icount);
  }
  override vmExit(icount: number, reason: number, qualification: number): void {
    const e = this.next('vm-exit', icount);
    if (e !== undefined && e.reason === reason && e.qualification === qualification) this.position++;
    else super.vmExit(icount, reason, qualification);
  }

  /** Only a differing observation gets here (super's calls): the first is the mismatch. */
  protected emit(got: ObservationEvent): void {
    this.mismatch ??= { icount: got.icount, expected: this.expected[this.position] ?? null, got };
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
