// The one boundary between the emulated machine and the outside world. Everything a guest can
// observe that does not follow from its own instructions (time of day, TSC, serial input,
// entropy) comes through an Env, so a run under DeterministicEnv is a pure function of the image
// and options, a recorder can wrap an Env and log its answers, and a replayer is an Env that
// returns the logged answers. Nothing else in src/machine or src/cpu may read host time or
// randomness.

/** Virtual cycles per second of the emulated machine (the CPU's nominal clock). */
export const DEFAULT_CYCLES_PER_SECOND = 100_000_000;

/** Midnight 2000-01-01 UTC in Unix milliseconds: where the deterministic RTC starts. */
export const DETERMINISTIC_EPOCH_MS = Date.UTC(2000, 0, 1);

export interface Env {
  /** 'deterministic', 'live', or a wrapper's own name (for reports). */
  readonly kind: string;
  /** Virtual cycles per second; devices convert their rates (PIT, RTC, APIC timer) with it. */
  readonly cyclesPerSecond: number;
  /**
   * The time-stamp counter at virtual time `cycles` (what RDTSC returns before any
   * IA32_TIME_STAMP_COUNTER write offset). Must be non-decreasing in `cycles` across calls.
   */
  tsc(cycles: number): number;
  /**
   * Wall-clock time in Unix milliseconds at virtual time `cycles`, for the CMOS RTC. Must be
   * non-decreasing in `cycles` across calls.
   */
  wallClockMs(cycles: number): number;
  /**
   * The next byte the outside world sends to COM1 at virtual time `cycles`, consumed by this
   * call, or null when none is waiting. The UART polls it (from its tick or on an RBR/LSR read).
   */
  serialInput(cycles: number): number | null;
  /** 32 random bits (unsigned), for anything the machine must make up (e.g. a device serial). */
  entropy(): number;
  /**
   * Virtual cycles between two clockSync() questions, or Infinity: the Env never moves virtual
   * time and the machine never asks (DeterministicEnv). The machine asks at virtual time
   * `clockSyncAt`, which starts at this period and moves to (time after the answer) + period.
   */
  readonly clockSyncCycles: number;
  /**
   * How many cycles virtual time jumps forward now, at virtual time `cycles`, to keep up with
   * the outside clock (an integer >= 0). Virtual time otherwise advances only as the CPU
   * executes, so without it a live guest's timer interrupts would come at the same instruction
   * every run. Asked between instructions only, at the deterministic points above, so a
   * recorder can log the answer and a replayer give it back at the same instruction.
   */
  clockSync(cycles: number): number;
  /** Releases host resources (stdin listeners); the Env answers nothing afterwards. */
  dispose(): void;
}

export interface EnvOptions {
  cyclesPerSecond?: number;
  /** Bytes the deterministic env offers on COM1, one per serialInput call, from cycle 0. */
  serialInput?: Uint8Array;
  /** Seed of the deterministic entropy stream. */
  seed?: number;
  /** LiveEnv: virtual cycles between clock synchronisations (default: 100 us of virtual time). */
  clockSyncCycles?: number;
}

/** Every answer is a pure function of virtual time and the options. */
export class DeterministicEnv implements Env {
  readonly kind = 'deterministic';
  readonly cyclesPerSecond: number;
  /** Virtual time is the CPU's own: never moved from outside. */
  readonly clockSyncCycles = Infinity;
  private readonly input: Uint8Array;
  private inputPos = 0;
  private state: number;

  constructor(opts: EnvOptions = {}) {
    this.cyclesPerSecond = opts.cyclesPerSecond ?? DEFAULT_CYCLES_PER_SECOND;
    this.input = opts.serialInput ?? new Uint8Array(0);
    // xorshift32 must not start at 0 (it would stay there).
    this.state = (opts.seed ?? 0x2bad_b002) | 0 || 1;
  }

  /** The TSC ticks once per virtual cycle (a constant-rate TSC). */
  tsc(cycles: number): number {
    return cycles;
  }

  wallClockMs(cycles: number): number {
    return DETERMINISTIC_EPOCH_MS + Math.floor((cycles * 1000) / this.cyclesPerSecond);
  }

  serialInput(_cycles: number): number | null {
    return this.inputPos < this.input.length ? this.input[this.inputPos++]! : null;
  }

  entropy(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x;
    return x >>> 0;
  }

  clockSync(_cycles: number): number {
    return 0;
  }

  dispose(): void {}
}

/**
 * The host's clock, stdin and randomness: the only place these are read. Virtual time follows
 * the host clock: at every clock synchronisation it jumps to the host time elapsed since the
 * Env was made (scaled to cyclesPerSecond) when it has fallen behind, so device timers fire
 * after real time; it is never moved back (a CPU faster than the host clock, or one skipping
 * idle time in HLT, runs ahead), and the TSC reads the host clock at the same scale.
 */
export class LiveEnv implements Env {
  readonly kind = 'live';
  readonly cyclesPerSecond: number;
  readonly clockSyncCycles: number;
  private readonly startNs = process.hrtime.bigint();
  private readonly pending: number[] = [];
  private readonly onData = (chunk: Buffer): void => {
    for (const b of chunk) this.pending.push(b);
  };
  private stdinAttached = false;

  constructor(opts: EnvOptions = {}) {
    this.cyclesPerSecond = opts.cyclesPerSecond ?? DEFAULT_CYCLES_PER_SECOND;
    this.clockSyncCycles = opts.clockSyncCycles ?? Math.max(1, Math.round(this.cyclesPerSecond / 10_000));
  }

  /** Host nanoseconds since the env was made, scaled to the virtual clock rate. */
  private hostCycles(): number {
    const ns = Number(process.hrtime.bigint() - this.startNs);
    return Math.floor((ns * this.cyclesPerSecond) / 1e9);
  }

  tsc(_cycles: number): number {
    return this.hostCycles();
  }

  clockSync(cycles: number): number {
    return Math.max(0, this.hostCycles() - cycles);
  }

  wallClockMs(_cycles: number): number {
    return Date.now();
  }

  /** Reads stdin lazily: only a guest that polls COM1 makes the process listen to it. */
  serialInput(_cycles: number): number | null {
    if (!this.stdinAttached) {
      this.stdinAttached = true;
      process.stdin.on('data', this.onData);
      // Do not keep the process alive only for stdin.
      process.stdin.unref?.();
    }
    return this.pending.length > 0 ? this.pending.shift()! : null;
  }

  entropy(): number {
    return Math.floor(Math.random() * 0x1_0000_0000) >>> 0;
  }

  dispose(): void {
    if (!this.stdinAttached) return;
    process.stdin.off('data', this.onData);
    process.stdin.pause();
  }
}

/** The Env a machine option names: 'deterministic' (the default), 'live', or the caller's own. */
export function envFor(choice: 'deterministic' | 'live' | Env | undefined): Env {
  if (choice === 'live') return new LiveEnv();
  return choice === undefined || choice === 'deterministic' ? new DeterministicEnv() : choice;
}
