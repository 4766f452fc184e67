// Exception and interrupt delivery: real-mode IVT, protected-mode interrupt/trap gates at the same
// and an inner privilege level (exact frames), every gate error code, double and triple fault,
// NMI blocking, INTR with IF and the STI / MOV SS shadows.

import { describe, expect, it } from 'vitest';
import { EXC_DF, EXC_GP, EXC_NP, EXC_PF, EXC_SS, EXC_TS, EXC_UD, IF, RF } from '../src/cpu/constants.js';
import { EV_EXTERNAL, EV_NMI, EV_PRIVSW, EV_SOFTWARE } from '../src/cpu/interrupts.js';
import { asm, CODE_BASE, makeCpu, runToHlt, SEL, STACK_TOP, step, type Harness } from './helpers/harness.js';
import { dword, enterRing3, gate, HANDLER, INT_GATE, record, setupTss, TRAP_GATE, TSS_BASE, TSS_SEL, withHandler } from './helpers/idt.js';
import { segDescriptor, setGdt } from './helpers/segments.js';
import { compareOnRom, GDT_FLAT_R0, GDT_FLAT_R3, GDT_TSS, ROM_HEX, romClearIdt, romEnd, romFaultGates, romFaultStubs, romFlatSegments, romIretToRing3, romIretToV86, romLoadTss, romPrint, romReportAndResume, romShutdown, romStart } from './helpers/rom.js';

const word = (h: Harness, a: number) => h.mem.view.getUint16(a, true);

describe('real mode', () => {
  it('INT n pushes FLAGS, CS, IP, clears IF and vectors through the IVT', () => {
    const h = makeCpu('real', asm('int 0x21\nhlt\ntimes 0x100-($-$$) db 0\nhlt', 16, 0));
    h.mem.view.setUint16(0x21 * 4, 0x100, true);
    h.mem.view.setUint16(0x21 * 4 + 2, 0x1000, true);
    h.cpu.setEflags(0x2 | IF | 0x0cd5 /* arithmetic flags, DF */);
    runToHlt(h.cpu);
    const sp = STACK_TOP - 6;
    expect(h.cpu.regs[4]).toBe(sp);
    expect(word(h, sp)).toBe(2); // IP after INT 21h
    expect(word(h, sp + 2)).toBe(0x1000);
    expect(word(h, sp + 4)).toBe(0x2 | IF | 0x0cd5);
    expect(h.cpu.eip).toBe(0x101);
    expect(h.cpu.getEflags() & IF).toBe(0);
  });

  it('IRET returns and restores FLAGS', () => {
    const h = makeCpu('real', asm('int 0x21\nhlt\ntimes 0x100-($-$$) db 0\niret', 16, 0));
    h.mem.view.setUint16(0x21 * 4, 0x100, true);
    h.mem.view.setUint16(0x21 * 4 + 2, 0x1000, true);
    h.cpu.setEflags(0x2 | IF);
    runToHlt(h.cpu);
    expect(h.cpu.eip).toBe(3);
    expect(h.cpu.regs[4]).toBe(STACK_TOP);
    expect(h.cpu.getEflags() & IF).toBe(IF);
    expect(h.cpu.icount).toBe(3);
  });

  it('an exception uses the IVT without an error code', () => {
    const h = makeCpu('real', asm('ud2\ntimes 0x100-($-$$) db 0\nhlt', 16, 0));
    h.mem.view.setUint16(EXC_UD * 4, 0x100, true);
    h.mem.view.setUint16(EXC_UD * 4 + 2, 0x1000, true);
    runToHlt(h.cpu);
    expect(h.cpu.regs[4]).toBe(STACK_TOP - 6);
    expect(word(h, STACK_TOP - 6)).toBe(0); // the faulting UD2
  });

  it('a vector beyond the IVT limit escalates to a triple fault (shutdown)', () => {
    const h = makeCpu('real', asm('int 0x21\nhlt', 16, 0));
    const r = record(h.cpu);
    h.cpu.idtrLimit = 0x20;
    runToHlt(h.cpu);
    expect(h.cpu.shutdown).toBe(true);
    expect(r.shutdowns).toBe(1);
    expect(r.exceptions).toEqual([[EXC_GP, 0], [EXC_DF, 0]]);
  });
});

describe('protected mode, same privilege', () => {
  it('interrupt gate: EFLAGS, CS, EIP frame; IF cleared', () => {
    const h = withHandler('sti\nint 0x40\nhlt');
    gate(h, 0x40, SEL.code32, HANDLER, INT_GATE);
    runToHlt(h.cpu);
    const esp = STACK_TOP - 12;
    expect(h.cpu.regs[4]).toBe(esp);
    expect(dword(h, esp)).toBe(CODE_BASE + 3);
    expect(dword(h, esp + 4)).toBe(SEL.code32);
    expect(dword(h, esp + 8) & IF).toBe(IF);
    expect(h.cpu.getEflags() & IF).toBe(0);
    expect(h.cpu.eip).toBe(HANDLER + 1);
  });

  it('trap gate keeps IF; IRET returns to the caller', () => {
    const h = withHandler('sti\nint 0x40\nhlt', 'iret');
    const r = record(h.cpu);
    gate(h, 0x40, SEL.code32, HANDLER, TRAP_GATE);
    step(h.cpu, 2);
    expect(h.cpu.getEflags() & IF).toBe(IF);
    expect(h.cpu.eip).toBe(HANDLER);
    runToHlt(h.cpu);
    expect(h.cpu.eip).toBe(CODE_BASE + 4);
    expect(h.cpu.regs[4]).toBe(STACK_TOP);
    expect(r.interrupts).toEqual([[0x40, EV_SOFTWARE]]);
  });

  it('a fault pushes its error code and RF in the EFLAGS image', () => {
    const h = withHandler('mov ax, 0x5c\nmov ds, ax\nhlt');
    gate(h, EXC_GP, SEL.code32, HANDLER);
    runToHlt(h.cpu);
    const esp = STACK_TOP - 16;
    expect(dword(h, esp)).toBe(0x5c); // #GP(selector) for an index beyond the GDT limit
    expect(dword(h, esp + 4)).toBe(CODE_BASE + 4); // the faulting MOV DS
    expect(dword(h, esp + 12) & RF).toBe(RF);
  });
});

describe('protected mode, ring 3 to ring 0', () => {
  function ring3(main: string): Harness {
    const h = withHandler(main);
    setupTss(h, 0x8000);
    enterRing3(h.cpu, CODE_BASE, 0x7000);
    return h;
  }

  it('switches to SS0:ESP0 and pushes SS, ESP, EFLAGS, CS, EIP, error code', () => {
    const h = ring3('hlt');
    gate(h, EXC_GP, SEL.code32, HANDLER);
    h.cpu.setEflags(0x2 | 0x8d5);
    runToHlt(h.cpu);
    expect(h.cpu.cpl).toBe(0);
    expect(h.cpu.seg[2]).toBe(SEL.data32);
    const esp = 0x8000 - 24;
    expect(h.cpu.regs[4]).toBe(esp);
    expect([0, 4, 8, 12, 16, 20].map((k) => dword(h, esp + k))).toEqual([
      0, CODE_BASE, SEL.code32r3, 0x2 | 0x8d5 | RF, 0x7000, SEL.data32r3,
    ]);
    expect(h.cpu.seg[1]).toBe(SEL.code32);
  });

  it('IRET to ring 3 restores SS:ESP and nulls data segments ring 3 may not use', () => {
    const h = ring3('int 0x40\nhlt');
    h.mem.ram.set(asm('mov ax, 0x10\nmov ds, ax\niret', 32, HANDLER), HANDLER - CODE_BASE + CODE_BASE);
    gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 3);
    gate(h, EXC_GP, SEL.code32, HANDLER + 0x80);
    h.mem.ram[HANDLER + 0x80] = 0xf4;
    step(h.cpu, 4);
    expect(h.cpu.cpl).toBe(3);
    expect(h.cpu.eip).toBe(CODE_BASE + 2);
    expect(h.cpu.regs[4]).toBe(0x7000);
    expect(h.cpu.seg[2]).toBe(SEL.data32r3);
    expect(h.cpu.seg[3]).toBe(0); // DS (DPL 0) became null
  });

  const cases: Array<[string, (h: Harness) => void, number, number]> = [
    ['SS0 null: #TS(0)', (h) => h.mem.view.setUint16(TSS_BASE + 8, 0, true), EXC_TS, 0],
    ['SS0 RPL != 0: #TS(SS0)', (h) => h.mem.view.setUint16(TSS_BASE + 8, SEL.data32 | 1, true), EXC_TS, SEL.data32],
    ['SS0 is code: #TS(SS0)', (h) => h.mem.view.setUint16(TSS_BASE + 8, SEL.code32, true), EXC_TS, SEL.code32],
    ['SS0 DPL 3: #TS(SS0)', (h) => h.mem.view.setUint16(TSS_BASE + 8, SEL.data32r3 & ~3, true), EXC_TS, SEL.data32r3 & ~3],
    ['SS0 not present: #SS(SS0)', (h) => {
      setGdt(h.cpu, 8, segDescriptor(0, 0xfffff, 0x13, 0xc));
      h.mem.view.setUint16(TSS_BASE + 8, 0x40, true);
    }, EXC_SS, 0x40],
    ['no room on the new stack: #SS(SS0)', (h) => {
      setGdt(h.cpu, 8, segDescriptor(0, 0xfff, 0x93, 0x4));
      h.mem.view.setUint16(TSS_BASE + 8, 0x40, true);
      h.mem.view.setUint32(TSS_BASE + 4, 0x10, true);
    }, EXC_SS, 0x40],
    ['TSS limit below ESP0/SS0: #TS(TR)', (h) => h.cpu.setSegCache(7, TSS_SEL, TSS_BASE, 8, 0x8b), EXC_TS, TSS_SEL],
  ];
  for (const [name, breakIt, vector, code] of cases) {
    it(`INT 40h from ring 3, ${name}`, () => {
      const h = ring3('int 0x40\nhlt');
      gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 3);
      const r = record(h.cpu);
      breakIt(h);
      h.cpu.idtrLimit = 0x40 * 8 + 7; // the fault's own delivery fails too: look at the first
      step(h.cpu, 1);
      expect(r.exceptions[0]).toEqual([vector, code]);
      expect(h.cpu.eip).not.toBe(HANDLER);
    });
  }
});

describe('gate error codes', () => {
  /** Runs `main` (ring 0 unless ring3) and returns the first exception recorded. */
  function firstException(main: string, setup: (h: Harness) => void, ring3 = false): [number, number] {
    const h = withHandler(main);
    for (const v of [EXC_GP, EXC_NP, EXC_TS, EXC_SS, EXC_DF]) gate(h, v, SEL.code32, HANDLER);
    gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 3);
    gate(h, EXC_UD, SEL.code32, HANDLER);
    if (ring3) {
      setupTss(h, 0x8000);
      enterRing3(h.cpu, CODE_BASE, 0x7000);
    }
    const r = record(h.cpu);
    setup(h);
    runToHlt(h.cpu);
    return r.exceptions[0];
  }
  const INT40 = 0x40 * 8 + 2;
  it('IDT limit: #GP(vector*8+2), EXT for an exception', () => {
    expect(firstException('int 0x40\nhlt', (h) => { h.cpu.idtrLimit = 0x40 * 8 + 6; })).toEqual([EXC_GP, INT40]);
    expect(firstException('ud2', (h) => { h.cpu.idtrLimit = EXC_UD * 8 + 6; })).toEqual([EXC_UD, 0]);
  });
  it('not-present gate: #NP(vector*8+2+EXT)', () => {
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 3, false))).toEqual([EXC_NP, INT40]);
    const h = withHandler('ud2');
    gate(h, EXC_UD, SEL.code32, HANDLER, INT_GATE, 0, false);
    gate(h, EXC_NP, SEL.code32, HANDLER);
    const r = record(h.cpu);
    runToHlt(h.cpu);
    expect(r.exceptions).toEqual([[EXC_UD, 0], [EXC_NP, EXC_UD * 8 + 3]]);
    expect(dword(h, h.cpu.regs[4])).toBe(EXC_UD * 8 + 3);
  });
  it('not a gate type: #GP(vector*8+2)', () => {
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.code32, HANDLER, 0xc, 3))).toEqual([EXC_GP, INT40]);
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.code32, HANDLER, 0x9, 3))).toEqual([EXC_GP, INT40]);
  });
  it('gate DPL < CPL for INT n and INT3: #GP(vector*8+2); INT1 and exceptions skip the check', () => {
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 0), true)).toEqual([EXC_GP, INT40]);
    expect(firstException('int3\nhlt', (h) => gate(h, 3, SEL.code32, HANDLER, INT_GATE, 0), true)).toEqual([EXC_GP, 3 * 8 + 2]);
    const h = withHandler('int1\nhlt');
    setupTss(h, 0x8000);
    enterRing3(h.cpu, CODE_BASE, 0x7000);
    gate(h, 1, SEL.code32, HANDLER, INT_GATE, 0);
    const r = record(h.cpu);
    runToHlt(h.cpu);
    expect(r.interrupts).toEqual([[1, EV_PRIVSW]]);
    expect(r.exceptions).toEqual([]);
    expect(h.cpu.cpl).toBe(0);
    expect(dword(h, h.cpu.regs[4])).toBe(CODE_BASE + 1); // a trap: EIP after INT1
  });
  it('gate CS: null #GP(EXT), beyond the GDT #GP(sel), not code #GP(sel), not present #NP(sel), EIP beyond limit #GP(EXT)', () => {
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, 0, HANDLER, INT_GATE, 3))).toEqual([EXC_GP, 0]);
    expect(firstException('ud2', (h) => gate(h, EXC_UD, 3, HANDLER))).toEqual([EXC_UD, 0]);
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, 0x78, HANDLER, INT_GATE, 3))).toEqual([EXC_GP, 0x78]);
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.data32, HANDLER, INT_GATE, 3))).toEqual([EXC_GP, SEL.data32]);
    expect(firstException('int 0x40\nhlt', (h) => {
      setGdt(h.cpu, 8, segDescriptor(0, 0xfffff, 0x1b, 0xc));
      gate(h, 0x40, 0x40, HANDLER, INT_GATE, 3);
    })).toEqual([EXC_NP, 0x40]);
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.code16, 0x12345, INT_GATE, 3))).toEqual([EXC_GP, 0]);
  });
  it('the second fault of an exception delivery carries EXT', () => {
    const h = withHandler('ud2');
    gate(h, EXC_UD, 0x78, HANDLER);
    gate(h, EXC_GP, SEL.code32, HANDLER);
    const r = record(h.cpu);
    runToHlt(h.cpu);
    expect(r.exceptions).toEqual([[EXC_UD, 0], [EXC_GP, 0x79]]);
  });
  it('a handler with DPL > CPL: #GP(sel)', () => {
    expect(firstException('int 0x40\nhlt', (h) => gate(h, 0x40, SEL.code32r3, HANDLER, INT_GATE, 3))).toEqual([EXC_GP, SEL.code32r3 & ~3]);
  });
});

describe('task gates', () => {
  it('an exception through a task gate switches tasks and pushes its error code on the new stack', () => {
    const h = withHandler('mov ax, 0x5c\nmov ds, ax\nhlt');
    setupTss(h, 0x8000);
    const B = 0x5000, B_SEL = 0x48;
    setGdt(h.cpu, B_SEL >> 3, segDescriptor(B, 0x67, 0x89, 0));
    const v = h.mem.view;
    v.setUint32(B + 0x20, HANDLER, true);
    v.setUint32(B + 0x24, 2, true);
    v.setUint32(B + 0x38, 0x6000, true); // ESP
    [SEL.data32, SEL.code32, SEL.data32, SEL.data32, SEL.data32, SEL.data32].forEach((sel, k) => v.setUint32(B + 0x48 + 4 * k, sel, true));
    gate(h, EXC_GP, B_SEL, 0, 0x5);
    runToHlt(h.cpu);
    expect(h.cpu.seg[7]).toBe(B_SEL);
    expect(h.cpu.eip).toBe(HANDLER + 1);
    expect(h.cpu.regs[4]).toBe(0x6000 - 4);
    expect(dword(h, 0x6000 - 4)).toBe(0x5c);
    expect(h.cpu.getEflags() & 0x4000).toBe(0x4000); // NT: nested
    expect(word(h, B)).toBe(TSS_SEL); // back link
    expect(dword(h, TSS_BASE + 0x20)).toBe(CODE_BASE + 4); // the faulting MOV saved as A's EIP
  });
});

describe('double and triple fault', () => {
  it('contributory during contributory: #DF with error code 0', () => {
    const h = withHandler('int 0x40\nhlt');
    gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 0, false);
    gate(h, EXC_NP, SEL.code32, HANDLER, INT_GATE, 0, false);
    gate(h, EXC_DF, SEL.code32, HANDLER);
    const r = record(h.cpu);
    runToHlt(h.cpu);
    expect(r.exceptions).toEqual([[EXC_NP, 0x202], [EXC_DF, 0]]);
    expect(dword(h, h.cpu.regs[4])).toBe(0);
    expect(dword(h, h.cpu.regs[4] + 4)).toBe(CODE_BASE); // the INT instruction
    expect(h.cpu.shutdown).toBe(false);
  });
  it('benign then contributory: handled serially', () => {
    const h = withHandler('ud2');
    gate(h, EXC_UD, SEL.code32, HANDLER, INT_GATE, 0, false);
    gate(h, EXC_NP, SEL.code32, HANDLER);
    gate(h, EXC_DF, SEL.code32, HANDLER + 1);
    runToHlt(h.cpu);
    expect(h.cpu.eip).toBe(HANDLER + 1);
  });
  it('page faults: #GP then #PF is serial, #PF then #PF is #DF, a #PF delivering #DF shuts down', () => {
    const h = withHandler('mov ax, 0x5c\nmov ds, ax\nhlt');
    for (const v of [EXC_GP, EXC_PF, EXC_DF]) gate(h, v, SEL.code32, HANDLER);
    // Identity-map the first 4 MiB with 4 KiB pages, except the stack page 0x8000-0x8fff.
    const pd = 0x20000, pt = 0x21000;
    h.mem.view.setUint32(pd, pt | 3, true);
    for (let p = 0; p < 1024; p++) h.mem.view.setUint32(pt + 4 * p, p === 8 ? 0 : (p << 12) | 3, true);
    h.cpu.cr3 = pd;
    h.cpu.cr0 |= 0x80000000;
    h.cpu.updateMode();
    const r = record(h.cpu);
    runToHlt(h.cpu);
    expect(r.exceptions).toEqual([[EXC_GP, 0x5c], [EXC_PF, 2], [EXC_DF, 0]]);
    expect(h.cpu.cr2 >>> 0).toBe(STACK_TOP - 4);
    expect(h.cpu.shutdown).toBe(true);
  });
  it('a fault while delivering #DF shuts down', () => {
    const h = withHandler('int 0x40\nhlt');
    gate(h, 0x40, SEL.code32, HANDLER, INT_GATE, 0, false);
    gate(h, EXC_NP, SEL.code32, HANDLER, INT_GATE, 0, false);
    const r = record(h.cpu);
    runToHlt(h.cpu);
    expect(h.cpu.shutdown).toBe(true);
    expect(r.shutdowns).toBe(1);
  });
});

describe('NMI and INTR', () => {
  it('NMI is delivered through vector 2 and blocks NMIs until IRET', () => {
    const h = withHandler('hlt', 'inc ebx\niret');
    gate(h, 2, SEL.code32, HANDLER);
    const r = record(h.cpu);
    h.cpu.nmi();
    step(h.cpu, 1); // delivery, then INC EBX
    expect(h.cpu.regs[3]).toBe(1);
    expect(h.cpu.nmiBlocked).toBe(true);
    h.cpu.nmi();
    step(h.cpu, 1); // IRET: the second NMI waits
    expect(h.cpu.eip).toBe(CODE_BASE);
    expect(h.cpu.nmiBlocked).toBe(false);
    step(h.cpu, 1);
    expect(h.cpu.regs[3]).toBe(2);
    expect(r.interrupts).toEqual([[2, EV_NMI], [2, EV_NMI]]);
  });
  it('NMI wakes a halted CPU; INTR does not while IF = 0', () => {
    const h = withHandler('hlt\nhlt', 'hlt');
    gate(h, 2, SEL.code32, HANDLER);
    h.cpu.interruptAck = () => 0x41;
    runToHlt(h.cpu);
    expect(h.cpu.halted).toBe(true);
    h.cpu.setIntr(true);
    runToHlt(h.cpu, 100);
    expect(h.cpu.eip).toBe(CODE_BASE + 1);
    h.cpu.nmi();
    runToHlt(h.cpu, 100);
    expect(h.cpu.eip).toBe(HANDLER + 1);
    expect(dword(h, h.cpu.regs[4])).toBe(CODE_BASE + 1);
  });
  it('INTR waits for the instruction after STI', () => {
    const h = withHandler('sti\nnop\nnop\nhlt');
    gate(h, 0x41, SEL.code32, HANDLER);
    h.cpu.interruptAck = () => 0x41;
    const r = record(h.cpu);
    h.cpu.setIntr(true);
    runToHlt(h.cpu);
    expect(r.interrupts).toEqual([[0x41, EV_EXTERNAL]]);
    expect(dword(h, STACK_TOP - 12)).toBe(CODE_BASE + 2);
    expect(h.cpu.eip).toBe(HANDLER + 1);
  });
  it('INTR waits for the instruction after MOV SS', () => {
    const h = withHandler('mov ss, ax\nnop\nhlt');
    gate(h, 0x41, SEL.code32, HANDLER);
    h.cpu.interruptAck = () => 0x41;
    h.cpu.regs[0] = SEL.data32;
    h.cpu.setEflags(0x2 | IF);
    step(h.cpu, 1);
    h.cpu.setIntr(true);
    step(h.cpu, 1);
    expect(h.cpu.eip).toBe(CODE_BASE + 3); // NOP ran, no interrupt yet
    step(h.cpu, 1);
    expect(h.cpu.eip).toBe(HANDLER + 1);
    expect(dword(h, STACK_TOP - 12)).toBe(CODE_BASE + 3);
  });
});

/**
 * A ROM run by trapdiff and by Bochs (QEMU differs in RF and EXT, see docs/CPU-MODEL.md): each
 * case prints vector, error code, pushed EIP and pushed EFLAGS from its handler: INT through a
 * not-present gate, #UD through one (EXT), #GP's RF, single-step over INT n (no trap until after
 * the instruction following the handler's IRET) and DR6, a write breakpoint and DR6, PUSHF in V86
 * with IOPL 0, #GP with a not-present #GP gate (#DF), INT3 from ring 3 through a DPL-0 gate.
 */
const INT_ROM = `${romStart()}
${romFlatSegments()}
${romClearIdt('0x50')}
  mov esi, vectors
.idt:
  movzx ebx, word [esi]
  cmp ebx, 0xffff
  je .done
  mov eax, [esi + 2]
  mov [0x2000 + ebx*8], ax
  mov word [0x2002 + ebx*8], 0x08
  mov word [0x2004 + ebx*8], 0x8e00
  shr eax, 16
  mov [0x2006 + ebx*8], ax
  add esi, 6
  jmp .idt
.done:
  mov byte [0x2005 + 0x40*8], 0x0e     ; INT 40h: gate not present
  ; TSS: ESP0, SS0, I/O map base beyond the limit
${romLoadTss(true)}

  ; T1: INT n through a not-present gate: #NP(40h*8+2)
  mov dword [0x3000], t2
  int 0x40
t2:
  ; T2: #UD through a not-present gate: #NP(6*8+2+EXT)
  mov dword [0x3000], t3
  mov byte [0x2005 + 6*8], 0x0e
  ud2
t3:
  ; T3: #GP(sel) with its EFLAGS image (RF)
  mov dword [0x3000], t4
  mov ax, 0x5c
  mov ds, ax
t4:
  ; T4: single-step over INT 41h
  mov dword [0x3000], t5
  xor eax, eax
  mov dr6, eax
  pushfd
  or dword [esp], 0x100
  popfd
  int 0x41
t5:
  mov eax, dr6
  call hex
  ; T5: a write breakpoint on 0x6000 (4 bytes)
  mov dword [0x3000], t6
  xor eax, eax
  mov dr6, eax
  mov eax, 0x6000
  mov dr0, eax
  mov eax, 0x000d0001
  mov dr7, eax
  mov dword [0x6002], 1
  nop
t6:
  mov eax, dr6
  call hex
  xor eax, eax
  mov dr7, eax
  ; T6: PUSHF in V86 with IOPL 0: #GP(0), frame from V86
  mov dword [0x3000], t7
${romIretToV86('0x00020002', 'v86code')}
v86code:
  db 0x90, 0x9c        ; nop; pushf
t7:
  ; T7: #GP with a not-present #GP gate: #DF(0)
  mov dword [0x3000], t8
  mov byte [0x2005 + 13*8], 0x0e
  mov ax, 0x5c
  mov ds, ax
t8:
  mov byte [0x2005 + 13*8], 0x8e
  ; T8: INT3 from ring 3 through a DPL-0 gate: #GP(3*8+2)
  mov dword [0x3000], done
  push dword 0x23
  push dword 0x7000
  push dword 0x1b
  push dword r3
  retf
r3:
  int3
done:
${romShutdown()}
  hlt
  jmp $

${romFaultStubs([1, 3, 8, 11, 12, 13], [1, 3])}
int41:
  push eax
  mov eax, 0x41414141
  call hex
  pop eax
  iretd
excommon:
${romReportAndResume(['[esp]', '[esp+4]', '[esp+8]', '[esp+16]'])}

${ROM_HEX}

vectors:
  dw 1
  dd exc1
  dw 3
  dd exc3
  dw 8
  dd exc8
  dw 11
  dd exc11
  dw 12
  dd exc12
  dw 13
  dd exc13
  dw 6
  dd exc13
  dw 0x40
  dd exc13
  dw 0x41
  dd int41
  dw 0xffff
${romEnd(GDT_FLAT_R0 + GDT_FLAT_R3 + GDT_TSS, { idtVectors: '0x50' })}
`;
const INT_EXPECTED = [
  '0000000B', '00000202', '000F00C6', '00010046',
  '0000000B', '00000033', '000F00D9', '00010093',
  '0000000D', '0000005C', '000F00E9', '00010097',
  '41414141', '00000001', '00000000', '000F0108',
  '00000146', 'FFFF4FF0', '00000001', '00000000',
  '000F0136', '00000046', 'FFFF0FF1', '0000000D',
  '00000000', '0000016E', '00030002', '00000008',
  '00000000', '000F0184', '00010097', '0000000D',
  '0000001A', '000F01A6', '00010093',
];

compareOnRom('exceptions and debug traps on a ROM', INT_ROM, INT_EXPECTED);

/**
 * A ROM run by trapdiff and by Bochs: INT 40h from ring 3 with each inner-stack and gate error
 * (TSS SS0 null, RPL 1, code, DPL 3, not present, no room; gate CS not present, null, data,
 * beyond the GDT, offset beyond its limit; gate not present, DPL 0, not a gate). The #TS/#NP/
 * #SS/#GP handlers sit in a conforming ring-0 segment, so they run at CPL 3 on the ring-3 stack
 * and print vector, error code, EIP and CS.
 */
const GATE_ROM = `%macro CASE 1
  mov dword [0x3000], %1
  int 0x40
%endmacro
${romStart()}
${romFlatSegments()}
${romClearIdt('0x50')}
  ; #TS, #NP, #SS, #GP: conforming ring-0 code, run at CPL 3
${romFaultGates('0x30')}
${romLoadTss(false)}
  ; IOPL 3: the handlers print from ring 3
${romIretToRing3('0x00003002', 'r3')}
r3:
  mov ax, 0x23
  mov ds, ax
  mov es, ax
  call gate40
  mov word [0x4008], 0
  CASE c2
c2:
  mov word [0x4008], 0x11
  CASE c3
c3:
  mov word [0x4008], 0x08
  CASE c4
c4:
  mov word [0x4008], 0x20
  CASE c5
c5:
  mov word [0x4008], 0x38
  CASE c6
c6:
  mov word [0x4008], 0x40
  mov dword [0x4004], 0x10
  CASE c7
c7:
  mov word [0x4008], 0x10
  mov dword [0x4004], 0x8000
  mov word [0x2002 + 0x40*8], 0x48     ; gate CS not present
  CASE c8
c8:
  mov word [0x2002 + 0x40*8], 0x00     ; gate CS null
  CASE c9
c9:
  mov word [0x2002 + 0x40*8], 0x10     ; gate CS data
  CASE c10
c10:
  mov word [0x2002 + 0x40*8], 0x58     ; gate CS beyond the GDT
  CASE c11
c11:
  mov word [0x2006 + 0x40*8], 0x1234   ; offset beyond the limit of a 16-bit code segment
  mov word [0x2002 + 0x40*8], 0x50
  CASE c12
c12:
  call gate40
  mov byte [0x2005 + 0x40*8], 0x6e     ; not present
  CASE c13
c13:
  call gate40
  mov byte [0x2005 + 0x40*8], 0x8e     ; DPL 0
  CASE c14
c14:
  call gate40
  mov byte [0x2005 + 0x40*8], 0xec     ; a call gate type
  CASE done
done:
${romShutdown()}
  jmp $

gate40:                                ; INT 40h: DPL 3 interrupt gate to ring-0 code
  mov dword [0x2000 + 0x40*8], 0x00080000 + (h40 - 0xF0000)
  mov dword [0x2004 + 0x40*8], 0x000fee00
  ret
h40:
  jmp $

${romFaultStubs([10, 11, 12, 13])}
excommon:
${romPrint(['[esp]', '[esp+4]', '[esp+8]', 'cs'])}
  mov esp, 0x7000
  jmp [0x3000]

${ROM_HEX}

${romEnd(GDT_FLAT_R0 + GDT_FLAT_R3 + GDT_TSS + `  dd 0x0000ffff, 0x00cf9f00      ; 30 conforming code r0
  dd 0x0000ffff, 0x00cf1300      ; 38 data r0 not present
  dd 0x00000fff, 0x00409300      ; 40 data r0, limit 0xfff
  dd 0x0000ffff, 0x00cf1b00      ; 48 code r0 not present
  dd 0x0000ffff, 0x00009b0f      ; 50 16-bit code r0, base 0x0f0000, limit 0xffff
`, { idtVectors: '0x50' })}
`;
const GATE_EXPECTED = [
  '0000000A', '00000000', '000F00DD', '00000033',
  '0000000A', '00000010', '000F00F2', '00000033',
  '0000000A', '00000008', '000F0107', '00000033',
  '0000000A', '00000020', '000F011C', '00000033',
  '0000000C', '00000038', '000F0131', '00000033',
  '0000000C', '00000040', '000F0150', '00000033',
  '0000000B', '00000048', '000F0178', '00000033',
  '0000000D', '00000000', '000F018D', '00000033',
  '0000000D', '00000010', '000F01A2', '00000033',
  '0000000D', '00000058', '000F01B7', '00000033',
  '0000000D', '00000000', '000F01D5', '00000033',
  '0000000B', '00000202', '000F01ED', '00000033',
  '0000000D', '00000202', '000F0205', '00000033',
  '0000000D', '00000202', '000F021D', '00000033',
];

compareOnRom('gate and inner-stack errors on a ROM', GATE_ROM, GATE_EXPECTED);
