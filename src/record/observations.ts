// Observations: what the CPU reports through cpu.events (exceptions and interrupts delivered,
// I/O writes, halts, shutdown, VM exits) as trace events keyed by the instruction count. They
// are logged for analysis and compared on replay; they are not inputs (a replay never needs
// them to reproduce a run).

import type { Cpu, CpuEvents } from '../cpu/cpu.js';
import { KINDS as EVENT_KINDS } from './event-codec.js';
import type {
  ExceptionEvent, HaltEvent, InterruptEvent, IoWriteEvent, ShutdownEvent, TraceEvent, VmExitEvent,
} from './format.js';

export type ObservationEvent = ExceptionEvent | InterruptEvent | IoWriteEvent | HaltEvent | ShutdownEvent | VmExitEvent;

const KINDS: ReadonlySet<string> = new Set(['exception', 'interrupt', 'io-write', 'halt', 'shutdown', 'vm-exit']);

export function isObservation(e: TraceEvent): e is ObservationEvent {
  return KINDS.has(e.kind);
}

/** CPU event hooks that turn each observation into a trace event for `emit`. */
export function observe(cpu: Cpu, emit: (e: ObservationEvent) => void): CpuEvents {
  return {
    onException: (vector, errorCode, hasError, eip) =>
      emit({ kind: 'exception', icount: cpu.icount, vector, errorCode: hasError ? errorCode : null, eip }),
    onInterrupt: (vector, source) => emit({ kind: 'interrupt', icount: cpu.icount, vector, source }),
    onIo: (port, size, value, write) => {
      if (write) emit({ kind: 'io-write', icount: cpu.icount, port, size, value });
    },
    onHalt: () => emit({ kind: 'halt', icount: cpu.icount }),
    onShutdown: () => emit({ kind: 'shutdown', icount: cpu.icount }),
    onVmExit: (reason, qualification) => emit({ kind: 'vm-exit', icount: cpu.icount, reason, qualification }),
  };
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

const FIELDS: ReadonlyMap<string, readonly string[]> = new Map(EVENT_KINDS.map((k) => [k.kind, k.fields]));

/** Same kind, instruction count and fields (no allocation: replay compares every observation). */
export function sameEvent(a: TraceEvent, b: TraceEvent): boolean {
  if (a.kind !== b.kind || a.icount !== b.icount) return false;
  const ra = a as unknown as Record<string, unknown>, rb = b as unknown as Record<string, unknown>;
  for (const f of FIELDS.get(a.kind)!) if (ra[f] !== rb[f]) return false;
  return true;
}
