// Extended page tables (SDM Vol. 3C 28.2) for an IA-32 processor with 32-bit physical addresses:
// the 4-level walk of a guest-physical address, 2-MiB pages, EPT violations (exit reason 48) with
// their exit qualification and guest-physical / guest-linear addresses, EPT misconfigurations
// (49), and the accessed and dirty flags of EPTP bit 6 (this model's extension: Westmere has
// none; docs/VMX.md). paging.ts calls eptTranslate for every guest-physical access a TLB miss
// makes in non-root operation with "enable EPT": the guest's paging-structure entries (reads and
// A/D updates) and the final page.
//
// Guest-physical mappings are not cached apart from the combined mappings in the TLB (a processor
// may cache; not caching is always allowed), so only INVEPT's effect on those (paging.ts) shows.
// Memory types are checked (UC 0, WC 1, WT 4, WP 5, WB 6 are valid; 2, 3, 7 misconfigurations),
// and otherwise not observable: this machine has no caches.

import { ACC_EXEC, ACC_WRITE } from '../constants.js';
import type { Cpu } from '../cpu.js';
import { faultExit, EXIT_REASON_EPT_MISCONFIG, EXIT_REASON_EPT_VIOLATION } from './exit.js';
import { enterGuestTlb } from '../paging.js';
import { TPR_CHECK } from './apic-virt.js';
import {
  PROC2_EPT, PROC2_UNRESTRICTED_GUEST, PROC2_VIRTUALIZE_APIC, PROC2_VPID, PROC_SECONDARY, PROC_TPR_SHADOW,
} from './controls.js';
import {
  VMCS_APIC_ACCESS_ADDR, VMCS_EPTP, VMCS_PROC2_CONTROLS, VMCS_PROC_CONTROLS, VMCS_TPR_THRESHOLD,
  VMCS_VIRTUAL_APIC_ADDR, VMCS_VPID, X_GUEST_LINEAR, X_GUEST_PHYSICAL,
} from './fields.js';
import { vmcsRead, vmcsWrite } from './vmcs.js';

/** Access rights of an EPT entry (bits 2:0) and of a translation: read, write, execute. */
export const EPT_R = 1, EPT_W = 2, EPT_X = 4;
const EPT_PS = 0x80, EPT_A = 0x100, EPT_D = 0x200;
/** Bits 51:32: physical-address bits beyond this model's 32, reserved in every entry. */
const HIGH_RESERVED = 0x000fffff;
/** Bits 20:12 of a 2-MiB leaf (below its page frame), reserved. */
const LARGE_RESERVED = 0x001ff000;
/** Bits 6:3 of a non-leaf entry (bit 7 is PS, a misconfiguration above the page directory). */
const NONLEAF_RESERVED = 0x78;

// EPT-violation exit qualification (27.2.1, Table 27-7).
const Q_READ = 1, Q_WRITE = 2, Q_FETCH = 4, Q_LINEAR_VALID = 1 << 7, Q_TRANSLATION = 1 << 8, Q_NMI_UNBLOCKED = 1 << 12;

/**
 * What the last successful eptTranslate found (one object, so a walk allocates nothing): the
 * rights of the translation (EPT_R | EPT_W | EPT_X, ANDed over every entry used) and whether a
 * write may be cached in the TLB (A/D flags off, or the leaf's dirty flag set).
 */
export const eptResult = { rights: 0, writeCacheable: false };

/** Addresses and low dwords of the entries of the current walk, for the A/D update. */
const entryAt = new Int32Array(4);
const entryLo = new Int32Array(4);

const validMemoryType = (t: number): boolean => t !== 2 && t !== 3 && t !== 7;

/**
 * The host-physical address of guest-physical `gpa` for an access of kind `access` (ACC_READ,
 * ACC_WRITE, ACC_EXEC) made while translating linear address `lin`: `walk` is true for a guest
 * paging-structure access or its A/D update (exit-qualification bit 8 clear), false for the
 * final translation of `lin`; `fetch`: the linear access is an instruction fetch (the guest then
 * resumes at cpu.eip). Makes the VM exit (never returns) on an EPT misconfiguration or
 * violation; on success sets the A/D flags (EPTP bit 6) and eptResult.
 */
export function eptTranslate(cpu: Cpu, gpa: number, access: number, lin: number, walk: boolean, fetch: boolean): number {
  const g = cpu.vmx.guest;
  // With A/D flags on, guest paging-structure accesses count as writes (28.2.3.2).
  const write = access === ACC_WRITE || (walk && g.eptAd);
  const need = access === ACC_EXEC ? EPT_X : write ? EPT_W : EPT_R;
  let table = g.eptRoot, rights = EPT_R | EPT_W | EPT_X, level = 4, lo = 0;
  for (;; level--) {
    // A 32-bit guest-physical address uses PML4 entry 0 and the first four PDPT entries.
    const at = table + (level === 4 ? 0 : ((gpa >>> (3 + 9 * level)) & 511) * 8);
    lo = cpu.readPhys32(at);
    const hi = cpu.readPhys32(at + 4);
    entryAt[level - 1] = at;
    entryLo[level - 1] = lo;
    if ((lo & 7) === 0) return eptViolation(cpu, gpa, lin, access, walk, write, 0, fetch);
    const large = level === 2 && (lo & EPT_PS) !== 0;
    const leaf = level === 1 || large;
    const misconfigured = (lo & 3) === EPT_W || (hi & HIGH_RESERVED) !== 0 || (level > 2 && (lo & EPT_PS) !== 0) ||
      (leaf ? !validMemoryType((lo >> 3) & 7) || (large && (lo & LARGE_RESERVED) !== 0) : (lo & NONLEAF_RESERVED) !== 0);
    if (misconfigured) return eptExit(cpu, EXIT_REASON_EPT_MISCONFIG, 0, gpa, lin, fetch);
    rights &= lo;
    if (leaf) break;
    table = lo & 0xfffff000;
  }
  if ((rights & need) === 0) return eptViolation(cpu, gpa, lin, access, walk, write, rights, fetch);
  let dirty = true;
  if (g.eptAd) {
    for (let k = 3; k >= level - 1; k--) {
      const leaf = k === level - 1;
      const set = EPT_A | (leaf && write ? EPT_D : 0);
      if ((entryLo[k] & set) !== set) cpu.writePhys32(entryAt[k], entryLo[k] | set);
    }
    dirty = write || (lo & EPT_D) !== 0;
  }
  eptResult.rights = rights;
  eptResult.writeCacheable = dirty;
  const frame = level === 2 ? (lo & 0xffe00000) | (gpa & 0x1ff000) : lo & 0xfffff000;
  return (frame | (gpa & 0xfff)) >>> 0;
}

/** An EPT violation: the qualification of Table 27-7, then the exit. */
function eptViolation(cpu: Cpu, gpa: number, lin: number, access: number, walk: boolean, write: boolean,
  rights: number, fetch: boolean): never {
  // A guest paging-structure access treated as a write sets both bit 0 and bit 1 (27.2.1).
  let q = access === ACC_EXEC ? Q_FETCH : (write ? Q_WRITE : 0) | (access === ACC_WRITE ? 0 : Q_READ);
  q |= (rights << 3) | Q_LINEAR_VALID | (walk ? 0 : Q_TRANSLATION);
  if (cpu.vmx.guest.iretUnblockedNmiAt === cpu.icount) q |= Q_NMI_UNBLOCKED;
  return eptExit(cpu, EXIT_REASON_EPT_VIOLATION, q, gpa, lin, fetch);
}

/** The exit of an EPT violation or misconfiguration: both addresses recorded, the guest at the instruction. */
function eptExit(cpu: Cpu, reason: number, qualification: number, gpa: number, lin: number, fetch: boolean): never {
  vmcsWrite(cpu, X_GUEST_PHYSICAL, gpa);
  vmcsWrite(cpu, X_GUEST_LINEAR, lin);
  return faultExit(cpu, reason, qualification, fetch);
}

/** EPTP bit 6: accessed and dirty flags for EPT. */
export const EPTP_AD = 0x40;

/**
 * VM entry: the guest's translation and APIC-virtualization controls from the VMCS (checked by
 * entry-checks.ts) into cpu.vmx.guest, the TLB switched to the guest's tag, and a TPR-threshold
 * check due before the first guest instruction under "use TPR shadow" (26.7).
 */
export function enterGuestTranslation(cpu: Cpu): void {
  const g = cpu.vmx.guest;
  const proc = vmcsRead(cpu, VMCS_PROC_CONTROLS);
  const proc2 = proc & PROC_SECONDARY ? vmcsRead(cpu, VMCS_PROC2_CONTROLS) : 0;
  g.reset();
  if (proc2 & PROC2_EPT) {
    const eptp = vmcsRead(cpu, VMCS_EPTP);
    g.eptRoot = eptp & 0xfffff000;
    g.eptAd = (eptp & EPTP_AD) !== 0;
  }
  if (proc2 & PROC2_VPID) g.vpid = vmcsRead(cpu, VMCS_VPID) & 0xffff;
  g.unrestricted = (proc2 & PROC2_UNRESTRICTED_GUEST) !== 0;
  if (proc2 & PROC2_VIRTUALIZE_APIC) g.apicAccessPage = vmcsRead(cpu, VMCS_APIC_ACCESS_ADDR) & 0xfffff000;
  if (proc & PROC_TPR_SHADOW) {
    g.virtualApicPage = vmcsRead(cpu, VMCS_VIRTUAL_APIC_ADDR) & 0xfffff000;
    g.tprThreshold = vmcsRead(cpu, VMCS_TPR_THRESHOLD) & 0xf;
    g.tprPending = TPR_CHECK;
  }
  enterGuestTlb(cpu);
}
