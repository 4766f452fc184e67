// Instruction-caused VM exits of VMX non-root operation (SDM Vol. 3C 25.1.2, 25.1.3) and what the
// VM-execution controls change in an instruction that does not exit (25.3: TSC offsetting). The
// exec families ask here, behind their `cpu.vmx.nonRoot` test, at the point of the instruction's
// checks where the SDM places the exit (25.1.1): invalid-opcode and privilege-level faults come
// first; a fault-like VM exit comes before every other fault. Control and debug registers are
// intercept-cr.ts, I/O instructions intercept-io.ts.
//
// The exit qualification and the VM-exit instruction-information field follow 27.2.1 and 27.2.5
// for an IA-32 processor (address sizes 16 and 32 bits, registers 0-7); bits the SDM leaves
// undefined are 0.

import { ECX } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Insn } from '../insn.js';
import { PROC2_DESC_TABLE_EXITING, PROC_MSR_BITMAPS, PROC_SECONDARY, PROC_TSC_OFFSETTING } from './controls.js';
import {
  EXIT_REASON_GDTR_IDTR, EXIT_REASON_INVEPT, EXIT_REASON_INVVPID, EXIT_REASON_LDTR_TR, EXIT_REASON_RDMSR,
  EXIT_REASON_VMREAD, EXIT_REASON_VMWRITE, EXIT_REASON_WRMSR, instructionExit,
} from './exit.js';
import { VMCS_MSR_BITMAPS, VMCS_PROC2_CONTROLS, VMCS_PROC_CONTROLS, VMCS_TSC_OFFSET } from './fields.js';
import { qword, vmcsRead } from './vmcs.js';

/** The secondary processor-based controls in force: 0 unless "activate secondary controls" is 1. */
function secondaryControls(cpu: Cpu): number {
  return vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_SECONDARY ? vmcsRead(cpu, VMCS_PROC2_CONTROLS) : 0;
}

/**
 * An instruction whose exit is one primary processor-based control (HLT, INVLPG, MWAIT, RDPMC,
 * RDTSC, MONITOR, PAUSE exiting): when `control` is 1 the instruction is a VM exit with `reason`
 * and `qualification` (true: the caller stops).
 */
export function exitsByControl(cpu: Cpu, control: number, reason: number, qualification = 0): boolean {
  if (!(vmcsRead(cpu, VMCS_PROC_CONTROLS) & control)) return false;
  instructionExit(cpu, reason, qualification);
  return true;
}
/** As exitsByControl, for a secondary processor-based control (WBINVD exiting). */
export function exitsBySecondaryControl(cpu: Cpu, control: number, reason: number): boolean {
  if (!(secondaryControls(cpu) & control)) return false;
  instructionExit(cpu, reason);
  return true;
}

// ---------------------------------------------------------------- instruction information (27.2.5)

const INFO_ADDR32 = 1 << 7, INFO_REGISTER = 1 << 10, INFO_NO_INDEX = 1 << 22, INFO_NO_BASE = 1 << 27;

/**
 * The memory-operand part of the instruction-information field: scaling (1:0), address size
 * (9:7), segment register (17:15), index register (21:18) or "invalid" (22), base register
 * (26:23) or "invalid" (27). Registers are numbered EAX = 0 .. EDI = 7 as in the decoder.
 */
function memoryOperandInfo(i: Insn): number {
  let info = (i.a32 ? INFO_ADDR32 : 0) | (i.seg << 15);
  info |= i.index < 0 ? INFO_NO_INDEX : i.scale | (i.index << 18);
  info |= i.base < 0 ? INFO_NO_BASE : i.base << 23;
  return info;
}
/** A ModRM r/m operand: Reg1 (6:3) and the register bit (10) for a register, else the memory part. */
function rmOperandInfo(i: Insn): number {
  return i.mod === 3 ? (i.rm << 3) | INFO_REGISTER : memoryOperandInfo(i);
}
/**
 * The exit qualification of the instructions with a ModRM operand (27.2.1, Table 27-1): the
 * displacement, sign-extended (from 16 bits with a 16-bit address size); 0 for a register operand.
 */
function displacement(i: Insn): number {
  if (i.mod === 3) return 0;
  return i.a32 ? i.disp : (i.disp << 16) >> 16;
}

/**
 * The VMX instructions in non-root operation (25.1.2): VMREAD and VMWRITE report their r/m
 * operand and Reg2 (Table 27-14), INVEPT and INVVPID their memory operand and Reg2 (27-9),
 * VMCLEAR, VMPTRLD, VMPTRST and VMXON their memory operand (27-13); the others no information.
 */
export function vmxInstructionExit(cpu: Cpu, i: Insn, reason: number): void {
  if (reason === EXIT_REASON_VMREAD || reason === EXIT_REASON_VMWRITE) {
    instructionExit(cpu, reason, displacement(i), rmOperandInfo(i) | (i.reg << 28));
  } else if (reason === EXIT_REASON_INVEPT || reason === EXIT_REASON_INVVPID) {
    instructionExit(cpu, reason, displacement(i), memoryOperandInfo(i) | (i.reg << 28));
  } else if (i.mod !== 3) {
    instructionExit(cpu, reason, displacement(i), memoryOperandInfo(i));
  } else {
    instructionExit(cpu, reason);
  }
}

/**
 * LGDT, LIDT, SGDT, SIDT (0F 01 /0-/3) and LLDT, LTR, SLDT, STR (0F 00 /0-/3) with "descriptor-
 * table exiting" (secondary control): a VM exit with the displacement and the instruction
 * information of Table 27-10 (operand size in bit 11) or 27-11; ModRM.reg is the instruction
 * identity (29:28) in both.
 */
export function descriptorTableExits(cpu: Cpu, i: Insn, gdtrIdtr: boolean): boolean {
  if (!(secondaryControls(cpu) & PROC2_DESC_TABLE_EXITING)) return false;
  const info = gdtrIdtr ? memoryOperandInfo(i) | (i.o32 ? 1 << 11 : 0) : rmOperandInfo(i);
  instructionExit(cpu, gdtrIdtr ? EXIT_REASON_GDTR_IDTR : EXIT_REASON_LDTR_TR, displacement(i), info | (i.reg << 28));
  return true;
}

// ---------------------------------------------------------------- RDMSR / WRMSR, TSC

/** MSR-bitmap offsets (24.6.9): read bitmaps for low and high MSRs, then write bitmaps. */
const BITMAP_HIGH = 0x400, BITMAP_WRITE = 0x800;

/**
 * RDMSR/WRMSR (after the CPL check): a VM exit without MSR bitmaps, for an ECX outside
 * 0-1FFFH and C0000000H-C0001FFFH, or when the MSR's bit is set in its bitmap (25.1.3).
 */
export function msrExits(cpu: Cpu, write: boolean): boolean {
  const index = cpu.regs[ECX] >>> 0;
  let exits = true;
  if (vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_MSR_BITMAPS) {
    const high = index >= 0xc0000000 && index <= 0xc0001fff;
    if (index <= 0x1fff || high) {
      const at = (vmcsRead(cpu, VMCS_MSR_BITMAPS) >>> 0) + (write ? BITMAP_WRITE : 0) + (high ? BITMAP_HIGH : 0) +
        ((index & 0x1fff) >>> 3);
      exits = ((cpu.readPhys8(at) >> (index & 7)) & 1) !== 0;
    }
  }
  if (exits) instructionExit(cpu, write ? EXIT_REASON_WRMSR : EXIT_REASON_RDMSR);
  return exits;
}

/**
 * What RDTSC and RDMSR of IA32_TSC add to the TSC in non-root operation (25.3): the TSC offset
 * with "use TSC offsetting", else 0.
 */
export function guestTscOffset(cpu: Cpu): bigint {
  return vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_TSC_OFFSETTING ? BigInt.asIntN(64, qword(cpu, VMCS_TSC_OFFSET)) : 0n;
}
