// A machine that re-executes one trace: built from the header and the image, fed by a ReplayEnv
// over the trace's input log, able to jump to any stored snapshot, with a StateTracker for
// checkpoint states and (optionally) a check of its observations against the recorded ones.
// The replayer, time travel, bisection and the lockstep search all drive one of these.

import type { Machine, RunResult } from '../machine/machine.js';
import type { MachineSnapshot } from '../machine/snapshot.js';
import { ReplayEnv } from './inputs.js';
import { describeEvent, observe, ObservationCheck } from './observations.js';
import {
  applyMachineState, applyPages, buildMachine, checkImage, decodeSnapshot, type RebuildOptions, type StoredSnapshot,
} from './rebuild.js';
import { StateTracker } from './state.js';
import type { IndexedTrace } from './trace-index.js';

export interface ReplayMachineOptions extends RebuildOptions {
  /** Called on every machine built (e.g. a test's changed instruction semantic on cpu.onDecode). */
  configure?: (m: Machine) => void;
  /** Compare each observation with the recorded one (logMismatch() reports the first that differs). */
  checkObservations?: boolean;
}

/** The instruction count of questions asked while a machine is being built. */
const POWER_ON = { icount: 0 };

export interface ReplayMark {
  snap: MachineSnapshot;
  inputs: number;
  observations: number;
}

export class ReplayMachine {
  private m!: Machine;
  private tracker!: StateTracker;
  readonly env: ReplayEnv;
  /** The replayed observations against the recorded ones. */
  private readonly observations: ObservationCheck;
  /** The copy-on-write baseline at stored snapshot `baseIndex` (rewinding there costs little). */
  private base: { index: number; snap: MachineSnapshot; inputs: number; observations: number } | null = null;
  /** The machine is as build() left it (nothing run, restored or applied since, nor handed out). */
  private pristine = false;
  private readonly decoded: (StoredSnapshot | null)[];

  constructor(
    readonly trace: IndexedTrace,
    private readonly image: Uint8Array,
    private readonly opts: ReplayMachineOptions = {},
  ) {
    checkImage(trace.header.machine, image);
    this.env = new ReplayEnv(trace.inputs, trace.env);
    this.observations = new ObservationCheck(trace.observations);
    this.decoded = trace.snapshots.map(() => null);
    this.build();
  }

  get machine(): Machine {
    this.pristine = false; // the caller may run it
    return this.m;
  }
  get state(): StateTracker {
    return this.tracker;
  }
  get icount(): number {
    return this.m.cpu.icount;
  }

  /** A fresh machine from the image, the log at its start. */
  private build(): void {
    this.tracker?.dispose();
    this.env.position = 0;
    this.env.mismatch = null;
    this.env.attach(POWER_ON); // the devices' power-on questions come before the new CPU exists
    this.m = buildMachine(this.trace.header.machine, this.image, this.env, this.opts);
    this.opts.configure?.(this.m);
    if (this.opts.checkObservations) this.m.cpu.events = observe(this.m.cpu, this.observations);
    this.observations.position = 0;
    this.observations.mismatch = null;
    this.base = null;
    this.tracker = new StateTracker(this.m, true);
    this.pristine = true;
  }

  /** Recorded observations not yet seen again. */
  get observationsLeft(): number {
    return this.observations.remaining;
  }

  private snapshot(k: number): StoredSnapshot {
    return (this.decoded[k] ??= decodeSnapshot(this.trace.snapshots[k]!.event.data));
  }

  /**
   * Puts the machine at stored snapshot k: a copy-on-write rewind when k is the current
   * baseline; else snapshots applied (and the result made the baseline): those after the
   * baseline when it lies before k (rewound to it first), all of 0..k on a machine as built
   * (built afresh unless it still is one). Building costs the most: a new machine and a hash
   * of all its RAM.
   */
  seekSnapshot(k: number): void {
    const at = this.trace.snapshots[k];
    if (at === undefined) throw new RangeError(`no stored snapshot ${k}`);
    if (this.base?.index === k) {
      this.m.restore(this.base.snap);
    } else {
      let from = 0;
      if (this.base !== null && this.base.index < k) {
        this.m.restore(this.base.snap);
        from = this.base.index + 1;
      } else if (!this.pristine) {
        this.build();
      }
      for (let j = from; j <= k; j++) applyPages(this.m, this.snapshot(j));
      applyMachineState(this.m, this.snapshot(k));
      this.base = { index: k, snap: this.m.snapshot(), inputs: at.inputs, observations: at.observations };
    }
    this.env.position = at.inputs;
    this.env.mismatch = null;
    this.observations.position = at.observations;
    this.observations.mismatch = null;
    this.pristine = false;
  }

  /** Index of the last stored snapshot at or before instruction n. */
  snapshotBefore(n: number): number {
    let k = 0;
    while (k + 1 < this.trace.snapshots.length && this.trace.snapshots[k + 1]!.event.icount <= n) k++;
    return k;
  }

  /**
   * Runs until instruction count n exactly (or an earlier stop). With `pastEnd`, one instruction
   * more is allowed, so that a recorded stop other than 'budget' at n (HLT, which the run loop
   * sees only after the budget) is reproduced as such.
   */
  runTo(n: number, pastEnd = false): RunResult {
    this.pristine = false;
    return this.m.run({ maxInsns: Math.max(0, n - this.m.cpu.icount) + (pastEnd ? 1 : 0) });
  }

  /** Why the replay left the log, if it did: an input or observation mismatch (one line). */
  logMismatch(): { icount: number; message: string } | null {
    const inp = this.env.mismatch, obs = this.observations.mismatch;
    if (inp !== null && (obs === null || inp.icount <= obs.icount)) return { icount: inp.icount, message: inp.message };
    if (obs !== null) {
      return { icount: obs.icount, message: `replay observed ${describeEvent(obs.got)}; the trace holds ${describeEvent(obs.expected)}` };
    }
    return null;
  }

  /** A copy-on-write mark of the machine and its log positions (it replaces the snapshot baseline). */
  mark(): ReplayMark {
    this.base = null;
    return { snap: this.m.snapshot(), inputs: this.env.position, observations: this.observations.position };
  }

  /** Back to `mark` (the latest one taken). */
  rewind(mark: ReplayMark): void {
    this.pristine = false;
    this.m.restore(mark.snap);
    this.env.position = mark.inputs;
    this.env.mismatch = null;
    this.observations.position = mark.observations;
    this.observations.mismatch = null;
  }

  dispose(): void {
    this.tracker.dispose();
  }
}
