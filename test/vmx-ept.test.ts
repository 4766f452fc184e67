// EPT and VPID (SDM Vol. 3C 28.2, 28.3; unrestricted guests: vmx-unrestricted.test.ts):
// a ring-0 host fills VMCS A through VMWRITE and launches the flat guest of helpers/vmx.ts with
// "enable EPT" and an identity EPT at EPT_PML4 (4-KiB pages for the first 2 MiB, a 2-MiB page
// above); each case changes EPT entries, runs a guest access, and checks the exit reason, the
// qualification, the guest-physical and guest-linear addresses and the saved RIP; the VPID cases
// check which TLB entries VM entries, exits, INVEPT and INVVPID keep.

import { describe, expect, it } from 'vitest';
import { ECX } from '../src/cpu/constants.js';
import { invalidateEpt, invalidateVpid, TLB_GLOBAL, TLB_SUP } from '../src/cpu/paging.js';
import { EPT_AD_FLAGS, EPT_VPID_CAP, validEptp } from '../src/cpu/vmx/capabilities.js';
import { PROC2_VPID } from '../src/cpu/vmx/controls.js';
import { vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { run } from './helpers/exec.js';
import {
  eptRun, EPTP, EPTP_AD, EPT_PD, EPT_PDPT, EPT_PML4, EPT_PT, FRAME_A, FRAME_B, leafOf, PAGE, RWX, setLeaf, WB,
} from './helpers/ept.js';
import { eptOn, eptRom, leafRom } from './helpers/ept-rom.js';
import { compareOnRom } from './helpers/rom.js';
import type { Harness } from './helpers/harness.js';
import { DATA, EXITS, LABEL_INSN, rd, vmxReady, w } from './helpers/vmx.js';

/** A page directory for the guest alone (one 4-MiB identity page, accessed flag clear). */
const GUEST_PD = 0x24000;

describe('EPT translation', () => {
  it('an identity EPT runs the guest (its CPUID exits, reason 10)', () => {
    const e = eptRun('guest_insn: cpuid\nguest_next:');
    expect(e.reason).toBe(10);
    expect(e.rip).toBe(rd(e.h, LABEL_INSN));
  });
  it('a 4-KiB EPT page remaps a guest-physical page to another host frame', () => {
    const e = eptRun(`mov eax, [${PAGE + 4}]\nmov ecx, [${PAGE}]\nguest_insn: cpuid\nguest_next:`, setLeaf(PAGE, FRAME_A | WB | RWX));
    expect(e.reason).toBe(10);
    expect(vmcsRead(e.cpu, 0x681e) >>> 0).toBe(rd(e.h, LABEL_INSN));
    expect(e.cpu.regs[ECX] >>> 0).toBe(0xaaaaaaaa); // the exit leaves the general registers as the guest had them
  });
  it('a 2-MiB EPT page translates guest-physical 2 MiB + x to host x', () => {
    const e = eptRun(`mov ecx, [${0x200000 + FRAME_B}]\nguest_insn: cpuid\nguest_next:`);
    expect(e.reason).toBe(10);
    expect(e.cpu.regs[ECX] >>> 0).toBe(0xbbbbbbbb);
  });
  it('a guest write through an EPT remapping lands in the host frame', () => {
    const e = eptRun(`mov dword [${PAGE + 8}], 0x12345678\nguest_insn: cpuid\nguest_next:`, setLeaf(PAGE, FRAME_A | WB | RWX));
    expect(e.h.mem.view.getUint32(FRAME_A + 8, true)).toBe(0x12345678);
    expect(e.h.mem.view.getUint32(PAGE + 8, true)).toBe(0);
  });
});

describe('EPT violations (exit reason 48)', () => {
  const cases: Array<[string, string, number, number]> = [
    // [what, guest instruction, leaf of PAGE, qualification]
    ['a data read of a not-present page', `mov eax, [${PAGE + 0x10}]`, 0, 0x181],
    ['a data write to a read/execute page', `mov dword [${PAGE + 0x10}], 1`, WB | 5, 0x1aa],
    ['a data read of an execute-only page', `mov eax, [${PAGE + 0x10}]`, WB | 4, 0x1a1],
    ['a read-modify-write of a read-only page (write only)', `add dword [${PAGE + 0x10}], 1`, WB | 1, 0x18a],
    ['a write to a not-present page', `mov byte [${PAGE + 0x10}], 1`, 0, 0x182],
  ];
  for (const [what, insn, leaf, qualification] of cases) {
    it(`${what}: qualification ${qualification.toString(16)}H, both addresses, RIP of the instruction`, () => {
      const e = eptRun(`guest_insn: ${insn}\nguest_next: cpuid`, setLeaf(PAGE, (PAGE & ~0xfff) | leaf));
      expect([e.reason, e.qualification, e.gpa >>> 0, e.linear >>> 0]).toEqual([48, qualification, PAGE + 0x10, PAGE + 0x10]);
      expect(e.rip).toBe(rd(e.h, LABEL_INSN));
      expect(vmcsRead(e.cpu, 0x2401)).toBe(0);
    });
  }
  it('an instruction fetch from a read/write page: bit 2, rights RW, at the jump target', () => {
    const e = eptRun(`mov dword [${PAGE}], 0x90909090\nguest_insn: jmp ${PAGE}\nguest_next:`, setLeaf(PAGE, PAGE | WB | 3));
    expect([e.reason, e.qualification, e.gpa, e.linear]).toEqual([48, 0x19c, PAGE, PAGE]);
    expect(e.rip).toBe(PAGE); // the jump completed; the fetch at its target exits
  });
  it('code in an execute-only page runs; its data read of itself exits', () => {
    const e = eptRun(`guest_insn: jmp ${PAGE}\nguest_next:`, (h) => {
      h.mem.ram.set([0xa1, 0x00, 0x01, 0x07, 0x00], PAGE); // mov eax, [PAGE + 100H]
      setLeaf(PAGE, PAGE | WB | 4)(h);
    });
    expect([e.reason, e.qualification, e.gpa, e.linear, e.rip]).toEqual([48, 0x1a1, PAGE + 0x100, PAGE + 0x100, PAGE]);
  });
  it('a guest paging-structure read: bit 8 clear, the PDE address as guest-physical address', () => {
    // The guest's page directory (0x20000) not present in the EPT: the first fetch's walk exits.
    const e = eptRun('guest_insn: nop\nguest_next:', setLeaf(0x20000, 0));
    expect([e.reason, e.qualification, e.gpa]).toEqual([48, 0x81, 0x20000]);
    expect(e.linear).toBe(e.rip);
  });
  it("a guest A/D update to a read-only page directory: a write, rights R/X, bit 8 clear", () => {
    // The guest's own page directory (the host's accesses set the accessed flags in its own).
    const e = eptRun('guest_insn: nop\nguest_next:', (h) => {
      h.mem.view.setUint32(GUEST_PD, 0x87, true);
      setLeaf(GUEST_PD, GUEST_PD | WB | 5)(h);
    }, { writes: [w(0x6802, GUEST_PD)] });
    expect([e.reason, e.qualification, e.gpa]).toEqual([48, 0xaa, GUEST_PD]);
  });
  it('an IRET that unblocked NMIs sets bit 12 (and leaves blocking by NMI clear)', () => {
    const e = eptRun(`push dword ${PAGE - 4}\npop esp\nguest_insn: iretd\nguest_next:`, setLeaf(PAGE - 0x1000, 0),
      { writes: [w(0x4824, 8)] });
    expect([e.reason, e.qualification & 0x1000]).toEqual([48, 0x1000]);
    expect(vmcsRead(e.cpu, 0x4824) & 8).toBe(0);
    expect(e.rip).toBe(rd(e.h, LABEL_INSN));
  });
});

describe('EPT misconfigurations (exit reason 49, qualification 0)', () => {
  const at = (addr: number, lo: number, hi = 0) => (h: Harness): void => {
    h.mem.view.setUint32(addr, lo, true);
    h.mem.view.setUint32(addr + 4, hi, true);
  };
  const cases: Array<[string, (h: Harness) => void]> = [
    ['a write-only leaf', setLeaf(PAGE, PAGE | WB | 2)],
    ['a write/execute leaf', setLeaf(PAGE, PAGE | WB | 6)],
    ['memory type 2 in a leaf', setLeaf(PAGE, PAGE | (2 << 3) | RWX)],
    ['memory type 3 in a leaf', setLeaf(PAGE, PAGE | (3 << 3) | RWX)],
    ['memory type 7 in a leaf', setLeaf(PAGE, PAGE | (7 << 3) | RWX)],
    ['an address bit above 32 in a leaf', setLeaf(PAGE, PAGE | WB | RWX, 1)],
    ['bit 3 of a page-directory entry (non-leaf)', at(EPT_PD, EPT_PT | 8 | RWX)],
    ['bit 7 (1-GiB page) of a PDPT entry', at(EPT_PDPT, 0x80 | WB | RWX)],
    ['bit 7 of the PML4 entry', at(EPT_PML4, EPT_PDPT | 0x80 | RWX)],
    ['a write-only non-leaf entry', at(EPT_PD, EPT_PT | 2)],
  ];
  for (const [what, setup] of cases) {
    it(what, () => {
      const e = eptRun(`guest_insn: mov eax, [${PAGE}]\nguest_next:`, setup);
      // A misconfigured entry above the leaf already hits the first fetch: only the reason and qualification are common.
      expect([e.reason, e.qualification]).toEqual([49, 0]);
    });
  }
  it('a 2-MiB leaf with bit 12 set (reserved) exits at the first access through it', () => {
    const e = eptRun(`guest_insn: mov eax, [${0x200000 + FRAME_B}]\nguest_next:`, (h) => h.mem.view.setUint32(EPT_PD + 8, 0x1000 | 0x80 | WB | RWX, true));
    expect([e.reason, e.qualification, e.gpa, e.rip]).toEqual([49, 0, 0x200000 + FRAME_B, rd(e.h, LABEL_INSN)]);
  });
  it('the misconfigured leaf of the data page: guest-physical and linear address of the access', () => {
    const e = eptRun(`guest_insn: mov eax, [${PAGE + 0x20}]\nguest_next:`, setLeaf(PAGE, PAGE | WB | 2));
    expect([e.gpa, e.linear, e.rip]).toEqual([PAGE + 0x20, PAGE + 0x20, rd(e.h, LABEL_INSN)]);
  });
  it('a present entry is checked before its rights: not-present is a violation, write-only a misconfiguration', () => {
    expect(eptRun(`guest_insn: mov eax, [${PAGE}]\nguest_next:`, setLeaf(PAGE, PAGE | (7 << 3))).reason).toBe(48);
  });
});

describe('EPT accessed and dirty flags (EPTP bit 6; model extension: EPT_VPID_CAP bit 21)', () => {
  it('the capability is reported and VM entry and INVEPT accept EPTP bit 6', () => {
    expect(EPT_VPID_CAP & EPT_AD_FLAGS).toBe(EPT_AD_FLAGS);
    expect(validEptp(EPTP_AD, 0)).toBe(true);
    expect(validEptp(EPTP | 0x80, 0)).toBe(false);
  });
  it('a read sets A in every entry used; a write sets D in the leaf; guest paging-structure accesses count as writes', () => {
    const e = eptRun(`mov eax, [${PAGE}]\nmov dword [${FRAME_A}], 1\nguest_insn: cpuid\nguest_next:`, () => {}, { eptp: EPTP_AD });
    expect(e.reason).toBe(10);
    const lo = (a: number): number => e.h.mem.view.getUint32(a, true);
    expect([lo(EPT_PML4) & 0x100, lo(EPT_PDPT) & 0x100, lo(EPT_PD) & 0x100]).toEqual([0x100, 0x100, 0x100]);
    expect(lo(leafOf(PAGE)) & 0x300).toBe(0x100); // read: accessed, not dirty
    expect(lo(leafOf(FRAME_A)) & 0x300).toBe(0x300); // written: dirty
    expect(lo(leafOf(0x20000)) & 0x300).toBe(0x300); // the guest's page directory: walks are writes
    expect(lo(leafOf(0x50000)) & 0x300).toBe(0); // never touched by the guest
  });
  it('without bit 6 no flag is written', () => {
    const e = eptRun(`mov dword [${FRAME_A}], 1\nguest_insn: cpuid\nguest_next:`);
    expect(e.h.mem.view.getUint32(leafOf(FRAME_A), true) & 0x300).toBe(0);
    expect(e.h.mem.view.getUint32(EPT_PML4, true) & 0x100).toBe(0);
  });
  it('a walk through a read-only page directory is a violation with bits 0 and 1 set', () => {
    const e = eptRun('guest_insn: nop\nguest_next:', setLeaf(0x20000, 0x20000 | WB | 5), { eptp: EPTP_AD });
    expect([e.reason, e.qualification, e.gpa]).toEqual([48, 0xab, 0x20000]);
  });
});

/** Host code that resumes the guest past its VMCALL once (`change` first), counting exits. */
const resumeOnce = (change: string): string => `inc dword [${EXITS}]
  cmp dword [${EXITS}], 1
  jne done
  ${change}
  mov ebx, 0x681e
  vmread eax, ebx
  add eax, 3
  vmwrite ebx, eax
  vmresume`;
/** The guest reads PAGE (through FRAME_A), VMCALLs, reads PAGE again into ECX, CPUIDs. */
const READ_TWICE = `mov eax, [${PAGE}]\nvmcall\nmov ecx, [${PAGE}]\nguest_insn: cpuid\nguest_next:`;
/** Host code pointing the EPT leaf of PAGE at FRAME_B. */
const TO_FRAME_B = `mov dword [${leafOf(PAGE)}], ${FRAME_B | WB | RWX}`;

describe('VPID: tagged TLB entries, INVEPT, INVVPID', () => {
  const twice = (proc2: number, invalidate: string): number => {
    const e = eptRun(READ_TWICE, setLeaf(PAGE, FRAME_A | WB | RWX), {
      proc2, writes: [w(0x0000, 5)], host: resumeOnce(`${TO_FRAME_B}\n${invalidate}`),
    });
    expect([e.reason, rd(e.h, EXITS)]).toEqual([10, 2]);
    return e.cpu.regs[ECX] >>> 0;
  };
  const desc = (lo: number, w2 = 0): string =>
    `mov dword [${DATA + 0x300}], ${lo}\nmov dword [${DATA + 0x304}], 0\nmov dword [${DATA + 0x308}], ${w2}\nmov dword [${DATA + 0x30c}], 0`;
  it('without VPID, VM entry and exit flush: the guest sees the changed EPT at once', () => {
    expect(twice(0, '')).toBe(0xbbbbbbbb);
  });
  it('with VPID, the guest keeps its (combined) TLB entry across the exit and entry: the old frame', () => {
    expect(twice(PROC2_VPID, '')).toBe(0xaaaaaaaa);
  });
  it('INVEPT single-context of the EPTP, and all-context, drop it', () => {
    expect(twice(PROC2_VPID, `${desc(EPTP)}\nmov eax, 1\ninvept eax, [${DATA + 0x300}]`)).toBe(0xbbbbbbbb);
    expect(twice(PROC2_VPID, `${desc(0)}\nmov eax, 2\ninvept eax, [${DATA + 0x300}]`)).toBe(0xbbbbbbbb);
  });
  it('INVEPT single-context of another EPTP keeps it', () => {
    expect(twice(PROC2_VPID, `${desc(0x60000 | 0x1e)}\nmov eax, 1\ninvept eax, [${DATA + 0x300}]`)).toBe(0xaaaaaaaa);
  });
  it('INVVPID single-context and individual-address of VPID 5 drop it; of VPID 6, or another address, keep it', () => {
    expect(twice(PROC2_VPID, `${desc(5)}\nmov eax, 1\ninvvpid eax, [${DATA + 0x300}]`)).toBe(0xbbbbbbbb);
    expect(twice(PROC2_VPID, `${desc(5, PAGE + 0x123)}\nmov eax, 0\ninvvpid eax, [${DATA + 0x300}]`)).toBe(0xbbbbbbbb);
    expect(twice(PROC2_VPID, `${desc(6)}\nmov eax, 1\ninvvpid eax, [${DATA + 0x300}]`)).toBe(0xaaaaaaaa);
    expect(twice(PROC2_VPID, `${desc(5, PAGE + 0x1000)}\nmov eax, 0\ninvvpid eax, [${DATA + 0x300}]`)).toBe(0xaaaaaaaa);
    expect(twice(PROC2_VPID, `${desc(0)}\nmov eax, 2\ninvvpid eax, [${DATA + 0x300}]`)).toBe(0xbbbbbbbb);
  });
  it("with VPID the host's own (VPID 0) TLB entries survive the guest; without, entry and exit drop them", () => {
    // The host reads FRAME_A before VMLAUNCH and never after the exit.
    const hostEntry = (proc2: number): number => eptRun('guest_insn: cpuid\nguest_next:', () => {}, {
      proc2, writes: [w(0x0000, 5), `mov eax, [${FRAME_A}]`],
    }).cpu.tlbRead[FRAME_A >>> 12];
    expect(hostEntry(PROC2_VPID) & ~0xfff).toBe(FRAME_A);
    expect(hostEntry(0)).toBe(0);
  });
  it('INVVPID all-context and single-context-keeping-globals act on parked entries only (unit)', () => {
    const r = run('pm32', 'nop', vmxReady);
    const cpu = r.cpu;
    cpu.vmx.parkedTlb.set(5 * 0x200000, [1, 0x1000 | TLB_SUP | TLB_GLOBAL, 0, 2, 0x2000 | TLB_SUP, 0]);
    cpu.vmx.parkedTlb.set(6 * 0x200000 + 0x51, [3, 0x3000 | TLB_SUP, 0]);
    invalidateVpid(cpu, 3, 5, 0);
    expect(cpu.vmx.parkedTlb.get(5 * 0x200000)).toEqual([1, 0x1000 | TLB_SUP | TLB_GLOBAL, 0]);
    invalidateEpt(cpu, 0x60000);
    expect(cpu.vmx.parkedTlb.has(6 * 0x200000 + 0x51)).toBe(true);
    invalidateEpt(cpu, 0x50000);
    expect(cpu.vmx.parkedTlb.has(6 * 0x200000 + 0x51)).toBe(false);
    invalidateVpid(cpu, 2, 0, 0);
    expect(cpu.vmx.parkedTlb.size).toBe(0);
  });
  it('snapshots carry parked TLB contexts and the guest controls', () => {
    const e = eptRun(READ_TWICE, setLeaf(PAGE, FRAME_A | WB | RWX), { proc2: PROC2_VPID, writes: [w(0x0000, 5)] });
    const s = e.cpu.saveState();
    expect(s.vmx.parkedTlb?.length).toBe(1);
    const copy = JSON.parse(JSON.stringify(s)) as typeof s;
    e.cpu.reset();
    e.cpu.restoreState(copy);
    expect(e.cpu.saveState()).toEqual(s);
  });
});

/**
 * EPT violations and misconfigurations, APIC-access and TPR-threshold exits on a ROM, against
 * Bochs's Westmere model (EPT A/D flags, this model's extension, stay off). Per case the host
 * builds an identity EPT (4-KiB pages for 0-2 MiB, a 2-MiB page above), changes one entry,
 * launches the flat guest and prints the exit reason and qualification, and for EPT exits the
 * guest-physical address, guest-linear address and guest RIP, each minus the case's guest start
 * where `relative` names it (g: physical, l: linear, r: RIP), so the ROM layout does not matter.
 * Left out (docs/VMX.md, "Differences from Bochs"): a fetch from the APIC-access page (Bochs
 * stops) and bit 12 of a 2-MiB EPT leaf (Bochs does not check it; the SDM reserves bits 20:12).
 */
interface EptRomCase { setup: string[]; guest: string; relative?: string; after?: string }
const APIC_ON = ['OR 0x401e, 1', 'W 0x2014, 0x60000', 'W 0x2015, 0'];
const TPR_ON = ['OR 0x4002, 0x200000', 'W 0x2012, 0x61000', 'W 0x2013, 0', 'mov dword [0x61080], 0x50'];
const ROM_CASES: EptRomCase[] = [
  { setup: [], guest: 'cpuid' },
  { setup: [leafRom(0x70, 0)], guest: 'mov eax, [0x70010]', relative: 'r' },
  { setup: [leafRom(0x70, 0x70035)], guest: 'mov dword [0x70010], 1', relative: 'r' },
  { setup: [leafRom(0x70, 0x70034)], guest: 'mov eax, [0x70010]', relative: 'r' },
  { setup: [leafRom(0x70, 0x70033)], guest: 'jmp 0x70000', relative: '' },
  { setup: [leafRom(0x70, 0x70031)], guest: 'add dword [0x70010], 1', relative: 'r' },
  { setup: [leafRom(0x20, 0)], guest: 'nop', relative: 'lr' },
  { setup: [leafRom(0x70, 0x70032)], guest: 'mov eax, [0x70010]', relative: 'r' },
  { setup: [leafRom(0x70, 0x70017)], guest: 'mov eax, [0x70010]', relative: 'r' },
  { setup: ['mov dword [0x52008], 0x2020b7'], guest: 'mov eax, [0x200010]', relative: 'r' },
  { setup: ['mov dword [0x51000], 0x520b7'], guest: 'nop', relative: 'lr' },
  { setup: APIC_ON, guest: 'mov eax, [0x60020]' },
  { setup: APIC_ON, guest: 'mov dword [0x60300], 0' },
  ...[['mov eax, [0x60080]\n  mov [0x41200], eax', 0], ['mov byte [0x60080], 0x20', 3], ['nop', 6]].map(([guest, threshold]) => ({
    setup: [...APIC_ON, ...TPR_ON, `W 0x401c, ${threshold}`], guest: guest as string,
    after: '  mov eax, [0x41200]\n  call hex\n  mov eax, [0x61080]\n  call hex' })),
];
function eptExitsRom(): string {
  const base = (c: EptRomCase, which: string, k: number): string => (c.relative ?? '').includes(which) ? `g${k}` : '0';
  const body = ROM_CASES.map((c, k) => `  FLAT_GUEST
${eptOn()}${c.setup.map((l) => `  ${l}`).join('\n')}
  mov dword [ADDR], ${c.relative === undefined ? 0 : 1}
  mov dword [GBASE], ${base(c, 'g', k)}
  mov dword [LBASE], ${base(c, 'l', k)}
  mov dword [RBASE], ${base(c, 'r', k)}
  LAUNCH g${k}, NEXT
${c.after ?? ''}`).join('\n');
  const guests = ROM_CASES.map((c, k) => `g${k}:\n  ${c.guest}\n  vmcall`).join('\n');
  return eptRom({
    prelude: `%define ADDR 0x41100
%define GBASE 0x41104
%define LBASE 0x41108
%define RBASE 0x4110c
%define NEXT 0x41110
%macro PRINT_FROM 2 ; field, base slot
  mov ebx, %1
  vmread eax, ebx
  sub eax, [%2]
  call hex
%endmacro`,
    body,
    guests,
    host: `  PRINT 0x4402
  PRINT 0x6400
  cmp dword [ADDR], 0
  je .next
  PRINT_FROM 0x2400, GBASE
  PRINT_FROM 0x640a, LBASE
  PRINT_FROM 0x681e, RBASE
.next:
  jmp [NEXT]`,
  });
}
const EPT_ROM_EXPECTED = [
  '00000000',
  '0000000A', '00000000',
  '00000030', '00000181', '00070010', '00070010', '00000000',
  '00000030', '000001AA', '00070010', '00070010', '00000000',
  '00000030', '000001A1', '00070010', '00070010', '00000000',
  '00000030', '0000019C', '00070000', '00070000', '00070000',
  '00000030', '0000018A', '00070010', '00070010', '00000000',
  '00000030', '00000081', '00020000', '00000000', '00000000',
  '00000031', '00000000', '00070010', '00070010', '00000000',
  '00000031', '00000000', '00070010', '00070010', '00000000',
  '00000031', '00000000', '00200010', '00200010', '00000000',
  '00000031', '00000000', '00020000', '00000000', '00000000', // the first guest access: its PDE read
  '0000002C', '00000020',
  '0000002C', '00001300',
  '00000012', '00000000', '00000050', '00000050',
  '0000002B', '00000000', '00000000', '00000020',
  '0000002B', '00000000', '00000000', '00000050',
  '00000000',
];
compareOnRom('EPT, APIC-access and TPR-threshold exits on a ROM', eptExitsRom(), EPT_ROM_EXPECTED,
  { title: 'Bochs (Westmere model) agrees', expected: EPT_ROM_EXPECTED, model: 'corei5_arrandale_m520' });
