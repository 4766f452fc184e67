// 32-bit two-level paging (SDM Vol. 3A 4.3): 4 KiB pages and, with CR4.PSE, 4 MiB pages;
// U/S and R/W with CR0.WP; accessed and dirty bits written by the CPU; page-fault error codes
// and CR2; and the TLB with the SDM's flush rules.
//
// The TLB lives in the hub's typed arrays (cpu.tlbRead / cpu.tlbWrite, one entry per linear
// page: physical page | TLB_SUP | TLB_USER | TLB_GLOBAL) so the hub's fast path is one load
// and one test. An entry stays until software flushes it (MOV CR3, INVLPG, CR0/CR4 paging
// changes, task switch): a page-table write without a flush leaves the stale translation
// visible, deterministically, as on hardware. A write entry exists only once the dirty bit is
// set, so the first write to a clean page always walks and sets D.
//
// VMX tags TLB entries (SDM Vol. 3C 28.3): the arrays hold the entries of one tag, the current
// one (cpu.vmx.tlbTag: 0 in VMX root operation, else the guest's VPID and EPT root); VM entry
// and exit park the entries of the tag they leave in cpu.vmx.parkedTlb and bring back those of
// the tag they enter, so the fast path never looks at tags. Without "enable VPID" VM entries
// and exits drop every VPID-0 entry instead; INVVPID and INVEPT drop parked entries by tag.

import type { Cpu } from './cpu.js';
import { ACC_EXEC, ACC_READ, ACC_WRITE, CR0_WP, CR4_PGE, CR4_PSE, EXC_PF } from './constants.js';
import { apicAccess, apicGuestPhysicalAccess } from './vmx/apic-virt.js';
import { EPT_R, EPT_W, EPT_X, eptResult, eptTranslate } from './vmx/ept.js';
import { notePageFault } from './vmx/events.js';

/**
 * TLB entry bits below the page frame: supervisor access allowed, user access allowed, global
 * page, and (read entries only) not executable under EPT: instruction fetches must walk.
 */
export const TLB_SUP = 1, TLB_USER = 2, TLB_GLOBAL = 4, TLB_NOEXEC = 8;

const PTE_P = 1, PTE_RW = 2, PTE_US = 4, PTE_A = 0x20, PTE_D = 0x40, PTE_PS = 0x80, PTE_G = 0x100;
/** Bits 21:13 of a 4 MiB PDE: physical-address bits beyond this model's 32, so reserved. */
const PDE4M_RESERVED = 0x003fe000;

// Page-fault error code bits.
const PFEC_P = 1, PFEC_W = 2, PFEC_U = 4, PFEC_RSVD = 8;

/**
 * Walks the page tables for `lin`, checks the access, sets A/D bits, fills the TLB and returns
 * the physical address; raises #PF (with CR2) when the SDM says so. `access` is ACC_READ,
 * ACC_WRITE or ACC_EXEC (execute is a read for 32-bit paging: no NX). In VMX non-root operation
 * with EPT, every guest-physical address (paging-structure entries, their A/D updates, the final
 * page; the linear address itself when the guest's paging is off) goes through the EPT (ept.ts),
 * and a page that translates to the APIC-access page is never cached (apic-virt.ts).
 */
export function translate(cpu: Cpu, lin: number, access: number, user: boolean): number {
  const write = access === ACC_WRITE, fetch = access === ACC_EXEC;
  const a20 = cpu.a20Mask;
  const ept = cpu.vmx.guest.eptRoot >= 0; // set only between VM entry and VM exit
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  let gpaPage: number, rw = PTE_RW, us = PTE_US, global = 0, dirty = true;
  if (cpu.pagingOn) {
    const pdeAddr = (((cpu.cr3 & 0xfffff000) + ((lin >>> 22) << 2)) & a20) >>> 0;
    const pdeAt = ept ? eptEntry(cpu, pdeAddr, ACC_READ, lin, fetch) : pdeAddr;
    const pde = cpu.readPhys32(pdeAt);
    if ((pde & PTE_P) === 0) pageFault(cpu, lin, 0, write, user);

    const large = (pde & PTE_PS) !== 0 && (cpu.cr4 & CR4_PSE) !== 0;
    let pteAddr = 0, pteAt = 0, pte = 0, leaf: number;
    if (large) {
      if (pde & PDE4M_RESERVED) pageFault(cpu, lin, PFEC_P | PFEC_RSVD, write, user);
      leaf = pde;
      rw = pde & PTE_RW;
      us = pde & PTE_US;
    } else {
      pteAddr = (((pde & 0xfffff000) + (((lin >>> 12) & 0x3ff) << 2)) & a20) >>> 0;
      pteAt = ept ? eptEntry(cpu, pteAddr, ACC_READ, lin, fetch) : pteAddr;
      pte = cpu.readPhys32(pteAt);
      if ((pte & PTE_P) === 0) pageFault(cpu, lin, 0, write, user);
      leaf = pte;
      rw = pde & pte & PTE_RW;
      us = pde & pte & PTE_US;
    }

    // Protection: user accesses need U/S in both levels; writes need R/W in both levels, for
    // supervisor accesses only when CR0.WP is set.
    if (user && !us) pageFault(cpu, lin, PFEC_P, write, user);
    if (write && !rw && (user || wp)) pageFault(cpu, lin, PFEC_P, write, user);

    // Accessed and dirty bits, written only for a successful translation (as Bochs does); under
    // EPT each update is a guest-physical write of its own.
    if ((pde & PTE_A) === 0 || (large && write && (pde & PTE_D) === 0)) {
      cpu.writePhys32(ept ? eptEntry(cpu, pdeAddr, ACC_WRITE, lin, fetch) : pdeAt, pde | PTE_A | (large && write ? PTE_D : 0));
    }
    if (!large && ((pte & PTE_A) === 0 || (write && (pte & PTE_D) === 0))) {
      cpu.writePhys32(ept ? eptEntry(cpu, pteAddr, ACC_WRITE, lin, fetch) : pteAt, pte | PTE_A | (write ? PTE_D : 0));
    }
    dirty = (leaf & PTE_D) !== 0 || write;
    gpaPage = (large ? (pde & 0xffc00000) | (lin & 0x003ff000) : pte & 0xfffff000) & a20;
    global = (leaf & PTE_G) !== 0 && (cpu.cr4 & CR4_PGE) !== 0 ? TLB_GLOBAL : 0;
  } else {
    gpaPage = lin & 0xfffff000 & a20; // an unpaged guest under EPT: linear = guest-physical
  }

  let physPage = gpaPage, rights = EPT_R | EPT_W | EPT_X;
  if (ept) {
    physPage = eptTranslate(cpu, gpaPage | (lin & 0xfff), access, lin, false, fetch) & 0xfffff000;
    rights = eptResult.rights;
    dirty &&= eptResult.writeCacheable;
  }
  const phys = (physPage | (lin & 0xfff)) >>> 0;
  if (physPage === cpu.vmx.guest.apicAccessPage && cpu.vmx.nonRoot) return apicAccess(cpu, phys, access);

  const page = lin >>> 12;
  if (cpu.tlbRead[page] === 0 && cpu.tlbWrite[page] === 0) cpu.tlbPages.push(page);
  // An execute-only page gets no read entry (each fetch walks); a readable page that may not be
  // executed is marked so that fetches walk (cpu.translateFetch).
  const readable = (rights & EPT_R) !== 0;
  cpu.tlbRead[page] = readable ? physPage | TLB_SUP | (us ? TLB_USER : 0) | global | (rights & EPT_X ? 0 : TLB_NOEXEC) : 0;
  if (dirty && rights & EPT_W) {
    const supWrite = rw || !wp ? TLB_SUP : 0;
    const userWrite = rw && us ? TLB_USER : 0;
    cpu.tlbWrite[page] = supWrite | userWrite ? physPage | supWrite | userWrite | global : 0;
  } else {
    cpu.tlbWrite[page] = 0;
  }
  return phys;
}

/**
 * A guest paging-structure entry's host-physical address under EPT, for a read or an A/D update
 * (`access`) while translating `lin` (for a fetch: `fetch`); the APIC-access page there is an exit.
 */
function eptEntry(cpu: Cpu, gpa: number, access: number, lin: number, fetch: boolean): number {
  const at = eptTranslate(cpu, gpa, access, lin, true, fetch);
  if ((at & 0xfffff000) === cpu.vmx.guest.apicAccessPage) apicGuestPhysicalAccess(cpu, at, fetch);
  return at;
}

function pageFault(cpu: Cpu, lin: number, code: number, write: boolean, user: boolean): never {
  // In VMX non-root operation CR2 waits: a #PF that is a VM exit leaves it alone (vmx/events.ts).
  if (cpu.vmx.nonRoot) notePageFault(cpu, lin);
  else cpu.cr2 = lin;
  return cpu.fault(EXC_PF, code | (write ? PFEC_W : 0) | (user ? PFEC_U : 0));
}

/** Drops TLB entries: all of them, or all but global ones (MOV CR3, task switch). */
export function flushTlb(cpu: Cpu, keepGlobal: boolean): void {
  cpu.codeEpoch++;
  const pages = cpu.tlbPages;
  let keep = 0;
  for (let k = 0; k < pages.length; k++) {
    const page = pages[k];
    if (keepGlobal && (cpu.tlbRead[page] & TLB_GLOBAL) !== 0) {
      pages[keep++] = page;
    } else {
      cpu.tlbRead[page] = 0;
      cpu.tlbWrite[page] = 0;
    }
  }
  pages.length = keep;
}

/** INVLPG: drops the entry for one linear page, global or not. */
export function invalidatePage(cpu: Cpu, lin: number): void {
  const page = lin >>> 12;
  cpu.tlbRead[page] = 0;
  cpu.tlbWrite[page] = 0;
  cpu.codeEpoch++;
}

// ---------------------------------------------------------------- VMX tags (SDM Vol. 3C 28.3)

/** Tags: VPID in the high part, EPT root page + 1 (0: no EPT) in the low 21 bits; VMX root is 0. */
const TAG_EPT_SPAN = 0x200000;
const tagOf = (vpid: number, eptRoot: number): number => vpid * TAG_EPT_SPAN + (eptRoot < 0 ? 0 : (eptRoot >>> 12) + 1);
const vpidOf = (tag: number): number => Math.floor(tag / TAG_EPT_SPAN);
const eptOf = (tag: number): number => tag % TAG_EPT_SPAN;

/** Makes `tag` current: parks the current entries under their tag, brings back the parked ones of `tag`. */
function switchTlb(cpu: Cpu, tag: number): void {
  const vmx = cpu.vmx;
  if (tag === vmx.tlbTag) return;
  if (cpu.tlbPages.length !== 0) {
    const entries: number[] = [];
    for (const page of cpu.tlbPages) entries.push(page, cpu.tlbRead[page], cpu.tlbWrite[page]);
    vmx.parkedTlb.set(vmx.tlbTag, entries);
  }
  flushTlb(cpu, false);
  vmx.tlbTag = tag;
  const parked = vmx.parkedTlb.get(tag);
  if (parked === undefined) return;
  vmx.parkedTlb.delete(tag);
  for (let k = 0; k < parked.length; k += 3) {
    cpu.tlbPages.push(parked[k]);
    cpu.tlbRead[parked[k]] = parked[k + 1];
    cpu.tlbWrite[parked[k]] = parked[k + 2];
  }
}

/** Drops parked entries: whole tags matching `drop`, or single entries where `keep` says no. */
function dropParked(cpu: Cpu, drop: (tag: number) => boolean, keep?: (page: number, read: number) => boolean): void {
  for (const [tag, entries] of cpu.vmx.parkedTlb) {
    if (!drop(tag)) continue;
    if (keep === undefined) {
      cpu.vmx.parkedTlb.delete(tag);
      continue;
    }
    const kept: number[] = [];
    for (let k = 0; k < entries.length; k += 3) {
      if (keep(entries[k], entries[k + 1])) kept.push(entries[k], entries[k + 1], entries[k + 2]);
    }
    if (kept.length === 0) cpu.vmx.parkedTlb.delete(tag);
    else cpu.vmx.parkedTlb.set(tag, kept);
  }
}

/** Without "enable VPID", VM entries and exits invalidate every VPID-0 linear and combined mapping (28.3.3.3). */
function flushVpid0(cpu: Cpu): void {
  dropParked(cpu, (tag) => vpidOf(tag) === 0);
  if (vpidOf(cpu.vmx.tlbTag) === 0) flushTlb(cpu, false);
}

/** VM entry: the TLB changes to the guest's tag (cpu.vmx.guest, loaded by the entry). */
export function enterGuestTlb(cpu: Cpu): void {
  const g = cpu.vmx.guest;
  if (g.vpid === 0) flushVpid0(cpu);
  switchTlb(cpu, tagOf(g.vpid, g.eptRoot));
}

/** VM exit (and VM-entry failure): back to VMX root's tag; the guest's controls are forgotten. */
export function leaveGuestTlb(cpu: Cpu): void {
  if (cpu.vmx.guest.vpid === 0) flushVpid0(cpu);
  switchTlb(cpu, 0);
  cpu.vmx.guest.reset();
}

/** INVVPID types (30.3): individual address, single context, all contexts, single context keeping globals. */
export const INVVPID_ADDRESS = 0, INVVPID_SINGLE = 1, INVVPID_ALL = 2, INVVPID_SINGLE_KEEP_GLOBALS = 3;

/**
 * INVVPID in VMX root operation (whose own VPID-0 entries it never touches): invalidates the
 * linear and combined mappings of `vpid` (all VPIDs but 0 for INVVPID_ALL), for one linear
 * address, or all but the global ones.
 */
export function invalidateVpid(cpu: Cpu, type: number, vpid: number, lin: number): void {
  const page = lin >>> 12;
  switch (type) {
    case INVVPID_ADDRESS: return dropParked(cpu, (tag) => vpidOf(tag) === vpid, (p) => p !== page);
    case INVVPID_SINGLE: return dropParked(cpu, (tag) => vpidOf(tag) === vpid);
    case INVVPID_ALL: return dropParked(cpu, (tag) => vpidOf(tag) !== 0);
    default: return dropParked(cpu, (tag) => vpidOf(tag) === vpid, (_p, read) => (read & TLB_GLOBAL) !== 0);
  }
}

/**
 * INVEPT in VMX root operation: invalidates the combined mappings of EPT root `eptRoot` (any
 * VPID), or of every EPT root when `eptRoot` is -1 (all-context). Guest-physical mappings are
 * not cached apart from those (ept.ts).
 */
export function invalidateEpt(cpu: Cpu, eptRoot: number): void {
  dropParked(cpu, (tag) => eptOf(tag) !== 0 && (eptRoot < 0 || eptOf(tag) === (eptRoot >>> 12) + 1));
}
