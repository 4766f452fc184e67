// The MSR lists of VM entries and VM exits (SDM Vol. 3C 24.7.2, 24.8.2, 26.4, 27.4, 27.6): areas
// of 16-byte entries in physical memory (bits 31:0 the MSR index, 63:32 reserved, 127:64 the
// value), processed in order. VM entry loads the VM-entry MSR-load list after the guest state
// (a failure is a VM-entry failure, exit reason 34, qualification = the entry's 1-based number);
// a VM exit stores guest MSRs into the VM-exit MSR-store list after saving the guest state and
// loads the VM-exit MSR-load list after the host state (a failure in either is a VMX abort).
//
// An entry is processed as RDMSR/WRMSR at CPL 0 would (msr.ts): every MSR the model does not have
// and every value WRMSR refuses fails, which already covers the SDM's named exclusions on this
// IA-32 model (IA32_FS_BASE/IA32_GS_BASE, the x2APIC range 800H-8FFH, IA32_SMBASE, the SMM-only
// IA32_SMM_MONITOR_CTL: none exists here); they are still refused by name, so that the rule does
// not depend on the MSR table. No MSR is excluded for model-specific reasons.
//
// Lists longer than IA32_VMX_MISC's recommended maximum (MSR_LIST_MAX entries) give
// "unpredictable processor behavior (including a machine check)" (24.7.2, 24.8.2). This model
// chooses the machine check, deterministically and before any entry of the list is processed: a
// VM-entry failure due to a machine-check event (reason 41) for the VM-entry list, a VMX abort with
// indicator 5 (machine-check event during VM exit) for the VM-exit lists.

import type { Cpu } from '../cpu.js';
import { FAULT } from '../cpu.js';
import { readMsr, writeMsr } from '../msr.js';
import { MSR_LIST_MAX } from './capabilities.js';
import { vmcsRead } from './vmcs.js';

/** Result of processing a list: every entry done. Otherwise the 1-based number of the failing entry. */
export const LIST_DONE = 0;
/** Result of a list longer than MSR_LIST_MAX (the machine-check choice above). */
export const LIST_TOO_LONG = -1;

const MSR_FS_BASE = 0xc0000100, MSR_GS_BASE = 0xc0000101, MSR_SMBASE = 0x9e, MSR_SMM_MONITOR_CTL = 0x9b;
const ENTRY_BYTES = 16;

/** MSRs a list may never name, whatever RDMSR/WRMSR would do: bits 31:8 = 000008H (x2APIC). */
const x2apicRange = (index: number): boolean => index >>> 8 === 0x8;
/** Load lists (26.4, 27.6): IA32_FS_BASE, IA32_GS_BASE, x2APIC, writable only in SMM. */
const loadRefused = (index: number): boolean =>
  index === MSR_FS_BASE || index === MSR_GS_BASE || x2apicRange(index) || index === MSR_SMM_MONITOR_CTL;
/** Store list (27.4): x2APIC, readable only in SMM. */
const storeRefused = (index: number): boolean => x2apicRange(index) || index === MSR_SMBASE;

/** Runs `access` as the instruction would at CPL 0: false if it raised #GP (the fault is consumed). */
function withoutFault(access: () => void): boolean {
  try {
    access();
    return true;
  } catch (e) {
    if (e !== FAULT) throw e;
    return false;
  }
}

/** The list whose address and count are the VMCS fields `addrField`, `countField`: base and count. */
function list(cpu: Cpu, addrField: number, countField: number): [number, number] {
  // VM entry checked that the list lies below 4 GiB (26.2.1.2, 26.2.1.3): the high dword is 0.
  return [vmcsRead(cpu, addrField) >>> 0, vmcsRead(cpu, countField) >>> 0];
}

/**
 * Loads the MSR-load list of the VMCS fields `addrField`/`countField` as WRMSR would (26.4, 27.6).
 * Returns LIST_DONE, the 1-based number of the first entry that failed (the entries before it
 * stay loaded), or LIST_TOO_LONG.
 */
export function loadMsrList(cpu: Cpu, addrField: number, countField: number): number {
  const [base, count] = list(cpu, addrField, countField);
  if (count > MSR_LIST_MAX) return LIST_TOO_LONG;
  for (let n = 0; n < count; n++) {
    const at = base + n * ENTRY_BYTES;
    const index = cpu.readPhys32(at) >>> 0;
    const value = (BigInt(cpu.readPhys32(at + 12) >>> 0) << 32n) | BigInt(cpu.readPhys32(at + 8) >>> 0);
    if (loadRefused(index) || cpu.readPhys32(at + 4) !== 0 || !withoutFault(() => writeMsr(cpu, index, value))) return n + 1;
  }
  return LIST_DONE;
}

/**
 * Stores the guest MSRs named by the VM-exit MSR-store list into it as RDMSR would read them
 * (27.4). Returns LIST_DONE, the 1-based number of the first entry that failed, or LIST_TOO_LONG.
 */
export function storeMsrList(cpu: Cpu, addrField: number, countField: number): number {
  const [base, count] = list(cpu, addrField, countField);
  if (count > MSR_LIST_MAX) return LIST_TOO_LONG;
  let value = 0n;
  for (let n = 0; n < count; n++) {
    const at = base + n * ENTRY_BYTES;
    const index = cpu.readPhys32(at) >>> 0;
    if (storeRefused(index) || cpu.readPhys32(at + 4) !== 0 || !withoutFault(() => { value = readMsr(cpu, index); })) return n + 1;
    cpu.writePhys32(at + 8, Number(value & 0xffffffffn) | 0);
    cpu.writePhys32(at + 12, Number(value >> 32n) | 0);
  }
  return LIST_DONE;
}
