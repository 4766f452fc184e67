// VM entry past the checks of entry-checks.ts (SDM Vol. 3C 26.3: guest-state checks and loading;
// VM exits are exit.ts), for an IA-32 processor: natural-width fields are 32 bits, there is no
// IA-32e mode, and CR4.PAE cannot be set on this model (so no PDPTE checks or loads). VMX non-root operation is the flag
// cpu.vmx.nonRoot; the instructions that exit check it (cpuid.ts, exec/interrupt.ts HLT,
// instructions.ts, vmx/intercept*.ts for the controlled ones). Every control the model offers
// (capabilities.ts) has its non-root behaviour modelled, so VM entry refuses only what the
// SDM's checks refuse.

import { ESP, CR0_PE, CR0_PG, CS, SS, TR, LDTR, AR_UNUSABLE, AR_P, AR_S, AR_G, VM, IF, TF } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { MSR_DEBUGCTL, MSR_PAT, MSR_SYSENTER_CS, MSR_SYSENTER_ESP, MSR_SYSENTER_EIP, validTypeBytes } from '../msr.js';
import { enterGuestTranslation } from './ept.js';
import { ACTIVITY_HLT, ACTIVITY_SHUTDOWN, cr0Loaded, crAllowedInVmx, VMCS_REVISION_ID } from './capabilities.js';
import { ENTRY_LOAD_DEBUG, ENTRY_LOAD_PAT, PROC2_UNRESTRICTED_GUEST, PROC_SECONDARY } from './controls.js';
import {
  BLOCK_MOV_SS, BLOCK_NMI, BLOCK_SMI, BLOCK_STI, G_ACTIVITY, G_AR, G_BASE, G_CR0, G_CR3, G_CR4, G_DEBUGCTL, G_DR7, G_GDTR_BASE, G_GDTR_LIMIT, G_IDTR_BASE, G_IDTR_LIMIT, G_INTERRUPTIBILITY, G_LIMIT, G_LINK, G_PAT, G_PENDING_DEBUG, G_RFLAGS, G_RIP, G_RSP, G_SEL, G_SYSENTER_CS, G_SYSENTER_EIP, G_SYSENTER_ESP,
  VMCS_ENTRY_CONTROLS, VMCS_PROC2_CONTROLS, VMCS_PROC_CONTROLS,
} from './fields.js';
import { injectionValid, startGuestEvents } from './events.js';
import { qword, revisionId, setLaunched, vmcsRead } from './vmcs.js';

/** Exit qualifications of an invalid-guest-state entry failure (26.8): default, invalid VMCS link pointer. */
export const QUAL_GUEST_STATE = 0, QUAL_LINK_POINTER = 4;

/** RFLAGS bits that must be 0 (31:22, 15, 5, 3) and bit 1 that must be 1 (26.3.1.4). */
const RFLAGS_RESERVED0 = (0xffc00000 | (1 << 15) | (1 << 5) | (1 << 3)) | 0, RFLAGS_FIXED1 = 2;

// ---------------------------------------------------------------- guest-state checks (26.3.1)

/** The G flag agrees with the limit: bits 11:0 not all 1 need G = 0, bits 31:20 not 0 need G = 1. */
function granularityOk(limit: number, ar: number): boolean {
  if ((limit & 0xfff) !== 0xfff && ar & AR_G) return false;
  return limit >>> 20 === 0 || (ar & AR_G) !== 0;
}
/** Access-rights bits 11:8 and 31:17 are reserved (must be 0) in a usable segment. */
const AR_RESERVED = (0xfffe0000 | 0xf00) | 0;

/** Segment registers, GDTR and IDTR (26.3.1.2, 26.3.1.3) of a guest that is not unrestricted. */
function segmentsValid(cpu: Cpu, unrestricted: boolean, rflags: number, cr0: number): boolean {
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
    // CS is checked even when unusable ("if the register is CS or if the register is usable").
    const csAr = ar(CS), ssAr = ar(SS), csType = csAr & 0xf, ssDpl = (ssAr >> 5) & 3;
    if (csType !== 9 && csType !== 11 && csType !== 13 && csType !== 15 && !(unrestricted && csType === 3)) return false;
    if (csType === 3 ? ((csAr >> 5) & 3) !== 0 : csType < 12 ? ((csAr >> 5) & 3) !== ssDpl : ((csAr >> 5) & 3) > ssDpl) return false;
    if (!(ssAr & AR_UNUSABLE) && (ssAr & 0xf) !== 3 && (ssAr & 0xf) !== 7) return false;
    // SS.DPL, usable or not: its RPL, or 0 for an unrestricted guest in real mode or with a data CS.
    if (!unrestricted && ssDpl !== (sel(SS) & 3)) return false;
    if (unrestricted && (csType === 3 || !(cr0 & CR0_PE)) && ssDpl !== 0) return false;
    for (let s = 0; s < 6; s++) {
      const a = ar(s);
      if (a & AR_UNUSABLE && s !== CS) continue;
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
  if (!segmentsValid(cpu, unrestricted, rflags, cr0)) return QUAL_GUEST_STATE;
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
  if (!injectionValid(cpu, rflags, activity, intr)) return QUAL_GUEST_STATE;
  const pending = vmcsRead(cpu, G_PENDING_DEBUG);
  if (pending & ~0x500f) return QUAL_GUEST_STATE;
  if (intr & (BLOCK_STI | BLOCK_MOV_SS) || activity === ACTIVITY_HLT) {
    // BS (bit 14) pending exactly when TF is set (no BTF on this model's guests: DEBUGCTL bit 1 reserved).
    if (((pending >> 14) & 1) !== (rflags & TF ? 1 : 0)) return QUAL_GUEST_STATE;
  }
  const linkLo = vmcsRead(cpu, G_LINK), linkHi = vmcsRead(cpu, G_LINK | 1);
  if (linkLo !== -1 || linkHi !== -1) {
    // No VMCS shadowing: the region must carry our revision identifier with bit 31 clear; not
    // the current VMCS (no SMM, so never the executive-VMCS rule).
    if (linkLo & 0xfff || linkHi !== 0 || revisionId(cpu, linkLo >>> 0) !== VMCS_REVISION_ID ||
        linkLo >>> 0 === cpu.vmx.vmcsPtr) return QUAL_LINK_POINTER;
  }
  return -1;
}

// ---------------------------------------------------------------- guest-state loading (26.3.2)

/**
 * Loads the guest registers of the current VMCS (checked; 26.3.2.1-26.3.2.3). The VM-entry
 * MSR-load list comes next (msr-lists.ts), then enterGuest.
 */
export function loadGuestState(cpu: Cpu): void {
  const entry = vmcsRead(cpu, VMCS_ENTRY_CONTROLS);
  cpu.cr0 = cr0Loaded(cpu.cr0, vmcsRead(cpu, G_CR0));
  cpu.cr3 = vmcsRead(cpu, G_CR3);
  cpu.cr4 = vmcsRead(cpu, G_CR4);
  if (entry & ENTRY_LOAD_DEBUG) {
    // DR7 bits 15:14 and 12 load as 0, bit 10 as 1, whatever the field holds (26.3.2.1).
    cpu.dr[7] = (vmcsRead(cpu, G_DR7) & ~0xd000) | 0x400;
    cpu.msrs.set(MSR_DEBUGCTL, BigInt(vmcsRead(cpu, G_DEBUGCTL) >>> 0));
  }
  if (entry & ENTRY_LOAD_PAT) cpu.msrs.set(MSR_PAT, qword(cpu, G_PAT));
  cpu.msrs.set(MSR_SYSENTER_CS, BigInt(vmcsRead(cpu, G_SYSENTER_CS) >>> 0));
  cpu.msrs.set(MSR_SYSENTER_ESP, BigInt(vmcsRead(cpu, G_SYSENTER_ESP) >>> 0));
  cpu.msrs.set(MSR_SYSENTER_EIP, BigInt(vmcsRead(cpu, G_SYSENTER_EIP) >>> 0));
  // RFLAGS before the segments: the access windows depend on EFLAGS.VM and CR0.PE.
  cpu.setEflags(vmcsRead(cpu, G_RFLAGS));
  for (let s = 0; s < 8; s++) {
    // An unusable CS passed the checks of a usable one and its other access rights are undefined
    // (26.3.2.2): this model loads it as the usable code segment those bits describe.
    const ar = vmcsRead(cpu, G_AR + 2 * s);
    cpu.setSegCache(s, vmcsRead(cpu, G_SEL + 2 * s), vmcsRead(cpu, G_BASE + 2 * s), vmcsRead(cpu, G_LIMIT + 2 * s),
      s === CS ? ar & ~AR_UNUSABLE : ar);
  }
  cpu.gdtrBase = vmcsRead(cpu, G_GDTR_BASE);
  cpu.gdtrLimit = vmcsRead(cpu, G_GDTR_LIMIT);
  cpu.idtrBase = vmcsRead(cpu, G_IDTR_BASE);
  cpu.idtrLimit = vmcsRead(cpu, G_IDTR_LIMIT);
  cpu.regs[ESP] = vmcsRead(cpu, G_RSP);
  cpu.eip = vmcsRead(cpu, G_RIP) >>> 0;
  enterGuestTranslation(cpu); // EPT, VPID, APIC virtualization; the TLB switches to the guest's tag
  cpu.setCpl((cpu.segAr[SS] >> 5) & 3); // also recomputes the mode state
}

/**
 * The end of a successful VM entry, once the guest registers and MSRs are loaded: the activity
 * and interruptibility state (26.3.2.5), the launch state after a VMLAUNCH, non-root operation.
 */
export function enterGuest(cpu: Cpu, launch: boolean): void {
  const activity = vmcsRead(cpu, G_ACTIVITY), intr = vmcsRead(cpu, G_INTERRUPTIBILITY);
  // HLT and shutdown both idle the guest; events.ts tells which events end which (26.6.2).
  cpu.halted = activity === ACTIVITY_HLT || activity === ACTIVITY_SHUTDOWN;
  // The first guest instruction runs at the next icount (this instruction retires first).
  cpu.shadowAt = intr & (BLOCK_STI | BLOCK_MOV_SS) ? cpu.icount + 1 : -1;
  cpu.inhibitDebugAt = intr & BLOCK_MOV_SS ? cpu.icount + 1 : -1;
  cpu.nmiBlocked = (intr & BLOCK_NMI) !== 0;
  if (launch) setLaunched(cpu, cpu.vmx.vmcsPtr, true);
  cpu.vmx.nonRoot = true;
  cpu.vmx.transitions++;
  startGuestEvents(cpu); // timer, NMI blocking, pending debug exceptions, event injection
}
