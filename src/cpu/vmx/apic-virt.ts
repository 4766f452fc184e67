// APIC virtualization of this generation (before APIC-register virtualization and virtual-
// interrupt delivery; SDM Vol. 3C 29.4 with both of those controls 0, 29.1.2 TPR virtualization):
// with "virtualize APIC accesses" a linear access whose translation (paging, then EPT) is the
// APIC-access page is an APIC-access VM exit (reason 44), except that with "use TPR shadow" a
// data read or write starting at offset 80H (the TPR) goes to the virtual-APIC page instead; such
// a write then clears bytes 81H-83H of VTPR and exits with reason 43 (TPR below threshold) once
// the instruction is done if VTPR[7:4] is below the TPR threshold, as VM entry does (26.7).
// IA-32 has no CR8, so the APIC-access page is the only way to the shadow TPR.
//
// An access made while delivering an event through the guest IDT (the IDT, a descriptor, the
// stack frame) reports access type 3, or 10 for a guest-physical access (Table 27-6), and the
// event as IDT-vectoring information (exit.ts).
//
// Model choices (docs/VMX.md): with EPT off, physical accesses (guest paging structures) to the
// APIC-access page access memory (29.4.6 leaves it open); an access starting at 81H-83H exits (as
// Bochs: only the TPR's own offset is virtualized).

import { ACC_EXEC, ACC_WRITE } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { eventExit, EXIT_REASON_APIC_ACCESS, EXIT_REASON_TPR_BELOW_THRESHOLD, faultExit } from './exit.js';

/** Offset of the TPR in the APIC page (and of VTPR in the virtual-APIC page). */
export const APIC_TPR = 0x80;
/** Access types of the APIC-access exit qualification (bits 15:12, Table 27-6). */
const ACCESS_READ = 0, ACCESS_WRITE = 1, ACCESS_FETCH = 2, ACCESS_DELIVERY = 3, ACCESS_DELIVERY_GUEST_PHYSICAL = 10,
  ACCESS_GUEST_PHYSICAL = 15;
/** GuestTranslation.tprPending: a TPR-threshold check is due (VM entry), or a TPR write's virtualization. */
export const TPR_CHECK = 1, TPR_WRITTEN = 2;

/**
 * A linear access whose physical address `phys` is on the APIC-access page: the virtual-APIC
 * page's VTPR for a TPR access under "use TPR shadow" (a write schedules TPR virtualization),
 * else the APIC-access exit (never returns).
 */
export function apicAccess(cpu: Cpu, phys: number, access: number): number {
  const g = cpu.vmx.guest, offset = phys & 0xfff;
  if (access !== ACC_EXEC && offset === APIC_TPR && g.virtualApicPage >= 0) {
    if (access === ACC_WRITE) {
      g.tprPending = TPR_WRITTEN;
      cpu.attention = cpu.yieldBlock = true;
    }
    return (g.virtualApicPage + APIC_TPR) >>> 0;
  }
  const type = cpu.vmx.events.vectoring !== 0 ? ACCESS_DELIVERY
    : access === ACC_EXEC ? ACCESS_FETCH : access === ACC_WRITE ? ACCESS_WRITE : ACCESS_READ;
  return faultExit(cpu, EXIT_REASON_APIC_ACCESS, offset | (type << 12), access === ACC_EXEC);
}

/**
 * A guest-physical access (a guest paging-structure entry under EPT) to the APIC-access page,
 * made while translating an instruction fetch (`fetch`) or a data access, of an instruction or of
 * an event's delivery.
 */
export function apicGuestPhysicalAccess(cpu: Cpu, phys: number, fetch: boolean): never {
  const type = cpu.vmx.events.vectoring !== 0 ? ACCESS_DELIVERY_GUEST_PHYSICAL : ACCESS_GUEST_PHYSICAL;
  return faultExit(cpu, EXIT_REASON_APIC_ACCESS, (phys & 0xfff) | (type << 12), fetch);
}

/** VTPR bits 7:4 below the TPR threshold: a VM entry or a TPR write ends in a TPR-below-threshold exit. */
export function tprBelowThreshold(cpu: Cpu): boolean {
  const g = cpu.vmx.guest;
  return cpu.readPhys8(g.virtualApicPage + APIC_TPR) >> 4 < g.tprThreshold;
}

/**
 * Between guest instructions, after a TPR write through the APIC-access page (bytes 81H-83H of
 * VTPR cleared) or a VM entry: the trap-like TPR-below-threshold exit when VTPR[7:4] is below
 * the threshold (the guest resumes after the instruction; exit qualification 0).
 */
export function tprVirtualization(cpu: Cpu): void {
  const g = cpu.vmx.guest;
  if (g.tprPending === TPR_WRITTEN) cpu.writePhys32(g.virtualApicPage + APIC_TPR, cpu.readPhys8(g.virtualApicPage + APIC_TPR));
  g.tprPending = 0;
  if (tprBelowThreshold(cpu)) eventExit(cpu, EXIT_REASON_TPR_BELOW_THRESHOLD);
}
