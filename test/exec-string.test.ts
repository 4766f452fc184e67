// Semantic tests of the string family: every operation with and without REP, both directions,
// 16- and 32-bit addressing, the source override, REPE/REPNE termination, restartable faults in
// the middle of a REP, chunking at the run budget, and INS/OUTS.

import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CF, EAX, ECX, EDI, ESI, ES, FS, TR, ZF } from '../src/cpu/constants.js';
import { asm, CODE_BASE, makeCpu } from './helpers/harness.js';
import { run, runUntilEip } from './helpers/exec.js';

const S = 0x5000, T = 0x6000;
const fill = (mem: { ram: Uint8Array }, at: number, bytes: number[]) => mem.ram.set(bytes, at);

describe('MOVS/STOS/LODS', () => {
  test('REP MOVSB/MOVSW/MOVSD forward', () => {
    for (const [insn, size] of [['movsb', 1], ['movsw', 2], ['movsd', 4]] as const) {
      const r = run('pm32', `
        mov esi, ${S}
        mov edi, ${T}
        mov ecx, ${12 / size}
        rep ${insn}
      `, ({ mem }) => fill(mem, S, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]));
      expect([...r.mem.ram.subarray(T, T + 13)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0]);
      expect([r.cpu.regs[ESI], r.cpu.regs[EDI], r.cpu.regs[ECX]]).toEqual([S + 12, T + 12, 0]);
    }
  });

  test('REP MOVSD backward (DF = 1), overlapping', () => {
    const r = run('pm32', `
      std
      mov esi, ${S + 8}
      mov edi, ${S + 12}
      mov ecx, 3
      rep movsd
      cld
    `, ({ mem }) => fill(mem, S, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]));
    expect([...r.mem.ram.subarray(S, S + 16)]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    expect([r.cpu.regs[ESI], r.cpu.regs[EDI]]).toEqual([S - 4, S]);
  });

  test('16-bit addressing uses SI/DI/CX and wraps; the upper halves stay', () => {
    const r = run('real', `
      mov si, 0xfffe
      mov di, 0x100
      mov cx, 4
      rep movsb
    `, ({ cpu, mem }) => {
      cpu.regs[ESI] = 0x12340000; cpu.regs[EDI] = 0x56780000; cpu.regs[ECX] = 0x9abc0000 | 0;
      fill(mem, 0xfffe, [0xa, 0xb]);
      fill(mem, 0, [0xc, 0xd]);
    });
    expect([...r.mem.ram.subarray(0x100, 0x104)]).toEqual([0xa, 0xb, 0xc, 0xd]);
    expect(r.cpu.regs[ESI] >>> 0).toBe(0x12340002);
    expect(r.cpu.regs[EDI] >>> 0).toBe(0x56780104);
    expect(r.cpu.regs[ECX] >>> 0).toBe(0x9abc0000);
  });

  test('a 67 prefix in 32-bit code: SI/DI/CX', () => {
    const r = run('pm32', `
      mov esi, 0x10000 + ${S}
      mov edi, 0x20000 + ${T}
      mov ecx, 0x10002
      a16 rep movsb
    `, ({ mem }) => fill(mem, S, [7, 8, 9]));
    expect([...r.mem.ram.subarray(T, T + 3)]).toEqual([7, 8, 0]);
    expect(r.cpu.regs[ECX]).toBe(0x10000);
    expect(r.cpu.regs[ESI]).toBe(0x10000 + S + 2);
  });

  test('the source takes the segment override, the destination is always ES', () => {
    const r = run('real', `
      mov si, 0x10
      mov di, 0x20
      fs movsb
      fs lodsb
      es stosb                     ; the override does not apply to the destination
    `, ({ cpu, mem }) => {
      cpu.setSegCache(FS, 0x100, 0x1000, 0xffff, 0x93);
      cpu.setSegCache(ES, 0x200, 0x2000, 0xffff, 0x93);
      mem.ram[0x1010] = 0x5a; mem.ram[0x1011] = 0x6b; mem.ram[0x10] = 0xee;
    });
    expect(r.mem.ram[0x2020]).toBe(0x5a);
    expect(r.cpu.regs[EAX] & 0xff).toBe(0x6b);
    expect(r.mem.ram[0x2021]).toBe(0x6b);
  });

  test('STOS/LODS at every size; REP LODS leaves the last element', () => {
    const r = run('pm32', `
      mov edi, ${T}
      mov eax, 0x11223344
      stosd
      stosw
      stosb
      mov esi, ${T}
      mov ecx, 3
      rep lodsw
    `);
    expect([...r.mem.ram.subarray(T, T + 7)]).toEqual([0x44, 0x33, 0x22, 0x11, 0x44, 0x33, 0x44]);
    expect(r.cpu.regs[EAX] >>> 0).toBe(0x11223344); // last word loaded: 0x3344
    expect(r.cpu.regs[ESI]).toBe(T + 6);
  });

  test('REP with a zero count does nothing, not even a segment check', () => {
    const r = run('pm32', `
      xor ecx, ecx
      rep stosd
    `, ({ cpu }) => cpu.setSegCache(ES, 0, 0, 0, 0x10000));
    expect(r.vector).toBe(-1);
  });
});

describe('CMPS/SCAS', () => {
  test('REPE CMPSB stops after the first difference', () => {
    const r = run('pm32', `
      mov esi, ${S}
      mov edi, ${T}
      mov ecx, 10
      repe cmpsb
    `, ({ mem }) => { fill(mem, S, [1, 2, 3, 4, 5]); fill(mem, T, [1, 2, 3, 9, 5]); });
    expect([r.cpu.regs[ECX], r.cpu.regs[ESI], r.cpu.regs[EDI]]).toEqual([6, S + 4, T + 4]);
    expect(r.cpu.getZF()).toBe(false);
    expect(r.cpu.getCF()).toBe(true); // 4 - 9 borrows: SRC1 is DS:ESI
  });

  test('REPNE SCASB finds a byte; REPE SCASW runs out', () => {
    const r = run('pm32', `
      mov edi, ${T}
      mov al, 0x42
      mov ecx, 100
      repne scasb
      mov ebx, ecx
      mov esi, edi
      mov edi, ${S}
      mov ax, 0x0707
      mov ecx, 3
      repe scasw
    `, ({ mem }) => { fill(mem, T, [0, 0, 0, 0x42]); fill(mem, S, [7, 7, 7, 7, 7, 7, 8]); });
    expect(r.cpu.regs[3]).toBe(96);
    expect(r.cpu.regs[ESI]).toBe(T + 4);
    expect(r.cpu.regs[ECX]).toBe(0);
    expect(r.cpu.getZF()).toBe(true);
    expect(r.cpu.regs[EDI]).toBe(S + 6);
  });

  test('CMPSD flags against the SDM (SRC1 - SRC2)', () => {
    const r = run('pm32', `
      mov esi, ${S}
      mov edi, ${T}
      cmpsd
    `, ({ mem }) => { mem.view.setUint32(S, 0x80000000, true); mem.view.setUint32(T, 1, true); });
    const f = r.cpu.getEflags();
    expect(f & (CF | ZF)).toBe(0);
    expect(r.cpu.getOF()).toBe(true);
  });
});

describe('restartable REP', () => {
  test('a segment-limit fault in the middle leaves consistent registers, and resuming completes', () => {
    const code = asm(`
      mov edi, 0x2000
      mov ecx, 0x200
      mov al, 0xcc
      rep stosb
    `, 32);
    const h = makeCpu('pm32', code);
    h.cpu.setSegCache(ES, 0x10, 0, 0x20ff, 0xc093);
    const end = CODE_BASE + code.length;
    const first = runUntilEip(h.cpu, end);
    expect(first.vector).toBe(13);
    expect(h.cpu.eip).toBe(end - 2); // at REP STOSB
    expect(h.cpu.regs[ECX]).toBe(0x100);
    expect(h.cpu.regs[EDI]).toBe(0x2100);
    expect(h.mem.ram[0x20ff]).toBe(0xcc);
    expect(h.mem.ram[0x2100]).toBe(0);
    h.cpu.setSegCache(ES, 0x10, 0, 0xffffffff, 0xc093);
    expect(runUntilEip(h.cpu, end).vector).toBe(-1);
    expect(h.cpu.regs[ECX]).toBe(0);
    expect(h.mem.ram[0x21ff]).toBe(0xcc);
    expect(h.mem.ram[0x2200]).toBe(0);
  });

  test('a fault on the source of MOVS (DS limit) mid-way', () => {
    const r = run('real', `
      mov si, 0xfff1
      mov di, 0
      mov cx, 0x20
      rep movsw                    ; the 8th word, at 0xffff, straddles the 64 KiB limit
    `, ({ cpu }) => cpu.setSegCache(ES, 0x2000, 0x20000, 0xffff, 0x93));
    expect(r.vector).toBe(13);
    expect(r.cpu.regs[ECX] & 0xffff).toBe(0x20 - 7);
    expect(r.cpu.regs[ESI] & 0xffff).toBe(0xffff);
    expect(r.cpu.regs[EDI] & 0xffff).toBe(14);
  });

  test('a long REP stops at the run budget without retiring and resumes exactly', () => {
    const code = asm(`
      mov edi, 0x100000
      mov ecx, 5000
      mov eax, 0x01020304
      rep stosd
      nop
    `, 32);
    const h = makeCpu('pm32', code);
    const { cpu } = h;
    cpu.run(cpu.cycles + 100);
    expect(cpu.cycles).toBe(100);
    const icount = cpu.icount;
    expect(icount).toBe(3); // the three MOVs; REP STOSD has not retired
    expect(cpu.regs[ECX]).toBe(5000 - 97);
    expect(cpu.eip).toBe(CODE_BASE + code.length - 3);
    cpu.run(cpu.cycles + 10_000);
    expect(cpu.regs[ECX]).toBe(0);
    expect(cpu.icount).toBeGreaterThanOrEqual(5);
    expect(h.mem.view.getUint32(0x100000 + 4999 * 4, true)).toBe(0x01020304);
    expect(h.mem.view.getUint32(0x100000 + 5000 * 4, true)).toBe(0);
  });
});

describe('debug traps inside REP', () => {
  test('TF: a single-step trap after each iteration, EIP at the REP instruction', () => {
    const code = asm('rep movsb\nnop', 32);
    const { cpu } = makeCpu('pm32', code);
    cpu.regs[ECX] = 3; cpu.regs[ESI] = S; cpu.regs[EDI] = T;
    cpu.setEflags(cpu.getEflags() | 0x100);
    const traps: Array<[number, number, number]> = [];
    cpu.events = { onException: (v, _c, _h, eip) => { traps.push([v, eip, cpu.regs[ECX]]); throw new Error('trap'); } };
    for (let k = 0; k < 3; k++) expect(() => cpu.run(cpu.cycles + 100)).toThrow('trap');
    expect(traps).toEqual([[1, CODE_BASE, 2], [1, CODE_BASE, 1], [1, CODE_BASE + 2, 0]]);
    expect(cpu.dr[6] & 0x4000).toBe(0x4000);
  });
});

describe('INS/OUTS', () => {
  test('REP OUTSB writes each byte to the port; INSW reads the port', () => {
    const r = run('pm32', `
      mov esi, ${S}
      mov dx, 0xe9
      mov ecx, 3
      rep outsb
      mov dx, 0x60
      mov edi, ${T}
      insw
    `, ({ mem, bus }) => { fill(mem, S, [0x41, 0x42, 0x43]); bus.inputs.set(0x60, 0xbeef); });
    expect(r.bus.writes).toEqual([[0xe9, 1, 0x41], [0xe9, 1, 0x42], [0xe9, 1, 0x43]]);
    expect(r.mem.view.getUint16(T, true)).toBe(0xbeef);
    expect(r.cpu.regs[EDI]).toBe(T + 2);
  });

  test('the I/O permission is checked even for a REP with a zero count (as Bochs)', () => {
    const r = run('pm32', `
      xor ecx, ecx
      mov dx, 0xe9
      rep outsb
    `, ({ cpu, mem }) => {
      // CPL 3 > IOPL 0, and a TSS without room for an I/O bitmap: every port is denied.
      mem.view.setUint16(0x3066, 0x68, true);
      cpu.setSegCache(TR, 0x38, 0x3000, 0x67, 0x8b);
      cpu.setCpl(3);
    });
    expect(r.vector).toBe(13);
    expect(r.bus.writes).toEqual([]);
  });

  test('INS checks the destination before reading the port', () => {
    let reads = 0;
    const r = run('pm32', `
      mov edi, 0x7000
      mov dx, 0x60
      insb
    `, ({ cpu, bus }) => {
      bus.read = () => { reads++; return 0; };
      cpu.setSegCache(ES, 0x10, 0, 0x6fff, 0xc093);
    });
    expect(r.vector).toBe(13);
    expect(reads).toBe(0);
  });
});

describe('block fast path of REP MOVS/STOS', () => {
  const SEED = 4242;
  console.log(`exec-string: fast-check seed ${SEED}`);
  const OPS = ['movsb', 'movsw', 'movsd', 'stosb', 'stosw', 'stosd'];
  // One CPU per mode and path, reused: code, memory and registers are rewritten per case.
  const cpus = new Map<string, ReturnType<typeof makeCpu>>();
  const code = new Map<string, Uint8Array>();
  for (const bits of [16, 32] as const) for (const op of OPS) code.set(`${bits}${op}`, asm(`rep ${op}\njmp $`, bits, bits === 16 ? 0 : CODE_BASE));
  /**
   * Runs one REP MOVS/STOS (then a JMP $ loop) for `budget` cycles, on the fast path or forced
   * per iteration (slowMode); a budget below the count stops the REP part-way.
   */
  function once(op: string, bits: 16 | 32, regs: number[], df: boolean, budget: number, perIteration: boolean) {
    const key = `${bits}${perIteration}`;
    let h = cpus.get(key);
    if (!h) cpus.set(key, (h = makeCpu(bits === 16 ? 'real' : 'pm32', new Uint8Array(0))));
    const { cpu, mem } = h;
    const org = bits === 16 ? 0 : CODE_BASE, bytes = code.get(`${bits}${op}`)!;
    mem.ram.fill(0, 0, 0x40000);
    for (let k = 0; k < 256; k++) mem.ram[0x3000 + k * 37] = mem.ram[0x23000 + k * 37] = k; // patterns across pages
    mem.ram.set(bytes, CODE_BASE);
    cpu.flushCodeCache();
    [ECX, ESI, EDI, EAX].forEach((r, k) => { cpu.regs[r] = regs[k]; });
    cpu.setEflags(df ? 0x402 : 2);
    cpu.eip = org;
    cpu.slowMode = perIteration;
    const c0 = cpu.cycles, i0 = cpu.icount;
    let vector = -1;
    cpu.events = { onException: (v) => { throw new Error(`#${v}`); } };
    try {
      cpu.run(cpu.cycles + budget);
    } catch (e) {
      vector = Number((e as Error).message.slice(1));
    }
    return { vector, eip: cpu.eip, regs: Array.from(cpu.regs), mem: mem.ram.slice(0, 0x40000), cycles: cpu.cycles - c0, icount: cpu.icount - i0 };
  }
  test('equals the per-iteration path (random offsets, overlaps, sizes, DF, address sizes)', () => {
    fc.assert(fc.property(fc.constantFrom(...OPS), fc.constantFrom(16, 32) as fc.Arbitrary<16 | 32>, fc.integer({ min: 0, max: 0x3000 }),
      fc.integer({ min: 0x1000, max: 0x9000 }), fc.integer({ min: -40, max: 40 }), fc.boolean(), fc.integer(),
      fc.oneof(fc.constant(20000), fc.integer({ min: 1, max: 0x3000 })),
      (op, bits, count, si, skew, df, ax, budget) => {
        // 32-bit data lies above the code at 0x10000 (a 16-bit DS cannot reach it).
        const base = bits === 32 ? 0x20000 : 0;
        const di = base + (skew === 0 ? si + 0x2345 : si + skew); // overlapping either way, or apart
        const regs = [count, base + si, di, ax];
        const fast = once(op, bits, regs, df, budget, false), slow = once(op, bits, regs, df, budget, true);
        const { mem: fastMem, ...fastState } = fast, { mem: slowMem, ...slowState } = slow;
        expect(fastState).toEqual(slowState);
        expect(Buffer.compare(fastMem, slowMem)).toBe(0);
      }), { seed: SEED, numRuns: 150 });
  });
});
