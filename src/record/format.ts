// The trace file format: a versioned header, then events in CRC-checked chunks, then a footer.
// docs/TRACE-FORMAT.md is the byte-level specification; this file and event-codec.ts implement
// it. The format knows nothing of the Machine: R2's recorder fills the header and the events.
//
// API (what the recorder and replayer import):
//   TRACE_FORMAT_VERSION, TRAPDIFF_VERSION
//   TraceHeader, TraceEvent (+ per-kind aliases), CheckpointState, TraceFooter, TraceFile
//   TraceWriter.create(path, header, opts?) -> append(e) / flush() / close(end) / abort()
//   readTrace(pathOrBytes): TraceFile           (everything in memory)
//   TraceReader.open(pathOrBytes) -> header, events() generator, then complete/stoppedAt/footer
//   TraceError (errors.ts)

export { TraceError } from './errors.js';

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
  /** ... or once its events are estimated to take this many bytes (default 64 KiB). */
  chunkBytes?: number;
  /** fsync the file after every chunk (default false: a process crash loses nothing written). */
  fsync?: boolean;
}
