// The opcode table: every IA-32 instruction form this CPU implements, declared once.
//
// One row per form: where it sits in the opcode map, its mnemonic and operands (SDM Vol. 2
// Appendix A notation), its attributes and the flags the SDM leaves undefined. The decoder,
// the dispatcher (handler key = `${name}_${operands}`), the disassembler and the generated
// tests all read this table; nothing else lists opcodes.
//
// Operand notation: E = ModRM r/m, G = ModRM reg, M = memory-only r/m, R = register-only r/m,
// S = segment register in reg, C/D = control/debug register in reg, I = immediate,
// J = relative offset, O = moffs, A = far pointer, X = DS:eSI, Y = ES:eDI; sizes b = 8, w = 16,
// d = 32, v = 16/32 by operand size, z = 16/32 immediate by operand size, p = far pointer
// (16:16 or 16:32), a = BOUND pair, s = 6-byte pseudo-descriptor, q = 64-bit memory.
// Fixed registers are written by name (AL, eAX, DX, CL, ...); "1" is the constant 1.

import { AF, CF, OF, PF, SF, ZF } from './constants.js';

/** LOCK is allowed (with a memory destination); elsewhere LOCK raises #UD. */
export const A_LOCK = 1;
/** #UD in real mode and virtual-8086 mode. */
export const A_PM_ONLY = 2;
/** Ends a decoded block: control transfer, or a change of mode or decoding state. */
export const A_END = 4;
/** A string instruction: REP/REPE/REPNE apply. */
export const A_STRING = 8;
/** Only the register form (mod = 3) exists; the memory form is #UD. */
export const A_REG_ONLY = 16;
/** Only the memory form exists; the register form is #UD. */
export const A_MEM_ONLY = 32;
/** The mod field is ignored and treated as 3: the operand is always the register rm (MOV to/from CRn/DRn). */
export const A_MOD_IGNORED = 64;
/** "NP" in the SDM: a 66, F2 or F3 prefix makes this form #UD (the VMX and MONITOR/MWAIT forms). */
export const A_NO_PREFIX = 128;

export interface OpForm {
  /** Map and opcode byte: 0x000-0x0ff one-byte map, 0x100-0x1ff the 0F map, 0x200-0x2ff 0F 38. */
  readonly code: number;
  /** ModRM.reg for group members, or -1. */
  readonly reg: number;
  /** ModRM byte for forms fixed to one register-form ModRM (0F 01 C1 ...), or -1. */
  readonly modrm: number;
  /** Mandatory prefix (0x66, 0xF3) that selects this form, or 0. */
  readonly prefix: number;
  readonly name: string;
  readonly operands: readonly string[];
  readonly attrs: number;
  /** EFLAGS bits whose value the SDM leaves undefined after this form. */
  readonly undefinedFlags: number;
  /** Handler key: name and operands, e.g. "add_EbGb". */
  readonly key: string;
}

const LOGIC_UNDEF = AF;
const MUL_UNDEF = SF | ZF | AF | PF;
const DIV_UNDEF = CF | PF | AF | ZF | SF | OF;
const SHIFT_UNDEF = AF | OF; // AF whenever count != 0; OF when count > 1
const ROT_UNDEF = OF; // OF when count > 1
const BT_UNDEF = OF | SF | AF | PF;
const BSF_UNDEF = CF | OF | SF | AF | PF;
const ASCII_UNDEF = OF | SF | ZF | PF; // AAA, AAS
const AAM_UNDEF = OF | AF | CF; // AAM, AAD
const DAA_UNDEF = OF;

export const FORMS: OpForm[] = [];

/**
 * Declares one form. `where` is the opcode in hex, optionally "0f"/"0f38"-prefixed map bytes,
 * "/r" for a group member, "=mm" for a fixed ModRM byte and "@66"/"@f3" for a mandatory prefix:
 * "80/0", "0f01=c1", "0fc7/6@66".
 */
function op(where: string, spec: string, attrs = 0, undefinedFlags = 0): void {
  const m = /^(0f38|0f)?([0-9a-f]{2})(?:\/([0-7]))?(?:=([0-9a-f]{2}))?(?:@(66|f3|f2))?$/.exec(where);
  if (!m) throw new Error(`opcode table: bad position ${where}`);
  const map = m[1] === '0f38' ? 0x200 : m[1] === '0f' ? 0x100 : 0;
  const [name, ops = ''] = spec.split(' ');
  const operands = ops ? ops.split(',') : [];
  FORMS.push({
    code: map | parseInt(m[2], 16),
    reg: m[3] !== undefined ? Number(m[3]) : -1,
    modrm: m[4] !== undefined ? parseInt(m[4], 16) : -1,
    prefix: m[5] !== undefined ? parseInt(m[5], 16) : 0,
    name,
    operands,
    attrs,
    undefinedFlags,
    key: operands.length ? `${name}_${operands.join('')}` : name,
  });
}

const hex = (n: number) => n.toString(16).padStart(2, '0');
const CC = ['o', 'no', 'b', 'nb', 'z', 'nz', 'be', 'nbe', 's', 'ns', 'p', 'np', 'l', 'nl', 'le', 'nle'];

// ---- One-byte map ----
// The eight classic ALU operations: 00-3F, six encodings each.
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
ALU.forEach((name, n) => {
  const lock = name === 'cmp' ? 0 : A_LOCK;
  const undef = name === 'and' || name === 'or' || name === 'xor' ? LOGIC_UNDEF : 0;
  const b = n * 8;
  op(hex(b), `${name} Eb,Gb`, lock, undef);
  op(hex(b + 1), `${name} Ev,Gv`, lock, undef);
  op(hex(b + 2), `${name} Gb,Eb`, 0, undef);
  op(hex(b + 3), `${name} Gv,Ev`, 0, undef);
  op(hex(b + 4), `${name} AL,Ib`, 0, undef);
  op(hex(b + 5), `${name} eAX,Iz`, 0, undef);
  op(`80/${n}`, `${name} Eb,Ib`, lock, undef);
  op(`81/${n}`, `${name} Ev,Iz`, lock, undef);
  op(`82/${n}`, `${name} Eb,Ib`, lock, undef); // 82 aliases 80 outside 64-bit mode
  op(`83/${n}`, `${name} Ev,Ib`, lock, undef);
});
op('06', 'push ES'); op('07', 'pop ES'); op('0e', 'push CS'); op('16', 'push SS');
op('17', 'pop SS', A_END); // interrupt shadow
op('1e', 'push DS'); op('1f', 'pop DS');
op('27', 'daa', 0, DAA_UNDEF); op('2f', 'das', 0, DAA_UNDEF);
op('37', 'aaa', 0, ASCII_UNDEF); op('3f', 'aas', 0, ASCII_UNDEF);
for (let r = 0; r < 8; r++) {
  op(hex(0x40 + r), 'inc Zv'); op(hex(0x48 + r), 'dec Zv');
  op(hex(0x50 + r), 'push Zv'); op(hex(0x58 + r), 'pop Zv');
  op(hex(0xb0 + r), 'mov Zb,Ib'); op(hex(0xb8 + r), 'mov Zv,Iv');
  if (r) op(hex(0x90 + r), 'xchg Zv,eAX');
}
op('60', 'pusha'); op('61', 'popa');
op('62', 'bound Gv,Ma', A_MEM_ONLY);
op('63', 'arpl Ew,Gw', A_PM_ONLY);
op('68', 'push Iz'); op('69', 'imul Gv,Ev,Iz', 0, MUL_UNDEF);
op('6a', 'push Ib'); op('6b', 'imul Gv,Ev,Ib', 0, MUL_UNDEF);
op('6c', 'ins Yb,DX', A_STRING); op('6d', 'ins Yv,DX', A_STRING);
op('6e', 'outs DX,Xb', A_STRING); op('6f', 'outs DX,Xv', A_STRING);
CC.forEach((cc, n) => op(hex(0x70 + n), `j${cc} Jb`, A_END));
op('84', 'test Eb,Gb', 0, LOGIC_UNDEF); op('85', 'test Ev,Gv', 0, LOGIC_UNDEF);
op('86', 'xchg Eb,Gb', A_LOCK); op('87', 'xchg Ev,Gv', A_LOCK);
op('88', 'mov Eb,Gb'); op('89', 'mov Ev,Gv'); op('8a', 'mov Gb,Eb'); op('8b', 'mov Gv,Ev');
op('8c', 'mov Ev,Sw'); op('8d', 'lea Gv,M', A_MEM_ONLY);
op('8e', 'mov Sw,Ew', A_END); // loading CS is #UD; SS sets the interrupt shadow
op('8f/0', 'pop Ev');
op('90', 'nop'); op('90@f3', 'pause');
op('98', 'cbw'); op('99', 'cwd');
op('9a', 'call Ap', A_END); op('9b', 'wait');
op('9c', 'pushf'); op('9d', 'popf', A_END); // may set TF/IF/AC/VM-relevant bits
op('9e', 'sahf'); op('9f', 'lahf');
op('a0', 'mov AL,Ob'); op('a1', 'mov eAX,Ov'); op('a2', 'mov Ob,AL'); op('a3', 'mov Ov,eAX');
op('a4', 'movs Yb,Xb', A_STRING); op('a5', 'movs Yv,Xv', A_STRING);
op('a6', 'cmps Xb,Yb', A_STRING); op('a7', 'cmps Xv,Yv', A_STRING);
op('a8', 'test AL,Ib', 0, LOGIC_UNDEF); op('a9', 'test eAX,Iz', 0, LOGIC_UNDEF);
op('aa', 'stos Yb,AL', A_STRING); op('ab', 'stos Yv,eAX', A_STRING);
op('ac', 'lods AL,Xb', A_STRING); op('ad', 'lods eAX,Xv', A_STRING);
op('ae', 'scas AL,Yb', A_STRING); op('af', 'scas eAX,Yv', A_STRING);
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
SHIFTS.forEach((name, n) => {
  const undef = n < 4 ? ROT_UNDEF : SHIFT_UNDEF;
  op(`c0/${n}`, `${name} Eb,Ib`, 0, undef); op(`c1/${n}`, `${name} Ev,Ib`, 0, undef);
  op(`d0/${n}`, `${name} Eb,1`, 0, undef); op(`d1/${n}`, `${name} Ev,1`, 0, undef);
  op(`d2/${n}`, `${name} Eb,CL`, 0, undef); op(`d3/${n}`, `${name} Ev,CL`, 0, undef);
});
op('c2', 'ret Iw', A_END); op('c3', 'ret', A_END);
op('c4', 'les Gv,Mp', A_MEM_ONLY); op('c5', 'lds Gv,Mp', A_MEM_ONLY);
op('c6/0', 'mov Eb,Ib'); op('c7/0', 'mov Ev,Iz');
op('c8', 'enter Iw,Ib'); op('c9', 'leave');
op('ca', 'retf Iw', A_END); op('cb', 'retf', A_END);
op('cc', 'int3', A_END); op('cd', 'int Ib', A_END); op('ce', 'into', A_END);
op('cf', 'iret', A_END);
op('d4', 'aam Ib', 0, AAM_UNDEF); op('d5', 'aad Ib', 0, AAM_UNDEF);
op('d6', 'salc'); op('d7', 'xlat');
for (let n = 0; n < 8; n++) op(hex(0xd8 + n), 'esc Ev'); // x87: #NM/#UD, see docs/CPU-MODEL.md
op('e0', 'loopne Jb', A_END); op('e1', 'loope Jb', A_END); op('e2', 'loop Jb', A_END);
op('e3', 'jcxz Jb', A_END);
op('e4', 'in AL,Ib'); op('e5', 'in eAX,Ib'); op('e6', 'out Ib,AL'); op('e7', 'out Ib,eAX');
op('e8', 'call Jz', A_END); op('e9', 'jmp Jz', A_END); op('ea', 'jmp Ap', A_END);
op('eb', 'jmp Jb', A_END);
op('ec', 'in AL,DX'); op('ed', 'in eAX,DX'); op('ee', 'out DX,AL'); op('ef', 'out DX,eAX');
op('f1', 'int1', A_END);
op('f4', 'hlt', A_END); op('f5', 'cmc');
op('f6/0', 'test Eb,Ib', 0, LOGIC_UNDEF); op('f6/1', 'test Eb,Ib', 0, LOGIC_UNDEF);
op('f6/2', 'not Eb', A_LOCK); op('f6/3', 'neg Eb', A_LOCK);
op('f6/4', 'mul Eb', 0, MUL_UNDEF); op('f6/5', 'imul Eb', 0, MUL_UNDEF);
op('f6/6', 'div Eb', 0, DIV_UNDEF); op('f6/7', 'idiv Eb', 0, DIV_UNDEF);
op('f7/0', 'test Ev,Iz', 0, LOGIC_UNDEF); op('f7/1', 'test Ev,Iz', 0, LOGIC_UNDEF);
op('f7/2', 'not Ev', A_LOCK); op('f7/3', 'neg Ev', A_LOCK);
op('f7/4', 'mul Ev', 0, MUL_UNDEF); op('f7/5', 'imul Ev', 0, MUL_UNDEF);
op('f7/6', 'div Ev', 0, DIV_UNDEF); op('f7/7', 'idiv Ev', 0, DIV_UNDEF);
op('f8', 'clc'); op('f9', 'stc');
op('fa', 'cli'); op('fb', 'sti', A_END); // interrupt shadow
op('fc', 'cld'); op('fd', 'std');
op('fe/0', 'inc Eb', A_LOCK); op('fe/1', 'dec Eb', A_LOCK);
op('ff/0', 'inc Ev', A_LOCK); op('ff/1', 'dec Ev', A_LOCK);
op('ff/2', 'call Ev', A_END); op('ff/3', 'call Mp', A_END | A_MEM_ONLY);
op('ff/4', 'jmp Ev', A_END); op('ff/5', 'jmp Mp', A_END | A_MEM_ONLY);
op('ff/6', 'push Ev');

// ---- Two-byte map (0F xx) ----
op('0f00/0', 'sldt Ev', A_PM_ONLY); op('0f00/1', 'str Ev', A_PM_ONLY);
op('0f00/2', 'lldt Ew', A_PM_ONLY); op('0f00/3', 'ltr Ew', A_PM_ONLY);
op('0f00/4', 'verr Ew', A_PM_ONLY); op('0f00/5', 'verw Ew', A_PM_ONLY);
op('0f01/0', 'sgdt Ms', A_MEM_ONLY); op('0f01/1', 'sidt Ms', A_MEM_ONLY);
op('0f01/2', 'lgdt Ms', A_MEM_ONLY); op('0f01/3', 'lidt Ms', A_MEM_ONLY);
op('0f01/4', 'smsw Ev'); op('0f01/6', 'lmsw Ew', A_END);
op('0f01/7', 'invlpg M', A_MEM_ONLY | A_END);
op('0f01=c1', 'vmcall', A_END | A_NO_PREFIX); op('0f01=c2', 'vmlaunch', A_END | A_NO_PREFIX);
op('0f01=c3', 'vmresume', A_END | A_NO_PREFIX); op('0f01=c4', 'vmxoff', A_END | A_NO_PREFIX);
op('0f01=c8', 'monitor', A_NO_PREFIX); op('0f01=c9', 'mwait', A_END | A_NO_PREFIX);
op('0f02', 'lar Gv,Ew', A_PM_ONLY); op('0f03', 'lsl Gv,Ew', A_PM_ONLY);
op('0f06', 'clts', A_END);
op('0f08', 'invd'); op('0f09', 'wbinvd');
op('0f0b', 'ud2');
for (let n = 0x18; n <= 0x1f; n++) op(`0f${hex(n)}`, 'nop Ev'); // hint NOPs / PREFETCHh
op('0f20', 'mov Rd,Cd', A_MOD_IGNORED); op('0f21', 'mov Rd,Dd', A_MOD_IGNORED);
op('0f22', 'mov Cd,Rd', A_MOD_IGNORED | A_END); op('0f23', 'mov Dd,Rd', A_MOD_IGNORED | A_END);
op('0f30', 'wrmsr', A_END); op('0f31', 'rdtsc'); op('0f32', 'rdmsr'); op('0f33', 'rdpmc');
op('0f34', 'sysenter', A_END); op('0f35', 'sysexit', A_END);
CC.forEach((cc, n) => {
  op(`0f${hex(0x40 + n)}`, `cmov${cc} Gv,Ev`);
  op(`0f${hex(0x80 + n)}`, `j${cc} Jz`, A_END);
  op(`0f${hex(0x90 + n)}`, `set${cc} Eb`);
});
op('0f78', 'vmread Ed,Gd', A_NO_PREFIX); op('0f79', 'vmwrite Gd,Ed', A_NO_PREFIX);
op('0fa0', 'push FS'); op('0fa1', 'pop FS'); op('0fa2', 'cpuid');
op('0fa3', 'bt Ev,Gv', 0, BT_UNDEF);
op('0fa4', 'shld Ev,Gv,Ib', 0, SHIFT_UNDEF); op('0fa5', 'shld Ev,Gv,CL', 0, SHIFT_UNDEF);
op('0fa8', 'push GS'); op('0fa9', 'pop GS');
op('0fab', 'bts Ev,Gv', A_LOCK, BT_UNDEF);
op('0fac', 'shrd Ev,Gv,Ib', 0, SHIFT_UNDEF); op('0fad', 'shrd Ev,Gv,CL', 0, SHIFT_UNDEF);
op('0faf', 'imul Gv,Ev', 0, MUL_UNDEF);
op('0fb0', 'cmpxchg Eb,Gb', A_LOCK); op('0fb1', 'cmpxchg Ev,Gv', A_LOCK);
op('0fb2', 'lss Gv,Mp', A_MEM_ONLY);
op('0fb3', 'btr Ev,Gv', A_LOCK, BT_UNDEF);
op('0fb4', 'lfs Gv,Mp', A_MEM_ONLY); op('0fb5', 'lgs Gv,Mp', A_MEM_ONLY);
op('0fb6', 'movzx Gv,Eb'); op('0fb7', 'movzx Gv,Ew');
op('0fb9', 'ud1 Gv,Ev');
op('0fba/4', 'bt Ev,Ib', 0, BT_UNDEF); op('0fba/5', 'bts Ev,Ib', A_LOCK, BT_UNDEF);
op('0fba/6', 'btr Ev,Ib', A_LOCK, BT_UNDEF); op('0fba/7', 'btc Ev,Ib', A_LOCK, BT_UNDEF);
op('0fbb', 'btc Ev,Gv', A_LOCK, BT_UNDEF);
op('0fbc', 'bsf Gv,Ev', 0, BSF_UNDEF); op('0fbd', 'bsr Gv,Ev', 0, BSF_UNDEF);
op('0fbe', 'movsx Gv,Eb'); op('0fbf', 'movsx Gv,Ew');
op('0fc0', 'xadd Eb,Gb', A_LOCK); op('0fc1', 'xadd Ev,Gv', A_LOCK);
op('0fc7/1', 'cmpxchg8b Mq', A_LOCK | A_MEM_ONLY);
op('0fc7/6', 'vmptrld Mq', A_MEM_ONLY | A_END | A_NO_PREFIX); op('0fc7/6@66', 'vmclear Mq', A_MEM_ONLY | A_END);
op('0fc7/6@f3', 'vmxon Mq', A_MEM_ONLY | A_END); op('0fc7/7', 'vmptrst Mq', A_MEM_ONLY | A_NO_PREFIX);
for (let r = 0; r < 8; r++) op(`0f${hex(0xc8 + r)}`, 'bswap Zd');
op('0fff', 'ud0 Gv,Ev');

// ---- Three-byte map (0F 38 xx): only the VMX invalidations of this model ----
op('0f3880@66', 'invept Gd,Mo', A_MEM_ONLY | A_END);
op('0f3881@66', 'invvpid Gd,Mo', A_MEM_ONLY | A_END);
