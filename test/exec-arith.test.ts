// Semantic tests of the arith, shift and bit families: memory forms, 16-bit addressing,
// LOCK, #DE, shifts in memory, SHLD/SHRD, the bit-offset addressing of BT and the
// model-specific choices (documented in the family files).

import { describe, expect, test } from 'vitest';
import { AF, CF, DS, EAX, EBX, ECX, EDI, EDX, ESI, OF, PF, SF, SS, ZF } from '../src/cpu/constants.js';
import { run } from './helpers/exec.js';

const D = 0x5000; // a data address in the flat 32-bit setup
const u32 = (v: number) => v >>> 0;

describe('ALU memory forms', () => {
  test('32-bit addressing: base + index*scale + disp, every encoding', () => {
    const r = run('pm32', `
      mov ebx, ${D - 0x20}
      mov esi, 4
      mov dword [ebx+esi*4+0x10], 100
      mov eax, 23
      add [ebx+esi*4+0x10], eax   ; 01: 123
      sub dword [${D}], 3         ; 83: 120
      add dword [${D}], 0x10000   ; 81: 0x10078
      adc byte [${D}], 0x90       ; 80: 0x78 + 0x90 = 0x108 -> 0x08, CF
      adc byte [${D}+1], 0        ; carry into the next byte
      cmp [${D}], eax             ; no write
      xor ecx, ecx
      or ecx, [${D}]              ; 0b
      and cl, [${D}]              ; 22
      sbb edx, edx                ; CF of AND is 0 -> 0
    `);
    expect(r.vector).toBe(-1);
    expect(r.mem.view.getUint32(D, true)).toBe(0x10108);
    expect(r.cpu.regs[ECX]).toBe(0x10108);
    expect(r.cpu.regs[EDX]).toBe(0);
  });

  test('16-bit addressing: BX+SI+disp, BP uses SS, offsets wrap at 64 KiB', () => {
    const r = run('real', `
      mov bx, 0x100
      mov si, 0x20
      mov word [bx+si+2], 0x1111
      add word [bx+si+2], 0x0101
      mov bp, 0x10
      mov di, 6
      mov word [bp+di], 0xabcd     ; SS:0x16
      mov bx, 0xffff
      mov si, 3
      mov byte [bx+si], 0x77       ; DS:0x0002
      inc byte [bx+si]
      neg word [bp+di]
      not word [bx+si+0x120]       ; DS:0x0122 (0x1212 -> 0xeded)
    `, ({ cpu }) => cpu.setSegCache(SS, 0x3000, 0x30000, 0xffff, 0x93));
    expect(r.vector).toBe(-1);
    expect(r.mem.view.getUint16(0x122, true)).toBe(0xeded);
    expect(r.mem.view.getUint16(0x30016, true)).toBe(-0xabcd & 0xffff);
    expect(r.mem.view.getUint8(2)).toBe(0x78);
    expect(r.cpu.getCF()).toBe(true); // NEG of nonzero
  });

  test('LOCK with a memory destination runs; the 82 alias of 80; INC/DEC keep CF', () => {
    const r = run('pm32', `
      mov dword [${D}], 41
      lock inc dword [${D}]
      mov al, 3
      db 0x82, 0xc0, 0x05      ; add al, 5
      stc
      dec al
      lock xadd [${D}], eax
    `);
    expect(r.vector).toBe(-1);
    expect(r.mem.view.getUint32(D, true)).toBe(42 + 7);
    expect(r.cpu.regs[EAX] & 0xff).toBe(42);
    expect(r.cpu.getCF()).toBe(false); // XADD's add
  });

  test('TEST, NOT and NEG in memory; TEST leaves memory alone', () => {
    const r = run('pm32', `
      mov dword [${D}], 0x80000000
      test dword [${D}], 0x80000000
      setnz bl
      neg dword [${D}]          ; stays 0x80000000, OF
      seto bh
      not word [${D}]
    `);
    expect(r.cpu.regs[EBX] & 0xffff).toBe(0x0101);
    expect(u32(r.mem.view.getUint32(D, true))).toBe(0x8000ffff);
  });
});

describe('multiplication and division', () => {
  test('memory operands; three-operand IMUL; CWD/CDQ/CBW/CWDE', () => {
    const r = run('pm32', `
      mov dword [${D}], -7
      mov eax, 6
      imul dword [${D}]           ; EDX:EAX = -42
      mov ebx, eax
      imul ecx, [${D}], 1000      ; -7000
      mov eax, -100
      cdq
      mov esi, 7
      idiv esi                    ; q -14, r -2
      mov edi, edx
      mov ax, -5
      cwde
    `);
    expect(r.vector).toBe(-1);
    expect(r.cpu.regs[EBX]).toBe(-42);
    expect(r.cpu.regs[ECX]).toBe(-7000);
    expect(r.cpu.regs[EDI]).toBe(-2);
    expect(r.cpu.regs[EAX]).toBe(-5);
    expect(r.cpu.regs[EDX]).toBe(-2);
  });

  for (const [name, src, regs] of [
    ['DIV by zero', 'div ecx', { [EAX]: 5, [EDX]: 0, [ECX]: 0 }],
    ['DIV quotient overflow', 'div ecx', { [EAX]: 0, [EDX]: 3, [ECX]: 3 }],
    ['IDIV -2^63 / -1', 'idiv ecx', { [EAX]: 0, [EDX]: -0x80000000, [ECX]: -1 }],
    ['IDIV 8-bit -32768 / -1', 'idiv cl', { [EAX]: 0x8000, [EDX]: 9, [ECX]: 0xff }],
    ['IDIV 16-bit quotient 0x8000', 'idiv cx', { [EAX]: 0x8000, [EDX]: 0, [ECX]: 1 }],
    ['AAM 0', 'aam 0', { [EAX]: 0x1234, [EDX]: 1, [ECX]: 2 }],
  ] as const) {
    test(`#DE before any change: ${name}`, () => {
      const r = run('pm32', `nop\n${src}\nnop`, ({ cpu }) => {
        for (const [k, v] of Object.entries(regs)) cpu.regs[Number(k)] = v;
      });
      expect(r.vector).toBe(0);
      expect(r.cpu.eip).toBe(0x10001); // at the faulting instruction
      for (const [k, v] of Object.entries(regs)) expect(r.cpu.regs[Number(k)]).toBe(v | 0);
    });
  }

  test('IDIV: the most negative quotient is allowed, remainder takes the dividend sign', () => {
    const r = run('pm32', 'idiv ecx', ({ cpu }) => {
      cpu.regs[EDX] = -1; cpu.regs[EAX] = -0x80000000 | 0; cpu.regs[ECX] = 1;
    });
    expect(r.vector).toBe(-1);
    expect(r.cpu.regs[EAX]).toBe(-0x80000000 | 0);
    const r2 = run('pm32', 'idiv ecx', ({ cpu }) => {
      cpu.regs[EDX] = -1; cpu.regs[EAX] = -7; cpu.regs[ECX] = 2;
    });
    expect([r2.cpu.regs[EAX], r2.cpu.regs[EDX]]).toEqual([-3, -1]);
  });

  test('DIV 64/32 with a large dividend is exact', () => {
    const r = run('pm32', 'div ecx', ({ cpu }) => {
      cpu.regs[EDX] = 0x12345678; cpu.regs[EAX] = 0x9abcdef0 | 0; cpu.regs[ECX] = 0xfedcba98 | 0;
    });
    const n = (0x12345678n << 32n) | 0x9abcdef0n, d = 0xfedcba98n;
    expect(BigInt(u32(r.cpu.regs[EAX]))).toBe(n / d);
    expect(BigInt(u32(r.cpu.regs[EDX]))).toBe(n % d);
  });

  test('SALC, and MUL/IMUL undefined flags follow the low half (Bochs)', () => {
    const r = run('pm32', `
      stc
      salc
      mov bl, al
      clc
      salc
      mov eax, 0x10000
      mul eax                      ; EDX:EAX = 1:0 -> ZF from the low half
    `);
    expect(r.cpu.regs[EBX] & 0xff).toBe(0xff);
    expect(r.cpu.regs[EDX]).toBe(1);
    const f = r.cpu.getEflags();
    expect(f & (CF | OF | ZF | AF)).toBe(CF | OF | ZF);
  });
});

describe('shifts in memory and double shifts', () => {
  test('memory shifts and rotates; count 0 changes no flags', () => {
    const r = run('pm32', `
      mov dword [${D}], 0x80000001
      shl dword [${D}], 4          ; 0x00000010, CF = 0 (bit 28)
      rcr dword [${D}], 1          ; CF in -> 0x00000008
      mov cl, 32
      stc
      rol dword [${D}], cl         ; masked count 0: nothing
      setc bl
      mov word [${D}+4], 0x8001
      sar word [${D}+4], 1         ; 0xc000, CF = 1
      setc bh
    `);
    expect(r.mem.view.getUint32(D, true)).toBe(0x8);
    expect(r.mem.view.getUint16(D + 4, true)).toBe(0xc000);
    expect(r.cpu.regs[EBX] & 0xffff).toBe(0x0101);
  });

  test('SHLD/SHRD 32 and 16 bits, including the 16-bit count > 16 model choice', () => {
    const r = run('pm32', `
      mov eax, 0x12345678
      mov ebx, 0x9abcdef0
      shld eax, ebx, 8            ; 0x3456789a
      mov ecx, 0x11112222
      mov edx, 0x33334444
      shrd ecx, edx, 4            ; 0x41111222
      mov si, 0x1234
      mov di, 0xabcd
      shld si, di, 20             ; D:S:D pattern: (S << 4) | (D >> 12) = 0xbcd1
      mov word [${D}], 0x1234
      mov cl, 20
      shrd [${D}], di, cl         ; (S >> 4) | (D << 12) = 0x4abc
    `);
    expect(r.cpu.regs[EAX]).toBe(0x3456789a);
    expect(u32(r.cpu.regs[ECX] & ~0xff)).toBe(0x41111200); // CL reused as a count below
    expect(r.cpu.regs[ESI] & 0xffff).toBe(0xbcd1);
    expect(r.mem.view.getUint16(D, true)).toBe(0x4abc);
  });
});

describe('bit instructions', () => {
  test('BT memory with a register offset is signed and addresses beyond the operand', () => {
    const r = run('pm32', `
      mov dword [${D}-4], 0x80000000
      mov dword [${D}], 0
      mov dword [${D}+4], 8
      mov eax, -1
      bt dword [${D}], eax         ; bit 31 of [D-4]
      setc bl
      mov eax, 35
      bts dword [${D}], eax        ; bit 3 of [D+4]: already set
      setc bh
      bt dword [${D}], 35          ; immediate: modulo 32 -> bit 3 of [D]
      setc cl
      mov ax, -17
      btc word [${D}], ax          ; word at D-4, bit 15
      setc ch
    `);
    expect(r.vector).toBe(-1);
    expect(r.cpu.regs[EBX] & 0xffff).toBe(0x0101);
    expect(r.cpu.regs[ECX] & 0xffff).toBe(0x0000);
    expect(r.mem.view.getUint32(D - 4, true)).toBe(0x80008000);
    expect(r.mem.view.getUint32(D + 4, true)).toBe(8);
  });

  test('BT memory offsets wrap at the 16-bit address size', () => {
    const r = run('real', `
      mov byte [0xfffe], 0
      mov word [0xfffe], 0x0002
      mov bx, 0
      mov ax, -15                  ; word at BX - 2 = 0xfffe, bit 1
      bt [bx], ax
      setc cl
    `);
    expect(r.cpu.regs[ECX] & 0xff).toBe(1);
  });

  test('BSF/BSR zero source: ZF set, destination unchanged; BSWAP 32 and 16', () => {
    const r = run('pm32', `
      mov eax, 0x11223344
      xor ebx, ebx
      bsf eax, ebx
      setz cl
      mov edx, 0x00f00000
      bsr esi, edx
      bsf edi, edx
      mov ebx, 0x11223344
      bswap ebx
      mov edx, 0xaabbccdd
      db 0x66
      bswap edx
    `);
    expect(r.cpu.regs[EAX]).toBe(0x11223344);
    expect(r.cpu.regs[ECX] & 0xff).toBe(1);
    expect(r.cpu.regs[ESI]).toBe(23);
    expect(r.cpu.regs[EDI]).toBe(20);
    expect(r.cpu.regs[EBX]).toBe(0x44332211);
    expect(u32(r.cpu.regs[EDX])).toBe(0xaabb0000);
  });

  test('CMOVcc reads its source even when false (faults apply) and leaves the destination', () => {
    const ok = run('pm32', `
      mov eax, 0x12345678
      mov dword [${D}], 5
      cmp eax, eax
      cmovnz eax, [${D}]
      cmovz bx, [${D}]
    `);
    expect(ok.cpu.regs[EAX]).toBe(0x12345678);
    expect(ok.cpu.regs[EBX] & 0xffff).toBe(5);
    const fault = run('pm32', `
      cmp eax, eax
      cmovnz eax, [0x7000]
    `, ({ cpu }) => cpu.setSegCache(DS, 0x10, 0, 0x6fff, 0xc093));
    expect(fault.vector).toBe(13);
  });

  test('SETcc to memory and all sixteen conditions against the flags', () => {
    // For each flag combination, SETcc n must agree with the SDM condition table.
    for (const flags of [0, CF, ZF, SF, OF, PF, SF | OF, ZF | SF, CF | ZF, OF | ZF, CF | PF | SF]) {
      const src = Array.from({ length: 16 }, (_, n) => `db 0x0f, 0x${(0x90 + n).toString(16)}, 0x05\ndd ${D + n}`).join('\n');
      const r = run('pm32', src, ({ cpu }) => cpu.setEflags(flags | 2 | AF));
      const cf = !!(flags & CF), zf = !!(flags & ZF), sf = !!(flags & SF), of = !!(flags & OF), pf = !!(flags & PF);
      const base = [of, cf, zf, cf || zf, sf, pf, sf !== of, zf || sf !== of];
      for (let n = 0; n < 16; n++) expect(r.mem.ram[D + n], `cc ${n} flags ${flags}`).toBe(base[n >> 1] !== !!(n & 1) ? 1 : 0);
    }
  });
});
