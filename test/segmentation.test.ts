// Protected-mode segment loads (MOV/POP/LxS with every SDM check and error code), the
// segment-register move forms, and the descriptor-table instructions (LAR, LSL, VERR, VERW,
// ARPL, SLDT, STR, LLDT, LTR, SGDT/SIDT, LGDT/LIDT).

import { describe, expect, it } from 'vitest';
import {
  AR_UNUSABLE, CR0_PE, DS, EXC_GP, EXC_NP, EXC_SS, EXC_UD, FS, LDTR, SS, TR, VM,
} from '../src/cpu/constants.js';
import type { Cpu } from '../src/cpu/cpu.js';
import { asm, makeCpu, GDT_BASE, SEL, STACK_TOP } from './helpers/harness.js';
import { enterRing3 } from './helpers/idt.js';
import { descHi, gateDesc, runCatch, segDesc, setGdt, sysDesc, writeDesc } from './helpers/segments.js';
import { compareOnRom, GDT_FLAT_R0, GDT_FLAT_R3, GDT_TSS, ROM_HEX, romEnd, romFlatSegments, romPrint, romShutdown, romStart } from './helpers/rom.js';

function pm(src: string, setup?: (cpu: Cpu) => void): Cpu {
  const { cpu } = makeCpu('pm32', asm(src, 32));
  setup?.(cpu);
  return cpu;
}
function real(src: string): Cpu {
  return makeCpu('real', asm(src, 16, 0)).cpu;
}
const GP = (code: number) => ({ vector: EXC_GP, errorCode: code });

// Descriptor types.
const DATA_RW = 3, DATA_RO = 1, DATA_RW_DOWN = 7, CODE_XO = 9, CODE_XR = 11, CODE_CONF_XR = 15, CODE_CONF_XO = 13;

describe('MOV/POP to DS..GS and SS in protected mode', () => {
  const S = 0x40; // GDT index 8
  type Case = { name: string; d: [number, number]; sel?: number; reg: 'ds' | 'ss' | 'fs'; ring3?: boolean; fault: { vector: number; errorCode: number } | null };
  const cases: Case[] = [
    { name: 'writable data', d: segDesc(0, 0xfffff, DATA_RW, 0, { g: true }), reg: 'ds', fault: null },
    { name: 'read-only data into DS', d: segDesc(0, 0xfff, DATA_RO, 0), reg: 'ds', fault: null },
    { name: 'readable code into FS', d: segDesc(0, 0xfff, CODE_XR, 0), reg: 'fs', fault: null },
    { name: 'execute-only code into DS', d: segDesc(0, 0xfff, CODE_XO, 0), reg: 'ds', fault: GP(S) },
    { name: 'system descriptor into DS', d: sysDesc(0x3000, 0x67, 9, 0), reg: 'ds', fault: GP(S) },
    { name: 'RPL > DPL', d: segDesc(0, 0xfff, DATA_RW, 0), sel: S | 3, reg: 'ds', fault: GP(S) },
    { name: 'CPL > DPL', d: segDesc(0, 0xfff, DATA_RW, 2), sel: S | 2, reg: 'ds', ring3: true, fault: GP(S) },
    { name: 'conforming readable code is exempt from DPL', d: segDesc(0, 0xfff, CODE_CONF_XR, 0), sel: S | 3, reg: 'ds', ring3: true, fault: null },
    { name: 'conforming execute-only code', d: segDesc(0, 0xfff, CODE_CONF_XO, 0), reg: 'ds', fault: GP(S) },
    { name: 'not present (DS)', d: segDesc(0, 0xfff, DATA_RW, 0, { p: false }), reg: 'ds', fault: { vector: EXC_NP, errorCode: S } },
    { name: 'outside the GDT', d: [0, 0], sel: 0x400, reg: 'ds', fault: GP(0x400) },
    { name: 'LDT selector with no LDT', d: [0, 0], sel: 0x0c | 3, reg: 'ds', fault: GP(0x0c) },
    { name: 'SS: writable data', d: segDesc(0, 0xfff, DATA_RW, 0), reg: 'ss', fault: null },
    { name: 'SS: null', d: [0, 0], sel: 3, reg: 'ss', fault: GP(0) },
    { name: 'SS: RPL != CPL', d: segDesc(0, 0xfff, DATA_RW, 0), sel: S | 1, reg: 'ss', fault: GP(S) },
    { name: 'SS: DPL != CPL', d: segDesc(0, 0xfff, DATA_RW, 3), sel: S, reg: 'ss', fault: GP(S) },
    { name: 'SS: read-only data', d: segDesc(0, 0xfff, DATA_RO, 0), reg: 'ss', fault: GP(S) },
    { name: 'SS: code', d: segDesc(0, 0xfff, CODE_XR, 0), reg: 'ss', fault: GP(S) },
    { name: 'SS: not present', d: segDesc(0, 0xfff, DATA_RW, 0, { p: false }), reg: 'ss', fault: { vector: EXC_SS, errorCode: S } },
    { name: 'SS: outside the GDT', d: [0, 0], sel: 0x800, reg: 'ss', fault: GP(0x800) },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const sel = c.sel ?? S;
      const cpu = pm(`mov ax, ${sel}\nmov ${c.reg}, ax`, (cpu) => {
        setGdt(cpu, 8, c.d);
        if (c.ring3) enterRing3(cpu);
      });
      const before = cpu.segAr[DS];
      expect(runCatch(cpu, 2)).toEqual(c.fault);
      const s = c.reg === 'ds' ? DS : c.reg === 'ss' ? SS : FS;
      if (c.fault === null) {
        expect(cpu.seg[s]).toBe(sel);
        expect(descHi(cpu, sel) & 0x100).toBe(0x100); // accessed bit written back
      } else {
        expect(cpu.segAr[DS]).toBe(before);
        expect(cpu.eip).toBe(0x10004); // the MOV did not retire
      }
    });
  }

  it('converts base, G-scaled limit and access rights into the cache', () => {
    const cpu = pm('mov ax, 0x40\nmov es, ax', (cpu) => setGdt(cpu, 8, segDesc(0x12345678, 0xabcde, DATA_RW_DOWN, 0, { g: true })));
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.segBase[0] >>> 0).toBe(0x12345678);
    expect(cpu.segLimit[0]).toBe(0xabcdefff);
    expect(cpu.segAr[0]).toBe(0xc097); // G, D/B, P, S, type 7 with accessed
  });

  it('a null selector makes DS unusable (no fault) and a later DS access faults #GP(0)', () => {
    const cpu = pm('xor eax, eax\nmov ds, ax\nmov eax, [0x100]');
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.segAr[DS] & AR_UNUSABLE).toBe(AR_UNUSABLE);
    expect(runCatch(cpu, 1)).toEqual(GP(0));
  });

  it('loads through the LDT after LLDT', () => {
    const cpu = pm('mov ax, 0x40\nlldt ax\nmov ax, 0x0c\nmov gs, ax', (cpu) => {
      setGdt(cpu, 8, sysDesc(0x5000, 0x17, 2, 0));
      writeDesc(cpu, 0x5008, segDesc(0x9000, 0xff, DATA_RW, 0));
    });
    expect(runCatch(cpu, 4)).toBeNull();
    expect(cpu.segBase[5]).toBe(0x9000);
    // Beyond the LDT limit (0x17): index 3.
    const c2 = pm('mov ax, 0x40\nlldt ax\nmov ax, 0x1c\nmov gs, ax', (cpu) => setGdt(cpu, 8, sysDesc(0x5000, 0x17, 2, 0)));
    expect(runCatch(c2, 4)).toEqual(GP(0x1c));
  });

  it('POP DS that faults leaves ESP unchanged; POP SS moves ESP by 4 and starts the shadow', () => {
    const cpu = pm('push dword 0x4242\npop ds');
    expect(runCatch(cpu, 2)).toEqual(GP(0x4240));
    expect(cpu.regs[4]).toBe(STACK_TOP - 4);
    const c2 = pm(`push dword ${SEL.data32}\npop ss\nnop`);
    expect(runCatch(c2, 2)).toBeNull();
    expect(c2.regs[4]).toBe(STACK_TOP);
    expect(c2.shadowAt).toBe(c2.icount);
  });

  it('LSS loads SS:ESP without an interrupt shadow; LDS loads DS:reg', () => {
    const cpu = pm(`lss esp, [ptr]\nlds bx, [ptr16]\nhlt\nptr: dd 0x1234\ndw ${SEL.data32}\nptr16: dw 0x55\ndw ${SEL.data16}`);
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.regs[4]).toBe(0x1234);
    expect(cpu.shadowAt).not.toBe(cpu.icount);
    expect(cpu.seg[DS]).toBe(SEL.data16);
    expect(cpu.regs[3] & 0xffff).toBe(0x55);
    // A failing LDS leaves the register alone.
    const c2 = pm('mov ebx, 7\nlds ebx, [p]\nhlt\np: dd 1\ndw 0x77');
    expect(runCatch(c2, 2)).toEqual(GP(0x74));
    expect(c2.regs[3]).toBe(7);
  });

  it('MOV r32, sreg zero-extends; MOV m16, sreg writes 16 bits; PUSH sreg with o32 writes 16 bits and moves ESP by 4', () => {
    const cpu = pm(`mov eax, -1\nmov eax, ds\nmov dword [0x3000], -1\nmov [0x3000], ds\nmov dword [${STACK_TOP - 4}], -1\npush ds\no16 push es`);
    expect(runCatch(cpu, 7)).toBeNull();
    expect(cpu.regs[0]).toBe(SEL.data32);
    expect(cpu.mem.view.getUint32(0x3000, true)).toBe((0xffff0000 | SEL.data32) >>> 0);
    expect(cpu.mem.view.getUint32(STACK_TOP - 4, true)).toBe((0xffff0000 | SEL.data32) >>> 0);
    expect(cpu.regs[4]).toBe(STACK_TOP - 6);
    expect(cpu.mem.view.getUint16(STACK_TOP - 6, true)).toBe(SEL.data32);
  });

  it('MOV SS starts the interrupt shadow', () => {
    const cpu = pm(`mov ax, ${SEL.data32}\nmov ss, ax\nnop`);
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.shadowAt).toBe(cpu.icount);
  });

  it('real mode: MOV DS sets base = selector << 4; PUSH CS / POP DS', () => {
    const cpu = real('mov ax, 0x1234\nmov ds, ax\npush cs\npop es');
    expect(runCatch(cpu, 4)).toBeNull();
    expect(cpu.segBase[DS]).toBe(0x12340);
    expect(cpu.seg[0]).toBe(0x1000);
  });
});

describe('LAR / LSL / VERR / VERW', () => {
  // One descriptor of every kind at GDT index 8 (selector 0x40), DPL 0 unless said otherwise.
  type Row = { name: string; d: [number, number]; lar: boolean; lsl: boolean; verr: boolean; verw: boolean };
  const rows: Row[] = [
    { name: 'data RW', d: segDesc(0x1000, 0x12345, DATA_RW, 0), lar: true, lsl: true, verr: true, verw: true },
    { name: 'data RO', d: segDesc(0, 0xfff, DATA_RO, 0), lar: true, lsl: true, verr: true, verw: false },
    { name: 'code XO', d: segDesc(0, 0xfff, CODE_XO, 0), lar: true, lsl: true, verr: false, verw: false },
    { name: 'code XR', d: segDesc(0, 0xfff, CODE_XR, 0), lar: true, lsl: true, verr: true, verw: false },
    { name: 'conforming XR', d: segDesc(0, 0xfff, CODE_CONF_XR, 0), lar: true, lsl: true, verr: true, verw: false },
  ];
  const sysTypes: Array<[number, boolean, boolean]> = [
    // type, LAR valid, LSL valid
    [0, false, false], [1, true, true], [2, true, true], [3, true, true], [4, true, false], [5, true, false],
    [6, false, false], [7, false, false], [8, false, false], [9, true, true], [10, false, false],
    [11, true, true], [12, true, false], [13, false, false], [14, false, false], [15, false, false],
  ];
  const GATE_TYPES = new Set([4, 5, 6, 7, 12, 14, 15]);
  for (const [t, larOk, lslOk] of sysTypes) {
    const d = GATE_TYPES.has(t) ? gateDesc(8, 0x1234, t, 0) : sysDesc(0x3000, 0x67, t, 0);
    rows.push({ name: `system type ${t}`, d, lar: larOk, lsl: lslOk, verr: false, verw: false });
  }

  const program = 'mov ecx, 0x40\nmov eax, -1\nmov edx, -1\nlar eax, ecx\nsetz bl\nlsl edx, ecx\nsetz bh\nverr cx\nsetz byte [0x3000]\nverw cx\nsetz byte [0x3001]';
  for (const r of rows) {
    it(r.name, () => {
      const cpu = pm(program, (cpu) => setGdt(cpu, 8, r.d));
      expect(runCatch(cpu, 11)).toBeNull();
      const hi = r.d[1] >>> 0;
      expect([(cpu.regs[3] & 0xff) === 1, ((cpu.regs[3] >> 8) & 0xff) === 1, cpu.mem.ram[0x3000] === 1, cpu.mem.ram[0x3001] === 1])
        .toEqual([r.lar, r.lsl, r.verr, r.verw]);
      expect(cpu.regs[0] >>> 0).toBe(r.lar ? hi & 0x00ffff00 : 0xffffffff);
      const raw = (r.d[0] & 0xffff) | (hi & 0xf0000);
      expect(cpu.regs[2] >>> 0).toBe(r.lsl ? raw : 0xffffffff);
    });
  }

  it('privilege: DPL < CPL or DPL < RPL fails unless conforming code; null and out-of-table fail', () => {
    const cpu = pm('lar eax, [sels]\nsetz byte [0x3000]\nlar eax, [sels+2]\nsetz byte [0x3001]\nlar eax, [sels+4]\nsetz byte [0x3002]\nverr word [sels+6]\nsetz byte [0x3003]\nlsl eax, [sels+8]\nsetz byte [0x3004]\nhlt\nsels: dw 0x43, 0x4b, 0x53, 0, 0x2000', (cpu) => {
      setGdt(cpu, 8, segDesc(0, 0xfff, DATA_RW, 2)); // 0x43: RPL 3 > DPL 2
      setGdt(cpu, 9, segDesc(0, 0xfff, CODE_CONF_XR, 0)); // 0x4b: conforming, fine
      setGdt(cpu, 10, segDesc(0, 0xfff, DATA_RW, 3)); // 0x53 at CPL 0: fine
    });
    expect(runCatch(cpu, 10)).toBeNull();
    expect([...cpu.mem.ram.subarray(0x3000, 0x3005)]).toEqual([0, 1, 1, 0, 0]);
  });

  it('16-bit LAR masks FF00, 16-bit LSL truncates, LSL applies G', () => {
    const cpu = pm('mov ecx, 0x40\nmov eax, -1\nmov edx, -1\nlar ax, cx\nlsl dx, cx\nlsl esi, ecx', (cpu) => setGdt(cpu, 8, segDesc(0, 0x12345, DATA_RW, 0, { g: true })));
    expect(runCatch(cpu, 6)).toBeNull();
    expect(cpu.regs[0] >>> 0).toBe(0xffff9300);
    expect(cpu.regs[2] >>> 0).toBe(0xffff5fff);
    expect(cpu.regs[6] >>> 0).toBe(0x12345fff); // G scales the limit
  });

  it('is #UD in real mode and in virtual-8086 mode', () => {
    expect(runCatch(real('lar ax, cx'))).toEqual({ vector: EXC_UD, errorCode: 0 });
    expect(runCatch(real('verr cx'))).toEqual({ vector: EXC_UD, errorCode: 0 });
    const cpu = real('sldt ax');
    cpu.cr0 |= CR0_PE;
    cpu.setEflags(cpu.getEflags() | VM);
    cpu.setCpl(3);
    expect(runCatch(cpu)).toEqual({ vector: EXC_UD, errorCode: 0 });
  });
});

describe('ARPL', () => {
  it('raises RPL and sets ZF, or clears ZF', () => {
    const cpu = pm('mov ax, 0x41\nmov bx, 0x13\narpl ax, bx\nsetz cl\narpl bx, ax\nsetz ch\nmov word [0x3000], 0x10\narpl [0x3000], bx\nsetz dl');
    expect(runCatch(cpu, 9)).toBeNull();
    expect(cpu.regs[0] & 0xffff).toBe(0x43);
    expect(cpu.regs[1] & 0xffff).toBe(0x0001);
    expect(cpu.mem.view.getUint16(0x3000, true)).toBe(0x13);
    expect(cpu.regs[2] & 0xff).toBe(1);
  });
});

describe('SLDT / STR / LLDT / LTR', () => {
  it('LTR loads TR from an available TSS and marks it busy; STR/SLDT store selectors', () => {
    const cpu = pm('mov ax, 0x40\nltr ax\nmov edx, -1\nstr edx\nmov ax, 0x48\nlldt ax\nsldt [0x3000]\nmov ebx, -1\nsldt bx', (cpu) => {
      setGdt(cpu, 8, sysDesc(0x4000, 0x67, 9, 0));
      setGdt(cpu, 9, sysDesc(0x5000, 0xff, 2, 0));
    });
    expect(runCatch(cpu, 9)).toBeNull();
    expect(cpu.seg[TR]).toBe(0x40);
    expect(cpu.segAr[TR] & 0xf).toBe(11);
    expect((descHi(cpu, 0x40) >> 8) & 0xf).toBe(11);
    expect(cpu.segBase[TR]).toBe(0x4000);
    expect(cpu.regs[2]).toBe(0x40);
    expect(cpu.seg[LDTR]).toBe(0x48);
    expect(cpu.segLimit[LDTR]).toBe(0xff);
    expect(cpu.mem.view.getUint16(0x3000, true)).toBe(0x48);
    expect(cpu.regs[3] >>> 0).toBe(0xffff0048);
  });

  const tableLoadCases: Array<['LTR' | 'LLDT', string, number, [number, number], { vector: number; errorCode: number }]> = [
    ['LTR', 'busy TSS', 0x40, sysDesc(0x4000, 0x67, 11, 0), GP(0x40)],
    ['LTR', 'null selector', 0, sysDesc(0x4000, 0x67, 9, 0), GP(0)],
    ['LTR', 'LDT-relative selector', 0x44, sysDesc(0x4000, 0x67, 9, 0), GP(0x44)],
    ['LTR', 'not a TSS', 0x40, segDesc(0, 0xfff, DATA_RW, 0), GP(0x40)],
    ['LTR', 'outside the GDT', 0x1000, sysDesc(0x4000, 0x67, 9, 0), GP(0x1000)],
    ['LTR', 'not present', 0x40, sysDesc(0x4000, 0x67, 1, 0, false), { vector: EXC_NP, errorCode: 0x40 }],
    ['LLDT', 'not an LDT', 0x40, sysDesc(0x4000, 0x67, 9, 0), GP(0x40)],
    ['LLDT', 'LDT-relative selector', 0x44, sysDesc(0x4000, 0x67, 2, 0), GP(0x44)],
    ['LLDT', 'outside the GDT', 0x800, sysDesc(0x4000, 0x67, 2, 0), GP(0x800)],
    ['LLDT', 'not present', 0x40, sysDesc(0x4000, 0x67, 2, 0, false), { vector: EXC_NP, errorCode: 0x40 }],
  ];
  for (const [insn, name, sel, d, fault] of tableLoadCases) {
    it(`${insn}: ${name}`, () => {
      const cpu = pm(`mov ax, ${sel}\n${insn.toLowerCase()} ax`, (cpu) => setGdt(cpu, 8, d));
      expect(runCatch(cpu, 2)).toEqual(fault);
    });
  }
  it('LLDT with a null selector makes LDTR unusable', () => {
    const cpu = pm('xor eax, eax\nlldt ax');
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.segAr[LDTR] & AR_UNUSABLE).toBe(AR_UNUSABLE);
  });
  it('LLDT, LTR, LGDT, LIDT are #GP(0) at CPL 3; SLDT and STR are allowed', () => {
    for (const src of ['lldt ax', 'ltr ax', 'lgdt [0x3000]', 'lidt [0x3000]']) {
      const cpu = pm(src, enterRing3);
      expect(runCatch(cpu)).toEqual(GP(0));
    }
    const cpu = pm('str ax\nsldt bx', enterRing3);
    expect(runCatch(cpu, 2)).toBeNull();
  });
});

describe('SGDT / SIDT / LGDT / LIDT', () => {
  it('stores limit and the full 32-bit base for both operand sizes', () => {
    const cpu = pm('sgdt [0x3000]\no16 sidt [0x3010]', (cpu) => {
      cpu.gdtrBase = 0xfe123456 | 0;
      cpu.idtrBase = 0xab987654 | 0;
      cpu.idtrLimit = 0x3ff;
    });
    const gdtLimit = cpu.gdtrLimit;
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.mem.view.getUint16(0x3000, true)).toBe(gdtLimit);
    expect(cpu.mem.view.getUint32(0x3002, true)).toBe(0xfe123456);
    expect(cpu.mem.view.getUint16(0x3010, true)).toBe(0x3ff);
    expect(cpu.mem.view.getUint32(0x3012, true)).toBe(0xab987654);
  });
  it('faults before writing either part when the base does not fit', () => {
    const cpu = pm(`mov ax, 0x40\nmov es, ax\nsgdt [es:0xffc]`, (cpu) => setGdt(cpu, 8, segDesc(0x3000, 0xfff, DATA_RW, 0)));
    expect(runCatch(cpu, 3)).toEqual(GP(0));
    expect(cpu.mem.view.getUint16(0x3ffc, true)).toBe(0);
  });
  it('LGDT with a 16-bit operand size loads a 24-bit base; 32-bit loads all of it', () => {
    const cpu = pm('o16 lgdt [t]\nmov ebx, [0x3000]\nlidt [t]\nhlt\nt: dw 0x1ff\ndd 0xfe123456');
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.gdtrLimit).toBe(0x1ff);
    expect(cpu.gdtrBase >>> 0).toBe(0x123456);
    cpu.gdtrBase = GDT_BASE;
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.idtrBase >>> 0).toBe(0xfe123456);
  });
  it('work in real mode', () => {
    const cpu = real('lidt [t]\nsidt [0x100]\nhlt\nt: dw 0x7ff\ndd 0x00345678');
    cpu.setSegCache(DS, 0x1000, 0x10000, 0xffff, 0x93);
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.idtrBase).toBe(0x345678);
    expect(cpu.mem.view.getUint32(0x10102, true)).toBe(0x345678);
  });
});

/**
 * The model-specific choices, on a ROM run by trapdiff and by Bochs (the reference peer): LAR
 * keeps the limit's high nibble, o16 SGDT stores the full base, o16 LGDT loads 24 bits, PUSH
 * sreg with o32 writes 16 bits, MOV r32,sreg zero-extends, a 16-bit TSS fills the upper register
 * halves with 0xffff, and a far return to ring 3 nulls DS (a null RPL-3 selector), ES (DPL 0) and
 * GS (null) but keeps FS (DPL 3). QEMU differs on the first four and the TSS.
 */
const MODEL_ROM = `
${romStart({
  idt: false,
  copyMore: `  ; the task stub to 0x6000
  mov si, stub - 0xF0000
  mov di, 0x6000
  mov cx, stub_end - stub
  cs rep movsb
`,
})}
${romFlatSegments()}
  ; 1: LAR r32 on flat code
  mov ecx, 0x08
  mov eax, -1
  lar eax, ecx
  call hex
  ; 2: o16 SGDT with a base whose high byte is set
  lgdt [fake]
  o16 sgdt [0x3000]
  lgdt [gdtr]
  mov eax, [0x3002]
  call hex
  ; 3: o16 LGDT loads 24 bits
  o16 lgdt [fake]
  sgdt [0x3010]
  lgdt [gdtr]
  mov eax, [0x3012]
  call hex
  ; 4: PUSH DS with o32: the upper word of the slot
  mov dword [esp-4], 0xffffffff
  push ds
  pop eax
  call hex
  ; 5: MOV r32, DS
  mov eax, -1
  mov eax, ds
  call hex
  ; 6: 16-bit TSS switch
  mov ax, 0x28
  ltr ax
  mov edi, 0x5000
  mov word [edi+0x0e], 0x6000
  mov word [edi+0x10], 0x0002
  mov word [edi+0x12], 0x1111
  mov word [edi+0x14], 0x2222
  mov word [edi+0x16], 0x3333
  mov word [edi+0x18], 0x4444
  mov word [edi+0x1a], 0x8000
  mov word [edi+0x1c], 0x6666
  mov word [edi+0x1e], 0x7777
  mov word [edi+0x20], 0x8888
  mov word [edi+0x22], 0x10
  mov word [edi+0x24], 0x08
  mov word [edi+0x26], 0x10
  mov word [edi+0x28], 0x10
  mov word [edi+0x2a], 0
  mov eax, 0x12345678
  mov fs, [fsval]
  jmp 0x30:0
after_t5:
  mov esp, 0x9000
${romPrint(['[0x3100]', '[0x3104]', '[0x310c]', '[0x3110]', '[0x3114]'])}
  ; 7: RETF to ring 3 with DS null (RPL 3), ES DPL-0 data, FS DPL-3 data, GS null RPL 0
  pushfd
  or dword [esp], 0x3000
  popfd
  mov ax, 0x10
  mov ds, ax
  mov esp, 0x9000
  mov ax, 3
  mov ds, ax
  mov ax, 0x10
  mov es, ax
  mov ax, 0x23
  mov fs, ax
  xor ax, ax
  mov gs, ax
  push dword 0x23
  push dword 0x8800
  push dword 0x1b
  push dword ring3
  retf
ring3:
${romPrint(['ds', 'es', 'fs', 'gs'])}
${romShutdown('ss:')}
  hlt
  jmp $

${ROM_HEX}

stub:           ; the 16-bit task runs this at 0x6000 (CS = flat 32-bit code)
  mov [0x3100], eax
  mov [0x3104], ecx
  mov [0x310c], esp
  mov [0x3110], fs
  mov esp, 0x8ff0
  pushfd
  pop dword [0x3114]
  jmp 0x08:after_t5
stub_end:

fsval: dw 0x10
${romEnd(GDT_FLAT_R0 + GDT_FLAT_R3 + GDT_TSS + `  dd 0x5000002b, 0x00008100      ; 30 16-bit TSS
`, {
  extra: `fake: dw 0x37
  dd 0xAB123456
`,
})}
`;
const MODEL_EXPECTED = [
  '00CF9B00', 'AB123456', '00123456', 'FFFF0010', '00000010', // LAR, SGDT o16, LGDT o16, PUSH DS, MOV r32, DS
  'FFFF1111', 'FFFF2222', 'FFFF8000', '00000000', '00000002', // 16-bit task: EAX, ECX, ESP, FS, EFLAGS
  '00000000', '00000000', '00000023', '00000000', // after RETF to ring 3: DS, ES, FS, GS
].join('\n') + '\n';

compareOnRom('model-specific choices', MODEL_ROM, MODEL_EXPECTED);
