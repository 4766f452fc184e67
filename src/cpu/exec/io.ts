// The I/O family: IN and OUT (immediate and DX ports; 8, 16 and 32 bits) and the I/O permission
// check that INS/OUTS share (SDM Vol. 1 18.5: IOPL, and the TSS I/O permission bitmap).

import { EAX, EDX, EXC_GP, TR } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { ioMapBase } from '../interrupts.js';
import { debugIoAccess } from '../debug.js';

/**
 * Checks that the current instruction may access `size` bytes at `port` (#GP(0) if not) and
 * records the access for I/O breakpoints. Call it before every port access, in every mode: in
 * protected mode with CPL > IOPL, and always in virtual-8086 mode, each port's bit in the TSS
 * I/O bitmap must be clear; the two bitmap bytes read must lie within the TSS limit.
 */
export function checkIoPermission(cpu: Cpu, port: number, size: number): void {
  if (cpu.protectedMode && (cpu.v86 || cpu.cpl > ((cpu.flags >>> 12) & 3))) {
    const off = ioMapBase(cpu) + (port >>> 3);
    if (off + 1 > cpu.segLimit[TR]) cpu.fault(EXC_GP, 0);
    const bits = cpu.readLinear16((cpu.segBase[TR] + off) | 0, false);
    if ((bits >>> (port & 7)) & ((1 << size) - 1)) cpu.fault(EXC_GP, 0);
  }
  if (cpu.slowMode) debugIoAccess(cpu, port, size);
}

function input(cpu: Cpu, port: number, size: 1 | 2 | 4): void {
  checkIoPermission(cpu, port, size);
  const v = cpu.ioRead(port, size);
  if (size === 1) cpu.setReg8(EAX, v);
  else cpu.setReg(EAX, v, size === 4);
}
function output(cpu: Cpu, port: number, size: 1 | 2 | 4): void {
  checkIoPermission(cpu, port, size);
  const v = cpu.regs[EAX];
  cpu.ioWrite(port, size, size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v);
}
const vsize = (i: Insn): 2 | 4 => (i.o32 ? 4 : 2);
const dx = (cpu: Cpu): number => cpu.regs[EDX] & 0xffff;

export const handlers: Record<string, Exec> = {
  in_ALIb: (cpu, i) => input(cpu, i.imm & 0xff, 1),
  in_eAXIb: (cpu, i) => input(cpu, i.imm & 0xff, vsize(i)),
  in_ALDX: (cpu) => input(cpu, dx(cpu), 1),
  in_eAXDX: (cpu, i) => input(cpu, dx(cpu), vsize(i)),
  out_IbAL: (cpu, i) => output(cpu, i.imm & 0xff, 1),
  out_IbeAX: (cpu, i) => output(cpu, i.imm & 0xff, vsize(i)),
  out_DXAL: (cpu) => output(cpu, dx(cpu), 1),
  out_DXeAX: (cpu, i) => output(cpu, dx(cpu), vsize(i)),
};
