// What this CPU's VMX supports, declared once (MODEL), and everything derived from it: the VMX
// capability MSRs (SDM Vol. 3C Appendix A), the CR0/CR4 bits fixed in VMX operation, and which
// VMCS fields exist. Turning a feature on is one edit: add its control to MODEL (and, for EPT and
// VPID, its bits to EPT_VPID_CAP); the MSRs, the field set and VMCS_ENUM follow.
//
// The model (docs/VMX.md): the VMX of the Core Duo (basic controls, no TRUE MSRs of its own)
// plus the Westmere features EPT, VPID, unrestricted guest and the VMX-preemption timer, with the
// TRUE_* capability MSRs of that generation. IA-32e-only controls are absent.

import {
  CR0_CD, CR0_DEFINED, CR0_ET, CR0_NE, CR0_NW, CR0_PE, CR0_PG, CR4_DE, CR4_PCE, CR4_PGE, CR4_PSE, CR4_PVI, CR4_TSD,
  CR4_VME, CR4_VMXE,
} from '../constants.js';
import {
  DEFAULT1, ENTRY, ENTRY_LOAD_DEBUG, ENTRY_LOAD_PAT, EXIT, EXIT_ACK_INTERRUPT, EXIT_LOAD_PAT, EXIT_SAVE_DEBUG,
  EXIT_SAVE_PAT, EXIT_SAVE_PREEMPTION_TIMER, PIN, PIN_EXT_INT_EXITING, PIN_NMI_EXITING, PIN_PREEMPTION_TIMER,
  PIN_VIRTUAL_NMIS, PROC, PROC2, PROC2_DESC_TABLE_EXITING, PROC2_EPT, PROC2_UNRESTRICTED_GUEST,
  PROC2_VIRTUALIZE_APIC, PROC2_VPID, PROC2_WBINVD_EXITING, PROC_CR3_LOAD_EXITING, PROC_CR3_STORE_EXITING,
  PROC_HLT_EXITING, PROC_INTERRUPT_WINDOW, PROC_INVLPG_EXITING, PROC_IO_BITMAPS, PROC_MONITOR_EXITING,
  PROC_MONITOR_TRAP_FLAG, PROC_MOV_DR_EXITING, PROC_MSR_BITMAPS, PROC_MWAIT_EXITING, PROC_NMI_WINDOW,
  PROC_PAUSE_EXITING, PROC_RDPMC_EXITING, PROC_RDTSC_EXITING, PROC_SECONDARY, PROC_TPR_SHADOW,
  PROC_TSC_OFFSETTING, PROC_UNCOND_IO_EXITING, type ControlClass,
} from './controls.js';
import { FIELDS } from './fields.js';

/**
 * The controls this CPU supports (may be set to 1). A default1 control listed here may also be 0,
 * which only the TRUE_* MSRs report (CR3-load/store exiting, save/load debug controls).
 */
export const MODEL: Readonly<Record<ControlClass, number>> = {
  [PIN]: PIN_EXT_INT_EXITING | PIN_NMI_EXITING | PIN_VIRTUAL_NMIS | PIN_PREEMPTION_TIMER,
  [PROC]: PROC_INTERRUPT_WINDOW | PROC_TSC_OFFSETTING | PROC_HLT_EXITING | PROC_INVLPG_EXITING |
    PROC_MWAIT_EXITING | PROC_RDPMC_EXITING | PROC_RDTSC_EXITING | PROC_CR3_LOAD_EXITING |
    PROC_CR3_STORE_EXITING | PROC_TPR_SHADOW | PROC_NMI_WINDOW | PROC_MOV_DR_EXITING |
    PROC_UNCOND_IO_EXITING | PROC_IO_BITMAPS | PROC_MONITOR_TRAP_FLAG | PROC_MSR_BITMAPS |
    PROC_MONITOR_EXITING | PROC_PAUSE_EXITING | PROC_SECONDARY,
  [PROC2]: PROC2_VIRTUALIZE_APIC | PROC2_EPT | PROC2_DESC_TABLE_EXITING | PROC2_VPID | PROC2_WBINVD_EXITING |
    PROC2_UNRESTRICTED_GUEST,
  [EXIT]: EXIT_SAVE_DEBUG | EXIT_ACK_INTERRUPT | EXIT_SAVE_PAT | EXIT_LOAD_PAT | EXIT_SAVE_PREEMPTION_TIMER,
  [ENTRY]: ENTRY_LOAD_DEBUG | ENTRY_LOAD_PAT,
};

/** Whether the model supports (can set to 1) `control` of class `cls`. */
export function supports(cls: ControlClass, control: number): boolean {
  if (cls === PROC2 && !supports(PROC, PROC_SECONDARY)) return false;
  return ((DEFAULT1[cls] | MODEL[cls]) & control) === control;
}

// IA32_VMX_EPT_VPID_CAP bits (Appendix A.10) this model reports. EPT accessed and dirty flags
// (bit 21) are this model's extension: Westmere has none (docs/VMX.md).
export const EPT_EXECUTE_ONLY = 1n << 0n, EPT_WALK_4 = 1n << 6n, EPT_UC = 1n << 8n, EPT_WB = 1n << 14n,
  EPT_2MB_PAGES = 1n << 16n, EPT_INVEPT = 1n << 20n, EPT_AD_FLAGS = 1n << 21n, EPT_INVEPT_SINGLE = 1n << 25n,
  EPT_INVEPT_ALL = 1n << 26n,
  VPID_INVVPID = 1n << 32n, VPID_INVVPID_ADDRESS = 1n << 40n, VPID_INVVPID_SINGLE = 1n << 41n,
  VPID_INVVPID_ALL = 1n << 42n, VPID_INVVPID_SINGLE_KEEP_GLOBALS = 1n << 43n;
export const EPT_VPID_CAP = EPT_EXECUTE_ONLY | EPT_WALK_4 | EPT_UC | EPT_WB | EPT_2MB_PAGES | EPT_INVEPT |
  EPT_AD_FLAGS | EPT_INVEPT_SINGLE | EPT_INVEPT_ALL | VPID_INVVPID | VPID_INVVPID_ADDRESS | VPID_INVVPID_SINGLE |
  VPID_INVVPID_ALL | VPID_INVVPID_SINGLE_KEEP_GLOBALS;
/**
 * An EPTP as VM entry and INVEPT accept it (SDM 26.2.1.1): UC or WB, 4-level walk, bits 11:7
 * reserved, bit 6 (A/D flags) only where EPT_VPID_CAP reports them.
 */
export function validEptp(lo: number, hi: number): boolean {
  const type = lo & 7;
  const typeOk = (type === 0 && (EPT_VPID_CAP & EPT_UC) !== 0n) || (type === 6 && (EPT_VPID_CAP & EPT_WB) !== 0n);
  const reserved = (EPT_VPID_CAP & EPT_AD_FLAGS) !== 0n ? 0xf80 : 0xfc0;
  return typeOk && ((lo >> 3) & 7) === 3 && (lo & reserved) === 0 && hi === 0;
}
/** The INVEPT and INVVPID instructions exist (else #UD): EPT (VPID) and the instruction are supported. */
export const INVEPT_SUPPORTED = supports(PROC2, PROC2_EPT) && (EPT_VPID_CAP & EPT_INVEPT) !== 0n;
export const INVVPID_SUPPORTED = supports(PROC2, PROC2_VPID) && (EPT_VPID_CAP & VPID_INVVPID) !== 0n;
/** INVEPT (INVVPID) types supported, as bits of EPT_VPID_CAP: type t is bit 24 + t (40 + t). */
export function inveptTypeSupported(type: number): boolean {
  return (type === 1 || type === 2) && (EPT_VPID_CAP & (1n << BigInt(24 + type))) !== 0n;
}
export function invvpidTypeSupported(type: number): boolean {
  return type >= 0 && type <= 3 && (EPT_VPID_CAP & (1n << BigInt(40 + type))) !== 0n;
}

/**
 * The VMCS revision identifier of this implementation's VMCS layout (vmcs.ts): VMXON and VMPTRLD
 * refuse regions carrying another. Bump it whenever the layout changes.
 */
export const VMCS_REVISION_ID = 0x74640001;

// IA32_VMX_BASIC (A.1): revision, 4 KiB regions, 32-bit physical addresses (no Intel 64),
// no dual-monitor SMM treatment, write-back VMCS memory type, no INS/OUTS exit information,
// TRUE_* control MSRs present.
const BASIC_REGION_SIZE = 0x1000n;
const BASIC_ADDR_32 = 1n << 48n, BASIC_MEMTYPE_WB = 6n << 50n, BASIC_TRUE_CTLS = 1n << 55n;
const VMX_BASIC = BigInt(VMCS_REVISION_ID) | (BASIC_REGION_SIZE << 32n) | BASIC_ADDR_32 | BASIC_MEMTYPE_WB |
  BASIC_TRUE_CTLS;

// IA32_VMX_MISC (A.6): the preemption timer counts down each time TSC bit 5 changes; activity
// states HLT and shutdown (no wait-for-SIPI: a single processor gets no SIPI); 4 CR3-target
// values; up to 512 MSRs per list; MSEG revision 0; VMWRITE to exit-information fields refused.
export const PREEMPTION_TIMER_RATE = 5;
export const ACTIVITY_HLT = 1, ACTIVITY_SHUTDOWN = 2;
export const CR3_TARGET_COUNT = 4;
/** Recommended maximum entries of each MSR list: 512 x (N + 1) with N in bits 27:25 (msr-lists.ts). */
export const MSR_LIST_MAX = 512;
const VMX_MISC = BigInt(PREEMPTION_TIMER_RATE) | (1n << BigInt(5 + ACTIVITY_HLT)) |
  (1n << BigInt(5 + ACTIVITY_SHUTDOWN)) | (BigInt(CR3_TARGET_COUNT) << 16n) | (BigInt(MSR_LIST_MAX / 512 - 1) << 25n);

/** CR0 bits fixed to 1 in VMX operation (A.7): PE, NE, PG; none is fixed to 0. */
export const CR0_FIXED0 = CR0_PE | CR0_NE | CR0_PG;
export const CR0_FIXED1 = 0xffffffff | 0;
/**
 * Every CR4 bit this CPU implements: IA32_VMX_CR4_FIXED1 must report exactly these, so MOV to
 * CR4 (system.ts) takes its list of supported bits from here. VMXE is settable only where the
 * machine offers VMX (cpu.vmx.supported).
 */
export const CR4_IMPLEMENTED = CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PGE | CR4_PCE | CR4_VMXE;
export const CR4_FIXED0 = CR4_VMXE;
export const CR4_FIXED1 = CR4_IMPLEMENTED;

/** CR0 (cr = 0) or CR4 (cr = 4) value `v` respects the bits fixed in VMX operation. */
export function crAllowedInVmx(cr: 0 | 4, v: number): boolean {
  const fixed0 = cr === 0 ? CR0_FIXED0 : CR4_FIXED0, fixed1 = cr === 0 ? CR0_FIXED1 : CR4_FIXED1;
  return (v & fixed0) === fixed0 && (v & ~fixed1) === 0;
}

/**
 * CR0 after a VM entry or VM exit loads `field` into `cr0` (26.3.2.1, 27.5.1): ET, NW, CD and the
 * reserved bits are never modified (ET reads 1 and the reserved bits 0 on this processor).
 */
const CR0_KEPT = CR0_ET | CR0_NW | CR0_CD;
export function cr0Loaded(cr0: number, field: number): number {
  return (field & CR0_DEFINED & ~CR0_KEPT) | (cr0 & CR0_KEPT) | CR0_ET;
}

/** Per field of FIELDS: whether it exists on this model. */
export const FIELD_SUPPORTED: readonly boolean[] = FIELDS.map((fd) =>
  fd.requires.length === 0 || fd.requires.some(([cls, bit]) => supports(cls, bit)));

/** IA32_VMX_VMCS_ENUM (A.9): bits 9:1 hold the highest field index of any supported field. */
const VMCS_ENUM = BigInt(FIELDS.reduce((max, fd, k) =>
  FIELD_SUPPORTED[k] ? Math.max(max, (fd.encoding >> 1) & 0x1ff) : max, 0) << 1);

export const MSR_VMX_BASIC = 0x480, MSR_VMX_PINBASED_CTLS = 0x481, MSR_VMX_PROCBASED_CTLS = 0x482,
  MSR_VMX_EXIT_CTLS = 0x483, MSR_VMX_ENTRY_CTLS = 0x484, MSR_VMX_MISC = 0x485, MSR_VMX_CR0_FIXED0 = 0x486,
  MSR_VMX_CR0_FIXED1 = 0x487, MSR_VMX_CR4_FIXED0 = 0x488, MSR_VMX_CR4_FIXED1 = 0x489,
  MSR_VMX_VMCS_ENUM = 0x48a, MSR_VMX_PROCBASED_CTLS2 = 0x48b, MSR_VMX_EPT_VPID_CAP = 0x48c,
  MSR_VMX_TRUE_PINBASED_CTLS = 0x48d, MSR_VMX_TRUE_PROCBASED_CTLS = 0x48e, MSR_VMX_TRUE_EXIT_CTLS = 0x48f,
  MSR_VMX_TRUE_ENTRY_CTLS = 0x490;

/**
 * A control capability MSR: allowed 0-settings in bits 31:0 (a 1 means the control must be 1),
 * allowed 1-settings in bits 63:32 (a 1 means it may be 1). Without TRUE, every default1 bit
 * must be 1; with TRUE only those the model cannot clear.
 */
export function controlMsr(cls: ControlClass, trueMsr: boolean): bigint {
  const default1 = DEFAULT1[cls];
  const must1 = trueMsr ? default1 & ~MODEL[cls] : default1;
  return (BigInt((default1 | MODEL[cls]) >>> 0) << 32n) | BigInt(must1 >>> 0);
}

/**
 * Per control class: the bits VM entry requires to be 1 and the bits it allows to be 1 (SDM
 * 26.2.1: the TRUE MSRs when IA32_VMX_BASIC[55] is 1, as here).
 */
const CLASSES: readonly ControlClass[] = [PIN, PROC, PROC2, EXIT, ENTRY];
export const CONTROL_MUST1: readonly number[] = CLASSES.map((cls) => Number(controlMsr(cls, true) & 0xffffffffn) | 0);
export const CONTROL_MAY1: readonly number[] = CLASSES.map((cls) => Number(controlMsr(cls, true) >> 32n) | 0);

const MSR_VALUES: ReadonlyMap<number, bigint> = (() => {
  const m = new Map<number, bigint>();
  m.set(MSR_VMX_BASIC, VMX_BASIC);
  m.set(MSR_VMX_PINBASED_CTLS, controlMsr(PIN, false));
  m.set(MSR_VMX_PROCBASED_CTLS, controlMsr(PROC, false));
  m.set(MSR_VMX_EXIT_CTLS, controlMsr(EXIT, false));
  m.set(MSR_VMX_ENTRY_CTLS, controlMsr(ENTRY, false));
  m.set(MSR_VMX_MISC, VMX_MISC);
  m.set(MSR_VMX_CR0_FIXED0, BigInt(CR0_FIXED0 >>> 0));
  m.set(MSR_VMX_CR0_FIXED1, BigInt(CR0_FIXED1 >>> 0));
  m.set(MSR_VMX_CR4_FIXED0, BigInt(CR4_FIXED0 >>> 0));
  m.set(MSR_VMX_CR4_FIXED1, BigInt(CR4_FIXED1 >>> 0));
  m.set(MSR_VMX_VMCS_ENUM, VMCS_ENUM);
  // PROCBASED_CTLS2 exists when secondary controls may be activated; EPT_VPID_CAP when EPT or VPID may be enabled.
  if (supports(PROC, PROC_SECONDARY)) m.set(MSR_VMX_PROCBASED_CTLS2, controlMsr(PROC2, false));
  if (supports(PROC2, PROC2_EPT) || supports(PROC2, PROC2_VPID)) m.set(MSR_VMX_EPT_VPID_CAP, EPT_VPID_CAP);
  if (VMX_BASIC & BASIC_TRUE_CTLS) {
    m.set(MSR_VMX_TRUE_PINBASED_CTLS, controlMsr(PIN, true));
    m.set(MSR_VMX_TRUE_PROCBASED_CTLS, controlMsr(PROC, true));
    m.set(MSR_VMX_TRUE_EXIT_CTLS, controlMsr(EXIT, true));
    m.set(MSR_VMX_TRUE_ENTRY_CTLS, controlMsr(ENTRY, true));
  }
  return m;
})();

/** RDMSR of a VMX capability MSR: its value, or undefined when this model has no such MSR. */
export function vmxCapabilityMsr(index: number): bigint | undefined {
  return MSR_VALUES.get(index);
}
