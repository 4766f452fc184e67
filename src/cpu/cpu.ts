// The CPU hub: architectural state, lazy flags, segment caches, segmented and paged memory
// access, the fault mechanism and the run loop with its decoded-block cache. Instruction
// semantics live in exec/*.ts, mechanisms (paging, descriptor loads, interrupt delivery, tasks,
// debug) in their own files; this file only joins them.

import {
  AC, AF, AR_DB, AR_UNUSABLE, CF, CR0_AM, CR0_PE, CR0_PG, CS, EDX, ESP, FLAGS_FIXED1,
  FLAGS_IMPLEMENTED, IF, OF, PF, RF, SF, SS, TF, VM, ZF, ACC_READ, ACC_WRITE, ACC_EXEC, EXC_GP, EXC_SS,
  EXC_AC, LDTR, TR, EXC_NMI,
} from './constants.js';
import { Insn } from './insn.js';
import { Block, HOT_RUNS, compileBlock } from './block.js';
import { decode, type CodeReader } from './decoder.js';
import { translate, flushTlb, TLB_NOEXEC, TLB_SUP, TLB_USER } from './paging.js';
import { loadSegProtected } from './segment-load.js';
import { deliverException, deliverInterrupt, EV_EXTERNAL, EV_NMI } from './interrupts.js';
import { breakpointsEnabled, debugAfterInsn, debugBeforeInsn, debugDataAccess, deliverPendingDebugTrap } from './debug.js';
import { CPUID_SIGNATURE } from './cpuid.js';
import { PF_CODE, PF_ROM, PF_SLOW, type PhysicalMemory } from '../machine/memory.js';
import { VM_EXITED, VmxState, type VmxSnapshot } from './vmx/state.js';
import { tprVirtualization } from './vmx/apic-virt.js';
import {
  guestCanWake, guestInstructionDone, guestInterruptsWake, guestRunLimit, guestTimerDeadline, serviceGuestEvents,
} from './vmx/events.js';

/** Lazy-flag operations: how to derive CF/PF/AF/ZF/SF/OF from the saved operands and result. */
export const LZ_NONE = 0, LZ_ADD = 1, LZ_ADC = 2, LZ_SUB = 3, LZ_SBB = 4, LZ_LOGIC = 5,
  LZ_INC = 6, LZ_DEC = 7;

export interface PortBus {
  read(port: number, size: 1 | 2 | 4): number;
  write(port: number, size: 1 | 2 | 4, value: number): void;
}

/** Observation hooks: the one stream the recorder, statistics and differential engine consume. */
export interface CpuEvents {
  onException?(vector: number, errorCode: number, hasError: boolean, eip: number): void;
  onInterrupt?(vector: number, kind: number): void;
  onIo?(port: number, size: number, value: number, write: boolean): void;
  onHalt?(): void;
  onShutdown?(): void;
  /** A VM exit (or VM-entry failure, bit 31 of the reason), as recorded in the VMCS. */
  onVmExit?(reason: number, qualification: number): void;
}

/** The sentinel thrown by cpu.fault(); one instance, so raising a fault allocates nothing. */
export class CpuFault {
  vector = 0;
  errorCode = 0;
  hasError = false;
}
export const FAULT = new CpuFault();

/** The physical address mask in A20M mode: address bit 20 forced to 0. */
const A20M_MASK = ~(1 << 20);

/** Internal sentinel: block decoding reached a page end or the CS limit. */
const END_OF_BLOCK = { endOfBlock: true };

const PARITY = new Uint8Array(256);
for (let v = 0; v < 256; v++) {
  let p = 1;
  for (let b = v; b; b >>= 1) p ^= b & 1;
  PARITY[v] = p ? PF : 0;
}

const MAX_BLOCK_INSNS = 32;
const BLOCK_CACHE_SLOTS = 1 << 14;

/** A CPU snapshot: plain numbers and arrays (MSR values as decimal strings), JSON-safe. */
export interface CpuState {
  regs: number[]; eip: number; prevEip: number; eflags: number; cr: number[]; dr: number[];
  cpl: number; seg: number[]; segBase: number[]; segLimit: number[]; segAr: number[];
  gdtr: number[]; idtr: number[]; msrs: Array<[number, string]>; tscOffset: string;
  monitorArmed?: boolean;
  /** Absent in snapshots older than the field (the gate was then what a20Mask shows). */
  a20Gate?: boolean;
  a20Mask: number; icount: number; extraCycles: number; halted: boolean; shutdown: boolean;
  intrLine: boolean; nmiPending: boolean; nmiBlocked: boolean; shadowAt: number;
  inhibitDebugAt: number; debugTrap: number;
  /** Triples: linear page, read entry, write entry. */
  tlb: number[];
  vmx: VmxSnapshot;
}

export class Cpu {
  // ---- Architectural state ----
  readonly regs = new Int32Array(8);
  eip = 0;
  prevEip = 0;
  /** EFLAGS except the arithmetic flags while they are lazy (lzOp !== LZ_NONE). */
  flags = FLAGS_FIXED1;
  lzOp = LZ_NONE;
  lzA = 0;
  lzB = 0;
  lzRes = 0;
  // Mask and sign bit of the lazy operation's size, as int32 patterns (-1, -0x80000000 for 32
  // bits) so that V8 keeps them as small integers rather than boxed doubles.
  lzMask = -1;
  lzSign = -0x80000000;
  cr0 = 0x60000010;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  readonly dr = new Int32Array(8);
  cpl = 0;
  readonly seg = new Uint16Array(8);
  readonly segBase = new Int32Array(8);
  readonly segLimit = new Uint32Array(8);
  readonly segAr = new Int32Array(8);
  gdtrBase = 0;
  gdtrLimit = 0xffff;
  idtrBase = 0;
  idtrLimit = 0xffff;
  /** Model-specific registers not held elsewhere, by index. */
  readonly msrs = new Map<number, bigint>();
  /** TSC offset written by WRMSR(TSC): the TSC reads readTsc() + tscOffset. */
  tscOffset = 0n;
  /** MONITOR armed the address-range monitor; MWAIT disarms it (exec/system.ts, docs/CPU-MODEL.md). */
  monitorArmed = false;
  /** The A20 gate as the machine drives it (port 92H, the 8042): false asserts A20M#. */
  a20Gate = true;
  /**
   * Physical address mask (int32): bit 20 cleared in A20M mode, else -1. A20M mode is the gate
   * disabled outside VMX operation: VMX operation blocks A20M (SDM 23.8), VMXOFF re-enables it.
   */
  a20Mask = -1;
  /** VMX operation, VMXON region and current-VMCS pointer (vmx/). */
  readonly vmx = new VmxState();

  // ---- Execution state ----
  icount = 0;
  /** Virtual time beyond retired instructions: REP iterations and halted time. */
  extraCycles = 0;
  halted = false;
  shutdown = false;
  intrLine = false;
  nmiPending = false;
  /** NMIs are blocked from NMI delivery until the next IRET. */
  nmiBlocked = false;
  /** icount value during which the MOV SS / POP SS / STI interrupt shadow is in force. */
  shadowAt = -1;
  /** icount value during which debug traps are held back too (MOV SS / POP SS only, not STI). */
  inhibitDebugAt = -1;
  /** DR6 bits of debug traps pending at the end of the current instruction (debug.ts). */
  debugTrap = 0;
  /** Something between instructions needs looking at: interrupts, halt, stop, shadow. */
  attention = false;
  /** Leave the current block after this instruction (code written, state changed). */
  yieldBlock = false;
  stopRequested = false;
  /** Set by a REP string instruction that stops early: it does not retire this time. */
  noRetire = false;
  /** Cycle count at which the current run() returns; REP instructions chunk against it. */
  runUntil = 0;
  /** Per-instruction path: single-step, breakpoints. */
  slowMode = false;
  /**
   * Changes whenever the mapping from CS:EIP to decoded blocks may change (CS cache, mode, CPL,
   * paging, TLB flushes): block successor links are valid only within one epoch.
   */
  codeEpoch = 0;
  /**
   * Exceptions delivered in a row without an instruction retiring between them: a guest stuck
   * in an exception loop (a handler that faults again at once) never retires anything, and the
   * machine stops it by this count (Machine.run, stop kind "livelock").
   */
  faultStreak = 0;
  private faultStreakIcount = -1;
  /** Runs after which a block is compiled (block.ts); Infinity keeps every block interpreted. */
  compileThreshold = HOT_RUNS;
  /** Alignment checking (CR0.AM, EFLAGS.AC, CPL 3) is in force. */
  alignCheck = false;
  pagingOn = false;
  /** Linear addresses go through the TLB: paging, or EPT in VMX non-root operation (an unpaged guest). */
  tlbOn = false;
  events: CpuEvents | null = null;
  /**
   * Called with every instruction this CPU decodes, before it first runs; may replace its
   * `exec`. For tests and tools that change one CPU's semantics (record/replay divergence
   * tests) without touching the shared handler tables; decode time only, so it costs nothing
   * while running. Set it before the code runs (or call flushCodeCache()).
   */
  onDecode: ((i: Insn) => void) | null = null;

  /** Acknowledges INTR and returns the vector (the machine's PIC/APIC). */
  interruptAck: () => number = () => 0xff;
  /** Time-stamp counter source (the machine's Env). */
  readTsc: () => bigint = () => BigInt(this.icount + this.extraCycles);
  /** Told of every accepted WRMSR to IA32_APIC_BASE (the machine's local APIC follows it). */
  onApicBaseWrite: (value: number) => void = () => {};

  // ---- Derived segment access windows (inclusive offset bounds, access bits) ----
  readonly segLo = new Float64Array(8);
  readonly segHi = new Float64Array(8);
  /** Bit 0: readable, bit 1: writable. */
  readonly segAcc = new Uint8Array(8);

  // ---- TLB: per linear page, physical page | 1 (supervisor ok) | 2 (user ok) | 4 (global) ----
  readonly tlbRead = new Int32Array(1 << 20);
  readonly tlbWrite = new Int32Array(1 << 20);
  /** Linear page numbers with a TLB entry, for flushing without scanning 1M entries. */
  tlbPages: number[] = [];

  // ---- Decoded-block cache ----
  private readonly blockCache: (Block | null)[] = new Array(BLOCK_CACHE_SLOTS).fill(null);
  private readonly pageBlocks = new Map<number, Block[]>();
  private readonly scratch = new Insn(() => {});
  private readonly ram: Uint8Array;
  private readonly view: DataView;
  private readonly pageFlags: Uint8Array;
  private decodeBase = 0;
  private decodeLimit = 0;
  private readonly blockReader: CodeReader = {
    byte: (k: number) => {
      const off = this.decodeBase + k;
      if (off >= this.decodeLimit) throw END_OF_BLOCK;
      return this.readPhys8(off);
    },
  };
  private fetchEip = 0;
  private readonly linearReader: CodeReader = { byte: (k: number) => this.fetchByte(this.fetchEip + k) };

  constructor(readonly mem: PhysicalMemory, readonly io: PortBus) {
    this.ram = mem.ram;
    this.view = mem.view;
    this.pageFlags = mem.pageFlags;
    this.reset();
  }

  /** Power-on / RESET state (SDM Vol. 3A Table 9-1). */
  reset(): void {
    this.regs.fill(0);
    this.regs[EDX] = CPUID_SIGNATURE;
    this.eip = 0xfff0;
    this.prevEip = 0xfff0;
    this.lzOp = LZ_NONE;
    this.flags = FLAGS_FIXED1;
    this.cr0 = 0x60000010;
    this.cr2 = this.cr3 = this.cr4 = 0;
    this.dr.fill(0);
    this.dr[6] = 0xffff0ff0 | 0;
    this.dr[7] = 0x400;
    this.cpl = 0;
    for (let s = 0; s < 6; s++) this.setSegCache(s, 0, 0, 0xffff, 0x93);
    this.setSegCache(CS, 0xf000, 0xffff0000 | 0, 0xffff, 0x9b);
    this.setSegCache(LDTR, 0, 0, 0xffff, 0x82);
    this.setSegCache(TR, 0, 0, 0xffff, 0x8b);
    this.gdtrBase = this.idtrBase = 0;
    this.gdtrLimit = this.idtrLimit = 0xffff;
    this.msrs.clear();
    this.tscOffset = 0n;
    this.monitorArmed = false;
    this.vmx.reset();
    this.halted = this.shutdown = this.nmiPending = this.nmiBlocked = false;
    this.shadowAt = this.inhibitDebugAt = -1;
    this.debugTrap = 0;
    this.attention = true;
    flushTlb(this, false);
    this.flushCodeCache();
    this.updateMode();
  }

  /** The A20 gate line (the machine's port 92H and 8042 output port drive it). */
  setA20Gate(enabled: boolean): void {
    this.a20Gate = enabled;
    this.updateA20M();
  }
  /** A20M mode from the gate and VMX operation (SDM 23.8; VMXON blocks A20M, VMXOFF unblocks it). */
  updateA20M(): void {
    const mask = this.a20Gate || this.vmx.on ? -1 : A20M_MASK;
    if (this.a20Mask === mask) return;
    this.a20Mask = mask;
    flushTlb(this, false);
  }

  // ---------------------------------------------------------------- registers
  getReg8(n: number): number {
    return n < 4 ? this.regs[n] & 0xff : (this.regs[n - 4] >> 8) & 0xff;
  }
  setReg8(n: number, v: number): void {
    if (n < 4) this.regs[n] = (this.regs[n] & ~0xff) | (v & 0xff);
    else this.regs[n - 4] = (this.regs[n - 4] & ~0xff00) | ((v & 0xff) << 8);
  }
  getReg16(n: number): number {
    return this.regs[n] & 0xffff;
  }
  setReg16(n: number, v: number): void {
    this.regs[n] = (this.regs[n] & ~0xffff) | (v & 0xffff);
  }
  getReg(n: number, o32: boolean): number {
    return o32 ? this.regs[n] : this.regs[n] & 0xffff;
  }
  setReg(n: number, v: number, o32: boolean): void {
    if (o32) this.regs[n] = v;
    else this.regs[n] = (this.regs[n] & ~0xffff) | (v & 0xffff);
  }

  // ---------------------------------------------------------------- flags
  /** Records an arithmetic result whose flags are computed only when read. size: 8, 16 or 32. */
  setLazy(op: number, a: number, b: number, res: number, size: number): void {
    this.lzOp = op;
    this.lzA = a;
    this.lzB = b;
    this.lzRes = res;
    // Branch-free (1 << 31 is -0x80000000, and doubling it leaves 0, so the mask is -1): the
    // less bytecode here, the more of a compiled block V8 inlines (its budget counts bytecode).
    const sign = 1 << (size - 1);
    this.lzSign = sign;
    this.lzMask = (sign << 1) - 1;
  }
  /** INC/DEC: like ADD/SUB of 1 but CF keeps its value, so it is materialised first. */
  setLazyIncDec(op: number, a: number, res: number, size: number): void {
    if (this.lzOp !== LZ_NONE) this.flags = (this.flags & ~CF) | (this.getCF() ? CF : 0);
    this.setLazy(op, a, 1, res, size);
  }
  getCF(): boolean {
    const m = this.lzMask;
    switch (this.lzOp) {
      case LZ_ADD: return ((this.lzRes & m) >>> 0) < ((this.lzA & m) >>> 0);
      case LZ_ADC: return this.adcCarry();
      case LZ_SUB: return ((this.lzA & m) >>> 0) < ((this.lzB & m) >>> 0);
      case LZ_SBB: return this.sbbBorrow();
      case LZ_LOGIC: return false;
      default: return (this.flags & CF) !== 0;
    }
  }
  /** ADC carry out: recomputed exactly from the operands and result (carry-in = res - a - b). */
  private adcCarry(): boolean {
    const m = this.lzMask;
    const a = (this.lzA & m) >>> 0, b = (this.lzB & m) >>> 0, r = (this.lzRes & m) >>> 0;
    const cin = ((r - a - b) & m) === 0 ? 0 : 1;
    return a + b + cin > m >>> 0;
  }
  private sbbBorrow(): boolean {
    const m = this.lzMask;
    const a = (this.lzA & m) >>> 0, b = (this.lzB & m) >>> 0, r = (this.lzRes & m) >>> 0;
    const bin = ((a - b - r) & m) === 0 ? 0 : 1;
    return a < b + bin;
  }
  getPF(): boolean {
    return this.lzOp === LZ_NONE ? (this.flags & PF) !== 0 : PARITY[this.lzRes & 0xff] !== 0;
  }
  getAF(): boolean {
    switch (this.lzOp) {
      case LZ_NONE: return (this.flags & AF) !== 0;
      case LZ_LOGIC: return false;
      default: return ((this.lzA ^ this.lzB ^ this.lzRes) & 0x10) !== 0;
    }
  }
  getZF(): boolean {
    return this.lzOp === LZ_NONE ? (this.flags & ZF) !== 0 : (this.lzRes & this.lzMask) === 0;
  }
  getSF(): boolean {
    return this.lzOp === LZ_NONE ? (this.flags & SF) !== 0 : (this.lzRes & this.lzSign) !== 0;
  }
  getOF(): boolean {
    const s = this.lzSign;
    switch (this.lzOp) {
      case LZ_ADD: case LZ_ADC: case LZ_INC:
        return ((this.lzA ^ this.lzRes) & (this.lzB ^ this.lzRes) & s) !== 0;
      case LZ_SUB: case LZ_SBB: case LZ_DEC:
        return ((this.lzA ^ this.lzB) & (this.lzA ^ this.lzRes) & s) !== 0;
      case LZ_LOGIC: return false;
      default: return (this.flags & OF) !== 0;
    }
  }
  /** Turns lazy arithmetic flags into bits of this.flags. */
  materializeFlags(): void {
    if (this.lzOp === LZ_NONE) return;
    let f = this.flags & ~(CF | PF | AF | ZF | SF | OF);
    if (this.getCF()) f |= CF;
    if (this.getPF()) f |= PF;
    if (this.getAF()) f |= AF;
    if (this.getZF()) f |= ZF;
    if (this.getSF()) f |= SF;
    if (this.getOF()) f |= OF;
    this.flags = f;
    this.lzOp = LZ_NONE;
  }
  getEflags(): number {
    this.materializeFlags();
    return this.flags;
  }
  /** Stores EFLAGS as given (no privilege rules: those belong to POPF/IRET). */
  setEflags(v: number): void {
    this.lzOp = LZ_NONE;
    const old = this.flags;
    this.flags = (v & FLAGS_IMPLEMENTED) | FLAGS_FIXED1;
    if ((old ^ this.flags) & (VM | TF | AC | IF | RF)) this.updateMode();
  }
  /** Writes the flags in `mask` to `bits`, keeping the others. */
  setFlagBits(mask: number, bits: number): void {
    this.setEflags((this.getEflags() & ~mask) | (bits & mask));
  }

  // ---------------------------------------------------------------- mode
  get protectedMode(): boolean {
    return (this.cr0 & CR0_PE) !== 0;
  }
  get v86(): boolean {
    return (this.flags & VM) !== 0;
  }
  /** Recomputes state derived from CR0/CR4/EFLAGS/CPL; call after changing any of them. */
  updateMode(): void {
    this.pagingOn = (this.cr0 & (CR0_PG | CR0_PE)) === (CR0_PG | CR0_PE);
    this.tlbOn = this.pagingOn || this.vmx.guest.eptRoot >= 0; // EPT is set only between VM entry and exit
    this.alignCheck = (this.cr0 & CR0_AM) !== 0 && (this.flags & AC) !== 0 && this.cpl === 3;
    this.slowMode = (this.flags & (TF | RF)) !== 0 || breakpointsEnabled(this) || this.vmx.events.monitorTrap;
    for (let s = 0; s < 6; s++) this.computeWindow(s);
    this.attention = true;
    this.yieldBlock = true;
    this.codeEpoch++;
  }
  setCpl(cpl: number): void {
    this.cpl = cpl;
    this.updateMode();
  }

  // ---------------------------------------------------------------- segments
  /** Fills a descriptor cache (hidden part) and its derived access window. */
  setSegCache(s: number, sel: number, base: number, limit: number, ar: number): void {
    this.seg[s] = sel;
    this.segBase[s] = base;
    this.segLimit[s] = limit >>> 0;
    this.segAr[s] = ar;
    if (s < 6) this.computeWindow(s);
    if (s === CS) this.codeEpoch++;
  }
  private computeWindow(s: number): void {
    const ar = this.segAr[s], limit = this.segLimit[s];
    const real = !this.protectedMode || this.v86;
    if (!real && ar & AR_UNUSABLE) {
      this.segAcc[s] = 0;
      this.segLo[s] = 1;
      this.segHi[s] = 0;
      return;
    }
    const code = (ar & 8) !== 0;
    if (real) this.segAcc[s] = 3; // real and V86 mode do no type checks
    else if (code) this.segAcc[s] = ar & 2 ? 1 : 0;
    else this.segAcc[s] = ar & 2 ? 3 : 1;
    if (!code && ar & 4) { // expand-down
      this.segLo[s] = limit + 1;
      this.segHi[s] = ar & AR_DB ? 0xffffffff : 0xffff;
    } else {
      this.segLo[s] = 0;
      this.segHi[s] = limit;
    }
  }
  /** Loads a segment register by the rules of the current mode (CS only through far transfers). */
  loadSeg(s: number, sel: number): void {
    if (!this.protectedMode) {
      this.setSegCache(s, sel, sel << 4, this.segLimit[s], (this.segAr[s] & ~AR_UNUSABLE) | 0x80);
    } else if (this.v86) {
      this.setSegCache(s, sel, sel << 4, 0xffff, 0xf3);
    } else {
      loadSegProtected(this, s, sel);
    }
    if (s === SS) this.shadowAt = this.inhibitDebugAt = this.icount + 1;
  }
  /** Linear address of seg:off after the limit and type checks (#GP(0), or #SS(0) for SS). */
  linear(s: number, off: number, size: number, write: boolean): number {
    off >>>= 0;
    if (off < this.segLo[s] || off + size - 1 > this.segHi[s] || (this.segAcc[s] & (write ? 2 : 1)) === 0) {
      this.fault(s === SS ? EXC_SS : EXC_GP, 0);
    }
    if (this.alignCheck && (off & (size - 1)) !== 0) this.fault(EXC_AC, 0);
    return (this.segBase[s] + off) | 0;
  }

  // ---------------------------------------------------------------- memory: segmented
  /** Effective offset of a ModRM memory operand, masked to the address size. */
  ea(i: Insn): number {
    let a = i.disp;
    if (i.base >= 0) a += this.regs[i.base];
    if (i.index >= 0) a += this.regs[i.index] << i.scale;
    return i.a32 ? a | 0 : a & 0xffff;
  }
  read8(s: number, off: number): number {
    return this.readLinear8(this.linear(s, off, 1, false), this.cpl === 3);
  }
  read16(s: number, off: number): number {
    return this.readLinear16(this.linear(s, off, 2, false), this.cpl === 3);
  }
  read32(s: number, off: number): number {
    return this.readLinear32(this.linear(s, off, 4, false), this.cpl === 3);
  }
  write8(s: number, off: number, v: number): void {
    this.writeLinear8(this.linear(s, off, 1, true), v, this.cpl === 3);
  }
  write16(s: number, off: number, v: number): void {
    this.writeLinear16(this.linear(s, off, 2, true), v, this.cpl === 3);
  }
  write32(s: number, off: number, v: number): void {
    this.writeLinear32(this.linear(s, off, 4, true), v, this.cpl === 3);
  }
  /** Linear address of the last readModify*, for the writeModified* that completes it. */
  private rmwLin = 0;
  /**
   * Read for a read-modify-write: the segment and page are checked for writing before the
   * read (as Bochs does), so a fault reports a write and nothing is half-done.
   */
  readModify8(s: number, off: number): number {
    const lin = this.linear(s, off, 1, true);
    this.probeWrite(lin, 1);
    this.rmwLin = lin;
    return this.readLinear8(lin, this.cpl === 3);
  }
  readModify16(s: number, off: number): number {
    const lin = this.linear(s, off, 2, true);
    this.probeWrite(lin, 2);
    this.rmwLin = lin;
    return this.readLinear16(lin, this.cpl === 3);
  }
  readModify32(s: number, off: number): number {
    const lin = this.linear(s, off, 4, true);
    this.probeWrite(lin, 4);
    this.rmwLin = lin;
    return this.readLinear32(lin, this.cpl === 3);
  }
  writeModified8(v: number): void { this.writeLinear8(this.rmwLin, v, this.cpl === 3); }
  writeModified16(v: number): void { this.writeLinear16(this.rmwLin, v, this.cpl === 3); }
  writeModified32(v: number): void { this.writeLinear32(this.rmwLin, v, this.cpl === 3); }

  // ModRM operand helpers: register when mod = 3, else memory at cpu.ea(i).
  readE8(i: Insn): number {
    return i.mod === 3 ? this.getReg8(i.rm) : this.read8(i.seg, this.ea(i));
  }
  readE16(i: Insn): number {
    return i.mod === 3 ? this.regs[i.rm] & 0xffff : this.read16(i.seg, this.ea(i));
  }
  readE32(i: Insn): number {
    return i.mod === 3 ? this.regs[i.rm] : this.read32(i.seg, this.ea(i));
  }
  readEv(i: Insn): number {
    return i.o32 ? this.readE32(i) : this.readE16(i);
  }
  writeE8(i: Insn, v: number): void {
    if (i.mod === 3) this.setReg8(i.rm, v);
    else this.write8(i.seg, this.ea(i), v);
  }
  writeE16(i: Insn, v: number): void {
    if (i.mod === 3) this.setReg16(i.rm, v);
    else this.write16(i.seg, this.ea(i), v);
  }
  writeE32(i: Insn, v: number): void {
    if (i.mod === 3) this.regs[i.rm] = v;
    else this.write32(i.seg, this.ea(i), v);
  }
  writeEv(i: Insn, v: number): void {
    if (i.o32) this.writeE32(i, v);
    else this.writeE16(i, v);
  }

  // ---------------------------------------------------------------- stack
  /** The stack offset `delta` bytes from ESP, wrapped to the stack's address size (SS.B). */
  private spPlus(delta: number): number {
    return this.segAr[SS] & AR_DB ? (this.regs[ESP] + delta) | 0 : (this.regs[ESP] + delta) & 0xffff;
  }
  /** Pushes write first and move ESP after, so a faulting push leaves ESP as it was. */
  push16(v: number): void {
    this.write16(SS, this.spPlus(-2), v);
    this.addSp(-2);
  }
  push32(v: number): void {
    this.write32(SS, this.spPlus(-4), v);
    this.addSp(-4);
  }
  push(v: number, o32: boolean): void {
    if (o32) this.push32(v);
    else this.push16(v);
  }
  /** Stack pointer as an offset (ESP or SP by SS.B). */
  get sp(): number {
    return this.spPlus(0);
  }
  /** Adds to ESP or SP by SS.B. */
  addSp(n: number): void {
    if (this.segAr[SS] & AR_DB) this.regs[ESP] = (this.regs[ESP] + n) | 0;
    else this.setReg16(ESP, this.regs[ESP] + n);
  }
  pop16(): number {
    const v = this.read16(SS, this.sp);
    this.addSp(2);
    return v;
  }
  pop32(): number {
    const v = this.read32(SS, this.sp);
    this.addSp(4);
    return v;
  }
  pop(o32: boolean): number {
    return o32 ? this.pop32() : this.pop16();
  }

  // ---------------------------------------------------------------- memory: linear
  /** Physical address for a linear access (paging and A20); faults with #PF as paging says. */
  translateLinear(lin: number, access: number, user: boolean): number {
    if (!this.tlbOn) return (lin & this.a20Mask) >>> 0;
    const page = lin >>> 12;
    const e = access === ACC_WRITE ? this.tlbWrite[page] : this.tlbRead[page];
    if (e & (user ? 2 : 1)) return ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
    return translate(this, lin, access, user) >>> 0;
  }
  /** An instruction fetch's physical address: as translateLinear, but a read entry marked not executable (EPT) walks. */
  translateFetch(lin: number): number {
    if (!this.tlbOn) return (lin & this.a20Mask) >>> 0;
    const mask = this.cpl === 3 ? TLB_USER : TLB_SUP;
    const e = this.tlbRead[lin >>> 12];
    if ((e & (mask | TLB_NOEXEC)) === mask) return ((e & ~0xfff) | (lin & 0xfff)) >>> 0;
    return translate(this, lin, ACC_EXEC, this.cpl === 3) >>> 0;
  }
  /** Checks (and sets A/D bits for) every page a write of `size` bytes at `lin` touches. */
  probeWrite(lin: number, size: number): void {
    const user = this.cpl === 3;
    this.translateLinear(lin, ACC_WRITE, user);
    // The second page is checked at its first byte: that is the address a fault reports in CR2.
    if ((lin & 0xfff) + size > 0x1000) this.translateLinear(((lin | 0xfff) + 1) | 0, ACC_WRITE, user);
  }
  readLinear8(lin: number, user: boolean): number {
    if (this.slowMode) debugDataAccess(this, lin, 1, false);
    return this.readPhys8(this.translateLinear(lin, ACC_READ, user));
  }
  readLinear16(lin: number, user: boolean): number {
    if (this.slowMode) debugDataAccess(this, lin, 2, false);
    if ((lin & 0xfff) === 0xfff) {
      return this.readLinear8(lin, user) | (this.readLinear8((lin + 1) | 0, user) << 8);
    }
    return this.readPhys16(this.translateLinear(lin, ACC_READ, user));
  }
  readLinear32(lin: number, user: boolean): number {
    if (this.slowMode) debugDataAccess(this, lin, 4, false);
    if ((lin & 0xfff) > 0xffc) {
      // Both pages are translated first page first (a fault in the second reports its first byte).
      const split = 0x1000 - (lin & 0xfff);
      const p1 = this.translateLinear(lin, ACC_READ, user);
      const p2 = this.translateLinear((lin + split) | 0, ACC_READ, user);
      let v = 0;
      for (let k = 3; k >= 0; k--) v = (v << 8) | this.readPhys8(k < split ? p1 + k : p2 + (k - split));
      return v;
    }
    return this.readPhys32(this.translateLinear(lin, ACC_READ, user));
  }
  writeLinear8(lin: number, v: number, user: boolean): void {
    if (this.slowMode) debugDataAccess(this, lin, 1, true);
    this.writePhys8(this.translateLinear(lin, ACC_WRITE, user), v);
  }
  writeLinear16(lin: number, v: number, user: boolean): void {
    if (this.slowMode) debugDataAccess(this, lin, 2, true);
    if ((lin & 0xfff) === 0xfff) this.writeSplit(lin, v, 2, user);
    else this.writePhys16(this.translateLinear(lin, ACC_WRITE, user), v);
  }
  writeLinear32(lin: number, v: number, user: boolean): void {
    if (this.slowMode) debugDataAccess(this, lin, 4, true);
    if ((lin & 0xfff) > 0xffc) this.writeSplit(lin, v, 4, user);
    else this.writePhys32(this.translateLinear(lin, ACC_WRITE, user), v);
  }
  /** A write spanning two pages: both are translated (and may fault) before either is written. */
  private writeSplit(lin: number, v: number, size: number, user: boolean): void {
    const split = 0x1000 - (lin & 0xfff);
    const p1 = this.translateLinear(lin, ACC_WRITE, user);
    const p2 = this.translateLinear((lin + split) | 0, ACC_WRITE, user);
    for (let k = 0; k < size; k++) {
      const p = k < split ? p1 + k : p2 + (k - split);
      this.writePhys8(p, (v >>> (8 * k)) & 0xff);
    }
  }

  // ---------------------------------------------------------------- memory: physical
  readPhys8(p: number): number {
    return (this.pageFlags[p >>> 12] & PF_SLOW) === 0 ? this.ram[p] : this.mem.readSlow(p, 1);
  }
  readPhys16(p: number): number {
    return (this.pageFlags[p >>> 12] & PF_SLOW) === 0 ? this.view.getUint16(p, true) : this.mem.readSlow(p, 2);
  }
  readPhys32(p: number): number {
    return (this.pageFlags[p >>> 12] & PF_SLOW) === 0 ? this.view.getInt32(p, true) : this.mem.readSlow(p, 4) | 0;
  }
  writePhys8(p: number, v: number): void {
    if (this.pageFlags[p >>> 12] === 0) this.ram[p] = v;
    else this.writePhysSlow(p, 1, v);
  }
  writePhys16(p: number, v: number): void {
    if (this.pageFlags[p >>> 12] === 0) this.view.setUint16(p, v, true);
    else this.writePhysSlow(p, 2, v);
  }
  writePhys32(p: number, v: number): void {
    if (this.pageFlags[p >>> 12] === 0) this.view.setInt32(p, v, true);
    else this.writePhysSlow(p, 4, v);
  }
  private writePhysSlow(p: number, size: 1 | 2 | 4, v: number): void {
    if (this.pageFlags[p >>> 12] & PF_CODE) this.invalidateCode(p, size);
    // Handlers may pass values with bits above the access size (RAM stores drop them); MMIO
    // devices get exactly the bytes written.
    this.mem.writeSlow(p, size, size === 4 ? v | 0 : v & (size === 2 ? 0xffff : 0xff));
  }

  // ---------------------------------------------------------------- I/O
  ioRead(port: number, size: 1 | 2 | 4): number {
    const v = this.io.read(port & 0xffff, size);
    this.events?.onIo?.(port, size, v, false);
    return v;
  }
  ioWrite(port: number, size: 1 | 2 | 4, v: number): void {
    this.events?.onIo?.(port, size, v, true);
    this.io.write(port & 0xffff, size, v);
  }

  // ---------------------------------------------------------------- faults
  fault(vector: number, errorCode: number): never {
    FAULT.vector = vector;
    FAULT.errorCode = errorCode & 0xffff;
    FAULT.hasError = true;
    throw FAULT;
  }
  faultNoCode(vector: number): never {
    FAULT.vector = vector;
    FAULT.errorCode = 0;
    FAULT.hasError = false;
    throw FAULT;
  }

  // ---------------------------------------------------------------- external events
  setIntr(level: boolean): void {
    this.intrLine = level;
    if (level) {
      this.attention = true;
      this.yieldBlock = true;
    }
  }
  nmi(): void {
    this.nmiPending = true;
    this.attention = true;
    this.yieldBlock = true;
  }
  requestStop(): void {
    this.stopRequested = true;
    this.yieldBlock = true;
    this.attention = true; // also ends a REP string instruction's chunk
  }
  get cycles(): number {
    return this.icount + this.extraCycles;
  }

  // ---------------------------------------------------------------- run loop
  /** Runs until virtual time reaches `until`, or a halt, shutdown or stop request. */
  run(until: number): void {
    this.stopRequested = false;
    this.runUntil = until;
    while (!this.stopRequested && !this.shutdown && this.cycles < until) {
      try {
        const limit = this.vmx.nonRoot ? guestRunLimit(this, until) : until; // the preemption timer
        if (this.attention && !this.serviceEvents()) return;
        if (this.slowMode || this.shadowAt === this.icount) this.stepOne();
        else this.runBlocks(limit - this.extraCycles);
      } catch (e) {
        if (e === VM_EXITED) {
          this.noRetire = false; // a VM exit ended the instruction: the host runs next
          continue;
        }
        if (e !== FAULT) throw e;
        this.eip = this.prevEip;
        this.noRetire = false;
        // Delivering an exception takes one cycle of virtual time, so that even a loop of
        // exceptions lets time (devices, run slices) move on.
        this.extraCycles++;
        if (this.faultStreakIcount !== this.icount) {
          this.faultStreakIcount = this.icount;
          this.faultStreak = 0;
        }
        this.faultStreak++;
        this.events?.onException?.(FAULT.vector, FAULT.errorCode, FAULT.hasError, this.eip);
        try {
          deliverException(this, FAULT.vector, FAULT.errorCode, FAULT.hasError);
        } catch (e2) {
          if (e2 !== VM_EXITED) throw e2; // a VM exit ended the delivery
        }
      }
    }
  }
  /**
   * Handles what is pending between instructions: NMI, INTR, halt. Returns false when the CPU
   * cannot go on (halted with nothing to deliver).
   */
  private serviceEvents(): boolean {
    this.attention = false;
    if (this.vmx.guest.tprPending !== 0 && this.vmx.nonRoot) tprVirtualization(this);
    if (this.vmx.nonRoot) return serviceGuestEvents(this); // VM exits, windows, MTF, timer (vmx/events.ts)
    if (this.debugTrap !== 0 && this.inhibitDebugAt !== this.icount) deliverPendingDebugTrap(this);
    const shadow = this.shadowAt === this.icount;
    if (this.nmiPending && !this.nmiBlocked && !shadow) this.takeNmi();
    else if (this.intrLine && (this.flags & IF) !== 0 && !shadow) this.takeIntr();
    if (shadow || this.nmiPending || (this.intrLine && (this.flags & IF) !== 0)) this.attention = true;
    if (this.halted) {
      this.attention = true;
      return false;
    }
    return true;
  }
  /** Delivers the pending NMI through the IDT. */
  takeNmi(): void {
    this.nmiPending = false;
    this.halted = false;
    this.events?.onInterrupt?.(EXC_NMI, EV_NMI);
    deliverInterrupt(this, EXC_NMI, EV_NMI);
  }
  /** Acknowledges INTR and delivers the interrupt through the IDT. */
  takeIntr(): void {
    this.halted = false;
    const vector = this.interruptAck() & 0xff;
    this.events?.onInterrupt?.(vector, EV_EXTERNAL);
    deliverInterrupt(this, vector, EV_EXTERNAL);
  }
  /** Whether an event can end the HLT state now (the machine idles the CPU until one can); a VMX guest's own rules. */
  canWake(): boolean {
    if (this.vmx.nonRoot) return guestCanWake(this);
    return (this.nmiPending && !this.nmiBlocked) || (this.intrLine && (this.flags & IF) !== 0);
  }
  /** Whether a device interrupt can end the HLT state: with IF = 1; a VMX guest's own rules. */
  interruptsCanWake(): boolean {
    return this.vmx.nonRoot ? guestInterruptsWake(this) : (this.flags & IF) !== 0;
  }
  /** The cycle at which the CPU itself ends a halt (a guest's VMX-preemption timer), else Infinity. */
  wakeCycle(): number {
    return this.vmx.nonRoot ? guestTimerDeadline(this) : Infinity;
  }
  /**
   * Executes decoded blocks, following successor links from one to the next, until the
   * instruction count reaches `stopIcount` or something needs the run loop (a yield, pending
   * events, the interrupt shadow, a REP instruction that stopped early).
   */
  private runBlocks(stopIcount: number): void {
    let block = this.currentBlock();
    if (block === null) {
      this.stepOne();
      return;
    }
    this.yieldBlock = false;
    for (;;) {
      if (block.compiled !== null) {
        block.compiled(this, stopIcount);
      } else {
        if (++block.runs === this.compileThreshold) block.compiled = compileBlock(block);
        this.interpretBlock(block, stopIcount);
      }
      if (this.noRetire) {
        this.noRetire = false;
        return;
      }
      if (this.yieldBlock || this.attention || this.icount >= stopIcount || this.shadowAt === this.icount) return;
      const eip = this.eip;
      let next = block.successor(eip, this.codeEpoch);
      if (next === null) {
        next = this.currentBlock();
        if (next === null) return;
        block.link(eip, this.codeEpoch, next);
      }
      block = next;
    }
  }
  /** The reference execution of a block; compiled blocks (block.ts) do exactly the same. */
  private interpretBlock(block: Block, stopIcount: number): void {
    const insns = block.insns, n = insns.length;
    let k = 0;
    do {
      const i = insns[k];
      this.prevEip = this.eip;
      this.eip = (this.eip + i.len) >>> 0;
      i.exec(this, i);
      if (this.noRetire) return;
      this.icount++;
    } while (++k < n && this.icount < stopIcount && !this.yieldBlock);
  }
  /** Executes one instruction on the per-instruction path (single-step, breakpoints, shadow). */
  private stepOne(): void {
    const block = this.currentBlock();
    const i = block !== null ? block.insns[0] : this.decodeAt(this.eip);
    const tf = (this.flags & TF) !== 0;
    this.prevEip = this.eip;
    if (this.slowMode) debugBeforeInsn(this);
    this.eip = (this.eip + i.len) >>> 0;
    const guest = this.vmx.nonRoot, transitions = this.vmx.transitions;
    i.exec(this, i);
    if (guest && this.vmx.nonRoot) guestInstructionDone(this); // the monitor trap flag
    if (this.noRetire) {
      this.noRetire = false;
      return;
    }
    this.icount++;
    // An instruction that VM-exited did not complete, and a VM entry's own single-step trap does
    // not happen (nor, after a VM-entry failure, in the host): no debug traps of its own.
    if ((this.slowMode || tf) && this.vmx.transitions === transitions) debugAfterInsn(this, tf);
  }
  /** Decodes one instruction through linear fetches (page-crossing or uncacheable code). */
  private decodeAt(eip: number): Insn {
    this.fetchEip = eip;
    decode(this.linearReader, (this.segAr[CS] & AR_DB) !== 0, this.scratch);
    this.onDecode?.(this.scratch);
    return this.scratch;
  }
  /** Fetches one code byte at CS:off with the CS limit check and paging (execute access). */
  fetchByte(off: number): number {
    off >>>= 0;
    if (off > this.segLimit[CS]) this.fault(EXC_GP, 0);
    const lin = (this.segBase[CS] + off) | 0;
    return this.readPhys8(this.translateFetch(lin));
  }
  /** The cached block at CS:EIP, decoding it if needed; null when it must not be cached. */
  private currentBlock(): Block | null {
    const eip = this.eip;
    if (eip > this.segLimit[CS]) this.fault(EXC_GP, 0);
    const lin = (this.segBase[CS] + eip) | 0;
    const phys = this.translateFetch(lin);
    const d32 = (this.segAr[CS] & AR_DB) !== 0;
    const slot = ((phys >>> 0) ^ (phys >>> 14) ^ (d32 ? 0x2aaa : 0)) & (BLOCK_CACHE_SLOTS - 1);
    let b = this.blockCache[slot];
    if (b === null || b.phys !== phys || b.d32 !== d32 || !b.valid) {
      // Code in MMIO is decoded afresh each time; ROM is slow to read but immutable, so cached.
      if ((this.pageFlags[phys >>> 12] & (PF_SLOW | PF_ROM)) === PF_SLOW) return null;
      b = this.decodeBlock(phys, d32, eip);
      if (b === null) return null;
      this.blockCache[slot] = b;
    }
    if (eip + b.bytes - 1 > this.segLimit[CS]) return null;
    return b;
  }
  private decodeBlock(phys: number, d32: boolean, eip: number): Block | null {
    const page = phys >>> 12;
    const pageEnd = (page + 1) * 0x1000;
    const limitEnd = phys + (this.segLimit[CS] - eip) + 1;
    const block = new Block(phys, d32, 0);
    let at = phys;
    while (block.insns.length < MAX_BLOCK_INSNS) {
      this.decodeBase = at;
      this.decodeLimit = Math.min(pageEnd, limitEnd);
      const insn = new Insn(this.scratch.exec);
      try {
        decode(this.blockReader, d32, insn);
      } catch (e) {
        if (e !== END_OF_BLOCK) throw e;
        break;
      }
      this.onDecode?.(insn);
      block.insns.push(insn);
      at += insn.len;
      if (insn.form === null || insn.form.attrs & 4 /* A_END */) break;
    }
    if (block.insns.length === 0) return null;
    block.bytes = at - phys;
    let list = this.pageBlocks.get(page);
    if (list === undefined) this.pageBlocks.set(page, (list = []));
    list.push(block);
    this.pageFlags[page] |= PF_CODE;
    return block;
  }
  /** Drops cached blocks overlapping a written physical range; ends the current block. */
  private invalidateCode(p: number, size: number): void {
    const page = p >>> 12;
    const list = this.pageBlocks.get(page);
    if (list === undefined) {
      this.pageFlags[page] &= ~PF_CODE;
      return;
    }
    let keep = 0;
    for (let k = 0; k < list.length; k++) {
      const b = list[k];
      if (b.valid && p < b.phys + b.bytes && p + size > b.phys) {
        b.valid = false;
        this.yieldBlock = true;
      }
      if (b.valid) list[keep++] = b;
    }
    list.length = keep;
    if (keep === 0) {
      this.pageBlocks.delete(page);
      this.pageFlags[page] &= ~PF_CODE;
    }
  }
  // ---------------------------------------------------------------- snapshots
  /**
   * The whole CPU as one plain value: registers, flags, control/debug registers, descriptor
   * caches (hidden state), MSRs, pending events and the TLB (stale entries are architectural
   * state too). The decoded-block cache is not state: restoreState drops it. Without `withTlb`
   * the TLB list is left empty (for state hashes, which leave the cache out on purpose).
   */
  saveState(withTlb = true): CpuState {
    const tlb: number[] = [];
    if (withTlb) for (const page of this.tlbPages) tlb.push(page, this.tlbRead[page], this.tlbWrite[page]);
    return {
      regs: Array.from(this.regs), eip: this.eip, prevEip: this.prevEip, eflags: this.getEflags(),
      cr: [this.cr0, this.cr2, this.cr3, this.cr4], dr: Array.from(this.dr), cpl: this.cpl,
      seg: Array.from(this.seg), segBase: Array.from(this.segBase), segLimit: Array.from(this.segLimit),
      segAr: Array.from(this.segAr), gdtr: [this.gdtrBase, this.gdtrLimit], idtr: [this.idtrBase, this.idtrLimit],
      msrs: [...this.msrs].map(([k, v]): [number, string] => [k, v.toString()]), tscOffset: this.tscOffset.toString(),
      monitorArmed: this.monitorArmed, a20Gate: this.a20Gate, a20Mask: this.a20Mask, icount: this.icount, extraCycles: this.extraCycles,
      halted: this.halted, shutdown: this.shutdown, intrLine: this.intrLine, nmiPending: this.nmiPending,
      nmiBlocked: this.nmiBlocked, shadowAt: this.shadowAt, inhibitDebugAt: this.inhibitDebugAt,
      debugTrap: this.debugTrap, tlb, vmx: this.vmx.save(),
    };
  }
  restoreState(s: CpuState): void {
    this.regs.set(s.regs);
    this.eip = s.eip;
    this.prevEip = s.prevEip;
    this.lzOp = LZ_NONE;
    this.flags = s.eflags;
    [this.cr0, this.cr2, this.cr3, this.cr4] = s.cr;
    this.dr.set(s.dr);
    this.cpl = s.cpl;
    this.seg.set(s.seg);
    this.segBase.set(s.segBase);
    this.segLimit.set(s.segLimit);
    this.segAr.set(s.segAr);
    [this.gdtrBase, this.gdtrLimit] = s.gdtr;
    [this.idtrBase, this.idtrLimit] = s.idtr;
    this.msrs.clear();
    for (const [k, v] of s.msrs) this.msrs.set(k, BigInt(v));
    this.tscOffset = BigInt(s.tscOffset);
    this.monitorArmed = s.monitorArmed ?? false; // absent in snapshots older than the field
    this.a20Gate = s.a20Gate ?? s.a20Mask === -1;
    this.a20Mask = s.a20Mask;
    this.icount = s.icount;
    this.extraCycles = s.extraCycles;
    this.halted = s.halted;
    this.shutdown = s.shutdown;
    this.intrLine = s.intrLine;
    this.nmiPending = s.nmiPending;
    this.nmiBlocked = s.nmiBlocked;
    this.shadowAt = s.shadowAt;
    this.inhibitDebugAt = s.inhibitDebugAt;
    this.debugTrap = s.debugTrap;
    this.vmx.restore(s.vmx);
    flushTlb(this, false);
    const tlb = s.tlb;
    for (let k = 0; k < tlb.length; k += 3) {
      this.tlbPages.push(tlb[k]);
      this.tlbRead[tlb[k]] = tlb[k + 1];
      this.tlbWrite[tlb[k]] = tlb[k + 2];
    }
    this.flushCodeCache();
    this.updateMode();
  }

  /** Forgets every decoded block (after memory is restored or rewritten behind the CPU's back). */
  flushCodeCache(): void {
    for (const [page, list] of this.pageBlocks) {
      for (const b of list) b.valid = false;
      this.pageFlags[page] &= ~PF_CODE;
    }
    this.pageBlocks.clear();
    this.blockCache.fill(null);
    this.codeEpoch++;
  }
}
