// Seeded random instruction sequences for the cross-check ROMs.
//
// A sequence is a list of items; an item is a few setup instructions (MOV of a base register,
// of a count, a PUSH of a return target, a flag-defining CMP) followed by one instruction drawn
// from the opcode table (src/cpu/opcodes.ts FORMS) with random, well-formed operands. The setup
// keeps the sequence inside its sandbox: memory operands land in the scratch area, the stack
// stays in it, branches go forward to an item start (so every sequence terminates), and no
// value a random instruction produces can steer control flow or the harness's own state.
//
// Undefined flags: each emitted instruction carries the flags it reads, defines and leaves
// undefined (the table's undefinedFlags, refined by shift count where the SDM says so). The
// generator tracks the set U of flags that are undefined at each point (joining the sets of
// all forward branches into their target). Before an instruction that reads a flag in U it
// inserts CMP reg,reg, which defines all six; so no instruction ever consumes an undefined flag,
// and what stays undefined is masked out of the final EFLAGS comparison (compare.ts). The same
// goes for undefined results: BSF/BSR get a non-zero source, SHLD/SHRD 16-bit counts stay <= 16,
// BSWAP is never 16-bit, SMSW to a register is 16-bit, pushes of segment registers with a
// 32-bit operand size land on a zeroed slot (the SDM lets a CPU write 2 or 4 bytes there).

import { A_LOCK, A_MEM_ONLY, A_PM_ONLY, A_STRING, FORMS, type OpForm } from '../cpu/opcodes.js';
import { AC, AF, ARITH_FLAGS, CF, DF, ID, IF, IOPL, OF, PF, SF, ZF, ESP, EBP, ECX, EAX, EDX } from '../cpu/constants.js';
import { Rng, testSeed } from './rng.js';
import { END_VECTOR, GDT_ENTRIES, PF_PAGES, SCRATCH_SIZE, SEL_CALLGATE, SEL_UCODE, SEL_USCR, TASK_SELECTORS, TASK_VECTOR, STACK_INIT, modeInfo, type Mode, type ModeInfo } from './modes.js';

export type SeqFixKind = 'rel8' | 'rel16' | 'rel32' | 'abs16' | 'abs32';

interface SeqFix {
  at: number;
  kind: SeqFixKind;
  /** Item index; an index >= the item count means the sequence's end. */
  target: number;
}

/** One emitted instruction and its effect on the flags. */
export interface InsnRec {
  off: number;
  len: number;
  /** Form key (opcodes.ts), or "setup:<what>" for generator scaffolding. */
  key: string;
  reads: number;
  defines: number;
  undef: number;
}

export interface Item {
  bytes: number[];
  fixes: SeqFix[];
  insns: InsnRec[];
  /** The key of the drawn form. */
  key: string;
}

export interface TestCase {
  runSeed: number;
  index: number;
  mode: Mode;
  regs: number[];
  eflags: number;
  fill: number;
  /** Paging modes: 4 MiB page directory (else 4 KiB tables). */
  pse: boolean;
  items: Item[];
}

/** What a peer cannot run, so the generator never draws it for that peer. */
export interface PeerProfile {
  name: string;
  /** Form keys (or bare mnemonics) left out. */
  exclude: ReadonlySet<string>;
  /** Flags a random POPF/IRET image may set (beyond the arithmetic ones and DF). */
  popfExtra: number;
  /** EFLAGS bits left out of the comparison (a peer that does not model them). */
  ignoreFlags: number;
}

// ---------------------------------------------------------------------------------------------
// Flag effects by mnemonic (the SDM's "Flags Affected" sections). `d` = flags given a defined
// value; the table's undefinedFlags are the undefined ones; `r` = flags read.
const CCR = [OF, OF, CF, CF, ZF, ZF, CF | ZF, CF | ZF, SF, SF, PF, PF, SF | OF, SF | OF, ZF | SF | OF, ZF | SF | OF];
const FX: Record<string, { r?: number; d?: number }> = {};
for (const n of ['add', 'or', 'and', 'sub', 'xor', 'cmp', 'neg', 'cmpxchg', 'xadd', 'test']) FX[n] = { d: ARITH_FLAGS };
FX.adc = FX.sbb = { r: CF, d: ARITH_FLAGS };
FX.inc = FX.dec = { d: ARITH_FLAGS & ~CF };
FX.mul = FX.imul = { d: CF | OF };
for (const n of ['bt', 'bts', 'btr', 'btc']) FX[n] = { d: CF };
for (const n of ['bsf', 'bsr', 'lar', 'lsl', 'verr', 'verw', 'arpl', 'cmpxchg8b']) FX[n] = { d: ZF };
FX.daa = FX.das = { r: CF | AF, d: CF | AF | SF | ZF | PF };
FX.aaa = FX.aas = { r: AF, d: AF | CF };
FX.aam = FX.aad = { d: SF | ZF | PF };
FX.sahf = { d: SF | ZF | AF | PF | CF };
FX.lahf = { r: SF | ZF | AF | PF | CF };
FX.popf = FX.iret = { d: ARITH_FLAGS };
FX.clc = FX.stc = { d: CF };
FX.cmc = { r: CF, d: CF };
FX.salc = { r: CF };
FX.into = { r: OF };
FX.pushf = { r: ARITH_FLAGS };
FX.loope = FX.loopne = { r: ZF };
FX.rcl = FX.rcr = { r: CF };
FX.cmps = FX.scas = { d: ARITH_FLAGS };
['o', 'no', 'b', 'nb', 'z', 'nz', 'be', 'nbe', 's', 'ns', 'p', 'np', 'l', 'nl', 'le', 'nle'].forEach((cc, n) => {
  FX[`j${cc}`] = FX[`set${cc}`] = FX[`cmov${cc}`] = { r: CCR[n] };
});

/** Mnemonics whose first operand is only read. */
const FIRST_READ_ONLY = new Set(['cmp', 'test', 'bt', 'push', 'bound', 'nop', 'verr', 'verw', 'mul', 'div', 'idiv', 'ud0', 'ud1']);
/** Mnemonics that write their second operand too. */
const BOTH_WRITTEN = new Set(['xchg', 'xadd']);

// Forms no peer comparison can use (their results are not the CPU's to define).
const ALWAYS_EXCLUDED = new Set([
  'esc', // x87: trapdiff models a CPU without FPU use (docs/CPU-MODEL.md), the peers have one
  'cpuid', 'rdtsc', // model identity and time differ between emulators by design
  'monitor', 'mwait', // MWAIT can sleep; MONITOR's faults depend on MSR state
  'lds', 'lss', // would move the harness's DS/SS
  'pause', // spin-loop hint; the same as NOP (kept out to save draws)
]);

/** Forms that change machine state the harness relies on: generated in ring 3 only, where they fault. */
const PRIVILEGED = new Set(['hlt', 'sti', 'in', 'out', 'ins', 'outs', 'lgdt', 'lidt', 'lldt', 'ltr', 'lmsw',
  'mov_RdCd', 'mov_CdRd', 'mov_RdDd', 'mov_DdRd', 'wrmsr', 'rdmsr', 'rdpmc', 'vmcall', 'vmlaunch', 'vmresume',
  'vmxoff', 'vmread', 'vmwrite', 'vmptrld', 'vmclear', 'vmxon', 'vmptrst', 'invept', 'invvpid', 'sysexit']);
/** Of those, the ones that raise #UD or #GP(0) in ring 0 and real mode too (no VMX, SYSENTER_CS = 0). */
const FAULT_EVERYWHERE = new Set(['vmcall', 'vmlaunch', 'vmresume', 'vmxoff', 'vmread', 'vmwrite', 'vmptrld', 'vmclear',
  'vmxon', 'vmptrst', 'invept', 'invvpid', 'sysexit']);

/** A form's position in the opcode map, as in opcodes.ts: "f7/1", "0fa2". */
function formPosition(f: OpForm): string {
  const map = f.code >= 0x200 ? '0f38' : f.code >= 0x100 ? '0f' : '';
  return `${map}${(f.code & 0xff).toString(16).padStart(2, '0')}${f.reg >= 0 ? `/${f.reg}` : ''}`;
}

/** An exclusion names a form by key ("test_EvIz"), mnemonic ("bound") or position ("f7/1"). */
function keyOrName(f: OpForm, set: ReadonlySet<string>): boolean {
  return set.has(f.key) || set.has(f.name) || set.has(formPosition(f));
}

/** The forms the generator may draw in a mode for a peer. */
export function eligibleForms(m: ModeInfo, peer: PeerProfile): OpForm[] {
  return FORMS.filter((f) => {
    if (keyOrName(f, ALWAYS_EXCLUDED) || keyOrName(f, peer.exclude)) return false;
    // INT3 and INTO are not IOPL-sensitive in virtual-8086 mode (a peer may make them so).
    if (m.vm86 && peer.exclude.has('vm86-int3') && (f.name === 'int3' || f.name === 'into')) return false;
    // A peer whose GDTR/IDTR reset state is wrong: SGDT/SIDT only after the harness's LGDT/LIDT.
    if (m.real && peer.exclude.has('reset-dtr') && (f.name === 'sgdt' || f.name === 'sidt')) return false;
    if (keyOrName(f, PRIVILEGED)) return m.ring === 3 || keyOrName(f, FAULT_EVERYWHERE);
    if (f.name === 'cli' || f.name === 'sysenter') return true; // harmless in ring 0 (IF is 0; SYSENTER_CS = 0 faults)
    return true;
  });
}

// ---------------------------------------------------------------------------------------------

const ES_ = 0, SS_ = 2, DS_ = 3, FS_ = 4, GS_ = 5;
/** a16 ModRM r/m -> the registers it adds. */
const A16_REGS = [[3, 6], [3, 7], [5, 6], [5, 7], [6], [7], [5], [3]];

interface MemOp {
  /** ModRM with reg = 0. */
  modrm: number;
  sib: number[];
  disp: number[];
  a32: boolean;
  /** Registers the address uses (their setup is emitted with the operand). */
  uses: number[];
  /** Setup: register, value, width. */
  setup: Array<[number, number, 16 | 32]>;
  /** Segment-override prefix byte, or 0. */
  seg: number;
  /** The offset the operand addresses, or -1 when it is stack-relative (unknown statically). */
  target: number;
}

type Rm = { reg: number } | { mem: MemOp };

const le = (v: number, n: number): number[] => Array.from({ length: n }, (_, i) => (v >>> (8 * i)) & 0xff);

class Gen {
  readonly rng: Rng;
  readonly m: ModeInfo;
  readonly peer: PeerProfile;
  u = 0;
  esp = STACK_INIT;
  items: Item[] = [];
  pending: number[] = [];
  n = 0;
  k = 0;
  cur!: Item;

  constructor(rng: Rng, m: ModeInfo, peer: PeerProfile) {
    this.rng = rng;
    this.m = m;
    this.peer = peer;
  }

  // ---- emission ----
  emit(bytes: number[], key: string, fx: { r?: number; d?: number; x?: number } = {}, fixes: Array<[number, SeqFixKind, number]> = []): void {
    const r = fx.r ?? 0;
    if (r & this.u) this.emitCmp();
    const it = this.cur;
    const off = it.bytes.length;
    for (const [at, kind, target] of fixes) it.fixes.push({ at: off + at, kind, target });
    it.bytes.push(...bytes);
    const x = fx.x ?? 0;
    const d = (fx.d ?? 0) & ~x;
    it.insns.push({ off, len: bytes.length, key, reads: r, defines: d, undef: x });
    this.u = (this.u & ~d) | x;
  }

  /** CMP r32,r32 (or r16): defines all six arithmetic flags, writes nothing else. */
  emitCmp(): void {
    const a = this.rng.int(8), b = this.rng.int(8);
    const p = this.rng.chance(0.3) ? [0x66] : [];
    this.u = 0;
    const it = this.cur;
    const bytes = [...p, this.rng.pick([0x39, 0x3b]), 0xc0 | (a << 3) | b];
    it.insns.push({ off: it.bytes.length, len: bytes.length, key: 'setup:cmp', reads: 0, defines: ARITH_FLAGS, undef: 0 });
    it.bytes.push(...bytes);
  }

  /** Operand-size prefix bytes for an operation of `o32` in this mode. */
  osz(o32: boolean): number[] {
    return o32 === (this.m.bits === 32) ? [] : [0x66];
  }

  asz(a32: boolean): number[] {
    return a32 === (this.m.bits === 32) ? [] : [0x67];
  }

  setReg(r: number, v: number, width: 16 | 32 = 32): void {
    const bytes = width === 32 ? [...this.osz(true), 0xb8 + r, ...le(v, 4)] : [...this.osz(false), 0xb8 + r, ...le(v, 2)];
    this.emit(bytes, 'setup:mov');
  }

  setReg8(r: number, v: number): void {
    this.emit([0xb0 + r, v & 0xff], 'setup:mov');
  }

  /**
   * Zeroes the dword below ESP (PUSH 0; LEA ESP,[ESP+4]): the SDM lets a 32-bit push of a
   * segment register (PUSH sreg, the CS of a far CALL/IRET frame) write 2 or 4 bytes there.
   */
  zeroSlot(): void {
    this.emit([...this.osz(true), 0x6a, 0], 'setup:push');
    this.emit([...this.asz(true), ...this.osz(true), 0x8d, 0x64, 0x24, 0x04], 'setup:lea');
  }

  /** An address of this sequence's code as an immediate (CS offset or linear), as a fixup. */
  addrFix(o32: boolean): SeqFixKind {
    return o32 ? 'abs32' : 'abs16';
  }

  // ---- operands ----
  value(size: number): number {
    const v = this.rng.value32();
    return size === 32 ? v >>> 0 : size === 16 ? v & 0xffff : v & 0xff;
  }

  imm(size: number): number[] {
    return le(this.value(size), size / 8);
  }

  /** A register number for an operand of `size`; a written 16/32-bit register is never ESP. */
  reg(size: number, written: boolean, avoid: readonly number[] = []): number {
    for (;;) {
      const r = this.rng.int(8);
      if (written && size !== 8 && r === ESP) continue;
      if (avoid.includes(r)) continue;
      return r;
    }
  }

  /** A memory operand whose `size`-byte access falls at an offset in [lo, hi] of the scratch area. */
  mem(size: number, lo = 0, hi = SCRATCH_SIZE - 16, pf = true): MemOp {
    const rng = this.rng;
    let t = rng.range(lo, Math.max(lo, hi - size));
    // Paging modes: sometimes the pages after the scratch area (read-only, supervisor, not
    // present), or an access that straddles into them.
    if (pf && this.m.paging && lo === 0 && hi === SCRATCH_SIZE - 16 && !this.peer.exclude.has('pf') && rng.chance(0.06)) {
      t = rng.chance(0.3) ? SCRATCH_SIZE - rng.range(1, size) : SCRATCH_SIZE + rng.int(PF_PAGES.length * 0x1000 - 16);
    }
    const a32 = this.m.bits === 32 ? !rng.chance(0.12) : rng.chance(0.25);
    const seg = rng.chance(0.15) ? rng.pick([0x26, 0x36, 0x3e, 0x64, 0x65]) : 0;
    const op: MemOp = { modrm: 0, sib: [], disp: [], a32, uses: [], setup: [], seg, target: t };
    if (!a32) {
      const rm = rng.int(8);
      let mod = rng.int(3);
      if (rm === 6 && mod === 0 && rng.chance(0.5)) mod = 1;
      const regs = rm === 6 && mod === 0 ? [] : A16_REGS[rm];
      const disp = mod === 0 ? (rm === 6 ? t : 0) : mod === 1 ? rng.range(-128, 127) : rng.int(0x10000);
      op.modrm = (mod << 6) | rm;
      op.disp = mod === 1 ? le(disp, 1) : mod === 2 || (mod === 0 && rm === 6) ? le(disp, 2) : [];
      if (regs.length) {
        let rest = t - (mod === 0 && rm === 6 ? 0 : disp);
        if (regs.length === 2) {
          const v = rng.chance(0.5) ? rng.int(0x40) : rng.int(0x10000);
          op.setup.push([regs[1], v, 16]);
          rest -= v;
        }
        op.setup.unshift([regs[0], rest & 0xffff, 16]);
        op.uses = regs;
      }
      return op;
    }
    const form = rng.int(7);
    const nonSp = [0, 1, 2, 3, 5, 6, 7];
    if (form === 0) { // [disp32]
      op.modrm = 5;
      op.disp = le(t, 4);
    } else if (form <= 3) { // [base], [base+disp8], [base+disp32]
      const mod = form - 1;
      const base = rng.pick(mod === 0 ? [0, 1, 2, 3, 6, 7] : nonSp);
      const disp = mod === 0 ? 0 : mod === 1 ? rng.range(-128, 127) : rng.chance(0.5) ? rng.range(-0x1000, 0x1000) : rng.u32() | 0;
      op.modrm = (mod << 6) | base;
      op.disp = mod === 1 ? le(disp, 1) : mod === 2 ? le(disp, 4) : [];
      op.setup.push([base, (t - disp) >>> 0, 32]);
      op.uses = [base];
    } else if (form <= 5) { // SIB
      const mod = rng.int(3);
      const base = rng.pick(nonSp);
      const noBase = mod === 0 && base === 5;
      const index = rng.chance(0.15) ? 4 : rng.pick(nonSp.filter((r) => r !== base || noBase));
      const scale = rng.int(4);
      const disp = noBase ? rng.int(0x100) : mod === 0 ? 0 : mod === 1 ? rng.range(-128, 127) : rng.range(-0x1000, 0x1000);
      op.modrm = (mod << 6) | 4;
      op.sib = [(scale << 6) | (index << 3) | base];
      op.disp = noBase || mod === 2 ? le(disp, 4) : mod === 1 ? le(disp, 1) : [];
      let rest = t - disp;
      if (index !== 4) {
        const iv = rng.range(-0x20, 0x40);
        op.setup.push([index, iv >>> 0, 32]);
        op.uses.push(index);
        rest -= iv * (1 << scale);
      }
      if (noBase) {
        // No base: the displacement carries the address.
        op.disp = le(t - (index !== 4 ? (op.setup[0][1] | 0) * (1 << scale) : 0), 4);
      } else {
        op.setup.unshift([base, rest >>> 0, 32]);
        op.uses.push(base);
      }
    } else { // [esp+disp8]: stack-relative, within +-64 of the stack pointer
      op.modrm = 0x44;
      op.target = -1;
      op.sib = [0x24];
      op.disp = le(rng.range(-64, 60), 1);
      op.uses = [ESP];
    }
    return op;
  }

  /** Emits the setup of a memory operand (the registers its address uses). */
  setupMem(op: MemOp): void {
    for (const [r, v, w] of op.setup) this.setReg(r, v, w);
  }

  /** Encodes prefixes + opcode + ModRM(+SIB, disp) + immediate. */
  encode(prefixes: number[], opcode: number[], regField: number, rm: Rm, imm: number[] = []): number[] {
    const pre = [...prefixes];
    const out: number[] = [];
    if ('mem' in rm) {
      const op = rm.mem;
      if (op.seg) pre.push(op.seg);
      pre.push(...this.asz(op.a32));
      out.push(...opcode, op.modrm | (regField << 3), ...op.sib, ...op.disp);
    } else {
      out.push(...opcode, 0xc0 | (regField << 3) | rm.reg);
    }
    // Prefix order is free (SDM Vol. 2 2.1.1): shuffle it for coverage.
    for (let i = pre.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [pre[i], pre[j]] = [pre[j], pre[i]];
    }
    return [...pre, ...out, ...imm];
  }

  /** A forward branch target: an item up to 6 ahead (or the end). */
  target(): number {
    return Math.min(this.n, this.k + 1 + this.rng.int(6));
  }

  /** Records that control may reach `target` with the flags state after this item. */
  branchTo(target: number): void {
    this.pendingTargets.push(target);
  }

  pendingTargets: number[] = [];
}

// ---------------------------------------------------------------------------------------------

function sizeOf(opnd: string, o32: boolean): number {
  const c = opnd[opnd.length - 1];
  if (c === 'b' || opnd === 'AL' || opnd === 'CL') return 8;
  if (c === 'w') return 16;
  if (c === 'd') return 32;
  return o32 ? 32 : 16;
}

/** Flag effect of a shift/rotate by a known count (SDM SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD/SHRD). */
function shiftFx(name: string, count: number, size: number): { r?: number; d?: number; x?: number } {
  const c = count & 31;
  const r = name === 'rcl' || name === 'rcr' ? CF : 0;
  if (c === 0) return { r, x: 0 };
  if (name === 'rol' || name === 'ror') return { d: CF | OF, x: c > 1 ? OF : 0 };
  if (name === 'rcl' || name === 'rcr') {
    const tmp = size === 8 ? c % 9 : size === 16 ? c % 17 : c;
    return { r, d: (tmp ? CF : 0) | OF, x: c > 1 ? OF : 0 };
  }
  // shl/sal/shr/sar/shld/shrd
  let x = AF | (c > 1 ? OF : 0);
  if ((name === 'shl' || name === 'sal' || name === 'shr') && c >= size) x |= CF;
  return { d: ARITH_FLAGS, x };
}

/** A random EFLAGS image for POPF/IRET: never TF, NT, VM, RF; IF only where it cannot take effect. */
function flagsImage(g: Gen): number {
  let v = (g.rng.u32() & (ARITH_FLAGS | DF | g.peer.popfExtra)) | 2;
  if (g.m.ring === 3 && g.rng.chance(0.3)) v |= IF | IOPL; // ignored at CPL 3 with IOPL 0
  else if (g.m.ring === 0 && g.rng.chance(0.3)) v |= g.rng.int(4) << 12;
  return v >>> 0;
}

/** A far JMP/CALL selector: CS, or sometimes conforming code, the call gate, or one the CPU must refuse. */
function farSelector(g: Gen): number {
  const far = g.m.farValues.filter((v) => !(g.peer.exclude.has('far-tss') && TASK_SELECTORS.includes(v & ~3)) &&
    !(g.peer.exclude.has('far-gate') && (v & ~3) === SEL_CALLGATE));
  return far.length && g.rng.chance(0.3) ? g.rng.pick(far) : g.m.cs;
}

function genForm(g: Gen, f: OpForm): boolean {
  const rng = g.rng;
  const m = g.m;
  const name = f.name;
  const ops = f.operands;
  // Operand size: the mode's default, sometimes flipped by 0x66 (never on near branches, whose
  // EIP would be truncated to 16 bits).
  const branchy = /^(j|loop|call|ret|iret|jcxz)/.test(name) || name === 'enter' || name === 'leave';
  let o32 = m.bits === 32;
  if (!branchy && rng.chance(0.2)) o32 = !o32;
  if (name === 'bswap' || name === 'cmpxchg8b') o32 = true;
  const fx = FX[name] ?? {};
  const undef = f.undefinedFlags;
  const key = f.key;
  const pre = (): number[] => [...(f.prefix ? [f.prefix] : []), ...g.osz(o32)];
  const opc = f.code < 0x100 ? [f.code] : f.code < 0x200 ? [0x0f, f.code & 0xff] : [0x0f, 0x38, f.code & 0xff];
  const espOk = (delta: number): boolean => g.esp + delta >= 0x700 && g.esp + delta <= 0xe00;
  const vsz = o32 ? 4 : 2;
  const flagsDefault = { r: fx.r, d: fx.d, x: undef };

  // ---- stack ----
  if (name === 'push' || name === 'pop') {
    const delta = name === 'push' ? -vsz : vsz;
    if (!espOk(delta)) return false;
    if (ops[0] === 'Zv') {
      if (name === 'pop' && (f.code & 7) === ESP) return false;
      g.emit([...pre(), f.code], key);
    } else if (ops[0] === 'Iz' || ops[0] === 'Ib') {
      g.emit([...pre(), ...opc, ...g.imm(ops[0] === 'Ib' ? 8 : o32 ? 32 : 16)], key);
    } else if (ops[0] === 'Ev') {
      const rm: Rm = rng.chance(0.5) ? { mem: g.mem(vsz, 0, SCRATCH_SIZE - 16) } : { reg: name === 'pop' ? g.reg(16, true) : rng.int(8) };
      if ('mem' in rm) {
        if (name === 'pop' && rm.mem.uses.includes(ESP)) return false; // pop [esp+d]: address uses ESP after the pop
        g.setupMem(rm.mem);
      }
      g.emit(g.encode(pre(), opc, f.reg < 0 ? 0 : f.reg, rm), key);
    } else {
      // Segment registers.
      const sreg = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS'].indexOf(ops[0]);
      if (name === 'pop') {
        if (!espOk(-vsz)) return false;
        // SS and DS are the harness's: they are popped back with the value they have.
        if (sreg === SS_ || sreg === DS_) {
          if (o32) g.zeroSlot();
          g.emit([...g.osz(o32), sreg === SS_ ? 0x16 : 0x1e], 'setup:push');
        } else g.emit([...g.osz(o32), 0x68, ...le(rng.pick(m.segValues), o32 ? 4 : 2)], 'setup:push');
      } else if (o32) g.zeroSlot();
      g.emit([...pre(), ...opc], key);
    }
    g.esp += delta;
    return true;
  }
  if (name === 'pusha' || name === 'popa') {
    const delta = (name === 'pusha' ? -8 : 8) * vsz;
    if (!espOk(delta)) return false;
    g.emit([...pre(), ...opc], key);
    g.esp += delta;
    return true;
  }
  if (name === 'pushf') {
    if (!espOk(-vsz)) return false;
    g.emit([...pre(), ...opc], key, fx);
    g.esp -= vsz;
    return true;
  }
  if (name === 'popf') {
    const v = flagsImage(g);
    g.emit([...g.osz(o32), 0x68, ...le(v, o32 ? 4 : 2)], 'setup:push');
    g.emit([...pre(), ...opc], key, fx);
    return true;
  }
  if (name === 'enter') {
    const size = rng.int(5) * 4;
    const level = rng.chance(0.6) || g.peer.exclude.has('enter-nested') ? 0 : rng.chance(0.8) ? rng.range(1, 4) : rng.range(32, 35);
    const delta = -(size + vsz * (1 + (level & 31)));
    if (!espOk(delta)) return false;
    g.setReg(EBP, rng.range(0x400, 0xe00));
    g.emit([...pre(), 0xc8, ...le(size, 2), level], key);
    g.esp += delta;
    return true;
  }
  if (name === 'leave') {
    const d = rng.int(8) * 4;
    if (!espOk(d + vsz)) return false;
    g.emit([...g.asz(true), ...g.osz(true), 0x8d, 0x6c, 0x24, d], 'setup:lea');
    g.emit([...pre(), ...opc], key);
    g.esp += d + vsz;
    return true;
  }

  // ---- control transfer (forward only) ----
  if (/^j/.test(name) && (ops[0] === 'Jb' || ops[0] === 'Jz')) {
    const t = g.target();
    const rel = ops[0] === 'Jb' ? 'rel8' : m.bits === 32 ? 'rel32' : 'rel16';
    const n = rel === 'rel8' ? 1 : rel === 'rel16' ? 2 : 4;
    const bytes = [...opc, ...new Array(n).fill(0)];
    g.emit(bytes, key, flagsDefault, [[opc.length, rel, t]]);
    g.branchTo(t);
    return true;
  }
  if (name === 'loop' || name === 'loope' || name === 'loopne' || name === 'jcxz') {
    const a32 = rng.chance(0.5);
    if (rng.chance(0.7)) g.setReg(ECX, rng.int(4));
    const t = g.target();
    const p = g.asz(a32);
    g.emit([...p, f.code, 0], key, flagsDefault, [[p.length + 1, 'rel8', t]]);
    g.branchTo(t);
    return true;
  }
  if (name === 'call' && ops[0] === 'Jz') {
    if (!espOk(-vsz)) return false;
    const t = g.target();
    const rel = m.bits === 32 ? 'rel32' : 'rel16';
    g.emit([0xe8, ...new Array(m.bits / 8).fill(0)], key, {}, [[1, rel, t]]);
    g.branchTo(t);
    g.esp -= vsz;
    return true;
  }
  if ((name === 'call' || name === 'jmp') && ops[0] === 'Ev') {
    if (name === 'call' && !espOk(-vsz)) return false;
    const t = g.target();
    const abs = g.addrFix(m.bits === 32);
    if (rng.chance(0.5)) {
      const r = g.reg(32, true);
      g.emit([...g.osz(m.bits === 32), 0xb8 + r, ...new Array(m.bits / 8).fill(0)], 'setup:mov', {}, [[g.osz(m.bits === 32).length + 1, abs, t]]);
      g.emit([0xff, 0xc0 | (f.reg << 3) | r], key);
    } else {
      const op = g.mem(m.bits / 8);
      g.setupMem(op);
      const st = g.encode([], [0xc7], 0, { mem: op });
      g.emit([...st, ...new Array(m.bits / 8).fill(0)], 'setup:mov', {}, [[st.length, abs, t]]);
      g.emit(g.encode([], [0xff], f.reg, { mem: op }), key);
    }
    g.branchTo(t);
    if (name === 'call') g.esp -= vsz;
    return true;
  }
  if (name === 'ret' || name === 'retf' || name === 'iret') {
    const far = name !== 'ret';
    const imm = ops[0] === 'Iw' ? rng.int(5) * 2 * (m.bits / 16) : 0;
    if (!espOk(imm)) return false;
    const t = g.target();
    const w = m.bits / 8;
    const push = (v: number): void => g.emit([0x68, ...le(v, w)], 'setup:push');
    // Ring 0, protected mode: sometimes an IRET to ring 3 (SS:ESP in the frame; the DPL-0 data
    // segment registers become null, SDM IRET RETURN-TO-OUTER-PRIVILEGE-LEVEL).
    const outer = name === 'iret' && !m.real && m.ring === 0 && !g.peer.exclude.has('iret-outer') && rng.chance(0.25);
    if (outer) {
      push(SEL_USCR);
      g.emit([0x54], 'setup:push'); // push esp: the ring-3 stack is this one, 4 bytes down
      push(flagsImage(g) & ~IOPL);
      push(SEL_UCODE);
      g.emit([0x68, 0, 0, 0, 0], 'setup:push', {}, [[1, 'abs32', t]]);
      g.emit([...g.osz(true), 0xcf], key, fx);
      g.branchTo(t);
      g.esp -= 4;
      return true;
    }
    if (name === 'iret') push(flagsImage(g));
    if (far) {
      if (m.bits === 32) g.zeroSlot();
      g.emit([0x0e], 'setup:push');
    }
    g.emit([0x68, ...new Array(w).fill(0)], 'setup:push', {}, [[1, g.addrFix(m.bits === 32), t]]);
    g.emit([...opc, ...(ops[0] === 'Iw' ? le(imm, 2) : [])], key, name === 'iret' ? fx : {});
    g.branchTo(t);
    g.esp += imm;
    return true;
  }
  if ((name === 'call' || name === 'jmp') && ops[0] === 'Ap') {
    if (name === 'call' && !espOk(-2 * vsz)) return false;
    const t = g.target();
    if (name === 'call' && m.bits === 32) g.zeroSlot();
    const w = m.bits / 8;
    const sel = farSelector(g);
    g.emit([...opc, ...new Array(w).fill(0), ...le(sel, 2)], key, {}, [[1, g.addrFix(m.bits === 32), t]]);
    g.branchTo(t);
    if (name === 'call') g.esp -= 2 * vsz;
    return true;
  }
  if (name === 'int') {
    // No vector that has an error code as an exception (INT n pushes none; the handler would
    // misread the frame), and not the end vector.
    const beyond = g.peer.exclude.has('int-beyond-idt') ? [] : [0x31, 0x80]; // #GP(vector * 8 + 2)
    const task = g.peer.exclude.has('far-tss') ? [] : [TASK_VECTOR]; // a task gate
    const vec = m.real ? rng.pick([0, 1, 3, 4, 5, 6, 7, 13, 0x20, 0x2f, 0x60, 0xff]) : rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 16, 18, 19, 0x20, ...task, ...beyond]);
    g.emit([0xcd, vec], key);
    return true;
  }

  // ---- far pointers in memory (LES/LFS/LGS, CALL/JMP m16:16/32), written just before ----
  if (ops.includes('Mp')) {
    const branch = name === 'call' || name === 'jmp';
    const w = o32 ? 4 : 2;
    if (name === 'call' && !espOk(-2 * vsz)) return false;
    const op = g.mem(w + 2, 0, SCRATCH_SIZE - 16, false);
    if (op.target < 0) return false;
    if (op.seg !== 0x36) op.seg = 0; // read through DS or SS (same base), where it was written
    const abs = (off: number): number[] => (m.bits === 32 ? [0x05, ...le(off, 4)] : [0x06, ...le(off, 2)]);
    const t = branch ? g.target() : 0;
    const sel = branch ? farSelector(g) : rng.pick(m.segValues);
    const offBytes = [...g.osz(o32), 0xc7, ...abs(op.target)];
    if (branch) g.emit([...offBytes, ...new Array(w).fill(0)], 'setup:mov', {}, [[offBytes.length, o32 ? 'abs32' : 'abs16', t]]);
    else g.emit([...offBytes, ...g.imm(w * 8)], 'setup:mov');
    g.emit([...g.osz(false), 0xc7, ...abs(op.target + w), ...le(sel, 2)], 'setup:mov');
    if (name === 'call' && m.bits === 32) g.zeroSlot();
    g.setupMem(op);
    g.emit(g.encode(pre(), opc, branch ? f.reg : g.reg(w * 8, true), { mem: op }), key);
    if (branch) g.branchTo(t);
    if (name === 'call') g.esp -= 2 * vsz;
    return true;
  }

  // ---- strings ----
  if (f.attrs & A_STRING) {
    const a32 = m.bits === 32 ? !rng.chance(0.15) : rng.chance(0.3);
    const rep = rng.chance(0.6);
    const count = rep ? rng.int(12) : 0;
    g.setReg(6, rng.range(0x300, 0xc00));
    g.setReg(7, rng.range(0x300, 0xc00));
    if (rep) g.setReg(ECX, count);
    const compare = name === 'cmps' || name === 'scas';
    const repByte = !rep ? [] : compare ? [rng.pick([0xf2, 0xf3])] : [0xf3];
    const seg = (name === 'movs' || name === 'cmps' || name === 'lods' || name === 'outs') && rng.chance(0.2) ? [rng.pick([0x26, 0x36, 0x3e, 0x64, 0x65])] : [];
    g.emit([...repByte, ...seg, ...g.asz(a32), ...g.osz(o32), f.code], key,
      compare ? { d: rep && count === 0 ? 0 : ARITH_FLAGS } : {});
    return true;
  }

  // ---- moffs ----
  if (ops.includes('Ob') || ops.includes('Ov')) {
    const a32 = m.bits === 32 ? !rng.chance(0.15) : rng.chance(0.25);
    const t = rng.int(SCRATCH_SIZE - 8);
    const seg = rng.chance(0.2) ? [rng.pick([0x26, 0x36, 0x3e, 0x64, 0x65])] : [];
    g.emit([...seg, ...g.asz(a32), ...g.osz(o32), f.code, ...le(t, a32 ? 4 : 2)], key);
    return true;
  }

  if (name === 'xlat') {
    // EBX in full, so 16- and 32-bit addressing both land in the scratch area.
    g.setReg(3, rng.range(0, SCRATCH_SIZE - 256));
    const seg = rng.chance(0.2) ? [rng.pick([0x26, 0x36, 0x3e, 0x64, 0x65])] : [];
    g.emit([...seg, ...g.asz(m.bits === 32 || rng.chance(0.3)), 0xd7], key);
    return true;
  }

  // ---- port I/O (ring 3 only, where IOPL 0 and no I/O bitmap make it #GP(0)) ----
  if (name === 'in' || name === 'out') {
    g.emit([...pre(), ...opc, ...(ops.includes('Ib') ? [rng.int(256)] : [])], key);
    return true;
  }

  // ---- accumulator, immediate forms (ALU AL/eAX,Ib/Iz; TEST) ----
  if ((ops[0] === 'AL' || ops[0] === 'eAX') && ops.length === 2 && ops[1][0] === 'I') {
    g.emit([...pre(), ...opc, ...g.imm(ops[1] === 'Ib' ? 8 : o32 ? 32 : 16)], key, flagsDefault);
    return true;
  }

  // ---- register-in-opcode forms (the register is the form's own: 40+r, B8+r, ...) ----
  if (ops[0] === 'Zv' || ops[0] === 'Zb' || ops[0] === 'Zd') {
    const r = f.code & 7;
    const writesEsp = ops[0] !== 'Zb' && r === ESP && (name === 'mov' || name === 'xchg' || name === 'bswap');
    if (writesEsp) return false;
    const immB = ops[1] === 'Ib' ? g.imm(8) : ops[1] === 'Iv' ? g.imm(o32 ? 32 : 16) : [];
    g.emit([...pre(), ...opc, ...immB], key, flagsDefault);
    if (ops[0] === 'Zv' && r === ESP) g.esp += name === 'inc' ? 1 : -1;
    return true;
  }

  // ---- no operands ----
  if (ops.length === 0 || (ops.length === 1 && (ops[0] === 'Ib' || ops[0] === 'Iw') && name !== 'push')) {
    if (name === 'hlt' && m.ring === 0) return false;
    if (name === 'into' && rng.chance(0.5)) {
      // give OF a chance to be set
      g.emit([0x04, 0x7f], 'setup:add', { d: ARITH_FLAGS });
    }
    const immB = ops[0] === 'Ib' ? [rng.chance(0.1) ? 0 : rng.int(256)] : ops[0] === 'Iw' ? g.imm(16) : [];
    const p = name === 'cbw' || name === 'cwd' ? g.osz(o32) : [];
    const bytes = [...(f.prefix ? [f.prefix] : []), ...p, ...opc, ...(f.modrm >= 0 ? [f.modrm] : []), ...immB];
    g.emit(bytes, key, flagsDefault);
    return true;
  }

  // ---- ModRM forms ----
  return genModrm(g, f, o32, opc, pre, flagsDefault);
}

function genModrm(g: Gen, f: OpForm, o32: boolean, opc: number[], pre: () => number[],
  fxd: { r?: number; d?: number; x?: number }): boolean {
  const rng = g.rng;
  const m = g.m;
  const name = f.name;
  const ops = f.operands;
  const key = f.key;
  // One-operand IMUL, like MUL, only reads its operand (it writes eAX/eDX).
  const firstWritten = !(FIRST_READ_ONLY.has(name) || (name === 'imul' && ops.length === 1));
  const secondWritten = BOTH_WRITTEN.has(name);
  let fx = fxd;

  // Identify the E (r/m) and G (reg) operands and immediates.
  const eIdx = ops.findIndex((o) => /^[EMR]/.test(o));
  const gIdx = ops.findIndex((o) => o[0] === 'G' || o === 'Sw' || o === 'Cd' || o === 'Dd');
  if (eIdx < 0) return false;
  const eOp = ops[eIdx];
  const eSize = eOp === 'M' || eOp === 'Ma' || eOp === 'Mp' || eOp === 'Ms' || eOp === 'Mq' ? 0 : sizeOf(eOp, o32);
  const eWritten = eIdx === 0 ? firstWritten : secondWritten;
  const memOnly = (f.attrs & A_MEM_ONLY) !== 0 || eOp[0] === 'M';
  const regOnly = eOp[0] === 'R' || f.modrm >= 0;
  if (f.modrm >= 0) return false;
  let useMem = memOnly ? true : regOnly ? false : rng.chance(0.5);
  if (name === 'smsw' && o32 && !useMem) o32 = false; // SMSW r32: high half undefined
  const accBytes = eOp === 'Ma' ? (o32 ? 8 : 4) : eOp === 'Mq' ? 8 : eOp === 'Ms' ? 6 : eOp === 'M' ? 1 : eSize / 8;
  // G operand register (or special reg field).
  let regField = f.reg >= 0 ? f.reg : 0;
  const avoid: number[] = [];
  const setups: Array<() => void> = [];
  /** Registers the setups write. */
  const setupRegs: number[] = [];
  let mem: MemOp | null = null;

  if (gIdx >= 0) {
    const gOp = ops[gIdx];
    if (gOp === 'Sw') {
      if (name === 'mov' && gIdx === 0) {
        regField = rng.chance(0.05) ? rng.pick([1, 6]) : rng.pick([ES_, FS_, GS_]); // CS/6 are #UD
        useMem = false;
      } else regField = rng.chance(0.05) ? rng.pick([6, 7]) : rng.int(6);
    } else if (gOp === 'Cd' || gOp === 'Dd') {
      regField = g.peer.exclude.has('cr-reserved') ? rng.pick([0, 2, 3, 4]) : rng.int(8);
    } else {
      const gWritten = gIdx === 0 ? firstWritten : secondWritten;
      regField = g.reg(sizeOf(gOp, o32), gWritten);
    }
  }
  // Bit offsets with a memory operand reach beyond it: keep the register offset small.
  const btReg = (name === 'bt' || name === 'bts' || name === 'btr' || name === 'btc') && ops[1] === 'Gv';
  if (useMem) {
    const isBt = name === 'bt' || name === 'bts' || name === 'btr' || name === 'btc';
    mem = btReg ? g.mem(accBytes, 0x100, 0xe00) : g.mem(accBytes, 0, SCRATCH_SIZE - 16, !(isBt && g.peer.exclude.has('bt-pf')));
    if (gIdx >= 0 && ops[gIdx][0] === 'G' && mem.uses.includes(regField) && btReg) return false;
  }
  let rmReg = 0;
  if (!useMem) {
    rmReg = g.reg(eSize || 32, eWritten, avoid);
  }

  // ---- per-mnemonic operand constraints ----
  if (btReg && useMem) {
    const off = rng.range(-0x200, 0x3ff);
    setups.push(() => g.setReg(regField, off >>> 0, o32 ? 32 : 16));
    setupRegs.push(regField);
  }
  if (name === 'mov' && ops[0] === 'Sw') {
    const sel = regField === ES_ || regField === FS_ || regField === GS_ ? rng.pick(m.segValues) : rng.int(0x10000);
    if (rmReg === ESP) return false;
    setups.push(() => g.setReg(rmReg, sel, 16));
  }
  if ((name === 'lar' || name === 'lsl' || name === 'verr' || name === 'verw' || name === 'lldt' || name === 'ltr') && !useMem) {
    const sel = rng.chance(0.9) ? (rng.int(GDT_ENTRIES + 2) << 3) | rng.int(4) : rng.int(0x10000);
    if (rmReg === ESP) return false;
    setups.push(() => g.setReg(rmReg, sel, 16));
  }
  if (name === 'bsf' || name === 'bsr') {
    // SDM: the destination is undefined for a zero source; make the source non-zero.
    const bit = 1 << rng.int(o32 ? 32 : 16);
    const size = o32 ? 32 : 16;
    if (!useMem && rmReg === ESP) return false;
    const rm: Rm = useMem ? { mem: mem! } : { reg: rmReg };
    setups.push(() => g.emit(g.encode(g.osz(o32), [0x81], 1, rm, le(bit, size / 8)), 'setup:or', { d: ARITH_FLAGS, x: AF }));
  }
  if ((name === 'div' || name === 'idiv') && rng.chance(0.6)) {
    // A small high half makes a quotient overflow (#DE) less likely.
    const size = sizeOf(ops[0], o32);
    if (size === 8) setups.push(() => g.emit([0xb4, rng.int(4)], 'setup:mov'));
    else setups.push(() => g.setReg(EDX, rng.int(4), size === 32 ? 32 : 16));
    setupRegs.push(size === 8 ? EAX : EDX);
  }
  let imm: number[] = [];
  const immOp = ops.find((o) => o[0] === 'I' || o === '1' || o === 'CL');
  let count = -1;
  const isShift = /^(rol|ror|rcl|rcr|shl|shr|sal|sar|shld|shrd)$/.test(name);
  if (immOp) {
    if (immOp === 'CL' || immOp === '1' || (isShift && immOp === 'Ib')) {
      const limit = (name === 'shld' || name === 'shrd') && !o32 ? 16 : 31;
      count = immOp === '1' ? 1 : rng.chance(0.5) ? rng.pick([0, 1, 2, 7, 8, 9, 15, 16, 17, 31].filter((c) => c <= limit)) : rng.range(0, limit);
      if (rng.chance(0.15) && limit === 31) count += 32 * rng.range(1, 7); // masked to 5 bits
      if (immOp === 'CL') {
        setups.push(() => g.setReg8(ECX, count));
        setupRegs.push(ECX);
      } else if (immOp === 'Ib') imm = [count];
      const size = sizeOf(ops[0], o32);
      fx = shiftFx(name, count, size);
    } else {
      const isz = immOp === 'Ib' ? 8 : immOp === 'Iw' ? 16 : immOp === 'Iz' ? (o32 ? 32 : 16) : 32;
      imm = g.imm(isz);
      if ((name === 'bt' || name === 'bts' || name === 'btr' || name === 'btc') && immOp === 'Ib') imm = [rng.int(256)];
    }
  }
  if (name === 'cmpxchg8b' && !useMem) return false;

  // LOCK: on lockable forms with a memory destination, sometimes; on others rarely (#UD).
  const lockable = (f.attrs & A_LOCK) !== 0 && useMem;
  const lock = lockable ? rng.chance(0.3) : !g.peer.exclude.has('lock-ud') && rng.chance(0.01);
  const prefixes = [...pre(), ...(lock ? [0xf0] : [])];
  const rm: Rm = useMem ? { mem: mem! } : { reg: rmReg };
  // A setup must not overwrite a register the memory operand's address uses, nor ESP.
  if (setupRegs.includes(ESP) || (mem && setupRegs.some((r) => mem!.uses.includes(r)))) return false;
  if (mem) g.setupMem(mem);
  for (const s of setups) s();
  g.emit(g.encode(prefixes, opc, regField, rm, imm), key, { r: fx.r, d: fx.d, x: fx.x ?? f.undefinedFlags });
  // LAR r32: the SDM leaves bits 19:16 of the result undefined (mask 00FxFF00H); keep the
  // defined low half only (MOVZX leaves the flags, ZF being LAR's answer).
  if (name === 'lar' && o32) g.emit([...g.osz(true), 0x0f, 0xb7, 0xc0 | (regField << 3) | regField], 'setup:movzx');
  return true;
}

// ---------------------------------------------------------------------------------------------

/**
 * Forms that can only fault in this mode (#UD, or #GP at CPL 3) end a sequence at once: they are
 * drawn at 1/8 of the weight of the others so that most sequences run to their end.
 */
function alwaysFaults(f: OpForm, m: ModeInfo): boolean {
  if (keyOrName(f, FAULT_EVERYWHERE) || f.name === 'ud2' || f.name === 'ud0' || f.name === 'ud1' || f.name === 'sysenter') return true;
  if (m.real && (f.attrs & A_PM_ONLY) !== 0) return true;
  // Virtual-8086 mode with IOPL 0: the IOPL-sensitive instructions raise #GP(0).
  if (m.vm86 && ['pushf', 'popf', 'iret', 'int', 'cli', 'sti'].includes(f.name)) return true;
  return m.ring === 3 && (keyOrName(f, PRIVILEGED) || f.name === 'cli' || f.name === 'clts' || f.name === 'invd' ||
    f.name === 'wbinvd' || f.name === 'invlpg');
}

const FAULTING_WEIGHT = 1 / 8;

interface FormTable {
  forms: OpForm[];
  /** Cumulative weights. */
  cum: number[];
}

const formCache = new Map<string, FormTable>();

function formsFor(m: ModeInfo, peer: PeerProfile): FormTable {
  const k = `${m.mode}/${peer.name}/${[...peer.exclude].join(',')}`;
  let v = formCache.get(k);
  if (!v) {
    const forms = eligibleForms(m, peer);
    let total = 0;
    const cum = forms.map((f) => (total += alwaysFaults(f, m) ? FAULTING_WEIGHT : 1));
    formCache.set(k, (v = { forms, cum }));
  }
  return v;
}

function pickForm(rng: Rng, t: FormTable): OpForm {
  const x = (rng.u32() / 4294967296) * t.cum[t.cum.length - 1];
  let lo = 0, hi = t.cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t.cum[mid] > x) hi = mid; else lo = mid + 1;
  }
  return t.forms[lo];
}

/** Builds test `index` of a run: initial state and the item list. */
export function generateTest(runSeed: number, index: number, mode: Mode, peer: PeerProfile, items = 0): TestCase {
  const rng = new Rng(testSeed(runSeed, index));
  const m = modeInfo(mode);
  const forms = formsFor(m, peer);
  const g = new Gen(rng, m, peer);
  const regs = Array.from({ length: 8 }, () => rng.value32() >>> 0);
  regs[ESP] = STACK_INIT;
  const eflags = ((rng.u32() & (ARITH_FLAGS | DF | (m.real ? 0 : peer.popfExtra & (AC | ID)))) | 2) >>> 0;
  const fill = rng.u32();
  const pse = rng.chance(0.5);
  g.n = items || rng.range(4, 28);
  g.pending = new Array(g.n + 1).fill(0);
  for (g.k = 0; g.k < g.n; g.k++) {
    g.u |= g.pending[g.k];
    for (let attempt = 0; ; attempt++) {
      g.cur = { bytes: [], fixes: [], insns: [], key: '' };
      g.pendingTargets = [];
      const save = { u: g.u, esp: g.esp };
      const f = pickForm(rng, forms);
      if (genForm(g, f)) {
        g.cur.key = f.key;
        break;
      }
      g.u = save.u;
      g.esp = save.esp;
      if (attempt > 50) throw new Error('generator: no form fits');
    }
    for (const t of g.pendingTargets) g.pending[t] |= g.u;
    g.items.push(g.cur);
  }
  return { runSeed, index, mode, regs, eflags, fill, pse, items: g.items };
}

// ---------------------------------------------------------------------------------------------

export interface PlacedInsn {
  addr: number;
  len: number;
  key: string;
  item: number;
  /** Flags the instruction reads (never in uBefore: the generator's rule). */
  reads: number;
  uBefore: number;
  uAfter: number;
}

export interface SeqLayout {
  bytes: number[];
  insns: PlacedInsn[];
  /** Address of the final INT 30h. */
  endAddr: number;
}

/**
 * Lays out the first `count` items at `base` (an address as the sequence's code sees it) and
 * appends INT 30h; branches past the cut go to the end. Recomputes the undefined-flag sets
 * along the way (the same rule the generator applied).
 */
export function layoutSequence(tc: TestCase, count: number, base: number): SeqLayout {
  const items = tc.items.slice(0, count);
  const starts: number[] = [];
  let off = 0;
  for (const it of items) { starts.push(off); off += it.bytes.length; }
  starts.push(off);
  const bytes: number[] = [];
  const insns: PlacedInsn[] = [];
  const pending = new Array(items.length + 1).fill(0);
  let u = 0;
  items.forEach((it, k) => {
    u |= pending[k];
    const b = it.bytes.slice();
    for (const fx of it.fixes) {
      const t = starts[Math.min(fx.target, items.length)];
      const at = starts[k] + fx.at;
      let v: number; let n: number;
      if (fx.kind === 'abs16' || fx.kind === 'abs32') { v = base + t; n = fx.kind === 'abs16' ? 2 : 4; } else {
        n = fx.kind === 'rel8' ? 1 : fx.kind === 'rel16' ? 2 : 4;
        v = t - (at + n);
        if (fx.kind === 'rel8' && (v < -128 || v > 127)) throw new Error('rel8 branch out of range');
      }
      for (let i = 0; i < n; i++) b[fx.at + i] = (v >>> (8 * i)) & 0xff;
    }
    for (const r of it.insns) {
      const before = u;
      u = (u & ~r.defines) | r.undef;
      insns.push({ addr: base + starts[k] + r.off, len: r.len, key: r.key, item: k, reads: r.reads, uBefore: before, uAfter: u });
    }
    for (const fx of it.fixes) pending[Math.min(fx.target, items.length)] |= u;
    bytes.push(...b);
  });
  u |= pending[items.length];
  const endAddr = base + off;
  insns.push({ addr: endAddr, len: 2, key: 'end', item: items.length, reads: 0, uBefore: u, uAfter: u });
  bytes.push(0xcd, END_VECTOR);
  return { bytes, insns, endAddr };
}

/** The undefined-flag mask that applies to an EFLAGS image pushed with `eip`. */
export function undefinedAt(l: SeqLayout, eip: number): number {
  for (const i of l.insns) if (i.addr === eip) return i.uBefore;
  for (const i of l.insns) if (i.addr + i.len === eip) return i.uAfter;
  return ARITH_FLAGS; // outside the sequence (the harness): nothing is known
}
