// Unit tests of the decoder's tricky corners, the disassembler and `trapdiff decode`.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCommand } from '../src/cli/decode.js';
import { DS, EBP, EBX, ECX, EDI, ES, ESI, ESP, EXC_GP, EXC_UD, FS, SS } from '../src/cpu/constants.js';
import { ArrayReader, decode, execTooLong, execUD, type CodeReader } from '../src/cpu/decoder.js';
import { disassemble } from '../src/cpu/disasm.js';
import { HANDLERS, VARIANTS, selectHandler } from '../src/cpu/dispatch.js';
import { Insn, REP_E, REP_NE, REP_NONE } from '../src/cpu/insn.js';

const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

function dec(hex: string, d32 = true, into = new Insn(execUD)): Insn {
  decode(new ArrayReader(bytes(hex)), d32, into);
  return into;
}

const key = (i: Insn) => (i.form ? i.form.key : i.exec === execTooLong ? '#GP' : '#UD');

describe('prefixes', () => {
  it('accepts prefixes in any order and repeated; the last segment override and F2/F3 win', () => {
    const i = dec('26 66 2e 67 66 64 8b 00');
    expect(key(i)).toBe('mov_GvEv');
    expect(i.len).toBe(8);
    expect(i.o32).toBe(false);
    expect(i.a32).toBe(false);
    expect(i.seg).toBe(FS);
    expect(i.segOverride).toBe(true);
    expect(dec('f2 f3 a4').rep).toBe(REP_E);
    expect(dec('f3 f2 a4').rep).toBe(REP_NE);
    expect(dec('a4').rep).toBe(REP_NONE);
    expect(dec('65 3e 26 8b 00').seg).toBe(ES);
  });

  it('66 and 67 flip the default sizes of 16- and 32-bit code', () => {
    expect(dec('66 90', false).o32).toBe(true);
    expect(dec('67 8b 00', false).a32).toBe(true);
    expect(dec('90', false).o32).toBe(false);
    expect(dec('66 66 90').o32).toBe(false); // repeated 66 does not toggle back
  });
});

describe('15-byte limit', () => {
  /** A reader that fails the test if the decoder fetches past byte 15. */
  const limited = (hex: string): CodeReader => {
    const b = bytes(hex);
    return {
      byte(k) {
        if (k >= 15) throw new Error(`fetched byte ${k}`);
        return b[k] ?? 0;
      },
    };
  };

  it('allows exactly 15 bytes', () => {
    const i = dec('66'.repeat(14) + '90');
    expect(key(i)).toBe('nop');
    expect(i.len).toBe(15);
  });

  it('gives #GP(0) with length 15 beyond, without fetching byte 16', () => {
    for (const hex of ['66'.repeat(15) + '90', '66'.repeat(13) + '05 34 12', '26'.repeat(14) + '0f 0b', 'f0'.repeat(20)]) {
      const i = new Insn(execUD);
      decode(limited(hex), true, i);
      expect(i.exec).toBe(execTooLong);
      expect(i.form).toBeNull();
      expect(i.len).toBe(15);
    }
  });

  it('raises #GP(0) and #UD through the CPU', () => {
    const calls: number[][] = [];
    const cpu = {
      fault: (v: number, code: number) => calls.push([v, code]),
      faultNoCode: (v: number) => calls.push([v]),
    };
    execTooLong(cpu as never, new Insn(execUD));
    execUD(cpu as never, new Insn(execUD));
    expect(calls).toEqual([[EXC_GP, 0], [EXC_UD]]);
  });
});

describe('LOCK', () => {
  it.each([
    ['f0 01 00', 'add_EvGv'], ['f0 86 00', 'xchg_EbGb'], ['f0 0f c7 08', 'cmpxchg8b_Mq'],
    ['f0 0f ba 28 01', 'bts_EvIb'], ['f0 f6 10', 'not_Eb'], ['f0 ff 00', 'inc_Ev'],
  ])('is allowed on the memory form of %s', (hex, form) => {
    const i = dec(hex);
    expect(key(i)).toBe(form);
    expect(i.lock).toBe(true);
  });

  it.each([
    ['f0 01 c0', 3], // register destination
    ['f0 86 c0', 3],
    ['f0 8b 00', 3], // MOV is not lockable
    ['f0 39 00', 3], // nor CMP
    ['f0 90', 2],
    ['f0 0f 20 c0', 4], // LOCK MOV CR0 is AMD's CR8; #UD here
    ['f0 0f a3 00', 4], // BT has no LOCK form
  ])('is #UD on %s (length %i still decoded)', (hex, len) => {
    const i = dec(hex);
    expect(i.exec).toBe(execUD);
    expect(i.form).toBeNull();
    expect(i.len).toBe(len);
  });
});

describe('ModRM and SIB', () => {
  it('decodes the eight 16-bit forms with their default segments', () => {
    const table: [string, number, number, number][] = [
      ['8b 00', EBX, ESI, DS], ['8b 01', EBX, EDI, DS], ['8b 02', EBP, ESI, SS], ['8b 03', EBP, EDI, SS],
      ['8b 04', ESI, -1, DS], ['8b 05', EDI, -1, DS], ['8b 46 10', EBP, -1, SS], ['8b 07', EBX, -1, DS],
    ];
    for (const [hex, base, index, seg] of table) {
      const i = dec(hex, false);
      expect([i.base, i.index, i.scale, i.seg], hex).toEqual([base, index, 0, seg]);
    }
    const direct = dec('8b 06 34 12', false);
    expect([direct.base, direct.index, direct.disp, direct.seg, direct.len]).toEqual([-1, -1, 0x1234, DS, 4]);
    const d8 = dec('8b 40 f0', false);
    expect([d8.disp, d8.len]).toEqual([-16, 3]);
    const d16 = dec('8b 82 00 80', false);
    expect([d16.base, d16.index, d16.disp, d16.seg, d16.len]).toEqual([EBP, ESI, -0x8000, SS, 4]);
    const over = dec('3e 8b 46 00', false);
    expect([over.seg, over.segOverride]).toEqual([DS, true]);
  });

  it('decodes SIB with no base, no index, and ESP/EBP bases', () => {
    const abs = dec('8b 04 25 78 56 34 12');
    expect([abs.base, abs.index, abs.disp, abs.seg, abs.len]).toEqual([-1, -1, 0x12345678, DS, 7]);
    const scaled = dec('8b 04 8d 00 10 00 00');
    expect([scaled.base, scaled.index, scaled.scale, scaled.disp, scaled.seg]).toEqual([-1, ECX, 2, 0x1000, DS]);
    const sp = dec('8b 04 24');
    expect([sp.base, sp.index, sp.seg, sp.len]).toEqual([ESP, -1, SS, 3]);
    const bp = dec('8b 44 25 08');
    expect([bp.base, bp.index, bp.disp, bp.seg, bp.len]).toEqual([EBP, -1, 8, SS, 4]);
    const bpIndex = dec('8b 04 2b'); // [ebx+ebp]: EBP as index keeps DS
    expect([bpIndex.base, bpIndex.index, bpIndex.seg]).toEqual([EBX, EBP, DS]);
    const disp32 = dec('8b 05 00 00 00 80');
    expect([disp32.base, disp32.disp, disp32.len]).toEqual([-1, 0x80000000 | 0, 6]);
    const ebp = dec('8b 85 fc ff ff ff');
    expect([ebp.base, ebp.disp, ebp.seg]).toEqual([EBP, -4, SS]);
    expect(dec('8b c1').mod).toBe(3);
  });

  it('reads moffs by address size, including under 67', () => {
    const a16 = dec('67 a1 34 12');
    expect([a16.len, a16.base, a16.index, a16.disp, a16.a32, a16.o32, a16.mod]).toEqual([4, -1, -1, 0x1234, false, true, 0]);
    const a32 = dec('67 a1 78 56 34 12', false);
    expect([a32.len, a32.disp, a32.a32, a32.o32]).toEqual([6, 0x12345678, true, false]);
    expect(dec('66 a3 78 56 34 12').len).toBe(6);
    expect(dec('64 a2 00 01', false).seg).toBe(FS);
  });

  it('treats mod as 3 for MOV CR/DR, whatever it says', () => {
    const i = dec('0f 22 1d'); // mod 0, rm 5 would take a disp32
    expect(key(i)).toBe('mov_CdRd');
    expect([i.len, i.mod, i.reg, i.rm]).toEqual([3, 3, 3, 5]);
    expect(dec('0f 21 bf').len).toBe(3);
  });
});

describe('forms and mandatory prefixes', () => {
  it.each([
    ['0f c7 30', 'vmptrld_Mq'], ['66 0f c7 30', 'vmclear_Mq'], ['f3 0f c7 30', 'vmxon_Mq'],
    ['66 f3 0f c7 30', 'vmxon_Mq'], ['f2 0f c7 30', '#UD'], ['66 0f c7 08', 'cmpxchg8b_Mq'],
    ['f3 90', 'pause'], ['66 f3 90', 'pause'], ['f2 90', 'nop'], ['66 90', 'nop'],
    ['66 0f 38 80 00', 'invept_GdMo'], ['0f 38 80 00', '#UD'], ['f3 0f 38 81 00', '#UD'],
    ['0f 01 c1', 'vmcall'], ['66 0f 01 c1', '#UD'], ['f3 0f 01 c8', '#UD'], ['66 0f 78 c0', '#UD'],
    ['0f 78 c0', 'vmread_EdGd'], ['f3 0f c7 38', '#UD'], ['f3 0f bc c0', 'bsf_GvEv'],
  ])('%s is %s', (hex, form) => expect(key(dec(hex))).toBe(form));

  it.each([
    '8f 08', 'c6 08', 'c7 c8', 'fe 10', 'ff 38', 'ff d8', 'ff e8', '0f 00 30', '0f 01 28', '0f 01 d0',
    '0f 01 f8', '0f 01 c0', '0f ba 00', '0f c7 00', '0f c7 f0', '62 c0', 'c4 c0', '8d c0', '0f b2 c0',
    '8e c8', '8e f0', '8c f8', '0f 20 c8', '0f 22 e8', '0f 3a 0f c0', '0f 0f', '0f 05', '0f 07',
    '0f 24 c0', '0f 26 c0', '0f aa', '0f a6', '0f a7', '0f ae f0', '0f 0d 00', '0f 58 c0', '0f 38 00 c0',
  ])('%s is #UD', (hex) => {
    const i = dec(hex + ' 00 00 00 00 00 00');
    expect(key(i)).toBe('#UD');
    expect(i.exec).toBe(execUD);
  });

  it('keeps the register forms that exist', () => {
    expect(key(dec('0f 01 e0'))).toBe('smsw_Ev');
    expect(key(dec('0f 01 f0'))).toBe('lmsw_Ew');
    expect(key(dec('8c c8'))).toBe('mov_EvSw');
    expect(key(dec('8e d8'))).toBe('mov_SwEw');
    expect(key(dec('0f 20 e0'))).toBe('mov_RdCd');
    expect(key(dec('0f 18 c0'))).toBe('nop_Ev');
    expect(key(dec('d9 c8'))).toBe('esc_Ev');
  });

  it('decodes immediates by kind', () => {
    const cases: [string, boolean, string, number, number, number][] = [
      ['83 c0 ff', true, 'add_EvIb', -1, 0, 3],
      ['80 c0 ff', true, 'add_EbIb', 0xff, 0, 3],
      ['6a 80', true, 'push_Ib', -128, 0, 2],
      ['6b c0 ff', true, 'imul_GvEvIb', -1, 0, 3],
      ['c0 e0 ff', true, 'shl_EbIb', 0xff, 0, 3],
      ['69 c0 78 56 34 12', true, 'imul_GvEvIz', 0x12345678, 0, 6],
      ['66 05 ff ff', true, 'add_eAXIz', 0xffff, 0, 4],
      ['05 ff ff ff ff', true, 'add_eAXIz', -1, 0, 5],
      ['b8 34 12', false, 'mov_ZvIv', 0x1234, 0, 3],
      ['eb fe', true, 'jmp_Jb', -2, 0, 2],
      ['66 e9 fe ff', true, 'jmp_Jz', -2, 0, 4],
      ['e8 00 00 00 80', true, 'call_Jz', 0x80000000 | 0, 0, 5],
      ['0f 84 fc ff', false, 'jz_Jz', -4, 0, 4],
      ['9a 78 56 34 12 00 10', true, 'call_Ap', 0x12345678, 0x1000, 7],
      ['66 9a 34 12 00 10', true, 'call_Ap', 0x1234, 0x1000, 6],
      ['c8 10 00 01', true, 'enter_IwIb', 0x10, 1, 4],
      ['c2 08 80', true, 'ret_Iw', 0x8008, 0, 3],
      ['e4 80', true, 'in_ALIb', 0x80, 0, 2],
      ['0f a4 c2 03', true, 'shld_EvGvIb', 3, 0, 4],
      ['c7 44 24 04 ff 00 00 00', true, 'mov_EvIz', 0xff, 0, 8],
      ['f6 05 00 10 00 00 7f', true, 'test_EbIb', 0x7f, 0, 7],
    ];
    for (const [hex, d32, form, imm, imm2, len] of cases) {
      const i = dec(hex, d32);
      expect([key(i), i.imm, i.imm2, i.len], hex).toEqual([form, imm, imm2, len]);
    }
  });

  it('puts the register of Z forms in reg', () => {
    expect([key(dec('41')), dec('41').reg]).toEqual(['inc_Zv', 1]);
    expect(dec('0f c9').reg).toBe(1);
    expect(dec('97').reg).toBe(7);
    expect(dec('b4 12').reg).toBe(4);
  });

  it('links the handler (the variant for its shape), or a handler reporting the missing family', () => {
    const i = dec('00 00');
    const handler = HANDLERS.get('add_EbGb') && selectHandler('add_EbGb', i);
    if (handler) expect(handler).toBe(VARIANTS.get('add_EbGb:m'));
    if (handler) expect(i.exec).toBe(handler);
    else expect(() => i.exec(null as never, i)).toThrow('unimplemented: add_EbGb');
  });

  it('lets a fetch fault propagate', () => {
    const fault = new Error('page fault');
    const reader: CodeReader = { byte: (k) => { if (k === 2) throw fault; return 0x8b; } };
    expect(() => decode(reader, true, new Insn(execUD))).toThrow(fault);
  });
});

describe('any byte sequence', () => {
  const SEED = 0x5eed;
  it(`decodes without throwing and resets every field (fast-check seed ${SEED})`, () => {
    console.log(`decoder.test: fast-check seed ${SEED}`);
    const reused = new Insn(execUD);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 15, maxLength: 15 }), fc.boolean(), (b, d32) => {
        decode(new ArrayReader(b), d32, reused);
        const fresh = new Insn(execTooLong);
        decode(new ArrayReader(b), d32, fresh);
        expect({ ...reused }).toEqual({ ...fresh });
        expect(reused.exec).toBe(fresh.exec);
        expect(reused.len).toBeGreaterThanOrEqual(1);
        expect(reused.len).toBeLessThanOrEqual(15);
      }),
      { seed: SEED, numRuns: 20_000 },
    );
  });
});

describe('disassemble', () => {
  it('renders Intel syntax', () => {
    const text = (hex: string, bits: 16 | 32, origin = 0) => disassemble(bytes(hex), bits, origin).map((l) => l.text);
    expect(text('01 d8', 32)).toEqual(['add eax, ebx']);
    expect(text('c6 40 10 05', 16)).toEqual(['mov byte [bx+si+0x10], 0x5']);
    expect(text('e9 31 02', 16, 0x1000)).toEqual(['jmp 0x1234']);
    expect(text('f3 a5 f3 a6 f2 ae aa', 32)).toEqual(['rep movsd', 'repe cmpsb', 'repne scasb', 'stosb']);
    expect(text('f0 83 44 24 fc ff', 32)).toEqual(['lock add dword [esp-0x4], -0x1']);
    expect(text('64 8b 04 8d 00 10 00 00', 32)).toEqual(['mov eax, dword [fs:ecx*4+0x1000]']);
    expect(text('ea 00 7c 00 00 08 00', 32)).toEqual(['jmp 0x8:0x7c00']);
    expect(text('0f 22 d8 8e d0 66 98 ff 1d 00 10 00 00', 32)).toEqual(['mov cr3, eax', 'mov ss, ax', 'cbw', 'call far [0x1000]']);
    expect(text('c8 08 00 02 0f 01 c1 e3 fe', 32)).toEqual(['enter 0x8, 0x2', 'vmcall', 'jecxz 0x7']);
  });

  it('reports offsets, bytes, #UD and a truncated tail', () => {
    expect(disassemble(bytes('90 0f 0b 0f 3a 66 0f'), 32, 0x7c00)).toEqual([
      { offset: 0x7c00, length: 1, bytes: '90', text: 'nop', invalid: false },
      { offset: 0x7c01, length: 2, bytes: '0f0b', text: 'ud2', invalid: false },
      { offset: 0x7c03, length: 2, bytes: '0f3a', text: '(bad)', invalid: true },
      { offset: 0x7c05, length: 2, bytes: '660f', text: '(bad: truncated)', invalid: true },
    ]);
    const long = disassemble(bytes('66'.repeat(16) + '90'), 16);
    expect(long.map((l) => [l.length, l.invalid])).toEqual([[15, true], [2, false]]);
  });
});

describe('trapdiff decode', () => {
  const capture = () => {
    let s = '';
    return { write: (t: string) => { s += t; return true; }, get text() { return s; } };
  };
  const run = (...args: string[]) => {
    const out = capture(), err = capture();
    const code = decodeCommand(args, out, err);
    return { code, out: out.text, err: err.text };
  };

  it('prints ADDRESS  HEXBYTES  TEXT lines', () => {
    const r = run('0f01c1 89d8', '--origin', '0x7c00');
    expect(r.code).toBe(0);
    expect(r.out).toBe('00007c00  0f01c1  vmcall\n00007c03  89d8    mov eax, ebx\n');
    expect(run('b8 34 12', '--bits', '16').out).toBe('0000  b83412  mov ax, 0x1234\n');
  });

  it('prints one JSON array with --json', () => {
    const r = run('--json', '--bits=16', 'cd10f0');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual([
      { offset: 0, length: 2, bytes: 'cd10', text: 'int 0x10', invalid: false },
      { offset: 2, length: 1, bytes: 'f0', text: '(bad: truncated)', invalid: true },
    ]);
  });

  it('reads --file', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'trapdiff-decode-')), 'code.bin');
    writeFileSync(file, bytes('f4'));
    expect(run('--file', file).out).toBe('00000000  f4  hlt\n');
  });

  it.each([
    [['0f0'], 'odd number of hex digits'],
    [['zz'], 'is not hex'],
    [[], 'nothing to decode'],
    [['--file', '/nonexistent/x.bin'], 'cannot read /nonexistent/x.bin'],
    [['90', '--bits', '64'], '--bits must be one of 16, 32'],
    [['90', '--origin', 'x'], '--origin must be'],
    [['90', '--frob'], 'unknown option --frob'],
  ])('rejects %j with exit status 2', (args, message) => {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^trapdiff decode: [^\n]*\n$/);
    expect(r.err).toContain(message);
  });
});
