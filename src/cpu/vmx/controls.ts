// The VMX control catalogue: every VM-execution, VM-exit and VM-entry control the SDM defines for
// an IA-32 processor of this generation (Vol. 3C 24.6-24.8), by bit, and the "default1" classes of
// Appendix A. Which of them this CPU supports is declared once, in capabilities.ts.

/** The five control fields, in the order of their capability MSRs. */
export const PIN = 0, PROC = 1, PROC2 = 2, EXIT = 3, ENTRY = 4;
export type ControlClass = typeof PIN | typeof PROC | typeof PROC2 | typeof EXIT | typeof ENTRY;

// Pin-based VM-execution controls (24.6.1).
export const PIN_EXT_INT_EXITING = 1 << 0, PIN_NMI_EXITING = 1 << 3, PIN_VIRTUAL_NMIS = 1 << 5,
  PIN_PREEMPTION_TIMER = 1 << 6;

// Primary processor-based VM-execution controls (24.6.2). CR8-load/store exiting (bits 19, 20)
// exist only on processors supporting Intel 64, so an IA-32 processor has no such controls.
export const PROC_INTERRUPT_WINDOW = 1 << 2, PROC_TSC_OFFSETTING = 1 << 3, PROC_HLT_EXITING = 1 << 7,
  PROC_INVLPG_EXITING = 1 << 9, PROC_MWAIT_EXITING = 1 << 10, PROC_RDPMC_EXITING = 1 << 11,
  PROC_RDTSC_EXITING = 1 << 12, PROC_CR3_LOAD_EXITING = 1 << 15, PROC_CR3_STORE_EXITING = 1 << 16,
  PROC_TPR_SHADOW = 1 << 21, PROC_NMI_WINDOW = 1 << 22, PROC_MOV_DR_EXITING = 1 << 23,
  PROC_UNCOND_IO_EXITING = 1 << 24, PROC_IO_BITMAPS = 1 << 25, PROC_MONITOR_TRAP_FLAG = 1 << 27,
  PROC_MSR_BITMAPS = 1 << 28, PROC_MONITOR_EXITING = 1 << 29, PROC_PAUSE_EXITING = 1 << 30,
  PROC_SECONDARY = 1 << 31;

// Secondary processor-based VM-execution controls (24.6.2, Table 24-7), up to the Westmere set.
export const PROC2_VIRTUALIZE_APIC = 1 << 0, PROC2_EPT = 1 << 1, PROC2_DESC_TABLE_EXITING = 1 << 2,
  PROC2_RDTSCP = 1 << 3, PROC2_VIRTUALIZE_X2APIC = 1 << 4, PROC2_VPID = 1 << 5,
  PROC2_WBINVD_EXITING = 1 << 6, PROC2_UNRESTRICTED_GUEST = 1 << 7, PROC2_PAUSE_LOOP_EXITING = 1 << 10;

// VM-exit controls (24.7.1). "Host address-space size" (bit 9) is IA-32e only.
export const EXIT_SAVE_DEBUG = 1 << 2, EXIT_HOST_ADDR_SPACE = 1 << 9, EXIT_LOAD_PERF_GLOBAL = 1 << 12,
  EXIT_ACK_INTERRUPT = 1 << 15, EXIT_SAVE_PAT = 1 << 18, EXIT_LOAD_PAT = 1 << 19, EXIT_SAVE_EFER = 1 << 20,
  EXIT_LOAD_EFER = 1 << 21, EXIT_SAVE_PREEMPTION_TIMER = 1 << 22;

// VM-entry controls (24.8.1). "IA-32e mode guest" (bit 9) is IA-32e only.
export const ENTRY_LOAD_DEBUG = 1 << 2, ENTRY_IA32E_GUEST = 1 << 9, ENTRY_SMM = 1 << 10,
  ENTRY_DEACTIVATE_DUAL_MONITOR = 1 << 11, ENTRY_LOAD_PERF_GLOBAL = 1 << 13, ENTRY_LOAD_PAT = 1 << 14,
  ENTRY_LOAD_EFER = 1 << 15;

/**
 * Default1 controls (Appendix A.3-A.5): reserved bits, and the few named controls of the first
 * VMX processors, that the non-TRUE capability MSRs report as fixed to 1. Secondary controls
 * have none.
 */
export const DEFAULT1: Readonly<Record<ControlClass, number>> = {
  [PIN]: 0x00000016,
  [PROC]: 0x0401e172,
  [PROC2]: 0,
  [EXIT]: 0x00036dff,
  [ENTRY]: 0x000011ff,
};
