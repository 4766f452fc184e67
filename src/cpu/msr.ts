// Model-specific registers (RDMSR/WRMSR, SDM Vol. 4 for the Core Duo): the TSC, SYSENTER, APIC
// base, feature control, microcode signature, MTRRs, PAT, MISC_ENABLE and the two P6 performance
// counters. Every other index, and every write setting a reserved bit, raises #GP(0).
// Values live in cpu.msrs (absent = the reset value), except the TSC (cpu.tscOffset).

import { EXC_GP } from './constants.js';
import type { Cpu } from './cpu.js';
import { vmxCapabilityMsr } from './vmx/capabilities.js';

export const MSR_TSC = 0x10, MSR_PLATFORM_ID = 0x17, MSR_APIC_BASE = 0x1b, MSR_FEATURE_CONTROL = 0x3a,
  MSR_BIOS_UPDT_TRIG = 0x79, MSR_BIOS_SIGN_ID = 0x8b, MSR_PMC0 = 0xc1, MSR_PMC1 = 0xc2,
  MSR_MTRRCAP = 0xfe, MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176,
  MSR_PERFEVTSEL0 = 0x186, MSR_PERFEVTSEL1 = 0x187, MSR_MISC_ENABLE = 0x1a0, MSR_DEBUGCTL = 0x1d9,
  MSR_MTRR_PHYSBASE0 = 0x200, MSR_MTRR_FIX64K = 0x250, MSR_MTRR_FIX16K_80000 = 0x258,
  MSR_MTRR_FIX16K_A0000 = 0x259, MSR_MTRR_FIX4K_C0000 = 0x268, MSR_PAT = 0x277, MSR_MTRR_DEF_TYPE = 0x2ff;

/** APIC_BASE: bit 8 bootstrap processor (read-only), bit 11 global enable, 12-31 base. */
export const APIC_BASE_BSP = 1n << 8n, APIC_BASE_ENABLE = 1n << 11n;
// MISC_ENABLE bits this model defines.
export const MISC_FAST_STRINGS = 1, MISC_TCC = 1 << 3, MISC_PERFMON = 1 << 7, MISC_BTS_UNAVAILABLE = 1 << 11,
  MISC_PEBS_UNAVAILABLE = 1 << 12, MISC_MONITOR_FSM = 1 << 18, MISC_LIMIT_CPUID = 1 << 22;
const MISC_WRITABLE = MISC_FAST_STRINGS | MISC_TCC | MISC_MONITOR_FSM | MISC_LIMIT_CPUID;
const MISC_READ_ONLY = MISC_PERFMON | MISC_BTS_UNAVAILABLE | MISC_PEBS_UNAVAILABLE;
/** FEATURE_CONTROL: bit 0 lock, bit 2 VMX outside SMX (bit 1, VMX inside SMX, needs SMX: reserved). */
export const FC_LOCK = 1n, FC_VMX = 4n;

const MASK32 = 0xffffffffn;
const MASK40 = 0xffffffffffn;
/** The MTRR variable-range count and the MTRRcap value: 8 ranges, fixed ranges, write-combining. */
const MTRR_VCNT = 8;
const MTRRCAP = BigInt(MTRR_VCNT) | (1n << 8n) | (1n << 10n);
const PAT_RESET = 0x0007040600070406n;

/** Reset values of the stored MSRs (cpu.msrs holds only what was written since reset). */
function resetValue(index: number): bigint {
  switch (index) {
    case MSR_APIC_BASE: return 0xfee00000n | APIC_BASE_BSP | APIC_BASE_ENABLE;
    case MSR_MISC_ENABLE: return BigInt(MISC_FAST_STRINGS | MISC_READ_ONLY | MISC_MONITOR_FSM);
    case MSR_PAT: return PAT_RESET;
    default: return 0n;
  }
}
function stored(cpu: Cpu, index: number): bigint {
  return cpu.msrs.get(index) ?? resetValue(index);
}

/** Memory types valid in MTRRs (UC, WC, WT, WP, WB) and, with UC- (7), in the PAT. */
function validType(t: bigint, pat: boolean): boolean {
  return t === 0n || t === 1n || t === 4n || t === 5n || t === 6n || (pat && t === 7n);
}
/** Every byte of a fixed-range MTRR or the PAT holds a valid type. */
export function validTypeBytes(v: bigint, pat: boolean): boolean {
  for (let k = 0n; k < 64n; k += 8n) if (!validType((v >> k) & 0xffn, pat)) return false;
  return true;
}
function isFixedMtrr(index: number): boolean {
  return index === MSR_MTRR_FIX64K || index === MSR_MTRR_FIX16K_80000 || index === MSR_MTRR_FIX16K_A0000 ||
    (index >= MSR_MTRR_FIX4K_C0000 && index <= MSR_MTRR_FIX4K_C0000 + 7);
}
function isVariableMtrr(index: number): boolean {
  return index >= MSR_MTRR_PHYSBASE0 && index < MSR_MTRR_PHYSBASE0 + 2 * MTRR_VCNT;
}

/** RDMSR: the value of MSR `index`, or #GP(0) when this model has no such MSR. */
export function readMsr(cpu: Cpu, index: number): bigint {
  switch (index) {
    case MSR_TSC: return (cpu.readTsc() + cpu.tscOffset) & 0xffffffffffffffffn;
    case MSR_MTRRCAP: return MTRRCAP;
    case MSR_PLATFORM_ID: case MSR_APIC_BASE: case MSR_FEATURE_CONTROL: case MSR_BIOS_SIGN_ID:
    case MSR_PMC0: case MSR_PMC1: case MSR_SYSENTER_CS: case MSR_SYSENTER_ESP: case MSR_SYSENTER_EIP:
    case MSR_PERFEVTSEL0: case MSR_PERFEVTSEL1: case MSR_MISC_ENABLE: case MSR_DEBUGCTL: case MSR_PAT:
    case MSR_MTRR_DEF_TYPE:
      return stored(cpu, index);
    default:
      if (isFixedMtrr(index) || isVariableMtrr(index)) return stored(cpu, index);
      // The VMX capability MSRs (read-only: WRMSR finds no case for them and faults).
      return (cpu.vmx.supported ? vmxCapabilityMsr(index) : undefined) ?? cpu.fault(EXC_GP, 0);
  }
}

/** WRMSR: stores `v` into MSR `index` after the reserved-bit checks (#GP(0)). */
export function writeMsr(cpu: Cpu, index: number, v: bigint): void {
  const gp = (): never => cpu.fault(EXC_GP, 0);
  switch (index) {
    case MSR_TSC:
      // Writing the TSC moves it: later reads count on from the value written.
      cpu.tscOffset = v - cpu.readTsc();
      return;
    case MSR_APIC_BASE:
      if (v & ~(MASK32 & ~0xfffn | APIC_BASE_ENABLE | APIC_BASE_BSP)) gp();
      v = (v & ~APIC_BASE_BSP) | APIC_BASE_BSP; // BSP is read-only: this is the only processor
      cpu.onApicBaseWrite(Number(v & MASK32));
      break;
    case MSR_FEATURE_CONTROL:
      if (stored(cpu, index) & FC_LOCK || v & ~(FC_LOCK | FC_VMX)) gp();
      break;
    case MSR_BIOS_UPDT_TRIG:
      return; // no microcode to load: the trigger is accepted and does nothing
    case MSR_BIOS_SIGN_ID:
      break;
    case MSR_SYSENTER_CS: case MSR_SYSENTER_ESP: case MSR_SYSENTER_EIP:
      v &= MASK32; // a 32-bit processor keeps the low half
      break;
    case MSR_PMC0: case MSR_PMC1:
      // P6 counters: the low 32 bits are written, sign-extended to the 40-bit width.
      v = (BigInt.asIntN(32, v & MASK32)) & MASK40;
      break;
    case MSR_PERFEVTSEL0: case MSR_PERFEVTSEL1:
      if (v & ~MASK32 || v & (1n << 21n)) gp();
      break;
    case MSR_MISC_ENABLE:
      // Read-only bits ignore writes; bits this model does not define must be written as 0.
      if (v & ~BigInt(MISC_WRITABLE | MISC_READ_ONLY)) gp();
      v = (v & BigInt(MISC_WRITABLE)) | BigInt(MISC_READ_ONLY);
      break;
    case MSR_DEBUGCTL:
      if (v !== 0n) gp(); // no LBR or branch single-step on this model yet
      break;
    case MSR_PAT:
      if (!validTypeBytes(v, true)) gp();
      break;
    case MSR_MTRR_DEF_TYPE:
      if (v & ~0xcffn || !validType(v & 0xffn, false)) gp();
      break;
    default:
      if (isFixedMtrr(index)) {
        if (!validTypeBytes(v, false)) gp();
      } else if (isVariableMtrr(index)) {
        // PHYSBASEn: type in 7:0, base in 31:12; PHYSMASKn: valid bit 11, mask in 31:12.
        const mask = index & 1 ? 0xfffff800n : 0xfffff0ffn;
        if (v & ~mask || (!(index & 1) && !validType(v & 0xffn, false))) gp();
      } else {
        gp(); // PLATFORM_ID, MTRRcap (read-only) and every unknown index
      }
  }
  cpu.msrs.set(index, v);
}

export function apicEnabled(cpu: Cpu): boolean {
  return (stored(cpu, MSR_APIC_BASE) & APIC_BASE_ENABLE) !== 0n;
}
export function miscEnable(cpu: Cpu): number {
  return Number(stored(cpu, MSR_MISC_ENABLE) & MASK32);
}
/** SYSENTER_CS/ESP/EIP as 32-bit numbers. */
export function sysenterMsr(cpu: Cpu, index: number): number {
  return Number(stored(cpu, index) & MASK32) | 0;
}
