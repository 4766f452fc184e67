// The machine: memory, port bus, devices and the CPU, and the loop that runs them. Virtual time
// is cpu.cycles; the loop runs the CPU in slices that end at the earliest device deadline, ticks
// the devices that are due, and skips idle time while the CPU is halted waiting for an interrupt.

import { Cpu } from '../cpu/cpu.js';
import type { CreateDevices, Device, DeviceStop, InterruptController, MachineContext } from './device.js';
import { createDevices as defaultDevices } from './devices/index.js';
import { envFor, type Env } from './env.js';
import { UserError } from './errors.js';
import { IoBus } from './iobus.js';
import { loadImage, type LoadOptions, type LoaderKind } from './loaders/index.js';
import { PhysicalMemory } from './memory.js';
import { restoreSnapshot, takeSnapshot, type MachineSnapshot } from './snapshot.js';

/**
 * Why a run ended. hlt: HLT with IF=0, or with nothing left that could raise an interrupt (no
 * device deadline, or IDLE_LIMIT_SECONDS of virtual time halted without an interrupt);
 * shutdown: triple fault (or another shutdown condition); exit: isa-debug-exit (port 0xF4);
 * poweroff: the Bochs shutdown port; budget: the instruction limit was reached exactly;
 * error: an internal error of trapdiff (a bug), message in `error`.
 */
export type StopKind = 'hlt' | 'shutdown' | 'exit' | 'poweroff' | 'budget' | 'livelock' | 'error';

export interface RunResult {
  stop: StopKind;
  /** Instructions retired during this run() call. */
  instructions: number;
  /** POST codes written (ports 0x80/0x190), in order; the first MAX_POST_CODES are kept. */
  postCodes: number[];
  /** Everything written to port 0xE9 since the machine was made, as Latin-1 text. */
  debugOutput: string;
  /** Everything COM1 transmitted since the machine was made, as Latin-1 text. */
  serialOutput: string;
  /** The guest's exit status for stop 'exit' ((value << 1) | 1), 0 for 'poweroff', else null. */
  exitCode: number | null;
  /** Host time of the run (for the report only: it never reaches the guest). */
  seconds: number;
  mips: number;
  error?: string;
}

export interface Progress {
  instructions: number;
  seconds: number;
  mips: number;
}

export interface RunOptions {
  /** Instruction budget of this run (default: unlimited). */
  maxInsns?: number;
  /** Called about once a second of host time. */
  onProgress?: (p: Progress) => void;
}

export interface MachineOptions {
  /** RAM size in MiB (default 64). */
  memMiB?: number;
  /** 'deterministic' (default), 'live', or an Env of the caller's (a recorder or replayer). */
  env?: 'deterministic' | 'live' | Env;
  /** Streams the guest's output as it comes (in addition to the run result's copies). */
  onDebugOutput?: (byte: number) => void;
  onSerialOutput?: (com: number, byte: number) => void;
  /** The device set (default: the PC devices of src/machine/devices). */
  createDevices?: CreateDevices;
  /**
   * Offer VT-x (CPUID.1:ECX.VMX, CR4.VMXE, the VMX MSRs): on by default, as the T2400 has it
   * (DEFAULT_VMX); false gives the same CPU without VMX (docs/VMX.md).
   */
  vmx?: boolean;
}

export const DEFAULT_MEM_MIB = 64;
export const DEFAULT_VMX = true;
export const MAX_MEM_MIB = 3072;
export const MAX_POST_CODES = 65536;
/** Longest CPU slice in cycles: bounds how late a progress report or stop request is seen. */
const SLICE_CYCLES = 1 << 22;
/**
 * A CPU halted with IF=1 this long in virtual time without being woken counts as stopped: its
 * timers still tick, but nothing it has unmasked fires (a guest waiting longer is taken as stuck).
 */
export const IDLE_LIMIT_SECONDS = 60;
/**
 * Exceptions delivered in a row without one instruction retiring after which the run stops as
 * "livelock" (an exception handler that faults at once, forever): architecturally a loop with
 * no end, which would otherwise never reach an instruction budget.
 */
export const LIVELOCK_FAULTS = 100_000;
/** Bound on re-reading deadlines in one go, so a device that keeps moving them cannot hang the loop. */
const MAX_TICK_PASSES = 16;

/** Output bytes collected as they come, in a buffer that doubles as it fills. */
class ByteLog {
  private buf = new Uint8Array(256);
  private n = 0;
  push(byte: number): void {
    if (this.n === this.buf.length) {
      const bigger = new Uint8Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.n++] = byte;
  }
  /** Everything so far as Latin-1 text (one character per byte). */
  text(): string {
    return Buffer.from(this.buf.buffer, 0, this.n).toString('latin1');
  }
}

export class Machine {
  readonly mem: PhysicalMemory;
  readonly io = new IoBus();
  readonly cpu: Cpu;
  readonly env: Env;
  readonly devices: readonly Device[];
  private readonly intc: InterruptController;
  /** Devices with a nextDeadline, the only ones the loop polls. */
  private readonly timed: Device[];
  private readonly debugLog = new ByteLog();
  private readonly serialLog = new ByteLog();
  private postCodes: number[] = [];
  private stopKind: DeviceStop | null = null;
  private exitCode = 0;
  private resetPending = false;
  /** A device said its deadline moved (ctx.deadlineChanged) since deadlines were last read. */
  private deadlinesMoved = false;
  /**
   * Virtual time of the next env.clockSync() question (Infinity when the Env never moves time).
   * Machine state: snapshots carry it, so a restored run asks at the same instructions.
   */
  clockSyncAt: number;

  constructor(opts: MachineOptions = {}) {
    const memMiB = opts.memMiB ?? DEFAULT_MEM_MIB;
    if (!Number.isInteger(memMiB) || memMiB < 1 || memMiB > MAX_MEM_MIB) {
      throw new UserError(`memory size ${memMiB} MiB is not an integer from 1 to ${MAX_MEM_MIB}`);
    }
    try {
      this.mem = new PhysicalMemory(memMiB * 1024 * 1024);
    } catch (e) {
      if (e instanceof RangeError) throw new UserError(`cannot allocate ${memMiB} MiB of guest RAM on this host`);
      throw e;
    }
    this.env = envFor(opts.env);
    const period = this.env.clockSyncCycles;
    if (!(period === Infinity || (Number.isInteger(period) && period > 0))) {
      throw new RangeError(`env clock-sync period ${period} is not a positive integer or Infinity`);
    }
    this.clockSyncAt = period;
    const cpu = (this.cpu = new Cpu(this.mem, this.io));
    cpu.vmx.supported = opts.vmx ?? DEFAULT_VMX;
    const ctx: MachineContext = {
      env: this.env,
      now: () => cpu.cycles,
      raiseIrq: (line) => this.intc.setIrq(line, true),
      lowerIrq: (line) => this.intc.setIrq(line, false),
      setIntr: (level) => cpu.setIntr(level),
      nmi: () => cpu.nmi(),
      deadlineChanged: () => {
        this.deadlinesMoved = true;
        cpu.requestStop();
      },
      requestStop: (kind, exitCode = 0) => {
        if (this.stopKind !== null) return; // the first request wins
        this.stopKind = kind;
        this.exitCode = kind === 'exit' ? exitCode : 0;
        cpu.requestStop();
      },
      requestReset: () => {
        this.resetPending = true;
        cpu.requestStop();
      },
      setA20: (enabled) => this.setA20(enabled),
      debugOutput: (byte) => {
        this.debugLog.push(byte);
        opts.onDebugOutput?.(byte & 0xff);
      },
      serialOutput: (com, byte) => {
        if (com === 1) this.serialLog.push(byte);
        opts.onSerialOutput?.(com, byte & 0xff);
      },
      postCode: (value) => {
        if (this.postCodes.length < MAX_POST_CODES) this.postCodes.push(value);
      },
    };
    const set = (opts.createDevices ?? defaultDevices)(ctx);
    this.devices = set.devices;
    this.intc = set.interruptController;
    for (const d of this.devices) {
      this.io.attach(d);
      if (d.mmio) this.mem.mapMmio(d);
    }
    this.timed = this.devices.filter((d) => d.nextDeadline !== undefined);
    cpu.interruptAck = () => this.intc.acknowledge();
    const apic = set.apic;
    if (apic) cpu.onApicBaseWrite = (v) => apic.setBaseMsr(v);
    cpu.readTsc = () => BigInt(Math.floor(this.env.tsc(cpu.cycles)));
  }

  /** Loads an image into this (fresh) machine; returns the loader's description of it. */
  load(image: Uint8Array, kind: LoaderKind, opts: LoadOptions = {}): string {
    return loadImage(this, image, kind, opts);
  }

  /** The A20 gate: the CPU masks physical address bit 20 while it is disabled (outside VMX operation). */
  private setA20(enabled: boolean): void {
    this.cpu.setA20Gate(enabled);
  }

  /** System reset: the CPU's RESET state, devices' reset state, A20 on; RAM and ROM are kept. */
  private systemReset(): void {
    this.resetPending = false;
    this.cpu.reset();
    this.setA20(true);
    for (const d of this.devices) d.reset?.();
  }

  /** Lets virtual time follow the Env's outside clock (LiveEnv: the host's); see Env.clockSync. */
  private syncClock(): void {
    const jump = this.env.clockSync(this.cpu.cycles);
    if (jump > 0) this.cpu.extraCycles += Math.floor(jump);
    this.clockSyncAt = this.cpu.cycles + this.env.clockSyncCycles;
  }

  /**
   * Ticks every device whose deadline has come and returns the earliest deadline after now
   * (a device that does not move its deadline past now is asked again one cycle later). A tick
   * can move another device's deadline (ctx.deadlineChanged): then all are read again.
   */
  private tickDevices(): number {
    const now = this.cpu.cycles;
    let next: number;
    let passes = 0;
    do {
      this.deadlinesMoved = false;
      next = Infinity;
      for (const d of this.timed) {
        let due = d.nextDeadline!();
        if (due <= now) {
          d.tick!(now);
          due = Math.max(d.nextDeadline!(), now + 1);
        }
        if (due < next) next = due;
      }
    } while (this.deadlinesMoved && ++passes < MAX_TICK_PASSES);
    return next;
  }

  run(opts: RunOptions = {}): RunResult {
    const cpu = this.cpu;
    const startIcount = cpu.icount;
    const budgetEnd = startIcount + (opts.maxInsns ?? Infinity);
    // Host time for the report and progress only; nothing of it reaches the guest.
    const t0 = performance.now();
    let nextProgress = t0 + 1000;
    let stop: StopKind | null = null;
    let error: string | undefined;
    this.stopKind = null;
    const requested = (): DeviceStop | null => this.stopKind; // read afresh: devices set it
    const idleLimit = IDLE_LIMIT_SECONDS * this.env.cyclesPerSecond;
    let idleSince = -1;
    try {
      while (stop === null) {
        if (this.resetPending) this.systemReset();
        if (cpu.cycles >= this.clockSyncAt) this.syncClock();
        const deadline = this.tickDevices();
        const asked = requested();
        if (asked !== null) stop = asked;
        else if (cpu.shutdown) stop = 'shutdown';
        else if (cpu.icount >= budgetEnd) stop = 'budget';
        else if (cpu.faultStreak >= LIVELOCK_FAULTS) stop = 'livelock';
        else if (cpu.halted && !cpu.canWake()) {
          // Only a device deadline can wake a halted CPU, and only if an interrupt can (IF = 1, or
          // a VMX guest's "external-interrupt exiting"); or a guest's VMX-preemption timer.
          if (idleSince < 0) idleSince = cpu.cycles;
          const wake = Math.min(cpu.interruptsCanWake() ? deadline : Infinity, cpu.wakeCycle());
          if (wake === Infinity || cpu.cycles - idleSince > idleLimit) stop = 'hlt';
          else cpu.extraCycles += Math.min(wake, this.clockSyncAt) - cpu.cycles;
        } else {
          idleSince = -1;
          cpu.run(Math.min(deadline, this.clockSyncAt, cpu.cycles + Math.min(budgetEnd - cpu.icount, SLICE_CYCLES)));
          if (opts.onProgress && performance.now() >= nextProgress) {
            const seconds = (performance.now() - t0) / 1000;
            const instructions = cpu.icount - startIcount;
            opts.onProgress({ instructions, seconds, mips: instructions / seconds / 1e6 });
            nextProgress += 1000;
          }
        }
      }
    } catch (e) {
      stop = 'error';
      error = e instanceof Error ? e.message : String(e);
    }
    const seconds = (performance.now() - t0) / 1000;
    const instructions = cpu.icount - startIcount;
    return {
      stop,
      instructions,
      postCodes: this.postCodes.slice(),
      debugOutput: this.debugLog.text(),
      serialOutput: this.serialLog.text(),
      exitCode: stop === 'exit' || stop === 'poweroff' ? this.exitCode : null,
      seconds,
      mips: seconds > 0 ? instructions / seconds / 1e6 : 0,
      ...(error === undefined ? {} : { error }),
    };
  }

  /** Captures the whole machine (CPU, RAM by copy-on-write, devices); see snapshot.ts. */
  snapshot(): MachineSnapshot {
    return takeSnapshot(this);
  }

  restore(s: MachineSnapshot): void {
    restoreSnapshot(this, s);
  }
}

export function createMachine(opts: MachineOptions = {}): Machine {
  return new Machine(opts);
}
