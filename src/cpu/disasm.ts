// The disassembler: decodes bytes with the CPU's own decoder and renders each Insn in Intel
// syntax from its table form, so what it prints is exactly what the CPU would execute.

import { SEG_NAMES } from './constants.js';
import { ArrayReader, decode, execTooLong, execUD, TRUNCATED } from './decoder.js';
import { Insn, REP_E, REP_NE } from './insn.js';
import { A_STRING } from './opcodes.js';

export interface DisasmLine {
  /** Address of the instruction: origin + its position in the bytes. */
  offset: number;
  length: number;
  /** The instruction's bytes as lowercase hex. */
  bytes: string;
  text: string;
  /** #UD, longer than 15 bytes, or cut off by the end of the input. */
  invalid: boolean;
}

const REG8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'];
const REG16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const REG32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const SIZE_KEYWORD: Record<number, string> = { 8: 'byte ', 16: 'word ', 32: 'dword ', 64: 'qword ' };

/** Mnemonics whose 32-bit operand-size form has its own name. */
const O32_NAMES: Record<string, string> = {
  cbw: 'cwde', cwd: 'cdq', pusha: 'pushad', popa: 'popad', pushf: 'pushfd', popf: 'popfd',
  iret: 'iretd',
};

const hex = (v: number) => '0x' + (v >>> 0).toString(16);

/** Operand size in bits for an operand's size letter (0 when the size is not a plain width). */
function sizeOf(letter: string, i: Insn): number {
  switch (letter) {
    case 'b': return 8;
    case 'w': return 16;
    case 'd': return 32;
    case 'q': return 64;
    case 'v': case 'z': return i.o32 ? 32 : 16;
    default: return 0;
  }
}

function regName(n: number, bits: number): string {
  return bits === 8 ? REG8[n] : bits === 16 ? REG16[n] : REG32[n];
}

/** A memory operand: [seg:base+index*scale+disp], address registers by address size. */
function memory(i: Insn, keyword: string): string {
  const bits = i.a32 ? 32 : 16;
  let s = '';
  if (i.base >= 0) s = regName(i.base, bits);
  if (i.index >= 0) s += (s ? '+' : '') + regName(i.index, bits) + (i.scale ? `*${1 << i.scale}` : '');
  if (!s) s = hex(i.a32 ? i.disp : i.disp & 0xffff);
  else if (i.disp < 0) s += '-' + hex(-i.disp);
  else if (i.disp > 0) s += '+' + hex(i.disp);
  const seg = i.segOverride ? SEG_NAMES[i.seg] + ':' : '';
  return `${keyword}[${seg}${s}]`;
}

/**
 * The text of operand n of a decoded (valid) instruction at `address`: a register name, a memory
 * operand, an immediate or a branch target, as formatInsn prints it.
 */
export function operandText(i: Insn, n: number, address: number): string {
  const ops = i.form!.operands;
  const op = ops[n];
  const method = op[0];
  const letter = op.slice(1);
  if (op === 'eAX') return i.o32 ? 'eax' : 'ax';
  if (letter.length > 0 && letter === letter.toUpperCase()) return op.toLowerCase(); // AL, DX, ES ...
  const bits = sizeOf(letter, i);
  switch (method) {
    case 'E': case 'M': case 'O': {
      if (i.mod === 3) return regName(i.rm, bits || (i.o32 ? 32 : 16));
      const keyword = letter === 'p' && ops.length === 1 ? 'far ' : SIZE_KEYWORD[bits] ?? '';
      return memory(i, keyword);
    }
    case 'G': case 'Z': return regName(i.reg, bits);
    case 'R': return regName(i.rm, 32);
    case 'C': return `cr${i.reg}`;
    case 'D': return `dr${i.reg}`;
    case 'S': return SEG_NAMES[i.reg];
    case 'I': {
      // The second immediate operand (ENTER Iw,Ib) is in imm2.
      const v = ops.findIndex((o) => o[0] === 'I') < n ? i.imm2 : i.imm;
      // Only sign-extended byte immediates (83, 6A, 6B) are negative; they read best signed.
      return letter === 'b' && v < 0 ? '-' + hex(-v) : hex(v);
    }
    case 'J': {
      const target = address + i.len + i.imm;
      return hex(i.o32 ? target : target & 0xffff);
    }
    case 'A': return `${hex(i.imm2)}:${hex(i.imm)}`;
    default: return op; // the constant 1
  }
}

/** Intel-syntax text of a decoded instruction at `address` (for relative branch targets). */
export function formatInsn(i: Insn, address: number): string {
  const f = i.form;
  if (f === null) return i.exec === execTooLong ? '(bad: longer than 15 bytes)' : '(bad)';
  const lock = i.lock ? 'lock ' : '';
  if (f.attrs & A_STRING) {
    // movsb/movsw/movsd ...: the size comes from the string operand, the operands are implicit.
    const sized = f.operands.find((o) => o[0] === 'X' || o[0] === 'Y')!;
    const suffix = sized[1] === 'b' ? 'b' : i.o32 ? 'd' : 'w';
    const compares = f.name === 'cmps' || f.name === 'scas';
    const rep = i.rep === REP_E ? (compares ? 'repe ' : 'rep ') : i.rep === REP_NE ? 'repne ' : '';
    return `${rep}${f.name}${suffix}`;
  }
  if (f.name === 'esc') {
    // x87: the table keeps one opaque row per ESC opcode; show the opcode and its ModRM operand.
    const rm = i.mod === 3 ? hex((i.mod << 6) | (i.reg << 3) | i.rm) : memory(i, '');
    return `${lock}esc ${hex(f.code)}, ${rm}`;
  }
  let name = (i.o32 && O32_NAMES[f.name]) || f.name;
  if (name === 'jcxz' && i.a32) name = 'jecxz';
  if (name === 'xlat') name = 'xlatb';
  if (f.operands.length === 0) return lock + name;
  const ops = f.operands.map((_, n) => operandText(i, n, address));
  return `${lock}${name} ${ops.join(', ')}`;
}

/** Decodes `bytes` back to back as 16- or 32-bit code loaded at `origin`. */
export function disassemble(bytes: Uint8Array, bits: 16 | 32, origin = 0): DisasmLine[] {
  const reader = new ArrayReader(bytes);
  const insn = new Insn(execUD);
  const lines: DisasmLine[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    reader.start = pos;
    const address = (origin + pos) >>> 0;
    let length: number, text: string, invalid: boolean;
    try {
      decode(reader, bits === 32, insn);
      length = insn.len;
      invalid = insn.form === null;
      text = formatInsn(insn, address);
    } catch (e) {
      if (e !== TRUNCATED) throw e;
      length = bytes.length - pos;
      invalid = true;
      text = '(bad: truncated)';
    }
    const hexBytes = Buffer.from(bytes.subarray(pos, pos + length)).toString('hex');
    lines.push({ offset: address, length, bytes: hexBytes, text, invalid });
    pos += length;
  }
  return lines;
}
