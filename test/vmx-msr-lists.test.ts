// The MSR lists of VM entry and VM exit (SDM Vol. 3C 24.7.2, 24.8.2, 26.4, 27.4, 27.6) and VMX
// aborts (27.7), as guest programs: a ring-0 host fills VMCS A through VMWRITE (helpers/vmx.ts:
// a flat guest that executes CPUID), writes the list entries with ordinary stores and VMLAUNCHes.
// Each rule that makes an entry fail has a list whose second entry breaks exactly it.

import { describe, expect, it } from 'vitest';
import { MSR_SYSENTER_CS } from '../src/cpu/msr.js';
import { ABORT_LOADING_HOST_MSRS, ABORT_MACHINE_CHECK, ABORT_SAVING_GUEST_MSRS, ABORT_VMCS_CORRUPTED } from '../src/cpu/vmx/exit.js';
import { FIELD_OFFSET, fieldIndex, isLaunched, VMCS_ABORT_OFFSET, vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { asm, CODE_BASE, makeCpu, step, type Harness } from './helpers/harness.js';
import { compareOnRom } from './helpers/rom.js';
import { HOST_RESUMED, LABEL_INSN, launch, PATH, program, rd, VMCS_A, vmxReady, w } from './helpers/vmx.js';
import { CPUID_GUEST_REASON_HOST, vmxRom } from './helpers/vmx-rom.js';

const MSR_MTRR_DEF_TYPE = 0x2ff, MSR_PAT = 0x277;
/** The three lists, each in its own page. */
const ENTRY_LOAD = 0x50000, EXIT_STORE = 0x51000, EXIT_LOAD = 0x52000;
/** Exit reasons of VM-entry failures: MSR loading (34), machine-check event (41). */
const FAILURE_MSR_LOADING = (0x80000000 | 34) | 0, FAILURE_MACHINE_CHECK = (0x80000000 | 41) | 0;

/** An entry: MSR index, value (low, high dwords), and bits 63:32 of the first qword (reserved). */
type Entry = [index: number, lo?: number, hi?: number, reserved?: number];

/** Guest code storing `entries` at `base` and VMWRITEs naming them as the list of `addrField`/`countField`. */
function list(addrField: number, countField: number, base: number, entries: Entry[]): string[] {
  const stores = entries.flatMap(([index, lo = 0, hi = 0, reserved = 0], n) =>
    [index, reserved, lo, hi].map((v, k) => `mov dword [${base + 16 * n + 4 * k}], ${v}`));
  return [...stores, w(addrField, base), w(countField, entries.length)];
}
const entryLoad = (entries: Entry[]): string[] => list(0x200a, 0x4014, ENTRY_LOAD, entries);
const exitStore = (entries: Entry[]): string[] => list(0x2006, 0x400e, EXIT_STORE, entries);
const exitLoad = (entries: Entry[]): string[] => list(0x2008, 0x4010, EXIT_LOAD, entries);
/** A list of `count` entries, each writing MTRR_DEF_TYPE (filled by a loop: too many for stores). */
function longList(addrField: number, countField: number, base: number, count: number): string[] {
  return [`mov edi, ${base}\nmov ecx, ${count}\n.fill: mov dword [edi], ${MSR_MTRR_DEF_TYPE}\nmov dword [edi + 8], 0xc06\nadd edi, 16\nloop .fill`,
    w(addrField, base), w(countField, count)];
}
const msr = (h: Harness, index: number): bigint | undefined => h.cpu.msrs.get(index);

/** Runs the program of `writes` until the CPU shuts down (a VMX abort). */
function runToShutdown(writes: string[], guest = 'guest_insn: cpuid\nguest_next:'): Harness {
  const h = makeCpu('pm32', asm(program(writes, guest), 32, CODE_BASE));
  vmxReady(h);
  for (let n = 0; n < 100 && !h.cpu.shutdown; n++) step(h.cpu, 1000);
  expect(h.cpu.shutdown).toBe(true);
  return h;
}
const abortIndicator = (h: Harness): number => rd(h, VMCS_A + VMCS_ABORT_OFFSET);

describe('VM-entry MSR-load list (26.4)', () => {
  it('loads each entry as WRMSR after the guest state: a list entry wins over the SYSENTER_CS field', () => {
    const r = launch([w(0x482a, 0x11), ...entryLoad([[MSR_SYSENTER_CS, 0x42], [MSR_MTRR_DEF_TYPE, 0xc06], [MSR_PAT, 0x06060606, 0x06060606]]),
      ...exitStore([[MSR_SYSENTER_CS], [MSR_MTRR_DEF_TYPE], [MSR_PAT]])]);
    expect(vmcsRead(r.cpu, 0x4402)).toBe(10);
    // The guest's values, as the VM-exit MSR-store list saved them.
    expect([rd(r, EXIT_STORE + 8), rd(r, EXIT_STORE + 12)]).toEqual([0x42, 0]);
    expect([rd(r, EXIT_STORE + 24), rd(r, EXIT_STORE + 40), rd(r, EXIT_STORE + 44)]).toEqual([0xc06, 0x06060606, 0x06060606]);
    expect(vmcsRead(r.cpu, 0x482a)).toBe(0x42); // the guest-state field saved on exit
    expect(isLaunched(r.cpu, VMCS_A)).toBe(true);
  });

  const refused: Array<[string, Entry]> = [
    ['bits 63:32 of the first qword set', [MSR_MTRR_DEF_TYPE, 0, 0, 1]],
    ['IA32_FS_BASE', [0xc0000100]],
    ['IA32_GS_BASE', [0xc0000101]],
    ['an x2APIC MSR (bits 31:8 = 000008H)', [0x808]],
    ['IA32_SMM_MONITOR_CTL (writable only in SMM)', [0x9b]],
    ['an MSR the model does not have (IA32_EFER)', [0xc0000080]],
    ['a read-only MSR (IA32_MTRRCAP)', [0xfe]],
    ['a VMX capability MSR', [0x480, 0x1000]],
    ['IA32_PAT with a reserved memory type', [MSR_PAT, 0x02]],
    ['IA32_DEBUGCTL with a bit this model reserves', [0x1d9, 1]],
    ['IA32_FEATURE_CONTROL once locked', [0x3a, 5]],
  ];
  for (const [what, bad] of refused) {
    it(`${what}: VM-entry failure 34, qualification 2 (its number); entry 1 stays loaded`, () => {
      const r = launch(entryLoad([[MSR_MTRR_DEF_TYPE, 0xc06], bad, [MSR_SYSENTER_CS, 0x99]]));
      expect(rd(r, PATH)).toBe(HOST_RESUMED);
      expect([vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x6400)]).toEqual([FAILURE_MSR_LOADING, 2]);
      expect(msr(r, MSR_MTRR_DEF_TYPE)).toBe(0xc06n);
      expect(msr(r, MSR_SYSENTER_CS)).toBe(0n); // entry 3 never loaded; the host's field was
      expect(r.cpu.getEflags()).toBe(2);
      expect(r.cpu.vmx.nonRoot).toBe(false);
      expect(isLaunched(r.cpu, VMCS_A)).toBe(false);
    });
  }
  it('the first entry failing gives qualification 1', () => {
    const r = launch(entryLoad([[0xc0000100]]));
    expect([vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x6400)]).toEqual([FAILURE_MSR_LOADING, 1]);
  });
  it('512 entries (IA32_VMX_MISC\'s maximum) load; 513 are a VM-entry failure due to a machine check (41), none loaded', () => {
    const ok = launch(longList(0x200a, 0x4014, ENTRY_LOAD, 512));
    expect(vmcsRead(ok.cpu, 0x4402)).toBe(10);
    expect(msr(ok, MSR_MTRR_DEF_TYPE)).toBe(0xc06n);
    const r = launch(longList(0x200a, 0x4014, ENTRY_LOAD, 513));
    expect([vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x6400)]).toEqual([FAILURE_MACHINE_CHECK, 0]);
    expect(msr(r, MSR_MTRR_DEF_TYPE)).toBeUndefined();
  });
  it('the guest-state checks come first: an invalid guest state fails with 33 before any entry loads', () => {
    const r = launch([w(0x6820, 0), ...entryLoad([[MSR_MTRR_DEF_TYPE, 0xc06]])]);
    expect(vmcsRead(r.cpu, 0x4402)).toBe((0x80000000 | 33) | 0);
    expect(msr(r, MSR_MTRR_DEF_TYPE)).toBeUndefined();
  });
});

describe('VM-exit MSR-store and MSR-load lists (27.4, 27.6)', () => {
  it('stores the guest MSRs, then loads the host MSRs after the host state (a list entry wins over the host SYSENTER_CS field)', () => {
    const r = launch([w(0x482a, 0x11), w(0x4c00, 0x22), ...exitStore([[MSR_SYSENTER_CS], [MSR_MTRR_DEF_TYPE]]),
      ...exitLoad([[MSR_SYSENTER_CS, 0x77], [MSR_MTRR_DEF_TYPE, 0xc00]])]);
    expect(vmcsRead(r.cpu, 0x4402)).toBe(10);
    expect([rd(r, EXIT_STORE + 8), rd(r, EXIT_STORE + 24)]).toEqual([0x11, 0]);
    expect([msr(r, MSR_SYSENTER_CS), msr(r, MSR_MTRR_DEF_TYPE)]).toEqual([0x77n, 0xc00n]);
  });
  it('a VM-entry failure loads the VM-exit MSR-load list with the host state (no guest MSRs stored)', () => {
    const r = launch([w(0x6820, 0), ...exitStore([[MSR_SYSENTER_CS, 0x5555]]), ...exitLoad([[MSR_MTRR_DEF_TYPE, 0xc06]])]);
    expect(vmcsRead(r.cpu, 0x4402)).toBe((0x80000000 | 33) | 0);
    expect(msr(r, MSR_MTRR_DEF_TYPE)).toBe(0xc06n);
    expect(rd(r, EXIT_STORE + 8)).toBe(0x5555);
  });
});

describe('VMX aborts (27.7): the indicator in bytes 4-7 of the VMCS region, then shutdown', () => {
  it('a guest MSR the store list cannot read (IA32_SMBASE): indicator 1, the host state not loaded', () => {
    const h = runToShutdown(exitStore([[MSR_SYSENTER_CS], [0x9e]]));
    expect(abortIndicator(h)).toBe(ABORT_SAVING_GUEST_MSRS);
    expect(vmcsRead(h.cpu, 0x4402)).toBe(10); // the exit information and guest state were written
    expect(vmcsRead(h.cpu, 0x681e) >>> 0).toBe(rd(h, LABEL_INSN));
    expect(h.cpu.vmx.nonRoot).toBe(false);
    expect(rd(h, PATH)).toBe(0);
  });
  it('a reserved bit in a store-list entry, an x2APIC MSR, an MSR RDMSR refuses (IA32_EFER): indicator 1', () => {
    for (const entry of [[MSR_SYSENTER_CS, 0, 0, 1], [0x808], [0xc0000080]] as Entry[]) {
      expect([entry, abortIndicator(runToShutdown(exitStore([entry])))]).toEqual([entry, ABORT_SAVING_GUEST_MSRS]);
    }
  });
  it('a host MSR the load list cannot write: indicator 4, after the host state and the entries before it', () => {
    const h = runToShutdown(exitLoad([[MSR_MTRR_DEF_TYPE, 0xc06], [0x480]]));
    expect(abortIndicator(h)).toBe(ABORT_LOADING_HOST_MSRS);
    expect(msr(h, MSR_MTRR_DEF_TYPE)).toBe(0xc06n);
    expect(h.cpu.eip).toBe(vmcsRead(h.cpu, 0x6c16) >>> 0);
  });
  it('a VM-entry failure whose VM-exit MSR-load list fails: indicator 4', () => {
    const h = runToShutdown([w(0x6820, 0), ...exitLoad([[0xc0000101]])]);
    expect(vmcsRead(h.cpu, 0x4402)).toBe((0x80000000 | 33) | 0);
    expect(abortIndicator(h)).toBe(ABORT_LOADING_HOST_MSRS);
  });
  it('lists longer than 512 entries: indicator 5 (the machine check this model makes of them)', () => {
    expect(abortIndicator(runToShutdown(longList(0x2006, 0x400e, EXIT_STORE, 513)))).toBe(ABORT_MACHINE_CHECK);
    expect(abortIndicator(runToShutdown(longList(0x2008, 0x4010, EXIT_LOAD, 513)))).toBe(ABORT_MACHINE_CHECK);
  });
  it('a host state corrupted in the VMCS region while the guest ran (host CR0.PG clear): indicator 3', () => {
    const hostCr0 = VMCS_A + FIELD_OFFSET[fieldIndex(0x6c00)];
    const h = runToShutdown([], `mov eax, [${hostCr0}]\nand eax, 0x7fffffff\nmov [${hostCr0}], eax\nguest_insn: cpuid\nguest_next:`);
    expect(abortIndicator(h)).toBe(ABORT_VMCS_CORRUPTED);
  });
  it('no abort leaves the indicator as software wrote it', () => {
    const r = launch([]);
    expect(abortIndicator(r)).toBe(0);
  });
});

/**
 * The lists on a ROM, checked against Bochs's Core Duo model: the host fills VMCS A (controls from
 * the TRUE capability MSRs, a flat guest that executes CPUID), VMLAUNCHes, and prints the exit
 * reason and qualification (or the flags and VM-instruction error when VMLAUNCH falls through),
 * then what the case reads back: MSRs by RDMSR, the store list's values.
 */
const MSR_ROM = vmxRom(`%define NEXT 0x3000
%define ELOAD 0x50000
%define XSTORE 0x51000
%define XLOAD 0x52000
; ENTRY base, n, index, value low, reserved: entry n of the list at base
%macro ENTRY 5
  mov dword [%1 + 16 * %2], %3
  mov dword [%1 + 16 * %2 + 4], %5
  mov dword [%1 + 16 * %2 + 8], %4
  mov dword [%1 + 16 * %2 + 12], 0
%endmacro
; GUEST: FLAT_GUEST (helpers/vmx-rom.ts) with the three MSR lists of this file
%macro GUEST 0
  FLAT_GUEST
  W 0x200a, ELOAD
  W 0x2006, XSTORE
  W 0x2008, XLOAD
%endmacro
; MTRR value: WRMSR of MTRR_DEF_TYPE (the MSR the cases load)
%macro MTRR 1
  mov ecx, 0x2ff
  mov eax, %1
  xor edx, edx
  wrmsr
%endmacro
; PRMSR index: RDMSR, print EAX
%macro PRMSR 1
  mov ecx, %1
  rdmsr
  call hex
%endmacro
  FLAGS {vmxon [PTR]}
  ; the three lists at work: loaded, stored, loaded
  MTRR 0
  GUEST
  ENTRY ELOAD, 0, 0x174, 0x42, 0
  ENTRY ELOAD, 1, 0x2ff, 0xc06, 0
  W 0x4014, 2
  ENTRY XSTORE, 0, 0x174, 0, 0
  ENTRY XSTORE, 1, 0x2ff, 0, 0
  W 0x400e, 2
  ENTRY XLOAD, 0, 0x2ff, 0xc00, 0
  W 0x4010, 1
  LAUNCH
  mov eax, [XSTORE + 8]
  call hex
  mov eax, [XSTORE + 24]
  call hex
  PRMSR 0x2ff
  PRMSR 0x174
%macro REFUSED 2 ; index, value: entry 2 of the VM-entry list after a good entry 1
  MTRR 0
  GUEST
  ENTRY ELOAD, 0, 0x2ff, 0xc06, 0
  ENTRY ELOAD, 1, %1, %2, 0
  W 0x4014, 2
  LAUNCH
  PRMSR 0x2ff
%endmacro
  REFUSED 0xc0000100, 0
  REFUSED 0x9b, 0
  REFUSED 0x277, 2
  REFUSED 0xfe, 0
  REFUSED 0x480, 0
  REFUSED 0x3a, 5
  ; bits 63:32 of the first qword
  MTRR 0
  GUEST
  ENTRY ELOAD, 0, 0x2ff, 0xc06, 1
  W 0x4014, 1
  LAUNCH
  PRMSR 0x2ff
  ; an invalid guest state: 33 before the list; the VM-exit load list still loads
  MTRR 0
  GUEST
  W 0x6820, 0
  ENTRY ELOAD, 0, 0x174, 0x42, 0
  W 0x4014, 1
  ENTRY XLOAD, 0, 0x2ff, 0xc06, 0
  W 0x4010, 1
  LAUNCH
  PRMSR 0x2ff
  PRMSR 0x174
  jmp rom_done
${CPUID_GUEST_REASON_HOST}rom_done:
`);
const refusedLines = (smmMonitorCtl: string[]): string[] => [
  '80000022', '00000002', '00000C06', ...smmMonitorCtl,
  ...Array.from({ length: 4 }, () => ['80000022', '00000002', '00000C06']).flat(),
];
const msrRomExpected = (smmMonitorCtl: string[]): string[] => [
  '00000000',
  '0000000A', '00000000', '00000042', '00000C06', '00000C00', '00000000',
  ...refusedLines(smmMonitorCtl),
  '80000022', '00000001', '00000000',
  '80000021', '00000000', '00000C06', '00000000',
  '00000000',
];

// Bochs loads IA32_SMM_MONITOR_CTL from the VM-entry list; SDM 26.4 names it as an MSR whose
// entry fails outside SMM (docs/VMX.md, "Differences from Bochs").
compareOnRom('VM-entry and VM-exit MSR lists on a ROM', MSR_ROM, msrRomExpected(['80000022', '00000002', '00000C06']),
  { title: 'Bochs agrees but for IA32_SMM_MONITOR_CTL, which it loads', expected: msrRomExpected(['0000000A', '00000000', '00000C06']) });

/**
 * VMX aborts on a ROM: nothing is printed after the VM exit whose MSR list fails (the processor
 * shuts down), on trapdiff as on Bochs. (The abort indicator cannot be printed: only RESET
 * leaves the VMX-abort shutdown state.)
 */
const abortRom = (lists: string): string => MSR_ROM.replace('  FLAGS {vmxon [PTR]}\n  ; the three lists at work', `  FLAGS {vmxon [PTR]}
  GUEST
${lists}
  LAUNCH
  mov eax, 0x12345678
  call hex
  jmp rom_done
  ; the three lists at work`);
/** Bochs idles in the shutdown state until run-rom's time is up: a few seconds are enough. */
const untilShutdown = { title: 'Bochs agrees', expected: '00000000\n', seconds: 4 };
compareOnRom('VMX abort storing a guest MSR (a reserved bit in the entry) on a ROM',
  abortRom('  ENTRY XSTORE, 0, 0x174, 0, 1\n  W 0x400e, 1'), '00000000\n', untilShutdown);
compareOnRom('VMX abort loading a host MSR (a VMX capability MSR) on a ROM',
  abortRom('  ENTRY XLOAD, 0, 0x2ff, 0xc06, 0\n  ENTRY XLOAD, 1, 0x480, 0, 0\n  W 0x4010, 2'), '00000000\n', untilShutdown);
