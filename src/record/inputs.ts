// The nondeterminism boundary as the recorder and the replayer see it. A RecordingEnv wraps any
// Env and logs each of its answers with the exact retired-instruction count at which the machine
// asked; a ReplayEnv answers from such a log alone (it never consults a real Env) and treats a
// question the log does not hold next (another source, or the same one at another instruction
// count) as a divergence. Env.dispose() is not an input and is not logged.

import type { Env } from '../machine/env.js';
import type { InputEvent } from './format.js';

/** Where an input came from: one name per Env method that answers the guest. */
export type InputSource = 'tsc' | 'rtc' | 'serial' | 'entropy' | 'clock';

/** What an input log needs of the CPU: the exact retired-instruction count (cpu.icount). */
export interface InstructionCounter {
  readonly icount: number;
}

/** The Env facts a replay needs to rebuild the same machine (stored in the trace header's env). */
export interface EnvShape {
  kind: string;
  cyclesPerSecond: number;
  /** Env.clockSyncCycles; null for Infinity (the Env never moves virtual time). */
  clockSyncCycles: number | null;
}

export function envShape(env: Env): EnvShape {
  return {
    kind: env.kind,
    cyclesPerSecond: env.cyclesPerSecond,
    clockSyncCycles: env.clockSyncCycles === Infinity ? null : env.clockSyncCycles,
  };
}

/** Logs every answer of `inner` with the instruction count at which it was asked. */
export class RecordingEnv implements Env {
  readonly kind: string;
  readonly cyclesPerSecond: number;
  readonly clockSyncCycles: number;
  private counter: InstructionCounter | null = null;

  constructor(
    private readonly inner: Env,
    private readonly log: (e: InputEvent) => void,
  ) {
    this.kind = inner.kind;
    this.cyclesPerSecond = inner.cyclesPerSecond;
    this.clockSyncCycles = inner.clockSyncCycles;
  }

  /** The CPU whose icount keys the log (questions asked before this, at power-on, log icount 0). */
  attach(counter: InstructionCounter): void {
    this.counter = counter;
  }

  private note<T extends number | null>(source: InputSource, value: T): T {
    this.log({ kind: 'input', icount: this.counter?.icount ?? 0, source, value });
    return value;
  }

  tsc(cycles: number): number {
    return this.note('tsc', this.inner.tsc(cycles));
  }
  wallClockMs(cycles: number): number {
    return this.note('rtc', this.inner.wallClockMs(cycles));
  }
  serialInput(cycles: number): number | null {
    return this.note('serial', this.inner.serialInput(cycles));
  }
  entropy(): number {
    return this.note('entropy', this.inner.entropy());
  }
  clockSync(cycles: number): number {
    return this.note('clock', this.inner.clockSync(cycles));
  }
  dispose(): void {
    this.inner.dispose();
  }
}

/** A question the log does not hold next: the replayed run has left the recorded one. */
export class InputMismatch extends Error {
  override readonly name = 'InputMismatch';
  constructor(
    /** Instruction count at which the replayed machine asked. */
    readonly icount: number,
    readonly source: InputSource,
    /** What the log holds next (null: the log is exhausted). */
    readonly expected: InputEvent | null,
  ) {
    super(`replay asked for input '${source}' at instruction ${icount}, but the log holds ` +
      (expected === null ? 'no more inputs' : `'${expected.source}' at instruction ${expected.icount}`));
  }
}

/** Answers from a log of inputs alone. */
export class ReplayEnv implements Env {
  readonly kind = 'replay';
  readonly cyclesPerSecond: number;
  readonly clockSyncCycles: number;
  /** Index in `inputs` of the next answer; set it when the machine is restored to a snapshot. */
  position = 0;
  /** The first question that did not match the log (every later one fails too). */
  mismatch: InputMismatch | null = null;
  private counter: InstructionCounter | null = null;

  constructor(
    readonly inputs: readonly InputEvent[],
    shape: Pick<EnvShape, 'cyclesPerSecond' | 'clockSyncCycles'>,
  ) {
    this.cyclesPerSecond = shape.cyclesPerSecond;
    this.clockSyncCycles = shape.clockSyncCycles ?? Infinity;
  }

  attach(counter: InstructionCounter): void {
    this.counter = counter;
  }

  /** Inputs the log still holds past `position`. */
  get remaining(): number {
    return this.inputs.length - this.position;
  }

  /** Throws the mismatch (also out of Machine.run, which then stops with stop 'error'). */
  private answer(source: InputSource): number | null {
    const icount = this.counter?.icount ?? 0;
    const e = this.inputs[this.position];
    if (this.mismatch === null && e !== undefined && e.source === source && e.icount === icount) {
      this.position++;
      return e.value;
    }
    this.mismatch ??= new InputMismatch(icount, source, e ?? null);
    throw this.mismatch;
  }

  tsc(_cycles: number): number {
    return this.answer('tsc') ?? 0;
  }
  wallClockMs(_cycles: number): number {
    return this.answer('rtc') ?? 0;
  }
  serialInput(_cycles: number): number | null {
    return this.answer('serial');
  }
  entropy(): number {
    return this.answer('entropy') ?? 0;
  }
  clockSync(_cycles: number): number {
    return this.answer('clock') ?? 0;
  }
  dispose(): void {}
}
