// EPT set-up shared by the EPT test files (vmx-ept, vmx-apic, vmx-delivery, vmx-vpid): an
// identity EPT written into memory before the run, the VMWRITEs that turn EPT on, and eptRun,
// which launches the flat guest of helpers/vmx.ts under it and reads the exit back.

import { expect } from 'vitest';
import type { Cpu } from '../../src/cpu/cpu.js';
import { CONTROL_MUST1 } from '../../src/cpu/vmx/capabilities.js';
import { PROC, PROC2_EPT, PROC_SECONDARY } from '../../src/cpu/vmx/controls.js';
import { vmcsRead } from '../../src/cpu/vmx/vmcs.js';
import { asm, CODE_BASE, makeCpu, step, type Harness } from './harness.js';
import { HOST_RESUMED, PATH, program, rd, vmxReady, w } from './vmx.js';

export const EPT_PML4 = 0x50000, EPT_PDPT = 0x51000, EPT_PD = 0x52000, EPT_PT = 0x53000;
/** EPTP: WB, 4-level walk; with bit 6 for EPT A/D flags. */
export const EPTP = EPT_PML4 | 0x1e, EPTP_AD = EPTP | 0x40;
/** EPT leaf rights with memory type WB (bits 5:3 = 6). */
export const WB = 0x30, RWX = 7;
/** Guest-physical test pages (identity-mapped unless a case changes them) and spare host frames. */
export const PAGE = 0x70000, FRAME_A = 0x71000, FRAME_B = 0x72000;

/** The identity EPT: 4-KiB pages for guest-physical 0-2 MiB, a 2-MiB page (frame 0) for 2-4 MiB. */
export function identityEpt(h: Harness): void {
  const v = h.mem.view;
  v.setUint32(EPT_PML4, EPT_PDPT | RWX, true);
  v.setUint32(EPT_PDPT, EPT_PD | RWX, true);
  v.setUint32(EPT_PD, EPT_PT | RWX, true);
  v.setUint32(EPT_PD + 8, 0x80 | WB | RWX, true); // 2-MiB page: guest-physical 2 MiB -> host 0
  for (let k = 0; k < 512; k++) v.setUint32(EPT_PT + 8 * k, (k << 12) | WB | RWX, true);
}
/** The EPT leaf of a guest-physical page below 2 MiB (low dword; the high dword at +4). */
export const leafOf = (gpa: number): number => EPT_PT + 8 * (gpa >>> 12);
/** A set-up step writing the EPT leaf of guest-physical page `gpa`. */
export const setLeaf = (gpa: number, lo: number, hi = 0) => (h: Harness): void => {
  h.mem.view.setUint32(leafOf(gpa), lo, true);
  h.mem.view.setUint32(leafOf(gpa) + 4, hi, true);
};

/** VMWRITEs: secondary controls on (primary `proc` on top) with `proc2`, and the EPTP. */
export const eptControls = (proc2: number, eptp = EPTP, proc = 0): string[] => [
  w(0x4002, CONTROL_MUST1[PROC] | PROC_SECONDARY | proc), w(0x401e, proc2), w(0x201a, eptp), w(0x201b, 0)];

export interface EptExit { reason: number; qualification: number; gpa: number; linear: number; rip: number; cpu: Cpu; h: Harness }
export interface EptRunOptions { proc2?: number; eptp?: number; writes?: string[]; host?: string }
/**
 * Launches the flat guest with EPT (`proc2` on top), the EPT changed by `setup`; PAGE, FRAME_A
 * and FRAME_B start with 11111111H, AAAAAAAAH and BBBBBBBBH. The host must have resumed.
 */
export function eptRun(guest: string, setup: (h: Harness) => void = () => {}, o: EptRunOptions = {}): EptExit {
  const src = program([...eptControls(PROC2_EPT | (o.proc2 ?? 0), o.eptp ?? EPTP), ...(o.writes ?? [])], guest, o.host ?? '');
  const code = asm(src, 32, CODE_BASE);
  const h = makeCpu('pm32', code);
  vmxReady(h);
  identityEpt(h);
  h.mem.view.setUint32(PAGE, 0x11111111, true);
  h.mem.view.setUint32(FRAME_A, 0xaaaaaaaa, true);
  h.mem.view.setUint32(FRAME_B, 0xbbbbbbbb, true);
  setup(h);
  // The guest's exceptions are delivered (or exit); one in the host fails the test.
  const cpu = h.cpu, end = CODE_BASE + code.length;
  cpu.events = {
    onException(vector) {
      if (!cpu.vmx.nonRoot) throw new Error(`host exception ${vector} at ${cpu.eip.toString(16)}`);
    },
  };
  for (let n = 0; n < 100_000 && cpu.eip !== end; n++) step(cpu, 1);
  expect(cpu.eip).toBe(end);
  expect(rd(h, PATH)).toBe(HOST_RESUMED);
  return {
    reason: vmcsRead(cpu, 0x4402), qualification: vmcsRead(cpu, 0x6400), gpa: vmcsRead(cpu, 0x2400),
    linear: vmcsRead(cpu, 0x640a), rip: vmcsRead(cpu, 0x681e) >>> 0, cpu, h,
  };
}
