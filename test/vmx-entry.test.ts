// VM entry (SDM Vol. 3C 26.3: guest-state checks and loading) and the first VM exits (27: CPUID,
// HLT with "HLT exiting", VMCALL, the VMX instructions), as guest programs: a ring-0 host fills
// VMCS A through VMWRITE (controls and host state valid, a flat 32-bit guest) and VMLAUNCHes; VM
// exits resume it at the label `host`. Each guest-state check has a VMCS that fails exactly it.

import { describe, expect, it } from 'vitest';
import { AR_UNUSABLE, CS, DS, ES, ESP, LDTR, SS, TR } from '../src/cpu/constants.js';
import { MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP } from '../src/cpu/msr.js';
import { CONTROL_MUST1 } from '../src/cpu/vmx/capabilities.js';
import {
  ENTRY, ENTRY_LOAD_DEBUG, ENTRY_LOAD_PAT, PROC, PROC2_EPT, PROC2_UNRESTRICTED_GUEST, PROC_HLT_EXITING, PROC_SECONDARY,
} from '../src/cpu/vmx/controls.js';
import { isLaunched, vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { GDT_BASE, IDT_BASE } from './helpers/harness.js';
import { compareOnRom } from './helpers/rom.js';
import {
  ENTRY_FAILURE_GUEST_STATE, enterGuest, EXITS, FELL_THROUGH, GUEST_RSP, HOST_RESUMED, LABEL_INSN, LABEL_NEXT,
  launch, PATH, rd, TSS, VMCS_A, VMCS_B, w,
} from './helpers/vmx.js';
import { CPUID_GUEST_REASON_HOST, vmxRom } from './helpers/vmx-rom.js';

/** VMWRITEs making the guest unrestricted (EPT on, with an EPTP VM entry accepts). */
const UNRESTRICTED = [w(0x4002, CONTROL_MUST1[PROC] | PROC_SECONDARY), w(0x401e, PROC2_EPT | PROC2_UNRESTRICTED_GUEST),
  w(0x201a, 0x5401e)];
/** VMWRITEs of CR0 as it is now with `and` applied. */
const cr0And = (mask: number): string => `mov eax, cr0\nand eax, ${mask}\nmov ebx, 0x6800\nvmwrite ebx, eax`;
/** A valid virtual-8086 guest: RFLAGS.VM, each segment at selector x 16, limit FFFFH, access rights F3H. */
const V86 = [w(0x6820, 0x20002),
  ...[0, 1, 2, 3, 4, 5].flatMap((s) => [w(0x0800 + 2 * s, 0x100 + s), w(0x6806 + 2 * s, (0x100 + s) << 4),
    w(0x4800 + 2 * s, 0xffff), w(0x4814 + 2 * s, 0xf3)])];
/** A ring-3 guest: CS 0BH and SS 13H with DPL 3. */
const RING3 = [w(0x0802, 0x0b), w(0x4816, 0xc0fb), w(0x0804, 0x13), w(0x4818, 0xc0f3)];

/**
 * Each guest-state check of 26.3.1 (entry.ts guestStateCheck) with a VMCS that fails exactly it:
 * the flat guest with the writes on top; the qualification of the VM-entry failure (4: VMCS link
 * pointer). `rom`: also on the Bochs ROM below (Bochs's Core Duo has no unrestricted guests).
 * The checks of an event to inject against this state are in vmx-exits-events.test.ts.
 */
interface GuestStateFailure { what: string; writes: string[]; qualification: number; rom: boolean }
const fail = (what: string, writes: string[], qualification = 0, rom = true): GuestStateFailure =>
  ({ what, writes, qualification, rom });
const GUEST_STATE_FAILURES: GuestStateFailure[] = [
  fail('CR0.PG clear', [cr0And(0x7fffffff)]),
  fail('CR0.NE clear', [cr0And(~0x20)]),
  fail('CR4.VMXE clear', [w(0x6804, 0x10)]),
  // Off the ROM: Bochs's Core Duo has CR4.PAE (its entry fails on the PDPTEs, qualification 2).
  fail('CR4.PAE (not in IA32_VMX_CR4_FIXED1)', [w(0x6804, 0x2030)], 0, false),
  // Off the ROM: Bochs checks no IA32_DEBUGCTL bit (docs/VMX.md), and its Core Duo has no "load IA32_PAT".
  fail('load debug controls: IA32_DEBUGCTL bit 2 (reserved)', [w(0x4012, CONTROL_MUST1[ENTRY] | ENTRY_LOAD_DEBUG), w(0x2802, 4)], 0, false),
  fail('load debug controls: IA32_DEBUGCTL bit 32', [w(0x4012, CONTROL_MUST1[ENTRY] | ENTRY_LOAD_DEBUG), w(0x2803, 1)], 0, false),
  fail('load IA32_PAT: memory type 2', [w(0x4012, CONTROL_MUST1[ENTRY] | ENTRY_LOAD_PAT), w(0x2804, 0x0206), w(0x2805, 0)], 0, false),
  fail('TR with TI set', [w(0x080e, 0x2c)]),
  fail('usable LDTR with TI set', [w(0x080c, 0x34), w(0x4820, 0x82)]),
  fail('virtual-8086 guest with a flat CS', [w(0x6820, 0x20002)]),
  fail('virtual-8086 guest: DS base not selector x 16', [...V86, w(0x6806 + 2 * DS, 0)]),
  fail('virtual-8086 guest: FS limit not FFFFH', [...V86, w(0x4808, 0xfffff)]),
  fail('virtual-8086 guest: GS access rights 93H', [...V86, w(0x481e, 0x93)]),
  fail('SS RPL differs from CS RPL', [w(0x0804, 0x13), w(0x4818, 0xc0f3), w(0x4816, 0xc0fb)]),
  fail('CS type 3 (data)', [w(0x4816, 0xc093)]),
  fail('CS unusable of type 3: checked as if usable', [w(0x4816, AR_UNUSABLE | 0xc093)]),
  fail('CS DPL differs from SS DPL (non-conforming)', [w(0x4816, 0xc0bb)]),
  fail('CS DPL above SS DPL (conforming)', [w(0x4816, 0xc0ff)]),
  fail('SS type 1 (read-only)', [w(0x4818, 0xc091)]),
  fail('SS DPL differs from its RPL', [w(0x4818, 0xc0b3), w(0x4816, 0xc0bf)]),
  fail('unusable SS with DPL 1 and RPL 0', [w(0x4818, AR_UNUSABLE | 0xc0b3), w(0x4816, 0xc09f)]),
  fail('DS not accessed', [w(0x481a, 0xc092)]),
  fail('DS execute-only code', [w(0x481a, 0xc099)]),
  fail('DS DPL below its RPL', [w(0x0806, 0x13)]),
  fail('ES not present', [w(0x4814, 0xc013)]),
  fail('ES S = 0', [w(0x4814, 0xc083)]),
  fail('ES access-rights bit 8 (reserved)', [w(0x4814, 0xc193)]),
  fail('ES access-rights bit 17 (reserved)', [w(0x4814, 0x2c093)]),
  fail('FS limit FFFF0H with G = 1', [w(0x4808, 0xffff0)]),
  fail('GS limit 100000H with G = 0', [w(0x480a, 0x100000), w(0x481e, 0x4093)]),
  fail('TR type 9 (available TSS)', [w(0x4822, 0x89)]),
  fail('TR S = 1', [w(0x4822, 0x9b)]),
  fail('TR not present', [w(0x4822, 0x0b)]),
  fail('TR access-rights bit 8 (reserved)', [w(0x4822, 0x18b)]),
  fail('TR limit 67H with G = 1', [w(0x4822, 0x808b)]),
  fail('TR unusable', [w(0x4822, AR_UNUSABLE | 0x8b)]),
  fail('usable LDTR of type 3', [w(0x4820, 0x83)]),
  fail('usable LDTR with S = 1', [w(0x4820, 0x92)]),
  fail('usable LDTR not present', [w(0x4820, 0x02)]),
  fail('usable LDTR access-rights bit 17 (reserved)', [w(0x4820, 0x20082)]),
  fail('usable LDTR limit 1000H with G = 1', [w(0x480c, 0x1000), w(0x4820, 0x8082)]),
  fail('GDTR limit bit 16', [w(0x4810, 0x10000)]),
  fail('IDTR limit bit 31', [w(0x4812, 0x80000000)]),
  fail('RFLAGS bit 1 clear', [w(0x6820, 0)]),
  fail('RFLAGS bit 3 set', [w(0x6820, 0xa)]),
  fail('RFLAGS bit 5 set', [w(0x6820, 0x22)]),
  fail('RFLAGS bit 15 set', [w(0x6820, 0x8002)]),
  fail('RFLAGS bit 22 set', [w(0x6820, 0x400002)]),
  // Off the ROM: Bochs's Core Duo has the wait-for-SIPI state (the guest would wait).
  fail('activity state 3 (wait-for-SIPI: unsupported)', [w(0x4826, 3)], 0, false),
  fail('HLT activity with SS.DPL 3', [...RING3, w(0x4826, 1)]),
  fail('HLT activity with blocking by STI', [w(0x6820, 0x202), w(0x4824, 1), w(0x4826, 1)]),
  fail('HLT activity with blocking by MOV SS', [w(0x4824, 2), w(0x4826, 1)]),
  fail('blocking by STI with IF = 0', [w(0x4824, 1)]),
  fail('blocking by STI and by MOV SS', [w(0x6820, 0x202), w(0x4824, 3)]),
  fail('blocking by SMI outside SMM', [w(0x4824, 4)]),
  fail('interruptibility bit 4', [w(0x4824, 0x10)]),
  fail('pending debug exceptions bit 4', [w(0x6822, 0x10)]),
  fail('pending debug exceptions bit 13', [w(0x6822, 0x2000)]),
  // Off the ROM: Bochs does not check BS against TF (docs/VMX.md; its HLT guest would wait).
  fail('pending BS with TF = 0 under blocking by MOV SS', [w(0x4824, 2), w(0x6822, 0x4000)], 0, false),
  fail('no pending BS with TF = 1 in the HLT state', [w(0x6820, 0x102), w(0x4826, 1)], 0, false),
  fail('VMCS link pointer not 4-KiB aligned', [w(0x2800, VMCS_B + 8)], 4),
  fail('VMCS link pointer above 4 GiB', [w(0x2800, VMCS_B), w(0x2801, 1)], 4),
  fail('VMCS link pointer to a region of another revision', [w(0x2800, 0x57000)], 4),
  fail('VMCS link pointer to the current VMCS', [w(0x2800, VMCS_A)], 4),
  fail('unrestricted guest: CR0.PG set with PE clear', [...UNRESTRICTED, cr0And(~1)], 0, false),
  fail('unrestricted guest: CS type 3 with DPL 3', [...UNRESTRICTED, w(0x4816, 0xc0f3), w(0x4818, 0xc0f3)], 0, false),
  fail('unrestricted guest: RFLAGS.VM with CR0.PE clear', [...UNRESTRICTED, ...V86, cr0And(~0x80000001)], 0, false),
  fail('unrestricted guest: SS.DPL 3 in real mode', [...UNRESTRICTED, cr0And(~0x80000001), w(0x4816, 0xc09f), w(0x4818, 0xc0f3)], 0, false),
  fail('unrestricted guest: SS.DPL 3 with a data CS', [...UNRESTRICTED, w(0x4816, 0xc093), w(0x4818, 0xc0f3)], 0, false),
];

/**
 * Guest states next to the failures above that pass every check, so that each failure fails on
 * its own check (the flat guest, the link pointer and the HLT state: the last two tests below).
 */
const GUEST_STATE_ENTERS: Array<[string, string[]]> = [
  ['a virtual-8086 guest', V86],
  ['a ring-3 guest', RING3],
  ['CS DPL below SS DPL (conforming)', [...RING3, w(0x4816, 0xc09f)]],
  ['CS unusable (its checks pass)', [w(0x4816, AR_UNUSABLE | 0xc09b)]],
  ['unusable SS with DPL = RPL', [w(0x4818, AR_UNUSABLE | 0xc093)]],
  ['an unrestricted protected-mode guest: SS.DPL 3 with a conforming CS of DPL 0', [...UNRESTRICTED, w(0x4816, 0xc09f), w(0x4818, 0xc0f3)]],
  ['an unrestricted guest: CS type 3 with DPL 0, SS and DS DPL not their RPL, SS RPL not CS RPL',
    [...UNRESTRICTED, w(0x4816, 0xc093), w(0x0804, 0x13), w(0x0806, 0x13)]],
  ['an unrestricted real-mode guest: CR0.PE and PG clear', [...UNRESTRICTED, cr0And(~0x80000001)]],
];

describe('VM entry: guest-state checks (VM-entry failure, exit reason 33 | 80000000H)', () => {
  for (const { what, writes, qualification } of GUEST_STATE_FAILURES) {
    it(what, () => {
      const r = launch(writes);
      expect(rd(r, PATH)).toBe(HOST_RESUMED);
      expect(vmcsRead(r.cpu, 0x4402)).toBe(ENTRY_FAILURE_GUEST_STATE);
      expect(vmcsRead(r.cpu, 0x6400)).toBe(qualification);
      expect(r.cpu.getEflags()).toBe(2);
      expect(r.cpu.vmx.nonRoot).toBe(false);
      expect(isLaunched(r.cpu, VMCS_A)).toBe(false);
    });
  }
  for (const [what, writes] of GUEST_STATE_ENTERS) {
    it(`enters: ${what}`, () => {
      const cpu = enterGuest(writes);
      expect(isLaunched(cpu, VMCS_A)).toBe(true);
    });
  }
  it('the flat guest runs to its CPUID exit, with or without a VMCS link pointer', () => {
    for (const writes of [[], [w(0x2800, VMCS_B)]]) expect(vmcsRead(launch(writes).cpu, 0x4402)).toBe(10);
  });
  it('an unusable CS is loaded as the usable code segment its access rights describe, and runs', () => {
    const r = launch([w(0x4816, AR_UNUSABLE | 0xc09b)]);
    expect([vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x4816)]).toEqual([10, 0xc09b]);
  });
  it('HLT with TF = 1 and BS pending enters halted', () => {
    expect(enterGuest([w(0x6820, 0x102), w(0x4826, 1), w(0x6822, 0x4000)]).halted).toBe(true);
  });
});

describe('VM entry: guest-state loading', () => {
  it('loads CRs, segment caches, descriptor tables, RSP/RIP/RFLAGS, SYSENTER MSRs, interruptibility', () => {
    const cpu = enterGuest([w(0x6806 + 2 * DS, 0x1234), w(0x4800 + 2 * DS, 0xfff), w(0x4814 + 2 * DS, 0x4093),
      w(0x4814 + 2 * ES, AR_UNUSABLE), w(0x0800 + 2 * ES, 0),
      w(0x482a, 0x42), w(0x6824, 0x5000), w(0x6826, 0x6000), w(0x6820, 0x202), w(0x4824, 1),
      w(0x4810, 0x2f), w(0x4812, 0x3ff)]);
    expect(cpu.eip).toBe(vmcsRead(cpu, 0x681e) >>> 0);
    expect(cpu.regs[ESP]).toBe(GUEST_RSP);
    expect(cpu.getEflags()).toBe(0x202);
    expect([cpu.seg[DS], cpu.segBase[DS], cpu.segLimit[DS], cpu.segAr[DS]]).toEqual([0x10, 0x1234, 0xfff, 0x4093]);
    expect([cpu.seg[CS], cpu.segBase[CS], cpu.segLimit[CS], cpu.segAr[CS]]).toEqual([8, 0, 0xffffffff, 0xc09b]);
    expect(cpu.segAr[ES]).toBe(AR_UNUSABLE);
    expect(cpu.segAr[LDTR]).toBe(AR_UNUSABLE);
    expect([cpu.seg[TR], cpu.segBase[TR], cpu.segLimit[TR], cpu.segAr[TR]]).toEqual([0x28, TSS, 0x67, 0x8b]);
    expect([cpu.gdtrBase, cpu.gdtrLimit, cpu.idtrBase, cpu.idtrLimit]).toEqual([GDT_BASE, 0x2f, IDT_BASE, 0x3ff]);
    expect([cpu.msrs.get(MSR_SYSENTER_CS), cpu.msrs.get(MSR_SYSENTER_ESP), cpu.msrs.get(MSR_SYSENTER_EIP)])
      .toEqual([0x42n, 0x5000n, 0x6000n]);
    expect(cpu.cpl).toBe(0);
    // Blocking by STI: the shadow covers the first guest instruction.
    expect(cpu.shadowAt).toBe(cpu.icount);
    expect(isLaunched(cpu, VMCS_A)).toBe(true);
  });
  it('the HLT activity state enters the guest halted', () => {
    expect(enterGuest([w(0x4826, 1)]).halted).toBe(true);
  });
});

describe('VM exits: CPUID, HLT, VMCALL', () => {
  it('CPUID exits (reason 10) with the guest RIP and RSP saved and the instruction length; host state loaded', () => {
    const r = launch([], 'push eax\nguest_insn: cpuid\nguest_next:');
    expect(rd(r, PATH)).toBe(HOST_RESUMED);
    const cpu = r.cpu;
    expect(vmcsRead(cpu, 0x4402)).toBe(10);
    expect(vmcsRead(cpu, 0x6400)).toBe(0);
    expect(vmcsRead(cpu, 0x440c)).toBe(2);
    expect(vmcsRead(cpu, 0x681e) >>> 0).toBe(rd(r, LABEL_INSN));
    expect(vmcsRead(cpu, 0x681c)).toBe(GUEST_RSP - 4);
    expect(vmcsRead(cpu, 0x6820)).toBe(2);
    expect(vmcsRead(cpu, 0x4816)).toBe(0xc09b);
    expect(vmcsRead(cpu, 0x4820)).toBe(AR_UNUSABLE);
    expect(cpu.vmx.nonRoot).toBe(false);
    // Host state (27.5): flat ring-0 CS/SS/DS, null ES/FS/GS unusable, TR limit 67H, table limits FFFFH.
    expect([cpu.seg[CS], cpu.segBase[CS], cpu.segLimit[CS], cpu.segAr[CS]]).toEqual([8, 0, 0xffffffff, 0xc09b]);
    expect([cpu.seg[SS], cpu.segAr[SS]]).toEqual([0x10, 0xc093]);
    expect(cpu.segAr[ES] & AR_UNUSABLE).toBe(AR_UNUSABLE);
    expect([cpu.seg[TR], cpu.segLimit[TR], cpu.segAr[TR]]).toEqual([0x28, 0x67, 0x8b]);
    expect([cpu.gdtrLimit, cpu.idtrLimit, cpu.dr[7]]).toEqual([0xffff, 0xffff, 0x400]);
    expect(cpu.cpl).toBe(0);
  });
  it('HLT exits (reason 12, length 1) when "HLT exiting" is 1', () => {
    const r = launch([w(0x4002, CONTROL_MUST1[PROC] | PROC_HLT_EXITING)], 'guest_insn: hlt\nguest_next:');
    expect([rd(r, PATH), vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x440c)]).toEqual([HOST_RESUMED, 12, 1]);
    expect(vmcsRead(r.cpu, 0x681e) >>> 0).toBe(rd(r, LABEL_INSN));
    expect(vmcsRead(r.cpu, 0x4826)).toBe(0); // active: the HLT did not execute
    expect(r.cpu.halted).toBe(false);
  });
  it('VMX instructions in the guest exit: VMXOFF (reason 26), VMREAD (23), VMLAUNCH (20)', () => {
    for (const [insn, reason, length] of [['vmxoff', 26, 3], ['vmread eax, ebx', 23, 3], ['vmlaunch', 20, 3]] as const) {
      const r = launch([], `guest_insn: ${insn}\nguest_next:`);
      expect([insn, vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x440c)]).toEqual([insn, reason, length]);
      expect(vmcsRead(r.cpu, 0x681e) >>> 0).toBe(rd(r, LABEL_INSN));
      expect(r.cpu.vmx.on).toBe(true);
    }
  });
  it('VMRESUME continues the guest past the CPUID; its VMCALL exits (reason 18, length 3)', () => {
    const host = `inc dword [${EXITS}]
      cmp dword [${EXITS}], 1
      jne done
      mov ebx, 0x681e
      vmread eax, ebx
      mov ebx, 0x440c
      vmread ecx, ebx
      add eax, ecx
      mov ebx, 0x681e
      vmwrite ebx, eax
      vmresume
      mov dword [${PATH}], ${FELL_THROUGH}`;
    const r = launch([], 'push eax\nguest_insn: cpuid\nguest_next: vmcall', host);
    expect([rd(r, PATH), rd(r, EXITS)]).toEqual([HOST_RESUMED, 2]);
    expect([vmcsRead(r.cpu, 0x4402), vmcsRead(r.cpu, 0x440c)]).toEqual([18, 3]);
    expect(vmcsRead(r.cpu, 0x681e) >>> 0).toBe(rd(r, LABEL_NEXT));
    expect(vmcsRead(r.cpu, 0x681c)).toBe(GUEST_RSP - 4);
  });
});

/**
 * The guest-state checks on a ROM, checked against Bochs's Core Duo model: per case the flat
 * guest of FLAT_GUEST with the case's writes on top, VMLAUNCH; the host prints the exit reason
 * and qualification (80000021H and 0 or 4 for each failure; first the flat guest's CPUID exit,
 * with and without a VMCS link pointer).
 */
const ROM_FAILURES = GUEST_STATE_FAILURES.filter((c) => c.rom);
const GUEST_STATE_ROM = vmxRom(`%define NEXT 0x40300
  FLAGS {vmxon [PTR]}
${[[], [w(0x2800, VMCS_B)], ...ROM_FAILURES.map((c) => c.writes)].map((writes) => `  call flat_guest
${writes.join('\n')}
  LAUNCH guest, NEXT`).join('\n')}
  jmp rom_done
; the flat guest, active, with no blocking and no pending debug exceptions (VMCS A keeps what
; the previous case wrote)
flat_guest:
  FLAT_GUEST
  W 0x4824, 0
  W 0x4826, 0
  W 0x6822, 0
  ret
${CPUID_GUEST_REASON_HOST}rom_done:
`);
compareOnRom('VM-entry guest-state checks on a ROM', GUEST_STATE_ROM, [
  '00000000', '0000000A', '00000000', '0000000A', '00000000',
  ...ROM_FAILURES.flatMap((c) => ['80000021', `0000000${c.qualification}`]),
  '00000000',
]);
