// VMX test set-up shared by the VMX test files: a machine ready for VMXON (paging, CR0/CR4 fixed
// bits, FEATURE_CONTROL) and guest-code snippets that make a VMCS current and fill it through
// VMWRITE.

import { expect } from 'vitest';
import { AR_UNUSABLE, CR0_NE, CR0_PG, CR4_PSE, CR4_VMXE, CS } from '../../src/cpu/constants.js';
import type { Cpu } from '../../src/cpu/cpu.js';
import { MSR_FEATURE_CONTROL } from '../../src/cpu/msr.js';
import { CONTROL_MUST1, VMCS_REVISION_ID } from '../../src/cpu/vmx/capabilities.js';
import { ENTRY, EXIT, PIN, PROC } from '../../src/cpu/vmx/controls.js';
import { run, type Run } from './exec.js';
import { asm, CODE_BASE, GDT_BASE, IDT_BASE, makeCpu, step, type Harness } from './harness.js';

export const PD = 0x20000;
/** Physical addresses: the VMXON region, two VMCS regions, and a data page for memory operands. */
export const VMXON = 0x30000, VMCS_A = 0x31000, VMCS_B = 0x32000, DATA = 0x40000;

/** Identity-mapped 4-MiB page, paging and CR0.NE on, VMX enabled by FEATURE_CONTROL, regions stamped. */
export function vmxReady(h: Harness): void {
  const { cpu, mem } = h;
  mem.view.setUint32(PD, 0x87, true); // present, writable, user, 4 MiB
  cpu.cr3 = PD;
  cpu.cr4 = CR4_PSE | CR4_VMXE;
  cpu.cr0 |= CR0_PG | CR0_NE;
  cpu.updateMode();
  cpu.msrs.set(MSR_FEATURE_CONTROL, 5n); // lock + VMX outside SMX
  for (const r of [VMXON, VMCS_A, VMCS_B]) mem.view.setUint32(r, VMCS_REVISION_ID, true);
  // Qword pointers at DATA: +0 VMXON, +8 VMCS A, +16 VMCS B.
  [VMXON, VMCS_A, VMCS_B].forEach((p, k) => mem.view.setUint32(DATA + 8 * k, p, true));
}

/** Prelude making VMCS A current (cleared first). */
export const CURRENT_A = `vmxon [${DATA}]\nvmclear [${DATA + 8}]\nvmptrld [${DATA + 8}]`;
/** VMWRITE of `value` (a number or a NASM expression) to field `encoding` as guest code. */
export const w = (encoding: number, value: number | string): string =>
  `mov ebx, ${encoding}\nmov eax, ${value}\nvmwrite ebx, eax`;
/** VMWRITE of control register `cr` as it is now to field `encoding`. */
export const wCr = (encoding: number, cr: number): string => `mov eax, cr${cr}\nmov ebx, ${encoding}\nvmwrite ebx, eax`;
/**
 * Prelude making VMCS A current with controls and host state that pass VM entry's checks: every
 * control at its minimum (TRUE allowed 0-settings), host CR0/CR4 as they are now, flat selectors.
 */
export const VALID_A = [CURRENT_A, w(0x4000, CONTROL_MUST1[PIN]), w(0x4002, CONTROL_MUST1[PROC]),
  w(0x400c, CONTROL_MUST1[EXIT]), w(0x4012, CONTROL_MUST1[ENTRY]), wCr(0x6c00, 0), wCr(0x6c04, 4),
  w(0x0c02, 8), w(0x0c04, 0x10), w(0x0c06, 0x10), w(0x0c0c, 0x28)].join('\n');
/**
 * The rest of a host state a VM exit can resume: CR3 as it is now, and RSP as it is now with RIP
 * at the NASM label `label`.
 */
export const resumeHostAt = (label: string): string =>
  [wCr(0x6c02, 3), w(0x6c16, label), 'mov eax, esp\nmov ebx, 0x6c14\nvmwrite ebx, eax'].join('\n');
/** Exit reason of a VM-entry failure due to invalid guest state: 33 with bit 31 set. */
export const ENTRY_FAILURE_GUEST_STATE = (0x80000000 | 33) | 0;

// ---------------------------------------------------------------- a host that launches a flat guest

export const GUEST_RSP = 0x8000, TSS = 0x3000;
/** Where the program records its path (1: VMLAUNCH fell through, 2: host resumed) and labels. */
export const PATH = DATA + 0x100, LABEL_INSN = DATA + 0x104, LABEL_NEXT = DATA + 0x108, EXITS = DATA + 0x10c;
export const FELL_THROUGH = 1, HOST_RESUMED = 2;

/** A flat ring-0 32-bit guest: the host's CRs and GDT, CS 08H, data 10H, TR 28H, LDTR unusable. */
export const GUEST_FLAT = [
  wCr(0x6800, 0), wCr(0x6802, 3), wCr(0x6804, 4),
  ...[0, 1, 2, 3, 4, 5].flatMap((s) => [w(0x0800 + 2 * s, s === CS ? 8 : 0x10), w(0x6806 + 2 * s, 0),
    w(0x4800 + 2 * s, -1), w(0x4814 + 2 * s, s === CS ? 0xc09b : 0xc093)]),
  w(0x080c, 0), w(0x4820, AR_UNUSABLE),
  w(0x080e, 0x28), w(0x6814, TSS), w(0x480e, 0x67), w(0x4822, 0x8b),
  w(0x6816, GDT_BASE), w(0x4810, 0x37), w(0x6818, IDT_BASE), w(0x4812, 0x7ff),
  w(0x681c, GUEST_RSP), w(0x681e, 'guest'), w(0x6820, 2),
  w(0x2800, -1), w(0x2801, -1),
].join('\n');

/**
 * The host program: the valid VMCS A, `writes` on top, `entry` (VMLAUNCH), the guest code and
 * the host code run after a VM exit.
 */
export function program(writes: string[], guest: string, host = '', entry = 'vmlaunch'): string {
  return `${VALID_A}
    ${GUEST_FLAT}
    ${resumeHostAt('host')}
    ${writes.join('\n')}
    mov dword [${LABEL_INSN}], guest_insn
    mov dword [${LABEL_NEXT}], guest_next
    ${entry}
    mov dword [${PATH}], ${FELL_THROUGH}
    jmp done
  guest:
    ${guest}
    jmp $
  host:
    mov dword [${PATH}], ${HOST_RESUMED}
    ${host}
  done:`;
}
export const rd = (h: Harness, a: number): number => h.mem.view.getUint32(a, true);

/** Runs a VMLAUNCH whose guest state has `writes` on top of the flat guest's. */
export function launch(writes: string[], guest = 'guest_insn: cpuid\nguest_next:', host = ''): Run {
  const r = run('pm32', program(writes, guest, host), vmxReady);
  expect(r.vector).toBe(-1);
  return r;
}

/** Steps a program until the CPU is in VMX non-root operation. */
export function enterGuest(writes: string[]): Cpu {
  const h = makeCpu('pm32', asm(program(writes, 'guest_insn: nop\nguest_next:'), 32, CODE_BASE));
  vmxReady(h);
  for (let n = 0; n < 10000 && !h.cpu.vmx.nonRoot; n++) step(h.cpu, 1);
  expect(h.cpu.vmx.nonRoot).toBe(true);
  return h.cpu;
}
