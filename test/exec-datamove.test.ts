// Semantic tests of the datamove family: MOV forms (moffs, immediates, overrides), XCHG, LEA
// across address/operand sizes, MOVZX/MOVSX, CMPXCHG (the destination is written even on
// failure), CMPXCHG8B, XADD, XLAT, LAHF/SAHF, the flag instructions, hint NOPs and BOUND.

import { describe, expect, test } from 'vitest';
import { AF, CF, DF, DS, EAX, EBP, EBX, ECX, EDI, EDX, ES, ESI, FS, PF, SF, ZF } from '../src/cpu/constants.js';
import { run } from './helpers/exec.js';

const D = 0x5000;
const u32 = (v: number) => v >>> 0;
/** A read-only data segment (type 1: read-only, accessed) covering all of memory. */
const readOnlyDs = ({ cpu }: { cpu: import('../src/cpu/cpu.js').Cpu }) => cpu.setSegCache(DS, 0x10, 0, 0xffffffff, 0xc091);

describe('MOV', () => {
  test('moffs forms in real mode (16-bit offsets) with a segment override', () => {
    const r = run('real', `
      mov al, 0x5a
      mov [0x1234], al
      mov ax, 0xbeef
      mov [es:0x10], ax
      mov bl, [0x1234]
      mov cx, [es:0x10]
    `, ({ cpu }) => cpu.setSegCache(ES, 0x200, 0x2000, 0xffff, 0x93));
    expect(r.mem.ram[0x1234]).toBe(0x5a);
    expect(r.mem.view.getUint16(0x2010, true)).toBe(0xbeef);
    expect(r.cpu.regs[EBX] & 0xff).toBe(0x5a);
    expect(r.cpu.regs[ECX] & 0xffff).toBe(0xbeef);
  });

  test('moffs forms in 32-bit code, with a 67 prefix (16-bit offset) and FS override', () => {
    const r = run('pm32', `
      mov eax, 0xcafebabe
      mov [0x5000], eax
      mov ebx, [0x5000]           ; 8B form for comparison
      mov ax, 0
      a16 mov ax, [0x5002]        ; 67 A1: moffs16
      fs mov [0x10], al           ; A2 with override: FS base 0x7000
    `, ({ cpu }) => cpu.setSegCache(FS, 0x10, 0x7000, 0xffffffff, 0xc093));
    expect(r.cpu.regs[EAX] >>> 0).toBe(0xcafecafe);
    expect(r.cpu.regs[EBX] >>> 0).toBe(0xcafebabe);
    expect(r.mem.ram[0x7010]).toBe(0xfe);
  });

  test('immediates into byte registers, 16-bit registers keep their upper half', () => {
    const r = run('pm32', `
      mov eax, 0x11223344
      mov ah, 0x99
      mov ebx, 0xffffffff
      mov bx, 0x1234
      mov byte [${D}], 0x80
      mov word [${D}+2], 0x7fff
      mov dword [${D}+4], -2
      mov eax, [${D}+4]
      mov [${D}+8], ax
    `);
    expect(u32(r.cpu.regs[EAX])).toBe(0xfffffffe);
    expect(u32(r.cpu.regs[EBX])).toBe(0xffff1234);
    expect(u32(r.mem.view.getUint32(D, true))).toBe(0x7fff0080);
    expect(r.mem.view.getUint16(D + 8, true)).toBe(0xfffe);
  });
});

describe('XCHG, LEA, MOVZX/MOVSX', () => {
  test('XCHG register/memory and the 90+r forms at both operand sizes', () => {
    const r = run('pm32', `
      mov dword [${D}], 0xaaaaaaaa
      mov ecx, 0x12345678
      xchg [${D}], ecx
      mov eax, 0x11112222
      mov edx, 0x33334444
      xchg dx, ax
      xchg bl, bh
    `, ({ cpu }) => { cpu.regs[EBX] = 0x1234; });
    expect(u32(r.cpu.regs[ECX])).toBe(0xaaaaaaaa);
    expect(r.mem.view.getUint32(D, true)).toBe(0x12345678);
    expect(u32(r.cpu.regs[EAX])).toBe(0x11114444);
    expect(u32(r.cpu.regs[EDX])).toBe(0x33332222);
    expect(r.cpu.regs[EBX]).toBe(0x3412);
  });

  test('LEA at every operand/address size combination', () => {
    const r = run('pm32', `
      mov ebx, 0x1fff0
      mov esi, 0x30
      lea eax, [ebx+esi*2+5]      ; 0x20055
      lea cx, [ebx+esi*2+5]       ; truncated to 16 bits: 0x0055
      a16 lea edx, [bx+si+0x10]   ; 16-bit address, zero-extended: (0xfff0+0x30+0x10) & 0xffff
      a16 o16 lea di, [bp+si]
    `, ({ cpu }) => { cpu.regs[ECX] = 0x77770000; cpu.regs[EBP] = 0xfffe; cpu.regs[EDI] = 0x55550000; });
    expect(r.cpu.regs[EAX]).toBe(0x20055);
    expect(u32(r.cpu.regs[ECX])).toBe(0x77770055);
    expect(r.cpu.regs[EDX]).toBe(0x30);
    expect(u32(r.cpu.regs[EDI])).toBe(0x5555002e);
  });

  test('MOVZX/MOVSX from registers and memory', () => {
    const r = run('pm32', `
      mov dword [${D}], 0x8081
      movzx eax, byte [${D}]
      movsx ebx, byte [${D}]
      movsx ecx, word [${D}]
      movzx dx, bl
      movsx si, bl
    `, ({ cpu }) => { cpu.regs[EDX] = 0x11110000; cpu.regs[ESI] = 0x22220000; });
    expect(r.cpu.regs[EAX]).toBe(0x81);
    expect(r.cpu.regs[EBX]).toBe(-127);
    expect(r.cpu.regs[ECX]).toBe(0xffff8081 | 0);
    expect(u32(r.cpu.regs[EDX])).toBe(0x11110081);
    expect(u32(r.cpu.regs[ESI])).toBe(0x2222ff81);
  });
});

describe('CMPXCHG, CMPXCHG8B, XADD', () => {
  test('CMPXCHG success and failure, register and memory', () => {
    const r = run('pm32', `
      mov dword [${D}], 7
      mov eax, 7
      mov ecx, 9
      cmpxchg [${D}], ecx          ; equal: [D] = 9, ZF
      setz bl
      cmpxchg [${D}], ecx          ; EAX 7 != 9: EAX = 9, ZF = 0
      setz bh
      mov dl, 0x40
      mov al, 0x40
      mov cl, 0x55
      cmpxchg dl, cl
    `);
    expect(r.mem.view.getUint32(D, true)).toBe(9);
    expect(r.cpu.regs[EBX] & 0xffff).toBe(0x0001);
    expect(r.cpu.regs[EAX] & 0xff).toBe(0x40);
    expect(r.cpu.regs[EDX] & 0xff).toBe(0x55);
  });

  test('CMPXCHG writes its destination even on failure: a read-only segment faults', () => {
    const r = run('pm32', `
      mov eax, 1
      cmpxchg [${D}], ecx
    `, readOnlyDs);
    expect(r.vector).toBe(13);
    expect(r.cpu.regs[EAX]).toBe(1);
  });

  test('CMPXCHG8B success and failure; only ZF changes', () => {
    const r = run('pm32', `
      mov dword [${D}], 0x11111111
      mov dword [${D}+4], 0x22222222
      mov eax, 0x11111111
      mov edx, 0x22222222
      mov ebx, 0xaaaaaaaa
      mov ecx, 0xbbbbbbbb
      stc
      cmpxchg8b [${D}]
      setz [${D}+16]
      setc [${D}+17]
      cmpxchg8b [${D}]             ; EDX:EAX now differ: loaded
      setz [${D}+18]
    `);
    expect(u32(r.mem.view.getUint32(D, true))).toBe(0xaaaaaaaa);
    expect(u32(r.mem.view.getUint32(D + 4, true))).toBe(0xbbbbbbbb);
    expect([...r.mem.ram.subarray(D + 16, D + 19)]).toEqual([1, 1, 0]);
    expect(u32(r.cpu.regs[EAX])).toBe(0xaaaaaaaa);
    expect(u32(r.cpu.regs[EDX])).toBe(0xbbbbbbbb);
    const ro = run('pm32', `cmpxchg8b [${D}]`, readOnlyDs);
    expect(ro.vector).toBe(13);
  });

  test('XADD with the same register twice, and in memory', () => {
    const r = run('pm32', `
      mov eax, 5
      xadd eax, eax
      mov dword [${D}], 0xffffffff
      mov ecx, 1
      xadd [${D}], ecx
      setc bl
    `);
    expect(r.cpu.regs[EAX]).toBe(10);
    expect(r.mem.view.getUint32(D, true)).toBe(0);
    expect(r.cpu.regs[ECX]).toBe(-1);
    expect(r.cpu.regs[EBX] & 0xff).toBe(1);
  });
});

describe('XLAT, LAHF/SAHF, flag instructions, NOPs, BOUND', () => {
  test('XLAT with 16- and 32-bit addressing and an override', () => {
    const r = run('pm32', `
      mov byte [${D}+0x90], 0x42
      mov ebx, ${D}
      mov al, 0x90
      xlatb
      mov cl, al
      mov al, 0x03
      es xlatb
    `, ({ mem }) => { mem.ram[D + 3] = 0x99; });
    expect(r.cpu.regs[ECX] & 0xff).toBe(0x42);
    expect(r.cpu.regs[EAX] & 0xff).toBe(0x99);
    const r16 = run('real', `
      mov bx, 0xffff
      mov al, 2
      xlatb                        ; DS:(BX + AL) wraps to 1
    `, ({ mem }) => { mem.ram[1] = 0x77; });
    expect(r16.cpu.regs[EAX] & 0xff).toBe(0x77);
  });

  test('LAHF/SAHF, CLC/STC/CMC, CLD/STD', () => {
    const r = run('pm32', `
      mov ah, 0xff
      sahf
      lahf
      mov bl, ah
      mov ah, 0
      sahf
      lahf
      mov bh, ah
      stc
      cmc
      cmc
      std
    `);
    expect(r.cpu.regs[EBX] & 0xff).toBe(0xd7); // SF ZF AF PF CF and bit 1
    expect((r.cpu.regs[EBX] >> 8) & 0xff).toBe(0x02);
    expect(r.cpu.getEflags() & (CF | DF | ZF | SF | AF | PF)).toBe(CF | DF);
  });

  test('hint NOPs and PAUSE touch no memory', () => {
    const r = run('pm32', `
      nop dword [0x7ffffff0]
      prefetcht0 [0x7ffffff0]
      pause
    `, ({ cpu }) => cpu.setSegCache(DS, 0x10, 0, 0xfff, 0xc093));
    expect(r.vector).toBe(-1);
  });

  test('BOUND in range, below, above (#BR), 16 and 32 bits', () => {
    const src = (v: number, o16 = false) => `
      mov dword [${D}], -5
      mov dword [${D}+4], 100
      mov word [${D}+8], 10
      mov word [${D}+10], 20
      mov eax, ${v}
      ${o16 ? `bound ax, [${D}+8]` : `bound eax, [${D}]`}
    `;
    expect(run('pm32', src(-5)).vector).toBe(-1);
    expect(run('pm32', src(100)).vector).toBe(-1);
    expect(run('pm32', src(-6)).vector).toBe(5);
    expect(run('pm32', src(101)).vector).toBe(5);
    expect(run('pm32', src(15, true)).vector).toBe(-1);
    expect(run('pm32', src(0x10009, true)).vector).toBe(5); // only AX counts: 9 < 10
  });
});
