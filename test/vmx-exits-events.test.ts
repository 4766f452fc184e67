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
import { compareOnRom } from './helpers/rom.js';
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
  const once = (raise: (cpu: Cpu) => void) => {
    let done = false;
    return (cpu: Cpu) => {
      if (!done) raise(cpu);
      done = true;
    };
  };
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
  mov eax, g_cpuid
  mov [0x2000 + 0x40 * 8], ax
  mov word [0x2002 + 0x40 * 8], 8
  mov word [0x2004 + 0x40 * 8], 0x8e00
  shr eax, 16
  mov [0x2006 + 0x40 * 8], ax
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
