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

import type { Cpu } from './cpu.js';
import { ACC_WRITE, CR0_WP, CR4_PGE, CR4_PSE, EXC_PF } from './constants.js';

export const TLB_SUP = 1, TLB_USER = 2, TLB_GLOBAL = 4;

const PTE_P = 1, PTE_RW = 2, PTE_US = 4, PTE_A = 0x20, PTE_D = 0x40, PTE_PS = 0x80, PTE_G = 0x100;
/** Bits 21:13 of a 4 MiB PDE: physical-address bits beyond this model's 32, so reserved. */
const PDE4M_RESERVED = 0x003fe000;

// Page-fault error code bits.
const PFEC_P = 1, PFEC_W = 2, PFEC_U = 4, PFEC_RSVD = 8;

/**
 * Walks the page tables for `lin`, checks the access, sets A/D bits, fills the TLB and returns
 * the physical address; raises #PF (with CR2) when the SDM says so. `access` is ACC_READ,
 * ACC_WRITE or ACC_EXEC (execute is a read on this model: no NX in 32-bit paging).
 */
export function translate(cpu: Cpu, lin: number, access: number, user: boolean): number {
  const write = access === ACC_WRITE;
  const a20 = cpu.a20Mask;
  const pdeAddr = (((cpu.cr3 & 0xfffff000) + ((lin >>> 22) << 2)) & a20) >>> 0;
  const pde = cpu.readPhys32(pdeAddr);
  if ((pde & PTE_P) === 0) pageFault(cpu, lin, 0, write, user);

  const large = (pde & PTE_PS) !== 0 && (cpu.cr4 & CR4_PSE) !== 0;
  let pteAddr = 0, pte = 0, leaf: number, rw: number, us: number;
  if (large) {
    if (pde & PDE4M_RESERVED) pageFault(cpu, lin, PFEC_P | PFEC_RSVD, write, user);
    leaf = pde;
    rw = pde & PTE_RW;
    us = pde & PTE_US;
  } else {
    pteAddr = (((pde & 0xfffff000) + (((lin >>> 12) & 0x3ff) << 2)) & a20) >>> 0;
    pte = cpu.readPhys32(pteAddr);
    if ((pte & PTE_P) === 0) pageFault(cpu, lin, 0, write, user);
    leaf = pte;
    rw = pde & pte & PTE_RW;
    us = pde & pte & PTE_US;
  }

  // Protection: user accesses need U/S in both levels; writes need R/W in both levels, for
  // supervisor accesses only when CR0.WP is set.
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  if (user && !us) pageFault(cpu, lin, PFEC_P, write, user);
  if (write && !rw && (user || wp)) pageFault(cpu, lin, PFEC_P, write, user);

  // Accessed and dirty bits, written only for a successful translation (as Bochs does).
  if ((pde & PTE_A) === 0 || (large && write && (pde & PTE_D) === 0)) {
    cpu.writePhys32(pdeAddr, pde | PTE_A | (large && write ? PTE_D : 0));
  }
  let dirty = (leaf & PTE_D) !== 0 || write;
  if (!large) {
    if ((pte & PTE_A) === 0 || (write && (pte & PTE_D) === 0)) {
      cpu.writePhys32(pteAddr, pte | PTE_A | (write ? PTE_D : 0));
    }
  } else {
    dirty = (pde & PTE_D) !== 0 || write;
  }

  const physPage = (large ? (pde & 0xffc00000) | (lin & 0x003ff000) : pte & 0xfffff000) & a20;
  const global = (leaf & PTE_G) !== 0 && (cpu.cr4 & CR4_PGE) !== 0 ? TLB_GLOBAL : 0;
  const page = lin >>> 12;
  if (cpu.tlbRead[page] === 0 && cpu.tlbWrite[page] === 0) cpu.tlbPages.push(page);
  cpu.tlbRead[page] = physPage | TLB_SUP | (us ? TLB_USER : 0) | global;
  if (dirty) {
    const supWrite = rw || !wp ? TLB_SUP : 0;
    const userWrite = rw && us ? TLB_USER : 0;
    cpu.tlbWrite[page] = supWrite | userWrite ? physPage | supWrite | userWrite | global : 0;
  } else {
    cpu.tlbWrite[page] = 0;
  }
  return (physPage | (lin & 0xfff)) >>> 0;
}

function pageFault(cpu: Cpu, lin: number, code: number, write: boolean, user: boolean): never {
  cpu.cr2 = lin;
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
