// The ctrl family: near control transfers (SDM Vol. 2 Jcc, JMP, CALL, RET, LOOPcc, JCXZ).
// Far forms belong to farctrl.ts.
//
// Every near branch computes its target at the operand size (16-bit operand size truncates EIP
// to 16 bits), checks it against the CS limit and raises #GP(0) before anything (stack, ECX,
// EIP) changes; the SDM lists that #GP for each of these instructions.

import { CS, ECX, EXC_GP, SS } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';

/** Condition n of the Jcc/SETcc/CMOVcc encodings (SDM Vol. 1 Appendix B): odd n negates n - 1. */
export function cond(cpu: Cpu, n: number): boolean {
  let r: boolean;
  switch (n >> 1) {
    case 0: r = cpu.getOF(); break;
    case 1: r = cpu.getCF(); break;
    case 2: r = cpu.getZF(); break;
    case 3: r = cpu.getCF() || cpu.getZF(); break;
    case 4: r = cpu.getSF(); break;
    case 5: r = cpu.getPF(); break;
    case 6: r = cpu.getSF() !== cpu.getOF(); break;
    default: r = cpu.getZF() || cpu.getSF() !== cpu.getOF(); break;
  }
  return (n & 1) !== 0 ? !r : r;
}

/** The condition-code suffixes in encoding order. */
export const CC = ['o', 'no', 'b', 'nb', 'z', 'nz', 'be', 'nbe', 's', 'ns', 'p', 'np', 'l', 'nl', 'le', 'nle'];

/** Moves EIP to a near target (unsigned, already sized), #GP(0) if it is past the CS limit. */
export function jumpNear(cpu: Cpu, target: number): void {
  if (target > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
  cpu.eip = target;
}

/** EIP + rel at the operand size. */
function relTarget(cpu: Cpu, i: Insn): number {
  return i.o32 ? (cpu.eip + i.imm) >>> 0 : (cpu.eip + i.imm) & 0xffff;
}

const jcc = (n: number): Exec => (cpu, i) => {
  if (cond(cpu, n)) jumpNear(cpu, relTarget(cpu, i));
};

/** The loop counter: ECX or CX by ADDRESS size (SDM LOOP: "the address-size attribute"). */
function count(cpu: Cpu, i: Insn): number {
  return i.a32 ? cpu.regs[ECX] : cpu.regs[ECX] & 0xffff;
}

/**
 * LOOP/LOOPE/LOOPNE: decrement the counter, branch if it is not zero and ZF equals `zfWanted`
 * (1 or 0; -1: ZF not consulted). The counter is written after the branch check (as Bochs).
 */
function loopForm(zfWanted: number): Exec {
  return (cpu, i) => {
    const c = i.a32 ? (cpu.regs[ECX] - 1) | 0 : (cpu.regs[ECX] - 1) & 0xffff;
    if (c !== 0 && (zfWanted < 0 || cpu.getZF() === (zfWanted === 1))) jumpNear(cpu, relTarget(cpu, i));
    if (i.a32) cpu.regs[ECX] = c;
    else cpu.setReg16(ECX, c);
  };
}

/** RET near: the return address is checked before ESP moves, so a #GP leaves the stack as it was. */
function retNear(cpu: Cpu, i: Insn, release: number): void {
  const sp = cpu.sp;
  const target = i.o32 ? cpu.read32(SS, sp) >>> 0 : cpu.read16(SS, sp);
  jumpNear(cpu, target);
  cpu.addSp((i.o32 ? 4 : 2) + release);
}

/** CALL near: target checked first, then the return address pushed, then EIP moved. */
function callNear(cpu: Cpu, i: Insn, target: number): void {
  if (target > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
  cpu.push(cpu.eip, i.o32);
  cpu.eip = target;
}

export const handlers: Record<string, Exec> = {
  jmp_Jb: (cpu, i) => jumpNear(cpu, relTarget(cpu, i)),
  jmp_Jz: (cpu, i) => jumpNear(cpu, relTarget(cpu, i)),
  jmp_Ev: (cpu, i) => jumpNear(cpu, cpu.readEv(i) >>> 0),
  call_Jz: (cpu, i) => callNear(cpu, i, relTarget(cpu, i)),
  call_Ev: (cpu, i) => callNear(cpu, i, cpu.readEv(i) >>> 0),
  ret: (cpu, i) => retNear(cpu, i, 0),
  ret_Iw: (cpu, i) => retNear(cpu, i, i.imm),
  loop_Jb: loopForm(-1),
  loope_Jb: loopForm(1),
  loopne_Jb: loopForm(0),
  jcxz_Jb: (cpu, i) => {
    if (count(cpu, i) === 0) jumpNear(cpu, relTarget(cpu, i));
  },
};
CC.forEach((cc, n) => {
  handlers[`j${cc}_Jb`] = jcc(n);
  handlers[`j${cc}_Jz`] = jcc(n);
});
