// Virtual-8086 mode: entry through IRET, IOPL-sensitive instructions (INT n, PUSHF, POPF, CLI,
// STI) with IOPL < 3 and = 3, the exit to ring 0 with its 9-slot frame, the TSS I/O bitmap,
// and the CR4.VME virtual interrupt flag and software-interrupt redirection.

import { describe, expect, it } from 'vitest';
import { CR4_VME, EXC_BP, EXC_GP, IF, IOPL, TF, VIF, VIP, VM } from '../src/cpu/constants.js';
import { asm, makeCpu, runToHlt, SEL, STACK_TOP, step, type Harness } from './helpers/harness.js';
import { denyPort, dword, gate, HANDLER, INT_GATE, noRedirect, record, setupTss, withHandler } from './helpers/idt.js';
import { compareOnRom, GDT_FLAT_R0, GDT_FLAT_R3, GDT_TSS, ROM_HEX, romEnd, romFlatSegments, romIretToV86, romLoadTss, romReportAndResume, romShutdown, romStart } from './helpers/rom.js';

const V86_CODE = 0x20000;
const ESP0 = 0x9000;

/** A ring-0 CPU that IRETs into V86 code (CS = 0x2000, SS:SP = 0:0x8000) with `eflags`. */
function v86(code: string, eflags = 0, cr4 = 0): Harness {
  const h = withHandler('iretd');
  h.mem.ram.set(asm(code, 16, 0), V86_CODE);
  setupTss(h, ESP0);
  gate(h, EXC_GP, SEL.code32, HANDLER);
  h.cpu.cr4 = cr4;
  const frame = [0, 0x2000, eflags | VM | 2, 0x8000, 0, 0, 0, 0, 0];
  const esp = STACK_TOP - 36;
  frame.forEach((v, k) => h.mem.view.setUint32(esp + 4 * k, v, true));
  h.cpu.regs[4] = esp;
  step(h.cpu, 1);
  return h;
}
/** Runs to the ring-0 HLT; returns the exceptions seen. */
function run(h: Harness): Array<[number, number]> {
  const r = record(h.cpu);
  runToHlt(h.cpu);
  return r.exceptions;
}

describe('entering and leaving V86', () => {
  it('IRET with VM in the popped EFLAGS at CPL 0 enters V86 at CPL 3 with real-style segments', () => {
    const h = v86('nop');
    expect(h.cpu.v86).toBe(true);
    expect(h.cpu.cpl).toBe(3);
    expect(h.cpu.segBase[1]).toBe(V86_CODE);
    expect(h.cpu.segLimit[1]).toBe(0xffff);
    expect(h.cpu.eip).toBe(0);
    expect(h.cpu.regs[4]).toBe(0x8000);
  });

  it('a fault in V86 goes to ring 0 with GS, FS, DS, ES, SS, ESP, EFLAGS, CS, EIP, error code', () => {
    const h = v86('nop\nhlt', 0);
    expect(run(h)).toEqual([[EXC_GP, 0]]);
    expect(h.cpu.v86).toBe(false);
    expect(h.cpu.cpl).toBe(0);
    const esp = ESP0 - 40;
    expect(h.cpu.regs[4]).toBe(esp);
    expect([0, 4, 8, 16, 20].map((k) => dword(h, esp + k))).toEqual([0, 1, 0x2000, 0x8000, 0]);
    expect(dword(h, esp + 12) & VM).toBe(VM);
    for (const s of [0, 3, 4, 5]) expect(h.cpu.seg[s]).toBe(0); // ES, DS, FS, GS nulled
  });

  it('an external interrupt in V86 goes to ring 0 with the 9-slot frame and no error code', () => {
    const h = v86('nop\nnop\nnop', IF);
    gate(h, 0x41, SEL.code32, HANDLER);
    h.cpu.interruptAck = () => 0x41;
    h.cpu.setIntr(true);
    const ex = run(h);
    expect(ex).toEqual([]);
    const esp = ESP0 - 36;
    expect(h.cpu.regs[4]).toBe(esp);
    expect(dword(h, esp)).toBe(0); // EIP: the interrupt came before the first NOP
    expect(dword(h, esp + 4)).toBe(0x2000);
    expect(dword(h, esp + 8) & (VM | IF)).toBe(VM | IF);
    expect(h.cpu.getEflags() & (VM | IF)).toBe(0);
  });

  it('the handler IRETs back into V86', () => {
    const h = makeCpu('pm32', asm(`iretd\ntimes 0x100-($-$$) db 0\nadd esp, 4\niretd`));
    h.mem.ram.set(asm('hlt\nnop\nnop\nmov ax, 1', 16, 0), V86_CODE);
    setupTss(h, ESP0);
    gate(h, EXC_GP, SEL.code32, HANDLER);
    const frame = [0, 0x2000, VM | 2, 0x8000, 0, 0, 0, 0, 0];
    frame.forEach((v, k) => h.mem.view.setUint32(STACK_TOP - 36 + 4 * k, v, true));
    h.cpu.regs[4] = STACK_TOP - 36;
    step(h.cpu, 3); // IRETD, HLT (#GP: does not retire), ADD ESP, IRETD
    expect(h.cpu.v86).toBe(true);
    expect(h.cpu.eip).toBe(0);
  });
});

describe('IOPL < 3 without VME', () => {
  for (const [name, code] of [['INT n', 'int 0x21'], ['PUSHF', 'pushf'], ['POPF', 'popf'], ['CLI', 'cli'], ['STI', 'sti'], ['IRET', 'iret']]) {
    it(`${name} raises #GP(0)`, () => {
      const h = v86(`${code}\nnop`);
      expect(run(h)).toEqual([[EXC_GP, 0]]);
      expect(dword(h, ESP0 - 36)).toBe(0); // EIP of the instruction itself
    });
  }
  it('INT3 is not IOPL-sensitive: it goes to the ring-0 handler through a DPL-3 gate', () => {
    const h = v86('int3');
    gate(h, EXC_BP, SEL.code32, HANDLER, INT_GATE, 3);
    expect(run(h)).toEqual([]);
    expect(dword(h, ESP0 - 36)).toBe(1);
  });
});

describe('IOPL = 3', () => {
  it('CLI, STI, PUSHF, POPF work on IF; INT n goes to the protected-mode handler', () => {
    const h = v86('cli\npushf\nsti\npopf\nint 0x21', IOPL);
    gate(h, 0x21, SEL.code32, HANDLER, INT_GATE, 3);
    step(h.cpu, 2);
    expect(h.cpu.getEflags() & IF).toBe(0);
    expect(h.cpu.mem.view.getUint16(0x7ffe, true) & (IF | IOPL)).toBe(IOPL);
    step(h.cpu, 1);
    expect(h.cpu.getEflags() & IF).toBe(IF);
    step(h.cpu, 1);
    expect(h.cpu.getEflags() & IF).toBe(0);
    expect(run(h)).toEqual([]);
    expect(h.cpu.cpl).toBe(0);
    expect(dword(h, ESP0 - 36)).toBe(6);
  });
  it('INT n through a gate to a DPL-3 code segment is #GP(selector)', () => {
    const h = v86('int 0x21', IOPL);
    gate(h, 0x21, SEL.code32r3, HANDLER, INT_GATE, 3);
    expect(run(h)).toEqual([[EXC_GP, SEL.code32r3 & ~3]]);
  });
  it('POPF and IRET keep IOPL and VM', () => {
    const h = v86('push word 0\npopf\nnop', IOPL | IF);
    step(h.cpu, 2);
    expect(h.cpu.getEflags() & (IOPL | VM | IF)).toBe(IOPL | VM);
  });
});

describe('I/O permission bitmap', () => {
  it('V86 ports are allowed by a clear bit and refused by a set one', () => {
    const h = v86('mov al, 0x55\nout 0x80, al\nout 0x81, al\nhlt');
    denyPort(h, 0x81);
    expect(run(h)).toEqual([[EXC_GP, 0]]);
    expect(h.bus.writes).toEqual([[0x80, 1, 0x55]]);
    expect(dword(h, ESP0 - 36)).toBe(4); // at OUT 81h
  });
  it('every byte of a word access is checked', () => {
    const h = v86('mov dx, 0x87\nout dx, ax\nhlt');
    denyPort(h, 0x88);
    expect(run(h)).toEqual([[EXC_GP, 0]]);
    expect(h.bus.writes).toEqual([]);
  });
  it('a bitmap byte beyond the TSS limit refuses the port', () => {
    const h = v86('mov dx, 0x3ff\nin al, dx\nmov dx, 0x400\nin al, dx\nhlt');
    h.bus.inputs.set(0x3ff, 0x12);
    expect(run(h)).toEqual([[EXC_GP, 0]]);
    expect(dword(h, ESP0 - 36)).toBe(7);
    expect(h.cpu.regs[0] & 0xff).toBe(0x12);
  });
  it('protected mode at CPL <= IOPL ignores the bitmap; CPL > IOPL uses it', () => {
    const h = makeCpu('pm32', asm('out 0x81, al\nhlt'));
    setupTss(h, ESP0);
    denyPort(h, 0x81);
    runToHlt(h.cpu);
    expect(h.bus.writes.length).toBe(1);
  });
});

describe('CR4.VME', () => {
  it('CLI/STI change VIF, PUSHF shows VIF as IF with IOPL 3', () => {
    const h = v86('cli\npushf\nsti\npushf', IF, CR4_VME);
    step(h.cpu, 2);
    expect(h.cpu.getEflags() & (IF | VIF)).toBe(IF);
    expect(h.cpu.mem.view.getUint16(0x7ffe, true) & (IF | IOPL)).toBe(IOPL);
    step(h.cpu, 2);
    expect(h.cpu.getEflags() & (IF | VIF)).toBe(IF | VIF);
    expect(h.cpu.mem.view.getUint16(0x7ffc, true) & (IF | IOPL)).toBe(IF | IOPL);
  });
  it('STI with VIP pending and POPF setting TF are #GP(0)', () => {
    expect(run(v86('sti', VIP, CR4_VME))).toEqual([[EXC_GP, 0]]);
    expect(run(v86(`push word ${TF}\npopf`, 0, CR4_VME))).toEqual([[EXC_GP, 0]]);
    expect(run(v86('pushfd', 0, CR4_VME))).toEqual([[EXC_GP, 0]]);
  });
  it('POPF loads the popped IF into VIF and leaves IF', () => {
    const h = v86(`push word ${IF}\npopf\nnop`, 0, CR4_VME);
    step(h.cpu, 2);
    expect(h.cpu.getEflags() & (IF | VIF)).toBe(VIF);
  });
  it('INT n with a clear redirection bit goes through the V86 IVT, clearing VIF', () => {
    const h = v86('int 0x21\nhlt', IF | VIF, CR4_VME);
    h.mem.view.setUint16(0x21 * 4, 0x100, true);
    h.mem.view.setUint16(0x21 * 4 + 2, 0x2000, true);
    step(h.cpu, 1);
    expect(h.cpu.v86).toBe(true);
    expect(h.cpu.eip).toBe(0x100);
    expect(h.cpu.getEflags() & (IF | VIF)).toBe(IF);
    expect(h.cpu.mem.view.getUint16(0x7ffa, true)).toBe(2); // IP
    expect(h.cpu.mem.view.getUint16(0x7ffc, true)).toBe(0x2000);
    expect(h.cpu.mem.view.getUint16(0x7ffe, true) & (IF | IOPL)).toBe(IF | IOPL);
  });
  it('IRET loads the popped IF into VIF; a popped TF is #GP(0)', () => {
    const frame = (flags: number) => `push word ${flags}\npush word 0x2000\npush word 0x20\niret\ntimes 0x20-($-$$) db 0\nnop`;
    const h = v86(frame(IF), 0, CR4_VME);
    step(h.cpu, 4);
    expect(h.cpu.eip).toBe(0x20);
    expect(h.cpu.getEflags() & (IF | VIF | IOPL)).toBe(VIF);
    expect(h.cpu.regs[4]).toBe(0x8000);
    expect(run(v86(frame(TF), 0, CR4_VME))).toEqual([[EXC_GP, 0]]);
  });
  it('INT n with the redirection bit set is #GP(0) at IOPL < 3', () => {
    const h = v86('int 0x21', 0, CR4_VME);
    noRedirect(h, 0x21);
    expect(run(h)).toEqual([[EXC_GP, 0]]);
  });
});

/**
 * A ROM run by trapdiff and by Bochs, under CR4.VME with IOPL 0: CLI/STI on VIF and the PUSHF
 * images, HLT's #GP frame (error code, EIP, EFLAGS with VIF); INT 21h redirected through the V86
 * IVT (the frame it pushes, VIF cleared); OUT with the I/O bitmap outside the TSS limit; POPF
 * setting TF; STI with VIP pending. The #GP handler prints error code, EIP, EFLAGS.
 */
const V86_ROM = `%macro ENTER_V86 2                    ; eflags, v86 code label
${romIretToV86('%1', '%2')}
%endmacro
${romStart()}
${romFlatSegments()}
  mov dword [0x2000 + 13*8], 0x00080000 + (exc13 - 0xF0000)
  mov dword [0x2004 + 13*8], 0x000f8e00
${romLoadTss(true)}
  mov eax, 1                          ; CR4.VME
  mov cr4, eax
  mov word [0x21*4], v86h - 0xF0000
  mov word [0x21*4+2], 0xf000

  ; V1: CLI/STI on VIF, PUSHF images, then HLT's #GP frame
  mov dword [0x3000], v2
  ENTER_V86 0x000a0202, v86a
v2:
  movzx eax, word [0x6ffe]
  call hex
  movzx eax, word [0x6ffc]
  call hex
  ; V2: INT 21h redirected through the V86 IVT
  mov dword [0x3000], v3
  ENTER_V86 0x000a0202, v86b
v3:
  mov esi, 0x6ff8
.w: movzx eax, word [esi]
  call hex
  add esi, 2
  cmp esi, 0x7000
  jne .w
  ; V3: OUT with the I/O bitmap outside the TSS limit; V4: POPF setting TF under VME
  mov dword [0x3000], v4
  ENTER_V86 0x00020202, v86c
v4:
  mov dword [0x3000], v5
  ENTER_V86 0x00020202, v86d
v5:
  ; V5: STI with VIP pending
  mov dword [0x3000], done
  ENTER_V86 0x00120202, v86e
done:
${romShutdown()}
  hlt
  jmp $

bits 16
v86a:
  cli
  pushf
  sti
  pushf
  hlt
v86b:
  int 0x21
v86h:
  pushf
  hlt
v86c:
  out 0x80, al
v86d:
  push word 0x100
  popf
v86e:
  sti
bits 32

exc13:
${romReportAndResume(['[esp]', '[esp+4]', '[esp+12]'])}

${ROM_HEX}

${romEnd(GDT_FLAT_R0 + GDT_FLAT_R3 + GDT_TSS, { idtVectors: '0x50' })}
`;
const V86_EXPECTED = [
  '00000000', '000001AE', '000B0202',
  '00003002', '00003202', '00000000',
  '000001B2', '00030202', '00003002',
  '000001B1', '0000F000', '00003202',
  '00000000', '000001B3', '00030202',
  '00000000', '000001B8', '00030202',
  '00000000', '000001B9', '00130202',
];

compareOnRom('VME on a ROM', V86_ROM, V86_EXPECTED);
