// Control- and debug-register instructions in VMX non-root operation (SDM Vol. 3C 25.1.3, 25.3):
// MOV to/from CR0, CR3, CR4, CLTS, LMSW and SMSW under the CR0/CR4 guest/host masks and read
// shadows, CR3-load exiting with the CR3-target list, CR3-store exiting, and MOV-DR exiting,
// with the exit qualifications of Tables 27-3 (control-register accesses, reason 28) and 27-4
// (MOV DR, reason 29). A bit set in a guest/host mask is owned by the host: the guest reads the
// read shadow's bit, a write that would make it differ from the shadow exits, and a write that
// does not exit leaves the real bit alone.

import type { Cpu } from '../cpu.js';
import type { Insn } from '../insn.js';
import { PROC_CR3_LOAD_EXITING, PROC_CR3_STORE_EXITING, PROC_MOV_DR_EXITING } from './controls.js';
import { EXIT_REASON_CR_ACCESS, EXIT_REASON_DR_ACCESS, instructionExit } from './exit.js';
import {
  VMCS_CR0_MASK, VMCS_CR0_SHADOW, VMCS_CR3_TARGET0, VMCS_CR3_TARGET_COUNT, VMCS_CR4_MASK, VMCS_CR4_SHADOW,
  VMCS_PROC_CONTROLS, X_GUEST_LINEAR,
} from './fields.js';
import { vmcsRead, vmcsWrite } from './vmcs.js';

/** Access types of the control-register exit qualification (bits 5:4). */
const MOV_TO_CR = 0, MOV_FROM_CR = 1, CLTS = 2, LMSW = 3;
/** CR0.TS, the bit CLTS clears. */
const TS = 1 << 3;
/** LMSW's qualification: memory operand (bit 6). */
const LMSW_MEMORY = 1 << 6;

const mask = (cpu: Cpu, cr: number): number => vmcsRead(cpu, cr === 0 ? VMCS_CR0_MASK : VMCS_CR4_MASK);
const shadow = (cpu: Cpu, cr: number): number => vmcsRead(cpu, cr === 0 ? VMCS_CR0_SHADOW : VMCS_CR4_SHADOW);

function crExit(cpu: Cpu, qualification: number): true {
  instructionExit(cpu, EXIT_REASON_CR_ACCESS, qualification);
  return true;
}

/** The CR3-target list (its first CR3-target-count values) holds `v`. */
function cr3Target(cpu: Cpu, v: number): boolean {
  const count = vmcsRead(cpu, VMCS_CR3_TARGET_COUNT);
  for (let k = 0; k < count; k++) if (vmcsRead(cpu, VMCS_CR3_TARGET0 + 2 * k) === v) return true;
  return false;
}

/**
 * MOV to CR`cr` of `v` from register `gpr` (after the CPL check): a VM exit for CR0/CR4 when a
 * host-owned bit of `v` differs from the read shadow, for CR3 with "CR3-load exiting" unless
 * `v` is a CR3-target value (with a count of 0, always). CR2 never exits.
 */
export function movToCrExits(cpu: Cpu, cr: number, gpr: number, v: number): boolean {
  const qualification = cr | (MOV_TO_CR << 4) | (gpr << 8);
  if (cr === 0 || cr === 4) return ((v ^ shadow(cpu, cr)) & mask(cpu, cr)) !== 0 && crExit(cpu, qualification);
  if (cr !== 3) return false;
  return (vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_CR3_LOAD_EXITING) !== 0 && !cr3Target(cpu, v) &&
    crExit(cpu, qualification);
}

/** MOV from CR`cr` to register `gpr`: only CR3, with "CR3-store exiting", exits. */
export function movFromCrExits(cpu: Cpu, cr: number, gpr: number): boolean {
  return cr === 3 && (vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_CR3_STORE_EXITING) !== 0 &&
    crExit(cpu, 3 | (MOV_FROM_CR << 4) | (gpr << 8));
}

/** CR0 or CR4 as the guest reads it (MOV from CR, SMSW): host-owned bits from the read shadow. */
export function guestCrView(cpu: Cpu, cr: number, actual: number): number {
  if (cr !== 0 && cr !== 4) return actual;
  const m = mask(cpu, cr);
  return (actual & ~m) | (shadow(cpu, cr) & m);
}

/**
 * The value a MOV to CR0/CR4 or LMSW that did not exit writes: host-owned bits keep their
 * current value (25.3), the others come from `v`. The ordinary checks then apply to it.
 */
export function guestCrWrite(cpu: Cpu, cr: number, v: number): number {
  if (cr !== 0 && cr !== 4) return v;
  const m = mask(cpu, cr);
  return (v & ~m) | ((cr === 0 ? cpu.cr0 : cpu.cr4) & m);
}

/**
 * CLTS (after the CPL check): with CR0.TS host-owned, a VM exit when the shadow's TS is 1, and
 * no change to CR0.TS when it is 0 (25.3). Returns whether CLTS goes on to clear CR0.TS.
 */
export function cltsClearsTs(cpu: Cpu): boolean {
  if (!(mask(cpu, 0) & TS)) return true;
  if (shadow(cpu, 0) & TS) crExit(cpu, CLTS << 4);
  return false;
}

/**
 * LMSW of `v` (after the CPL check and the operand read): a VM exit when a host-owned bit among
 * MP, EM, TS differs from the shadow, or PE is host-owned, set in `v` and clear in the shadow
 * (LMSW cannot clear PE). The qualification carries the source data; a memory operand's linear
 * address goes to the guest-linear-address field (27.2.1).
 */
export function lmswExits(cpu: Cpu, i: Insn, v: number): boolean {
  const m = mask(cpu, 0), s = shadow(cpu, 0);
  const pe = m & v & ~s & 1, others = (v ^ s) & m & 0xe;
  if (!pe && !others) return false;
  if (i.mod !== 3) vmcsWrite(cpu, X_GUEST_LINEAR, cpu.segBase[i.seg] + cpu.ea(i));
  return crExit(cpu, (LMSW << 4) | (i.mod !== 3 ? LMSW_MEMORY : 0) | ((v & 0xffff) << 16));
}

/**
 * MOV DR with "MOV-DR exiting": the exit comes before the CR4.DE #UD of DR4/DR5, the privilege
 * #GP and the general-detect #DB (25.1.3, an exception to 25.1.1). Qualification: DR number as
 * encoded, direction (bit 4: from DR), register (11:8).
 */
export function movDrExits(cpu: Cpu, i: Insn, fromDr: boolean): boolean {
  if (!(vmcsRead(cpu, VMCS_PROC_CONTROLS) & PROC_MOV_DR_EXITING)) return false;
  instructionExit(cpu, EXIT_REASON_DR_ACCESS, i.reg | (fromDr ? 1 << 4 : 0) | (i.rm << 8));
  return true;
}
