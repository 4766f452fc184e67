// The VMCS field table: every field of the six VMCS groups (guest state, host state, VM-execution,
// VM-exit and VM-entry controls, VM-exit information) that the SDM defines for the features of
// this model, declared once with its encoding (Vol. 3C Appendix B). Width and type come from the
// encoding itself (24.11.2): bit 0 access type (0 full, 1 high half of a 64-bit field), bits 9:1
// index, bits 11:10 type, bits 14:13 width. Natural-width fields are 32 bits on an IA-32 processor.
//
// A field that belongs to a feature names the control(s) that feature needs: the field exists
// (VMREAD/VMWRITE accept it) when the model supports any of them (capabilities.ts). Fields of
// later generations (posted interrupts, virtual-interrupt delivery, VMCS shadowing, PML, #VE,
// VM functions, XSS, TSC scaling, ...) are not declared: this model predates them.

import {
  ENTRY, ENTRY_LOAD_EFER, ENTRY_LOAD_PAT, ENTRY_LOAD_PERF_GLOBAL, EXIT, EXIT_LOAD_EFER, EXIT_LOAD_PAT,
  EXIT_LOAD_PERF_GLOBAL, EXIT_SAVE_EFER, EXIT_SAVE_PAT, PIN, PIN_PREEMPTION_TIMER, PROC, PROC2, PROC2_EPT,
  PROC2_VIRTUALIZE_APIC, PROC2_VPID, PROC_IO_BITMAPS, PROC_MSR_BITMAPS, PROC_SECONDARY, PROC_TPR_SHADOW,
  type ControlClass,
} from './controls.js';

export const W16 = 0, W64 = 1, W32 = 2, WNAT = 3;
export const T_CONTROL = 0, T_EXIT_INFO = 1, T_GUEST = 2, T_HOST = 3;

/** A control that must be supported (settable to 1) for a field to exist. */
export type Requirement = readonly [ControlClass, number];

export interface VmcsField {
  /** Encoding with access type "full" (bit 0 clear). */
  readonly encoding: number;
  readonly name: string;
  /** W16, W64, W32 or WNAT (encoding bits 14:13). */
  readonly width: number;
  /** T_CONTROL, T_EXIT_INFO, T_GUEST or T_HOST (encoding bits 11:10). */
  readonly type: number;
  /** VM-exit information fields are read-only (IA32_VMX_MISC[29] = 0 on this model). */
  readonly readOnly: boolean;
  /** The field exists if any of these is supported; empty: always. */
  readonly requires: readonly Requirement[];
}

export const FIELDS: VmcsField[] = [];

function f(encoding: number, name: string, ...requires: Requirement[]): void {
  const type = (encoding >> 10) & 3;
  if (encoding & 0x9001) throw new Error(`VMCS field ${name}: bad encoding ${encoding.toString(16)}`);
  FIELDS.push({ encoding, name, width: (encoding >> 13) & 3, type, readOnly: type === T_EXIT_INFO, requires });
}

const VPID: Requirement = [PROC2, PROC2_VPID], EPT: Requirement = [PROC2, PROC2_EPT];
const APIC_ACCESS: Requirement = [PROC2, PROC2_VIRTUALIZE_APIC], TPR: Requirement = [PROC, PROC_TPR_SHADOW];
const GUEST_PAT: Requirement[] = [[ENTRY, ENTRY_LOAD_PAT], [EXIT, EXIT_SAVE_PAT]];
const GUEST_EFER: Requirement[] = [[ENTRY, ENTRY_LOAD_EFER], [EXIT, EXIT_SAVE_EFER]];
const SEGS = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDTR', 'TR'];

// ---- 16-bit fields (B.1) ----
f(0x0000, 'virtual-processor identifier', VPID);
SEGS.forEach((s, k) => f(0x0800 + 2 * k, `guest ${s} selector`));
SEGS.filter((s) => s !== 'LDTR').forEach((s, k) => f(0x0c00 + 2 * k, `host ${s} selector`));

// ---- 64-bit fields (B.2) ----
f(0x2000, 'I/O bitmap A address', [PROC, PROC_IO_BITMAPS]);
f(0x2002, 'I/O bitmap B address', [PROC, PROC_IO_BITMAPS]);
f(0x2004, 'MSR bitmaps address', [PROC, PROC_MSR_BITMAPS]);
f(0x2006, 'VM-exit MSR-store address');
f(0x2008, 'VM-exit MSR-load address');
f(0x200a, 'VM-entry MSR-load address');
f(0x200c, 'executive-VMCS pointer');
f(0x2010, 'TSC offset');
f(0x2012, 'virtual-APIC address', TPR);
f(0x2014, 'APIC-access address', APIC_ACCESS);
f(0x201a, 'EPT pointer', EPT);
f(0x2400, 'guest-physical address', EPT);
f(0x2800, 'VMCS link pointer');
f(0x2802, 'guest IA32_DEBUGCTL');
f(0x2804, 'guest IA32_PAT', ...GUEST_PAT);
f(0x2806, 'guest IA32_EFER', ...GUEST_EFER);
f(0x2808, 'guest IA32_PERF_GLOBAL_CTRL', [ENTRY, ENTRY_LOAD_PERF_GLOBAL]);
for (let k = 0; k < 4; k++) f(0x280a + 2 * k, `guest PDPTE${k}`, EPT);
f(0x2c00, 'host IA32_PAT', [EXIT, EXIT_LOAD_PAT]);
f(0x2c02, 'host IA32_EFER', [EXIT, EXIT_LOAD_EFER]);
f(0x2c04, 'host IA32_PERF_GLOBAL_CTRL', [EXIT, EXIT_LOAD_PERF_GLOBAL]);

// ---- 32-bit fields (B.3) ----
f(0x4000, 'pin-based VM-execution controls');
f(0x4002, 'primary processor-based VM-execution controls');
f(0x4004, 'exception bitmap');
f(0x4006, 'page-fault error-code mask');
f(0x4008, 'page-fault error-code match');
f(0x400a, 'CR3-target count');
f(0x400c, 'VM-exit controls');
f(0x400e, 'VM-exit MSR-store count');
f(0x4010, 'VM-exit MSR-load count');
f(0x4012, 'VM-entry controls');
f(0x4014, 'VM-entry MSR-load count');
f(0x4016, 'VM-entry interruption-information field');
f(0x4018, 'VM-entry exception error code');
f(0x401a, 'VM-entry instruction length');
f(0x401c, 'TPR threshold', TPR);
f(0x401e, 'secondary processor-based VM-execution controls', [PROC, PROC_SECONDARY]);
f(0x4400, 'VM-instruction error');
f(0x4402, 'exit reason');
f(0x4404, 'VM-exit interruption information');
f(0x4406, 'VM-exit interruption error code');
f(0x4408, 'IDT-vectoring information field');
f(0x440a, 'IDT-vectoring error code');
f(0x440c, 'VM-exit instruction length');
f(0x440e, 'VM-exit instruction information');
SEGS.forEach((s, k) => f(0x4800 + 2 * k, `guest ${s} limit`));
f(0x4810, 'guest GDTR limit');
f(0x4812, 'guest IDTR limit');
SEGS.forEach((s, k) => f(0x4814 + 2 * k, `guest ${s} access rights`));
f(0x4824, 'guest interruptibility state');
f(0x4826, 'guest activity state');
f(0x4828, 'guest SMBASE');
f(0x482a, 'guest IA32_SYSENTER_CS');
f(0x482e, 'VMX-preemption timer value', [PIN, PIN_PREEMPTION_TIMER]);
f(0x4c00, 'host IA32_SYSENTER_CS');

// ---- Natural-width fields (B.4) ----
f(0x6000, 'CR0 guest/host mask');
f(0x6002, 'CR4 guest/host mask');
f(0x6004, 'CR0 read shadow');
f(0x6006, 'CR4 read shadow');
for (let k = 0; k < 4; k++) f(0x6008 + 2 * k, `CR3-target value ${k}`);
f(0x6400, 'exit qualification');
f(0x6402, 'I/O RCX');
f(0x6404, 'I/O RSI');
f(0x6406, 'I/O RDI');
f(0x6408, 'I/O RIP');
f(0x640a, 'guest-linear address');
f(0x6800, 'guest CR0');
f(0x6802, 'guest CR3');
f(0x6804, 'guest CR4');
SEGS.forEach((s, k) => f(0x6806 + 2 * k, `guest ${s} base`));
f(0x6816, 'guest GDTR base');
f(0x6818, 'guest IDTR base');
f(0x681a, 'guest DR7');
f(0x681c, 'guest RSP');
f(0x681e, 'guest RIP');
f(0x6820, 'guest RFLAGS');
f(0x6822, 'guest pending debug exceptions');
f(0x6824, 'guest IA32_SYSENTER_ESP');
f(0x6826, 'guest IA32_SYSENTER_EIP');
f(0x6c00, 'host CR0');
f(0x6c02, 'host CR3');
f(0x6c04, 'host CR4');
f(0x6c06, 'host FS base');
f(0x6c08, 'host GS base');
f(0x6c0a, 'host TR base');
f(0x6c0c, 'host GDTR base');
f(0x6c0e, 'host IDTR base');
f(0x6c10, 'host IA32_SYSENTER_ESP');
f(0x6c12, 'host IA32_SYSENTER_EIP');
f(0x6c14, 'host RSP');
f(0x6c16, 'host RIP');

// Encodings used by name in the VMX code (the rest are reached through the table).
export const VMCS_VM_INSTRUCTION_ERROR = 0x4400;
export const VMCS_VPID = 0x0000, VMCS_HOST_ES_SELECTOR = 0x0c00, VMCS_HOST_CS_SELECTOR = 0x0c02,
  VMCS_HOST_SS_SELECTOR = 0x0c04, VMCS_HOST_TR_SELECTOR = 0x0c0c;
export const VMCS_IO_BITMAP_A = 0x2000, VMCS_IO_BITMAP_B = 0x2002, VMCS_MSR_BITMAPS = 0x2004,
  VMCS_EXIT_MSR_STORE_ADDR = 0x2006, VMCS_EXIT_MSR_LOAD_ADDR = 0x2008, VMCS_ENTRY_MSR_LOAD_ADDR = 0x200a,
  VMCS_VIRTUAL_APIC_ADDR = 0x2012, VMCS_APIC_ACCESS_ADDR = 0x2014, VMCS_EPTP = 0x201a, VMCS_HOST_PAT = 0x2c00;
export const VMCS_PIN_CONTROLS = 0x4000, VMCS_PROC_CONTROLS = 0x4002, VMCS_EXCEPTION_BITMAP = 0x4004, VMCS_CR3_TARGET_COUNT = 0x400a,
  VMCS_EXIT_CONTROLS = 0x400c, VMCS_EXIT_MSR_STORE_COUNT = 0x400e, VMCS_EXIT_MSR_LOAD_COUNT = 0x4010,
  VMCS_ENTRY_CONTROLS = 0x4012, VMCS_ENTRY_MSR_LOAD_COUNT = 0x4014, VMCS_ENTRY_INTERRUPTION_INFO = 0x4016,
  VMCS_ENTRY_ERROR_CODE = 0x4018, VMCS_ENTRY_INSTRUCTION_LENGTH = 0x401a, VMCS_TPR_THRESHOLD = 0x401c,
  VMCS_PROC2_CONTROLS = 0x401e;
export const VMCS_GUEST_CR0 = 0x6800, VMCS_HOST_CR0 = 0x6c00, VMCS_HOST_CR4 = 0x6c04;
// Guest-state (G_), host-state (H_) and exit-information (X_) encodings by name; G_SEL, G_LIMIT,
// G_AR and G_BASE step by 2 per segment register in ES, CS, SS, DS, FS, GS, LDTR, TR order.
export const G_SEL = 0x0800, G_LIMIT = 0x4800, G_AR = 0x4814, G_BASE = 0x6806; // + 2 * segment (ES..TR order)
export const G_GDTR_LIMIT = 0x4810, G_IDTR_LIMIT = 0x4812, G_GDTR_BASE = 0x6816, G_IDTR_BASE = 0x6818;
export const G_LINK = 0x2800, G_DEBUGCTL = 0x2802, G_PAT = 0x2804;
export const G_INTERRUPTIBILITY = 0x4824, G_ACTIVITY = 0x4826, G_SYSENTER_CS = 0x482a;
export const G_CR0 = 0x6800, G_CR3 = 0x6802, G_CR4 = 0x6804, G_DR7 = 0x681a, G_RSP = 0x681c, G_RIP = 0x681e,
  G_RFLAGS = 0x6820, G_PENDING_DEBUG = 0x6822, G_SYSENTER_ESP = 0x6824, G_SYSENTER_EIP = 0x6826;
export const H_SEL = 0x0c00, H_PAT = 0x2c00, H_SYSENTER_CS = 0x4c00; // H_SEL + 2 * segment, ES..GS then TR at 0x0c0c
export const H_CR0 = 0x6c00, H_CR3 = 0x6c02, H_CR4 = 0x6c04, H_FS_BASE = 0x6c06, H_TR_BASE = 0x6c0a,
  H_GDTR_BASE = 0x6c0c, H_IDTR_BASE = 0x6c0e, H_SYSENTER_ESP = 0x6c10, H_SYSENTER_EIP = 0x6c12,
  H_RSP = 0x6c14, H_RIP = 0x6c16;
export const X_REASON = 0x4402, X_INTERRUPTION_INFO = 0x4404, X_IDT_VECTORING = 0x4408, X_INSTRUCTION_LENGTH = 0x440c,
  X_QUALIFICATION = 0x6400, X_GUEST_PHYSICAL = 0x2400, X_GUEST_LINEAR = 0x640a;
export const X_INSTRUCTION_INFO = 0x440e;
// The controls of instruction-caused VM exits (vmx/intercept*.ts).
export const VMCS_TSC_OFFSET = 0x2010, VMCS_CR0_MASK = 0x6000, VMCS_CR4_MASK = 0x6002, VMCS_CR0_SHADOW = 0x6004,
  VMCS_CR4_SHADOW = 0x6006, VMCS_CR3_TARGET0 = 0x6008;
// The event controls and event information (events.ts).
export const VMCS_PF_MASK = 0x4006, VMCS_PF_MATCH = 0x4008, G_PREEMPTION_TIMER = 0x482e,
  X_INTERRUPTION_ERROR = 0x4406, X_IDT_VECTORING_ERROR = 0x440a;
/** Interruptibility-state bits (24.4.2). */
export const BLOCK_STI = 1, BLOCK_MOV_SS = 2, BLOCK_SMI = 4, BLOCK_NMI = 8;
