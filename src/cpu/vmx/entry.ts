// VM entry past the checks of entry-checks.ts (SDM Vol. 3C 26.3: guest-state checks and loading)
// and VM exits (27: recording the exit, saving the guest state, loading the host state), for an
// IA-32 processor: natural-width fields are 32 bits, there is no IA-32e mode, and CR4.PAE cannot
// be set on this model (so no PDPTE checks or loads). VMX non-root operation is the flag
// cpu.vmx.nonRoot; the instructions that exit check it (cpuid.ts, exec/interrupt.ts HLT,
// instructions.ts).
//
// Not implemented yet, each refused at VM entry as invalid control fields (VMfailValid(7), a
// defined outcome rather than a guest running with the wrong semantics; docs/VMX.md): event
// injection, MSR-load/store lists, and any VM-execution control whose exits or effects the
// non-root CPU does not model yet (everything but HLT exiting).

import { ESP, CR0_DEFINED, CR0_ET, CR0_PE, CR0_PG, CS, SS, TR, LDTR, AR_UNUSABLE, AR_P, AR_S, AR_G, AR_DB, VM, IF, TF } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, sysenterMsr, validTypeBytes } from '../msr.js';
import { flushTlb } from '../paging.js';
import { ACTIVITY_HLT, ACTIVITY_SHUTDOWN, CONTROL_MUST1, crAllowedInVmx, VMCS_REVISION_ID } from './capabilities.js';
import {
  ENTRY, ENTRY_LOAD_DEBUG, ENTRY_LOAD_PAT, EXIT, EXIT_LOAD_PAT, EXIT_SAVE_DEBUG, EXIT_SAVE_PAT, PIN, PROC,
  PROC2, PROC2_UNRESTRICTED_GUEST, PROC_CR3_LOAD_EXITING, PROC_CR3_STORE_EXITING, PROC_HLT_EXITING, PROC_SECONDARY,
} from './controls.js';
import {
  VMCS_ENTRY_CONTROLS, VMCS_ENTRY_INTERRUPTION_INFO, VMCS_ENTRY_MSR_LOAD_COUNT, VMCS_EXIT_CONTROLS,
  VMCS_EXIT_MSR_LOAD_COUNT, VMCS_EXIT_MSR_STORE_COUNT, VMCS_PIN_CONTROLS, VMCS_PROC2_CONTROLS, VMCS_PROC_CONTROLS,
} from './fields.js';
import { revisionId, setLaunched, vmcsRead, vmcsWrite } from './vmcs.js';

// Field encodings used here only (Appendix B).
const G_SEL = 0x0800, G_LIMIT = 0x4800, G_AR = 0x4814, G_BASE = 0x6806; // + 2 * segment (ES..TR order)
const G_GDTR_LIMIT = 0x4810, G_IDTR_LIMIT = 0x4812, G_GDTR_BASE = 0x6816, G_IDTR_BASE = 0x6818;
const G_LINK = 0x2800, G_DEBUGCTL = 0x2802, G_PAT = 0x2804;
const G_INTERRUPTIBILITY = 0x4824, G_ACTIVITY = 0x4826, G_SYSENTER_CS = 0x482a;
const G_CR0 = 0x6800, G_CR3 = 0x6802, G_CR4 = 0x6804, G_DR7 = 0x681a, G_RSP = 0x681c, G_RIP = 0x681e,
  G_RFLAGS = 0x6820, G_PENDING_DEBUG = 0x6822, G_SYSENTER_ESP = 0x6824, G_SYSENTER_EIP = 0x6826;
const H_SEL = 0x0c00, H_PAT = 0x2c00, H_SYSENTER_CS = 0x4c00; // H_SEL + 2 * segment, ES..GS then TR at 0x0c0c
const H_CR0 = 0x6c00, H_CR3 = 0x6c02, H_CR4 = 0x6c04, H_FS_BASE = 0x6c06, H_TR_BASE = 0x6c0a,
  H_GDTR_BASE = 0x6c0c, H_IDTR_BASE = 0x6c0e, H_SYSENTER_ESP = 0x6c10, H_SYSENTER_EIP = 0x6c12,
  H_RSP = 0x6c14, H_RIP = 0x6c16;
const X_REASON = 0x4402, X_INTERRUPTION_INFO = 0x4404, X_IDT_VECTORING = 0x4408, X_INSTRUCTION_LENGTH = 0x440c,
  X_QUALIFICATION = 0x6400;
const C_EXCEPTION_BITMAP = 0x4004;
const MSR_DEBUGCTL = 0x1d9, MSR_PAT = 0x277;

/** Basic exit reasons (Appendix C) this slice produces. */
export const EXIT_REASON_CPUID = 10, EXIT_REASON_HLT = 12, EXIT_REASON_VMCALL = 18, EXIT_REASON_VMCLEAR = 19,
  EXIT_REASON_VMLAUNCH = 20, EXIT_REASON_VMPTRLD = 21, EXIT_REASON_VMPTRST = 22, EXIT_REASON_VMREAD = 23,
  EXIT_REASON_VMRESUME = 24, EXIT_REASON_VMWRITE = 25, EXIT_REASON_VMXOFF = 26, EXIT_REASON_VMXON = 27,
  EXIT_REASON_INVALID_GUEST_STATE = 33, EXIT_REASON_INVEPT = 50, EXIT_REASON_INVVPID = 53;
/** Bit 31 of the exit reason: VM-entry failure (26.8). */
export const EXIT_REASON_ENTRY_FAILURE = 0x80000000 | 0;
/** Exit qualifications of an invalid-guest-state entry failure (26.8): default, invalid VMCS link pointer. */
export const QUAL_GUEST_STATE = 0, QUAL_LINK_POINTER = 4;

/** Interruptibility-state bits (24.4.2). */
const BLOCK_STI = 1, BLOCK_MOV_SS = 2, BLOCK_SMI = 4, BLOCK_NMI = 8;
/** RFLAGS bits that must be 0 (31:22, 15, 5, 3) and bit 1 that must be 1 (26.3.1.4). */
const RFLAGS_RESERVED0 = (0xffc00000 | (1 << 15) | (1 << 5) | (1 << 3)) | 0, RFLAGS_FIXED1 = 2;

// Non-root behaviour this slice models beyond the TRUE allowed 0-settings: HLT exiting, and the
// CR3-load/store exiting default1 pair (accepted only when 0: see controlsImplemented).
const PROC_IMPLEMENTED = CONTROL_MUST1[PROC] | PROC_HLT_EXITING;

/**
 * Whether the non-root CPU models every control the VMCS turns on (see the file comment); the
 * caller makes anything else VMfailValid(7).
 */
export function controlsImplemented(cpu: Cpu): boolean {
  const proc = vmcsRead(cpu, VMCS_PROC_CONTROLS);
  if (vmcsRead(cpu, VMCS_PIN_CONTROLS) !== CONTROL_MUST1[PIN]) return false;
  if (proc & ~PROC_IMPLEMENTED || proc & (PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING)) return false;
  if (proc & PROC_SECONDARY && vmcsRead(cpu, VMCS_PROC2_CONTROLS) !== CONTROL_MUST1[PROC2]) return false;
  if (vmcsRead(cpu, C_EXCEPTION_BITMAP) !== 0) return false; // exception exits not modelled yet
  if (vmcsRead(cpu, VMCS_EXIT_CONTROLS) & ~(CONTROL_MUST1[EXIT] | EXIT_SAVE_DEBUG | EXIT_SAVE_PAT | EXIT_LOAD_PAT)) return false;
  if (vmcsRead(cpu, VMCS_ENTRY_CONTROLS) & ~(CONTROL_MUST1[ENTRY] | ENTRY_LOAD_DEBUG | ENTRY_LOAD_PAT)) return false;
  return vmcsRead(cpu, VMCS_ENTRY_INTERRUPTION_INFO) >= 0 && vmcsRead(cpu, VMCS_ENTRY_MSR_LOAD_COUNT) === 0 &&
    vmcsRead(cpu, VMCS_EXIT_MSR_STORE_COUNT) === 0 && vmcsRead(cpu, VMCS_EXIT_MSR_LOAD_COUNT) === 0;
}

// ---------------------------------------------------------------- guest-state checks (26.3.1)

/** A 64-bit field as a bigint. */
function qword(cpu: Cpu, encoding: number): bigint {
  return (BigInt(vmcsRead(cpu, encoding | 1) >>> 0) << 32n) | BigInt(vmcsRead(cpu, encoding) >>> 0);
}

/** The G flag agrees with the limit: bits 11:0 not all 1 need G = 0, bits 31:20 not 0 need G = 1. */
function granularityOk(limit: number, ar: number): boolean {
  if ((limit & 0xfff) !== 0xfff && ar & AR_G) return false;
  return limit >>> 20 === 0 || (ar & AR_G) !== 0;
}
/** Access-rights bits 11:8 and 31:17 are reserved (must be 0) in a usable segment. */
const AR_RESERVED = (0xfffe0000 | 0xf00) | 0;

/** Segment registers, GDTR and IDTR (26.3.1.2, 26.3.1.3) of a guest that is not unrestricted. */
function segmentsValid(cpu: Cpu, unrestricted: boolean, rflags: number): boolean {
  const sel = (s: number): number => vmcsRead(cpu, G_SEL + 2 * s);
  const ar = (s: number): number => vmcsRead(cpu, G_AR + 2 * s);
  const limit = (s: number): number => vmcsRead(cpu, G_LIMIT + 2 * s);
  if (sel(TR) & 4) return false;
  if (!(ar(LDTR) & AR_UNUSABLE) && sel(LDTR) & 4) return false;
  if (rflags & VM) {
    // Virtual-8086 guest: base = selector * 16, limit FFFFH, access rights F3H for the six.
    for (let s = 0; s < 6; s++) {
      if (vmcsRead(cpu, G_BASE + 2 * s) !== sel(s) << 4 || limit(s) !== 0xffff || ar(s) !== 0xf3) return false;
    }
  } else {
    if (!unrestricted && (sel(SS) & 3) !== (sel(CS) & 3)) return false;
    const csAr = ar(CS), ssAr = ar(SS), csType = csAr & 0xf, ssDpl = (ssAr >> 5) & 3;
    if (csType !== 9 && csType !== 11 && csType !== 13 && csType !== 15 && !(unrestricted && csType === 3)) return false;
    if (csType === 3 ? ((csAr >> 5) & 3) !== 0 : csType < 12 ? ((csAr >> 5) & 3) !== ssDpl : ((csAr >> 5) & 3) > ssDpl) return false;
    if (!(ssAr & AR_UNUSABLE)) {
      const t = ssAr & 0xf;
      if (t !== 3 && t !== 7) return false;
      if (!unrestricted && ssDpl !== (sel(SS) & 3)) return false;
    }
    for (let s = 0; s < 6; s++) {
      const a = ar(s);
      if (a & AR_UNUSABLE) {
        if (s === CS) return false; // CS is never unusable
        continue;
      }
      if (s !== CS && s !== SS) {
        if (!(a & 1) || (a & 8 && !(a & 2))) return false; // accessed; code segments readable
        if (!unrestricted && (a & 0xf) < 12 && ((a >> 5) & 3) < (sel(s) & 3)) return false;
      }
      if (!(a & AR_S) || !(a & AR_P) || a & AR_RESERVED || !granularityOk(limit(s), a)) return false;
    }
  }
  const trAr = ar(TR), trType = trAr & 0xf;
  if ((trType !== 3 && trType !== 11) || trAr & (AR_S | AR_UNUSABLE) || !(trAr & AR_P) || trAr & AR_RESERVED ||
      !granularityOk(limit(TR), trAr)) return false;
  const ldtrAr = ar(LDTR);
  if (!(ldtrAr & AR_UNUSABLE) && ((ldtrAr & 0xf) !== 2 || ldtrAr & AR_S || !(ldtrAr & AR_P) ||
      ldtrAr & AR_RESERVED || !granularityOk(limit(LDTR), ldtrAr))) return false;
  return (vmcsRead(cpu, G_GDTR_LIMIT) >>> 16) === 0 && (vmcsRead(cpu, G_IDTR_LIMIT) >>> 16) === 0;
}

/**
 * The guest-state checks (26.3.1) in the SDM's order: the qualification of the VM-entry failure
 * (QUAL_GUEST_STATE or QUAL_LINK_POINTER), or -1 when the guest state is valid.
 */
export function guestStateCheck(cpu: Cpu): number {
  const proc = vmcsRead(cpu, VMCS_PROC_CONTROLS);
  const proc2 = proc & PROC_SECONDARY ? vmcsRead(cpu, VMCS_PROC2_CONTROLS) : 0;
  const unrestricted = (proc2 & PROC2_UNRESTRICTED_GUEST) !== 0;
  const entry = vmcsRead(cpu, VMCS_ENTRY_CONTROLS);
  // 26.3.1.1: control registers (an unrestricted guest may clear PE and PG), debug controls, PAT.
  const cr0 = vmcsRead(cpu, G_CR0);
  const cr0Checked = unrestricted ? cr0 | CR0_PE | CR0_PG : cr0;
  if (!crAllowedInVmx(0, cr0Checked) || (cr0 & CR0_PG && !(cr0 & CR0_PE))) return QUAL_GUEST_STATE;
  if (!crAllowedInVmx(4, vmcsRead(cpu, G_CR4))) return QUAL_GUEST_STATE;
  // IA32_DEBUGCTL bits 5:2 and 31:15 are reserved on this model (Core Duo: LBR, BTF, TR, BTS...).
  if (entry & ENTRY_LOAD_DEBUG && (vmcsRead(cpu, G_DEBUGCTL) & 0xffff803c || vmcsRead(cpu, G_DEBUGCTL | 1))) return QUAL_GUEST_STATE;
  if (entry & ENTRY_LOAD_PAT && !validTypeBytes(qword(cpu, G_PAT), true)) return QUAL_GUEST_STATE;
  // 26.3.1.2, 26.3.1.3.
  const rflags = vmcsRead(cpu, G_RFLAGS);
  if (!segmentsValid(cpu, unrestricted, rflags)) return QUAL_GUEST_STATE;
  // 26.3.1.4: RFLAGS (RIP has no checks without IA-32e mode).
  if (rflags & RFLAGS_RESERVED0 || !(rflags & RFLAGS_FIXED1)) return QUAL_GUEST_STATE;
  if (rflags & VM && !(cr0 & CR0_PE) && unrestricted) return QUAL_GUEST_STATE;
  // 26.3.1.5: activity and interruptibility state, pending debug exceptions, VMCS link pointer.
  const activity = vmcsRead(cpu, G_ACTIVITY) >>> 0, intr = vmcsRead(cpu, G_INTERRUPTIBILITY) >>> 0;
  if (activity !== 0 && activity !== ACTIVITY_HLT && activity !== ACTIVITY_SHUTDOWN) return QUAL_GUEST_STATE;
  if (activity === ACTIVITY_HLT && (vmcsRead(cpu, G_AR + 2 * SS) >> 5) & 3) return QUAL_GUEST_STATE;
  if (activity !== 0 && intr & (BLOCK_STI | BLOCK_MOV_SS)) return QUAL_GUEST_STATE;
  // Bits 31:4 reserved (bit 4, enclave interruption, needs SGX); no SMM, so no SMI blocking.
  if (intr & ~0xf || (intr & BLOCK_STI && intr & BLOCK_MOV_SS) || intr & BLOCK_SMI) return QUAL_GUEST_STATE;
  if (intr & BLOCK_STI && !(rflags & IF)) return QUAL_GUEST_STATE;
  const pending = vmcsRead(cpu, G_PENDING_DEBUG);
  if (pending & ~0x500f) return QUAL_GUEST_STATE;
  if (intr & (BLOCK_STI | BLOCK_MOV_SS) || activity === ACTIVITY_HLT) {
    // BS (bit 14) pending exactly when TF is set (no BTF on this model's guests: DEBUGCTL bit 1 reserved).
    if (((pending >> 14) & 1) !== (rflags & TF ? 1 : 0)) return QUAL_GUEST_STATE;
  }
  const linkLo = vmcsRead(cpu, G_LINK), linkHi = vmcsRead(cpu, G_LINK | 1);
  if (linkLo !== -1 || linkHi !== -1) {
    // No VMCS shadowing: the region must carry our revision identifier with bit 31 clear.
    if (linkLo & 0xfff || linkHi !== 0 || revisionId(cpu, linkLo >>> 0) !== VMCS_REVISION_ID) return QUAL_LINK_POINTER;
  }
  return -1;
}

// ---------------------------------------------------------------- guest-state loading (26.3.2)

/** Loads the guest state of the current VMCS (checked) and enters non-root operation. */
export function loadGuestState(cpu: Cpu, launch: boolean): void {
  const entry = vmcsRead(cpu, VMCS_ENTRY_CONTROLS);
  cpu.cr0 = (vmcsRead(cpu, G_CR0) & CR0_DEFINED) | CR0_ET;
  cpu.cr3 = vmcsRead(cpu, G_CR3);
  cpu.cr4 = vmcsRead(cpu, G_CR4);
  if (entry & ENTRY_LOAD_DEBUG) {
    cpu.dr[7] = vmcsRead(cpu, G_DR7);
    cpu.msrs.set(MSR_DEBUGCTL, BigInt(vmcsRead(cpu, G_DEBUGCTL) >>> 0));
  }
  if (entry & ENTRY_LOAD_PAT) cpu.msrs.set(MSR_PAT, qword(cpu, G_PAT));
  cpu.msrs.set(MSR_SYSENTER_CS, BigInt(vmcsRead(cpu, G_SYSENTER_CS) >>> 0));
  cpu.msrs.set(MSR_SYSENTER_ESP, BigInt(vmcsRead(cpu, G_SYSENTER_ESP) >>> 0));
  cpu.msrs.set(MSR_SYSENTER_EIP, BigInt(vmcsRead(cpu, G_SYSENTER_EIP) >>> 0));
  // RFLAGS before the segments: the access windows depend on EFLAGS.VM and CR0.PE.
  cpu.setEflags(vmcsRead(cpu, G_RFLAGS));
  for (let s = 0; s < 8; s++) {
    cpu.setSegCache(s, vmcsRead(cpu, G_SEL + 2 * s), vmcsRead(cpu, G_BASE + 2 * s), vmcsRead(cpu, G_LIMIT + 2 * s),
      vmcsRead(cpu, G_AR + 2 * s));
  }
  cpu.gdtrBase = vmcsRead(cpu, G_GDTR_BASE);
  cpu.gdtrLimit = vmcsRead(cpu, G_GDTR_LIMIT);
  cpu.idtrBase = vmcsRead(cpu, G_IDTR_BASE);
  cpu.idtrLimit = vmcsRead(cpu, G_IDTR_LIMIT);
  cpu.regs[ESP] = vmcsRead(cpu, G_RSP);
  cpu.eip = vmcsRead(cpu, G_RIP) >>> 0;
  // No VPID/EPT tagging of TLB entries yet: guest and host translations must not mix.
  flushTlb(cpu, false);
  const activity = vmcsRead(cpu, G_ACTIVITY), intr = vmcsRead(cpu, G_INTERRUPTIBILITY);
  cpu.halted = activity === ACTIVITY_HLT;
  if (activity === ACTIVITY_SHUTDOWN) cpu.shutdown = true;
  // The first guest instruction runs at the next icount (this instruction retires first).
  cpu.shadowAt = intr & (BLOCK_STI | BLOCK_MOV_SS) ? cpu.icount + 1 : -1;
  cpu.inhibitDebugAt = intr & BLOCK_MOV_SS ? cpu.icount + 1 : -1;
  cpu.nmiBlocked = (intr & BLOCK_NMI) !== 0;
  if (launch) setLaunched(cpu, cpu.vmx.vmcsPtr, true);
  cpu.vmx.nonRoot = true;
  cpu.setCpl((cpu.segAr[SS] >> 5) & 3); // also recomputes the mode state
  cpu.attention = true;
}

// ---------------------------------------------------------------- VM exits (27)

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
  vmcsWrite(cpu, G_ACTIVITY, cpu.halted ? ACTIVITY_HLT : 0);
  // An instruction-caused exit happens before the instruction completes: the shadow of the
  // instruction before it (if any) is still in force for the exiting instruction.
  const shadow = cpu.shadowAt === cpu.icount;
  const intr = (shadow ? (cpu.inhibitDebugAt === cpu.icount ? BLOCK_MOV_SS : BLOCK_STI) : 0) | (cpu.nmiBlocked ? BLOCK_NMI : 0);
  vmcsWrite(cpu, G_INTERRUPTIBILITY, intr);
  vmcsWrite(cpu, G_PENDING_DEBUG, 0);
}

/** Host CS/SS/DS/ES/FS/GS cache values after a VM exit (27.5.2): flat, ring 0, 32-bit, page-granular. */
const HOST_CODE_AR = 11 | AR_S | AR_P | AR_DB | AR_G, HOST_DATA_AR = 3 | AR_S | AR_P | AR_DB | AR_G;
const HOST_TR_AR = 11 | AR_P;

/** Loads the host state (27.5) and leaves non-root operation: the end of every VM exit. */
function loadHostState(cpu: Cpu): void {
  const exit = vmcsRead(cpu, VMCS_EXIT_CONTROLS);
  cpu.cr0 = (vmcsRead(cpu, H_CR0) & CR0_DEFINED) | CR0_ET;
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
  flushTlb(cpu, false);
  cpu.halted = false;
  cpu.shadowAt = cpu.inhibitDebugAt = -1;
  // Every VM exit clears the valid bit of the VM-entry interruption-information field (24.8.3).
  vmcsWrite(cpu, VMCS_ENTRY_INTERRUPTION_INFO, vmcsRead(cpu, VMCS_ENTRY_INTERRUPTION_INFO) & 0x7fffffff);
  cpu.vmx.nonRoot = false;
  cpu.setCpl(0);
  cpu.attention = true;
}

/** Records the basic exit information (27.2): reason, qualification, no event information. */
function recordExit(cpu: Cpu, reason: number, qualification: number): void {
  vmcsWrite(cpu, X_REASON, reason);
  vmcsWrite(cpu, X_QUALIFICATION, qualification);
  vmcsWrite(cpu, X_INTERRUPTION_INFO, 0);
  vmcsWrite(cpu, X_IDT_VECTORING, 0);
}

/** VM-entry failure during or after the guest-state checks (26.8): a VM exit without guest state saved. */
export function entryFailure(cpu: Cpu, basicReason: number, qualification: number): void {
  recordExit(cpu, basicReason | EXIT_REASON_ENTRY_FAILURE, qualification);
  loadHostState(cpu);
}

/**
 * A VM exit caused by the instruction executing now (cpu.prevEip .. cpu.eip), before it has any
 * effect: the guest resumes at that instruction; its length is recorded (27.2.4).
 */
export function instructionExit(cpu: Cpu, reason: number): void {
  recordExit(cpu, reason, 0);
  vmcsWrite(cpu, X_INSTRUCTION_LENGTH, (cpu.eip - cpu.prevEip) & 0xf);
  cpu.halted = false;
  saveGuestState(cpu, cpu.prevEip);
  loadHostState(cpu);
}

/** HLT in non-root operation: a VM exit when "HLT exiting" is 1 (25.1.3). */
export function hltExits(cpu: Cpu): boolean {
  return cpu.vmx.nonRoot && (vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_HLT_EXITING) !== 0;
}
