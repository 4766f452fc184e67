// Protected-mode segmentation (SDM Vol. 3A chapters 3 and 5): descriptor fetches from the GDT and
// LDT, descriptor-to-cache conversion, the checks of MOV/POP/LDS-family segment loads, and the
// pieces that far transfers, interrupt delivery, IRET and task switches share: loading CS at a
// new CPL, the TSS stack pointers of an inner level, validating an inner stack and building a frame
// on it before anything is committed, the far-return CS/SS checks, and the data-segment
// invalidation after a return to an outer level.
//
// Descriptors are read into preallocated `Descriptor` objects (no allocation per instruction);
// `desc` is the general-purpose one, and code that needs several at once keeps its own.

import {
  AR_DB, AR_DPL_SHIFT, AR_S, AR_UNUSABLE, CS, DS, ES, EXC_GP, EXC_NP, EXC_SS, EXC_TS, FS, GS,
  LDTR, SEGT_CODE, SEGT_CONFORMING, SEGT_EXPANDDOWN, SS, TR,
} from './constants.js';
import type { Cpu } from './cpu.js';

/** The two dwords of a GDT/LDT entry and its linear address (for the accessed and busy bits). */
export class Descriptor {
  lo = 0;
  hi = 0;
  addr = 0;

  get base(): number { return descBase(this.lo, this.hi); }
  /** Byte-granular limit (G applied). */
  get limit(): number { return descLimit(this.lo, this.hi); }
  /** Access rights in the VMCS layout of the segment caches (constants.ts AR_*). */
  get ar(): number { return descAr(this.hi); }
  get type(): number { return (this.hi >>> 8) & 0xf; }
  get dpl(): number { return descDpl(this.hi); }
  get present(): boolean { return (this.hi & 0x8000) !== 0; }
  /** S = 1: a code or data segment (else a system descriptor: LDT, TSS, gate). */
  get isSegment(): boolean { return (this.hi & 0x1000) !== 0; }
  get isCode(): boolean { return (this.hi & 0x1800) === 0x1800; }
  get isConformingCode(): boolean { return (this.hi & 0x1c00) === 0x1c00; }
  get isData(): boolean { return (this.hi & 0x1800) === 0x1000; }
  get isWritableData(): boolean { return (this.hi & 0x1a00) === 0x1200; }
  /** What DS/ES/FS/GS may hold: any data segment, or readable code. */
  get isDataOrReadableCode(): boolean {
    return this.isData || (this.hi & 0x1a00) === 0x1a00;
  }
  /** Gates: the target selector, offset (32 bits; 16-bit gates use the low half) and parameter count. */
  get gateSelector(): number { return this.lo >>> 16; }
  get gateOffset(): number { return ((this.lo & 0xffff) | (this.hi & 0xffff0000)) >>> 0; }
  get gateParams(): number { return this.hi & 0x1f; }
}

/** The general-purpose descriptor buffer that fetchDescriptor fills by default. */
export const desc = new Descriptor();

function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
}
/** Byte-granular limit: with G the 20-bit limit counts 4 KiB units. */
function descLimit(lo: number, hi: number): number {
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  return hi & 0x800000 ? ((raw << 12) | 0xfff) >>> 0 : raw;
}
/** Access rights in the VMCS layout: type, S, DPL, P in bits 0-7; AVL, L, D/B, G in bits 12-15. */
function descAr(hi: number): number {
  return (hi >>> 8) & 0xf0ff;
}
export function descDpl(hi: number): number {
  return (hi >>> 13) & 3;
}

/**
 * Reads the descriptor of `sel` into `d`; false when the selector lies outside its table (or
 * names the LDT while LDTR is null). Supervisor reads: descriptor tables are system data.
 */
export function readDescriptor(cpu: Cpu, sel: number, d: Descriptor = desc): boolean {
  let base: number, limit: number;
  if (sel & 4) {
    if (cpu.segAr[LDTR] & AR_UNUSABLE) return false;
    base = cpu.segBase[LDTR];
    limit = cpu.segLimit[LDTR];
  } else {
    base = cpu.gdtrBase;
    limit = cpu.gdtrLimit;
  }
  if ((sel | 7) > limit) return false;
  d.addr = (base + (sel & 0xfff8)) | 0;
  d.lo = cpu.readLinear32(d.addr, false);
  d.hi = cpu.readLinear32((d.addr + 4) | 0, false);
  return true;
}
/** readDescriptor that raises vector(sel | ext) when the selector is outside its table. */
export function fetchDescriptor(cpu: Cpu, sel: number, vector: number, ext: number, d: Descriptor = desc): void {
  if (!readDescriptor(cpu, sel, d)) cpu.fault(vector, (sel & 0xfffc) | ext);
}
/** Sets the accessed bit of a code/data descriptor in memory, as every segment load does (SDM 3.4.5.1). */
export function markAccessed(cpu: Cpu, d: Descriptor = desc): void {
  if (d.hi & 0x100) return;
  d.hi |= 0x100;
  cpu.writeLinear8((d.addr + 5) | 0, (d.hi >>> 8) & 0xff, false);
}
/** Fills segment cache s from `d` (no checks, no memory writes). */
export function loadCacheFromDesc(cpu: Cpu, s: number, sel: number, d: Descriptor = desc): void {
  cpu.setSegCache(s, sel, d.base, d.limit, d.ar);
}
/** A null selector (index 0 of the GDT, any RPL) loaded into DS/ES/FS/GS: an unusable cache. */
export function loadNull(cpu: Cpu, s: number, sel: number): void {
  cpu.setSegCache(s, sel, 0, 0, AR_UNUSABLE);
}
export function isNullSelector(sel: number): boolean {
  return (sel & 0xfffc) === 0;
}

/**
 * MOV/POP/LDS-family load of data or stack segment `s` (never CS) in protected mode (SDM Vol. 2
 * MOV, POP, LDS pseudocode). Every check comes before the accessed-bit write and the cache load.
 */
export function loadSegProtected(cpu: Cpu, s: number, sel: number): void {
  const err = sel & 0xfffc;
  const d = desc;
  if (s === SS) {
    if (err === 0) cpu.fault(EXC_GP, 0);
    if (!readDescriptor(cpu, sel, d)) cpu.fault(EXC_GP, err);
    if ((sel & 3) !== cpu.cpl || !d.isWritableData || d.dpl !== cpu.cpl) cpu.fault(EXC_GP, err);
    if (!d.present) cpu.fault(EXC_SS, err);
  } else {
    if (err === 0) {
      loadNull(cpu, s, sel);
      return;
    }
    if (!readDescriptor(cpu, sel, d)) cpu.fault(EXC_GP, err);
    if (!d.isDataOrReadableCode) cpu.fault(EXC_GP, err);
    // Conforming code is exempt from the privilege rule (SDM 5.7).
    if (!d.isConformingCode && ((sel & 3) > d.dpl || cpu.cpl > d.dpl)) cpu.fault(EXC_GP, err);
    if (!d.present) cpu.fault(EXC_NP, err);
  }
  markAccessed(cpu, d);
  loadCacheFromDesc(cpu, s, sel, d);
}

/**
 * Loads CS from a checked code descriptor for a far transfer to privilege level `cpl`: RPL is
 * forced to the new CPL. The accessed-bit write (the only possible fault) comes first.
 */
export function loadCs(cpu: Cpu, sel: number, d: Descriptor, cpl: number): void {
  markAccessed(cpu, d);
  loadCacheFromDesc(cpu, CS, (sel & 0xfffc) | cpl, d);
  if (cpu.cpl !== cpl) cpu.setCpl(cpl);
  cpu.yieldBlock = true;
}

// ------------------------------------------------------------------ inner stacks (TSS)

/** SS:ESP read from the current TSS by readTssStack. */
export const tssStack = { ss: 0, esp: 0 };

/**
 * Reads the stack pointer of privilege level `cpl` (0-2) from the current TSS into tssStack:
 * SSn:ESPn of a 32-bit TSS, SSn:SPn of a 16-bit one; #TS(TR | ext) when the TSS limit does not
 * cover it (the 32-bit check covers the whole SS dword, as Bochs and the INT pseudocode do).
 */
export function readTssStack(cpu: Cpu, cpl: number, ext: number): void {
  const tss32 = (cpu.segAr[TR] & 8) !== 0;
  const at = tss32 ? 4 + 8 * cpl : 2 + 4 * cpl;
  if (at + (tss32 ? 7 : 3) > cpu.segLimit[TR]) cpu.fault(EXC_TS, (cpu.seg[TR] & 0xfffc) | ext);
  const lin = (cpu.segBase[TR] + at) | 0;
  tssStack.esp = tss32 ? cpu.readLinear32(lin, false) : cpu.readLinear16(lin, false);
  tssStack.ss = cpu.readLinear16((lin + (tss32 ? 4 : 2)) | 0, false);
}

/**
 * Checks `sel` as the stack segment of inner level `cpl` (CALL through a gate, interrupt
 * delivery): #TS(ext) when null; #TS(sel | ext) outside its table, when RPL or DPL differs from
 * `cpl`, or when not a writable data segment; #SS(sel | ext) when not present. Leaves the
 * descriptor in `d` with its accessed bit set.
 */
export function checkInnerStack(cpu: Cpu, sel: number, cpl: number, ext: number, d: Descriptor): void {
  if (isNullSelector(sel)) cpu.fault(EXC_TS, ext);
  const err = (sel & 0xfffc) | ext;
  if (!readDescriptor(cpu, sel, d)) cpu.fault(EXC_TS, err);
  if ((sel & 3) !== cpl || d.dpl !== cpl || !d.isWritableData) cpu.fault(EXC_TS, err);
  if (!d.present) cpu.fault(EXC_SS, err);
  markAccessed(cpu, d);
}

/**
 * A stack frame under construction: the pushes are collected, then every slot is checked against
 * the stack segment (#SS(ssError) when one does not fit: "the stack does not have room"), then
 * written. Registers are untouched until the caller commits, so a fault leaves no trace but
 * bytes below the stack pointer.
 */
export class StackFrame {
  private readonly vals = new Int32Array(40);
  private n = 0;
  /** Bytes per push: 2 or 4. */
  private width = 4;
  private base = 0;
  /** Valid offsets lo..hi inclusive (expand-down: lo = limit + 1). */
  private lo = 0;
  private hi = 0;
  private big = true;
  private esp = 0;
  private user = false;
  private ssError = 0;

  /** Starts a frame of `width`-byte pushes on the current SS at `esp`. */
  onCurrentStack(cpu: Cpu, width: number, esp: number, ssError: number): void {
    this.start(width, esp, ssError);
    this.base = cpu.segBase[SS];
    this.lo = cpu.segLo[SS];
    this.hi = cpu.segHi[SS];
    this.big = (cpu.segAr[SS] & AR_DB) !== 0;
    this.user = cpu.cpl === 3;
  }
  /** Starts a frame on the stack segment described by `d` (not loaded yet; always an inner level). */
  onDescribedStack(d: Descriptor, width: number, esp: number, ssError: number): void {
    this.start(width, esp, ssError);
    const limit = d.limit;
    this.base = d.base;
    this.big = (d.hi & 0x400000) !== 0;
    if (d.type & SEGT_EXPANDDOWN) {
      this.lo = limit + 1;
      this.hi = this.big ? 0xffffffff : 0xffff;
    } else {
      this.lo = 0;
      this.hi = limit;
    }
    this.user = false;
  }
  private start(width: number, esp: number, ssError: number): void {
    this.n = 0;
    this.width = width;
    this.esp = esp;
    this.ssError = ssError;
  }
  push(v: number): void {
    this.vals[this.n++] = v;
  }
  /** #SS(ssError) unless `count` pushes fit below the frame's stack pointer. */
  checkRoom(cpu: Cpu, count: number): void {
    const w = this.width, mask = this.big ? 0xffffffff : 0xffff;
    for (let k = 1; k <= count; k++) {
      const off = ((this.esp - k * w) & mask) >>> 0;
      if (off < this.lo || off + w - 1 > this.hi) cpu.fault(EXC_SS, this.ssError);
    }
  }
  /** Checks every slot, then writes them; returns the new ESP (only SP changes on a 16-bit stack). */
  write(cpu: Cpu): number {
    const w = this.width, mask = this.big ? 0xffffffff : 0xffff;
    this.checkRoom(cpu, this.n);
    for (let k = 0; k < this.n; k++) {
      const lin = (this.base + ((this.esp - (k + 1) * w) & mask)) | 0;
      if (w === 4) cpu.writeLinear32(lin, this.vals[k], this.user);
      else cpu.writeLinear16(lin, this.vals[k] & 0xffff, this.user);
    }
    const sp = this.esp - this.n * w;
    return this.big ? sp | 0 : (this.esp & ~0xffff) | (sp & 0xffff);
  }
}

// ------------------------------------------------------------------ returns (RETF, IRET)

/**
 * The return-CS checks of far RET and IRET in protected mode (SDM Vol. 2 RET/IRET): null #GP(0);
 * outside its table, not code, RPL < CPL, conforming with DPL > RPL or non-conforming with DPL !=
 * RPL: #GP(sel); not present: #NP(sel). Leaves the descriptor in `d`.
 */
export function checkReturnCs(cpu: Cpu, sel: number, d: Descriptor): void {
  const err = sel & 0xfffc, rpl = sel & 3;
  if (err === 0) cpu.fault(EXC_GP, 0);
  if (!readDescriptor(cpu, sel, d)) cpu.fault(EXC_GP, err);
  if (!d.isCode || rpl < cpu.cpl) cpu.fault(EXC_GP, err);
  if (d.isConformingCode ? d.dpl > rpl : d.dpl !== rpl) cpu.fault(EXC_GP, err);
  if (!d.present) cpu.fault(EXC_NP, err);
}
/**
 * The return-SS checks of a return to an outer level (`rpl` = the return CS RPL): null #GP(0);
 * outside its table, RPL != rpl, not writable data or DPL != rpl: #GP(sel); not present #SS(sel).
 */
export function checkReturnSs(cpu: Cpu, sel: number, rpl: number, d: Descriptor): void {
  const err = sel & 0xfffc;
  if (err === 0) cpu.fault(EXC_GP, 0);
  if (!readDescriptor(cpu, sel, d)) cpu.fault(EXC_GP, err);
  if ((sel & 3) !== rpl || !d.isWritableData || d.dpl !== rpl) cpu.fault(EXC_GP, err);
  if (!d.present) cpu.fault(EXC_SS, err);
}

const DATA_SEGS = [ES, DS, FS, GS];
/**
 * After a return to an outer level (RETF, IRET): DS, ES, FS and GS whose cached DPL is below the
 * new CPL become null (selector 0, unusable), unless they hold conforming code (SDM RET
 * pseudocode). A null register counts as DPL 0, so its selector is cleared too (as Bochs does).
 */
export function invalidateSegsForCpl(cpu: Cpu): void {
  const conforming = AR_S | SEGT_CODE | SEGT_CONFORMING;
  for (let k = 0; k < 4; k++) {
    const s = DATA_SEGS[k], ar = cpu.segAr[s];
    const dpl = (ar >> AR_DPL_SHIFT) & 3;
    if (dpl < cpu.cpl && ((ar & AR_UNUSABLE) !== 0 || (ar & conforming) !== conforming)) loadNull(cpu, s, 0);
  }
}
