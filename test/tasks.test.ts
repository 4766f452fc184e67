// Hardware task switches: JMP/CALL to a TSS or through a task gate, the IRET task return, busy
// bits, back link, NT, state saving and loading for 32- and 16-bit TSSs, the checks before the
// commit point (old task) and after it (new task), LDT loading, V86 tasks and the T bit.

import { describe, expect, it } from 'vitest';
import {
  CR0_TS, CS, DS, EXC_GP, EXC_NP, EXC_SS, EXC_TS, FS, GS, LDTR, NT, SS, TR, VM,
} from '../src/cpu/constants.js';
import type { Cpu } from '../src/cpu/cpu.js';
import { FAULT } from '../src/cpu/cpu.js';
import { taskReturn } from '../src/cpu/tasks.js';
import { asm, makeCpu, SEL, STACK_TOP } from './helpers/harness.js';
import { descHi, enterRing3, gateDesc, runCatch, segDesc, setGdt, sysDesc } from './helpers/segments.js';

const GP = (errorCode: number) => ({ vector: EXC_GP, errorCode });
const TS = (errorCode: number) => ({ vector: EXC_TS, errorCode });
const NP = (errorCode: number) => ({ vector: EXC_NP, errorCode });

const A = 0x4000, B = 0x5000, A_SEL = 0x48, B_SEL = 0x50, GATE_SEL = 0x60;
const NEW_EIP = 0x10200;
const u32 = (cpu: Cpu, a: number) => cpu.mem.view.getUint32(a, true);
const u16 = (cpu: Cpu, a: number) => cpu.mem.view.getUint16(a, true);
const typeOf = (cpu: Cpu, sel: number) => (descHi(cpu, sel) >>> 8) & 0xf;

interface Tss32 {
  eip: number; eflags: number; regs: number[]; segs: number[]; ldt: number; cr3: number; t: boolean;
}
const DEFAULT_TSS: Tss32 = {
  eip: NEW_EIP, eflags: 0x2 | 1 /* CF */,
  regs: [0xa0, 0xa1, 0xa2, 0xa3, 0x8800, 0xa5, 0xa6, 0xa7],
  segs: [SEL.data32, SEL.code32, SEL.data32, SEL.data32, SEL.data32, SEL.data32], ldt: 0, cr3: 0, t: false,
};
function writeTss32(cpu: Cpu, at: number, t: Tss32): void {
  const v = cpu.mem.view;
  v.setUint32(at + 0x1c, t.cr3, true);
  v.setUint32(at + 0x20, t.eip, true);
  v.setUint32(at + 0x24, t.eflags, true);
  t.regs.forEach((r, k) => v.setUint32(at + 0x28 + 4 * k, r, true));
  t.segs.forEach((s, k) => v.setUint32(at + 0x48 + 4 * k, s, true));
  v.setUint32(at + 0x60, t.ldt, true);
  v.setUint32(at + 0x64, t.t ? 1 : 0, true);
}

/**
 * The current task A (32-bit TSS at 0x4000, busy, in TR) runs `code` at 0x10000; task B (TSS at
 * 0x5000, available) starts at 0x10200; a task gate for B at 0x60 (DPL 3).
 */
function world(code: string, tss: Partial<Tss32> = {}, setup?: (cpu: Cpu) => void): Cpu {
  const { cpu } = makeCpu('pm32', asm(`${code}\ntimes 0x200 - ($ - $$) db 0x90\nhlt`, 32));
  setGdt(cpu, 9, sysDesc(A, 0x67, 11, 0));
  setGdt(cpu, 10, sysDesc(B, 0x67, 9, 0));
  setGdt(cpu, 12, gateDesc(B_SEL, 0, 5, 3));
  cpu.setSegCache(TR, A_SEL, A, 0x67, 0x8b);
  writeTss32(cpu, B, { ...DEFAULT_TSS, ...tss });
  cpu.regs.set([1, 2, 3, 4, STACK_TOP, 6, 7, 8]);
  setup?.(cpu);
  return cpu;
}

describe('JMP / CALL / IRET task switches', () => {
  it('JMP to a TSS: old state saved, new state loaded, busy bits moved, NT and link untouched', () => {
    const cpu = world(`stc\njmp ${B_SEL}:0`);
    cpu.mem.view.setUint16(B, 0x7777, true);
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.seg[TR]).toBe(B_SEL);
    expect(cpu.segBase[TR]).toBe(B);
    expect(cpu.segAr[TR] & 0xf).toBe(11);
    expect(typeOf(cpu, B_SEL)).toBe(11);
    expect(typeOf(cpu, A_SEL)).toBe(9);
    expect(cpu.eip).toBe(NEW_EIP);
    expect([...cpu.regs].map((r) => r >>> 0)).toEqual(DEFAULT_TSS.regs);
    expect(cpu.getEflags() & (NT | 1)).toBe(1);
    expect(cpu.cr0 & CR0_TS).toBe(CR0_TS);
    expect(u16(cpu, B)).toBe(0x7777);
    // The old task's dynamic fields.
    expect(u32(cpu, A + 0x20)).toBe(0x10008);
    expect(u32(cpu, A + 0x24) & 1).toBe(1);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((k) => u32(cpu, A + 0x28 + 4 * k))).toEqual([1, 2, 3, 4, STACK_TOP, 6, 7, 8]);
    expect([0, 1, 2, 3, 4, 5].map((k) => u16(cpu, A + 0x48 + 4 * k))).toEqual([SEL.data32, SEL.code32, SEL.data32, SEL.data32, SEL.data32, SEL.data32]);
  });

  it('CALL through a task gate links back and sets NT; the task return undoes it', () => {
    const cpu = world(`call ${GATE_SEL | 3}:0`, {}, enterRing3);
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.seg[TR]).toBe(B_SEL);
    expect(u16(cpu, B)).toBe(A_SEL);
    expect(cpu.getEflags() & NT).toBe(NT);
    expect(typeOf(cpu, A_SEL)).toBe(11); // still busy: it is nested
    expect(typeOf(cpu, B_SEL)).toBe(11);
    expect(cpu.cpl).toBe(0);
    // IRET with NT set (the interrupt family calls taskReturn): back to A after its CALL.
    cpu.regs[0] = 0x5555;
    cpu.eip = NEW_EIP + 1;
    taskReturn(cpu);
    expect(cpu.seg[TR]).toBe(A_SEL);
    expect(cpu.eip).toBe(0x10007);
    expect(cpu.cpl).toBe(3);
    expect(cpu.seg[CS]).toBe(SEL.code32r3);
    expect(cpu.regs[0]).toBe(1);
    expect(typeOf(cpu, B_SEL)).toBe(9);
    expect(typeOf(cpu, A_SEL)).toBe(11);
    expect(u32(cpu, B + 0x28)).toBe(0x5555);
    expect(u32(cpu, B + 0x24) & NT).toBe(0); // NT cleared in the saved image of the left task
    expect(u32(cpu, B + 0x20)).toBe(NEW_EIP + 1);
  });

  it('the task return requires a busy TSS in the GDT', () => {
    const cpu = world('nop');
    cpu.mem.view.setUint16(A, B_SEL, true); // link of the current task -> B, which is available
    let caught: { vector: number; errorCode: number } | null = null;
    try {
      taskReturn(cpu);
    } catch (e) {
      if (e !== FAULT) throw e;
      caught = { vector: FAULT.vector, errorCode: FAULT.errorCode };
    }
    expect(caught).toEqual(TS(B_SEL));
    expect(cpu.seg[TR]).toBe(A_SEL);
  });

  type Case = [string, string, (cpu: Cpu) => void, { vector: number; errorCode: number }];
  const none = () => {};
  const before: Case[] = [
    ['JMP to a busy TSS', `jmp ${A_SEL}:0`, none, GP(A_SEL)],
    ['TSS limit below 0x67', `jmp ${B_SEL}:0`, (c) => setGdt(c, 10, sysDesc(B, 0x60, 9, 0)), TS(B_SEL)],
    ['TSS not present', `jmp ${B_SEL}:0`, (c) => setGdt(c, 10, sysDesc(B, 0x67, 9, 0, false)), NP(B_SEL)],
    ['TSS DPL < CPL', `jmp ${B_SEL | 3}:0`, enterRing3, GP(B_SEL)],
    ['TSS RPL > DPL', `jmp ${B_SEL | 3}:0`, none, GP(B_SEL)],
    ['task gate DPL < CPL', `jmp ${GATE_SEL | 3}:0`, (c) => { setGdt(c, 12, gateDesc(B_SEL, 0, 5, 0)); enterRing3(c); }, GP(GATE_SEL)],
    ['task gate not present', `jmp ${GATE_SEL}:0`, (c) => setGdt(c, 12, gateDesc(B_SEL, 0, 5, 3, 0, false)), NP(GATE_SEL)],
    ['task gate to a busy TSS', `jmp ${GATE_SEL}:0`, (c) => setGdt(c, 12, gateDesc(A_SEL, 0, 5, 3)), GP(A_SEL)],
    ['task gate to an LDT selector', `jmp ${GATE_SEL}:0`, (c) => setGdt(c, 12, gateDesc(B_SEL | 4, 0, 5, 3)), GP(B_SEL | 4)],
    ['task gate to a non-TSS', `jmp ${GATE_SEL}:0`, (c) => setGdt(c, 12, gateDesc(SEL.data32, 0, 5, 3)), GP(SEL.data32)],
    ['task gate to a TSS not present', `call ${GATE_SEL}:0`, (c) => setGdt(c, 10, sysDesc(B, 0x67, 9, 0, false)), NP(B_SEL)],
    ['old TSS too short to save into', `jmp ${B_SEL}:0`, (c) => c.setSegCache(TR, A_SEL, A, 0x50, 0x8b), TS(A_SEL)],
  ];
  for (const [name, code, setup, fault] of before) {
    it(`before the commit point: ${name}`, () => {
      const cpu = world(code, {}, setup);
      const cpl = cpu.cpl;
      expect(runCatch(cpu, 1)).toEqual(fault);
      expect(cpu.seg[TR]).toBe(A_SEL);
      expect(cpu.eip).toBe(0x10000);
      expect(cpu.cpl).toBe(cpl);
      expect(u32(cpu, A + 0x20)).toBe(0); // nothing saved
    });
  }

  type After = [string, Partial<Tss32>, (cpu: Cpu) => void, { vector: number; errorCode: number }];
  const segs = (cs: number, ss: number, ds: number) => [SEL.data32, cs, ss, ds, SEL.data32, SEL.data32];
  const after: After[] = [
    ['LDT selector not an LDT', { ldt: SEL.code32 }, none, TS(SEL.code32)],
    ['LDT selector in the LDT', { ldt: 0x6c }, none, TS(0x6c)],
    ['LDT not present', { ldt: 0x68 }, (c) => setGdt(c, 13, sysDesc(0x6000, 0xff, 2, 0, false)), TS(0x68)],
    ['CS DPL != RPL', { segs: segs(SEL.code32 | 3, SEL.data32r3, SEL.data32r3) }, none, TS(SEL.code32)],
    ['CS not code', { segs: segs(SEL.data32, SEL.data32, SEL.data32) }, none, TS(SEL.data32)],
    ['CS null', { segs: segs(0, SEL.data32, SEL.data32) }, none, TS(0)],
    ['CS not present', { segs: segs(0x70, SEL.data32, SEL.data32) }, (c) => setGdt(c, 14, segDesc(0, 0xfffff, 11, 0, { p: false })), NP(0x70)],
    ['SS null', { segs: segs(SEL.code32, 0, SEL.data32) }, none, TS(0)],
    ['SS read-only', { segs: segs(SEL.code32, 0x70, SEL.data32) }, (c) => setGdt(c, 14, segDesc(0, 0xfffff, 1, 0)), TS(0x70)],
    ['SS not present', { segs: segs(SEL.code32, 0x70, SEL.data32) }, (c) => setGdt(c, 14, segDesc(0, 0xfffff, 3, 0, { p: false })), { vector: EXC_SS, errorCode: 0x70 }],
    ['SS DPL != CPL', { segs: segs(SEL.code32, SEL.data32r3, SEL.data32) }, none, TS(SEL.data32r3 & ~3)],
    ['SS RPL != DPL', { segs: segs(SEL.code32, SEL.data32 | 3, SEL.data32) }, none, TS(SEL.data32)],
    ['DS outside the GDT', { segs: segs(SEL.code32, SEL.data32, 0x800) }, none, TS(0x800)],
    ['DS execute-only code', { segs: segs(SEL.code32, SEL.data32, 0x70) }, (c) => setGdt(c, 14, segDesc(0, 0xfffff, 9, 0)), TS(0x70)],
    ['DS not present', { segs: segs(SEL.code32, SEL.data32, 0x70) }, (c) => setGdt(c, 14, segDesc(0, 0xfffff, 3, 0, { p: false })), NP(0x70)],
    ['DS DPL < CPL', { segs: segs(SEL.code32r3, SEL.data32r3, SEL.data32) }, none, TS(SEL.data32)],
  ];
  for (const [name, tss, setup, fault] of after) {
    it(`after the commit point (new task): ${name}`, () => {
      const cpu = world(`jmp ${B_SEL}:0`, tss, setup);
      expect(runCatch(cpu, 1)).toEqual(fault);
      expect(cpu.seg[TR]).toBe(B_SEL);
      expect(cpu.eip).toBe(NEW_EIP);
      expect(typeOf(cpu, A_SEL)).toBe(9);
      expect(u32(cpu, A + 0x20)).toBe(0x10007);
    });
  }

  it('loads the new LDT and resolves LDT selectors through it', () => {
    const cpu = world(`jmp ${B_SEL}:0`, { ldt: 0x68, segs: [SEL.data32, SEL.code32, SEL.data32, 0x0c, SEL.data32, SEL.data32] }, (c) => {
      setGdt(c, 13, sysDesc(0x6000, 0xff, 2, 0));
      c.mem.view.setUint32(0x6008, 0x0000ffff, true);
      c.mem.view.setUint32(0x600c, 0x00429312, true); // base 0x120000, limit 0xffff, data RW (already accessed)
    });
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.seg[LDTR]).toBe(0x68);
    expect(cpu.segBase[LDTR]).toBe(0x6000);
    expect(cpu.seg[DS]).toBe(0x0c);
    expect(cpu.segBase[DS]).toBe(0x120000);
  });

  it('a 16-bit TSS: word fields, upper register halves 0xffff, FS/GS null', () => {
    const cpu = world(`jmp ${B_SEL}:0`, {}, (c) => {
      setGdt(c, 10, sysDesc(B, 0x2b, 1, 0));
      const v = c.mem.view;
      v.setUint16(B + 0x0e, 0x0300, true);
      v.setUint16(B + 0x10, 0x0003, true);
      for (let k = 0; k < 8; k++) v.setUint16(B + 0x12 + 2 * k, 0x1110 + k, true);
      [SEL.data32, SEL.code32, SEL.data32, SEL.data32].forEach((s, k) => v.setUint16(B + 0x22 + 2 * k, s, true));
      v.setUint16(B + 0x2a, 0, true);
    });
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.eip).toBe(0x300);
    expect(cpu.regs[0] >>> 0).toBe(0xffff1110);
    expect(cpu.regs[7] >>> 0).toBe(0xffff1117);
    expect(cpu.seg[FS]).toBe(0);
    expect(cpu.seg[GS]).toBe(0);
    expect(cpu.segAr[TR] & 0xf).toBe(3);
    expect(typeOf(cpu, B_SEL)).toBe(3);
  });

  it('saving into a 16-bit TSS writes the word fields', () => {
    const cpu = world(`jmp ${B_SEL}:0`, {}, (c) => {
      setGdt(c, 9, sysDesc(A, 0x2b, 3, 0));
      c.setSegCache(TR, A_SEL, A, 0x2b, 0x83);
    });
    expect(runCatch(cpu, 1)).toBeNull();
    expect(u16(cpu, A + 0x0e)).toBe(0x0007);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((k) => u16(cpu, A + 0x12 + 2 * k))).toEqual([1, 2, 3, 4, STACK_TOP, 6, 7, 8]);
    expect(u16(cpu, A + 0x24)).toBe(SEL.code32);
    expect(typeOf(cpu, A_SEL)).toBe(1);
  });

  it('a TSS with VM set starts a virtual-8086 task', () => {
    const cpu = world(`jmp ${B_SEL}:0`, { eflags: 0x20002, eip: 0x10, segs: [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000] });
    expect(runCatch(cpu, 1)).toBeNull();
    expect(cpu.v86).toBe(true);
    expect(cpu.cpl).toBe(3);
    expect(cpu.segBase[CS]).toBe(0x20000);
    expect(cpu.segBase[SS]).toBe(0x30000);
    expect(cpu.segAr[GS]).toBe(0xf3);
    expect(cpu.getEflags() & VM).toBe(VM);
  });

  it('loads CR3 from a 32-bit TSS when paging is on (and flushes the TLB), not when it is off', () => {
    const identity = (c: Cpu, pd: number, pt: number) => {
      c.mem.view.setUint32(pd, pt | 3, true);
      for (let k = 0; k < 1024; k++) c.mem.view.setUint32(pt + 4 * k, (k << 12) | 3, true);
    };
    const cpu = world(`mov eax, [0x3000]\njmp ${B_SEL}:0`, { cr3: 0x22000 }, (c) => {
      identity(c, 0x20000, 0x21000);
      identity(c, 0x22000, 0x23000);
      c.mem.view.setUint32(0x23000 + 3 * 4, 0x30000 | 3, true); // B maps linear 0x3000 elsewhere
      c.mem.view.setUint32(0x3000, 0xaaaa, true);
      c.mem.view.setUint32(0x30000, 0xbbbb, true);
      c.cr3 = 0x20000;
      c.cr0 |= 0x80000000;
      c.updateMode();
    });
    expect(runCatch(cpu, 2)).toBeNull();
    expect(cpu.regs[0]).toBe(0xa0); // loaded from B
    expect(cpu.cr3).toBe(0x22000);
    expect(cpu.readLinear32(0x3000, false)).toBe(0xbbbb);
    const off = world(`jmp ${B_SEL}:0`, { cr3: 0x22000 });
    expect(runCatch(off, 1)).toBeNull();
    expect(off.cr3).toBe(0);
  });

  it('the T bit raises the task-switch debug trap (DR6.BT)', () => {
    const cpu = world(`jmp ${B_SEL}:0`, { t: true });
    const r = runCatch(cpu, 1);
    // Until the debug code consumes it the trap stays pending; once it does, #DB is raised.
    if (r === null) expect(cpu.debugTrap & 0x8000).toBe(0x8000);
    else expect(r.vector).toBe(1);
    expect(cpu.seg[TR]).toBe(B_SEL);
  });
});
