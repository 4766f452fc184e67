// Semantic tests of the stack family: PUSH/POP forms and their ESP corner cases, PUSHA/POPA,
// ENTER with nesting levels, LEAVE, 16-bit stacks and restartability after faults.

import { describe, expect, test } from 'vitest';
import { DS, EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP, SS } from '../src/cpu/constants.js';
import { STACK_TOP } from './helpers/harness.js';
import { run } from './helpers/exec.js';

const D = 0x5000;
const u32 = (v: number) => v >>> 0;

describe('PUSH/POP', () => {
  test('PUSH ESP pushes the old value; POP ESP loads the popped value', () => {
    const r = run('pm32', `
      push esp
      pop eax
      push dword 0x4000
      pop esp
    `);
    expect(r.cpu.regs[EAX]).toBe(STACK_TOP);
    expect(r.cpu.regs[ESP]).toBe(0x4000);
  });

  test('POP [ESP+k] addresses with the incremented ESP; PUSH [ESP] with the old one', () => {
    const r = run('pm32', `
      push dword 0x11111111
      push dword 0x22222222
      pop dword [esp+4]            ; ESP after the pop = TOP-4: writes TOP
      push dword [esp]             ; pushes [TOP-4] = 0x11111111
      pop ebx
      push dword 0x33333333
      push dword 0x44444444
      pop dword [esp]              ; ESP is incremented first: overwrites the 0x33333333 slot
      pop ecx
    `);
    expect(r.cpu.regs[ECX]).toBe(0x44444444);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP - 4);
    expect(r.mem.view.getUint32(STACK_TOP, true)).toBe(0x22222222);
    expect(r.cpu.regs[EBX]).toBe(0x11111111);
  });

  test('a faulting POP to memory leaves ESP unchanged', () => {
    const r = run('pm32', `
      push dword 5
      pop dword [0x7000]
    `, ({ cpu }) => cpu.setSegCache(DS, 0x10, 0, 0x6fff, 0xc093));
    expect(r.vector).toBe(13);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP - 4);
  });

  test('immediates: PUSH imm8 sign-extends; 16-bit operand size pushes words', () => {
    const r = run('pm32', `
      push byte -2
      pop eax
      push word 0x1234
      push word -3
      pop bx
      pop cx
    `);
    expect(r.cpu.regs[EAX]).toBe(-2);
    expect(r.cpu.regs[EBX] & 0xffff).toBe(0xfffd);
    expect(r.cpu.regs[ECX] & 0xffff).toBe(0x1234);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP);
  });

  test('a 16-bit stack wraps SP and keeps the upper half of ESP', () => {
    const r = run('real', `
      push ax
      push word 0x5678
      pop cx
      pop dx
    `, ({ cpu }) => { cpu.regs[ESP] = 0x12340000; cpu.regs[EAX] = 0xabcd; cpu.setSegCache(SS, 0x2000, 0x20000, 0xffff, 0x93); });
    expect(r.mem.view.getUint16(0x2fffe, true)).toBe(0xabcd);
    expect(r.cpu.regs[ECX] & 0xffff).toBe(0x5678);
    expect(r.cpu.regs[EDX] & 0xffff).toBe(0xabcd);
    expect(u32(r.cpu.regs[ESP])).toBe(0x12340000);
  });
});

describe('PUSHA/POPA', () => {
  test('PUSHAD stores the original ESP; POPAD skips it', () => {
    const r = run('pm32', `
      mov eax, 1
      mov ecx, 2
      mov edx, 3
      mov ebx, 4
      mov ebp, 6
      mov esi, 7
      mov edi, 8
      pushad
      mov dword [esp+12], 0x44       ; the saved ESP slot is ignored by POPAD; EBX slot is [esp+16]
      mov dword [esp+16], 0x55
      xor eax, eax
      xor edi, edi
      popad
    `);
    expect(r.mem.view.getUint32(STACK_TOP - 20, true)).toBe(0x44);
    expect([1, 2, 3, 0x55, STACK_TOP, 6, 7, 8]).toEqual(Array.from(r.cpu.regs));
  });

  test('PUSHA (16-bit) and POPA', () => {
    const r = run('real', `
      mov ax, 0x1111
      mov di, 0x8888
      pusha
      mov ax, 0
      mov di, 0
      popa
    `);
    expect(r.cpu.regs[EAX] & 0xffff).toBe(0x1111);
    expect(r.cpu.regs[EDI] & 0xffff).toBe(0x8888);
    expect(r.mem.view.getUint16(STACK_TOP - 16, true)).toBe(0x8888);
    expect(r.mem.view.getUint16(STACK_TOP - 10, true)).toBe(STACK_TOP);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP);
  });

  test('a faulting PUSHAD leaves ESP unchanged', () => {
    const r = run('pm32', 'pushad', ({ cpu }) => {
      cpu.regs[ESP] = 0x1010;
      // Expand-down stack whose lowest valid offset is 0x1001: the last stores fall below it.
      cpu.setSegCache(SS, 0x10, 0, 0x1000, 0xc097);
    });
    expect(r.vector).toBe(12);
    expect(r.cpu.regs[ESP]).toBe(0x1010);
  });
});

describe('ENTER/LEAVE', () => {
  test('ENTER level 0 and 1, LEAVE', () => {
    const r = run('pm32', `
      mov ebp, 0x7777
      enter 0x20, 0
      mov ebx, ebp
      mov ecx, esp
      leave
      mov edx, ebp
      mov esi, esp
      enter 8, 1
      mov edi, [esp+8]             ; the frame pointer pushed by level 1
    `);
    expect(r.cpu.regs[EBX]).toBe(STACK_TOP - 4);
    expect(r.cpu.regs[ECX]).toBe(STACK_TOP - 4 - 0x20);
    expect(r.cpu.regs[EDX]).toBe(0x7777);
    expect(r.cpu.regs[ESI]).toBe(STACK_TOP);
    expect(r.cpu.regs[EBP]).toBe(STACK_TOP - 4);
    expect(r.cpu.regs[EDI]).toBe(STACK_TOP - 4);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP - 8 - 8);
  });

  test('ENTER level 3 copies two outer frame pointers', () => {
    const r = run('pm32', `
      mov ebp, ${D}
      mov dword [${D}-4], 0xaaaa
      mov dword [${D}-8], 0xbbbb
      enter 4, 3
    `);
    const top = STACK_TOP;
    expect(r.mem.view.getUint32(top - 4, true)).toBe(D); // old EBP
    expect(r.mem.view.getUint32(top - 8, true)).toBe(0xaaaa);
    expect(r.mem.view.getUint32(top - 12, true)).toBe(0xbbbb);
    expect(r.mem.view.getUint32(top - 16, true)).toBe(top - 4); // frame pointer
    expect(r.cpu.regs[EBP]).toBe(top - 4);
    expect(r.cpu.regs[ESP]).toBe(top - 16 - 4);
  });

  test('ENTER 16-bit in real mode with nesting', () => {
    const r = run('real', `
      mov bp, 0x6000
      mov word [0x6000-2], 0x1234
      enter 6, 2
    `);
    expect(r.mem.view.getUint16(STACK_TOP - 2, true)).toBe(0x6000);
    expect(r.mem.view.getUint16(STACK_TOP - 4, true)).toBe(0x1234);
    expect(r.mem.view.getUint16(STACK_TOP - 6, true)).toBe(STACK_TOP - 2);
    expect(r.cpu.regs[EBP] & 0xffff).toBe(STACK_TOP - 2);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP - 6 - 6);
  });

  test('ENTER whose allocation leaves the stack segment faults with nothing changed', () => {
    const r = run('pm32', 'enter 0x8000, 0', ({ cpu }) => {
      cpu.regs[EBP] = 0x1234;
      cpu.setSegCache(SS, 0x10, 0, 0x1000, 0xc097); // expand-down: offsets above 0x1000 only
    });
    expect(r.vector).toBe(12);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP);
    expect(r.cpu.regs[EBP]).toBe(0x1234);
  });

  test('LEAVE 16-bit; a faulting LEAVE changes nothing', () => {
    const r = run('real', `
      mov bp, 0x7000
      mov word [0x7000], 0x4321
      leave
    `);
    expect(r.cpu.regs[EBP] & 0xffff).toBe(0x4321);
    expect(r.cpu.regs[ESP]).toBe(0x7002);
    const f = run('pm32', 'leave', ({ cpu }) => {
      cpu.regs[EBP] = 0x7000;
      cpu.setSegCache(SS, 0x10, 0, 0x6fff, 0xc093);
    });
    expect(f.vector).toBe(12);
    expect(f.cpu.regs[ESP]).toBe(STACK_TOP);
  });
});
