// The VMX instructions (SDM Vol. 3C chapter 30, "VMX Instruction Reference"), following each
// pseudocode's order of #UD, #GP(0), VMfailInvalid and VMfailValid(error number) checks. Where
// the pseudocode says "ELSIF in VMX non-root operation THEN VM exit", rootOperationChecks() (and
// VMXON, VMCALL themselves) make the exit (entry.ts).
//
// On this IA-32 model the register operands are 32 bits, natural-width fields are 32 bits and
// physical addresses have 32 bits (IA32_VMX_BASIC[48] = 1): a VMXON/VMCS pointer with any of
// bits 63:32 set is beyond the physical-address width.

import { ARITH_FLAGS, CF, CR4_VMXE, EXC_GP, EXC_UD, ZF } from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { invalidateEpt, invalidateVpid } from '../paging.js';
import { FC_LOCK, FC_VMX, MSR_FEATURE_CONTROL, readMsr } from '../msr.js';
import {
  crAllowedInVmx, INVEPT_SUPPORTED, inveptTypeSupported, INVVPID_SUPPORTED, invvpidTypeSupported, validEptp,
  VMCS_REVISION_ID,
} from './capabilities.js';
import { enterGuest, guestStateCheck, loadGuestState } from './entry.js';
import { controlsValid, hostStateValid } from './entry-checks.js';
import {
  entryFailure, EXIT_REASON_INVALID_GUEST_STATE, EXIT_REASON_INVEPT, EXIT_REASON_MACHINE_CHECK, EXIT_REASON_MSR_LOADING, EXIT_REASON_INVVPID, EXIT_REASON_VMCALL,
  EXIT_REASON_VMCLEAR, EXIT_REASON_VMLAUNCH, EXIT_REASON_VMPTRLD, EXIT_REASON_VMPTRST, EXIT_REASON_VMREAD,
  EXIT_REASON_VMRESUME, EXIT_REASON_VMWRITE, EXIT_REASON_VMXOFF, EXIT_REASON_VMXON, instructionExit,
} from './exit.js';
import { FIELDS, VMCS_ENTRY_MSR_LOAD_ADDR, VMCS_ENTRY_MSR_LOAD_COUNT, VMCS_VM_INSTRUCTION_ERROR } from './fields.js';
import { vmxInstructionExit } from './intercept.js';
import { LIST_DONE, LIST_TOO_LONG, loadMsrList } from './msr-lists.js';
import { INVALID_PTR } from './state.js';
import { fieldIndex, isLaunched, readField, revisionId, setLaunched, vmcsWrite, writeField } from './vmcs.js';

/** VM-instruction error numbers (SDM 30.4, Table 30-1) this slice can produce. */
export const VMXERR_VMCALL_IN_ROOT = 1, VMXERR_VMCLEAR_INVALID_ADDR = 2, VMXERR_VMCLEAR_VMXON_PTR = 3,
  VMXERR_VMLAUNCH_NOT_CLEAR = 4, VMXERR_VMRESUME_NOT_LAUNCHED = 5, VMXERR_ENTRY_CONTROLS = 7,
  VMXERR_ENTRY_HOST_STATE = 8, VMXERR_VMPTRLD_INVALID_ADDR = 9,
  VMXERR_VMPTRLD_VMXON_PTR = 10, VMXERR_VMPTRLD_BAD_REVISION = 11, VMXERR_UNSUPPORTED_FIELD = 12,
  VMXERR_READ_ONLY_FIELD = 13, VMXERR_VMXON_IN_ROOT = 15, VMXERR_ENTRY_MOV_SS = 26,
  VMXERR_INVALID_INVEPT_INVVPID = 28;

// ---------------------------------------------------------------- outcomes (SDM 30.2)

/** VMsucceed: CF, PF, AF, ZF, SF, OF cleared. */
function vmSucceed(cpu: Cpu): void {
  cpu.setFlagBits(ARITH_FLAGS, 0);
}
/** VMfailInvalid: CF set, the other five cleared. */
function vmFailInvalid(cpu: Cpu): void {
  cpu.setFlagBits(ARITH_FLAGS, CF);
}
/** VMfailValid(error): ZF set, the other five cleared, the error in the current VMCS. */
function vmFailValid(cpu: Cpu, error: number): void {
  cpu.setFlagBits(ARITH_FLAGS, ZF);
  vmcsWrite(cpu, VMCS_VM_INSTRUCTION_ERROR, error);
}
/** VMfail(error): VMfailValid when there is a current VMCS, else VMfailInvalid. */
function vmFail(cpu: Cpu, error: number): void {
  if (cpu.vmx.vmcsPtr !== INVALID_PTR) vmFailValid(cpu, error);
  else vmFailInvalid(cpu);
}

// ---------------------------------------------------------------- common checks and operands

/**
 * The opening of every VMX instruction but VMXON and VMCALL: #UD outside VMX operation, with
 * CR0.PE = 0 or in virtual-8086 mode (no IA-32e mode here, so no CS.L check); then #GP(0) at
 * CPL > 0. In VMX non-root operation the instruction is a VM exit instead (returns true: the
 * caller stops). (The register-operand #UD of the memory-only forms is the decoder's.)
 */
function rootOperationChecks(cpu: Cpu, i: Insn, exitReason: number): boolean {
  if (!cpu.vmx.on || !cpu.protectedMode || cpu.v86) cpu.faultNoCode(EXC_UD);
  if (cpu.vmx.nonRoot) {
    vmxInstructionExit(cpu, i, exitReason);
    return true;
  }
  if (cpu.cpl !== 0) cpu.fault(EXC_GP, 0);
  return false;
}

/** High dword of the last readQword(); a module variable so reading a pointer allocates nothing. */
let qwordHigh = 0;
/** Reads the 64-bit memory operand (segment checks on all 8 bytes); returns the low dword. */
function readQword(cpu: Cpu, i: Insn): number {
  const lin = cpu.linear(i.seg, cpu.ea(i), 8, false);
  const user = cpu.cpl === 3;
  const lo = cpu.readLinear32(lin, user);
  qwordHigh = cpu.readLinear32((lin + 4) | 0, user);
  return lo;
}
/** A VMXON/VMCS pointer just read is 4-KiB aligned and within the 32-bit physical-address width. */
function validPointer(lo: number): boolean {
  return (lo & 0xfff) === 0 && qwordHigh === 0;
}

/** The 128-bit INVEPT/INVVPID descriptor, as four dwords (low first); reused, never reallocated. */
const descriptor = new Int32Array(4);
function readDescriptor(cpu: Cpu, i: Insn): void {
  const lin = cpu.linear(i.seg, cpu.ea(i), 16, false);
  for (let k = 0; k < 4; k++) descriptor[k] = cpu.readLinear32((lin + 4 * k) | 0, cpu.cpl === 3);
}

// ---------------------------------------------------------------- VMXON / VMXOFF

const vmxon_Mq: Exec = (cpu, i) => {
  if (!(cpu.cr4 & CR4_VMXE) || !cpu.protectedMode || cpu.v86) cpu.faultNoCode(EXC_UD);
  const vmx = cpu.vmx;
  if (vmx.on) {
    if (vmx.nonRoot) return vmxInstructionExit(cpu, i, EXIT_REASON_VMXON);
    if (cpu.cpl !== 0) cpu.fault(EXC_GP, 0);
    vmFail(cpu, VMXERR_VMXON_IN_ROOT);
    return;
  }
  const fc = readMsr(cpu, MSR_FEATURE_CONTROL);
  const a20m = (cpu.a20Mask & (1 << 20)) === 0;
  // No SMX on this model: only the "VMX outside SMX" enable bit counts.
  if (cpu.cpl !== 0 || a20m || !crAllowedInVmx(0, cpu.cr0) || !crAllowedInVmx(4, cpu.cr4) ||
      (fc & FC_LOCK) === 0n || (fc & FC_VMX) === 0n) {
    cpu.fault(EXC_GP, 0);
  }
  const addr = readQword(cpu, i) >>> 0;
  if (!validPointer(addr) || revisionId(cpu, addr) !== VMCS_REVISION_ID) {
    vmFailInvalid(cpu);
    return;
  }
  // Entering VMX operation also blocks INIT (this machine has no INIT source) and A20M (23.8:
  // not in A20M mode now, so the mask stays; cpu.updateA20M ignores the gate from here on).
  vmx.on = true;
  vmx.vmxonPtr = addr;
  vmx.vmcsPtr = INVALID_PTR;
  vmSucceed(cpu);
};

/** No dual-monitor treatment of SMIs and SMM on this model, so VMXOFF never fails. */
const vmxoff: Exec = (cpu, i) => {
  if (rootOperationChecks(cpu, i, EXIT_REASON_VMXOFF)) return;
  cpu.vmx.reset();
  cpu.updateA20M(); // unblocks A20M: a gate disabled in VMX operation masks bit 20 from now on
  vmSucceed(cpu);
};

// ---------------------------------------------------------------- VMCS pointer instructions

const vmclear_Mq: Exec = (cpu, i) => {
  if (rootOperationChecks(cpu, i, EXIT_REASON_VMCLEAR)) return;
  const addr = readQword(cpu, i) >>> 0;
  if (!validPointer(addr)) return vmFail(cpu, VMXERR_VMCLEAR_INVALID_ADDR);
  if (addr === cpu.vmx.vmxonPtr) return vmFail(cpu, VMXERR_VMCLEAR_VMXON_PTR);
  // The region is always up to date (vmcs.ts), so only the launch state changes.
  setLaunched(cpu, addr, false);
  if (addr === cpu.vmx.vmcsPtr) cpu.vmx.vmcsPtr = INVALID_PTR;
  vmSucceed(cpu);
};

const vmptrld_Mq: Exec = (cpu, i) => {
  if (rootOperationChecks(cpu, i, EXIT_REASON_VMPTRLD)) return;
  const addr = readQword(cpu, i) >>> 0;
  if (!validPointer(addr)) return vmFail(cpu, VMXERR_VMPTRLD_INVALID_ADDR);
  if (addr === cpu.vmx.vmxonPtr) return vmFail(cpu, VMXERR_VMPTRLD_VMXON_PTR);
  // Bit 31 (shadow VMCS) set is refused too: this model has no VMCS shadowing.
  if (revisionId(cpu, addr) !== VMCS_REVISION_ID) return vmFail(cpu, VMXERR_VMPTRLD_BAD_REVISION);
  cpu.vmx.vmcsPtr = addr;
  vmSucceed(cpu);
};

/** VMPTRST: both dwords are checked for writing before either is written. */
const vmptrst_Mq: Exec = (cpu, i) => {
  if (rootOperationChecks(cpu, i, EXIT_REASON_VMPTRST)) return;
  const lin = cpu.linear(i.seg, cpu.ea(i), 8, true);
  cpu.probeWrite(lin, 8);
  const user = cpu.cpl === 3, ptr = cpu.vmx.vmcsPtr;
  cpu.writeLinear32(lin, ptr, user);
  cpu.writeLinear32((lin + 4) | 0, ptr === INVALID_PTR ? -1 : 0, user);
  vmSucceed(cpu);
};

// ---------------------------------------------------------------- VMREAD / VMWRITE

const vmread_EdGd: Exec = (cpu, i) => {
  if (rootOperationChecks(cpu, i, EXIT_REASON_VMREAD)) return;
  const ptr = cpu.vmx.vmcsPtr;
  if (ptr === INVALID_PTR) return vmFailInvalid(cpu);
  const encoding = cpu.regs[i.reg];
  const k = fieldIndex(encoding);
  if (k < 0) return vmFailValid(cpu, VMXERR_UNSUPPORTED_FIELD);
  const v = readField(cpu, ptr, k, encoding);
  if (i.mod === 3) cpu.regs[i.rm] = v;
  else cpu.write32(i.seg, cpu.ea(i), v);
  vmSucceed(cpu);
};

/** The source operand is read (and may fault) once a current VMCS is known to exist, as Bochs does. */
const vmwrite_GdEd: Exec = (cpu, i) => {
  if (rootOperationChecks(cpu, i, EXIT_REASON_VMWRITE)) return;
  const ptr = cpu.vmx.vmcsPtr;
  if (ptr === INVALID_PTR) return vmFailInvalid(cpu);
  const v = i.mod === 3 ? cpu.regs[i.rm] : cpu.read32(i.seg, cpu.ea(i));
  const encoding = cpu.regs[i.reg];
  const k = fieldIndex(encoding);
  if (k < 0) return vmFailValid(cpu, VMXERR_UNSUPPORTED_FIELD);
  if (FIELDS[k].readOnly) return vmFailValid(cpu, VMXERR_READ_ONLY_FIELD);
  writeField(cpu, ptr, k, encoding, v);
  vmSucceed(cpu);
};

// ---------------------------------------------------------------- VMLAUNCH / VMRESUME / VMCALL

/**
 * VM entry proper, once the controls and the host state passed (SDM 26.3, 26.4): the guest-state
 * checks (failure: a VM-entry failure exit, reason 33), guest-state loading into the CPU, the
 * VM-entry MSR-load list (failure: reason 34, the failing entry's number as qualification; an
 * overlong list: reason 41, msr-lists.ts), then the launch state set to launched after a
 * VMLAUNCH and VMX non-root operation.
 */
export function vmEntry(cpu: Cpu, launch: boolean): void {
  const qualification = guestStateCheck(cpu);
  if (qualification >= 0) return entryFailure(cpu, EXIT_REASON_INVALID_GUEST_STATE, qualification);
  loadGuestState(cpu);
  const loaded = loadMsrList(cpu, VMCS_ENTRY_MSR_LOAD_ADDR, VMCS_ENTRY_MSR_LOAD_COUNT);
  if (loaded === LIST_TOO_LONG) return entryFailure(cpu, EXIT_REASON_MACHINE_CHECK, 0);
  if (loaded !== LIST_DONE) return entryFailure(cpu, EXIT_REASON_MSR_LOADING, loaded);
  enterGuest(cpu, launch);
}

/** VMLAUNCH and VMRESUME up to the guest (SDM 30.3 VMLAUNCH/VMRESUME, 26.1, 26.2). */
function entryInstruction(launch: boolean): Exec {
  return (cpu, i) => {
    if (rootOperationChecks(cpu, i, launch ? EXIT_REASON_VMLAUNCH : EXIT_REASON_VMRESUME)) return;
    const ptr = cpu.vmx.vmcsPtr;
    if (ptr === INVALID_PTR) return vmFailInvalid(cpu);
    // Blocking by MOV SS: this instruction follows a MOV SS or POP SS.
    if (cpu.inhibitDebugAt === cpu.icount) return vmFailValid(cpu, VMXERR_ENTRY_MOV_SS);
    if (launch && isLaunched(cpu, ptr)) return vmFailValid(cpu, VMXERR_VMLAUNCH_NOT_CLEAR);
    if (!launch && !isLaunched(cpu, ptr)) return vmFailValid(cpu, VMXERR_VMRESUME_NOT_LAUNCHED);
    if (!controlsValid(cpu)) return vmFailValid(cpu, VMXERR_ENTRY_CONTROLS);
    if (!hostStateValid(cpu)) return vmFailValid(cpu, VMXERR_ENTRY_HOST_STATE);
    vmEntry(cpu, launch);
  };
}

/**
 * VMCALL in VMX root operation: this model has no dual-monitor treatment of SMIs and SMM
 * (IA32_VMX_BASIC[49] = 0, so IA32_SMM_MONITOR_CTL[0] is 0), which makes it VMfail(1).
 */
const vmcall: Exec = (cpu) => {
  if (!cpu.vmx.on) cpu.faultNoCode(EXC_UD);
  if (cpu.vmx.nonRoot) return instructionExit(cpu, EXIT_REASON_VMCALL);
  if (cpu.v86) cpu.faultNoCode(EXC_UD);
  if (cpu.cpl !== 0) cpu.fault(EXC_GP, 0);
  vmFail(cpu, VMXERR_VMCALL_IN_ROOT);
};

// ---------------------------------------------------------------- INVEPT / INVVPID

/**
 * INVEPT. The type is checked before the descriptor is read, in the SDM's order. Success drops
 * the combined mappings (TLB entries) of the EPTP's EPT root, or of every root (paging.ts).
 */
const invept_GdMo: Exec = (cpu, i) => {
  if (!INVEPT_SUPPORTED) cpu.faultNoCode(EXC_UD);
  if (rootOperationChecks(cpu, i, EXIT_REASON_INVEPT)) return;
  const type = cpu.regs[i.reg] >>> 0;
  if (!inveptTypeSupported(type)) return vmFail(cpu, VMXERR_INVALID_INVEPT_INVVPID);
  readDescriptor(cpu, i);
  if (type === 1 && !validEptp(descriptor[0], descriptor[1])) return vmFail(cpu, VMXERR_INVALID_INVEPT_INVVPID);
  invalidateEpt(cpu, type === 1 ? descriptor[0] & 0xfffff000 : -1);
  vmSucceed(cpu);
};

/**
 * INVVPID. Linear addresses have 32 bits on this processor: an individual-address descriptor
 * whose bits 127:96 are not zero is not "canonical". Success drops the TLB entries of the VPID
 * (all VPIDs but 0 for all-context) for the address, all of them, or all but the global ones.
 */
const invvpid_GdMo: Exec = (cpu, i) => {
  if (!INVVPID_SUPPORTED) cpu.faultNoCode(EXC_UD);
  if (rootOperationChecks(cpu, i, EXIT_REASON_INVVPID)) return;
  const type = cpu.regs[i.reg] >>> 0;
  if (!invvpidTypeSupported(type)) return vmFail(cpu, VMXERR_INVALID_INVEPT_INVVPID);
  readDescriptor(cpu, i);
  const vpid = descriptor[0] & 0xffff;
  const bad = descriptor[0] >>> 16 !== 0 || descriptor[1] !== 0 ||
    (type !== 2 && vpid === 0) || (type === 0 && descriptor[3] !== 0);
  if (bad) return vmFail(cpu, VMXERR_INVALID_INVEPT_INVVPID);
  invalidateVpid(cpu, type, vpid, descriptor[2]);
  vmSucceed(cpu);
};

/** Handlers by opcode-table key (dispatch joins them through exec/system.ts). */
export const handlers: Record<string, Exec> = {
  vmxon_Mq, vmxoff, vmclear_Mq, vmptrld_Mq, vmptrst_Mq, vmread_EdGd, vmwrite_GdEd,
  vmlaunch: entryInstruction(true), vmresume: entryInstruction(false), vmcall, invept_GdMo, invvpid_GdMo,
};
