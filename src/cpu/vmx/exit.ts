// VM exits (SDM Vol. 3C chapter 27): recording the exit information, saving the guest state and
// the guest MSRs of the VM-exit MSR-store list, loading the host state and the MSRs of the VM-exit
// MSR-load list, and VMX aborts (27.7), for an IA-32 processor. Every exit of non-root operation
// ends here; the places that decide an exit (an instruction, an event, a VM-entry failure) call
// one of the exported functions below.

import { AR_UNUSABLE, AR_P, AR_S, AR_G, AR_DB, CS, ESP, LDTR, RF, TR } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { MSR_DEBUGCTL, MSR_PAT, MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, sysenterMsr } from '../msr.js';
import { leaveGuestTlb } from '../paging.js';
import { cr0Loaded } from './capabilities.js';
import { EXIT_LOAD_PAT, EXIT_SAVE_DEBUG, EXIT_SAVE_PAT } from './controls.js';
import {
  G_AR, G_BASE, G_CR0, G_CR3, G_CR4, G_DEBUGCTL, G_DR7,
  G_GDTR_BASE, G_GDTR_LIMIT, G_IDTR_BASE, G_IDTR_LIMIT, G_LIMIT, G_PAT,
  G_RFLAGS, G_RIP, G_RSP, G_SEL, G_SYSENTER_CS, G_SYSENTER_EIP, G_SYSENTER_ESP, H_CR0, H_CR3, H_CR4,
  H_FS_BASE, H_GDTR_BASE, H_IDTR_BASE, H_PAT, H_RIP, H_RSP, H_SEL, H_SYSENTER_CS, H_SYSENTER_EIP,
  H_SYSENTER_ESP, H_TR_BASE, VMCS_ENTRY_INTERRUPTION_INFO, VMCS_EXIT_CONTROLS, VMCS_EXIT_MSR_LOAD_ADDR,
  VMCS_EXIT_MSR_LOAD_COUNT, VMCS_EXIT_MSR_STORE_ADDR, VMCS_EXIT_MSR_STORE_COUNT,
  X_INSTRUCTION_INFO, X_INSTRUCTION_LENGTH, X_INTERRUPTION_INFO, X_QUALIFICATION, X_REASON,
} from './fields.js';
import { hostStateValid } from './entry-checks.js';
import { LIST_DONE, LIST_TOO_LONG, loadMsrList, storeMsrList } from './msr-lists.js';
import { leaveGuestEvents, recordVectoring, saveGuestEvents } from './events.js';
import { qword, VMCS_ABORT_OFFSET, vmcsRead, vmcsWrite } from './vmcs.js';
import { VM_EXITED } from './state.js';

/** Basic exit reasons (Appendix C) that apply to an IA-32 processor of this model. */
export const EXIT_REASON_EXCEPTION_NMI = 0, EXIT_REASON_EXTERNAL_INTERRUPT = 1, EXIT_REASON_TRIPLE_FAULT = 2,
  EXIT_REASON_INIT = 3, EXIT_REASON_SIPI = 4, EXIT_REASON_INTERRUPT_WINDOW = 7, EXIT_REASON_NMI_WINDOW = 8,
  EXIT_REASON_TASK_SWITCH = 9, EXIT_REASON_CPUID = 10, EXIT_REASON_HLT = 12, EXIT_REASON_INVD = 13,
  EXIT_REASON_INVLPG = 14, EXIT_REASON_RDPMC = 15, EXIT_REASON_RDTSC = 16, EXIT_REASON_VMCALL = 18,
  EXIT_REASON_VMCLEAR = 19, EXIT_REASON_VMLAUNCH = 20, EXIT_REASON_VMPTRLD = 21, EXIT_REASON_VMPTRST = 22,
  EXIT_REASON_VMREAD = 23, EXIT_REASON_VMRESUME = 24, EXIT_REASON_VMWRITE = 25, EXIT_REASON_VMXOFF = 26,
  EXIT_REASON_VMXON = 27, EXIT_REASON_CR_ACCESS = 28, EXIT_REASON_DR_ACCESS = 29, EXIT_REASON_IO = 30,
  EXIT_REASON_RDMSR = 31, EXIT_REASON_WRMSR = 32, EXIT_REASON_INVALID_GUEST_STATE = 33,
  EXIT_REASON_MSR_LOADING = 34, EXIT_REASON_MWAIT = 36, EXIT_REASON_MONITOR_TRAP_FLAG = 37,
  EXIT_REASON_MONITOR = 39, EXIT_REASON_PAUSE = 40, EXIT_REASON_MACHINE_CHECK = 41, EXIT_REASON_TPR_BELOW_THRESHOLD = 43,
  EXIT_REASON_APIC_ACCESS = 44, EXIT_REASON_GDTR_IDTR = 46, EXIT_REASON_LDTR_TR = 47, EXIT_REASON_EPT_VIOLATION = 48,
  EXIT_REASON_EPT_MISCONFIG = 49, EXIT_REASON_INVEPT = 50, EXIT_REASON_PREEMPTION_TIMER = 52,
  EXIT_REASON_INVVPID = 53, EXIT_REASON_WBINVD = 54;
/** Bit 31 of the exit reason: VM-entry failure (26.8). */
export const EXIT_REASON_ENTRY_FAILURE = 0x80000000 | 0;

/**
 * VMX-abort indicators (27.7) this model writes: a failure storing a guest MSR (27.4), a current
 * VMCS corrupted (a host state VM entry would refuse, written to the region while the guest ran:
 * this model reads the region at each exit), a failure loading a host MSR (27.6), and the
 * machine-check this model makes of an MSR list longer than IA32_VMX_MISC allows (msr-lists.ts).
 * (2, host PDPTEs, cannot happen: CR4.PAE cannot be set on this model.)
 */
export const ABORT_SAVING_GUEST_MSRS = 1, ABORT_VMCS_CORRUPTED = 3, ABORT_LOADING_HOST_MSRS = 4,
  ABORT_MACHINE_CHECK = 5;

/**
 * VMX abort (27.7): the indicator goes to bytes 4-7 of the current VMCS region and the processor
 * enters the VMX-abort shutdown state, from which only RESET wakes it (no SMX on this model).
 */
function vmxAbort(cpu: Cpu, indicator: number): void {
  cpu.writePhys32(cpu.vmx.vmcsPtr + VMCS_ABORT_OFFSET, indicator);
  cpu.vmx.nonRoot = false;
  cpu.halted = false;
  cpu.shutdown = true;
  cpu.attention = true;
}
/** A failed MSR list's abort: the machine-check choice for an overlong list, else `indicator`. */
const listAbort = (result: number, indicator: number): number => result === LIST_TOO_LONG ? ABORT_MACHINE_CHECK : indicator;

/** Saves the guest state into the current VMCS (27.3). `rip` is the RIP to resume at. */
function saveGuestState(cpu: Cpu, rip: number): void {
  const exit = vmcsRead(cpu, VMCS_EXIT_CONTROLS);
  vmcsWrite(cpu, G_CR0, cpu.cr0);
  vmcsWrite(cpu, G_CR3, cpu.cr3);
  vmcsWrite(cpu, G_CR4, cpu.cr4);
  if (exit & EXIT_SAVE_DEBUG) {
    vmcsWrite(cpu, G_DR7, cpu.dr[7]);
    vmcsWrite(cpu, G_DEBUGCTL, Number((cpu.msrs.get(MSR_DEBUGCTL) ?? 0n) & 0xffffffffn) | 0);
  }
  if (exit & EXIT_SAVE_PAT) {
    const pat = cpu.msrs.get(MSR_PAT) ?? 0x0007040600070406n;
    vmcsWrite(cpu, G_PAT, Number(pat & 0xffffffffn) | 0);
    vmcsWrite(cpu, G_PAT | 1, Number(pat >> 32n) | 0);
  }
  for (let s = 0; s < 8; s++) {
    vmcsWrite(cpu, G_SEL + 2 * s, cpu.seg[s]);
    vmcsWrite(cpu, G_BASE + 2 * s, cpu.segBase[s]);
    vmcsWrite(cpu, G_LIMIT + 2 * s, cpu.segLimit[s]);
    vmcsWrite(cpu, G_AR + 2 * s, cpu.segAr[s]);
  }
  vmcsWrite(cpu, G_GDTR_BASE, cpu.gdtrBase);
  vmcsWrite(cpu, G_GDTR_LIMIT, cpu.gdtrLimit);
  vmcsWrite(cpu, G_IDTR_BASE, cpu.idtrBase);
  vmcsWrite(cpu, G_IDTR_LIMIT, cpu.idtrLimit);
  vmcsWrite(cpu, G_RSP, cpu.regs[ESP]);
  vmcsWrite(cpu, G_RIP, rip);
  vmcsWrite(cpu, G_RFLAGS, cpu.getEflags());
  vmcsWrite(cpu, G_SYSENTER_CS, sysenterMsr(cpu, MSR_SYSENTER_CS));
  vmcsWrite(cpu, G_SYSENTER_ESP, sysenterMsr(cpu, MSR_SYSENTER_ESP));
  vmcsWrite(cpu, G_SYSENTER_EIP, sysenterMsr(cpu, MSR_SYSENTER_EIP));
  // Activity state, interruptibility, pending debug exceptions, preemption timer. An
  // instruction-caused exit happens before the instruction completes: the shadow of the
  // instruction before it (if any) is still in force for the exiting instruction.
  saveGuestEvents(cpu);
}

/** Host CS/SS/DS/ES/FS/GS cache values after a VM exit (27.5.2): flat, ring 0, 32-bit, page-granular. */
const HOST_CODE_AR = 11 | AR_S | AR_P | AR_DB | AR_G, HOST_DATA_AR = 3 | AR_S | AR_P | AR_DB | AR_G;
const HOST_TR_AR = 11 | AR_P;

/**
 * Loads the host state (27.5) and leaves non-root operation, then the VM-exit MSR-load list
 * (27.6): the end of every VM exit. A host state VM entry would refuse is a VMX abort.
 */
function loadHostState(cpu: Cpu): void {
  cpu.vmx.transitions++;
  if (!hostStateValid(cpu)) return vmxAbort(cpu, ABORT_VMCS_CORRUPTED);
  const exit = vmcsRead(cpu, VMCS_EXIT_CONTROLS);
  cpu.cr0 = cr0Loaded(cpu.cr0, vmcsRead(cpu, H_CR0));
  cpu.cr3 = vmcsRead(cpu, H_CR3);
  cpu.cr4 = vmcsRead(cpu, H_CR4);
  cpu.dr[7] = 0x400;
  cpu.msrs.set(MSR_DEBUGCTL, 0n);
  cpu.msrs.set(MSR_SYSENTER_CS, BigInt(vmcsRead(cpu, H_SYSENTER_CS) >>> 0));
  cpu.msrs.set(MSR_SYSENTER_ESP, BigInt(vmcsRead(cpu, H_SYSENTER_ESP) >>> 0));
  cpu.msrs.set(MSR_SYSENTER_EIP, BigInt(vmcsRead(cpu, H_SYSENTER_EIP) >>> 0));
  if (exit & EXIT_LOAD_PAT) cpu.msrs.set(MSR_PAT, qword(cpu, H_PAT));
  cpu.setEflags(2);
  for (let s = 0; s < 6; s++) {
    const sel = vmcsRead(cpu, H_SEL + 2 * s);
    const base = s === 4 || s === 5 ? vmcsRead(cpu, H_FS_BASE + 2 * (s - 4)) : 0;
    // A null data selector leaves the register unusable (CS and SS are never null: 26.2.3).
    if (s !== CS && sel === 0) cpu.setSegCache(s, 0, base, 0, AR_UNUSABLE);
    else cpu.setSegCache(s, sel, base, 0xffffffff, s === CS ? HOST_CODE_AR : HOST_DATA_AR);
  }
  cpu.setSegCache(TR, vmcsRead(cpu, H_SEL + 2 * 6), vmcsRead(cpu, H_TR_BASE), 0x67, HOST_TR_AR);
  cpu.setSegCache(LDTR, 0, 0, 0, AR_UNUSABLE);
  cpu.gdtrBase = vmcsRead(cpu, H_GDTR_BASE);
  cpu.idtrBase = vmcsRead(cpu, H_IDTR_BASE);
  cpu.gdtrLimit = cpu.idtrLimit = 0xffff;
  cpu.regs[ESP] = vmcsRead(cpu, H_RSP);
  cpu.eip = vmcsRead(cpu, H_RIP) >>> 0;
  leaveGuestTlb(cpu);
  cpu.halted = false;
  cpu.shadowAt = cpu.inhibitDebugAt = -1;
  // Every VM exit clears the valid bit of the VM-entry interruption-information field (24.8.3).
  vmcsWrite(cpu, VMCS_ENTRY_INTERRUPTION_INFO, vmcsRead(cpu, VMCS_ENTRY_INTERRUPTION_INFO) & 0x7fffffff);
  cpu.vmx.nonRoot = false;
  leaveGuestEvents(cpu);
  cpu.setCpl(0);
  cpu.attention = true;
  cpu.yieldBlock = true; // a block must not run on into the guest instructions after an exiting one
  const loaded = loadMsrList(cpu, VMCS_EXIT_MSR_LOAD_ADDR, VMCS_EXIT_MSR_LOAD_COUNT);
  if (loaded !== LIST_DONE) vmxAbort(cpu, listAbort(loaded, ABORT_LOADING_HOST_MSRS));
}

/** Saves the guest state and the VM-exit MSR-store list, then loads the host (27.3-27.6). */
function exitToHost(cpu: Cpu, rip: number): void {
  saveGuestState(cpu, rip);
  const stored = storeMsrList(cpu, VMCS_EXIT_MSR_STORE_ADDR, VMCS_EXIT_MSR_STORE_COUNT);
  if (stored !== LIST_DONE) return vmxAbort(cpu, listAbort(stored, ABORT_SAVING_GUEST_MSRS));
  loadHostState(cpu);
}

/** Records the basic exit information (27.2): reason, qualification, no event information. */
function recordExit(cpu: Cpu, reason: number, qualification: number): void {
  vmcsWrite(cpu, X_REASON, reason);
  vmcsWrite(cpu, X_QUALIFICATION, qualification);
  vmcsWrite(cpu, X_INTERRUPTION_INFO, 0);
  recordVectoring(cpu);
  cpu.events?.onVmExit?.(reason, qualification);
}

/** VM-entry failure during or after the guest-state checks (26.8): a VM exit without guest state saved. */
export function entryFailure(cpu: Cpu, basicReason: number, qualification: number): void {
  recordExit(cpu, basicReason | EXIT_REASON_ENTRY_FAILURE, qualification);
  loadHostState(cpu);
}

/**
 * A VM exit caused by the instruction executing now (cpu.prevEip .. cpu.eip), before it has any
 * effect: the guest resumes at that instruction; its length (27.2.4), the exit qualification
 * (27.2.1) and the VM-exit instruction-information field (27.2.5; 0 where the SDM leaves it
 * undefined) are recorded.
 */
export function instructionExit(cpu: Cpu, reason: number, qualification = 0, info = 0): void {
  recordExit(cpu, reason, qualification);
  vmcsWrite(cpu, X_INSTRUCTION_LENGTH, (cpu.eip - cpu.prevEip) & 0xf);
  vmcsWrite(cpu, X_INSTRUCTION_INFO, info);
  cpu.halted = false;
  exitToHost(cpu, cpu.prevEip);
}

/**
 * A fault-like VM exit in the middle of an instruction or of its fetch (an EPT violation or
 * misconfiguration, an APIC access): nothing of the instruction is done, the guest resumes at it
 * (cpu.prevEip once it runs, cpu.eip while it is fetched: `fetch`) with RFLAGS.RF saved as 1; no
 * instruction length (undefined for these exits). During event delivery (27.3.3) the guest
 * resumes where the event was to be delivered instead: the return pointer the delivery would
 * push, less the length of a software event (its instruction, as the VMM re-injects it), and RF
 * is that of the pushed RFLAGS image. Throws VM_EXITED so the instruction goes no further.
 */
export function faultExit(cpu: Cpu, reason: number, qualification: number, fetch: boolean): never {
  const ev = cpu.vmx.events, delivering = ev.vectoring !== 0;
  const rip = delivering ? (cpu.eip - ev.vectoringLength) >>> 0 : fetch ? cpu.eip : cpu.prevEip;
  const rf = !delivering || ev.vectoringRf || (cpu.flags & RF) !== 0;
  recordExit(cpu, reason, qualification);
  cpu.halted = false;
  exitToHost(cpu, rip);
  if (rf) vmcsWrite(cpu, G_RFLAGS, vmcsRead(cpu, G_RFLAGS) | RF);
  throw VM_EXITED;
}

/**
 * A VM exit caused by an event or a trap-like condition rather than by the instruction at
 * cpu.prevEip (events.ts: 25.2, 25.5; apic-virt.ts: TPR below threshold): the guest resumes at
 * `rip`, by default the instruction boundary it stands at; the caller adds the event's
 * information. (The pending debug exceptions that MTF and TPR-below-threshold exits save are the
 * exit reason's business: saveGuestEvents.)
 */
export function eventExit(cpu: Cpu, reason: number, qualification = 0, rip = cpu.eip): void {
  recordExit(cpu, reason, qualification);
  exitToHost(cpu, rip);
}
