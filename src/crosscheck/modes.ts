// The test environments a cross-check ROM can run its sequences in, and the fixed memory map
// the harness and the generator share.

export type Mode = 'real' | 'pm0' | 'pm3' | 'pm0-paging' | 'pm3-paging' | 'vm86';
export const MODES: readonly Mode[] = ['real', 'pm0', 'pm3', 'pm0-paging', 'pm3-paging', 'vm86'];

// Memory map (linear = physical: paging, where on, is an identity map).
/** The scratch area: every memory operand of a random instruction, and its stack, lie here. */
export const SCRATCH_LINEAR = 0x10000;
export const SCRATCH_SIZE = 0x1000;
/** Initial stack pointer of a sequence (an offset into the scratch segment). */
export const STACK_INIT = 0xc00;
/** Harness context block (offset in the scratch segment, outside the scratch area). */
export const CTX = 0x8000;
/** Dwords of the context block, in the order they are printed. */
export const CTX_FIELDS = ['idx', 'vec', 'err', 'eip', 'eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi',
  'eflags', 'es', 'cs', 'ss', 'ds', 'fs', 'gs', 'cr2', 'digest'] as const;
export type CtxField = (typeof CTX_FIELDS)[number];
export const ctxOff = (f: CtxField): number => CTX + 4 * CTX_FIELDS.indexOf(f);
/** Where the harness keeps the address of the next test. */
export const CTX_NEXT = CTX + 4 * CTX_FIELDS.length;
/** Real-mode harness stack top (offset in the scratch segment). */
export const RM_STACK = 0x9000;
/** Real-mode segment of the scratch area. */
export const RM_SEG = SCRATCH_LINEAR >>> 4;
/** System tables (protected mode): GDT, IDT, TSS, copied from the ROM at boot. */
export const SYS = 0x20000;
export const IDT_OFF = 0x100, TSS_OFF = 0x300, LDT_OFF = 0x380, TSS2_OFF = 0x400, SYS_LEN = 0x480;
export const PD_4K = 0x21000, PT_LOW = 0x22000, RING0_STACK = 0x24000, PD_4M = 0x25000;
/** The vector a sequence ends with (INT 30h), routed to the same logging path as exceptions. */
export const END_VECTOR = 0x30;
/**
 * Pages after the scratch page, mapped by the 4 KiB page table only (paging modes): user
 * read-only, supervisor-only, not present. Memory operands sometimes aim here for #PF.
 */
export const PF_PAGES = [{ page: 0x11, pte: 0x11005 }, { page: 0x12, pte: 0x12003 }, { page: 0x13, pte: 0x13006 }];
/** Marks a boot: a second boot (after a triple-fault reset) prints RESET and stops. */
export const BOOT_MAGIC_AT = 0x500, BOOT_MAGIC = 0x6b636863;

// GDT selectors.
export const SEL_KCODE = 0x08, SEL_KFLAT = 0x10, SEL_KSCR = 0x18, SEL_UCODE = 0x23, SEL_USCR = 0x2b,
  SEL_TSS = 0x30, SEL_CALLGATE = 0x50, SEL_TSS2 = 0x70, SEL_TASKGATE = 0x78;
/** The vector whose IDT entry is a task gate to TSS2. */
export const TASK_VECTOR = 0x2f;
/** Selectors and vector that switch tasks (left out for a peer without task switches). */
export const TASK_SELECTORS = [SEL_TSS, SEL_TSS2, SEL_TASKGATE];
/** The GDT has this many descriptors; the extra ones exist for LAR/LSL/VERR/VERW to inspect. */
export const GDT_ENTRIES = 16;

export interface ModeInfo {
  mode: Mode;
  bits: 16 | 32;
  /** Real-mode addressing and segments (real mode, and virtual-8086 mode). */
  real: boolean;
  /** Virtual-8086 mode: real-mode code at CPL 3 under the protected-mode harness. */
  vm86: boolean;
  ring: 0 | 3;
  paging: boolean;
  cs: number;
  /** Selector values a random segment load may use for ES/FS/GS. */
  segValues: readonly number[];
  /**
   * Selectors a far JMP/CALL may name besides CS: conforming code (allowed from any ring), the
   * call gate (to the harness's gate target, in ring 0), and ones the CPU must refuse (other
   * ring's code, data, busy TSS, not present, beyond the GDT limit, null).
   */
  farValues: readonly number[];
}

export function modeInfo(mode: Mode): ModeInfo {
  if (mode === 'real' || mode === 'vm86') {
    return { mode, bits: 16, real: true, vm86: mode === 'vm86', ring: mode === 'vm86' ? 3 : 0, paging: false, cs: 0xf000, segValues: [RM_SEG], farValues: [] };
  }
  const ring = mode.startsWith('pm3') ? 3 : 0;
  return {
    mode,
    bits: 32,
    real: false,
    vm86: false,
    ring,
    paging: mode.endsWith('paging'),
    cs: ring === 3 ? SEL_UCODE : SEL_KCODE,
    // Null, the scratch selectors, and ones a ring-3 load must refuse (DPL 0, not present).
    segValues: ring === 3 ? [SEL_USCR, SEL_USCR, 0, SEL_KSCR, 0x4b, 0x40, 0x28] : [SEL_KSCR, SEL_KSCR, 0, SEL_USCR, 0x40, 0x48],
    // Also the task switches: JMP/CALL to the available TSS2 or to the task gate (busy TSS: #GP).
    farValues: ring === 3 ? [0x68, 0x6b, SEL_CALLGATE | 3, SEL_KCODE, SEL_USCR, SEL_TSS, SEL_TSS2 | 3, SEL_TASKGATE | 3, 0x4b, 0x8b, 0]
      : [0x68, 0x6b, SEL_CALLGATE, SEL_UCODE, SEL_KCODE | 3, SEL_KFLAT, SEL_TSS, SEL_TSS2, SEL_TASKGATE, 0x48, 0x88, 0],
  };
}
