// VM exits during event delivery caused by address translation (SDM Vol. 3C 27.2.3, 27.3.3,
// Table 27-6): EPT violations and misconfigurations and APIC-access exits met while delivering
// an injected event, an external interrupt, INT n or an exception through the guest IDT record
// the event as IDT-vectoring information (with the instruction length of a software event), save
// the guest RIP at which the event was to be delivered and the RFLAGS image the delivery would
// have pushed; an APIC access then reports access type 3. Such exits outside event delivery save
// RFLAGS.RF = 1, and a fault on the handler's first fetch is not during delivery.

import { describe, expect, it } from 'vitest';
import { RF } from '../src/cpu/constants.js';
import { PROC2_VIRTUALIZE_APIC } from '../src/cpu/vmx/controls.js';
import { vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { eptRun, setLeaf, WB, type EptExit } from './helpers/ept.js';
import { eptOn, eptRom, leafRom } from './helpers/ept-rom.js';
import type { Harness } from './helpers/harness.js';
import { compareOnRom } from './helpers/rom.js';
import { GUEST_RSP, LABEL_INSN, PD, rd, w } from './helpers/vmx.js';

/** The guest IDT (gates 6, 30H, 40H, DPL 0, to HANDLER), the handler (CPUID) and the stack page. */
const GUEST_IDT = 0x74000, HANDLER = 0x75000, STACK_PAGE = GUEST_RSP - 0x1000;
const idtSetup = (h: Harness): void => {
  for (const vector of [6, 0x30, 0x40]) {
    h.mem.view.setUint32(GUEST_IDT + 8 * vector, 0x00080000 | (HANDLER & 0xffff), true);
    h.mem.view.setUint32(GUEST_IDT + 8 * vector + 4, (HANDLER & 0xffff0000) | 0x8e00, true);
  }
  h.mem.ram.set([0x0f, 0xa2, 0xeb, 0xfe], HANDLER); // cpuid; jmp $
};
const INJECT_40H = [w(0x6820, 0x202), w(0x4016, 0x80000040)];
/** Runs `guest` with the guest IDT, `writes` and the set-up `change` on top; the exit and the IDT-vectoring fields. */
function deliveryRun(guest: string, change: (h: Harness) => void, writes: string[] = [], proc2 = 0) {
  const e = eptRun(guest, (h) => {
    idtSetup(h);
    change(h);
  }, { proc2, writes: [w(0x6818, GUEST_IDT), ...writes] });
  const field = (encoding: number): number => vmcsRead(e.cpu, encoding) >>> 0;
  return { ...e, vectoring: field(0x4408), vectoringError: field(0x440a), length: field(0x440c), rflags: field(0x6820), rsp: field(0x681c) };
}
const insn = (e: EptExit): number => rd(e.h, LABEL_INSN);

describe('EPT exits during event delivery (IDT-vectoring information, 27.2.3; RIP and RF, 27.3.3)', () => {
  it('an injected external interrupt whose IDT read is not present: the event, the entry RIP, its RFLAGS (RF clear)', () => {
    const e = deliveryRun('guest_insn: nop\nguest_next:', setLeaf(GUEST_IDT, 0), INJECT_40H);
    expect([e.reason, e.qualification, e.gpa, e.linear]).toEqual([48, 0x181, GUEST_IDT + 0x200, GUEST_IDT + 0x200]);
    expect([e.vectoring, e.rip, e.rflags, e.rsp]).toEqual([0x80000040, insn(e), 0x202, GUEST_RSP]);
  });
  it('an injected external interrupt whose first stack push is read-only: a write, nothing pushed', () => {
    const e = deliveryRun('guest_insn: nop\nguest_next:', setLeaf(STACK_PAGE, STACK_PAGE | WB | 1), INJECT_40H);
    expect([e.reason, e.qualification, e.gpa, e.vectoring, e.rip, e.rsp]).toEqual([48, 0x18a, GUEST_RSP - 4, 0x80000040, insn(e), GUEST_RSP]);
    expect(e.cpu.readPhys32(GUEST_RSP - 12)).toBe(0);
  });
  it('an external interrupt from the interrupt controller: its vector, and the RIP it interrupted', () => {
    const e = deliveryRun('sti\nnop\nguest_insn: nop\nguest_next:', (h) => {
      setLeaf(GUEST_IDT, 0)(h);
      h.cpu.setIntr(true); // the host runs with IF = 0; the guest takes it after STI's shadow
      h.cpu.interruptAck = () => {
        h.cpu.setIntr(false);
        return 0x40;
      };
    });
    expect([e.reason, e.vectoring, e.rip, e.rflags]).toEqual([48, 0x80000040, insn(e), 0x202]);
  });
  it('INT n: type 4, the instruction length, RIP of the INT instruction', () => {
    const e = deliveryRun('guest_insn: int 0x30\nguest_next:', setLeaf(GUEST_IDT, 0));
    expect([e.reason, e.gpa, e.vectoring, e.length, e.rip, e.rflags & RF]).toEqual([48, GUEST_IDT + 0x180, 0x80000430, 2, insn(e), 0]);
  });
  it('an injected software interrupt: the entry RIP and the injected length', () => {
    const e = deliveryRun('guest_insn: nop\nguest_next:', setLeaf(GUEST_IDT, 0), [w(0x4016, 0x80000430), w(0x401a, 3)]);
    expect([e.vectoring, e.length, e.rip]).toEqual([0x80000430, 3, insn(e)]);
  });
  it('a #UD fault: type 3, RIP of the faulting instruction, RF set as in the image a fault pushes', () => {
    const e = deliveryRun('guest_insn: ud2\nguest_next:', setLeaf(GUEST_IDT, 0));
    expect([e.reason, e.gpa, e.vectoring, e.rip, e.rflags]).toEqual([48, GUEST_IDT + 0x30, 0x80000306, insn(e), 0x10002]);
  });
  it('an injected #GP with an error code: the error code; RF as the guest had it (an injected fault pushes the guest RF)', () => {
    const e = deliveryRun('guest_insn: nop\nguest_next:', setLeaf(GUEST_IDT, 0), [w(0x4016, 0x80000b0d), w(0x4018, 0x1234)]);
    expect([e.gpa, e.vectoring, e.vectoringError, e.rip, e.rflags]).toEqual([GUEST_IDT + 0x68, 0x80000b0d, 0x1234, insn(e), 2]);
  });
  it('a misconfigured EPT entry during delivery records the event too', () => {
    const e = deliveryRun('guest_insn: int 0x30\nguest_next:', setLeaf(GUEST_IDT, GUEST_IDT | WB | 2));
    expect([e.reason, e.qualification, e.vectoring, e.length, e.rip]).toEqual([49, 0, 0x80000430, 2, insn(e)]);
  });
  it("the handler's first fetch is not during delivery: no IDT-vectoring information, the handler's RIP, RF set", () => {
    const e = deliveryRun('guest_insn: nop\nguest_next:', setLeaf(HANDLER, HANDLER | WB | 3), INJECT_40H);
    expect([e.reason, e.qualification, e.vectoring, e.rip, e.rflags, e.rsp]).toEqual([48, 0x19c, 0, HANDLER, 0x10002, GUEST_RSP - 12]);
  });
  it('outside event delivery an EPT violation saves RF = 1 and the RIP of the instruction', () => {
    const e = deliveryRun(`guest_insn: mov eax, [${STACK_PAGE}]\nguest_next:`, setLeaf(STACK_PAGE, 0));
    expect([e.reason, e.vectoring, e.rip, e.rflags]).toEqual([48, 0, insn(e), 0x10002]);
  });
});

describe('APIC-access exits during event delivery: access types 3 and 10 (Table 27-6)', () => {
  const apicAt = (page: number): string[] => [...INJECT_40H, w(0x2014, page), w(0x2015, 0)];
  const apicRun = (page: number) => deliveryRun('guest_insn: nop\nguest_next:', () => {}, apicAt(page), PROC2_VIRTUALIZE_APIC);
  it('the stack push: a linear access during event delivery at offset FFCH', () => {
    const e = apicRun(STACK_PAGE);
    expect([e.reason, e.qualification, e.vectoring, e.rip, e.rflags, e.rsp]).toEqual([44, 0x3ffc, 0x80000040, insn(e), 0x202, GUEST_RSP]);
  });
  it('the IDT read: a linear access during event delivery at offset 200H', () => {
    const e = apicRun(GUEST_IDT);
    expect([e.reason, e.qualification, e.vectoring, e.rip]).toEqual([44, 0x3200, 0x80000040, insn(e)]);
  });
  it("the guest's page directory read while translating the IDT address: a guest-physical access during event delivery", () => {
    const e = apicRun(PD);
    expect([e.reason, e.qualification, e.vectoring, e.rip]).toEqual([44, 0xa000, 0x80000040, insn(e)]);
  });
  it('an instruction access keeps its own types (read 0) and RF = 1', () => {
    const e = deliveryRun(`guest_insn: mov eax, [${STACK_PAGE + 0x20}]\nguest_next:`, () => {}, [w(0x2014, STACK_PAGE), w(0x2015, 0)], PROC2_VIRTUALIZE_APIC);
    expect([e.reason, e.qualification, e.vectoring, e.rflags]).toEqual([44, 0x20, 0, 0x10002]);
  });
});

/**
 * The ROM: per case FLAT_GUEST with EPT (helpers/ept-rom.ts), the guest IDT at 74000H (gates 6,
 * 30H and 40H to a handler at 75000H that executes CPUID), the case's set-up and guest code; the
 * host prints the exit reason, qualification and IDT-vectoring information, then what the case
 * adds: `RIP` prints the saved RIP minus the case's guest label.
 */
interface DeliveryCase { setup: string[]; guest: string; after: string[]; proc2?: number }
const IDT = 0x74, STACK = 0x6;
const INJECT_INTR = ['W 0x6820, 0x202', 'W 0x4016, 0x80000040'];
const EPT_EXIT = ['PRINT 0x2400', 'PRINT 0x640a', 'RIP', 'PRINT 0x6820'];
const APIC_PAGE = (page: number): string[] => [`W 0x2014, 0x${(page << 12).toString(16)}`, 'W 0x2015, 0'];
const DELIVERY_CASES: DeliveryCase[] = [
  { setup: INJECT_INTR, guest: 'nop', after: ['PRINT 0x681e', 'PRINT 0x681c'] },
  { setup: [...INJECT_INTR, leafRom(IDT, 0)], guest: 'nop', after: EPT_EXIT },
  { setup: [...INJECT_INTR, leafRom(STACK, 0x6031)], guest: 'nop', after: EPT_EXIT },
  { setup: [leafRom(IDT, 0)], guest: 'int 0x30', after: [...EPT_EXIT, 'PRINT 0x440c'] },
  { setup: [leafRom(IDT, 0)], guest: 'ud2', after: EPT_EXIT },
  { setup: ['W 0x4016, 0x80000430', 'W 0x401a, 2', leafRom(IDT, 0)], guest: 'nop', after: [...EPT_EXIT, 'PRINT 0x440c'] },
  { setup: ['W 0x6820, 0x202', 'mov dword [0xfee00300], 0x44040', leafRom(IDT, 0)], guest: 'nop',
    after: [...EPT_EXIT, 'mov dword [0xfee000b0], 0'] },
  { setup: [...INJECT_INTR, leafRom(0x75, 0x75033)], guest: 'nop', after: ['PRINT 0x2400', 'PRINT 0x681e', 'PRINT 0x6820'] },
  { setup: [leafRom(0x70, 0)], guest: 'mov eax, [0x70010]', after: EPT_EXIT },
  { setup: [...INJECT_INTR, ...APIC_PAGE(STACK)], guest: 'nop', after: ['RIP', 'PRINT 0x6820'], proc2: 1 },
  { setup: [...INJECT_INTR, ...APIC_PAGE(IDT)], guest: 'nop', after: ['RIP', 'PRINT 0x6820'], proc2: 1 },
  { setup: [...INJECT_INTR, ...APIC_PAGE(0x20)], guest: 'nop', after: ['RIP', 'PRINT 0x6820'], proc2: 1 },
  { setup: APIC_PAGE(0x60), guest: 'mov eax, [0x60020]', after: ['RIP', 'PRINT 0x6820'], proc2: 1 },
  { setup: [leafRom(IDT, 0x74032)], guest: 'int 0x30', after: ['RIP', 'PRINT 0x6820', 'PRINT 0x440c'] },
];
function deliveryRom(): string {
  const body = DELIVERY_CASES.map((c, k) => `  FLAT_GUEST
${eptOn(c.proc2)}  W 0x6818, 0x74000
  W 0x4812, 0x7ff
${c.setup.map((l) => `  ${l}`).join('\n')}
  LAUNCH g${k}, NEXT
${c.after.map((l) => `  ${l === 'RIP' ? `RIP g${k}` : l}`).join('\n')}`).join('\n');
  const guests = DELIVERY_CASES.map((c, k) => `g${k}:\n  ${c.guest}\n  jmp $`).join('\n');
  return eptRom({
    prelude: `%define NEXT 0x41110
%macro RIP 1 ; the saved guest RIP minus a label
  mov ebx, 0x681e
  vmread eax, ebx
  sub eax, %1
  call hex
%endmacro
  mov dword [0x20000 + 0x3fb * 4], 0xfec00083
  mov dword [0xfee000f0], 0x1ff
  mov edi, 0x74000
  mov ecx, 0x200
  xor eax, eax
  rep stosd
${[6, 0x30, 0x40].map((v) => `  mov dword [0x74000 + ${v} * 8], 0x00085000\n  mov dword [0x74004 + ${v} * 8], 0x00078e00\n`).join('')}  mov dword [0x75000], 0xfeeba20f`,
    body,
    guests,
    host: `  PRINT 0x4402
  PRINT 0x6400
  PRINT 0x4408
  jmp [NEXT]`,
  });
}
/**
 * The transcript; `bochs`: Bochs's, which sets RF in the saved RFLAGS of every EPT and
 * APIC-access exit, also during the delivery of an interrupt or INT n whose pushed image would
 * have RF = 0 (SDM 27.3.3: the image's value), and reports a guest-physical access during event
 * delivery as type 3 rather than 10 (Table 27-6); docs/VMX.md, "Differences from Bochs".
 */
function deliveryTranscript(bochs: boolean): string[] {
  const image = (rflags: number): string => hex(bochs ? rflags | 0x10000 : rflags);
  return [
    '00000000', // VMXON
    '0000000A', '00000000', '00000000', '00075000', '00006FF4', // injected INTR delivered: the handler's CPUID (RIP, RSP)
    '00000030', '00000181', '80000040', '00074200', '00074200', '00000000', image(0x202), // injected INTR, IDT not present
    '00000030', '0000018A', '80000040', '00006FFC', '00006FFC', '00000000', image(0x202), // injected INTR, stack read-only
    '00000030', '00000181', '80000430', '00074180', '00074180', '00000000', image(2), '00000002', // INT 30H (+ length)
    '00000030', '00000181', '80000306', '00074030', '00074030', '00000000', '00010002', // #UD: a fault's image has RF
    '00000030', '00000181', '80000430', '00074180', '00074180', '00000000', image(2), '00000002', // injected INT 30H
    '00000030', '00000181', '80000040', '00074200', '00074200', '00000000', image(0x202), // APIC self-IPI 40H
    '00000030', '0000019C', '00000000', '00075000', '00075000', '00010002', // the handler's first fetch: not in delivery
    '00000030', '00000181', '00000000', '00070010', '00070010', '00000000', '00010002', // a data read: RF saved as 1
    '0000002C', '00003FFC', '80000040', '00000000', image(0x202), // APIC access by the stack push: type 3
    '0000002C', '00003200', '80000040', '00000000', image(0x202), // APIC access by the IDT read: type 3
    '0000002C', bochs ? '00003000' : '0000A000', '80000040', '00000000', image(0x202), // guest-physical (PDE) in delivery: 10
    '0000002C', '00000020', '00000000', '00000000', '00010002', // APIC access by an instruction: RF saved as 1
    '00000031', '00000000', '80000430', '00000000', image(2), '00000002', // misconfigured IDT leaf, INT 30H
    '00000000', // VMXOFF
  ];
}
const hex = (v: number): string => v.toString(16).toUpperCase().padStart(8, '0');
compareOnRom('EPT and APIC-access exits during event delivery on a ROM', deliveryRom(), deliveryTranscript(false),
  { title: 'Bochs (Westmere model) differs as documented', expected: deliveryTranscript(true), model: 'corei5_arrandale_m520' });
