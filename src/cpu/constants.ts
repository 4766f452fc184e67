// Architectural constants shared by every part of the CPU: register and segment indices,
// EFLAGS/CR bits and exception vectors, named once so the rest of the code reads like the SDM.

// General registers, in ModRM encoding order.
export const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;

// Segment registers in ModRM sreg encoding order; LDTR and TR share the descriptor-cache arrays.
export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7;
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'ldtr', 'tr'] as const;

// EFLAGS bits.
export const CF = 1 << 0, PF = 1 << 2, AF = 1 << 4, ZF = 1 << 6, SF = 1 << 7, TF = 1 << 8,
  IF = 1 << 9, DF = 1 << 10, OF = 1 << 11, IOPL = 3 << 12, NT = 1 << 14, RF = 1 << 16,
  VM = 1 << 17, AC = 1 << 18, VIF = 1 << 19, VIP = 1 << 20, ID = 1 << 21;
/** The six arithmetic status flags, the ones lazy evaluation covers. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;
/** Bit 1 always reads as 1. */
export const FLAGS_FIXED1 = 1 << 1;
/** Flags software can ever change on this model (no VIF/VIP writes outside V86/PVI rules). */
export const FLAGS_IMPLEMENTED = ARITH_FLAGS | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

// CR0 bits.
export const CR0_PE = 1 << 0, CR0_MP = 1 << 1, CR0_EM = 1 << 2, CR0_TS = 1 << 3, CR0_ET = 1 << 4,
  CR0_NE = 1 << 5, CR0_WP = 1 << 16, CR0_AM = 1 << 18, CR0_NW = 1 << 29, CR0_CD = 1 << 30,
  CR0_PG = 1 << 31;
/** CR0 bits that exist; writes to the others are ignored (SDM 2.5: reserved CR0 bits). */
export const CR0_DEFINED = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_NW |
  CR0_CD | CR0_PG;
// CR4 bits.
export const CR4_VME = 1 << 0, CR4_PVI = 1 << 1, CR4_TSD = 1 << 2, CR4_DE = 1 << 3,
  CR4_PSE = 1 << 4, CR4_PAE = 1 << 5, CR4_MCE = 1 << 6, CR4_PGE = 1 << 7, CR4_PCE = 1 << 8,
  CR4_OSFXSR = 1 << 9, CR4_OSXMMEXCPT = 1 << 10, CR4_VMXE = 1 << 13;

// Exception vectors.
export const EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6,
  EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13, EXC_PF = 14,
  EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19;

// Segment access rights, kept in the VMCS access-rights layout (SDM Vol. 3C 24.4.1) so that the
// descriptor caches can be saved to and loaded from a VMCS without reshaping.
export const AR_TYPE = 0xf, AR_ACCESSED = 1, AR_S = 1 << 4, AR_DPL_SHIFT = 5, AR_DPL = 3 << 5,
  AR_P = 1 << 7, AR_AVL = 1 << 12, AR_DB = 1 << 14, AR_G = 1 << 15, AR_UNUSABLE = 1 << 16;
// Type-field bits for code/data segments (S = 1).
export const SEGT_CODE = 8, SEGT_CONFORMING = 4, SEGT_READABLE = 2, SEGT_EXPANDDOWN = 4,
  SEGT_WRITABLE = 2;
// System descriptor types (S = 0).
export const SYS_TSS16_AVAIL = 1, SYS_LDT = 2, SYS_TSS16_BUSY = 3, SYS_CALLGATE16 = 4,
  SYS_TASKGATE = 5, SYS_INTGATE16 = 6, SYS_TRAPGATE16 = 7, SYS_TSS32_AVAIL = 9,
  SYS_TSS32_BUSY = 11, SYS_CALLGATE32 = 12, SYS_INTGATE32 = 14, SYS_TRAPGATE32 = 15;

// Memory access kinds for paging and breakpoints.
export const ACC_READ = 0, ACC_WRITE = 1, ACC_EXEC = 2;
