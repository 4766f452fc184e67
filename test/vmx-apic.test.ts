// APIC virtualization of this generation (SDM Vol. 3C 29.4 with APIC-register virtualization and
// virtual-interrupt delivery absent, 29.1.2, 26.7): "virtualize APIC accesses" with the
// APIC-access page at APIC_PAGE (exit reason 44, qualification = offset | access type << 12),
// "use TPR shadow" with the virtual-APIC page at VAPIC (accesses to offset 80H go to VTPR; a
// write below the TPR threshold exits with reason 43 after the instruction), the TPR-threshold
// exit right after VM entry, and the VM-entry check on the threshold.

import { describe, expect, it } from 'vitest';
import { EAX } from '../src/cpu/constants.js';
import { CONTROL_MUST1 } from '../src/cpu/vmx/capabilities.js';
import { PROC, PROC2_EPT, PROC2_VIRTUALIZE_APIC, PROC_SECONDARY, PROC_TPR_SHADOW } from '../src/cpu/vmx/controls.js';
import { vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { EPTP, EPT_PT, identityEpt } from './helpers/ept.js';
import { run } from './helpers/exec.js';
import type { Harness } from './helpers/harness.js';
import { FELL_THROUGH, HOST_RESUMED, LABEL_INSN, LABEL_NEXT, PATH, program, rd, vmxReady, w } from './helpers/vmx.js';

const APIC_PAGE = 0x60000, VAPIC = 0x61000;

interface Opts { tpr?: boolean; threshold?: number; vtpr?: number; ept?: boolean; apic?: boolean; setup?: (h: Harness) => void }
function apicRun(guest: string, o: Opts = {}) {
  const proc = CONTROL_MUST1[PROC] | PROC_SECONDARY | (o.tpr ? PROC_TPR_SHADOW : 0);
  const proc2 = (o.apic ?? true ? PROC2_VIRTUALIZE_APIC : 0) | (o.ept ? PROC2_EPT : 0);
  const writes = [w(0x4002, proc), w(0x401e, proc2), w(0x2014, APIC_PAGE), w(0x2015, 0), w(0x2012, VAPIC), w(0x2013, 0),
    w(0x401c, o.threshold ?? 0), w(0x201a, EPTP), w(0x201b, 0)];
  const r = run('pm32', program(writes, guest, '', 'vmlaunch\nmov edi, 0x4400\nvmread esi, edi'), (h) => {
    vmxReady(h);
    identityEpt(h);
    const v = h.mem.view;
    v.setUint32(APIC_PAGE + 0x80, 0x77, true); // what the page holds (never read through virtualization)
    v.setUint32(VAPIC + 0x80, o.vtpr ?? 0x50, true);
    o.setup?.(h);
  });
  expect(r.vector).toBe(-1);
  return { r, reason: vmcsRead(r.cpu, 0x4402), qualification: vmcsRead(r.cpu, 0x6400), rip: vmcsRead(r.cpu, 0x681e) >>> 0 };
}

describe('APIC-access VM exits (reason 44)', () => {
  const cases: Array<[string, string, number]> = [
    ['a read of the ID register', `mov eax, [${APIC_PAGE + 0x20}]`, 0x0020],
    ['a write of the EOI register', `mov dword [${APIC_PAGE + 0xb0}], 0`, 0x10b0],
    ['a byte read at offset 3F0H', `mov al, [${APIC_PAGE + 0x3f0}]`, 0x03f0],
    ['a read-modify-write (a write)', `or dword [${APIC_PAGE + 0x300}], 1`, 0x1300],
  ];
  for (const [what, insn, qualification] of cases) {
    it(`${what}: qualification ${qualification.toString(16)}H, RIP of the instruction`, () => {
      const e = apicRun(`guest_insn: ${insn}\nguest_next: cpuid`);
      expect([e.reason, e.qualification, e.rip]).toEqual([44, qualification, rd(e.r, LABEL_INSN)]);
    });
  }
  it('an instruction fetch from the page: access type 2, RIP of the fetched instruction', () => {
    const e = apicRun(`guest_insn: jmp ${APIC_PAGE + 0x10}\nguest_next:`);
    expect([e.reason, e.qualification, e.rip]).toEqual([44, 0x2010, APIC_PAGE + 0x10]);
  });
  it('without "use TPR shadow" the TPR itself exits too', () => {
    const e = apicRun(`guest_insn: mov eax, [${APIC_PAGE + 0x80}]\nguest_next: cpuid`);
    expect([e.reason, e.qualification]).toEqual([44, 0x80]);
  });
  it('with EPT, the page is found after EPT translation (a guest-physical page mapped onto it)', () => {
    const e = apicRun(`guest_insn: mov eax, [0x70020]\nguest_next: cpuid`, {
      ept: true, setup: (h) => h.mem.view.setUint32(EPT_PT + 8 * 0x70, APIC_PAGE | 0x37, true),
    });
    expect([e.reason, e.qualification]).toEqual([44, 0x20]);
  });
  it('with EPT, a guest page directory on the APIC-access page is a guest-physical access (type 15)', () => {
    const e = apicRun('guest_insn: nop\nguest_next:', {
      ept: true, setup: (h) => {
        h.mem.view.setUint32(EPT_PT + 8 * 0x20, APIC_PAGE | 0x37, true); // the guest's PD (20000H) -> APIC page
      },
    });
    expect([e.reason, e.qualification]).toEqual([44, 0xf000]);
  });
});

describe('TPR shadow through the APIC-access page', () => {
  it('a read of offset 80H returns VTPR from the virtual-APIC page, no exit', () => {
    const e = apicRun(`mov eax, [${APIC_PAGE + 0x80}]\nguest_insn: cpuid\nguest_next:`, { tpr: true, vtpr: 0x5a });
    expect([e.reason, e.r.cpu.regs[EAX]]).toEqual([10, 0x5a]);
  });
  it('a read at 81H is not virtualized (an APIC-access exit)', () => {
    const e = apicRun(`guest_insn: mov al, [${APIC_PAGE + 0x81}]\nguest_next: cpuid`, { tpr: true });
    expect([e.reason, e.qualification]).toEqual([44, 0x81]);
  });
  it('a write at or above the threshold goes to VTPR (bytes 81H-83H cleared), no exit', () => {
    const e = apicRun(`mov dword [${APIC_PAGE + 0x80}], 0xabcd40\nguest_insn: cpuid\nguest_next:`, { tpr: true, threshold: 4 });
    expect(e.reason).toBe(10);
    expect(e.r.mem.view.getUint32(VAPIC + 0x80, true)).toBe(0x40);
    expect(e.r.mem.view.getUint32(APIC_PAGE + 0x80, true)).toBe(0x77);
  });
  it('a write below the threshold: TPR-below-threshold exit (43) after the instruction, qualification 0', () => {
    const e = apicRun(`guest_insn: mov byte [${APIC_PAGE + 0x80}], 0x20\nguest_next: cpuid`, { tpr: true, threshold: 3 });
    expect([e.reason, e.qualification, e.rip]).toEqual([43, 0, rd(e.r, LABEL_NEXT)]);
    expect(e.r.mem.view.getUint32(VAPIC + 0x80, true)).toBe(0x20);
  });
  it('VM entry with VTPR[7:4] below the threshold exits at once (43) at the guest RIP', () => {
    const e = apicRun('guest_insn: cpuid\nguest_next:', { tpr: true, threshold: 6, vtpr: 0x50 });
    expect([e.reason, e.rip]).toEqual([43, rd(e.r, LABEL_INSN)]);
  });
  it('without "virtualize APIC accesses" a threshold above VTPR[7:4] fails VM entry (VMfailValid 7)', () => {
    const e = apicRun('guest_insn: cpuid\nguest_next:', { tpr: true, apic: false, threshold: 6, vtpr: 0x50 });
    expect([rd(e.r, PATH), e.r.cpu.regs[6]]).toEqual([FELL_THROUGH, 7]);
  });
  it('"use TPR shadow" alone enters and runs (no CR8 on IA-32: nothing else changes)', () => {
    const e = apicRun('guest_insn: cpuid\nguest_next:', { tpr: true, apic: false, threshold: 5, vtpr: 0x50 });
    expect([rd(e.r, PATH), e.reason]).toEqual([HOST_RESUMED, 10]);
  });
});
