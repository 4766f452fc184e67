// Time travel through a trace: the machine state at any instruction count N (the nearest
// stored snapshot at or before N, then re-execution from the log to exactly N), and stepping
// backwards from a point. A step back re-executes from the snapshot too; to keep repeated steps
// cheap it records the states of a whole window of instructions before the point in one
// forward pass and answers the next steps from that cache.
//
// "The state at N" is the machine after N instructions have retired, as a fresh run stopped by
// the budget Machine.run({ maxInsns: N }) leaves it.

import type { Machine } from '../machine/machine.js';
import type { TraceFile } from './format.js';
import { ReplayMachine, type ReplayMachineOptions } from './replay-machine.js';
import { stateHash, type ArchState } from './state.js';
import { indexTrace, type IndexedTrace } from './trace-index.js';

export interface TravelPoint {
  icount: number;
  state: ArchState;
  /** stateHash(state): equal hashes, equal machines (architectural state, RAM, devices). */
  hash: string;
}

export interface TimeTravelOptions extends Pick<ReplayMachineOptions, 'configure'> {
  /** Instructions whose states one step back computes ahead (default 64). */
  backWindow?: number;
}

/** States kept for stepping back before the cache is cleared. */
const CACHE_LIMIT = 4096;

export class TimeTravel {
  readonly trace: IndexedTrace;
  private readonly rm: ReplayMachine;
  private readonly cache = new Map<number, TravelPoint>();
  private readonly backWindow: number;
  /** The instruction count of the last point asked for. */
  position = 0;
  /** The last instruction count the trace reaches. */
  readonly last: number;

  constructor(trace: TraceFile | IndexedTrace, image: Uint8Array, opts: TimeTravelOptions = {}) {
    this.trace = 'inputs' in trace ? trace : indexTrace(trace);
    this.rm = new ReplayMachine(this.trace, image, opts.configure ? { configure: opts.configure } : {});
    this.backWindow = Math.max(1, opts.backWindow ?? 64);
    this.last = this.trace.end?.icount ?? this.trace.checkpoints.at(-1)?.event.icount ?? 0;
  }

  /**
   * The machine standing exactly at instruction count n (valid until the next call): run on
   * from where it stands when no stored snapshot lies between, else from the nearest snapshot.
   */
  machineAt(n: number): Machine {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.last) {
      throw new RangeError(`instruction ${n} is outside the trace (0 to ${this.last})`);
    }
    const k = this.rm.snapshotBefore(n);
    const snapAt = this.trace.snapshots[k]!.event.icount;
    if (this.rm.icount > n || this.rm.icount < snapAt) this.rm.seekSnapshot(k);
    const r = this.rm.runTo(n);
    if (this.rm.icount !== n) throw new Error(`replay stopped (${r.stop}) at instruction ${this.rm.icount} before ${n}: ${r.error ?? this.rm.logMismatch()?.message ?? 'the trace does not replay'}`);
    this.position = n;
    return this.rm.machine;
  }

  /** The state at instruction count n. */
  at(n: number): TravelPoint {
    const hit = this.cache.get(n);
    if (hit !== undefined) {
      this.position = n;
      return hit;
    }
    this.machineAt(n);
    return this.remember(n);
  }

  private remember(n: number): TravelPoint {
    const state = this.rm.state.capture();
    const p = { icount: n, state, hash: stateHash(state) };
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(n, p);
    return p;
  }

  /** The state `steps` instructions before the current position (filling the back window). */
  back(steps = 1): TravelPoint {
    const n = this.position - steps;
    if (n < 0) throw new RangeError(`cannot step back ${steps} from instruction ${this.position}`);
    if (!this.cache.has(n)) {
      const from = Math.max(0, n - this.backWindow + 1);
      this.machineAt(from);
      this.remember(from);
      for (let i = from + 1; i <= n; i++) {
        this.machineAt(i);
        this.remember(i);
      }
    }
    return this.at(n);
  }

  /** The state `steps` instructions after the current position. */
  forward(steps = 1): TravelPoint {
    return this.at(this.position + steps);
  }

  dispose(): void {
    this.rm.dispose();
  }
}

/** The state at instruction count n of a trace (one-off; use TimeTravel to move around). */
export function stateAt(trace: TraceFile | IndexedTrace, image: Uint8Array, n: number): TravelPoint {
  const tt = new TimeTravel(trace, image);
  try {
    return tt.at(n);
  } finally {
    tt.dispose();
  }
}
