// The instruction decoder: bytes -> Insn, driven entirely by the opcode table (opcodes.ts).
//
// Lookup tables are built once from FORMS at module load; decode() itself only does array
// lookups and switches and allocates nothing, because it runs for every instruction the
// decoded-block cache misses. Decoding follows SDM Vol. 2 chapter 2 (instruction format) and
// the opcode maps of Appendix A for 16- and 32-bit code.

import { CS, DS, EBP, EBX, EDI, ES, ESI, ESP, EXC_GP, EXC_UD, FS, GS, SS } from './constants.js';
import { selectHandler } from './dispatch.js';
import { REP_E, REP_NE, REP_NONE, type Exec, type Insn } from './insn.js';
import { A_LOCK, A_MEM_ONLY, A_MOD_IGNORED, A_NO_PREFIX, A_REG_ONLY, FORMS } from './opcodes.js';

/** Source of instruction bytes; k is the offset from the instruction's first byte. */
export interface CodeReader {
  /** May throw (a fetch fault); the decoder lets it propagate. */
  byte(k: number): number;
}

/** The architectural maximum instruction length (SDM Vol. 2 2.1). */
export const MAX_INSN_LEN = 15;

/** Raised for every encoding the table does not declare (and for LOCK/mod violations). */
export const execUD: Exec = (cpu) => cpu.faultNoCode(EXC_UD);
/** Raised for an instruction longer than 15 bytes: the fetch-side #GP(0). */
export const execTooLong: Exec = (cpu) => cpu.fault(EXC_GP, 0);

// ---- Per-form operand plans -------------------------------------------------------------

/** Immediate kinds, in the order the bytes follow the ModRM/SIB/displacement. */
const IMM_NONE = 0, IMM_B = 1, IMM_B_SX = 2, IMM_W = 3, IMM_Z = 4, IMM_JB = 5, IMM_JZ = 6,
  IMM_AP = 7;
/** Operand-plan flags. */
const P_MODRM = 1, P_MOFFS = 2, P_ZREG = 4, P_SREG = 8, P_CREG = 16, P_SREG_LOAD = 32;

const nForms = FORMS.length;
const planFlags = new Uint8Array(nForms);
const planImm1 = new Uint8Array(nForms);
const planImm2 = new Uint8Array(nForms);
const formAttrs = new Uint16Array(nForms);
/**
 * Handlers by form and shape (index n * 4 + (memory operand ? 2 : 0) + (o32 ? 1 : 0)),
 * resolved on first use, so this module does not depend on dispatch.ts's load order.
 */
const formExec: (Exec | undefined)[] = new Array(nForms * 4);

/** Opcodes whose Ib operand is sign-extended to the operand size (SDM Appendix A, "Ib"). */
const SIGN_EXTENDED_IB = new Set([0x83, 0x6a, 0x6b]);

/** An addressing-method operand ("Ev", "M", "Jz"): an uppercase letter and a lowercase size. */
const ADDRESSING = /^([A-Z])([a-z]*)$/;

function immKind(method: string, size: string, code: number): number {
  if (method === 'I') {
    if (size === 'b') return SIGN_EXTENDED_IB.has(code) ? IMM_B_SX : IMM_B;
    if (size === 'w') return IMM_W;
    if (size === 'z' || size === 'v') return IMM_Z;
  } else if (method === 'J') {
    return size === 'b' ? IMM_JB : IMM_JZ;
  } else if (method === 'A') {
    return IMM_AP;
  }
  throw new Error(`decoder: unknown immediate operand ${method}${size}`);
}

FORMS.forEach((f, n) => {
  let flags = 0;
  const imms: number[] = [];
  for (const operand of f.operands) {
    const m = ADDRESSING.exec(operand);
    if (!m) continue; // a fixed register (AL, eAX, DX, CL, ES, ...) or the constant 1
    const [, method, size] = m;
    switch (method) {
      case 'E': case 'G': case 'M': case 'R': case 'D': flags |= P_MODRM; break;
      case 'S': flags |= P_MODRM | P_SREG | (operand === f.operands[0] ? P_SREG_LOAD : 0); break;
      case 'C': flags |= P_MODRM | P_CREG; break;
      case 'Z': flags |= P_ZREG; break;
      case 'O': flags |= P_MOFFS; break;
      case 'X': case 'Y': break; // string operands: implicit DS:eSI / ES:eDI
      default: imms.push(immKind(method, size, f.code));
    }
  }
  if (f.reg >= 0 || f.modrm >= 0) flags |= P_MODRM;
  if (imms.length > 2) throw new Error(`decoder: ${f.key} has more than two immediates`);
  planFlags[n] = flags;
  planImm1[n] = imms[0] ?? IMM_NONE;
  planImm2[n] = imms[1] ?? IMM_NONE;
  formAttrs[n] = f.attrs;
});

// ---- Opcode lookup tables -----------------------------------------------------------------

/** Mandatory-prefix classes: which of 66/F3/F2 selected a form (none = 0). */
const PC_NONE = 0, PC_66 = 1, PC_F3 = 2, PC_F2 = 3;
const MAP_SIZE = 0x300; // one-byte map, 0F map, 0F 38 map
/** Form index by (code, prefix class), for forms without a ModRM.reg group; -1 = none. */
const direct = new Int16Array(MAP_SIZE * 4).fill(-1);
/** Form index by ((code, ModRM.reg), prefix class); -1 = none. */
const group = new Int16Array(MAP_SIZE * 8 * 4).fill(-1);
/** Form index by full ModRM byte for forms fixed to one register-form ModRM (0F 01 C1 ...). */
const fixed: (Int16Array | null)[] = new Array(MAP_SIZE).fill(null);
/** The opcode takes a ModRM byte (from any of its forms): it defines the length of holes too. */
const hasModrm = new Uint8Array(MAP_SIZE);
/** Slots (direct by code, group by code * 8 + reg) where some form needs a mandatory prefix. */
const prefixedDirect = new Uint8Array(MAP_SIZE);
const prefixedGroup = new Uint8Array(MAP_SIZE * 8);

function prefixClass(prefix: number): number {
  return prefix === 0x66 ? PC_66 : prefix === 0xf3 ? PC_F3 : prefix === 0xf2 ? PC_F2 : PC_NONE;
}

FORMS.forEach((f, n) => {
  const pc = prefixClass(f.prefix);
  let slot: Int16Array, at: number;
  if (f.modrm >= 0) {
    slot = fixed[f.code] ??= new Int16Array(256).fill(-1);
    at = f.modrm;
  } else if (f.reg >= 0) {
    slot = group;
    at = (f.code * 8 + f.reg) * 4 + pc;
  } else {
    slot = direct;
    at = f.code * 4 + pc;
  }
  if (slot[at] !== -1) throw new Error(`decoder: ${f.key} collides with ${FORMS[slot[at]].key}`);
  slot[at] = n;
  if (planFlags[n] & P_MODRM) hasModrm[f.code] = 1;
  if (pc !== PC_NONE) {
    if (slot === group) prefixedGroup[f.code * 8 + f.reg] = 1;
    else prefixedDirect[f.code] = 1;
  }
});

/**
 * Picks the form of a slot for the prefixes present. Where the slot has mandatory-prefix forms
 * the prefix selects the instruction as in SDM Vol. 2 2.1.2: the last of F2/F3 if any, else 66,
 * else none; in the 0F maps a selection with no form is #UD (F2 0F C7 /6, 0F 38 80 without 66),
 * while in the one-byte map (F3 90 = PAUSE) the other prefixes leave the plain form (NOP).
 * `at` indexes prefix class 0 of the slot.
 */
function pick(table: Int16Array, at: number, prefixed: number, code: number, rep: number, has66: boolean): number {
  if (!prefixed) return table[at];
  const n = table[at + (rep === REP_E ? PC_F3 : rep === REP_NE ? PC_F2 : has66 ? PC_66 : PC_NONE)];
  return n >= 0 || code >= 0x100 ? n : table[at];
}

/** The handler for form n and the decoded instruction's shape (dispatch.ts selectHandler). */
function execOf(n: number, i: Insn): Exec {
  const at = n * 4 + (i.mod === 3 ? 0 : 2) + (i.o32 ? 1 : 0);
  let e = formExec[at];
  if (e === undefined) {
    const key = FORMS[n].key;
    e = selectHandler(key, i) ?? (() => {
      throw new Error(`unimplemented: ${key}`);
    });
    formExec[at] = e;
  }
  return e;
}

// ---- Byte fetch with the 15-byte limit ----------------------------------------------------

let reader: CodeReader;
/** Set when decoding needed a byte at offset 15 or beyond: the instruction is too long. */
let overLimit = false;

/** The processor never fetches past byte 15 of an instruction; past it the answer is #GP. */
function fetch(k: number): number {
  if (k >= MAX_INSN_LEN) {
    overLimit = true;
    return 0;
  }
  return reader.byte(k);
}

function fetch16(k: number): number {
  return fetch(k) | (fetch(k + 1) << 8);
}

function fetch32(k: number): number {
  return fetch(k) | (fetch(k + 1) << 8) | (fetch(k + 2) << 16) | (fetch(k + 3) << 24);
}

/** 16-bit addressing: base and index register of each ModRM.rm (SDM Vol. 2 Table 2-1). */
const RM16_BASE = new Int8Array([EBX, EBX, EBP, EBP, ESI, EDI, EBP, EBX]);
const RM16_INDEX = new Int8Array([ESI, EDI, ESI, EDI, -1, -1, -1, -1]);

/** Reads an immediate of `kind` at offset k into out.imm or out.imm2; returns the new offset. */
function readImm(kind: number, k: number, o32: boolean, out: Insn, second: boolean): number {
  let v: number;
  switch (kind) {
    case IMM_B: v = fetch(k); k += 1; break;
    case IMM_B_SX: case IMM_JB: v = (fetch(k) << 24) >> 24; k += 1; break;
    case IMM_W: v = fetch16(k); k += 2; break;
    case IMM_Z:
      if (o32) { v = fetch32(k); k += 4; } else { v = fetch16(k); k += 2; }
      break;
    case IMM_JZ:
      if (o32) { v = fetch32(k); k += 4; } else { v = (fetch16(k) << 16) >> 16; k += 2; }
      break;
    case IMM_AP:
      if (o32) { out.imm = fetch32(k); k += 4; } else { out.imm = fetch16(k); k += 2; }
      out.imm2 = fetch16(k);
      return k + 2;
    default:
      return k;
  }
  if (second) out.imm2 = v;
  else out.imm = v;
  return k;
}

/**
 * Decodes the instruction whose first byte is code.byte(0) in code of default size d32 (CS.D),
 * filling every field of `out`. Never throws for any byte sequence; only the reader may.
 */
export function decode(code: CodeReader, d32: boolean, out: Insn): void {
  reader = code;
  overLimit = false;

  // Prefixes, any order, any number (bounded by the 15-byte limit).
  let k = 0;
  let has66 = false, has67 = false, lock = false;
  let rep = REP_NONE, segOverride = -1;
  let b: number;
  prefixes: for (;; k++) {
    b = fetch(k);
    switch (b) {
      case 0x66: has66 = true; break;
      case 0x67: has67 = true; break;
      case 0xf0: lock = true; break;
      case 0xf2: rep = REP_NE; break; // of F2/F3 the last one counts
      case 0xf3: rep = REP_E; break;
      case 0x26: segOverride = ES; break; // of the segment overrides the last one counts
      case 0x2e: segOverride = CS; break;
      case 0x36: segOverride = SS; break;
      case 0x3e: segOverride = DS; break;
      case 0x64: segOverride = FS; break;
      case 0x65: segOverride = GS; break;
      default: break prefixes;
    }
  }
  const o32 = d32 !== has66;
  const a32 = d32 !== has67;

  // Opcode: one byte, 0F xx, or 0F 38 xx.
  let op = b;
  k++;
  if (b === 0x0f) {
    op = 0x100 | fetch(k++);
    if (op === 0x138) op = 0x200 | fetch(k++);
  }

  out.o32 = o32;
  out.a32 = a32;
  out.segOverride = segOverride >= 0;
  out.rep = rep;
  out.lock = lock;
  out.mod = 3;
  out.reg = 0;
  out.rm = 0;
  out.base = -1;
  out.index = -1;
  out.scale = 0;
  out.disp = 0;
  out.imm = 0;
  out.imm2 = 0;

  // Form lookup; undeclared opcodes (including the 0F 3A map) have no slot at all.
  let n = -1;
  let modrm = -1;
  if (op < MAP_SIZE) {
    if (hasModrm[op]) {
      modrm = fetch(k++);
      out.mod = modrm >> 6;
      out.reg = (modrm >> 3) & 7;
      out.rm = modrm & 7;
      const fx = fixed[op];
      if (fx !== null && out.mod === 3) n = fx[modrm];
      const g = op * 8 + out.reg;
      if (n < 0) n = pick(group, g * 4, prefixedGroup[g], op, rep, has66);
      if (n < 0) n = pick(direct, op * 4, prefixedDirect[op], op, rep, has66);
    } else {
      n = pick(direct, op * 4, prefixedDirect[op], op, rep, has66);
    }
  }

  const flags = n >= 0 ? planFlags[n] : 0;
  const attrs = n >= 0 ? formAttrs[n] : 0;
  let seg = DS;

  // ModRM memory operand: displacement (and SIB), unless the form ignores mod (MOV CRn/DRn).
  if (modrm >= 0 && out.mod !== 3) {
    if (attrs & A_MOD_IGNORED) {
      out.mod = 3;
    } else if (a32) {
      k = decodeMem32(k, out);
      if (out.base === EBP || out.base === ESP) seg = SS;
    } else {
      k = decodeMem16(k, out);
      if (out.base === EBP) seg = SS;
    }
  }
  if (flags & P_MOFFS) {
    out.mod = 0;
    if (a32) { out.disp = fetch32(k); k += 4; } else { out.disp = fetch16(k); k += 2; }
  }
  if (flags & P_ZREG) out.reg = out.rm = op & 7;
  if (n >= 0) {
    k = readImm(planImm1[n], k, o32, out, false);
    k = readImm(planImm2[n], k, o32, out, true);
  }

  out.seg = segOverride >= 0 ? segOverride : seg;
  if (overLimit) {
    out.form = null;
    out.len = MAX_INSN_LEN;
    out.exec = execTooLong;
    return;
  }
  out.len = k;
  const isReg = out.mod === 3;
  if (
    n < 0 ||
    (lock && (!(attrs & A_LOCK) || isReg)) ||
    (attrs & A_MEM_ONLY && isReg) ||
    (attrs & A_REG_ONLY && !isReg) ||
    (attrs & A_NO_PREFIX && (has66 || rep !== REP_NONE)) ||
    (flags & P_SREG && out.reg > 5) || // only six segment registers exist
    (flags & P_SREG_LOAD && out.reg === CS) || // MOV CS, r/m is #UD (SDM MOV)
    (flags & P_CREG && (out.reg === 1 || out.reg > 4)) // CR0, CR2-CR4 exist on this model
  ) {
    out.form = null;
    out.exec = execUD;
    return;
  }
  out.form = FORMS[n];
  out.exec = execOf(n, out);
}

/** 32-bit ModRM memory operand (SDM Vol. 2 Tables 2-2, 2-3); k is just past the ModRM. */
function decodeMem32(k: number, out: Insn): number {
  const mod = out.mod;
  let base = out.rm;
  if (base === 4) {
    const sib = fetch(k++);
    out.scale = sib >> 6;
    const index = (sib >> 3) & 7;
    out.index = index === 4 ? -1 : index; // index 100b means none
    base = sib & 7;
    if (base === 5 && mod === 0) {
      out.disp = fetch32(k);
      return k + 4; // [index*s + disp32], no base
    }
  } else if (base === 5 && mod === 0) {
    out.disp = fetch32(k);
    return k + 4; // [disp32]
  }
  out.base = base;
  if (mod === 1) {
    out.disp = (fetch(k) << 24) >> 24;
    return k + 1;
  }
  if (mod === 2) {
    out.disp = fetch32(k);
    return k + 4;
  }
  return k;
}

/** 16-bit ModRM memory operand (SDM Vol. 2 Table 2-1); k is just past the ModRM. */
function decodeMem16(k: number, out: Insn): number {
  const mod = out.mod, rm = out.rm;
  if (mod === 0 && rm === 6) {
    out.disp = fetch16(k);
    return k + 2; // [disp16]
  }
  out.base = RM16_BASE[rm];
  out.index = RM16_INDEX[rm];
  if (mod === 1) {
    out.disp = (fetch(k) << 24) >> 24;
    return k + 1;
  }
  if (mod === 2) {
    out.disp = (fetch16(k) << 16) >> 16;
    return k + 2;
  }
  return k;
}

/** Reads instruction bytes from a byte array (the disassembler, tools and tests use it). */
export class ArrayReader implements CodeReader {
  bytes: Uint8Array;
  start = 0;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  byte(k: number): number {
    const at = this.start + k;
    if (at >= this.bytes.length) throw TRUNCATED;
    return this.bytes[at];
  }
}

/** What ArrayReader throws when the instruction runs past the end of its array. */
export const TRUNCATED: Error = new Error('instruction truncated');

