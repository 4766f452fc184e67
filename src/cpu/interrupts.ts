// Exception and interrupt delivery (SDM Vol. 3A chapter 6, and chapter 20 for virtual-8086
// mode): real-mode IVT delivery, protected-mode delivery through interrupt, trap and task gates
// (with the inner-privilege stack switch and the virtual-8086 exit), the VME software-interrupt
// redirection, and the double-fault / triple-fault escalation of SDM Table 6-5.
//
// Nothing is committed until every check of a delivery has passed: the new frame is collected,
// its stack offsets are checked, and only then are memory, segments, EFLAGS and EIP written, so
// a fault raised while delivering leaves the interrupted state intact for the next delivery.

import {
  AC, AR_DB, AR_UNUSABLE, CR4_VME, CS, DS, ES, EXC_DF, EXC_GP, EXC_NP,
  EXC_PF, EXC_SS, EXC_TS, FS, GS, IF, IOPL, LDTR, NT, RF, SS, SYS_INTGATE16, SYS_INTGATE32,
  SYS_TASKGATE, SYS_TRAPGATE16, SYS_TRAPGATE32, SYS_TSS16_AVAIL, SYS_TSS16_BUSY, TF, TR, VIF, VM,
  ESP,
} from './constants.js';
import { FAULT, type Cpu } from './cpu.js';

/**
 * Kinds of event delivery, numbered as the VMX interruption types (SDM Vol. 3C 24.8.3): they
 * differ in the gate DPL check (software kinds only), the EXT bit of error codes (all but the
 * software kinds) and in V86 (INT n alone is IOPL-sensitive and redirectable).
 */
export const EV_EXTERNAL = 0, EV_NMI = 2, EV_EXCEPTION = 3, EV_SOFTWARE = 4, EV_PRIVSW = 5,
  EV_SOFT_EXCEPTION = 6;

// Exception classes of SDM Table 6-4/6-5.
const BENIGN = 0, CONTRIBUTORY = 1, PAGE_FAULT = 2, DOUBLE_FAULT = 3;
function classOf(vector: number): number {
  switch (vector) {
    case 0: case 10: case 11: case 12: case 13: return CONTRIBUTORY;
    case EXC_PF: return PAGE_FAULT;
    case EXC_DF: return DOUBLE_FAULT;
    default: return BENIGN;
  }
}
/** Fault-class exceptions: the EFLAGS image pushed for them has RF set (SDM 17.3.1.1), #DB excepted. */
const FAULT_VECTORS = (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 12) |
  (1 << 13) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 19);
/** Exceptions that push an error code in protected mode. */
const ERROR_CODE_VECTORS = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17);

/** True when `vector` delivered as a hardware exception pushes an error code. */
export function pushesErrorCode(vector: number): boolean {
  return vector < 32 && ((ERROR_CODE_VECTORS >>> vector) & 1) !== 0;
}

/**
 * Delivers a fault, trap or abort (hardware exception). cpu.eip is already the EIP to push. A
 * fault raised while delivering is escalated per SDM Table 6-5: serially, as a double fault, or
 * as a triple fault (shutdown).
 */
export function deliverException(cpu: Cpu, vector: number, errorCode: number, hasError: boolean): void {
  cpu.debugTrap = 0; // traps pending from a faulting instruction are discarded with it
  deliverGuarded(cpu, vector, EV_EXCEPTION, errorCode, hasError);
}

/**
 * Delivers an external interrupt, NMI or INT n / INT3 / INTO / INT1 (kind EV_*). A fault while
 * delivering INT n, INT3 or INTO propagates: it is a fault of that instruction (EIP rewound by
 * the run loop, EXT = 0). For the other kinds it is delivered here, escalating as exceptions do.
 */
export function deliverInterrupt(cpu: Cpu, vector: number, kind: number): void {
  if (kind === EV_SOFTWARE || kind === EV_SOFT_EXCEPTION) {
    deliverEvent(cpu, vector, kind, 0, false);
    return;
  }
  if (kind === EV_NMI) cpu.nmiBlocked = true; // blocked from delivery on, until the next IRET
  deliverGuarded(cpu, vector, kind, 0, false);
}

/** Reports and delivers an exception the CPU raises itself (debug traps, escalations). */
export function raiseException(cpu: Cpu, vector: number, errorCode: number, hasError: boolean): void {
  cpu.events?.onException?.(vector, errorCode, hasError, cpu.eip);
  deliverException(cpu, vector, errorCode, hasError);
}

function deliverGuarded(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean): void {
  cpu.halted = false;
  for (;;) {
    try {
      deliverEvent(cpu, vector, kind, errorCode, hasError);
      cpu.debugTrap = 0; // data breakpoints do not fire on the delivery's own stack writes
      return;
    } catch (e) {
      if (e !== FAULT) throw e;
    }
    const second = FAULT.vector, secondCode = FAULT.errorCode, secondHas = FAULT.hasError;
    const first = kind === EV_EXCEPTION ? classOf(vector) : BENIGN;
    const secondClass = classOf(second);
    if (first === DOUBLE_FAULT && secondClass !== BENIGN) {
      cpu.shutdown = true;
      cpu.events?.onShutdown?.();
      return;
    }
    kind = EV_EXCEPTION;
    if ((first === CONTRIBUTORY && secondClass === CONTRIBUTORY) || (first === PAGE_FAULT && secondClass !== BENIGN)) {
      vector = EXC_DF;
      errorCode = 0;
      hasError = true;
    } else {
      vector = second;
      errorCode = secondCode;
      hasError = secondHas;
    }
    cpu.events?.onException?.(vector, errorCode, hasError, cpu.eip);
  }
}

/** One delivery attempt; throws FAULT (nothing committed) when a check fails. */
function deliverEvent(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean): void {
  if (!cpu.protectedMode) {
    deliverReal(cpu, vector, kind);
    return;
  }
  if (kind === EV_SOFTWARE && cpu.v86 && v86SoftwareInterrupt(cpu, vector)) return;
  deliverProtected(cpu, vector, kind, errorCode, hasError && kind === EV_EXCEPTION);
}

// ------------------------------------------------------------------ descriptors

/** The descriptor last read by fetchDescriptor: its two dwords and linear address. */
export const desc = { lo: 0, hi: 0, addr: 0 };

/**
 * Reads the GDT/LDT descriptor of `sel` into `desc`; faults vector(sel | ext) when the selector
 * lies outside its table (or names the LDT while none is loaded).
 */
export function fetchDescriptor(cpu: Cpu, sel: number, vector: number, ext: number): void {
  let base: number, limit: number;
  if (sel & 4) {
    if (cpu.segAr[LDTR] & AR_UNUSABLE) cpu.fault(vector, (sel & 0xfffc) | ext);
    base = cpu.segBase[LDTR];
    limit = cpu.segLimit[LDTR];
  } else {
    base = cpu.gdtrBase;
    limit = cpu.gdtrLimit;
  }
  if ((sel | 7) > limit) cpu.fault(vector, (sel & 0xfffc) | ext);
  desc.addr = (base + (sel & 0xfff8)) | 0;
  desc.lo = cpu.readLinear32(desc.addr, false);
  desc.hi = cpu.readLinear32((desc.addr + 4) | 0, false);
}
/** Access rights in the VMCS layout (constants.ts AR_*) from a descriptor's high dword. */
export function descAr(hi: number): number {
  return (hi >>> 8) & 0xf0ff;
}
export function descBase(lo: number, hi: number): number {
  return ((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) | 0;
}
/** Byte-granular limit. */
export function descLimit(lo: number, hi: number): number {
  const raw = (lo & 0xffff) | (hi & 0xf0000);
  return hi & 0x800000 ? ((raw << 12) | 0xfff) >>> 0 : raw;
}
export function descDpl(hi: number): number {
  return (hi >>> 13) & 3;
}
/** Sets the accessed bit of the descriptor in `desc` (a segment-register load does, SDM 3.4.5.1). */
export function markAccessed(cpu: Cpu): void {
  if (desc.hi & 0x100) return;
  desc.hi |= 0x100;
  cpu.writeLinear8((desc.addr + 5) | 0, (desc.hi >>> 8) & 0xff, false);
}
/** Loads the descriptor in `desc` into segment register s with selector sel. */
export function loadCacheFromDesc(cpu: Cpu, s: number, sel: number): void {
  cpu.setSegCache(s, sel, descBase(desc.lo, desc.hi), descLimit(desc.lo, desc.hi), descAr(desc.hi));
}

// ------------------------------------------------------------------ stack frames

/**
 * A frame under construction on some stack: pushes are collected, then every offset is checked
 * against the stack segment before anything is written (SDM: "if the stack does not have room").
 */
class Frame {
  readonly vals = new Int32Array(10);
  n = 0;
  /** Bytes per push: 2 or 4. */
  width = 4;
  base = 0;
  /** Valid offsets: lo..hi inclusive (an expand-down segment has lo = limit + 1). */
  lo = 0;
  hi = 0;
  big = true;
  esp = 0;
  user = false;
  /** Error code of the #SS raised when the frame does not fit. */
  ssError = 0;
  reset(width: number, esp: number): void {
    this.n = 0;
    this.width = width;
    this.esp = esp;
  }
  /** Uses the current SS. */
  onCurrentStack(cpu: Cpu, ssError: number): void {
    this.base = cpu.segBase[SS];
    this.lo = cpu.segLo[SS];
    this.hi = cpu.segHi[SS];
    this.big = (cpu.segAr[SS] & AR_DB) !== 0;
    this.user = cpu.cpl === 3;
    this.ssError = ssError;
  }
  /** Uses a stack segment described by `desc` (not yet loaded). */
  onDescribedStack(ssError: number): void {
    const limit = descLimit(desc.lo, desc.hi);
    this.base = descBase(desc.lo, desc.hi);
    this.big = (desc.hi & 0x400000) !== 0;
    if (desc.hi & 0x400) { // expand-down
      this.lo = limit + 1;
      this.hi = this.big ? 0xffffffff : 0xffff;
    } else {
      this.lo = 0;
      this.hi = limit;
    }
    this.user = false;
    this.ssError = ssError;
  }
  push(v: number): void {
    this.vals[this.n++] = v;
  }
  /** Checks every slot, then writes them; returns the new ESP (SP only when the stack is 16-bit). */
  commit(cpu: Cpu): number {
    const w = this.width, mask = this.big ? 0xffffffff : 0xffff;
    for (let k = 1; k <= this.n; k++) {
      const off = ((this.esp - k * w) & mask) >>> 0;
      if (off < this.lo || off + w - 1 > this.hi) cpu.fault(EXC_SS, this.ssError);
    }
    for (let k = 0; k < this.n; k++) {
      const lin = (this.base + ((this.esp - (k + 1) * w) & mask)) | 0;
      if (w === 4) cpu.writeLinear32(lin, this.vals[k], this.user);
      else cpu.writeLinear16(lin, this.vals[k] & 0xffff, this.user);
    }
    const sp = this.esp - this.n * w;
    return this.big ? sp | 0 : (this.esp & ~0xffff) | (sp & 0xffff);
  }
}
const frame = new Frame();

// ------------------------------------------------------------------ real mode

function deliverReal(cpu: Cpu, vector: number, kind: number): void {
  if (vector * 4 + 3 > cpu.idtrLimit) cpu.fault(EXC_GP, 0);
  const entry = (cpu.idtrBase + vector * 4) | 0;
  const ip = cpu.readLinear16(entry, false);
  const cs = cpu.readLinear16((entry + 2) | 0, false);
  const flags = cpu.getEflags() | (kind === EV_EXCEPTION && isFault(vector) ? RF : 0);
  redirectReal(cpu, flags & 0xffff, cs, ip, IF | TF | AC | RF);
}
function isFault(vector: number): boolean {
  return vector < 32 && ((FAULT_VECTORS >>> vector) & 1) !== 0;
}
/**
 * The real-mode style frame (FLAGS, CS, IP as words on SS:SP), then CS:IP from the vector and
 * the `clear` flags cleared: real-mode delivery and the V86 VME redirection share it.
 */
function redirectReal(cpu: Cpu, flagsImage: number, cs: number, ip: number, clear: number): void {
  frame.reset(2, cpu.regs[ESP]);
  frame.onCurrentStack(cpu, 0);
  frame.push(flagsImage);
  frame.push(cpu.seg[CS]);
  frame.push(cpu.eip);
  cpu.regs[ESP] = frame.commit(cpu);
  cpu.loadSeg(CS, cs);
  cpu.eip = ip;
  cpu.setEflags(cpu.getEflags() & ~clear);
  cpu.yieldBlock = true;
}

// ------------------------------------------------------------------ virtual-8086 INT n

/**
 * INT n in virtual-8086 mode (SDM 20.3.3 Table 20-2). Returns true when the interrupt was
 * redirected to the V86 task's own IVT, false when it goes to the protected-mode handler;
 * raises #GP(0) when IOPL < 3 forbids it.
 */
function v86SoftwareInterrupt(cpu: Cpu, vector: number): boolean {
  const iopl3 = (cpu.getEflags() & IOPL) === IOPL;
  if (!(cpu.cr4 & CR4_VME)) {
    if (!iopl3) cpu.fault(EXC_GP, 0);
    return false;
  }
  const mapBase = ioMapBase(cpu);
  const off = mapBase - 32 + (vector >>> 3);
  if (off > cpu.segLimit[TR]) cpu.fault(EXC_GP, 0);
  const bits = cpu.readLinear8((cpu.segBase[TR] + off) | 0, false);
  if ((bits >>> (vector & 7)) & 1) {
    if (!iopl3) cpu.fault(EXC_GP, 0);
    return false;
  }
  const ip = cpu.readLinear16(vector * 4, false);
  const cs = cpu.readLinear16(vector * 4 + 2, false);
  let flags = cpu.getEflags() & 0xffff;
  if (!iopl3) flags = (flags & ~IF) | IOPL | (cpu.getEflags() & VIF ? IF : 0);
  redirectReal(cpu, flags, cs, ip, TF | RF | (iopl3 ? IF : VIF));
  return true;
}

/**
 * The I/O map base of the current TSS (offset 0x66); #GP(0) unless TR holds a 32-bit TSS whose
 * limit covers that field (the I/O bitmap and the VME redirection map exist only there).
 */
export function ioMapBase(cpu: Cpu): number {
  const type = cpu.segAr[TR] & 0xf;
  if (type === SYS_TSS16_AVAIL || type === SYS_TSS16_BUSY || cpu.segAr[TR] & AR_UNUSABLE || cpu.segLimit[TR] < 0x67) {
    cpu.fault(EXC_GP, 0);
  }
  return cpu.readLinear16((cpu.segBase[TR] + 0x66) | 0, false);
}

// ------------------------------------------------------------------ protected mode

function deliverProtected(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean): void {
  const ext = kind === EV_SOFTWARE || kind === EV_SOFT_EXCEPTION ? 0 : 1;
  const idtError = vector * 8 + 2 + ext;
  if (vector * 8 + 7 > cpu.idtrLimit) cpu.fault(EXC_GP, idtError);
  const gateAddr = (cpu.idtrBase + vector * 8) | 0;
  const gLo = cpu.readLinear32(gateAddr, false);
  const gHi = cpu.readLinear32((gateAddr + 4) | 0, false);
  const type = (gHi >>> 8) & 0x1f; // includes S, which must be 0
  if (type !== SYS_TASKGATE && type !== SYS_INTGATE16 && type !== SYS_TRAPGATE16 &&
      type !== SYS_INTGATE32 && type !== SYS_TRAPGATE32) cpu.fault(EXC_GP, idtError);
  if (ext === 0 && descDpl(gHi) < cpu.cpl) cpu.fault(EXC_GP, vector * 8 + 2);
  if (!(gHi & 0x8000)) cpu.fault(EXC_NP, idtError);
  const pushed = cpu.getEflags() | (kind === EV_EXCEPTION && isFault(vector) ? RF : 0);

  if (type === SYS_TASKGATE) {
    taskGateSwitch(cpu, gLo >>> 16, ext);
    if (hasError) {
      // The error code goes on the new task's stack, sized by its TSS type (SDM 7.3).
      const w = (cpu.segAr[TR] & 8) !== 0 ? 4 : 2;
      frame.reset(w, cpu.regs[ESP]);
      frame.onCurrentStack(cpu, ext);
      frame.push(errorCode);
      cpu.regs[ESP] = frame.commit(cpu);
    }
    cpu.yieldBlock = true;
    return;
  }

  const gate32 = (type & 8) !== 0;
  const interruptGate = (type & 7) === 6;
  const csSel = gLo >>> 16;
  const target = gate32 ? ((gLo & 0xffff) | (gHi & 0xffff0000)) >>> 0 : gLo & 0xffff;
  if ((csSel & 0xfffc) === 0) cpu.fault(EXC_GP, ext);
  const csError = (csSel & 0xfffc) | ext;
  fetchDescriptor(cpu, csSel, EXC_GP, ext);
  const csLo = desc.lo, csHi = desc.hi, csAddr = desc.addr;
  const dpl = descDpl(csHi);
  if ((csHi & 0x1800) !== 0x1800 || dpl > cpu.cpl) cpu.fault(EXC_GP, csError); // S=1, code
  if (!(csHi & 0x8000)) cpu.fault(EXC_NP, csError);
  const conforming = (csHi & 0x400) !== 0;
  const v86 = cpu.v86;
  const inner = !conforming && dpl < cpu.cpl;
  if (v86 && (!inner || dpl !== 0)) cpu.fault(EXC_GP, csError);
  const newCpl = inner ? dpl : cpu.cpl;
  if (target > descLimit(csLo, csHi)) cpu.fault(EXC_GP, ext);

  const w = gate32 ? 4 : 2;
  let ssSel = 0, ssLo = 0, ssHi = 0, ssAddr = 0;
  if (inner) {
    // The stack for the new privilege level, from the TSS (SDM 6.12.1, 7.2.1).
    const tss32 = (cpu.segAr[TR] & 8) !== 0;
    const at = tss32 ? 4 + 8 * newCpl : 2 + 4 * newCpl;
    const tssError = (cpu.seg[TR] & 0xfffc) | ext;
    if (at + (tss32 ? 7 : 3) > cpu.segLimit[TR]) cpu.fault(EXC_TS, tssError);
    const tssLin = (cpu.segBase[TR] + at) | 0;
    const newEsp = tss32 ? cpu.readLinear32(tssLin, false) : cpu.readLinear16(tssLin, false);
    ssSel = cpu.readLinear16((tssLin + (tss32 ? 4 : 2)) | 0, false);
    if ((ssSel & 0xfffc) === 0) cpu.fault(EXC_TS, ext);
    const ssError = (ssSel & 0xfffc) | ext;
    fetchDescriptor(cpu, ssSel, EXC_TS, ext);
    // A writable data segment (S=1, code=0, W=1) of DPL and RPL equal to the new CPL.
    if ((ssSel & 3) !== newCpl || descDpl(desc.hi) !== newCpl || (desc.hi & 0x1a00) !== 0x1200) {
      cpu.fault(EXC_TS, ssError);
    }
    if (!(desc.hi & 0x8000)) cpu.fault(EXC_SS, ssError);
    ssLo = desc.lo; ssHi = desc.hi; ssAddr = desc.addr;
    frame.reset(w, newEsp);
    frame.onDescribedStack(ssError);
    if (v86) {
      frame.push(cpu.seg[GS]);
      frame.push(cpu.seg[FS]);
      frame.push(cpu.seg[DS]);
      frame.push(cpu.seg[ES]);
    }
    frame.push(cpu.seg[SS]);
    frame.push(cpu.regs[ESP]);
  } else {
    frame.reset(w, cpu.regs[ESP]);
    frame.onCurrentStack(cpu, ext);
  }
  frame.push(pushed);
  frame.push(cpu.seg[CS]);
  frame.push(cpu.eip);
  if (hasError) frame.push(errorCode);
  const esp = frame.commit(cpu);

  // Commit: nothing below can fault except the accessed-bit writes, done first.
  if (inner) {
    desc.lo = ssLo; desc.hi = ssHi; desc.addr = ssAddr;
    markAccessed(cpu);
    loadCacheFromDesc(cpu, SS, ssSel);
  }
  desc.lo = csLo; desc.hi = csHi; desc.addr = csAddr;
  markAccessed(cpu);
  loadCacheFromDesc(cpu, CS, (csSel & 0xfffc) | newCpl);
  if (v86) {
    for (let k = 0; k < 4; k++) cpu.setSegCache(V86_DATA_SEGS[k], 0, 0, 0, AR_UNUSABLE);
  }
  cpu.regs[ESP] = esp;
  cpu.eip = target;
  cpu.setEflags(cpu.getEflags() & ~(TF | NT | RF | VM | (interruptGate ? IF : 0)));
  cpu.setCpl(newCpl);
  cpu.yieldBlock = true;
}
const V86_DATA_SEGS = [ES, DS, FS, GS];

/** Task switch through a task gate (SDM 7.3): tasks.ts has not landed yet, so #GP for now. */
function taskGateSwitch(cpu: Cpu, sel: number, ext: number): void {
  cpu.fault(EXC_GP, (sel & 0xfffc) | ext);
}
