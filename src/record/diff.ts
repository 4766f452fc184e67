// How two machine states differ, for people and for tools: a canonical text rendering of an
// ArchState (one fact per line, so a line-based diff shows exactly the facts that differ:
// registers, each EFLAGS flag by name, descriptor caches, control/debug registers, the memory
// and device hashes, and the bytes of memory ranges that differ), the unified diff of two such
// renderings (the `diff` package), and the same differences as JSON.

import { createTwoFilesPatch } from 'diff';
import type { Machine } from '../machine/machine.js';
import { PAGE_SHIFT, PAGE_SIZE } from '../machine/memory.js';
import type { ArchState } from './state.js';

const REG_NAMES = ['EAX', 'ECX', 'EDX', 'EBX', 'ESP', 'EBP', 'ESI', 'EDI'];
const SEG_NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDTR', 'TR'];
/** EFLAGS bits by name (IOPL is two bits, shown as a number). */
const FLAG_BITS: ReadonlyArray<[string, number]> = [
  ['CF', 0], ['PF', 2], ['AF', 4], ['ZF', 6], ['SF', 7], ['TF', 8], ['IF', 9], ['DF', 10], ['OF', 11],
  ['NT', 14], ['RF', 16], ['VM', 17], ['AC', 18], ['VIF', 19], ['VIP', 20], ['ID', 21],
];

const h8 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');
const h4 = (v: number): string => (v & 0xffff).toString(16).padStart(4, '0');

/** A byte range [start, end) of physical memory whose contents differ, as hex on each side. */
export interface MemoryRange {
  start: number;
  end: number;
  a: string;
  b: string;
}

/** One differing fact: its name (as in the text rendering) and its value on each side. */
export interface Change {
  name: string;
  a: string;
  b: string;
}

export interface StateDiff {
  registers: Change[];
  flags: Change[];
  segments: Change[];
  control: Change[];
  other: Change[];
  memory: MemoryRange[];
  /** Device state fields that differ ("pit.channels.0.n"), when both machines were at hand. */
  devices: Change[];
}

type Group = keyof Omit<StateDiff, 'memory' | 'devices'>;

/** The state as [group, name, value] facts, in rendering order. */
function facts(s: ArchState): Array<[Group, string, string]> {
  const out: Array<[Group, string, string]> = [];
  const add = (g: Group, name: string, value: string): void => void out.push([g, name, value]);
  add('other', 'icount', String(s.icount));
  add('other', 'cycles', String(s.cycles));
  REG_NAMES.forEach((n, k) => add('registers', n, h8(s.regs[k]!)));
  add('registers', 'EIP', h8(s.eip));
  add('registers', 'EFLAGS', h8(s.eflags));
  for (const [name, bit] of FLAG_BITS) add('flags', name, String((s.eflags >>> bit) & 1));
  add('flags', 'IOPL', String((s.eflags >>> 12) & 3));
  add('registers', 'CPL', String(s.cpl));
  SEG_NAMES.forEach((n, k) => add('segments', n,
    `sel=${h4(s.seg[k]!)} base=${h8(s.segBase[k]!)} limit=${h8(s.segLimit[k]!)} ar=${h4(s.segAr[k]!)}`));
  add('segments', 'GDTR', `base=${h8(s.gdtr[0]!)} limit=${h4(s.gdtr[1]!)}`);
  add('segments', 'IDTR', `base=${h8(s.idtr[0]!)} limit=${h4(s.idtr[1]!)}`);
  [0, 2, 3, 4].forEach((n, k) => add('control', `CR${n}`, h8(s.cr[k]!)));
  s.dr.forEach((v, k) => { if (k !== 4 && k !== 5) add('control', `DR${k}`, h8(v)); });
  for (const [index, value] of s.msrs) add('control', `MSR ${index.toString(16)}`, BigInt(value).toString(16));
  add('control', 'TSC offset', s.tscOffset);
  add('control', 'A20', s.a20Mask === -1 ? 'on' : 'off');
  for (const k of ['halted', 'shutdown', 'intrLine', 'nmiPending', 'nmiBlocked', 'shadow', 'debugTrap'] as const) {
    add('other', k, String(s[k]));
  }
  add('other', 'vmx', JSON.stringify(s.vmx));
  // CPU state fields without a rendering of their own (added to Cpu.saveState later) still show.
  for (const [k, v] of Object.entries(s)) if (!RENDERED.has(k)) add('other', k, JSON.stringify(v));
  add('other', 'memory hash', s.memory);
  add('other', 'devices hash', s.devices);
  return out;
}

/** The ArchState fields facts() renders by name. */
const RENDERED = new Set(['icount', 'cycles', 'regs', 'eip', 'eflags', 'cpl', 'seg', 'segBase', 'segLimit', 'segAr',
  'gdtr', 'idtr', 'cr', 'dr', 'msrs', 'tscOffset', 'a20Mask', 'halted', 'shutdown', 'intrLine', 'nmiPending',
  'nmiBlocked', 'shadow', 'debugTrap', 'vmx', 'memory', 'devices']);

/** What a diff adds to the two states: differing memory ranges and device fields. */
export interface DiffExtras {
  memory?: readonly MemoryRange[];
  devices?: readonly Change[];
}

/**
 * The canonical text of a state: one fact per line, then its side of the extras (memory ranges,
 * device fields).
 */
export function renderState(s: ArchState, extras: DiffExtras = {}, side: 'a' | 'b' = 'a'): string {
  const lines = facts(s).map(([, name, value]) => `${name} ${value}`);
  for (const r of extras.memory ?? []) lines.push(`mem ${h8(r.start)}-${h8(r.end - 1)} ${side === 'a' ? r.a : r.b}`);
  for (const c of extras.devices ?? []) lines.push(`device ${c.name} ${side === 'a' ? c.a : c.b}`);
  return lines.join('\n') + '\n';
}

/** The facts that differ between a and b, grouped, with the given extras. */
export function diffStates(a: ArchState, b: ArchState, extras: DiffExtras = {}): StateDiff {
  const d: StateDiff = {
    registers: [], flags: [], segments: [], control: [], other: [], memory: [...extras.memory ?? []], devices: [...extras.devices ?? []],
  };
  const fb = new Map(facts(b).map(([, name, value]) => [name, value]));
  const seen = new Set<string>();
  for (const [group, name, value] of facts(a)) {
    seen.add(name);
    const other = fb.get(name) ?? '(none)';
    if (other !== value) d[group].push({ name, a: value, b: other });
  }
  for (const [group, name, value] of facts(b)) if (!seen.has(name)) d[group].push({ name, a: '(none)', b: value });
  return d;
}

/** True when the diff holds no difference. */
export function isEmptyDiff(d: StateDiff): boolean {
  return d.registers.length + d.flags.length + d.segments.length + d.control.length + d.other.length +
    d.memory.length + d.devices.length === 0;
}

/** A unified diff (the `diff` package) of the two states' renderings, labelled. */
export function unifiedDiff(a: ArchState, b: ArchState, labels: [string, string], extras: DiffExtras = {}): string {
  return createTwoFilesPatch(labels[0], labels[1], renderState(a, extras, 'a'), renderState(b, extras, 'b'), undefined, undefined, { context: 2 });
}

/** A device's saved state as [path, value] leaves (byte arrays as hex). */
function leaves(v: unknown, path: string, out: Map<string, string>): void {
  if (ArrayBuffer.isView(v)) {
    out.set(path, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex'));
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) leaves(x, path === '' ? k : `${path}.${k}`, out);
  } else {
    out.set(path, String(v));
  }
}

/** The device state fields that differ between two machines of the same configuration. */
export function deviceChanges(ma: Machine, mb: Machine): Change[] {
  const out: Change[] = [];
  ma.devices.forEach((d, k) => {
    const la = new Map<string, string>(), lb = new Map<string, string>();
    leaves(d.save?.(), d.name, la);
    leaves(mb.devices[k]?.save?.(), d.name, lb);
    for (const name of new Set([...la.keys(), ...lb.keys()])) {
      const a = la.get(name) ?? '(none)', b = lb.get(name) ?? '(none)';
      if (a !== b) out.push({ name, a, b });
    }
  });
  return out;
}

/** Bytes closer than this are reported as one range. */
const RANGE_GAP = 8;

/**
 * The byte ranges of `pages` (RAM page numbers) where ramA and ramB differ, coalesced across
 * gaps under RANGE_GAP bytes; at most maxRanges ranges of at most maxBytes bytes each are kept.
 */
export function memoryRanges(ramA: Uint8Array, ramB: Uint8Array, pages: Iterable<number>, maxRanges = 32, maxBytes = 64): MemoryRange[] {
  const out: MemoryRange[] = [];
  const sorted = [...new Set(pages)].sort((x, y) => x - y);
  let start = -1, last = -1;
  const flush = (): void => {
    if (start < 0 || out.length >= maxRanges) return;
    const end = Math.min(last + 1, start + maxBytes);
    const hex = (ram: Uint8Array): string => Array.from(ram.subarray(start, end), (v) => v.toString(16).padStart(2, '0')).join(' ');
    out.push({ start, end, a: hex(ramA), b: hex(ramB) });
  };
  for (const p of sorted) {
    for (let addr = p << PAGE_SHIFT, end = addr + PAGE_SIZE; addr < end; addr++) {
      if (ramA[addr] === ramB[addr]) continue;
      if (start >= 0 && addr - last > RANGE_GAP) {
        flush();
        start = -1;
      }
      if (start < 0) start = addr;
      last = addr;
    }
  }
  flush();
  return out;
}
