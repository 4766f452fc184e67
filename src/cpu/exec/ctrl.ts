// The ctrl family: near control transfers (SDM Vol. 2 Jcc, JMP, CALL, RET, LOOPcc, JCXZ).
// Far forms belong to farctrl.ts.
//
// Every near branch computes its target at the operand size (16-bit operand size truncates EIP
// to 16 bits), checks it against the CS limit and raises #GP(0) before anything (stack, ECX,
// EIP) changes; the SDM lists that #GP for each of these instructions.

import { CS, ECX, EXC_GP, SS } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { bySize } from './variants.js';

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
  return relTargetAt(cpu, i, i.o32);
}
/** EIP + rel at a given operand size (the variants pass a constant). */
function relTargetAt(cpu: Cpu, i: Insn, o32: boolean): number {
  return o32 ? (cpu.eip + i.imm) >>> 0 : (cpu.eip + i.imm) & 0xffff;
}

/**
 * A relative branch taken when `taken` (constant per handler: a Jcc condition, or always),
 * as one variant per operand size so that a compiled block inlines a single test.
 */
function relBranch(key: string, taken: (cpu: Cpu) => boolean): Record<string, Exec> {
  const at = (o32: boolean): Exec => (cpu, i) => {
    if (taken(cpu)) jumpNear(cpu, relTargetAt(cpu, i, o32));
  };
  return bySize(key, at(false), at(true));
}
const always = (): boolean => true;

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
function retNear(cpu: Cpu, o32: boolean, release: number): void {
  const sp = cpu.sp;
  const target = o32 ? cpu.read32(SS, sp) >>> 0 : cpu.read16(SS, sp);
  jumpNear(cpu, target);
  cpu.addSp((o32 ? 4 : 2) + release);
}

/** CALL near: target checked first, then the return address pushed, then EIP moved. */
function callNear(cpu: Cpu, o32: boolean, target: number): void {
  if (target > cpu.segLimit[CS]) cpu.fault(EXC_GP, 0);
  cpu.push(cpu.eip, o32);
  cpu.eip = target;
}

export const handlers: Record<string, Exec> = {
  ...relBranch('jmp_Jb', always),
  ...relBranch('jmp_Jz', always),
  jmp_Ev: (cpu, i) => jumpNear(cpu, cpu.readEv(i) >>> 0),
  ...bySize('call_Jz',
    (cpu, i) => callNear(cpu, false, relTargetAt(cpu, i, false)),
    (cpu, i) => callNear(cpu, true, relTargetAt(cpu, i, true))),
  call_Ev: (cpu, i) => callNear(cpu, i.o32, cpu.readEv(i) >>> 0),
  ...bySize('ret', (cpu) => retNear(cpu, false, 0), (cpu) => retNear(cpu, true, 0)),
  ...bySize('ret_Iw', (cpu, i) => retNear(cpu, false, i.imm), (cpu, i) => retNear(cpu, true, i.imm)),
  loop_Jb: loopForm(-1),
  loope_Jb: loopForm(1),
  loopne_Jb: loopForm(0),
  jcxz_Jb: (cpu, i) => {
    if (count(cpu, i) === 0) jumpNear(cpu, relTarget(cpu, i));
  },
};
/**
 * The conditions one by one, as small functions: a Jcc variant inlines only its own test
 * (cond() as a whole is too much bytecode for V8's inlining budget of a compiled block).
 */
const CONDS: ((cpu: Cpu) => boolean)[] = [
  (cpu) => cpu.getOF(), (cpu) => !cpu.getOF(),
  (cpu) => cpu.getCF(), (cpu) => !cpu.getCF(),
  (cpu) => cpu.getZF(), (cpu) => !cpu.getZF(),
  (cpu) => cpu.getCF() || cpu.getZF(), (cpu) => !(cpu.getCF() || cpu.getZF()),
  (cpu) => cpu.getSF(), (cpu) => !cpu.getSF(),
  (cpu) => cpu.getPF(), (cpu) => !cpu.getPF(),
  (cpu) => cpu.getSF() !== cpu.getOF(), (cpu) => cpu.getSF() === cpu.getOF(),
  (cpu) => cpu.getZF() || cpu.getSF() !== cpu.getOF(), (cpu) => !(cpu.getZF() || cpu.getSF() !== cpu.getOF()),
];
CC.forEach((cc, n) => {
  Object.assign(handlers, relBranch(`j${cc}_Jb`, CONDS[n]), relBranch(`j${cc}_Jz`, CONDS[n]));
});
