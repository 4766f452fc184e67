// The I/O family: IN and OUT (immediate and DX ports; 8, 16 and 32 bits) and the I/O permission
// check that INS/OUTS share (SDM Vol. 1 18.5: IOPL, and the TSS I/O permission bitmap), followed
// in VMX non-root operation by the I/O VM exits (vmx/intercept-io.ts).

import { EAX, EDX, EXC_GP, TR } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { ioMapBase } from '../interrupts.js';
import { debugIoAccess } from '../debug.js';
import { IO_IMMEDIATE, IO_IN, ioExits } from '../vmx/intercept-io.js';

/**
 * The checks before a port access of the current instruction `i` (`kind`: the IO_* bits of its
 * VM-exit qualification): #GP(0) unless it may access `size` bytes at `port` (in protected mode
 * with CPL > IOPL, and always in virtual-8086 mode, each port's bit in the TSS I/O bitmap must be
 * clear; the two bitmap bytes read must lie within the TSS limit); then, in VMX non-root
 * operation, the VM exit the controls may ask for (25.1.3: after the TSS check), which returns
 * false: the access does not happen. Otherwise the access is recorded for I/O breakpoints and
 * goes ahead (true). Call it before every port access, in every mode.
 */
export function startIo(cpu: Cpu, i: Insn, port: number, size: number, kind: number): boolean {
  if (cpu.protectedMode && (cpu.v86 || cpu.cpl > ((cpu.flags >>> 12) & 3))) {
    const off = ioMapBase(cpu) + (port >>> 3);
    if (off + 1 > cpu.segLimit[TR]) cpu.fault(EXC_GP, 0);
    const bits = cpu.readLinear16((cpu.segBase[TR] + off) | 0, false);
    if ((bits >>> (port & 7)) & ((1 << size) - 1)) cpu.fault(EXC_GP, 0);
  }
  if (cpu.vmx.nonRoot && ioExits(cpu, i, port, size, kind)) return false;
  if (cpu.slowMode) debugIoAccess(cpu, port, size);
  return true;
}

function input(cpu: Cpu, i: Insn, port: number, size: 1 | 2 | 4, kind: number): void {
  if (!startIo(cpu, i, port, size, IO_IN | kind)) return;
  const v = cpu.ioRead(port, size);
  if (size === 1) cpu.setReg8(EAX, v);
  else cpu.setReg(EAX, v, size === 4);
}
function output(cpu: Cpu, i: Insn, port: number, size: 1 | 2 | 4, kind: number): void {
  if (!startIo(cpu, i, port, size, kind)) return;
  const v = cpu.regs[EAX];
  cpu.ioWrite(port, size, size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v);
}
const vsize = (i: Insn): 2 | 4 => (i.o32 ? 4 : 2);
const dx = (cpu: Cpu): number => cpu.regs[EDX] & 0xffff;

export const handlers: Record<string, Exec> = {
  in_ALIb: (cpu, i) => input(cpu, i, i.imm & 0xff, 1, IO_IMMEDIATE),
  in_eAXIb: (cpu, i) => input(cpu, i, i.imm & 0xff, vsize(i), IO_IMMEDIATE),
  in_ALDX: (cpu, i) => input(cpu, i, dx(cpu), 1, 0),
  in_eAXDX: (cpu, i) => input(cpu, i, dx(cpu), vsize(i), 0),
  out_IbAL: (cpu, i) => output(cpu, i, i.imm & 0xff, 1, IO_IMMEDIATE),
  out_IbeAX: (cpu, i) => output(cpu, i, i.imm & 0xff, vsize(i), IO_IMMEDIATE),
  out_DXAL: (cpu, i) => output(cpu, i, dx(cpu), 1, 0),
  out_DXeAX: (cpu, i) => output(cpu, i, dx(cpu), vsize(i), 0),
};
