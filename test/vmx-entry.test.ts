// VM entry (SDM Vol. 3C 26.3: guest-state checks and loading) and the first VM exits (27: CPUID,
// HLT with "HLT exiting", VMCALL, the VMX instructions), as guest programs: a ring-0 host fills
// VMCS A through VMWRITE (controls and host state valid, a flat 32-bit guest) and VMLAUNCHes; VM
// exits resume it at the label `host`. Each guest-state check has a VMCS that fails exactly it.

import { describe, expect, it } from 'vitest';
import { AR_UNUSABLE, CS, DS, ES, ESP, LDTR, SS, TR } from '../src/cpu/constants.js';
import { MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP } from '../src/cpu/msr.js';
import { CONTROL_MUST1 } from '../src/cpu/vmx/capabilities.js';
import { PROC, PROC_HLT_EXITING } from '../src/cpu/vmx/controls.js';
import { isLaunched, vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { GDT_BASE, IDT_BASE } from './helpers/harness.js';
import {
  ENTRY_FAILURE_GUEST_STATE, enterGuest, EXITS, FELL_THROUGH, GUEST_RSP, HOST_RESUMED, LABEL_INSN, LABEL_NEXT,
  launch, PATH, rd, TSS, VMCS_A, VMCS_B, w,
} from './helpers/vmx.js';

describe('VM entry: guest-state checks (VM-entry failure, exit reason 33 | 80000000H)', () => {
  const cases: Array<[string, string[], number]> = [
    ['CR0.PG clear', ['mov eax, cr0\nand eax, 0x7fffffff\nmov ebx, 0x6800\nvmwrite ebx, eax'], 0],
    ['CR0.NE clear', ['mov eax, cr0\nand eax, ~0x20\nmov ebx, 0x6800\nvmwrite ebx, eax'], 0],
    ['CR4.VMXE clear', [w(0x6804, 0x10)], 0],
    ['TR with TI set', [w(0x080e, 0x2c)], 0],
    ['usable LDTR with TI set', [w(0x080c, 0x34), w(0x4820, 0x82)], 0],
    ['SS RPL differs from CS RPL', [w(0x0804, 0x13)], 0],
    ['CS type 3 (data)', [w(0x4816, 0xc093)], 0],
    ['CS unusable', [w(0x4816, AR_UNUSABLE | 0xc09b)], 0],
    ['CS DPL differs from SS DPL (non-conforming)', [w(0x4816, 0xc0bb)], 0],
    ['SS type 1 (read-only)', [w(0x4818, 0xc091)], 0],
    ['SS DPL differs from its RPL', [w(0x4818, 0xc0b3), w(0x4816, 0xc0bf)], 0],
    ['DS not accessed', [w(0x481a, 0xc092)], 0],
    ['DS execute-only code', [w(0x481a, 0xc099)], 0],
    ['DS DPL below its RPL', [w(0x0806, 0x13)], 0],
    ['ES not present', [w(0x4814, 0xc013)], 0],
    ['ES S = 0', [w(0x4814, 0xc083)], 0],
    ['ES access-rights bit 8 (reserved)', [w(0x4814, 0xc193)], 0],
    ['ES access-rights bit 17 (reserved)', [w(0x4814, 0x2c093)], 0],
    ['FS limit FFFF0H with G = 1', [w(0x4808, 0xffff0)], 0],
    ['GS limit 100000H with G = 0', [w(0x480a, 0x100000), w(0x481e, 0x4093)], 0],
    ['TR type 9 (available TSS)', [w(0x4822, 0x89)], 0],
    ['TR unusable', [w(0x4822, AR_UNUSABLE | 0x8b)], 0],
    ['usable LDTR of type 3', [w(0x4820, 0x83)], 0],
    ['GDTR limit bit 16', [w(0x4810, 0x10000)], 0],
    ['IDTR limit bit 31', [w(0x4812, 0x80000000)], 0],
    ['RFLAGS bit 1 clear', [w(0x6820, 0)], 0],
    ['RFLAGS bit 15 set', [w(0x6820, 0x8002)], 0],
    ['RFLAGS bit 22 set', [w(0x6820, 0x400002)], 0],
    ['virtual-8086 guest with a flat CS', [w(0x6820, 0x20002)], 0],
    ['activity state 3 (wait-for-SIPI: unsupported)', [w(0x4826, 3)], 0],
    ['HLT activity with blocking by STI', [w(0x6820, 0x202), w(0x4824, 1), w(0x4826, 1)], 0],
    ['blocking by STI with IF = 0', [w(0x4824, 1)], 0],
    ['blocking by STI and by MOV SS', [w(0x6820, 0x202), w(0x4824, 3)], 0],
    ['blocking by SMI outside SMM', [w(0x4824, 4)], 0],
    ['interruptibility bit 4', [w(0x4824, 0x10)], 0],
    ['pending debug exceptions bit 4', [w(0x6822, 0x10)], 0],
    ['pending BS with TF = 0 under blocking by MOV SS', [w(0x4824, 2), w(0x6822, 0x4000)], 0],
    ['no pending BS with TF = 1 in the HLT state', [w(0x6820, 0x102), w(0x4826, 1)], 0],
    ['VMCS link pointer not 4-KiB aligned', [w(0x2800, VMCS_B + 8)], 4],
    ['VMCS link pointer above 4 GiB', [w(0x2800, VMCS_B), w(0x2801, 1)], 4],
    ['VMCS link pointer to a region of another revision', [w(0x2800, 0x57000)], 4],
  ];
  for (const [what, writes, qualification] of cases) {
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
  it('the flat guest enters, with or without a VMCS link pointer to a region of our revision', () => {
    for (const writes of [[], [w(0x2800, VMCS_B)]]) {
      const r = launch(writes);
      expect(vmcsRead(r.cpu, 0x4402)).toBe(10); // its CPUID exit
      expect(isLaunched(r.cpu, VMCS_A)).toBe(true);
    }
  });
  it('HLT with TF = 1 and BS pending enters (halted)', () => {
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
