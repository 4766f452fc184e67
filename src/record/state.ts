// The machine state that checkpoints hash and divergence reports compare: the architectural
// state of the CPU in a compact plain form (ArchState), a hash of RAM kept up to date
// incrementally through the memory's write watch (only pages written since the last capture
// are hashed again), and a hash of the devices' state.
//
// Left out on purpose: the TLB (a cache the guest controls with INVLPG/MOV CR3; a stale entry
// that matters changes a later access, which the hashes then see), the decoded-block cache,
// prevEip, and the machine's output logs (observations, compared as trace events).

import type { CpuState } from '../cpu/cpu.js';
import type { Machine } from '../machine/machine.js';
import { PAGE_SHIFT, type PhysicalMemory } from '../machine/memory.js';
import type { CheckpointState } from './format.js';

/**
 * Compact architectural state: what a checkpoint stores and a divergence diff prints. It is the
 * CPU's own snapshot (Cpu.saveState) less what is not architectural or not comparable between
 * two runs at one icount, so a field added to the CPU's state is checked without an edit here.
 */
export interface ArchState extends CheckpointState, Omit<CpuState, 'tlb' | 'prevEip' | 'shadowAt' | 'inhibitDebugAt' | 'extraCycles'> {
  /** Virtual time (cpu.cycles). */
  cycles: number;
  /** Interrupt shadow over the next instruction: 0 none, 1 STI, 2 MOV SS / POP SS. */
  shadow: number;
  /** Hash of RAM (hex). */
  memory: string;
  /** Hash of every device's save() (hex). */
  devices: string;
}

// ---------------------------------------------------------------- hashing

const MIX1 = 0x9e3779b1 | 0, MIX2 = 0x85ebca77 | 0, MIX3 = 0xc2b2ae3d | 0;

function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), MIX2);
  h = Math.imul(h ^ (h >>> 13), MIX3);
  return (h ^ (h >>> 16)) | 0;
}

const hex32 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');

/** A 64-bit streaming hash (two 32-bit lanes) of numbers, strings and bytes. */
export class Hash64 {
  private a = 0x243f6a88;
  private b = 0x13198a2e;

  word(w: number): this {
    this.a = Math.imul(((this.a ^ w) << 5) | ((this.a ^ w) >>> 27), MIX1);
    this.b = Math.imul(this.b + w, MIX2) ^ (this.b >>> 15);
    return this;
  }
  /** Any finite or infinite double, exactly (integers beyond 32 bits as two words). */
  number(v: number): this {
    if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) {
      return this.word(1).word(v | 0).word(Math.floor(v / 0x1_0000_0000) | 0);
    }
    return this.word(2).string(String(v));
  }
  string(s: string): this {
    this.word(3).word(s.length);
    for (let k = 0; k < s.length; k++) this.word(s.charCodeAt(k));
    return this;
  }
  bytes(u: Uint8Array): this {
    this.word(4).word(u.length);
    for (let k = 0; k < u.length; k++) this.word(u[k]!);
    return this;
  }
  /** Plain data: numbers, strings, booleans, null/undefined, arrays, byte views, objects (keys sorted). */
  value(v: unknown): this {
    if (v === null || v === undefined) return this.word(5);
    if (typeof v === 'number') return this.number(v);
    if (typeof v === 'string') return this.string(v);
    if (typeof v === 'boolean') return this.word(v ? 7 : 6);
    if (typeof v === 'bigint') return this.word(8).string(v.toString());
    if (ArrayBuffer.isView(v)) return this.bytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    if (Array.isArray(v)) {
      this.word(9).word(v.length);
      for (const x of v) this.value(x);
      return this;
    }
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    this.word(10).word(keys.length);
    for (const k of keys) this.string(k).value(o[k]);
    return this;
  }
  hex(): string {
    return hex32(fmix(this.a ^ this.b)) + hex32(fmix(this.b + Math.imul(this.a, MIX3)));
  }
}

/** The two content lanes of the words [start, end) of `w` (before the page number is mixed in). */
function contentLanes(w: Int32Array, start: number, end: number): [number, number] {
  let a = 0x5bd1e995, b = 0x1b873593;
  for (let k = start; k < end; k++) {
    const v = w[k]!;
    a = Math.imul(a ^ v, 0x01000193);
    b = Math.imul(b + v, MIX2) ^ (b >>> 15);
  }
  return [a, b];
}

const [ZERO_PAGE_A, ZERO_PAGE_B] = contentLanes(new Int32Array(1 << (PAGE_SHIFT - 2)), 0, 1 << (PAGE_SHIFT - 2));

/**
 * A hash of RAM kept current by re-hashing only the pages written since the last update (the
 * memory's write watch, which this class owns while it lives): per page a 64-bit hash of its
 * contents mixed with its page number, and the sum of all pages' hashes (lane by lane, mod 2^32).
 */
export class MemoryHasher {
  private readonly words: Int32Array;
  private readonly pageA: Int32Array;
  private readonly pageB: Int32Array;
  private sumA = 0;
  private sumB = 0;

  /**
   * With `fresh`, RAM is as the memory was created (zeros) but for the pages its write watch,
   * armed since then (buildMachine arms it), has listed: the other pages are hashed as zeros
   * without being read, so a large RAM the guest never touched costs neither a scan nor the
   * host's page faults of reading it.
   */
  constructor(private readonly mem: PhysicalMemory, fresh = false) {
    this.words = new Int32Array(mem.ram.buffer, mem.ram.byteOffset, mem.size >>> 2);
    const pages = mem.size >>> PAGE_SHIFT;
    this.pageA = new Int32Array(pages);
    this.pageB = new Int32Array(pages);
    if (fresh) {
      for (let p = 0; p < pages; p++) this.store(p, ZERO_PAGE_A, ZERO_PAGE_B);
      this.update();
    } else {
      mem.watchWrites();
      for (let p = 0; p < pages; p++) this.rehash(p);
    }
  }

  private rehash(p: number): void {
    const w = this.words;
    const start = p << (PAGE_SHIFT - 2), end = start + (1 << (PAGE_SHIFT - 2));
    let k = start;
    while (k < end && w[k] === 0) k++;
    // The content lanes: of a page of zeros known in advance (most of a fresh machine's RAM, so
    // the first full hash costs a scan, not a hash); the page number is mixed in afterwards.
    if (k < end) this.store(p, ...contentLanes(w, start, end));
    else this.store(p, ZERO_PAGE_A, ZERO_PAGE_B);
  }

  /** Page p's hash from its content lanes: the page number mixed in. */
  private store(p: number, laneA: number, laneB: number): void {
    const a = fmix(laneA ^ Math.imul(p, MIX1));
    const b = fmix(laneB ^ a ^ Math.imul(p + 1, MIX3));
    this.sumA = (this.sumA - this.pageA[p]! + a) | 0;
    this.sumB = (this.sumB - this.pageB[p]! + b) | 0;
    this.pageA[p] = a;
    this.pageB[p] = b;
  }

  /** Re-hashes the pages written since the last update; returns them (valid until the next call). */
  update(): Int32Array {
    const pages = this.mem.collectWrites();
    for (let i = 0; i < pages.length; i++) this.rehash(pages[i]!);
    return pages;
  }

  /** The hash of page `p` as of the last update (hex). */
  pageHash(p: number): string {
    return hex32(this.pageA[p]!) + hex32(this.pageB[p]!);
  }

  /** The hash of all RAM as of the last update (hex). */
  digest(): string {
    return hex32(fmix(this.sumA)) + hex32(fmix(this.sumB ^ this.sumA));
  }

  /** Gives the memory's write watch back. */
  dispose(): void {
    this.mem.unwatchWrites();
  }
}

/** The hash of every device's saved state. */
export function devicesHash(m: Machine): string {
  const h = new Hash64();
  for (const d of m.devices) h.string(d.name).value(d.save?.());
  return h.hex();
}

/** A checkpoint's hash: of the architectural state, which holds the memory and device hashes. */
export function stateHash(s: ArchState): string {
  return new Hash64().value(s).hex();
}

/**
 * `s` cut down to the fields of a recorded state, in the recorded order: what a checkpoint of
 * an older trapdiff hashed, so a trace recorded before a CPU state field existed still verifies
 * (the new field is checked only in traces that have it).
 */
export function asRecorded(s: ArchState, recorded: ArchState): ArchState {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(recorded)) out[k] = (s as Record<string, unknown>)[k];
  return out as ArchState;
}

/**
 * The first field whose layout (object keys, array length) differs between two states, as a
 * path ("vmx.events"), or null: a recorded state of another layout comes from a trapdiff whose
 * CPU state has other fields, which a checkpoint mismatch report should say.
 */
export function layoutDifference(a: unknown, b: unknown, path = ''): string | null {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return path || '(root)';
    for (let i = 0; i < a.length; i++) {
      const d = layoutDifference(a[i], b[i], `${path}.${i}`);
      if (d !== null) return d;
    }
    return null;
  }
  const objA = typeof a === 'object' && a !== null, objB = typeof b === 'object' && b !== null;
  if (objA !== objB) return path || '(root)';
  if (!objA) return null;
  const ka = Object.keys(a as object), kb = Object.keys(b as object);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return path || '(root)';
  for (const k of ka) {
    const d = layoutDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    if (d !== null) return d;
  }
  return null;
}

// ---------------------------------------------------------------- capture

/** The CPU's architectural state now, with the given memory and device hashes. */
export function captureArch(m: Machine, memory: string, devices: string): ArchState {
  const cpu = m.cpu;
  // The TLB is a cache; prevEip and the shadow's absolute icounts are bookkeeping (the shadow is
  // kept as its effect on the next instruction); extraCycles is folded into cycles.
  const { tlb: _tlb, prevEip: _prevEip, shadowAt, inhibitDebugAt, extraCycles: _extra, ...cpuState } = cpu.saveState(false);
  const shadow = shadowAt === cpu.icount ? (inhibitDebugAt === cpu.icount ? 2 : 1) : 0;
  cpuState.msrs.sort((x, y) => x[0] - y[0]);
  return { ...cpuState, eflags: cpuState.eflags | 0, cr: cpuState.cr.map((v) => v | 0), cycles: cpu.cycles, shadow, memory, devices };
}

/**
 * Captures whole-machine states of one machine: owns its memory's write watch, so each capture
 * costs the CPU fields, the devices' save() and the RAM pages written since the previous one.
 */
export class StateTracker {
  readonly memory: MemoryHasher;
  /** RAM pages written since markPages() (one byte per page: 1 = written). */
  private readonly written: Uint8Array;

  /** `fresh`: the machine comes from buildMachine, its write watch armed since creation (MemoryHasher). */
  constructor(readonly machine: Machine, fresh = false) {
    this.memory = new MemoryHasher(machine.mem, fresh);
    this.written = new Uint8Array(machine.mem.size >>> PAGE_SHIFT);
  }

  /** The machine's state now; `pages` receives the pages written since the last capture. */
  capture(): ArchState {
    const pages = this.memory.update();
    for (let i = 0; i < pages.length; i++) this.written[pages[i]!] = 1;
    return captureArch(this.machine, this.memory.digest(), devicesHash(this.machine));
  }

  /** The pages written since the last call (as of the last capture), in ascending order. */
  takeWrittenPages(): number[] {
    const out: number[] = [];
    const w = this.written;
    for (let p = 0; p < w.length; p++) {
      if (w[p] !== 0) {
        out.push(p);
        w[p] = 0;
      }
    }
    return out;
  }

  dispose(): void {
    this.memory.dispose();
  }
}
