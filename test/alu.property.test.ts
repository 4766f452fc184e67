// Property tests of the integer ALU: each instruction runs through the CPU (NASM-encoded, one
// step in flat 32-bit mode) on random operands and flags, and its result and every flag the SDM
// defines for it are compared with reference formulas written here in BigInt arithmetic
// (independent of the implementation). Undefined flags are masked out.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { AF, CF, EAX, EBX, ECX, EDX, OF, PF, SF, ZF } from '../src/cpu/constants.js';
import type { Cpu } from '../src/cpu/cpu.js';
import { asm, CODE_BASE, makeCpu } from './helpers/harness.js';
import { runUntilEip } from './helpers/exec.js';

const SEED = 20261125;
const RUNS = 300;
console.log(`alu.property: fast-check seed ${SEED}, ${RUNS} runs per property`);

const ARITH = CF | PF | AF | ZF | SF | OF;
type Size = 8 | 16 | 32;
const SIZES: Size[] = [8, 16, 32];
const REG = { 8: ['al', 'bl', 'cl', 'dl'], 16: ['ax', 'bx', 'cx', 'dx'], 32: ['eax', 'ebx', 'ecx', 'edx'] } as const;

const mask = (n: number) => (1n << BigInt(n)) - 1n;
const signed = (v: bigint, n: number) => (v & (1n << BigInt(n - 1)) ? v - (1n << BigInt(n)) : v);
const bit = (v: bigint, k: number) => Number((v >> BigInt(k)) & 1n);
/** SF, ZF and PF of an n-bit result. */
function szp(r: bigint, n: number): number {
  let f = 0;
  if (bit(r, n - 1)) f |= SF;
  if (r === 0n) f |= ZF;
  let ones = 0;
  for (let k = 0; k < 8; k++) ones += bit(r, k);
  if (ones % 2 === 0) f |= PF;
  return f;
}

/** An n-bit operand biased toward the edges (0, 1, all ones, the sign boundary). */
function operand(n: number): fc.Arbitrary<bigint> {
  const m = mask(n), s = 1n << BigInt(n - 1);
  return fc.oneof(fc.constantFrom(0n, 1n, m, s, s - 1n, m - 1n), fc.bigInt({ min: 0n, max: m }), fc.bigInt({ min: 0n, max: m }));
}
const flagsIn = fc.integer({ min: 0, max: 0xffff }).map((f) => f & ARITH);
const noise = fc.bigInt({ min: 0n, max: mask(32) });

/** One CPU per instruction: code written once, registers and flags set per case. */
class Runner {
  readonly cpu: Cpu;
  private readonly end: number;
  constructor(source: string) {
    const code = asm(source, 32);
    this.cpu = makeCpu('pm32', code).cpu;
    this.end = CODE_BASE + code.length;
  }
  /** Sets the registers (BigInt, 32-bit) and arithmetic flags, runs, returns the vector or -1. */
  exec(regs: Partial<Record<number, bigint>>, flags: number): number {
    const cpu = this.cpu;
    for (const [r, v] of Object.entries(regs)) cpu.regs[Number(r)] = Number(BigInt.asIntN(32, v!));
    cpu.setEflags(flags | 2);
    cpu.eip = CODE_BASE;
    return runUntilEip(cpu, this.end, 1).vector;
  }
  reg(r: number): bigint {
    return BigInt(this.cpu.regs[r] >>> 0);
  }
  flags(): number {
    return this.cpu.getEflags() & ARITH;
  }
}

/** Places an n-bit value into the low part of a 32-bit register image with random upper bits. */
const put = (hi: bigint, v: bigint, n: number) => (hi & ~mask(n) & mask(32)) | v;

function assertFlags(run: Runner, expected: number, defined: number) {
  expect((run.flags() & defined).toString(16)).toBe((expected & defined).toString(16));
}
function assertReg(run: Runner, r: number, expected: bigint) {
  expect(run.reg(r).toString(16)).toBe((expected & mask(32)).toString(16));
}

const params = { seed: SEED, numRuns: RUNS };

// ---------------------------------------------------------------- two-operand ALU

interface AluRef {
  (a: bigint, b: bigint, cin: number, n: number): { r: bigint; flags: number; defined: number; write: boolean };
}
function addRef(a: bigint, b: bigint, cin: number, n: number) {
  const sum = a + b + BigInt(cin), r = sum & mask(n);
  const ssum = signed(a, n) + signed(b, n) + BigInt(cin);
  let f = szp(r, n);
  if (sum > mask(n)) f |= CF;
  if (ssum !== signed(r, n)) f |= OF;
  if ((a & 15n) + (b & 15n) + BigInt(cin) > 15n) f |= AF;
  return { r, flags: f, defined: ARITH, write: true };
}
function subRef(a: bigint, b: bigint, bin: number, n: number) {
  const diff = a - b - BigInt(bin), r = diff & mask(n);
  const sdiff = signed(a, n) - signed(b, n) - BigInt(bin);
  let f = szp(r, n);
  if (diff < 0n) f |= CF;
  if (sdiff !== signed(r, n)) f |= OF;
  if ((a & 15n) - (b & 15n) - BigInt(bin) < 0n) f |= AF;
  return { r, flags: f, defined: ARITH, write: true };
}
const logicRef = (op: (a: bigint, b: bigint) => bigint) => (a: bigint, b: bigint, _c: number, n: number) => {
  const r = op(a, b) & mask(n);
  return { r, flags: szp(r, n), defined: ARITH & ~AF, write: true };
};
const ALU: Record<string, AluRef> = {
  add: (a, b, _c, n) => addRef(a, b, 0, n),
  adc: (a, b, c, n) => addRef(a, b, c, n),
  sub: (a, b, _c, n) => subRef(a, b, 0, n),
  sbb: (a, b, c, n) => subRef(a, b, c, n),
  cmp: (a, b, _c, n) => ({ ...subRef(a, b, 0, n), write: false }),
  and: logicRef((a, b) => a & b),
  or: logicRef((a, b) => a | b),
  xor: logicRef((a, b) => a ^ b),
  test: (a, b, c, n) => ({ ...logicRef((x, y) => x & y)(a, b, c, n), write: false }),
};

describe('two-operand ALU', () => {
  for (const [name, ref] of Object.entries(ALU)) {
    for (const n of SIZES) {
      test(`${name} ${n}`, () => {
        const run = new Runner(`${name} ${REG[n][0]}, ${REG[n][1]}`);
        fc.assert(fc.property(operand(n), operand(n), flagsIn, noise, (a, b, f, hi) => {
          expect(run.exec({ [EAX]: put(hi, a, n), [EBX]: put(~hi, b, n) }, f)).toBe(-1);
          const e = ref(a, b, f & CF ? 1 : 0, n);
          assertReg(run, EAX, put(hi, e.write ? e.r : a, n));
          assertFlags(run, e.flags, e.defined);
        }), params);
      });
    }
  }
});

// ---------------------------------------------------------------- one-operand INC/DEC/NEG

describe('INC/DEC/NEG', () => {
  const ONE: Record<string, (a: bigint, f: number, n: number) => { r: bigint; flags: number }> = {
    inc: (a, f, n) => { const e = addRef(a, 1n, 0, n); return { r: e.r, flags: (e.flags & ~CF) | (f & CF) }; },
    dec: (a, f, n) => { const e = subRef(a, 1n, 0, n); return { r: e.r, flags: (e.flags & ~CF) | (f & CF) }; },
    neg: (a, _f, n) => subRef(0n, a, 0, n),
  };
  for (const [name, ref] of Object.entries(ONE)) {
    for (const n of SIZES) {
      test(`${name} ${n}`, () => {
        const run = new Runner(`${name} ${REG[n][0]}`);
        fc.assert(fc.property(operand(n), flagsIn, noise, (a, f, hi) => {
          expect(run.exec({ [EAX]: put(hi, a, n) }, f)).toBe(-1);
          const e = ref(a, f, n);
          assertReg(run, EAX, put(hi, e.r, n));
          assertFlags(run, e.flags, ARITH);
        }), params);
      });
    }
  }
});

// ---------------------------------------------------------------- MUL/IMUL/DIV/IDIV

describe('multiplication and division', () => {
  for (const n of SIZES) {
    /** The double-width accumulator: AX (8), DX:AX (16), EDX:EAX (32). */
    const getWide = (run: Runner) => n === 8 ? run.reg(EAX) & 0xffffn : n === 16 ? ((run.reg(EDX) & 0xffffn) << 16n) | (run.reg(EAX) & 0xffffn) : (run.reg(EDX) << 32n) | run.reg(EAX);
    const setWide = (v: bigint, hi: bigint): Partial<Record<number, bigint>> => n === 8
      ? { [EAX]: put(hi, v & 0xffffn, 16), [EDX]: hi }
      : n === 16 ? { [EAX]: put(hi, v & 0xffffn, 16), [EDX]: put(hi, v >> 16n, 16) }
        : { [EAX]: v & mask(32), [EDX]: v >> 32n };

    for (const signedOp of [false, true]) {
      test(`${signedOp ? 'imul' : 'mul'} ${n} (one operand)`, () => {
        const run = new Runner(`${signedOp ? 'imul' : 'mul'} ${REG[n][1]}`);
        fc.assert(fc.property(operand(n), operand(n), flagsIn, noise, (a, b, f, hi) => {
          expect(run.exec({ [EAX]: put(hi, a, n), [EDX]: hi, [EBX]: b }, f)).toBe(-1);
          const p = signedOp ? signed(a, n) * signed(b, n) : a * b;
          const wide = p & mask(2 * n);
          expect(getWide(run).toString(16)).toBe(wide.toString(16));
          const over = signedOp ? p !== signed(wide & mask(n), n) : p > mask(n);
          assertFlags(run, over ? CF | OF : 0, CF | OF);
          if (n === 8) expect(run.reg(EDX)).toBe(hi & mask(32));
        }), params);
      });
      test(`${signedOp ? 'idiv' : 'div'} ${n}`, () => {
        const run = new Runner(`${signedOp ? 'idiv' : 'div'} ${REG[n][1]}`);
        const wideArb = fc.oneof(
          fc.bigInt({ min: 0n, max: mask(2 * n) }),
          fc.bigInt({ min: 0n, max: mask(n + 2) }),
          fc.bigInt({ min: 0n, max: mask(n + 2) }).map((v) => (-v) & mask(2 * n)),
        );
        fc.assert(fc.property(wideArb, operand(n), flagsIn, noise, (w, d, f, hi) => {
          const regsIn = { ...setWide(w, hi), [EBX]: d };
          const vector = run.exec(regsIn, f);
          const dividend = signedOp ? signed(w, 2 * n) : w, divisor = signedOp ? signed(d, n) : d;
          if (divisor === 0n) {
            expect(vector).toBe(0);
            return;
          }
          let q = dividend / divisor; // BigInt division truncates toward zero, as IDIV does
          const r = dividend - q * divisor;
          const fits = signedOp ? q >= -(1n << BigInt(n - 1)) && q < 1n << BigInt(n - 1) : q <= mask(n);
          if (!fits) {
            expect(vector).toBe(0);
            expect(getWide(run)).toBe(w); // nothing changed
            return;
          }
          expect(vector).toBe(-1);
          q &= mask(n);
          const expectWide = ((r & mask(n)) << BigInt(n)) | q;
          expect(getWide(run).toString(16)).toBe(expectWide.toString(16));
        }), params);
      });
    }
    if (n !== 8) {
      test(`imul ${n} (two and three operands)`, () => {
        const two = new Runner(`imul ${REG[n][0]}, ${REG[n][1]}`);
        const three = new Runner(`imul ${REG[n][0]}, ${REG[n][1]}, -1234`);
        fc.assert(fc.property(operand(n), operand(n), flagsIn, noise, (a, b, f, hi) => {
          for (const [run, x, y] of [[two, a, b], [three, b, -1234n & mask(n)]] as const) {
            expect(run.exec({ [EAX]: put(hi, a, n), [EBX]: put(hi, b, n) }, f)).toBe(-1);
            const p = signed(x, n) * signed(y, n), r = p & mask(n);
            assertReg(run, EAX, put(hi, r, n));
            assertFlags(run, p !== signed(r, n) ? CF | OF : 0, CF | OF);
          }
        }), params);
      });
    }
  }
});

// ---------------------------------------------------------------- shifts and rotates

type ShiftRef = (v: bigint, c: number, cin: number, n: number) => { r: bigint; cf: number; of: number; cfDefined: boolean; szp: boolean };
const SHIFT: Record<string, ShiftRef> = {
  shl: (v, c, _i, n) => {
    const wide = v << BigInt(c), r = wide & mask(n), cf = bit(wide, n);
    return { r, cf, of: cf ^ bit(r, n - 1), cfDefined: c < n, szp: true };
  },
  shr: (v, c, _i, n) => ({ r: v >> BigInt(c), cf: c <= n ? bit(v, c - 1) : 0, of: bit(v, n - 1), cfDefined: c < n, szp: true }),
  sar: (v, c, _i, n) => {
    const s = signed(v, n);
    return { r: (s >> BigInt(c)) & mask(n), cf: Number((s >> BigInt(c - 1)) & 1n), of: 0, cfDefined: true, szp: true };
  },
  rol: (v, c, _i, n) => {
    const k = BigInt(c % n), r = ((v << k) | (v >> (BigInt(n) - k))) & mask(n);
    return { r, cf: bit(r, 0), of: bit(r, 0) ^ bit(r, n - 1), cfDefined: true, szp: false };
  },
  ror: (v, c, _i, n) => {
    const k = BigInt(c % n), r = ((v >> k) | (v << (BigInt(n) - k))) & mask(n);
    return { r, cf: bit(r, n - 1), of: bit(r, n - 1) ^ bit(r, n - 2), cfDefined: true, szp: false };
  },
  rcl: (v, c, cin, n) => {
    const w = BigInt(n + 1), x = v | (BigInt(cin) << BigInt(n)), k = BigInt(c % (n + 1));
    const y = ((x << k) | (x >> (w - k))) & mask(n + 1);
    return { r: y & mask(n), cf: bit(y, n), of: bit(y, n) ^ bit(y, n - 1), cfDefined: true, szp: false };
  },
  rcr: (v, c, cin, n) => {
    const w = BigInt(n + 1), x = v | (BigInt(cin) << BigInt(n)), k = BigInt(c % (n + 1));
    const y = ((x >> k) | (x << (w - k))) & mask(n + 1);
    // OF (count 1) = MSB of the original operand XOR the original CF.
    return { r: y & mask(n), cf: bit(y, n), of: bit(v, n - 1) ^ cin, cfDefined: true, szp: false };
  },
};

describe('shifts and rotates', () => {
  for (const [name, ref] of Object.entries(SHIFT)) {
    for (const n of SIZES) {
      test(`${name} ${n}`, () => {
        const run = new Runner(`${name} ${REG[n][0]}, cl`);
        const countArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, n - 1, n, n + 1, 31, 32, 33));
        fc.assert(fc.property(operand(n), countArb, flagsIn, noise, (v, cl, f, hi) => {
          expect(run.exec({ [EAX]: put(hi, v, n), [ECX]: BigInt(cl) }, f)).toBe(-1);
          const c = cl & 31;
          if (c === 0) { // no change at all
            assertReg(run, EAX, put(hi, v, n));
            assertFlags(run, f, ARITH);
            return;
          }
          const e = ref(v, c, f & CF ? 1 : 0, n);
          assertReg(run, EAX, put(hi, e.r, n));
          let defined = 0, expected = 0;
          if (e.cfDefined) { defined |= CF; expected |= e.cf ? CF : 0; }
          if (c === 1) { defined |= OF; expected |= e.of ? OF : 0; }
          if (e.szp) {
            defined |= SF | ZF | PF;
            expected |= szp(e.r, n);
          } else { // rotates keep SF/ZF/AF/PF
            defined |= SF | ZF | AF | PF;
            expected |= f & (SF | ZF | AF | PF);
          }
          assertFlags(run, expected, defined);
        }), params);
      });
    }
  }
});

describe('SHLD/SHRD', () => {
  for (const n of [16, 32] as const) {
    for (const left of [true, false]) {
      const name = left ? 'shld' : 'shrd';
      test(`${name} ${n}`, () => {
        const run = new Runner(`${name} ${REG[n][0]}, ${REG[n][1]}, cl`);
        const countArb = fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, n - 1, n, 31, 32));
        fc.assert(fc.property(operand(n), operand(n), countArb, flagsIn, noise, (d, src, cl, f, hi) => {
          expect(run.exec({ [EAX]: put(hi, d, n), [EBX]: src, [ECX]: BigInt(cl) }, f)).toBe(-1);
          const c = cl & 31;
          if (c === 0) {
            assertReg(run, EAX, put(hi, d, n));
            assertFlags(run, f, ARITH);
            return;
          }
          if (c > n) return; // result and flags undefined (16-bit): the model choice is tested elsewhere
          const N = BigInt(n), C = BigInt(c);
          // Concatenate D:S (SHLD) or S:D (SHRD) and take the shifted window.
          const wide = left ? (d << N) | src : (src << N) | d;
          const r = left ? ((wide << C) >> N) & mask(n) : (wide >> C) & mask(n);
          const cf = left ? bit(d, n - c) : bit(d, c - 1);
          let defined = CF | SF | ZF | PF, expected = szp(r, n) | (cf ? CF : 0);
          if (c === 1) {
            defined |= OF;
            if (bit(r, n - 1) !== bit(d, n - 1)) expected |= OF; // sign change
          }
          assertReg(run, EAX, put(hi, r, n));
          assertFlags(run, expected, defined);
        }), params);
      });
    }
  }
});

// ---------------------------------------------------------------- bit instructions

describe('BT family and bit scans', () => {
  for (const n of [16, 32] as const) {
    for (const op of ['bt', 'bts', 'btr', 'btc']) {
      test(`${op} ${n} (register)`, () => {
        const run = new Runner(`${op} ${REG[n][0]}, ${REG[n][1]}`);
        fc.assert(fc.property(operand(n), operand(n), flagsIn, noise, (v, b, f, hi) => {
          expect(run.exec({ [EAX]: put(hi, v, n), [EBX]: b }, f)).toBe(-1);
          const k = Number(b % BigInt(n)), m = 1n << BigInt(k);
          const r = op === 'bts' ? v | m : op === 'btr' ? v & ~m : op === 'btc' ? v ^ m : v;
          assertReg(run, EAX, put(hi, r, n));
          assertFlags(run, (bit(v, k) ? CF : 0) | (f & ZF), CF | ZF);
        }), params);
      });
    }
    for (const op of ['bsf', 'bsr']) {
      test(`${op} ${n}`, () => {
        const run = new Runner(`${op} ${REG[n][0]}, ${REG[n][1]}`);
        const src = fc.oneof(operand(n), fc.integer({ min: 0, max: n - 1 }).map((k) => 1n << BigInt(k)));
        fc.assert(fc.property(src, flagsIn, noise, (s, f, hi) => {
          expect(run.exec({ [EAX]: hi, [EBX]: s }, f)).toBe(-1);
          if (s === 0n) { // model choice: destination unchanged
            assertReg(run, EAX, hi);
            assertFlags(run, ZF, ZF);
            return;
          }
          let k = 0;
          if (op === 'bsf') while (!bit(s, k)) k++;
          else for (k = n - 1; !bit(s, k); k--);
          assertReg(run, EAX, put(hi, BigInt(k), n));
          assertFlags(run, 0, ZF);
        }), params);
      });
    }
  }
});

// ---------------------------------------------------------------- BCD

describe('BCD adjustments', () => {
  const al = fc.integer({ min: 0, max: 255 }).map(BigInt);
  test('daa / das', () => {
    const daa = new Runner('daa'), das = new Runner('das');
    fc.assert(fc.property(al, flagsIn, noise, (a, f, hi) => {
      for (const [run, sub] of [[daa, false], [das, true]] as const) {
        expect(run.exec({ [EAX]: put(hi, a, 8) }, f)).toBe(-1);
        const cf = (f & CF) !== 0, af = (f & AF) !== 0;
        let r = a, ncf = false, naf = false;
        if ((a & 15n) > 9n || af) {
          r = sub ? r - 6n : r + 6n;
          ncf = cf || (sub ? a < 6n : a + 6n > 255n);
          naf = true;
          r &= 255n;
        }
        if (a > 0x99n || cf) {
          r = (sub ? r - 0x60n : r + 0x60n) & 255n;
          ncf = true;
        } else if (!sub) {
          ncf = false; // DAA: ELSE CF <- 0
        }
        assertReg(run, EAX, put(hi, r, 8));
        assertFlags(run, szp(r, 8) | (ncf ? CF : 0) | (naf ? AF : 0), ARITH & ~OF);
      }
    }), params);
  });
  test('aaa / aas', () => {
    const aaa = new Runner('aaa'), aas = new Runner('aas');
    fc.assert(fc.property(al, al, flagsIn, noise, (a, h, f, hi) => {
      for (const [run, sub] of [[aaa, false], [aas, true]] as const) {
        const ax = (h << 8n) | a;
        expect(run.exec({ [EAX]: put(hi, ax, 16) }, f)).toBe(-1);
        const adjust = (a & 15n) > 9n || (f & AF) !== 0;
        let r = ax;
        if (adjust) r = sub ? ((ax - 6n) & 0xffffn) - 0x100n : ax + 0x106n;
        r &= 0xffffn;
        r = (r & 0xff00n) | (r & 15n);
        assertReg(run, EAX, put(hi, r, 16));
        assertFlags(run, adjust ? CF | AF : 0, CF | AF);
      }
    }), params);
  });
  test('aam / aad (imm 10 and 7)', () => {
    const runs = [new Runner('aam'), new Runner('aam 7'), new Runner('aad'), new Runner('aad 7')];
    fc.assert(fc.property(al, al, flagsIn, noise, (a, h, f, hi) => {
      runs.forEach((run, k) => {
        const base = k % 2 ? 7n : 10n;
        expect(run.exec({ [EAX]: put(hi, (h << 8n) | a, 16) }, f)).toBe(-1);
        const r = k < 2 ? ((a / base) << 8n) | (a % base) : (a + h * base) & 255n;
        assertReg(run, EAX, put(hi, r, 16));
        assertFlags(run, szp(r & 255n, 8), SF | ZF | PF);
      });
    }), params);
  });
  test('aam 0 raises #DE and changes nothing', () => {
    const run = new Runner('aam 0');
    expect(run.exec({ [EAX]: 0x1234n }, 0)).toBe(0);
    assertReg(run, EAX, 0x1234n);
  });
});
