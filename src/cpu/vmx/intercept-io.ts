// I/O instructions in VMX non-root operation (SDM Vol. 3C 25.1.3): IN, OUT, INS, OUTS exit by
// "unconditional I/O exiting" or, when "use I/O bitmaps" is 1 (which makes the unconditional
// control irrelevant), by the bits of I/O bitmap A (ports 0-7FFFH) and B (8000H-FFFFH) of every
// port the access touches; an access that wraps past port FFFFH always exits. The I/O-permission
// check of the TSS (IOPL, the TSS bitmap) comes first (25.1.1); the caller makes it.

import { EDI, ES, ESI } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Insn } from '../insn.js';
import { PROC_IO_BITMAPS, PROC_UNCOND_IO_EXITING } from './controls.js';
import { EXIT_REASON_IO, instructionExit } from './exit.js';
import { VMCS_IO_BITMAP_A, VMCS_IO_BITMAP_B, VMCS_PROC_CONTROLS, X_GUEST_LINEAR } from './fields.js';
import { vmcsRead, vmcsWrite } from './vmcs.js';

/** Exit-qualification bits of Table 27-5 that describe the instruction. */
export const IO_IN = 1 << 3, IO_STRING = 1 << 4, IO_REP = 1 << 5, IO_IMMEDIATE = 1 << 6;

/** Whether the I/O bitmaps mark any of the `size` ports from `port` (all within 0-FFFFH). */
function bitmapHit(cpu: Cpu, port: number, size: number): boolean {
  for (let p = port; p < port + size; p++) {
    const bitmap = vmcsRead(cpu, p < 0x8000 ? VMCS_IO_BITMAP_A : VMCS_IO_BITMAP_B) >>> 0;
    if ((cpu.readPhys8(bitmap + ((p & 0x7fff) >>> 3)) >> (p & 7)) & 1) return true;
  }
  return false;
}

/**
 * An access of `size` bytes at `port` by instruction `i` described by `kind` (IO_* bits): a VM
 * exit when the controls say so (true: the caller stops). The qualification holds the size,
 * `kind` and the port; INS and OUTS also record the linear address of their memory operand
 * (base of ES or of the source segment plus (E)DI or (E)SI) as the guest-linear address.
 */
export function ioExits(cpu: Cpu, i: Insn, port: number, size: number, kind: number): boolean {
  const proc = vmcsRead(cpu, VMCS_PROC_CONTROLS);
  const exits = proc & PROC_IO_BITMAPS ? port + size > 0x10000 || bitmapHit(cpu, port, size)
    : (proc & PROC_UNCOND_IO_EXITING) !== 0;
  if (!exits) return false;
  if (kind & IO_STRING) {
    const index = kind & IO_IN ? EDI : ESI;
    const offset = i.a32 ? cpu.regs[index] : cpu.regs[index] & 0xffff;
    vmcsWrite(cpu, X_GUEST_LINEAR, cpu.segBase[kind & IO_IN ? ES : i.seg] + offset);
  }
  instructionExit(cpu, EXIT_REASON_IO, (size - 1) | kind | (port << 16));
  return true;
}
