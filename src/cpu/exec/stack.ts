// The stack family: PUSH/POP of registers, memory and immediates, PUSHA/POPA, ENTER, LEAVE
// (SDM Vol. 2). Segment-register pushes/pops are the segment family's, PUSHF/POPF the
// interrupt family's.
//
// Every instruction here is restartable: a fault leaves ESP (and every register) as it was.
// The stack pointer is ESP or SP by SS.B (cpu.sp/cpu.addSp); values go at the operand size.

import { AR_DB, EBP, ESP, SS } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { bySize } from './variants.js';

/** Offset `off` moved by `delta` within the stack's address size. */
function stackOff(cpu: Cpu, off: number, delta: number): number {
  return cpu.segAr[SS] & AR_DB ? (off + delta) | 0 : (off + delta) & 0xffff;
}

function readStack(cpu: Cpu, off: number, o32: boolean): number {
  return o32 ? cpu.read32(SS, off) : cpu.read16(SS, off);
}

/** POPA's eight values, read before any register changes (module state: no allocation). */
const popaValues = new Int32Array(8);

/**
 * ENTER (SDM ENTER, as Bochs): push (E)BP, copy level - 1 frame pointers from the old frame,
 * push the new frame pointer, allocate. The frame pointer register is written at the operand
 * size after everything succeeded, and the final stack top is checked for writing (#SS/#PF
 * there, as the SDM lists) before ESP is kept.
 */
function enter(cpu: Cpu, i: Insn): void {
  const o32 = i.o32, n = o32 ? 4 : 2, level = i.imm2 & 31;
  const oldEsp = cpu.regs[ESP];
  let frame: number;
  try {
    cpu.push(cpu.getReg(EBP, o32), o32);
    frame = cpu.getReg(ESP, o32);
    if (level > 0) {
      let bp = cpu.segAr[SS] & AR_DB ? cpu.regs[EBP] : cpu.regs[EBP] & 0xffff;
      for (let k = 1; k < level; k++) {
        bp = stackOff(cpu, bp, -n);
        cpu.push(readStack(cpu, bp, o32), o32);
      }
      cpu.push(frame, o32);
    }
    cpu.addSp(-i.imm);
    cpu.probeWrite(cpu.linear(SS, cpu.sp, n, true), n);
  } catch (e) {
    cpu.regs[ESP] = oldEsp;
    throw e;
  }
  cpu.setReg(EBP, frame, o32);
}

export const handlers: Record<string, Exec> = {
  // PUSH ESP pushes the old value; POP ESP keeps the popped value.
  ...bySize('push_Zv', (cpu, i) => cpu.push16(cpu.regs[i.reg] & 0xffff), (cpu, i) => cpu.push32(cpu.regs[i.reg])),
  ...bySize('pop_Zv', (cpu, i) => cpu.setReg16(i.reg, cpu.pop16()), (cpu, i) => { cpu.regs[i.reg] = cpu.pop32(); }),
  push_Ev: (cpu, i) => cpu.push(cpu.readEv(i), i.o32), // an ESP base uses ESP before the push
  pop_Ev: (cpu, i) => {
    if (i.mod === 3) {
      cpu.setReg(i.rm, cpu.pop(i.o32), i.o32);
      return;
    }
    // The destination's address uses the incremented ESP (SDM POP); a faulting write restores it.
    const oldEsp = cpu.regs[ESP];
    const v = cpu.pop(i.o32);
    try {
      cpu.writeEv(i, v);
    } catch (e) {
      cpu.regs[ESP] = oldEsp;
      throw e;
    }
  },
  push_Iz: (cpu, i) => cpu.push(i.o32 ? i.imm : i.imm & 0xffff, i.o32),
  push_Ib: (cpu, i) => cpu.push(i.o32 ? i.imm : i.imm & 0xffff, i.o32), // sign-extended byte
  pusha: (cpu, i) => {
    // Stored below the stack top one by one (the original ESP in slot 4); ESP moves at the end.
    const n = i.o32 ? 4 : 2, sp = cpu.sp;
    for (let r = 0; r < 8; r++) {
      const off = stackOff(cpu, sp, -n * (r + 1));
      const v = cpu.getReg(r, i.o32);
      if (i.o32) cpu.write32(SS, off, v);
      else cpu.write16(SS, off, v);
    }
    cpu.addSp(-8 * n);
  },
  popa: (cpu, i) => {
    const n = i.o32 ? 4 : 2, sp = cpu.sp;
    for (let k = 0; k < 8; k++) popaValues[7 - k] = readStack(cpu, stackOff(cpu, sp, n * k), i.o32);
    for (let r = 0; r < 8; r++) if (r !== ESP) cpu.setReg(r, popaValues[r], i.o32);
    cpu.addSp(8 * n);
  },
  enter_IwIb: enter,
  leave: (cpu, i) => {
    // ESP <- EBP, then POP EBP; the read comes first so a fault changes nothing.
    const big = (cpu.segAr[SS] & AR_DB) !== 0;
    const off = big ? cpu.regs[EBP] : cpu.regs[EBP] & 0xffff;
    const v = readStack(cpu, off, i.o32);
    if (big) cpu.regs[ESP] = (off + (i.o32 ? 4 : 2)) | 0;
    else cpu.setReg16(ESP, off + (i.o32 ? 4 : 2));
    cpu.setReg(EBP, v, i.o32);
  },
};
