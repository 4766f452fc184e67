// Transcript parsing, comparison modulo the SDM's undefined flags, and disagreement classes.

import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from 'iced-x86';
import { FLAGS_FIXED1, FLAGS_IMPLEMENTED } from '../cpu/constants.js';
import { undefinedAt } from './generator.js';
import { CTX_FIELDS, END_VECTOR, modeInfo, type CtxField } from './modes.js';
import type { PlacedTest } from './rom.js';

/** One test's report line: the CTX_FIELDS values. */
export type Report = number[];

export interface Transcript {
  byIndex: Map<number, Report>;
  /** The guest reached its end ("END"). */
  complete: boolean;
  /** The machine reset itself (triple fault) and the ROM noticed. */
  reset: boolean;
  /** Extra text (a peer's own error notes). */
  notes: string[];
}

const FIELD = (f: CtxField): number => CTX_FIELDS.indexOf(f);

const REPORT_LINE = new RegExp(`^([0-9A-F]{8} ){${CTX_FIELDS.length - 1}}[0-9A-F]{8}$`);

export function parseTranscript(text: string): Transcript {
  const t: Transcript = { byIndex: new Map(), complete: false, reset: false, notes: [] };
  for (const line of text.split('\n')) {
    const s = line.trim();
    if (s === 'END') t.complete = true;
    else if (s === 'RESET') t.reset = true;
    else if (REPORT_LINE.test(s)) {
      const r = s.split(' ').map((h) => parseInt(h, 16));
      // A second report for one test means a handler ran twice: keep the first, note it.
      if (t.byIndex.has(r[0])) t.notes.push(`test ${r[0]} reported twice`);
      else t.byIndex.set(r[0], r);
    } else if (s) t.notes.push(s.slice(0, 200));
  }
  return t;
}

/** EFLAGS bits compared: the defined ones (bit 1 reads 1; 3, 5, 15, 22-31 are reserved). */
export const EFLAGS_COMPARED = FLAGS_IMPLEMENTED | FLAGS_FIXED1;

export interface Diff {
  /** First differing item: a CTX field, or 'missing' (one side has no report). */
  field: string;
  a: number | null;
  b: number | null;
  /** Flags masked out of the EFLAGS comparison for this test. */
  mask: number;
}

const hex = (v: number | null): string => (v === null ? '-' : (v >>> 0).toString(16).padStart(8, '0'));

export function describeDiff(d: Diff, na: string, nb: string): string {
  return `${d.field}: ${na}=${hex(d.a)} ${nb}=${hex(d.b)}${d.field === 'eflags' ? ` (xor ${hex(((d.a ?? 0) ^ (d.b ?? 0)) & ~d.mask)})` : ''}`;
}

/** Compares two reports of one test; null when they agree modulo undefined flags. */
export function compareReports(p: PlacedTest, a: Report | undefined, b: Report | undefined, ignoreFlags = 0): Diff | null {
  if (!a || !b) return { field: 'missing', a: a ? a[FIELD('vec')] : null, b: b ? b[FIELD('vec')] : null, mask: 0 };
  for (const f of ['vec', 'eip', 'err'] as const) {
    if (a[FIELD(f)] !== b[FIELD(f)]) return { field: f, a: a[FIELD(f)], b: b[FIELD(f)], mask: 0 };
  }
  const mask = undefinedAt(p.layout, a[FIELD('eip')]) | ignoreFlags;
  for (const f of CTX_FIELDS) {
    const i = FIELD(f);
    if (f === 'eflags') {
      if (((a[i] ^ b[i]) & EFLAGS_COMPARED & ~mask) !== 0) return { field: f, a: a[i], b: b[i], mask };
    } else if (a[i] !== b[i]) return { field: f, a: a[i], b: b[i], mask };
  }
  return null;
}

/**
 * The instruction a disagreement points at without re-running: for an exception that differs,
 * the earliest faulting instruction either side reports. Null when only a minimization can tell.
 */
export function culpritFromReports(p: PlacedTest, d: Diff, a: Report | undefined, b: Report | undefined): string | null {
  if (d.field !== 'vec' && d.field !== 'err' && d.field !== 'eip') return null;
  const eips: number[] = [];
  for (const r of [a, b]) if (r && r[FIELD('vec')] !== END_VECTOR) eips.push(r[FIELD('eip')]);
  if (eips.length === 0) return null;
  const at = Math.min(...eips);
  const insn = p.layout.insns.find((i) => i.addr === at) ?? p.layout.insns.find((i) => i.addr + i.len === at);
  return insn ? insn.key : null;
}

/** The disagreement class: what differs, and the form it traces to. */
export function diffClass(d: Diff, culprit: string | null): string {
  let what = d.field;
  if (d.field === 'vec') what = `exception ${vecName(d.a)} vs ${vecName(d.b)}`;
  else if (d.field === 'eflags') what = `eflags ${flagNames(((d.a ?? 0) ^ (d.b ?? 0)) & EFLAGS_COMPARED & ~d.mask)}`;
  return `${what} @ ${culprit ?? '?'}`;
}

const VEC_NAMES: Record<number, string> = { 0: '#DE', 1: '#DB', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 8: '#DF', 10: '#TS', 11: '#NP', 12: '#SS', 13: '#GP', 14: '#PF', 16: '#MF', 17: '#AC', [END_VECTOR]: 'end' };
function vecName(v: number | null): string {
  return v === null ? 'none' : VEC_NAMES[v] ?? `int${v.toString(16)}`;
}

const FLAG_BITS: Array<[number, string]> = [[0, 'CF'], [2, 'PF'], [4, 'AF'], [6, 'ZF'], [7, 'SF'], [8, 'TF'], [9, 'IF'], [10, 'DF'], [11, 'OF'],
  [12, 'IOPL0'], [13, 'IOPL1'], [14, 'NT'], [16, 'RF'], [17, 'VM'], [18, 'AC'], [19, 'VIF'], [20, 'VIP'], [21, 'ID']];
export function flagNames(bits: number): string {
  return FLAG_BITS.filter(([b]) => bits & (1 << b)).map(([, n]) => n).join('|') || '-';
}

// ---- listing ----
const formatter = (() => {
  const f = new Formatter(FormatterSyntax.Intel);
  f.uppercaseHex = false;
  return f;
})();

/** A listing of a placed test's sequence: address, bytes, iced-x86 disassembly, per line. */
export function listing(p: PlacedTest, count = p.layout.insns.length): string[] {
  const m = modeInfo(p.tc.mode);
  const insns = p.layout.insns.slice(0, count);
  if (!insns.length) return [];
  const base = insns[0].addr;
  const lines: string[] = [];
  const bytes = Uint8Array.from(p.layout.bytes);
  for (const ins of insns) {
    const code = bytes.subarray(ins.addr - base, ins.addr - base + ins.len);
    const dec = new Decoder(m.bits, code, DecoderOptions.None);
    dec.ip = BigInt(ins.addr);
    const instr = dec.decode();
    const text = formatter.format(instr);
    instr.free();
    dec.free();
    const hexBytes = Array.from(code, (x) => x.toString(16).padStart(2, '0')).join(' ');
    lines.push(`${ins.addr.toString(16).padStart(5, '0')}  ${hexBytes.padEnd(36)} ${text}${ins.key.startsWith('setup:') || ins.key === 'end' ? '' : `   ; ${ins.key}`}`);
  }
  return lines;
}
