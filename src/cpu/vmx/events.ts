// Events in VMX non-root operation (SDM Vol. 3C): event injection at VM entry (26.5) and the other
// event side of VM entry (26.6: timer, NMI blocking, pending debug exceptions), the VM exits that
// events cause (25.2: exceptions by the exception bitmap and #PF error-code mask/match, NMIs,
// external interrupts with "acknowledge interrupt on exit", triple fault; 25.5: the
// VMX-preemption timer and the monitor trap flag; interrupt- and NMI-window exiting), virtual NMIs
// (31.7), and the event information VM exits record (27.2.2 interruption information, 27.2.3
// IDT-vectoring information, 27.3.4 interruptibility, pending debug exceptions, timer value).
//
// The run loop hands an instruction boundary of non-root operation to serviceGuestEvents instead
// of its own event servicing; interrupts.ts asks guestEventExits before it delivers an event
// through the guest IDT and tells startVectoring / eventDelivered around each delivery.

import { EXC_DB, EXC_DF, EXC_MC, EXC_PF, IF, RF } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { deliverPendingDebugTrap } from '../debug.js';
import {
  deliverInjected, EV_EXCEPTION, EV_EXTERNAL, EV_NMI, EV_PRIVSW, EV_SOFTWARE, EV_SOFT_EXCEPTION, isFault,
} from '../interrupts.js';
import { ACTIVITY_HLT, ACTIVITY_SHUTDOWN, PREEMPTION_TIMER_RATE } from './capabilities.js';
import {
  EXIT_ACK_INTERRUPT, EXIT_SAVE_PREEMPTION_TIMER, PIN_EXT_INT_EXITING, PIN_NMI_EXITING, PIN_PREEMPTION_TIMER,
  PIN_VIRTUAL_NMIS, PROC_INTERRUPT_WINDOW, PROC_MONITOR_TRAP_FLAG, PROC_NMI_WINDOW,
} from './controls.js';
import {
  eventExit, EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_EXTERNAL_INTERRUPT, EXIT_REASON_INTERRUPT_WINDOW,
  EXIT_REASON_MONITOR_TRAP_FLAG, EXIT_REASON_NMI_WINDOW, EXIT_REASON_PREEMPTION_TIMER,
  EXIT_REASON_TPR_BELOW_THRESHOLD, EXIT_REASON_TRIPLE_FAULT,
} from './exit.js';
import {
  BLOCK_MOV_SS, BLOCK_NMI, BLOCK_STI, G_ACTIVITY, G_INTERRUPTIBILITY, G_PENDING_DEBUG, G_PREEMPTION_TIMER, G_RFLAGS,
  VMCS_ENTRY_ERROR_CODE, VMCS_ENTRY_INSTRUCTION_LENGTH, VMCS_ENTRY_INTERRUPTION_INFO, VMCS_EXCEPTION_BITMAP,
  VMCS_EXIT_CONTROLS, VMCS_PF_MASK, VMCS_PF_MATCH, VMCS_PIN_CONTROLS, VMCS_PROC_CONTROLS, X_IDT_VECTORING,
  X_IDT_VECTORING_ERROR, X_INSTRUCTION_LENGTH, X_INTERRUPTION_ERROR, X_INTERRUPTION_INFO, X_REASON,
} from './fields.js';
import { vmcsRead, vmcsWrite } from './vmcs.js';

/** Interruption type 7, "other event": with vector 0, a pending MTF VM exit (24.8.3, 26.5.2). */
export const TYPE_OTHER = 7;
/** Interruption-information bits (24.8.3, 24.9.2, 24.9.3). */
export const INFO_VALID = 0x80000000 | 0, INFO_ERROR_CODE = 1 << 11, INFO_NMI_UNBLOCKED = 1 << 12;
/** Bits of the pending debug exceptions field (24.4.2): B3-B0, enabled breakpoint, BS. */
const PENDING_B = 0xf, PENDING_ENABLED_BP = 1 << 12, PENDING_BS = 1 << 14;
/** DR6-format bits of a #DB exit qualification (27.2.1): B3-B0, BD, BS. */
const DEBUG_QUALIFICATION = 0x600f;

const interruptionInfo = (vector: number, type: number, hasError: boolean): number =>
  INFO_VALID | (type << 8) | vector | (hasError ? INFO_ERROR_CODE : 0);
const isSoftware = (type: number): boolean => type === EV_SOFTWARE || type === EV_PRIVSW || type === EV_SOFT_EXCEPTION;

// ---------------------------------------------------------------- the preemption timer (25.5.1)

/**
 * The timer counts down by one each time bit PREEMPTION_TIMER_RATE of the TSC changes; the TSC
 * it follows is virtual time (cpu.cycles), so the timer is deterministic. Started at `now` with
 * `value`, it reaches zero at this cycle (at once for 0).
 */
function timerDeadline(now: number, value: number): number {
  return (Math.floor(now / 2 ** PREEMPTION_TIMER_RATE) + value) * 2 ** PREEMPTION_TIMER_RATE;
}
/** The timer's value now (0 once it has expired). */
function timerValue(cpu: Cpu): number {
  const tick = 2 ** PREEMPTION_TIMER_RATE;
  return Math.max(0, Math.floor(cpu.vmx.events.timerDeadline / tick) - Math.floor(cpu.cycles / tick));
}
/** The cycle at which the running guest's preemption timer expires (Infinity: none running). */
export function guestTimerDeadline(cpu: Cpu): number {
  const deadline = cpu.vmx.events.timerDeadline;
  return deadline < 0 ? Infinity : deadline;
}
/**
 * Where a run of guest instructions must stop: `until`, or earlier at the preemption timer's
 * expiry, which then needs the run loop's attention (and REP string iterations stop there).
 */
export function guestRunLimit(cpu: Cpu, until: number): number {
  const deadline = cpu.vmx.events.timerDeadline;
  if (deadline < 0 || deadline >= until) return until;
  if (cpu.cycles >= deadline) cpu.attention = true;
  cpu.runUntil = deadline;
  return deadline;
}

// ---------------------------------------------------------------- VM entry (26.5, 26.6)

/**
 * The event side of a VM entry, once the guest state (and MSRs) are loaded: the controls the
 * guest's events consult, the preemption timer (26.6.4), NMI blocking (26.6.1), pending debug
 * exceptions (26.6.3), then the injected event (26.5).
 */
export function startGuestEvents(cpu: Cpu): void {
  const ev = cpu.vmx.events;
  ev.pin = vmcsRead(cpu, VMCS_PIN_CONTROLS);
  ev.proc = vmcsRead(cpu, VMCS_PROC_CONTROLS);
  ev.exceptionBitmap = vmcsRead(cpu, VMCS_EXCEPTION_BITMAP);
  ev.pfMask = vmcsRead(cpu, VMCS_PF_MASK);
  ev.pfMatch = vmcsRead(cpu, VMCS_PF_MATCH);
  ev.exitControls = vmcsRead(cpu, VMCS_EXIT_CONTROLS);
  ev.monitorTrap = (ev.proc & PROC_MONITOR_TRAP_FLAG) !== 0;
  ev.mtfPending = false;
  ev.vectoring = 0;
  ev.timerDeadline = ev.pin & PIN_PREEMPTION_TIMER
    ? timerDeadline(cpu.cycles, vmcsRead(cpu, G_PREEMPTION_TIMER) >>> 0) : -1;
  // With virtual NMIs, bit 3 of the interruptibility state is virtual-NMI blocking, and NMIs
  // themselves are not blocked in non-root operation (26.6.1).
  const virtualNmis = (ev.pin & PIN_VIRTUAL_NMIS) !== 0;
  ev.virtualNmiBlocked = virtualNmis && (vmcsRead(cpu, G_INTERRUPTIBILITY) & BLOCK_NMI) !== 0;
  if (virtualNmis) cpu.nmiBlocked = false;
  const injection = vmcsRead(cpu, VMCS_ENTRY_INTERRUPTION_INFO);
  const type = (injection >> 8) & 7;
  const vectoring = injection < 0 && type !== TYPE_OTHER;
  // The shutdown activity state: halted (enterGuest) until an NMI, the timer or the NMI window.
  const activity = vmcsRead(cpu, G_ACTIVITY);
  ev.shutdown = activity === ACTIVITY_SHUTDOWN;
  const traps = entryDebugTraps(cpu, vectoring ? type : -1, activity);
  cpu.debugTrap = vectoring ? 0 : traps;
  cpu.updateMode(); // the monitor trap flag puts the guest on the per-instruction path
  if (injection < 0) inject(cpu, injection);
  // Kept through an injection, they follow its delivery (which drops data-breakpoint bits).
  if (vectoring && cpu.vmx.nonRoot) cpu.debugTrap = traps;
  cpu.attention = true;
}

/**
 * The debug traps that the pending debug exceptions field leaves for the guest (26.6.3): BS, and
 * B3-B0 only with "enabled breakpoint"; `injected` is the interruption type of a vectoring entry,
 * else -1. Without injection they wait for the first instruction boundary, held back one
 * instruction by blocking by MOV SS, as the debug traps they are. The field is ignored by a
 * non-vectoring entry into the shutdown state and by the injection of an external interrupt, NMI,
 * hardware exception or privileged software exception. A software interrupt or exception
 * injected under blocking by MOV SS keeps them, as an INT n, INT3 or INTO after a MOV SS that hit
 * a debug trap would: they are delivered when its delivery completes, before the handler's first
 * instruction (for software exceptions of other vectors the SDM allows losing them; this model
 * delivers them alike). A software event without blocking by MOV SS: the SDM gives no rule; this
 * model ignores the field, as for the other vectoring entries.
 */
function entryDebugTraps(cpu: Cpu, injected: number, activity: number): number {
  const softwareUnderMovSs = (injected === EV_SOFTWARE || injected === EV_SOFT_EXCEPTION) &&
    (vmcsRead(cpu, G_INTERRUPTIBILITY) & BLOCK_MOV_SS) !== 0;
  if (injected < 0 ? activity === ACTIVITY_SHUTDOWN : !softwareUnderMovSs) return 0;
  const pending = vmcsRead(cpu, G_PENDING_DEBUG);
  return pending & (pending & PENDING_ENABLED_BP ? PENDING_B | PENDING_BS : PENDING_BS);
}

/**
 * The guest-state checks that depend on event injection, given the RFLAGS, activity and
 * interruptibility fields: an injected external interrupt needs RFLAGS.IF = 1 (26.3.1.4); the
 * injected event must be one the activity state lets through (26.3.1.5; HLT:
 * external interrupt, NMI, #DB, #MC, a pending MTF VM exit; shutdown: NMI, #MC); no external
 * interrupt or NMI under blocking by STI or MOV SS (this model's STI blocking blocks NMIs, as the
 * SDM allows); no NMI under virtual-NMI blocking.
 */
export function injectionValid(cpu: Cpu, rflags: number, activity: number, interruptibility: number): boolean {
  const injection = vmcsRead(cpu, VMCS_ENTRY_INTERRUPTION_INFO);
  if (injection >= 0) return true;
  const type = (injection >> 8) & 7, vector = injection & 0xff;
  if (type === EV_EXTERNAL && !(rflags & IF)) return false;
  const machineCheck = type === EV_EXCEPTION && vector === EXC_MC;
  if (activity === ACTIVITY_HLT && !(type === EV_EXTERNAL || type === EV_NMI || type === TYPE_OTHER ||
      machineCheck || (type === EV_EXCEPTION && vector === EXC_DB))) return false;
  if (activity === ACTIVITY_SHUTDOWN && !(type === EV_NMI || machineCheck)) return false;
  if ((type === EV_EXTERNAL || type === EV_NMI) && interruptibility & (BLOCK_STI | BLOCK_MOV_SS)) return false;
  return !(type === EV_NMI && interruptibility & BLOCK_NMI && vmcsRead(cpu, VMCS_PIN_CONTROLS) & PIN_VIRTUAL_NMIS);
}

/** Event injection (26.5): the event of the VM-entry interruption-information field. */
function inject(cpu: Cpu, injection: number): void {
  const ev = cpu.vmx.events;
  const type = (injection >> 8) & 7, vector = injection & 0xff;
  if (type === TYPE_OTHER) {
    ev.mtfPending = true; // 26.5.2, even with the monitor trap flag 0
    return;
  }
  // A vectoring entry leaves the guest active without blocking by STI or MOV SS (26.6.1, 26.6.2).
  cpu.halted = ev.shutdown = false;
  cpu.shadowAt = cpu.inhibitDebugAt = -1;
  if (type === EV_NMI) {
    if (ev.pin & PIN_VIRTUAL_NMIS) ev.virtualNmiBlocked = true;
    else cpu.nmiBlocked = true;
  }
  const hasError = (injection & INFO_ERROR_CODE) !== 0;
  const length = isSoftware(type) ? vmcsRead(cpu, VMCS_ENTRY_INSTRUCTION_LENGTH) : 0;
  deliverInjected(cpu, vector, type, hasError ? vmcsRead(cpu, VMCS_ENTRY_ERROR_CODE) & 0xffff : 0, hasError, length);
  if (cpu.vmx.nonRoot && ev.monitorTrap) ev.mtfPending = true; // 25.5.2: MTF after an injected event
}

// ---------------------------------------------------------------- event delivery in the guest

/**
 * Notes the event about to be delivered through the guest IDT: a VM exit before its delivery
 * completes records it as IDT-vectoring information (27.2.3). `length`: the instruction length
 * of a software event; `faultRf`: the delivery sets RF in the RFLAGS image it pushes.
 */
export function startVectoring(cpu: Cpu, vector: number, type: number, errorCode: number, hasError: boolean,
  length: number, faultRf: boolean): void {
  const ev = cpu.vmx.events;
  // Real mode pushes no error code: bit 11 is then 0 (27.2.3).
  ev.vectoring = interruptionInfo(vector, type, hasError && type === EV_EXCEPTION && cpu.protectedMode);
  ev.vectoringError = errorCode;
  ev.vectoringLength = length;
  ev.vectoringRf = faultRf;
}

/**
 * An event reached its handler in the guest: no longer "during event delivery"; with the monitor
 * trap flag, an MTF VM exit is pending before the handler's first instruction (25.5.2).
 */
export function eventDelivered(cpu: Cpu): void {
  const ev = cpu.vmx.events;
  ev.vectoring = 0;
  cpu.vmx.guest.iretUnblockedNmiAt = -1; // the instruction that runs next is the handler's
  if (ev.monitorTrap) {
    ev.mtfPending = true;
    cpu.attention = true;
  }
}

/** A #DF arises from two faults: it is not an exit during the delivery of the first (27.2.3). */
export function endVectoring(cpu: Cpu): void {
  cpu.vmx.events.vectoring = 0;
}

/**
 * Whether an exception (hardware, or INT3/INTO/INT1) about to be delivered through the guest IDT
 * is a VM exit instead, by the exception bitmap and for #PF the error-code mask and match (25.2);
 * if so the exit is made here (reason 0). A #PF that is delivered writes CR2 now (27.1: one that
 * exits leaves CR2 alone).
 */
export function guestEventExits(cpu: Cpu, vector: number, type: number, errorCode: number, hasError: boolean): boolean {
  if (type !== EV_EXCEPTION && type !== EV_SOFT_EXCEPTION && type !== EV_PRIVSW) return false;
  const ev = cpu.vmx.events;
  let exits = ((ev.exceptionBitmap >>> vector) & 1) !== 0;
  if (vector === EXC_PF) exits = exits === ((errorCode & ev.pfMask) === ev.pfMatch);
  if (!exits) {
    if (vector === EXC_PF && type === EV_EXCEPTION) cpu.cr2 = ev.faultAddress;
    return false;
  }
  exceptionExit(cpu, vector, type, errorCode, hasError);
  return true;
}

/** Whether a #DB of DR6-format `bits` will be a VM exit; if so its bits become the exit qualification (27.1: DR6 untouched). */
export function debugExits(cpu: Cpu, bits: number): boolean {
  const ev = cpu.vmx.events;
  if (!(ev.exceptionBitmap & (1 << EXC_DB))) return false;
  ev.debugQualification = bits & DEBUG_QUALIFICATION;
  return true;
}

/** A #PF raised in non-root operation: its address waits for the decision between CR2 and a VM exit. */
export function notePageFault(cpu: Cpu, linear: number): void {
  cpu.vmx.events.faultAddress = linear;
}

/**
 * The VM exit of an exception (27.2.2): interruption information and error code, the #PF linear
 * address or #DB DR6 bits as qualification, the instruction length of INT3/INTO/INT1 (which the
 * guest resumes at), and the RFLAGS image the delivery would have pushed (RF for faults, 27.3.3).
 */
function exceptionExit(cpu: Cpu, vector: number, type: number, errorCode: number, hasError: boolean): void {
  const ev = cpu.vmx.events;
  const software = type !== EV_EXCEPTION;
  const length = (cpu.eip - cpu.prevEip) & 0xf;
  const qualification = vector === EXC_PF ? ev.faultAddress : vector === EXC_DB && !software ? ev.debugQualification : 0;
  // Bit 12: the exception is a fault of an IRET that removed (virtual-)NMI blocking (27.2.2).
  const unblocked = !software && vector !== EXC_DF && ev.vectoring === 0 &&
    cpu.vmx.guest.iretUnblockedNmiAt === cpu.icount && (ev.pin & (PIN_NMI_EXITING | PIN_VIRTUAL_NMIS)) !== PIN_NMI_EXITING;
  const rf = !software && isFault(vector);
  // Incurring an exception ends blocking by STI or MOV SS (26.6.1).
  cpu.shadowAt = cpu.inhibitDebugAt = -1;
  // Bit 11 (error code valid) is always 0 in real-address mode, which pushes no error code (27.2.2).
  const pushesError = hasError && cpu.protectedMode;
  eventExit(cpu, EXIT_REASON_EXCEPTION_NMI, qualification, software ? cpu.prevEip : cpu.eip);
  vmcsWrite(cpu, X_INTERRUPTION_INFO, interruptionInfo(vector, type, pushesError) | (unblocked ? INFO_NMI_UNBLOCKED : 0));
  if (pushesError) vmcsWrite(cpu, X_INTERRUPTION_ERROR, errorCode);
  if (software) vmcsWrite(cpu, X_INSTRUCTION_LENGTH, length);
  if (rf) vmcsWrite(cpu, G_RFLAGS, vmcsRead(cpu, G_RFLAGS) | RF);
}

/** A triple fault in the guest: a VM exit (reason 2) instead of shutdown (25.2), not during event delivery. */
export function tripleFaultExit(cpu: Cpu): void {
  cpu.vmx.events.vectoring = 0;
  eventExit(cpu, EXIT_REASON_TRIPLE_FAULT);
}

// ---------------------------------------------------------------- instruction boundaries

/** After a guest instruction ran on the per-instruction path: the monitor trap flag's exit is pending (25.5.2). */
export function guestInstructionDone(cpu: Cpu): void {
  const ev = cpu.vmx.events;
  if (!ev.monitorTrap) return;
  ev.mtfPending = true;
  cpu.attention = true;
}

/**
 * The events of an instruction boundary in VMX non-root operation, in priority order (SDM 6.9
 * with 25.2, 25.5 and 26.7): a pending MTF VM exit; debug traps; the preemption timer (blocked by
 * nothing but activity states this model lacks); NMI-window exiting; an NMI (a VM exit with "NMI
 * exiting"); interrupt-window exiting; an external interrupt (with "external-interrupt exiting" a
 * VM exit, whatever RFLAGS.IF says: 25.4.1). Blocking by STI and by MOV SS hold back the windows,
 * NMIs and interrupts; the shutdown state holds back the interrupt window and interrupts (26.6.2).
 * Returns false when the guest stays halted or shut down.
 */
export function serviceGuestEvents(cpu: Cpu): boolean {
  const ev = cpu.vmx.events;
  if (ev.mtfPending) {
    eventExit(cpu, EXIT_REASON_MONITOR_TRAP_FLAG);
    return true;
  }
  if (cpu.debugTrap !== 0 && cpu.inhibitDebugAt !== cpu.icount) {
    deliverPendingDebugTrap(cpu);
    if (!cpu.vmx.nonRoot) return true;
  }
  const shadow = cpu.shadowAt === cpu.icount;
  if (ev.timerDeadline >= 0 && cpu.cycles >= ev.timerDeadline) {
    ev.timerDeadline = cpu.cycles; // saved as 0
    eventExit(cpu, EXIT_REASON_PREEMPTION_TIMER);
    return true;
  }
  if (ev.proc & PROC_NMI_WINDOW && !ev.virtualNmiBlocked && !shadow) {
    eventExit(cpu, EXIT_REASON_NMI_WINDOW);
    return true;
  }
  const intrBlocked = shadow || ev.shutdown;
  const intrUnmasked = (cpu.flags & IF) !== 0 || (ev.pin & PIN_EXT_INT_EXITING) !== 0;
  if (cpu.nmiPending && !cpu.nmiBlocked && !shadow) {
    if (ev.pin & PIN_NMI_EXITING) {
      nmiExit(cpu);
      return true;
    }
    ev.shutdown = false;
    cpu.takeNmi();
  } else if (ev.proc & PROC_INTERRUPT_WINDOW && cpu.flags & IF && !intrBlocked) {
    eventExit(cpu, EXIT_REASON_INTERRUPT_WINDOW);
    return true;
  } else if (cpu.intrLine && intrUnmasked && !intrBlocked) {
    if (ev.pin & PIN_EXT_INT_EXITING) {
      externalInterruptExit(cpu);
      return true;
    }
    cpu.takeIntr();
  }
  if (!cpu.vmx.nonRoot) return true; // the delivery ended in a VM exit
  if (shadow || ev.monitorTrap || ev.mtfPending || (cpu.nmiPending && !cpu.nmiBlocked) || (cpu.intrLine && intrUnmasked)) {
    cpu.attention = true;
  }
  if (!cpu.halted) return true;
  cpu.attention = true;
  return false; // the machine idles the CPU until canWake(), or to wakeCycle() (the timer)
}

/**
 * Whether an event of non-root operation ends the HLT or shutdown state now (the machine's idle
 * loop asks): a pending MTF exit, the timer, the NMI window, an NMI, and (not in the shutdown
 * state) the interrupt window and INTR with IF = 1 or "external-interrupt exiting".
 */
export function guestCanWake(cpu: Cpu): boolean {
  const ev = cpu.vmx.events;
  const shadow = cpu.shadowAt === cpu.icount;
  if (ev.mtfPending || (ev.timerDeadline >= 0 && cpu.cycles >= ev.timerDeadline) ||
    ((ev.proc & PROC_NMI_WINDOW) !== 0 && !ev.virtualNmiBlocked && !shadow) || (cpu.nmiPending && !cpu.nmiBlocked)) return true;
  if (ev.shutdown || shadow) return false;
  return ((ev.proc & PROC_INTERRUPT_WINDOW) !== 0 && (cpu.flags & IF) !== 0) || (cpu.intrLine && guestInterruptsWake(cpu));
}
/**
 * Whether a device interrupt can end the HLT state of a guest: with IF = 1 or "external-interrupt
 * exiting", and never the shutdown state (26.6.2).
 */
export function guestInterruptsWake(cpu: Cpu): boolean {
  const ev = cpu.vmx.events;
  return !ev.shutdown && ((cpu.flags & IF) !== 0 || (ev.pin & PIN_EXT_INT_EXITING) !== 0);
}

/**
 * Whether a trap-like VM exit may come at this boundary before the debug traps of the instruction
 * just done (a TPR-below-threshold exit after a TPR write, a pending MTF exit: 26.6.3 gives them
 * priority over debug traps); the traps then wait for it, as pending debug exceptions if it
 * happens (27.3.4).
 */
export function trapExitFirst(cpu: Cpu): boolean {
  return cpu.vmx.nonRoot && (cpu.vmx.events.mtfPending || cpu.vmx.guest.tprPending !== 0);
}

/** An NMI with "NMI exiting" (25.2): reason 0, type NMI; NMIs are blocked once the exit completes (27.1). */
function nmiExit(cpu: Cpu): void {
  cpu.nmiPending = false;
  eventExit(cpu, EXIT_REASON_EXCEPTION_NMI);
  vmcsWrite(cpu, X_INTERRUPTION_INFO, interruptionInfo(2, EV_NMI, false));
  cpu.nmiBlocked = true;
}

/**
 * An external interrupt with "external-interrupt exiting" (25.2): with "acknowledge interrupt on
 * exit" the interrupt controller is acknowledged and the vector recorded (27.2.2); without, the
 * interrupt stays pending at the PIC or APIC and the interruption information is invalid.
 */
function externalInterruptExit(cpu: Cpu): void {
  const acknowledge = (cpu.vmx.events.exitControls & EXIT_ACK_INTERRUPT) !== 0;
  eventExit(cpu, EXIT_REASON_EXTERNAL_INTERRUPT);
  if (acknowledge) vmcsWrite(cpu, X_INTERRUPTION_INFO, interruptionInfo(cpu.interruptAck() & 0xff, 0, false));
}

// ---------------------------------------------------------------- IRET and NMI blocking

/**
 * IRET in non-root operation (25.3): with "virtual NMIs" it removes virtual-NMI blocking; with
 * "NMI exiting" (and no virtual NMIs) it leaves NMI blocking alone; else it unblocks NMIs as usual.
 * The removal happens even if the IRET then faults (27.2.2 bit 12 remembers it).
 */
export function guestIret(cpu: Cpu): void {
  const ev = cpu.vmx.events;
  if (ev.pin & PIN_VIRTUAL_NMIS) {
    if (!ev.virtualNmiBlocked) return;
    ev.virtualNmiBlocked = false;
    cpu.attention = true; // the NMI window may open
  } else if (ev.pin & PIN_NMI_EXITING || !cpu.nmiBlocked) {
    return;
  } else {
    cpu.nmiBlocked = false;
    if (cpu.nmiPending) cpu.attention = true;
  }
  cpu.vmx.guest.iretUnblockedNmiAt = cpu.icount;
}

// ---------------------------------------------------------------- VM exits

/** The pending debug exceptions field for debug traps `bits` (DR6 format) not yet delivered. */
function pendingDebug(bits: number): number {
  const b = bits & PENDING_B;
  return b | (b !== 0 ? PENDING_ENABLED_BP : 0) | (bits & PENDING_BS);
}

/**
 * The event state a VM exit saves (27.3.4): the activity state (HLT or shutdown: an event that
 * exits from them leaves them only once the exit completes, 27.1), interruptibility (blocking by
 * STI or MOV SS that is in force for the instruction at the boundary; bit 3 virtual-NMI blocking
 * with "virtual NMIs", else blocking by NMI), pending debug exceptions (the debug traps held back
 * by MOV SS, or overtaken by a trap-like MTF or TPR-below-threshold exit; clear for other exits),
 * and the preemption timer with "save VMX-preemption timer value".
 */
export function saveGuestEvents(cpu: Cpu): void {
  const ev = cpu.vmx.events;
  vmcsWrite(cpu, G_ACTIVITY, ev.shutdown ? ACTIVITY_SHUTDOWN : cpu.halted ? ACTIVITY_HLT : 0);
  const shadow = cpu.shadowAt === cpu.icount;
  const movSs = shadow && cpu.inhibitDebugAt === cpu.icount;
  const nmi = ev.pin & PIN_VIRTUAL_NMIS ? ev.virtualNmiBlocked : cpu.nmiBlocked;
  vmcsWrite(cpu, G_INTERRUPTIBILITY, (shadow ? (movSs ? BLOCK_MOV_SS : BLOCK_STI) : 0) | (nmi ? BLOCK_NMI : 0));
  const reason = vmcsRead(cpu, X_REASON) & 0xffff;
  const trapLike = reason === EXIT_REASON_MONITOR_TRAP_FLAG || reason === EXIT_REASON_TPR_BELOW_THRESHOLD;
  vmcsWrite(cpu, G_PENDING_DEBUG, movSs || trapLike ? pendingDebug(cpu.debugTrap) : 0);
  if (ev.exitControls & EXIT_SAVE_PREEMPTION_TIMER && ev.timerDeadline >= 0) vmcsWrite(cpu, G_PREEMPTION_TIMER, timerValue(cpu));
}

/**
 * IDT-vectoring information of a VM exit (27.2.3): the event whose delivery the exit interrupted,
 * with its error code and, for a software event, the instruction length; else invalid.
 */
export function recordVectoring(cpu: Cpu): void {
  const ev = cpu.vmx.events;
  vmcsWrite(cpu, X_IDT_VECTORING, ev.vectoring);
  if (ev.vectoring === 0) return;
  vmcsWrite(cpu, X_IDT_VECTORING_ERROR, ev.vectoringError);
  if (isSoftware((ev.vectoring >> 8) & 7)) vmcsWrite(cpu, X_INSTRUCTION_LENGTH, ev.vectoringLength);
  ev.vectoring = 0;
}

/** The guest's event state ends with the VM exit (the host's debug traps start empty). */
export function leaveGuestEvents(cpu: Cpu): void {
  cpu.vmx.events.reset();
  cpu.debugTrap = 0;
}
