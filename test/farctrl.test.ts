// Far CALL/JMP/RETF: real and virtual-8086 mode, direct code targets (conforming and not), call
// gates with the inner-privilege stack switch and parameter copy (and every check on the way),
// and far returns to the same and to an outer level with the data-segment invalidation.

import { describe, expect, it } from 'vitest';
import {
  AR_UNUSABLE, CR0_PE, CS, DS, ES, EXC_GP, EXC_NP, EXC_SS, EXC_TS, FS, SS, TR, VM,
} from '../src/cpu/constants.js';
import type { Cpu } from '../src/cpu/cpu.js';
import { asm, makeCpu, SEL, STACK_TOP } from './helpers/harness.js';
import { enterRing3 } from './helpers/idt.js';
import { gateDesc, runCatch, segDesc, setGdt, sysDesc } from './helpers/segments.js';

const GP = (errorCode: number) => ({ vector: EXC_GP, errorCode });
const NP = (errorCode: number) => ({ vector: EXC_NP, errorCode });
const TS = (errorCode: number) => ({ vector: EXC_TS, errorCode });
const SSF = (errorCode: number) => ({ vector: EXC_SS, errorCode });

const TSS = 0x4000, RING0_STACK = 0x7000;
const GATE = 0x40, TSS_SEL = 0x48, CODE_B = 0x58; // GDT indices 8, 9, 11
const u32 = (cpu: Cpu, a: number) => cpu.mem.view.getUint32(a, true);
const u16 = (cpu: Cpu, a: number) => cpu.mem.view.getUint16(a, true);

/**
 * A ring-3 caller at 0x10000 and a ring-0 routine at 0x10100 (label `target`), a 32-bit TSS
 * with SS0:ESP0 = 0x10:0x7000 loaded in TR, and a call gate at 0x40 (DPL 3, 2 parameters).
 */
function world(caller: string, routine = 'hlt', ring3 = true, setup?: (cpu: Cpu) => void): Cpu {
  const src = `${caller}\ntimes 0x100 - ($ - $$) db 0x90\ntarget:\n${routine}`;
  const { cpu } = makeCpu('pm32', asm(src, 32));
  setGdt(cpu, 8, gateDesc(SEL.code32, 0x10100, 12, 3, 2));
  setGdt(cpu, 9, sysDesc(TSS, 0x67, 11, 0));
  setGdt(cpu, 11, segDesc(0x10000, 0xffff, 11, 0)); // code with base 0x10000, for 16-bit gates
  cpu.mem.view.setUint32(TSS + 4, RING0_STACK, true);
  cpu.mem.view.setUint32(TSS + 8, SEL.data32, true);
  cpu.setSegCache(TR, TSS_SEL, TSS, 0x67, 0x8b);
  if (ring3) enterRing3(cpu);
  setup?.(cpu);
  return cpu;
}

describe('CALL through a call gate to an inner level', () => {
  it('switches to the TSS stack, copies the parameters and returns with RETF 8', () => {
    const caller = 'push dword 0x11111111\npush dword 0x22222222\ncall 0x43:0\nback: hlt';
    const routine = `mov ax, ${SEL.data32}\nmov ds, ax\nmov ax, 0x50\nmov es, ax\nmov ax, ${SEL.data32r3}\nmov fs, ax\nretf 8`;
    const cpu = world(caller, routine, true, (cpu) => setGdt(cpu, 10, segDesc(0, 0xfffff, 15, 0, { g: true })));
    expect(runCatch(cpu, 3)).toBeNull();
    expect(cpu.cpl).toBe(0);
    expect(cpu.seg[CS]).toBe(SEL.code32);
    expect(cpu.eip).toBe(0x10100);
    expect(cpu.seg[SS]).toBe(SEL.data32);
    expect(cpu.regs[4]).toBe(RING0_STACK - 24);
    const back = 0x10000 + 5 + 5 + 7;
    expect([0, 1, 2, 3, 4, 5].map((k) => u32(cpu, RING0_STACK - 4 - 4 * k)))
      .toEqual([SEL.data32r3, STACK_TOP - 8, 0x11111111, 0x22222222, SEL.code32r3, back]);
    expect(runCatch(cpu, 7)).toBeNull();
    expect(cpu.cpl).toBe(3);
    expect(cpu.seg[CS]).toBe(SEL.code32r3);
    expect(cpu.eip).toBe(back);
    expect(cpu.seg[SS]).toBe(SEL.data32r3);
    expect(cpu.regs[4]).toBe(STACK_TOP);
    // DS (DPL 0 data) is nulled, ES (conforming code) and FS (DPL 3) survive.
    expect(cpu.seg[DS]).toBe(0);
    expect(cpu.segAr[DS] & AR_UNUSABLE).toBe(AR_UNUSABLE);
    expect(cpu.seg[ES]).toBe(0x50);
    expect(cpu.seg[FS]).toBe(SEL.data32r3);
  });

  it('a 16-bit gate pushes words and copies word parameters', () => {
    const cpu = world('push word 0x1234\ncall 0x53:0', 'hlt', true, (cpu) => {
      setGdt(cpu, 10, gateDesc(CODE_B, 0x100, 4, 3, 1)); // 16-bit gate -> base 0x10000 code, offset 0x100
    });
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.seg[CS]).toBe(CODE_B);
    expect(cpu.eip).toBe(0x100);
    expect(cpu.regs[4]).toBe(RING0_STACK - 10);
    expect([0, 1, 2, 3, 4].map((k) => u16(cpu, RING0_STACK - 2 - 2 * k)))
      .toEqual([SEL.data32r3, (STACK_TOP - 2) & 0xffff, 0x1234, SEL.code32r3, (0x10000 + 4 + 7) & 0xffff]);
  });

  it('the new stack may be expand-down', () => {
    // SS0 = 0x68: expand-down writable data, limit 0x6000, so 0x6001..0xffffffff is valid.
    const cpu = world('call 0x43:0', 'hlt', true, (c) => {
      c.mem.view.setUint16(TSS + 8, 0x68, true);
      setGdt(c, 13, segDesc(0, 0x6000, 7, 0));
    });
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.seg[SS]).toBe(0x68);
    expect(cpu.regs[4]).toBe(RING0_STACK - 24);
    const low = world('call 0x43:0', 'hlt', true, (c) => {
      c.mem.view.setUint16(TSS + 8, 0x68, true);
      setGdt(c, 13, segDesc(0, 0x6ff0, 7, 0)); // the frame would reach 0x6fe8
    });
    expect(runCatch(low, 1)).toEqual(SSF(0x68));
  });

  it('a gate to a conforming segment keeps the CPL and the stack', () => {
    const cpu = world('call 0x53:0', 'hlt', true, (cpu) => {
      setGdt(cpu, 10, gateDesc(0x60, 0x10100, 12, 3));
      setGdt(cpu, 12, segDesc(0, 0xfffff, 15, 0, { g: true }));
    });
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.cpl).toBe(3);
    expect(cpu.seg[CS]).toBe(0x63);
    expect(cpu.regs[4]).toBe(STACK_TOP - 8);
  });

  type Case = [string, (cpu: Cpu) => void, { vector: number; errorCode: number }, boolean?];
  const cases: Case[] = [
    ['gate DPL < CPL', (c) => setGdt(c, 8, gateDesc(SEL.code32, 0x10100, 12, 0, 2)), GP(GATE)],
    ['gate not present', (c) => setGdt(c, 8, gateDesc(SEL.code32, 0x10100, 12, 3, 2, false)), NP(GATE)],
    ['gate CS null', (c) => setGdt(c, 8, gateDesc(0, 0x10100, 12, 3)), GP(0)],
    ['gate CS outside the GDT', (c) => setGdt(c, 8, gateDesc(0x800, 0x10100, 12, 3)), GP(0x800)],
    ['gate CS is data', (c) => setGdt(c, 8, gateDesc(SEL.data32, 0x10100, 12, 3)), GP(SEL.data32)],
    ['gate CS not present', (c) => { setGdt(c, 8, gateDesc(0x60, 0x10100, 12, 3)); setGdt(c, 12, segDesc(0, 0xfffff, 11, 0, { p: false })); }, NP(0x60)],
    ['TSS too short for SS0:ESP0', (c) => c.setSegCache(TR, TSS_SEL, TSS, 6, 0x8b), TS(TSS_SEL)],
    ['SS0 null', (c) => c.mem.view.setUint16(TSS + 8, 3, true), TS(0)],
    ['SS0 outside the GDT', (c) => c.mem.view.setUint16(TSS + 8, 0x800, true), TS(0x800)],
    ['SS0 RPL != new CPL', (c) => c.mem.view.setUint16(TSS + 8, SEL.data32 | 1, true), TS(SEL.data32)],
    ['SS0 DPL != new CPL', (c) => c.mem.view.setUint16(TSS + 8, SEL.data32r3 & ~3, true), TS(SEL.data32r3 & ~3)],
    ['SS0 read-only', (c) => { c.mem.view.setUint16(TSS + 8, 0x68, true); setGdt(c, 13, segDesc(0, 0xfffff, 1, 0)); }, TS(0x68)],
    ['SS0 not present', (c) => { c.mem.view.setUint16(TSS + 8, 0x70, true); setGdt(c, 14, segDesc(0, 0xfffff, 3, 0, { p: false })); }, SSF(0x70)],
    ['no room on the new stack', (c) => { c.mem.view.setUint16(TSS + 8, 0x78, true); c.mem.view.setUint32(TSS + 4, 0x10, true); setGdt(c, 15, segDesc(0, 0xffff, 3, 0)); }, SSF(0x78)],
    ['no room is found before the parameters are read', (c) => {
      c.mem.view.setUint16(TSS + 8, 0x78, true); c.mem.view.setUint32(TSS + 4, 0x10, true); setGdt(c, 15, segDesc(0, 0xffff, 3, 0));
      c.setSegCache(SS, SEL.data32r3, 0, STACK_TOP - 1, 0xc0f3); // reading the parameters would be #SS(0)
    }, SSF(0x78)],
    ['offset beyond the CS limit', (c) => { setGdt(c, 8, gateDesc(0x80, 0x2000, 12, 3)); setGdt(c, 16, segDesc(0, 0xfff, 11, 0)); }, GP(0)],
  ];
  for (const [name, setup, fault] of cases) {
    it(name, () => {
      const cpu = world('call 0x43:0', 'hlt', true, setup);
      expect(runCatch(cpu, 1)).toEqual(fault);
      expect(cpu.cpl).toBe(3);
      expect(cpu.seg[CS]).toBe(SEL.code32r3);
      expect(cpu.seg[SS]).toBe(SEL.data32r3);
      expect(cpu.regs[4]).toBe(STACK_TOP);
      expect(cpu.eip).toBe(0x10000);
    });
  }
  it('gate RPL > gate DPL', () => {
    const cpu = world('call 0x43:0', 'hlt', false, (c) => setGdt(c, 8, gateDesc(SEL.code32, 0x10100, 12, 2)));
    expect(runCatch(cpu, 1)).toEqual(GP(GATE));
  });
  it('gate CS DPL > CPL', () => {
    const cpu = world('call 0x40:0', 'hlt', false, (c) => setGdt(c, 8, gateDesc(SEL.code32r3, 0x10100, 12, 3)));
    expect(runCatch(cpu, 1)).toEqual(GP(SEL.code32r3 & ~3));
  });
  it('JMP through a gate to a more privileged non-conforming segment is #GP(CS)', () => {
    const cpu = world('jmp 0x43:0');
    expect(runCatch(cpu, 1)).toEqual(GP(SEL.code32));
  });
  it('JMP through a gate at the same level pushes nothing', () => {
    const cpu = world('jmp 0x40:0', 'hlt', false, (c) => setGdt(c, 8, gateDesc(SEL.code32, 0x10100, 12, 0)));
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.eip).toBe(0x10100);
    expect(cpu.regs[4]).toBe(STACK_TOP);
  });
});

describe('direct far JMP/CALL in protected mode', () => {
  it('CALL pushes CS:EIP (32- and 16-bit) and JMP does not', () => {
    const cpu = world(`call ${SEL.code32}:target`, 'call word 0x58:(t2 - 0x10000)\nt2: hlt', false);
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.eip).toBe(0x10100);
    expect(cpu.regs[4]).toBe(STACK_TOP - 8);
    expect(u32(cpu, STACK_TOP - 4)).toBe(SEL.code32);
    expect(u32(cpu, STACK_TOP - 8)).toBe(0x10007);
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.seg[CS]).toBe(CODE_B);
    expect(cpu.regs[4]).toBe(STACK_TOP - 12);
    expect(u16(cpu, STACK_TOP - 10)).toBe(SEL.code32);
    expect(u16(cpu, STACK_TOP - 12)).toBe(0x0106);
    const c2 = world(`jmp ${SEL.code32 | 3}:target`, 'hlt', false, (c) => setGdt(c, 10, segDesc(0, 0xfffff, 15, 0, { g: true })));
    expect(runCatch(c2, 1)).toEqual(GP(SEL.code32)); // RPL 3 > CPL 0
  });

  it('a conforming target keeps the CPL and gets RPL = CPL', () => {
    const cpu = world('jmp 0x50:target', 'hlt', true, (c) => setGdt(c, 10, segDesc(0, 0xfffff, 15, 0, { g: true })));
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.cpl).toBe(3);
    expect(cpu.seg[CS]).toBe(0x53);
    expect(cpu.eip).toBe(0x10100);
  });

  type Case = [string, string, boolean, (cpu: Cpu) => void, { vector: number; errorCode: number }];
  const none = () => {};
  const cases: Case[] = [
    ['null selector', 'jmp 0:0', false, none, GP(0)],
    ['outside the GDT', 'jmp 0x800:0', false, none, GP(0x800)],
    ['data segment', `jmp ${SEL.data32}:0`, false, none, GP(SEL.data32)],
    ['non-conforming DPL != CPL', `call ${SEL.code32}:0`, true, none, GP(SEL.code32)],
    ['conforming DPL > CPL', 'jmp 0x50:0', false, (c) => { setGdt(c, 10, segDesc(0, 0xfffff, 15, 1, { g: true })); }, GP(0x50)],
    ['not present', 'jmp 0x50:0', false, (c) => setGdt(c, 10, segDesc(0, 0xfffff, 11, 0, { p: false })), NP(0x50)],
    ['offset beyond the limit', 'jmp 0x50:0x1000', false, (c) => setGdt(c, 10, segDesc(0, 0xfff, 11, 0)), GP(0)],
    ['busy TSS', `jmp ${TSS_SEL}:0`, false, none, GP(TSS_SEL)],
    ['LDT descriptor', 'jmp 0x50:0', false, (c) => setGdt(c, 10, sysDesc(0x5000, 0xff, 2, 0)), GP(0x50)],
    ['interrupt gate', 'jmp 0x50:0', false, (c) => setGdt(c, 10, gateDesc(8, 0, 14, 0)), GP(0x50)],
    ['CALL without stack room', `call ${SEL.code32}:target`, false, (c) => { c.setSegCache(SS, SEL.data32, 0, 0xfff, 0xc093); c.regs[4] = 4; }, SSF(0)],
  ];
  for (const [name, caller, ring3, setup, fault] of cases) {
    it(name, () => {
      const cpu = world(caller, 'hlt', ring3, setup);
      const esp = cpu.regs[4];
      expect(runCatch(cpu, 1)).toEqual(fault);
      expect(cpu.eip).toBe(0x10000);
      expect(cpu.regs[4]).toBe(esp);
    });
  }

  it('CALL m16:32 and JMP m16:16 read the pointer from memory', () => {
    const cpu = world(`call far [p]\nhlt\np: dd target\ndw ${SEL.code32}`, `jmp far word [q]\nq: dw 0x100\ndw ${CODE_B}`, false);
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.eip).toBe(0x10100);
    expect(u32(cpu, STACK_TOP - 8)).toBe(0x10006);
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.seg[CS]).toBe(CODE_B);
    expect(cpu.eip).toBe(0x100);
  });
});

describe('RETF in protected mode', () => {
  /** Ring-0 code returning with RETF from a stack holding `words` (dwords, lowest first). */
  function retf(words: number[], setup?: (cpu: Cpu) => void, insn = 'retf'): Cpu {
    const cpu = world(insn, 'hlt', false, setup);
    words.forEach((w, k) => cpu.mem.view.setUint32(STACK_TOP - 4 * words.length + 4 * k, w, true));
    cpu.regs[4] = STACK_TOP - 4 * words.length;
    return cpu;
  }
  it('to the same level pops CS:EIP and releases imm16 bytes', () => {
    const cpu = retf([0x10100, SEL.code32, 1, 2], undefined, 'retf 8');
    expect(runCatch(cpu)).toBeNull();
    expect(cpu.eip).toBe(0x10100);
    expect(cpu.regs[4]).toBe(STACK_TOP);
  });
  it('to an outer level loads SS:ESP and releases imm16 bytes on both stacks', () => {
    const cpu = retf([0x10100, SEL.code32r3, 1, 2, 0x8000, SEL.data32r3], undefined, 'retf 8');
    expect(runCatch(cpu)).toBeNull();
    expect(cpu.cpl).toBe(3);
    expect(cpu.seg[SS]).toBe(SEL.data32r3);
    expect(cpu.regs[4]).toBe(0x8008);
    expect(cpu.seg[DS]).toBe(0); // DPL-0 data nulled at CPL 3
  });
  it('o16 to an outer 16-bit stack changes only SP', () => {
    const cpu = retf([0, 0, 0], (c) => setGdt(c, 10, segDesc(0, 0xffff, 3, 3, { db: false })), 'o16 retf');
    cpu.regs[4] = STACK_TOP - 8;
    [0x0100, SEL.code32r3, 0x1234, 0x53].forEach((w, k) => cpu.mem.view.setUint16(STACK_TOP - 8 + 2 * k, w, true));
    expect(runCatch(cpu)).toBeNull();
    expect(cpu.seg[SS]).toBe(0x53);
    expect(cpu.regs[4]).toBe(0x1234);
    expect(cpu.eip).toBe(0x100);
  });
  type Case = [string, number[], (cpu: Cpu) => void, { vector: number; errorCode: number }];
  const none = () => {};
  const cases: Case[] = [
    ['null CS', [0x10100, 0], none, GP(0)],
    ['CS outside the GDT', [0x10100, 0x800], none, GP(0x800)],
    ['CS not code', [0x10100, SEL.data32], none, GP(SEL.data32)],
    ['non-conforming DPL != RPL', [0x10100, 0x19], none, GP(0x18)],
    ['conforming DPL > RPL', [0x10100, 0x51], (c) => setGdt(c, 10, segDesc(0, 0xfffff, 15, 2, { g: true })), GP(0x50)],
    ['CS not present', [0x10100, 0x50], (c) => setGdt(c, 10, segDesc(0, 0xfffff, 11, 0, { p: false })), NP(0x50)],
    ['EIP beyond the limit (same level)', [0x2000, 0x50], (c) => setGdt(c, 10, segDesc(0, 0xfff, 11, 0)), GP(0)],
    ['outer: null SS', [0x10100, SEL.code32r3, 0x8000, 3], none, GP(0)],
    ['outer: SS outside the GDT', [0x10100, SEL.code32r3, 0x8000, 0x803], none, GP(0x800)],
    ['outer: SS RPL != CS RPL', [0x10100, SEL.code32r3, 0x8000, SEL.data32r3 - 1], none, GP(SEL.data32r3 & ~3)],
    ['outer: SS DPL != CS RPL', [0x10100, SEL.code32r3, 0x8000, SEL.data32 | 3], none, GP(SEL.data32)],
    ['outer: SS not writable', [0x10100, SEL.code32r3, 0x8000, 0x53], (c) => setGdt(c, 10, segDesc(0, 0xfffff, 1, 3)), GP(0x50)],
    ['outer: SS not present', [0x10100, SEL.code32r3, 0x8000, 0x53], (c) => setGdt(c, 10, segDesc(0, 0xfffff, 3, 3, { p: false })), SSF(0x50)],
    ['outer: EIP beyond the limit', [0x2000, 0x53, 0x8000, SEL.data32r3], (c) => setGdt(c, 10, segDesc(0, 0xfff, 11, 3)), GP(0)],
    ['stack too short for CS', [0x10100], (c) => c.setSegCache(SS, SEL.data32, 0, STACK_TOP - 1, 0xc093), SSF(0)],
    ['stack too short for the whole 32-bit CS slot', [0x10100, SEL.code32], (c) => c.setSegCache(SS, SEL.data32, 0, STACK_TOP - 3, 0xc093), SSF(0)],
  ];
  for (const [name, words, setup, fault] of cases) {
    it(name, () => {
      const cpu = retf(words, setup);
      const esp = cpu.regs[4];
      expect(runCatch(cpu)).toEqual(fault);
      expect(cpu.cpl).toBe(0);
      expect(cpu.regs[4]).toBe(esp);
      expect(cpu.seg[CS]).toBe(SEL.code32);
    });
  }
  it('RPL < CPL', () => {
    const cpu = retf([0x10100, SEL.code32], enterRing3);
    expect(runCatch(cpu)).toEqual(GP(SEL.code32));
  });
});

describe('real and virtual-8086 mode', () => {
  it('far CALL/RETF and JMP in real mode', () => {
    const { cpu } = makeCpu('real', asm('call 0x2000:0x10\nhlt', 16, 0));
    cpu.mem.ram.set(asm('retf 2', 16, 0), 0x20010);
    expect(runCatch(cpu)).toBeNull();
    expect(cpu.seg[CS]).toBe(0x2000);
    expect(cpu.segBase[CS]).toBe(0x20000);
    expect(cpu.eip).toBe(0x10);
    expect(u16(cpu, STACK_TOP - 2)).toBe(0x1000);
    expect(u16(cpu, STACK_TOP - 4)).toBe(5);
    expect(runCatch(cpu)).toBeNull();
    expect(cpu.seg[CS]).toBe(0x1000);
    expect(cpu.eip).toBe(5);
    expect(cpu.regs[4]).toBe(STACK_TOP + 2);
  });
  it('real mode: a target beyond the CS limit is #GP(0)', () => {
    const { cpu } = makeCpu('real', asm('jmp dword 0x2000:0x10000', 16, 0));
    expect(runCatch(cpu)).toEqual(GP(0));
    expect(cpu.seg[CS]).toBe(0x1000);
  });
  it('virtual-8086 mode: far JMP loads CS with base selector << 4', () => {
    const { cpu } = makeCpu('real', asm('jmp 0x3000:0x20', 16, 0));
    cpu.cr0 |= CR0_PE;
    cpu.setEflags(cpu.getEflags() | VM);
    cpu.setCpl(3);
    expect(runCatch(cpu)).toBeNull();
    expect(cpu.segBase[CS]).toBe(0x30000);
    expect(cpu.segAr[CS]).toBe(0xf3);
    expect(cpu.eip).toBe(0x20);
  });
});
