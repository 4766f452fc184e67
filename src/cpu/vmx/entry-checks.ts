// The checks VM entry makes on the VMX controls and on the host-state area before it looks at the
// guest (SDM Vol. 3C 26.2), for an IA-32 processor: a failed control check makes VMLAUNCH or
// VMRESUME VMfailValid(7), a failed host-state check VMfailValid(8). The controls are checked
// first. Checks that only exist with Intel 64 (canonical bases, CR3 bits 63:52, EFER, the
// address-space-size controls beyond their being 0) or with features this model lacks
// (virtual-interrupt delivery, posted interrupts, VMCS shadowing, PML, #VE, VM functions,
// dual-monitor SMM) do not apply.

import type { Cpu } from '../cpu.js';
import { validTypeBytes } from '../msr.js';
import { CONTROL_MAY1, CONTROL_MUST1, CR3_TARGET_COUNT, crAllowedInVmx, supports, validEptp } from './capabilities.js';
import {
  ENTRY, EXIT, EXIT_LOAD_PAT, EXIT_SAVE_PREEMPTION_TIMER, PIN, PIN_NMI_EXITING, PIN_PREEMPTION_TIMER,
  PIN_VIRTUAL_NMIS, PROC, PROC2, PROC2_EPT, PROC2_UNRESTRICTED_GUEST, PROC2_VIRTUALIZE_APIC, PROC2_VPID,
  PROC_IO_BITMAPS, PROC_MONITOR_TRAP_FLAG, PROC_MSR_BITMAPS, PROC_NMI_WINDOW, PROC_SECONDARY, PROC_TPR_SHADOW,
  type ControlClass,
} from './controls.js';
import {
  VMCS_APIC_ACCESS_ADDR, VMCS_CR3_TARGET_COUNT, VMCS_ENTRY_CONTROLS, VMCS_ENTRY_ERROR_CODE,
  VMCS_ENTRY_INSTRUCTION_LENGTH, VMCS_ENTRY_INTERRUPTION_INFO, VMCS_ENTRY_MSR_LOAD_ADDR, VMCS_ENTRY_MSR_LOAD_COUNT,
  VMCS_EPTP, VMCS_EXIT_CONTROLS, VMCS_EXIT_MSR_LOAD_ADDR, VMCS_EXIT_MSR_LOAD_COUNT, VMCS_EXIT_MSR_STORE_ADDR,
  VMCS_EXIT_MSR_STORE_COUNT, VMCS_GUEST_CR0, VMCS_HOST_CR0, VMCS_HOST_CR4, VMCS_HOST_CS_SELECTOR,
  VMCS_HOST_ES_SELECTOR, VMCS_HOST_PAT, VMCS_HOST_SS_SELECTOR, VMCS_HOST_TR_SELECTOR, VMCS_IO_BITMAP_A,
  VMCS_IO_BITMAP_B, VMCS_MSR_BITMAPS, VMCS_PIN_CONTROLS, VMCS_PROC2_CONTROLS, VMCS_PROC_CONTROLS,
  VMCS_TPR_THRESHOLD, VMCS_VIRTUAL_APIC_ADDR, VMCS_VPID,
} from './fields.js';
import { vmcsRead } from './vmcs.js';

/** Interruption types of the VM-entry interruption-information field (24.8.3). */
export const INTR_EXTERNAL = 0, INTR_NMI = 2, INTR_HW_EXCEPTION = 3, INTR_SW_INTERRUPT = 4,
  INTR_PRIV_SW_EXCEPTION = 5, INTR_SW_EXCEPTION = 6, INTR_OTHER = 7;
/** Exceptions that deliver an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC. */
const ERROR_CODE_VECTORS = (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14) | (1 << 17);

function controlsAllowed(cls: ControlClass, v: number): boolean {
  return (v & CONTROL_MUST1[cls]) === CONTROL_MUST1[cls] && (v & ~CONTROL_MAY1[cls]) === 0;
}
/** A 64-bit physical-address field: 4-KiB aligned and within the 32-bit physical-address width. */
function pageAddress(cpu: Cpu, encoding: number): boolean {
  return (vmcsRead(cpu, encoding) & 0xfff) === 0 && vmcsRead(cpu, encoding | 1) === 0;
}
/** An MSR list (26.2.1.2/3): when the count is not 0, a 16-byte aligned address whose last byte is below 4 GiB. */
function msrList(cpu: Cpu, countField: number, addrField: number): boolean {
  const count = vmcsRead(cpu, countField) >>> 0;
  if (count === 0) return true;
  const lo = vmcsRead(cpu, addrField) >>> 0;
  return (lo & 0xf) === 0 && vmcsRead(cpu, addrField | 1) === 0 && lo + count * 16 - 1 <= 0xffffffff;
}

/** The VM-entry interruption-information field and its companions (26.2.1.3). */
function eventInjectionValid(cpu: Cpu, proc2: number): boolean {
  const info = vmcsRead(cpu, VMCS_ENTRY_INTERRUPTION_INFO);
  if (info >= 0) return true; // bit 31 (valid) clear: nothing to inject
  if (info & 0x7ffff000) return false;
  const vector = info & 0xff, type = (info >> 8) & 7, deliverError = (info & 0x800) !== 0;
  switch (type) {
    case INTR_EXTERNAL: break;
    case INTR_NMI: if (vector !== 2) return false; break;
    case INTR_HW_EXCEPTION: if (vector > 31) return false; break;
    case INTR_SW_INTERRUPT: case INTR_PRIV_SW_EXCEPTION: case INTR_SW_EXCEPTION: {
      // IA32_VMX_MISC[30] = 0: a length of 0 is not allowed.
      const length = vmcsRead(cpu, VMCS_ENTRY_INSTRUCTION_LENGTH) >>> 0;
      if (length === 0 || length > 15) return false;
      break;
    }
    case INTR_OTHER: if (!supports(PROC, PROC_MONITOR_TRAP_FLAG) || vector !== 0) return false; break;
    default: return false; // type 1 is reserved
  }
  const protectedGuest = !(proc2 & PROC2_UNRESTRICTED_GUEST) || (vmcsRead(cpu, VMCS_GUEST_CR0) & 1) !== 0;
  const needsError = protectedGuest && type === INTR_HW_EXCEPTION && vector < 32 && ((ERROR_CODE_VECTORS >> vector) & 1) !== 0;
  if (deliverError !== needsError) return false;
  return !deliverError || (vmcsRead(cpu, VMCS_ENTRY_ERROR_CODE) & 0xffff0000) === 0;
}

/** Checks on the VM-execution, VM-exit and VM-entry control fields (26.2.1). */
export function controlsValid(cpu: Cpu): boolean {
  // VM-execution controls (26.2.1.1).
  const pin = vmcsRead(cpu, VMCS_PIN_CONTROLS), proc = vmcsRead(cpu, VMCS_PROC_CONTROLS);
  const proc2 = proc & PROC_SECONDARY ? vmcsRead(cpu, VMCS_PROC2_CONTROLS) : 0;
  if (!controlsAllowed(PIN, pin) || !controlsAllowed(PROC, proc) || !controlsAllowed(PROC2, proc2)) return false;
  if (vmcsRead(cpu, VMCS_CR3_TARGET_COUNT) >>> 0 > CR3_TARGET_COUNT) return false;
  if (proc & PROC_IO_BITMAPS && !(pageAddress(cpu, VMCS_IO_BITMAP_A) && pageAddress(cpu, VMCS_IO_BITMAP_B))) return false;
  if (proc & PROC_MSR_BITMAPS && !pageAddress(cpu, VMCS_MSR_BITMAPS)) return false;
  if (proc & PROC_TPR_SHADOW) {
    if (!pageAddress(cpu, VMCS_VIRTUAL_APIC_ADDR)) return false;
    const threshold = vmcsRead(cpu, VMCS_TPR_THRESHOLD);
    if (threshold & ~0xf) return false;
    // Without APIC-access virtualization the threshold may not exceed VTPR[7:4] (byte 0x80 of the page).
    const vtpr = cpu.readPhys8((vmcsRead(cpu, VMCS_VIRTUAL_APIC_ADDR) >>> 0) + 0x80);
    if (!(proc2 & PROC2_VIRTUALIZE_APIC) && threshold > vtpr >> 4) return false;
  }
  if (!(pin & PIN_NMI_EXITING) && pin & PIN_VIRTUAL_NMIS) return false;
  if (!(pin & PIN_VIRTUAL_NMIS) && proc & PROC_NMI_WINDOW) return false;
  if (proc2 & PROC2_VIRTUALIZE_APIC && !pageAddress(cpu, VMCS_APIC_ACCESS_ADDR)) return false;
  if (proc2 & PROC2_VPID && (vmcsRead(cpu, VMCS_VPID) & 0xffff) === 0) return false;
  if (proc2 & PROC2_EPT && !validEptp(vmcsRead(cpu, VMCS_EPTP), vmcsRead(cpu, VMCS_EPTP | 1))) return false;
  if (proc2 & PROC2_UNRESTRICTED_GUEST && !(proc2 & PROC2_EPT)) return false;
  // VM-exit controls (26.2.1.2).
  const exit = vmcsRead(cpu, VMCS_EXIT_CONTROLS);
  if (!controlsAllowed(EXIT, exit)) return false;
  if (!(pin & PIN_PREEMPTION_TIMER) && exit & EXIT_SAVE_PREEMPTION_TIMER) return false;
  if (!msrList(cpu, VMCS_EXIT_MSR_STORE_COUNT, VMCS_EXIT_MSR_STORE_ADDR)) return false;
  if (!msrList(cpu, VMCS_EXIT_MSR_LOAD_COUNT, VMCS_EXIT_MSR_LOAD_ADDR)) return false;
  // VM-entry controls (26.2.1.3); "entry to SMM" and "deactivate dual-monitor treatment" are
  // not allowed-1 on this model, so the reserved-bit check covers them.
  if (!controlsAllowed(ENTRY, vmcsRead(cpu, VMCS_ENTRY_CONTROLS))) return false;
  if (!eventInjectionValid(cpu, proc2)) return false;
  return msrList(cpu, VMCS_ENTRY_MSR_LOAD_COUNT, VMCS_ENTRY_MSR_LOAD_ADDR);
}

/**
 * Checks on the host-state area (26.2.2, 26.2.3): CR0 and CR4 against the VMX fixed bits, the
 * PAT when VM exits load it, selectors with RPL = TI = 0, CS and TR not null, and SS not null
 * (the "host address-space size" control is 0 on an IA-32 processor).
 */
export function hostStateValid(cpu: Cpu): boolean {
  if (!crAllowedInVmx(0, vmcsRead(cpu, VMCS_HOST_CR0)) || !crAllowedInVmx(4, vmcsRead(cpu, VMCS_HOST_CR4))) return false;
  if (vmcsRead(cpu, VMCS_EXIT_CONTROLS) & EXIT_LOAD_PAT) {
    const pat = (BigInt(vmcsRead(cpu, VMCS_HOST_PAT | 1) >>> 0) << 32n) | BigInt(vmcsRead(cpu, VMCS_HOST_PAT) >>> 0);
    if (!validTypeBytes(pat, true)) return false;
  }
  for (let enc = VMCS_HOST_ES_SELECTOR; enc <= VMCS_HOST_TR_SELECTOR; enc += 2) {
    if (vmcsRead(cpu, enc) & 7) return false;
  }
  return vmcsRead(cpu, VMCS_HOST_CS_SELECTOR) !== 0 && vmcsRead(cpu, VMCS_HOST_SS_SELECTOR) !== 0 &&
    vmcsRead(cpu, VMCS_HOST_TR_SELECTOR) !== 0;
}
