// Exception and interrupt delivery (SDM Vol. 3A chapter 6, and chapter 20 for virtual-8086
// mode): real-mode IVT delivery, protected-mode delivery through interrupt, trap and task gates
// (with the inner-privilege stack switch and the virtual-8086 exit), the VME software-interrupt
// redirection, and the double-fault / triple-fault escalation of SDM Table 6-5.
//
// Nothing is committed until every check of a delivery has passed: the new frame is collected,
// its stack offsets are checked, and only then are memory, segments, EFLAGS and EIP written, so
// a fault raised while delivering leaves the interrupted state intact for the next delivery.

import {
  AC, AR_UNUSABLE, CR4_VME, CS, DS, ES, EXC_DF, EXC_GP, EXC_NP,
  EXC_PF, FS, GS, IF, IOPL, NT, RF, SS, SYS_INTGATE16, SYS_INTGATE32,
  SYS_TASKGATE, SYS_TRAPGATE16, SYS_TRAPGATE32, SYS_TSS16_AVAIL, SYS_TSS16_BUSY, TF, TR, VIF, VM,
  ESP,
} from './constants.js';
import { FAULT, type Cpu } from './cpu.js';
import {
  checkInnerStack, Descriptor, descDpl, fetchDescriptor, isNullSelector, loadCacheFromDesc, loadCs,
  loadNull, markAccessed, readTssStack, StackFrame, tssStack,
} from './segment-load.js';
import { taskGateSwitch, TS_INT } from './tasks.js';
import { endVectoring, eventDelivered, guestEventExits, startVectoring, tripleFaultExit } from './vmx/events.js';

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
/**
 * Exceptions whose pushed EFLAGS image has RF set: the fault class (SDM 17.3.1.1), #DB excepted,
 * and #DF, which always follows a fault (Bochs pushes RF there too).
 */
const FAULT_VECTORS = (1 << 8) | (1 << 0) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 12) |
  (1 << 13) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 19);
export function isFault(vector: number): boolean {
  return vector < 32 && ((FAULT_VECTORS >>> vector) & 1) !== 0;
}
/**
 * Delivers a fault, trap or abort (hardware exception). cpu.eip is already the EIP to push. A
 * fault raised while delivering is escalated per SDM Table 6-5: serially, as a double fault, or
 * as a triple fault (shutdown).
 */
export function deliverException(cpu: Cpu, vector: number, errorCode: number, hasError: boolean): void {
  cpu.debugTrap = 0; // traps pending from a faulting instruction go with it
  deliverGuarded(cpu, vector, EV_EXCEPTION, errorCode, hasError);
}

/**
 * Delivers an external interrupt, NMI or INT n / INT3 / INTO / INT1 (kind EV_*). A fault while
 * delivering INT n, INT3 or INTO propagates: it is a fault of that instruction (EIP rewound by
 * the run loop, EXT = 0). For the other kinds it is delivered here, escalating as exceptions do.
 */
export function deliverInterrupt(cpu: Cpu, vector: number, kind: number): void {
  if (kind === EV_SOFTWARE || kind === EV_SOFT_EXCEPTION) {
    // In VMX non-root operation INT3/INTO may exit (exception bitmap); a fault while delivering
    // any of them is an exit during its delivery if it exits (events.ts).
    const guest = cpu.vmx.nonRoot;
    if (guest) {
      if (guestEventExits(cpu, vector, kind, 0, false)) return;
      startVectoring(cpu, vector, kind, 0, false, cpu.eip - cpu.prevEip, false);
    }
    deliverEvent(cpu, vector, kind, 0, false, true);
    if (guest) eventDelivered(cpu);
    return;
  }
  if (kind === EV_NMI) cpu.nmiBlocked = true; // blocked from delivery on, until the next IRET
  deliverGuarded(cpu, vector, kind, 0, false, false, kind === EV_PRIVSW ? cpu.eip - cpu.prevEip : 0);
}

/** Reports and delivers an exception the CPU raises itself (debug traps, escalations). */
export function raiseException(cpu: Cpu, vector: number, errorCode: number, hasError: boolean): void {
  cpu.events?.onException?.(vector, errorCode, hasError, cpu.eip);
  deliverException(cpu, vector, errorCode, hasError);
}

/**
 * VM entry's event injection (SDM Vol. 3C 26.5.1): delivered through the guest IDT as if at the
 * first guest instruction. The injected event itself is never a VM exit (the exception bitmap is
 * not consulted) and its pushed RF is the guest's; a software event pushes RIP + `length`, but
 * RIP again when its delivery faults. Faults during delivery are handled as in non-root operation.
 */
export function deliverInjected(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean,
  length: number): void {
  const rip = cpu.eip;
  cpu.prevEip = rip;
  cpu.eip = (rip + length) >>> 0;
  deliverGuarded(cpu, vector, kind, errorCode, hasError, true, length);
}

/**
 * The delivery loop of hardware-raised events: escalation of faults during delivery (SDM Table
 * 6-5), and in VMX non-root operation the VM exits of exceptions (exception bitmap), of faults
 * during delivery (with IDT-vectoring information), of a #DF, and of a triple fault (25.2).
 */
function deliverGuarded(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean,
  injected = false, length = 0): void {
  cpu.halted = false;
  const guest = cpu.vmx.nonRoot;
  if (guest && !injected && guestEventExits(cpu, vector, kind, errorCode, hasError)) return;
  for (;;) {
    // RF in the pushed image: as deliverEvent decides (a real-mode image has no RF).
    if (guest) startVectoring(cpu, vector, kind, errorCode, hasError, length,
      !injected && kind === EV_EXCEPTION && isFault(vector) && cpu.protectedMode);
    try {
      deliverEvent(cpu, vector, kind, errorCode, hasError, injected);
      if (guest) eventDelivered(cpu);
      return;
    } catch (e) {
      if (e !== FAULT) throw e;
    }
    if (injected && kind !== EV_EXCEPTION && kind !== EV_EXTERNAL && kind !== EV_NMI) cpu.eip = cpu.prevEip;
    injected = false;
    const second = FAULT.vector, secondCode = FAULT.errorCode, secondHas = FAULT.hasError;
    if (guest && guestEventExits(cpu, second, EV_EXCEPTION, secondCode, secondHas)) return;
    const first = kind === EV_EXCEPTION ? classOf(vector) : BENIGN;
    const secondClass = classOf(second);
    if (first === DOUBLE_FAULT && secondClass !== BENIGN) {
      if (guest) return tripleFaultExit(cpu);
      cpu.shutdown = true;
      cpu.events?.onShutdown?.();
      return;
    }
    kind = EV_EXCEPTION;
    length = 0;
    if ((first === CONTRIBUTORY && secondClass === CONTRIBUTORY) || (first === PAGE_FAULT && secondClass !== BENIGN)) {
      vector = EXC_DF;
      errorCode = 0;
      hasError = true;
      if (guest) {
        endVectoring(cpu);
        if (guestEventExits(cpu, vector, kind, errorCode, hasError)) return;
      }
    } else {
      vector = second;
      errorCode = secondCode;
      hasError = secondHas;
    }
    cpu.events?.onException?.(vector, errorCode, hasError, cpu.eip);
  }
}

/**
 * One delivery attempt; throws FAULT (nothing committed) when a check fails. `guestRf`: the
 * pushed RF is EFLAGS.RF as it is (software events, injected events), not set for faults.
 */
function deliverEvent(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean, guestRf: boolean): void {
  // Breakpoint hits already pending (held back by MOV SS over an INT n) survive the delivery and
  // trap at the handler's first instruction (SDM 6.8.3).
  const held = cpu.debugTrap & 0xf;
  if (!cpu.protectedMode) deliverReal(cpu, vector);
  else if (!(kind === EV_SOFTWARE && cpu.v86 && v86SoftwareInterrupt(cpu, vector))) {
    deliverProtected(cpu, vector, kind, errorCode, hasError && kind === EV_EXCEPTION, !guestRf && kind === EV_EXCEPTION && isFault(vector));
  }
  // Data breakpoints do not report the delivery's own accesses (IDT, descriptors, stack frame).
  cpu.debugTrap = (cpu.debugTrap & ~0xf) | held;
}

const frame = new StackFrame();
/** Descriptors of the handler's code segment and inner stack, kept apart from segment-load's `desc`. */
const csDesc = new Descriptor();
const ssDesc = new Descriptor();

// ------------------------------------------------------------------ real mode

/** Real mode: no error code, and FLAGS is 16 bits (so RF never shows in the image). */
function deliverReal(cpu: Cpu, vector: number): void {
  if (vector * 4 + 3 > cpu.idtrLimit) cpu.fault(EXC_GP, 0);
  const entry = (cpu.idtrBase + vector * 4) | 0;
  const ip = cpu.readLinear16(entry, false);
  const cs = cpu.readLinear16((entry + 2) | 0, false);
  redirectReal(cpu, cpu.getEflags() & 0xffff, cs, ip, IF | TF | AC | RF);
}
/**
 * The real-mode style frame (FLAGS, CS, IP as words on SS:SP), then CS:IP from the vector and
 * the `clear` flags cleared: real-mode delivery and the V86 VME redirection share it.
 */
function redirectReal(cpu: Cpu, flagsImage: number, cs: number, ip: number, clear: number): void {
  frame.onCurrentStack(cpu, 2, cpu.regs[ESP], 0);
  frame.push(flagsImage);
  frame.push(cpu.seg[CS]);
  frame.push(cpu.eip);
  cpu.regs[ESP] = frame.write(cpu);
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

function deliverProtected(cpu: Cpu, vector: number, kind: number, errorCode: number, hasError: boolean,
  faultRf: boolean): void {
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

  if (type === SYS_TASKGATE) {
    if (!taskGateSwitch(cpu, gLo >>> 16, TS_INT, ext)) return; // a VM exit (VMX non-root operation)
    if (hasError) {
      // The error code goes on the new task's stack, sized by its TSS type (SDM 7.3).
      frame.onCurrentStack(cpu, cpu.segAr[TR] & 8 ? 4 : 2, cpu.regs[ESP], ext);
      frame.push(errorCode);
      cpu.regs[ESP] = frame.write(cpu);
    }
    return;
  }

  const gate32 = (type & 8) !== 0;
  const interruptGate = (type & 7) === 6;
  const csSel = gLo >>> 16;
  const target = gate32 ? ((gLo & 0xffff) | (gHi & 0xffff0000)) >>> 0 : gLo & 0xffff;
  if (isNullSelector(csSel)) cpu.fault(EXC_GP, ext);
  const csError = (csSel & 0xfffc) | ext;
  const cs = csDesc;
  fetchDescriptor(cpu, csSel, EXC_GP, ext, cs);
  if (!cs.isCode || cs.dpl > cpu.cpl) cpu.fault(EXC_GP, csError);
  if (!cs.present) cpu.fault(EXC_NP, csError);
  const v86 = cpu.v86;
  const inner = !cs.isConformingCode && cs.dpl < cpu.cpl;
  if (v86 && (!inner || cs.dpl !== 0)) cpu.fault(EXC_GP, csError);
  const newCpl = inner ? cs.dpl : cpu.cpl;

  const w = gate32 ? 4 : 2;
  let ssSel = 0;
  if (inner) {
    readTssStack(cpu, newCpl, ext);
    ssSel = tssStack.ss;
    checkInnerStack(cpu, ssSel, newCpl, ext, ssDesc);
    frame.onDescribedStack(ssDesc, w, tssStack.esp, (ssSel & 0xfffc) | ext);
    if (v86) {
      frame.push(cpu.seg[GS]);
      frame.push(cpu.seg[FS]);
      frame.push(cpu.seg[DS]);
      frame.push(cpu.seg[ES]);
    }
    frame.push(cpu.seg[SS]);
    frame.push(cpu.regs[ESP]);
  } else {
    frame.onCurrentStack(cpu, w, cpu.regs[ESP], ext);
  }
  // After the new stack's checks, before its room is checked (as Bochs orders them).
  if (target > cs.limit) cpu.fault(EXC_GP, ext);
  frame.push(cpu.getEflags() | (faultRf ? RF : 0));
  frame.push(cpu.seg[CS]);
  frame.push(cpu.eip);
  if (hasError) frame.push(errorCode);
  const esp = frame.write(cpu);
  markAccessed(cpu, cs); // the last write that can fault: nothing is committed before it

  if (inner) loadCacheFromDesc(cpu, SS, ssSel, ssDesc);
  if (v86) {
    for (let k = 0; k < 4; k++) loadNull(cpu, V86_DATA_SEGS[k], 0);
  }
  cpu.regs[ESP] = esp;
  cpu.eip = target;
  cpu.setEflags(cpu.getEflags() & ~(TF | NT | RF | VM | (interruptGate ? IF : 0)));
  loadCs(cpu, csSel, cs, newCpl);
}
const V86_DATA_SEGS = [ES, DS, FS, GS];
