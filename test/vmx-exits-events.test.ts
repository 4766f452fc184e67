// Events in VMX non-root operation (SDM Vol. 3C 24.8.3, 25.2-25.5, 26.3.1.5, 26.5-26.6, 27.2.2,
// 27.2.3, 31.7), as guest programs in the style of kvm-unit-tests: a ring-0 host fills VMCS A by
// VMWRITE (a flat 32-bit guest), VMLAUNCHes, and the test checks the exit reason, qualification,
// interruption and IDT-vectoring information, instruction length and the saved guest state.
// NMIs and INTR come from the test (cpu.nmi, cpu.setIntr) while the guest runs.

import { describe, expect, it } from 'vitest';
import { EBX, ECX, EAX } from '../src/cpu/constants.js';
import type { Cpu } from '../src/cpu/cpu.js';
import { CONTROL_MUST1 } from '../src/cpu/vmx/capabilities.js';
import { ENTRY, EXIT, PIN, PROC } from '../src/cpu/vmx/controls.js';
import { vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { asm, CODE_BASE, IDT_BASE, makeCpu, type Harness } from './helpers/harness.js';
import { compareOnRom, romGate } from './helpers/rom.js';
import { vmxRom } from './helpers/vmx-rom.js';
import {
  DATA, ENTRY_FAILURE_GUEST_STATE, GUEST_RSP, LABEL_INSN, LABEL_NEXT, program, rd, vmxReady, w,
} from './helpers/vmx.js';

// Controls and fields by encoding.
const PIN_CTLS = 0x4000, PROC_CTLS = 0x4002, BITMAP = 0x4004, PF_MASK = 0x4006, PF_MATCH = 0x4008,
  EXIT_CTLS = 0x400c, ENTRY_INFO = 0x4016, ENTRY_ERROR = 0x4018, ENTRY_LENGTH = 0x401a;
const REASON = 0x4402, INFO = 0x4404, ERROR = 0x4406, VECTORING = 0x4408, VECTORING_ERROR = 0x440a,
  LENGTH = 0x440c, QUALIFICATION = 0x6400;
const G_RIP = 0x681e, G_RSP = 0x681c, G_RFLAGS = 0x6820, G_INTR = 0x4824, G_ACTIVITY = 0x4826, G_PENDING = 0x6822,
  G_TIMER = 0x482e, G_IDTR_LIMIT = 0x4812;
const pin = (bits: number): string => w(PIN_CTLS, CONTROL_MUST1[PIN] | bits);
const proc = (bits: number): string => w(PROC_CTLS, CONTROL_MUST1[PROC] | bits);
const exitCtls = (bits: number): string => w(EXIT_CTLS, CONTROL_MUST1[EXIT] | bits);
const NMI_EXITING = 1 << 3, EXT_INT_EXITING = 1, VIRTUAL_NMIS = 1 << 5, TIMER = 1 << 6;
const INTERRUPT_WINDOW = 1 << 2, NMI_WINDOW = 1 << 22, MTF = 1 << 27, HLT_EXITING = 1 << 7;
const ACK_INTERRUPT = 1 << 15, SAVE_TIMER = 1 << 22;
/** Extra guest labels the host stores: MARK + 4k. */
const MARK = DATA + 0x120;
const mark = (k: number, label: string): string => `mov dword [${MARK + 4 * k}], ${label}`;

/** An interrupt gate (DPL 0) for `vector` to the guest label `handler`, written by the host. */
const gate = (vector: number, handler: string): string => `mov eax, ${handler}
  mov [${IDT_BASE + vector * 8}], ax
  mov word [${IDT_BASE + vector * 8 + 2}], 8
  mov word [${IDT_BASE + vector * 8 + 4}], 0x8e00
  shr eax, 16
  mov [${IDT_BASE + vector * 8 + 6}], ax`;

interface Options {
  host?: string;
  setup?: (h: Harness) => void;
  /** Called between run slices while the guest runs (raise NMI/INTR here). */
  inGuest?: (cpu: Cpu) => void;
}
/**
 * Runs the host program (VMCS A valid, `writes` on top, VMLAUNCH of `guest`) until the host
 * reaches its end after a VM exit (or the failed entry), in slices of virtual time so that
 * `inGuest` can raise events, and returns the machine. A halted CPU is idled as Machine.run does.
 */
function vm(writes: string[], guest: string, o: Options = {}): Harness {
  const code = asm(`${program(writes, guest, o.host ?? '')}\njmp $`, 32, CODE_BASE);
  const h = makeCpu('pm32', code);
  vmxReady(h);
  o.setup?.(h);
  const end = CODE_BASE + code.length - 2;
  for (let n = 0; n < 5000 && h.cpu.eip !== end; n++) {
    // Halted, time passes as the machine lets it: to the CPU's own wake-up (the preemption timer).
    if (h.cpu.halted && !h.cpu.canWake()) h.cpu.extraCycles += Math.min(h.cpu.wakeCycle() - h.cpu.cycles, 40);
    h.cpu.run(h.cpu.cycles + 40);
    if (h.cpu.vmx.nonRoot) o.inGuest?.(h.cpu);
  }
  expect(h.cpu.eip).toBe(end);
  return h;
}
/** An inGuest callback that raises an event once. */
const once = (raise: (cpu: Cpu) => void) => {
  let done = false;
  return (cpu: Cpu): void => {
    if (!done) raise(cpu);
    done = true;
  };
};
const rv = (h: Harness, encoding: number): number => vmcsRead(h.cpu, encoding) >>> 0;
/** Exit reason, interruption information, IDT-vectoring information. */
const exitInfo = (h: Harness): number[] => [rv(h, REASON), rv(h, INFO), rv(h, VECTORING)];

describe('exception bitmap (exit reason 0)', () => {
  it('#UD: interruption information 80000306H, the guest resumes at the faulting instruction', () => {
    const h = vm([w(BITMAP, 1 << 6)], 'guest_insn: ud2\nguest_next:');
    expect(exitInfo(h)).toEqual([0, 0x80000306, 0]);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_INSN));
    expect(rv(h, QUALIFICATION)).toBe(0);
  });
  it('#GP with its error code; the saved RFLAGS image has RF (a fault)', () => {
    const h = vm([w(BITMAP, 1 << 13)], 'mov ax, 0x1234\nguest_insn: mov ds, ax\nguest_next:');
    expect(exitInfo(h)).toEqual([0, 0x80000b0d, 0]);
    expect(rv(h, ERROR)).toBe(0x1234);
    expect(rv(h, G_RFLAGS)).toBe(0x10002);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_INSN));
  });
  it('#PF: qualification is the linear address, CR2 is not written', () => {
    const h = vm([w(BITMAP, 1 << 14)], 'guest_insn: mov eax, [0x800004]\nguest_next:', { setup: (x) => { x.cpu.cr2 = 0x5555; } });
    expect(exitInfo(h)).toEqual([0, 0x80000b0e, 0]);
    expect([rv(h, ERROR), rv(h, QUALIFICATION), h.cpu.cr2]).toEqual([0, 0x800004, 0x5555]);
  });
  it('#PF error-code mask/match: equal follows bit 14, unequal reverses it; a delivered #PF writes CR2', () => {
    const writes = [w(BITMAP, 1 << 14), w(PF_MASK, 2), w(PF_MATCH, 2), gate(14, 'pf')];
    // A read fault (error code 0) does not match: bit 14 reversed, the guest handles it.
    const read = vm(writes, 'mov eax, [0x800008]\njmp $\npf: mov ebx, cr2\nguest_insn: vmcall\nguest_next:');
    expect(rv(read, REASON)).toBe(18);
    expect([read.cpu.regs[EBX], read.cpu.cr2]).toEqual([0x800008, 0x800008]);
    // A write fault (error code 2) matches: bit 14 = 1 says exit.
    const write = vm(writes, 'guest_insn: mov [0x800008], eax\nguest_next:\njmp $\npf: vmcall');
    expect(exitInfo(write)).toEqual([0, 0x80000b0e, 0]);
    expect(rv(write, ERROR)).toBe(2);
    // Bit 14 clear with a mismatch: exit.
    const reversed = vm([w(PF_MASK, 2), w(PF_MATCH, 2), gate(14, 'pf')], 'guest_insn: mov eax, [0x800008]\nguest_next:\njmp $\npf: vmcall');
    expect(exitInfo(reversed)).toEqual([0, 0x80000b0e, 0]);
  });
  it('INT3 and INTO are software exceptions (type 6) with their instruction length; INT1 is type 5', () => {
    const int3 = vm([w(BITMAP, 1 << 3)], 'guest_insn: int3\nguest_next:');
    expect([...exitInfo(int3), rv(int3, LENGTH)]).toEqual([0, 0x80000603, 0, 1]);
    expect(rv(int3, G_RIP)).toBe(rd(int3, LABEL_INSN));
    const into = vm([w(BITMAP, 1 << 4)], 'mov al, 0x7f\nadd al, 1\nguest_insn: into\nguest_next:');
    expect([...exitInfo(into), rv(into, LENGTH)]).toEqual([0, 0x80000604, 0, 1]);
    const int1 = vm([w(BITMAP, 1 << 1)], 'guest_insn: db 0xf1\nguest_next:');
    expect([...exitInfo(int1), rv(int1, LENGTH), rv(int1, QUALIFICATION)]).toEqual([0, 0x80000501, 0, 1, 0]);
  });
  it('single-step #DB: qualification BS (DR6 format), DR6 not written, the guest resumes after the stepped instruction', () => {
    const h = vm([w(BITMAP, 1 << 1)], 'pushfd\nor dword [esp], 0x100\npopfd\nguest_insn: nop\nguest_next:');
    expect(exitInfo(h)).toEqual([0, 0x80000301, 0]);
    expect(rv(h, QUALIFICATION)).toBe(0x4000);
    expect(h.cpu.dr[6] >>> 0).toBe(0xffff0ff0);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_NEXT));
  });
  it('INT n never exits, whatever the bitmap', () => {
    const h = vm([w(BITMAP, -1), gate(0x30, 'h')], 'int 0x30\njmp $\nh:\nguest_insn: vmcall\nguest_next:');
    expect(rv(h, REASON)).toBe(18);
  });
});

describe('IDT-vectoring information (27.2.3)', () => {
  it('#GP while delivering INT n: vectoring type 4 with the instruction length', () => {
    const h = vm([w(BITMAP, 1 << 13), w(G_IDTR_LIMIT, 0xff)], 'guest_insn: int 0x30\nguest_next:');
    expect(exitInfo(h)).toEqual([0, 0x80000b0d, 0x80000430]);
    expect([rv(h, ERROR), rv(h, LENGTH)]).toEqual([0x182, 2]);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_INSN));
  });
  it('#PF while delivering an injected external interrupt: vectoring type 0', () => {
    const h = vm([w(BITMAP, 1 << 14), w(G_RFLAGS, 0x202), w(ENTRY_INFO, 0x80000040), w(G_RSP, 0x800010), gate(0x40, 'h')],
      'guest_insn: nop\nguest_next:\njmp $\nh: vmcall');
    expect(exitInfo(h)).toEqual([0, 0x80000b0e, 0x80000040]);
    expect(rv(h, ERROR)).toBe(2);
    expect(rv(h, QUALIFICATION) & ~0xfff).toBe(0x800000);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_INSN));
    expect(rv(h, ENTRY_INFO)).toBe(0x40); // every VM exit clears the valid bit
  });
  it('a #DF from two contributory faults exits directly: no vectoring information', () => {
    const h = vm([w(BITMAP, 1 << 8), w(G_IDTR_LIMIT, 0x47), w(ENTRY_INFO, 0x80000b0d), w(ENTRY_ERROR, 0)],
      'guest_insn: nop\nguest_next:');
    expect(exitInfo(h)).toEqual([0, 0x80000b08, 0]);
    expect(rv(h, ERROR)).toBe(0);
  });
  it('a fault while delivering a #DF that is not intercepted is a triple fault: exit reason 2', () => {
    const h = vm([w(G_IDTR_LIMIT, 0x3f), w(ENTRY_INFO, 0x80000b0d), w(ENTRY_ERROR, 0)], 'guest_insn: nop\nguest_next:');
    expect(exitInfo(h)).toEqual([2, 0, 0]);
    expect(h.cpu.shutdown).toBe(false);
  });
  it('an exception during the delivery of a #DF that is intercepted has the #DF as vectoring information', () => {
    const h = vm([w(BITMAP, 1 << 13), w(G_IDTR_LIMIT, 0x47), w(ENTRY_INFO, 0x80000b0a), w(ENTRY_ERROR, 0)],
      'guest_insn: nop\nguest_next:', { host: '' });
    // #TS injected: vector 10 beyond the limit, #GP(53H) is intercepted during the #TS delivery.
    expect(exitInfo(h)).toEqual([0, 0x80000b0d, 0x80000b0a]);
    expect([rv(h, ERROR), rv(h, VECTORING_ERROR)]).toEqual([0x53, 0]);
  });
});

describe('event injection (26.5)', () => {
  it('an external interrupt is delivered at the first guest instruction; the valid bit is cleared on exit', () => {
    const h = vm([w(G_RFLAGS, 0x202), w(ENTRY_INFO, 0x80000040), gate(0x40, 'h'), mark(0, 'guest')], 'nop\njmp $\nh:\nguest_insn: vmcall\nguest_next:');
    expect(rv(h, REASON)).toBe(18);
    expect(rv(h, G_RSP)).toBe(GUEST_RSP - 12);
    expect(rd(h, GUEST_RSP - 12)).toBe(rd(h, MARK));
    expect(rd(h, GUEST_RSP - 4)).toBe(0x202);
    expect(rv(h, ENTRY_INFO)).toBe(0x40);
  });
  it('a hardware exception pushes its error code; RF in the pushed RFLAGS is the guest\'s', () => {
    const h = vm([w(ENTRY_INFO, 0x80000b0d), w(ENTRY_ERROR, 0x1234), gate(13, 'h')], 'nop\njmp $\nh: pop eax\nguest_insn: vmcall\nguest_next:');
    expect([rv(h, REASON), h.cpu.regs[EAX]]).toEqual([18, 0x1234]);
    expect(rd(h, GUEST_RSP - 4)).toBe(2);
  });
  it('a software interrupt and a software exception push RIP + the VM-entry instruction length', () => {
    for (const [info, vector] of [[0x80000430, 0x30], [0x80000603, 3]]) {
      const h = vm([w(ENTRY_INFO, info), w(ENTRY_LENGTH, 2), gate(vector, 'h'), mark(0, 'guest')],
        'nop\nnop\njmp $\nh:\nguest_insn: vmcall\nguest_next:');
      expect(rv(h, REASON)).toBe(18);
      expect(rd(h, GUEST_RSP - 12)).toBe(rd(h, MARK) + 2);
    }
  });
  it('an NMI blocks NMIs (saved interruptibility bit 3)', () => {
    const h = vm([w(ENTRY_INFO, 0x80000202), gate(2, 'h')], 'nop\njmp $\nh:\nguest_insn: vmcall\nguest_next:');
    expect([rv(h, REASON), rv(h, G_INTR)]).toEqual([18, 8]);
  });
  it('injection into a halted guest wakes it', () => {
    const h = vm([w(G_ACTIVITY, 1), w(G_RFLAGS, 0x202), w(ENTRY_INFO, 0x80000040), gate(0x40, 'h')], 'nop\njmp $\nh:\nguest_insn: vmcall\nguest_next:');
    expect([rv(h, REASON), rv(h, G_ACTIVITY)]).toEqual([18, 0]);
  });
  it('a pending MTF VM exit (type 7) exits before the first guest instruction', () => {
    const h = vm([w(ENTRY_INFO, 0x80000700), mark(0, 'guest')], 'guest_insn: nop\nguest_next:');
    expect(rv(h, REASON)).toBe(37);
    expect(rv(h, G_RIP)).toBe(rd(h, MARK));
  });
  const failures: Array<[string, string[]]> = [
    ['RFLAGS.IF = 0 with an injected external interrupt', [w(ENTRY_INFO, 0x80000040)]],
    ['HLT state with an injected #GP', [w(G_ACTIVITY, 1), w(ENTRY_INFO, 0x80000b0d)]],
    ['shutdown state with an injected external interrupt', [w(G_ACTIVITY, 2), w(G_RFLAGS, 0x202), w(ENTRY_INFO, 0x80000040)]],
    ['blocking by STI with an injected external interrupt', [w(G_RFLAGS, 0x202), w(G_INTR, 1), w(ENTRY_INFO, 0x80000040)]],
    ['blocking by MOV SS with an injected NMI', [w(G_INTR, 2), w(ENTRY_INFO, 0x80000202)]],
    ['blocking by STI with an injected NMI (this model)', [w(G_RFLAGS, 0x202), w(G_INTR, 1), w(ENTRY_INFO, 0x80000202)]],
    ['virtual-NMI blocking with an injected NMI', [pin(NMI_EXITING | VIRTUAL_NMIS), w(G_INTR, 8), w(ENTRY_INFO, 0x80000202)]],
  ];
  for (const [what, writes] of failures) {
    it(`VM-entry failure (33): ${what}`, () => {
      const h = vm(writes, 'guest_insn: nop\nguest_next:');
      expect([rv(h, REASON), rv(h, QUALIFICATION)]).toEqual([ENTRY_FAILURE_GUEST_STATE >>> 0, 0]);
    });
  }
  it('the HLT state accepts an injected #DB', () => {
    const h = vm([w(G_ACTIVITY, 1), w(ENTRY_INFO, 0x80000301), gate(1, 'h')], 'guest_insn: nop\nguest_next: jmp $\nh: vmcall');
    expect(rv(h, REASON)).toBe(18);
  });
});

describe('NMIs and external interrupts (25.2)', () => {
  it('"NMI exiting": exit reason 0 with type NMI; NMIs are blocked after the exit, not in the saved state', () => {
    const h = vm([pin(NMI_EXITING)], 'guest_insn: jmp guest_insn\nguest_next:', { inGuest: once((cpu) => cpu.nmi()) });
    expect(exitInfo(h)).toEqual([0, 0x80000202, 0]);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_INSN));
    expect(rv(h, G_INTR)).toBe(0);
    expect([h.cpu.nmiBlocked, h.cpu.nmiPending]).toEqual([true, false]);
  });
  it('"external-interrupt exiting" exits even with IF = 0; without acknowledge the interrupt stays pending', () => {
    let acks = 0;
    const h = vm([pin(EXT_INT_EXITING)], 'guest_insn: jmp guest_insn\nguest_next:', {
      setup: (x) => { x.cpu.interruptAck = () => (acks++, 0x42); },
      inGuest: once((cpu) => cpu.setIntr(true)),
    });
    expect(exitInfo(h)).toEqual([1, 0, 0]);
    expect(acks).toBe(0);
    expect(h.cpu.intrLine).toBe(true);
  });
  it('"acknowledge interrupt on exit" records the vector', () => {
    let acks = 0;
    const h = vm([pin(EXT_INT_EXITING), exitCtls(ACK_INTERRUPT)], 'guest_insn: jmp guest_insn\nguest_next:', {
      setup: (x) => { x.cpu.interruptAck = () => (acks++, 0x42); },
      inGuest: once((cpu) => cpu.setIntr(true)),
    });
    expect(exitInfo(h)).toEqual([1, 0x80000042, 0]);
    expect(acks).toBe(1);
  });
  it('an external interrupt from a halted guest saves the HLT activity state and the RIP after HLT', () => {
    const h = vm([pin(EXT_INT_EXITING)], 'guest_insn: hlt\nguest_next:', { inGuest: once((cpu) => cpu.setIntr(true)) });
    expect([rv(h, REASON), rv(h, G_ACTIVITY)]).toEqual([1, 1]);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_NEXT));
  });
  it('without exiting controls, the interrupt goes through the guest IDT', () => {
    const h = vm([w(G_RFLAGS, 0x202), gate(0x42, 'h')], 'guest_insn: jmp guest_insn\nguest_next:\nh: vmcall', {
      setup: (x) => { x.cpu.interruptAck = () => 0x42; },
      inGuest: once((cpu) => cpu.setIntr(true)),
    });
    expect(rv(h, REASON)).toBe(18);
  });
});

describe('interrupt-window and NMI-window exiting, virtual NMIs', () => {
  it('interrupt window: at once with IF = 1', () => {
    const h = vm([proc(INTERRUPT_WINDOW), w(G_RFLAGS, 0x202), mark(0, 'guest')], 'guest_insn: nop\nguest_next:');
    expect(exitInfo(h)).toEqual([7, 0, 0]);
    expect(rv(h, G_RIP)).toBe(rd(h, MARK));
  });
  it('interrupt window: after the instruction that follows STI', () => {
    const h = vm([proc(INTERRUPT_WINDOW)], 'sti\nguest_insn: nop\nguest_next: nop');
    expect(rv(h, REASON)).toBe(7);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_NEXT));
    expect(rv(h, G_INTR)).toBe(0);
  });
  it('NMI window: at once without virtual-NMI blocking; after the IRET that ends it otherwise', () => {
    const writes = [pin(NMI_EXITING | VIRTUAL_NMIS), proc(NMI_WINDOW), mark(0, 'guest')];
    const open = vm(writes, 'guest_insn: nop\nguest_next:');
    expect([rv(open, REASON), rv(open, G_RIP)]).toEqual([8, rd(open, MARK)]);
    const blocked = vm([...writes, w(G_INTR, 8)], 'pushfd\npush cs\npush dword guest_next\nguest_insn: iretd\nguest_next: nop');
    expect([rv(blocked, REASON), rv(blocked, G_RIP), rv(blocked, G_INTR)]).toEqual([8, rd(blocked, LABEL_NEXT), 0]);
  });
  it('an injected virtual NMI blocks virtual NMIs until its handler\'s IRET', () => {
    const h = vm([pin(NMI_EXITING | VIRTUAL_NMIS), proc(NMI_WINDOW), w(ENTRY_INFO, 0x80000202), gate(2, 'h'), mark(0, 'guest')],
      'guest_insn: nop\nguest_next: jmp $\nh: iretd');
    expect([rv(h, REASON), rv(h, G_RIP)]).toEqual([8, rd(h, MARK)]);
  });
  it('NMI exiting without virtual NMIs: IRET leaves NMI blocking (the saved state keeps bit 3)', () => {
    const h = vm([pin(NMI_EXITING), w(G_INTR, 8)], 'pushfd\npush cs\npush dword guest_insn\niretd\nguest_insn: cpuid\nguest_next:');
    expect([rv(h, REASON), rv(h, G_INTR)]).toEqual([10, 8]);
  });
  it('blocking by MOV SS and by STI are saved for the instruction they cover', () => {
    const movSs = vm([], 'mov ax, ss\nmov ss, ax\nguest_insn: cpuid\nguest_next:');
    expect([rv(movSs, REASON), rv(movSs, G_INTR)]).toEqual([10, 2]);
    const sti = vm([], 'sti\nguest_insn: cpuid\nguest_next:');
    expect([rv(sti, REASON), rv(sti, G_INTR)]).toEqual([10, 1]);
  });
});

describe('monitor trap flag (exit reason 37)', () => {
  it('exits after each guest instruction', () => {
    const h = vm([proc(MTF)], 'guest_insn: nop\nguest_next: nop');
    expect(exitInfo(h)).toEqual([37, 0, 0]);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_NEXT));
  });
  it('exits after each iteration of a REP string instruction', () => {
    const h = vm([proc(MTF), 'mov ecx, 3', `mov edi, ${DATA + 0x400}`], 'guest_insn: rep stosb\nguest_next:');
    expect(rv(h, REASON)).toBe(37);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_INSN));
    expect(h.cpu.regs[ECX]).toBe(2);
  });
  it('overtakes a single-step trap, which it saves as a pending debug exception (BS)', () => {
    const h = vm([proc(MTF), w(G_RFLAGS, 0x102)], 'guest_insn: nop\nguest_next: nop');
    expect([rv(h, REASON), rv(h, G_PENDING)]).toEqual([37, 0x4000]);
    expect(rv(h, G_RIP)).toBe(rd(h, LABEL_NEXT));
  });
  it('after an injected event, exits before the handler\'s first instruction', () => {
    const h = vm([proc(MTF), w(G_RFLAGS, 0x202), w(ENTRY_INFO, 0x80000040), gate(0x40, 'h'), mark(0, 'h')], 'guest_insn: nop\nguest_next: jmp $\nh: nop');
    expect([rv(h, REASON), rv(h, G_RIP)]).toEqual([37, rd(h, MARK)]);
  });
  it('after a fault delivered in the guest, exits before the handler\'s first instruction', () => {
    const h = vm([proc(MTF), gate(6, 'h'), mark(0, 'h')], 'guest_insn: ud2\nguest_next: jmp $\nh: nop');
    expect([rv(h, REASON), rv(h, G_RIP)]).toEqual([37, rd(h, MARK)]);
  });
  it('after HLT, exits from the HLT state: activity HLT and the RIP after HLT saved (27.1)', () => {
    const h = vm([proc(MTF)], 'guest_insn: hlt\nguest_next: nop');
    expect([rv(h, REASON), rv(h, G_ACTIVITY), rv(h, G_RIP)]).toEqual([37, 1, rd(h, LABEL_NEXT)]);
  });
});

describe('pending debug exceptions at VM entry (26.6.3)', () => {
  const BS = 0x4000, TF_SET = 0x102, MOV_SS = 2;
  const pendingStep = [w(G_RFLAGS, TF_SET), w(G_PENDING, BS), w(BITMAP, 1 << 1)];
  it('a non-vectoring entry delivers them first: a #DB exit before the first instruction, qualification BS', () => {
    const h = vm([...pendingStep, mark(0, 'guest')], 'guest_insn: nop\nguest_next:');
    expect([...exitInfo(h), rv(h, QUALIFICATION), rv(h, G_RIP)]).toEqual([0, 0x80000301, 0, BS, rd(h, MARK)]);
  });
  it('an injected INT n under blocking by MOV SS keeps them: a #DB exit once its delivery completes', () => {
    const h = vm([...pendingStep, w(G_INTR, MOV_SS), w(ENTRY_INFO, 0x80000440), w(ENTRY_LENGTH, 2), gate(0x40, 'h'), mark(0, 'h')],
      'guest_insn: nop\nguest_next: jmp $\nh: vmcall');
    expect([...exitInfo(h), rv(h, QUALIFICATION), rv(h, G_RIP)]).toEqual([0, 0x80000301, 0, BS, rd(h, MARK)]);
  });
  it('an injected INT3 under blocking by MOV SS keeps a data breakpoint (B0 with "enabled breakpoint")', () => {
    const h = vm([w(G_PENDING, 0x1001), w(BITMAP, 1 << 1), w(G_INTR, MOV_SS), w(ENTRY_INFO, 0x80000603), w(ENTRY_LENGTH, 1),
      gate(3, 'h')], 'guest_insn: nop\nguest_next: jmp $\nh: vmcall');
    expect([...exitInfo(h), rv(h, QUALIFICATION)]).toEqual([0, 0x80000301, 0, 1]);
  });
  it('the monitor trap flag after that injection overtakes them: saved as pending debug exceptions', () => {
    const h = vm([...pendingStep, proc(MTF), w(G_INTR, MOV_SS), w(ENTRY_INFO, 0x80000440), w(ENTRY_LENGTH, 2), gate(0x40, 'h'),
      mark(0, 'h')], 'guest_insn: nop\nguest_next: jmp $\nh: vmcall');
    expect([rv(h, REASON), rv(h, G_PENDING), rv(h, G_RIP)]).toEqual([37, BS, rd(h, MARK)]);
  });
  const ignoring: Array<[string, string[]]> = [
    ['a hardware exception', [w(ENTRY_INFO, 0x80000306), gate(6, 'h')]],
    ['an external interrupt', [w(G_RFLAGS, 0x302), w(ENTRY_INFO, 0x80000040), gate(0x40, 'h')]],
    ['an NMI', [w(ENTRY_INFO, 0x80000202), gate(2, 'h')]],
    ['a privileged software exception (INT1)', [w(ENTRY_INFO, 0x80000501), w(ENTRY_LENGTH, 1), gate(1, 'h')]],
    ['a software interrupt without blocking by MOV SS (this model)', [w(ENTRY_INFO, 0x80000440), w(ENTRY_LENGTH, 2), gate(0x40, 'h')]],
  ];
  for (const [what, writes] of ignoring) {
    it(`an entry injecting ${what} ignores them: the handler runs`, () => {
      const h = vm([...pendingStep, ...writes], 'guest_insn: nop\nguest_next: jmp $\nh: vmcall');
      expect(rv(h, REASON)).toBe(18);
    });
  }
  it('a non-vectoring entry into the shutdown state ignores them: the timer exits', () => {
    const h = vm([...pendingStep, w(G_ACTIVITY, 2), pin(TIMER), w(G_TIMER, 10)], 'guest_insn: nop\nguest_next:');
    expect([rv(h, REASON), rv(h, G_ACTIVITY), rv(h, G_PENDING)]).toEqual([52, 2, 0]);
  });
});

describe('the shutdown activity state (26.6.2, 27.1)', () => {
  const shutdown = [w(G_ACTIVITY, 2), mark(0, 'guest')];
  it('an NMI with "NMI exiting" exits from it: activity shutdown and the RIP as loaded saved', () => {
    const h = vm([...shutdown, pin(NMI_EXITING)], 'guest_insn: nop\nguest_next:', { inGuest: once((cpu) => cpu.nmi()) });
    expect([...exitInfo(h), rv(h, G_ACTIVITY), rv(h, G_RIP)]).toEqual([0, 0x80000202, 0, 2, rd(h, MARK)]);
  });
  it('an NMI without "NMI exiting" is delivered through the guest IDT and ends it', () => {
    const h = vm([...shutdown, gate(2, 'h')], 'guest_insn: nop\nguest_next: jmp $\nh: vmcall', { inGuest: once((cpu) => cpu.nmi()) });
    expect([rv(h, REASON), rv(h, G_ACTIVITY), rv(h, G_INTR)]).toEqual([18, 0, 8]);
    expect(rd(h, GUEST_RSP - 12)).toBe(rd(h, MARK)); // the NMI's return address: the loaded RIP
  });
  it('external interrupts do not end it, even with "external-interrupt exiting"; the preemption timer does', () => {
    const h = vm([...shutdown, pin(EXT_INT_EXITING | TIMER), w(G_TIMER, 20), w(G_RFLAGS, 0x202), proc(INTERRUPT_WINDOW)],
      'guest_insn: nop\nguest_next:', { inGuest: once((cpu) => cpu.setIntr(true)) });
    expect([rv(h, REASON), rv(h, G_ACTIVITY)]).toEqual([52, 2]);
    expect(h.cpu.intrLine).toBe(true);
  });
  it('NMI-window exiting ends it (26.6.6)', () => {
    const h = vm([...shutdown, pin(NMI_EXITING | VIRTUAL_NMIS), proc(NMI_WINDOW)], 'guest_insn: nop\nguest_next:');
    expect([rv(h, REASON), rv(h, G_ACTIVITY), rv(h, G_RIP)]).toEqual([8, 2, rd(h, MARK)]);
  });
  it('is in CPU snapshots: a restored guest is still shut down', () => {
    const code = asm(`${program([...shutdown, pin(NMI_EXITING)], 'guest_insn: nop\nguest_next:')}\njmp $`, 32, CODE_BASE);
    const h = makeCpu('pm32', code);
    vmxReady(h);
    while (!h.cpu.vmx.nonRoot) h.cpu.run(h.cpu.cycles + 1);
    const snap = JSON.parse(JSON.stringify(h.cpu.saveState()));
    h.cpu.restoreState(snap);
    expect([h.cpu.vmx.events.shutdown, h.cpu.halted, h.cpu.canWake(), h.cpu.interruptsCanWake()]).toEqual([true, true, false, false]);
  });
});

describe('VMX-preemption timer (exit reason 52)', () => {
  it('a value of 0 exits before the first guest instruction', () => {
    const h = vm([pin(TIMER), w(G_TIMER, 0), mark(0, 'guest')], 'guest_insn: nop\nguest_next:');
    expect([rv(h, REASON), rv(h, G_RIP)]).toEqual([52, rd(h, MARK)]);
  });
  it('counts down at virtual cycles >> 5 and saves 0 when it expires', () => {
    let entered = -1;
    const h = vm([pin(TIMER), w(G_TIMER, 100), exitCtls(SAVE_TIMER)], 'guest_insn: inc esi\njmp guest_insn\nguest_next:', {
      inGuest: (cpu) => { if (entered < 0) entered = cpu.cycles; },
    });
    expect([rv(h, REASON), rv(h, G_TIMER)]).toEqual([52, 0]);
    expect(h.cpu.regs[6]).toBeGreaterThan(3000 / 2 - 64); // the loop ran about 100 * 32 instructions
    expect(h.cpu.regs[6]).toBeLessThanOrEqual(3200 / 2);
  });
  it('another exit saves the remaining value', () => {
    const h = vm([pin(TIMER), w(G_TIMER, 1000), exitCtls(SAVE_TIMER), 'mov esi, 0'],
      'l: inc esi\ncmp esi, 320\njne l\nguest_insn: cpuid\nguest_next:');
    expect(rv(h, REASON)).toBe(10);
    // 320 iterations of 3 instructions: about 960 cycles, 30 timer ticks.
    expect(rv(h, G_TIMER)).toBeGreaterThanOrEqual(969);
    expect(rv(h, G_TIMER)).toBeLessThanOrEqual(971);
  });
  it('wakes a halted guest: activity state HLT, RIP after HLT', () => {
    const h = vm([pin(TIMER), w(G_TIMER, 10)], 'guest_insn: hlt\nguest_next:');
    expect([rv(h, REASON), rv(h, G_ACTIVITY), rv(h, G_RIP)]).toEqual([52, 1, rd(h, LABEL_NEXT)]);
  });
  it('the timer and a pending MTF exit are in CPU snapshots: a restored run exits at the same cycle', () => {
    const code = asm(`${program([pin(TIMER), w(G_TIMER, 50)], 'guest_insn: inc esi\njmp guest_insn\nguest_next:')}\njmp $`, 32, CODE_BASE);
    const h = makeCpu('pm32', code);
    vmxReady(h);
    while (!h.cpu.vmx.nonRoot) h.cpu.run(h.cpu.cycles + 1);
    h.cpu.run(h.cpu.cycles + 100);
    const snap = JSON.parse(JSON.stringify(h.cpu.saveState()));
    const until = (): number => {
      while (h.cpu.vmx.nonRoot) h.cpu.run(h.cpu.cycles + 7);
      return h.cpu.cycles;
    };
    const first = until();
    h.cpu.restoreState(snap);
    expect(h.cpu.vmx.nonRoot).toBe(true);
    expect(until()).toBe(first);
    expect(rv(h, REASON)).toBe(52);
  });
});

describe('controls this slice implements are accepted', () => {
  it('HLT exiting still takes precedence over the HLT state', () => {
    const h = vm([proc(HLT_EXITING | INTERRUPT_WINDOW)], 'guest_insn: hlt\nguest_next:');
    expect(rv(h, REASON)).toBe(12);
  });
  it('all pin-based controls, the window controls, MTF and the exit controls enter', () => {
    const h = vm([pin(EXT_INT_EXITING | NMI_EXITING | VIRTUAL_NMIS | TIMER), w(G_TIMER, 1000),
      proc(MTF), exitCtls(ACK_INTERRUPT | SAVE_TIMER), w(BITMAP, -1), w(0x4012, CONTROL_MUST1[ENTRY])], 'guest_insn: nop\nguest_next:');
    expect(rv(h, REASON)).toBe(37);
  });
});

/**
 * The event exits on a ROM, checked against Bochs's Core Duo model: each case is FLAT_GUEST
 * (helpers/vmx-rom.ts: a flat guest with IDTR limit 0, so any delivery in the guest faults) with
 * its controls, guest code and injected event; the host prints the exit reason, interruption
 * information, its error code, IDT-vectoring information and the qualification, then what the
 * case adds. The APIC page is mapped for the self-IPIs (NMI, fixed vector 50H) of the last cases.
 */
const EVENTS_ROM = vmxRom(`%define NEXT 0x3000
%macro CASE 1 ; guest label: FLAT_GUEST starting at it, no exception exits
  FLAT_GUEST
  W 0x681e, %1
  W 0x4004, 0
%endmacro
  mov dword [0x20000 + 0x3fb * 4], 0xfec00083
  mov dword [0xfee000f0], 0x1ff
  FLAGS {vmxon [PTR]}
  CASE g_ud
  W 0x4004, 1 << 6
  LAUNCH
  CASE g_gp
  W 0x4004, 1 << 13
  LAUNCH
  PRINT 0x6820
  mov eax, 0x5555
  mov cr2, eax
  CASE g_pf
  W 0x4004, 1 << 14
  LAUNCH
  mov eax, cr2
  call hex
  CASE g_int3
  W 0x4004, 1 << 3
  LAUNCH
  PRINT 0x440c
  CASE g_int
  W 0x4004, 1 << 13
  LAUNCH
  PRINT 0x440c
  CASE g_nop
  W 0x4004, 1 << 13
  W 0x6820, 0x202
  W 0x4016, 0x80000040
  LAUNCH
  CASE g_nop
  W 0x4004, 1 << 8
  W 0x4016, 0x80000b0d
  W 0x4018, 0
  LAUNCH
  CASE g_nop
  W 0x4016, 0x80000b0d
  W 0x4018, 0
  LAUNCH
  CASE g_nop
  OR 0x4002, 1 << 2
  W 0x6820, 0x202
  LAUNCH
  ; an injected external interrupt through a gate at 2000H to g_cpuid
${romGate('0x40', 'g_cpuid', '8', '0x8e00')}
  CASE g_nop
  W 0x6818, 0x2000
  W 0x4812, 0x7ff
  W 0x6820, 0x202
  W 0x4016, 0x80000040
  LAUNCH
  PRINT 0x681c
  mov eax, [0x7000 - 12]
  sub eax, g_nop
  call hex
  CASE g_nmi
  OR 0x4000, 1 << 3
  LAUNCH
  CASE g_fixed
  OR 0x4000, 1
  OR 0x400c, 1 << 15
  W 0x6820, 0x202
  LAUNCH
  jmp rom_done
guest:
g_ud:
  ud2
g_gp:
  mov ax, 0x1234
  mov ds, ax
g_pf:
  mov eax, [0x800004]
g_int3:
  int3
g_int:
  int 0x30
g_nop:
  nop
  jmp $
g_cpuid:
  cpuid
g_nmi:
  mov dword [0xfee00300], 0x84400
  jmp $
g_fixed:
  mov dword [0xfee00300], 0x44050
  jmp $
host:
  PRINT 0x4402
  PRINT 0x4404
  PRINT 0x4406
  PRINT 0x4408
  PRINT 0x6400
  jmp [NEXT]
rom_done:
`);
const EVENTS_ROM_EXPECTED = [
  '00000000', // VMXON
  '00000000', '80000306', '00000000', '00000000', '00000000', // #UD
  '00000000', '80000B0D', '00001234', '00000000', '00000000', '00010002', // #GP (+ RFLAGS)
  '00000000', '80000B0E', '00000000', '00000000', '00800004', '00005555', // #PF (+ CR2)
  '00000000', '80000603', '00000000', '00000000', '00000000', '00000001', // INT3 (+ length)
  '00000000', '80000B0D', '00000182', '80000430', '00000000', '00000002', // INT n, #GP in delivery (+ length)
  '00000000', '80000B0D', '00000203', '80000040', '00000000', // injected INTR, #GP in delivery
  '00000000', '80000B08', '00000000', '00000000', '00000000', // #DF
  '00000002', '00000000', '00000000', '00000000', '00000000', // triple fault
  '00000007', '00000000', '00000000', '00000000', '00000000', // interrupt window
  '0000000A', '00000000', '00000000', '00000000', '00000000', '00006FF4', '00000000', // injected INTR delivered (+ RSP, pushed EIP - RIP)
  '00000000', '80000202', '00000000', '00000000', '00000000', // NMI exiting (APIC self NMI)
  '00000001', '80000050', '00000000', '00000000', '00000000', // INTR exiting + ack (APIC self IPI)
  '00000000', // VMXOFF
];
compareOnRom('event exits on a ROM', EVENTS_ROM, EVENTS_ROM_EXPECTED);

/**
 * The monitor trap flag, the VMX-preemption timer, virtual NMIs and the NMI window, pending debug
 * exceptions at VM entry and the shutdown activity state on a ROM, checked against Bochs's
 * Westmere model (its Core Duo has none of them). Each case is FLAT_GUEST with a guest IDT at
 * 2000H (gates for #UD, NMI and 40H) and its controls; the host prints the exit reason,
 * interruption information, IDT-vectoring information, qualification, saved RIP (as an offset
 * from the label guest), interruptibility, activity state and pending debug exceptions, then what
 * the case adds. Timer values only as comparisons: Bochs's timer counts its own ticks at rate 0.
 */
const WESTMERE_EVENTS_ROM = vmxRom(`%define NEXT 0x3000
%define SAVED_ECX 0x3004
%macro CASE 1 ; guest label: FLAT_GUEST starting at it, guest IDT at 2000H (limit 7FFH)
  FLAT_GUEST
  W 0x681e, %1
  W 0x6818, 0x2000
  W 0x4812, 0x7ff
  W 0x4824, 0
  W 0x4826, 0
  W 0x6822, 0
  W 0x4004, 0
%endmacro
%macro GATE 2 ; vector, guest label
  mov eax, %2
  mov [0x2000 + %1 * 8], ax
  mov word [0x2002 + %1 * 8], 8
  mov word [0x2004 + %1 * 8], 0x8e00
  shr eax, 16
  mov [0x2006 + %1 * 8], ax
%endmacro
  mov dword [0x20000 + 0x3fb * 4], 0xfec00083
  mov dword [0xfee000f0], 0x1ff
  GATE 0x40, g_handler
  GATE 6, g_handler
  GATE 2, g_iret
  FLAGS {vmxon [PTR]}
  ; 1 MTF after one instruction
  CASE g_nop2
  OR 0x4002, 1 << 27
  LAUNCH
  ; 2 MTF after the first iteration of REP STOSB (ECX 3 -> 2, RIP at the instruction)
  CASE g_rep
  OR 0x4002, 1 << 27
  LAUNCH
  mov eax, [SAVED_ECX]
  call hex
  ; 3 MTF overtakes a single-step trap: pending debug exceptions BS
  CASE g_nop2
  OR 0x4002, 1 << 27
  W 0x6820, 0x102
  LAUNCH
  ; 4 MTF after an injected external interrupt: before the handler's first instruction
  CASE g_nop2
  OR 0x4002, 1 << 27
  W 0x6820, 0x202
  W 0x4016, 0x80000040
  LAUNCH
  PRINT 0x681c
  ; 5 MTF after a fault delivered in the guest (#UD): before the handler's first instruction
  CASE g_ud
  OR 0x4002, 1 << 27
  LAUNCH
  ; 6 MTF after HLT
  CASE g_hlt
  OR 0x4002, 1 << 27
  LAUNCH
  ; 7 MTF after STI, after MOV SS: blocking by STI, by MOV SS saved
  CASE g_sti
  OR 0x4002, 1 << 27
  LAUNCH
  CASE g_movss
  OR 0x4002, 1 << 27
  LAUNCH
  ; 8 injected pending MTF VM exit (type 7) without the control
  CASE g_nop2
  W 0x4016, 0x80000700
  LAUNCH
  ; 9 preemption timer 0: exits before the first instruction, saves 0
  CASE g_nop2
  OR 0x4000, 1 << 6
  OR 0x400c, 1 << 22
  W 0x482e, 0
  LAUNCH
  PRINT 0x482e
  ; 10 preemption timer 0 with an injected interrupt: after the injection
  CASE g_nop2
  OR 0x4000, 1 << 6
  W 0x482e, 0
  W 0x6820, 0x202
  W 0x4016, 0x80000040
  LAUNCH
  ; 11 a large value: the guest's CPUID exits first; the saved value decreased (1) and is not 0 (1)
  CASE g_loop
  OR 0x4000, 1 << 6
  OR 0x400c, 1 << 22
  W 0x482e, 0x10000000
  LAUNCH
  mov ebx, 0x482e
  vmread ecx, ebx
  xor eax, eax
  cmp ecx, 0x10000000
  setb al
  call hex
  xor eax, eax
  test ecx, ecx
  setnz al
  call hex
  ; 12 the timer wakes a halted guest: activity HLT saved, RIP after HLT
  CASE g_hlt
  OR 0x4000, 1 << 6
  W 0x482e, 0x100
  LAUNCH
  ; 13 the timer with activity state HLT at entry
  CASE g_nop2
  OR 0x4000, 1 << 6
  W 0x482e, 0x100
  W 0x4826, 1
  LAUNCH
  ; 14 NMI window, no virtual-NMI blocking: at once
  CASE g_nop2
  OR 0x4000, (1 << 3) | (1 << 5)
  OR 0x4002, 1 << 22
  LAUNCH
  ; 15 NMI window after the IRET that ends virtual-NMI blocking
  CASE g_iret
  OR 0x4000, (1 << 3) | (1 << 5)
  OR 0x4002, 1 << 22
  W 0x4824, 8
  LAUNCH
  ; 16 an injected virtual NMI blocks virtual NMIs: its handler's CPUID exits with bit 3 saved
  CASE g_nop2
  OR 0x4000, (1 << 3) | (1 << 5)
  W 0x4016, 0x80000202
  GATE 2, g_cpuid
  LAUNCH
  ; 17 ... and the NMI window opens after its handler's IRET
  CASE g_nop2
  OR 0x4000, (1 << 3) | (1 << 5)
  OR 0x4002, 1 << 22
  W 0x4016, 0x80000202
  GATE 2, g_iret
  LAUNCH
  ; 18 an IRET that ends virtual-NMI blocking and faults: #GP exit with bit 12 (NMI unblocking due to IRET)
  CASE g_badiret
  OR 0x4000, (1 << 3) | (1 << 5)
  W 0x4824, 8
  W 0x4004, 1 << 13
  LAUNCH
  ; 19 NMI exiting with virtual NMIs (APIC self NMI): no virtual-NMI blocking saved
  CASE g_nmi
  OR 0x4000, (1 << 3) | (1 << 5)
  LAUNCH
  ; 20 the NMI window with activity state HLT at entry
  CASE g_nop2
  OR 0x4000, (1 << 3) | (1 << 5)
  OR 0x4002, 1 << 22
  W 0x4826, 1
  LAUNCH
  ; 21 pending BS with TF = 1, #DB intercepted: a #DB exit before the first instruction
  CASE g_nop2
  W 0x6820, 0x102
  W 0x6822, 0x4000
  W 0x4004, 1 << 1
  LAUNCH
  ; 22 ... under blocking by MOV SS: after the first instruction
  CASE g_nop2
  W 0x6820, 0x102
  W 0x6822, 0x4000
  W 0x4824, 2
  W 0x4004, 1 << 1
  LAUNCH
  ; 23 ... with an injected hardware exception (#UD): ignored, the handler's CPUID exits
  CASE g_nop2
  W 0x6820, 0x102
  W 0x6822, 0x4000
  W 0x4004, 1 << 1
  W 0x4016, 0x80000306
  LAUNCH
  ; 24 ... with an injected INT 40H under blocking by MOV SS: kept, a #DB exit at the handler
  CASE g_nop2
  W 0x6820, 0x102
  W 0x6822, 0x4000
  W 0x4824, 2
  W 0x4004, 1 << 1
  W 0x4016, 0x80000440
  W 0x401a, 2
  LAUNCH
  ; 25 activity state shutdown: the preemption timer exits, activity shutdown saved
  CASE g_nop2
  OR 0x4000, 1 << 6
  W 0x482e, 0x100
  W 0x4826, 2
  LAUNCH
  ; 26 activity state shutdown: the NMI window exits
  CASE g_nop2
  OR 0x4000, (1 << 3) | (1 << 5)
  OR 0x4002, 1 << 22
  W 0x4826, 2
  LAUNCH
  ; 27 activity state shutdown with an injected NMI: active, the handler's CPUID exits, NMIs blocked
  CASE g_nop2
  W 0x4826, 2
  W 0x4016, 0x80000202
  GATE 2, g_handler
  LAUNCH
  ; 28 activity state shutdown with pending BS (TF = 1) and #DB intercepted: ignored, the timer exits
  CASE g_nop2
  OR 0x4000, 1 << 6
  W 0x482e, 0x100
  W 0x4826, 2
  W 0x6820, 0x102
  W 0x6822, 0x4000
  W 0x4004, 1 << 1
  LAUNCH
  ; 29 MTF after an injected interrupt with timer 0: the MTF exit comes first
  CASE g_nop2
  OR 0x4000, 1 << 6
  OR 0x4002, 1 << 27
  W 0x482e, 0
  W 0x6820, 0x202
  W 0x4016, 0x80000040
  LAUNCH
  ; 30 pending BS (TF = 1) with timer 0, #DB not intercepted: the #DB is delivered first, then the timer exits at the handler
  CASE g_nop2
  OR 0x4000, 1 << 6
  W 0x482e, 0
  W 0x6820, 0x102
  W 0x6822, 0x4000
  GATE 1, g_handler
  LAUNCH
  jmp rom_done
guest:
g_nop2:
  nop
  nop
  jmp $
g_rep:
  mov ecx, 3
  mov edi, 0x5000
g_rep_insn:
  rep stosb
  jmp $
g_ud:
  ud2
g_hlt:
  hlt
  jmp $
g_sti:
  sti
  nop
  jmp $
g_movss:
  mov ss, [cs:g_ss_value]
  nop
  jmp $
g_loop:
  mov ecx, 100
.l:
  loop .l
g_cpuid:
  cpuid
  jmp $
g_iret:
  pushfd
  push cs
  push dword g_after_iret
  iretd
g_after_iret:
  nop
  jmp $
g_badiret:
  pushfd
  push dword 0x55
  push dword g_after_iret
  iretd
g_nmi:
  mov dword [0xfee00300], 0x84400
  jmp $
g_ss_value:
  dw 0x10
g_handler:
  nop
  cpuid
  jmp $
host:
  mov [SAVED_ECX], ecx
  PRINT 0x4402
  PRINT 0x4404
  PRINT 0x4408
  PRINT 0x6400
  mov ebx, 0x681e
  vmread eax, ebx
  sub eax, guest
  call hex
  PRINT 0x4824
  PRINT 0x4826
  PRINT 0x6822
  jmp [NEXT]
rom_done:
`);
/** One case's eight host lines (then its extra lines). */
const row = (reason: number, info: number, vectoring: number, qualification: number, rip: number, intr: number,
  activity: number, pending: number, ...extra: number[]): string[] =>
  [reason, info, vectoring, qualification, rip, intr, activity, pending, ...extra].map((v) => (v >>> 0).toString(16).toUpperCase().padStart(8, '0'));
/** The two cases where Bochs differs (docs/VMX.md "Differences from Bochs (events)"): trapdiff's rows, then Bochs's. */
const INT_UNDER_MOV_SS = row(0, 0x80000301, 0, 0x4000, 0x52, 0, 0, 0), INT_UNDER_MOV_SS_BOCHS = row(10, 0, 0, 0, 0x53, 0, 0, 0);
const SHUTDOWN_PENDING_BS = row(52, 0, 0, 0, 0, 0, 2, 0), SHUTDOWN_PENDING_BS_BOCHS = row(0, 0x80000301, 0, 0x4000, 0, 0, 2, 0);
const westmereExpected = (intUnderMovSs: string[], shutdownPendingBs: string[]): string[] => [
  '00000000', // VMXON
  ...row(37, 0, 0, 0, 0x01, 0, 0, 0), // MTF after one instruction
  ...row(37, 0, 0, 0, 0x09, 0, 0, 0, 3), // MTF after the first REP STOSB iteration (+ ECX)
  ...row(37, 0, 0, 0, 0x01, 0, 0, 0x4000), // MTF overtakes a single-step trap: pending BS
  ...row(37, 0, 0, 0, 0x52, 0, 0, 0, 0x6ff4), // MTF after an injected interrupt, at its handler (+ RSP)
  ...row(37, 0, 0, 0, 0x52, 0, 0, 0), // MTF after a #UD delivered in the guest, at its handler
  ...row(37, 0, 0, 0, 0x15, 0, 1, 0), // MTF after HLT: activity HLT, RIP after HLT
  ...row(37, 0, 0, 0, 0x18, 1, 0, 0), // MTF after STI: blocking by STI
  ...row(37, 0, 0, 0, 0x22, 2, 0, 0), // MTF after MOV SS: blocking by MOV SS
  ...row(37, 0, 0, 0, 0x00, 0, 0, 0), // an injected pending MTF VM exit (type 7), the control 0
  ...row(52, 0, 0, 0, 0x00, 0, 0, 0, 0), // timer 0: before the first instruction (+ saved value)
  ...row(52, 0, 0, 0, 0x52, 0, 0, 0), // timer 0 with an injected interrupt: after its delivery
  ...row(10, 0, 0, 0, 0x2c, 0, 0, 0, 1, 1), // a large timer value: CPUID first (+ saved value decreased, not 0)
  ...row(52, 0, 0, 0, 0x15, 0, 1, 0), // the timer wakes HLT
  ...row(52, 0, 0, 0, 0x00, 0, 1, 0), // the timer, activity HLT at entry
  ...row(8, 0, 0, 0, 0x00, 0, 0, 0), // NMI window, no virtual-NMI blocking: at once
  ...row(8, 0, 0, 0, 0x38, 0, 0, 0), // NMI window after the IRET that ends virtual-NMI blocking
  ...row(10, 0, 0, 0, 0x2c, 8, 0, 0), // an injected virtual NMI: its handler's CPUID saves bit 3
  ...row(8, 0, 0, 0, 0x38, 0, 0, 0), // NMI window after the injected NMI's IRET
  ...row(0, 0x80001b0d, 0, 0, 0x43, 0, 0, 0), // a faulting IRET that ended virtual-NMI blocking: bit 12
  ...row(0, 0x80000202, 0, 0, 0x4e, 0, 0, 0), // NMI exiting with virtual NMIs (APIC self NMI): no bit 3
  ...row(8, 0, 0, 0, 0x00, 0, 1, 0), // NMI window, activity HLT at entry
  ...row(0, 0x80000301, 0, 0x4000, 0x00, 0, 0, 0), // pending BS: a #DB exit first
  ...row(0, 0x80000301, 0, 0x4000, 0x01, 0, 0, 0), // pending BS under blocking by MOV SS: after one instruction
  ...row(10, 0, 0, 0, 0x53, 0, 0, 0), // pending BS with an injected #UD: ignored
  ...intUnderMovSs, // pending BS with an injected INT 40H under blocking by MOV SS
  ...row(52, 0, 0, 0, 0x00, 0, 2, 0), // shutdown: the timer exits, activity shutdown
  ...row(8, 0, 0, 0, 0x00, 0, 2, 0), // shutdown: the NMI window exits
  ...row(10, 0, 0, 0, 0x53, 8, 0, 0), // shutdown with an injected NMI: active, NMIs blocked
  ...shutdownPendingBs, // shutdown with pending BS: ignored, the timer exits
  ...row(37, 0, 0, 0, 0x52, 0, 0, 0), // MTF after an injected interrupt with timer 0: the MTF exit first
  ...row(52, 0, 0, 0, 0x52, 0, 0, 0), // pending BS with timer 0: the #DB delivered first, the timer exits at its handler
  '00000000', // VMXOFF
];
compareOnRom('MTF, preemption timer, virtual NMIs, pending debug exceptions, shutdown state on a ROM (Westmere)',
  WESTMERE_EVENTS_ROM, westmereExpected(INT_UNDER_MOV_SS, SHUTDOWN_PENDING_BS), {
    title: 'Bochs (Westmere model) differs as documented', model: 'corei5_arrandale_m520',
    expected: westmereExpected(INT_UNDER_MOV_SS_BOCHS, SHUTDOWN_PENDING_BS_BOCHS),
  });
