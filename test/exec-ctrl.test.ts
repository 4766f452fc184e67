// Semantic tests of the near control transfers: the sixteen Jcc conditions (short and near),
// JMP/CALL/RET forms, 16-bit operand-size truncation of EIP, the CS-limit #GP raised before
// anything changes, and LOOPcc/JCXZ counting by address size.

import { describe, expect, test } from 'vitest';
import { CF, CS, EAX, EBX, ECX, ESP, OF, PF, SF, ZF } from '../src/cpu/constants.js';
import { asm, CODE_BASE, makeCpu, step, STACK_TOP } from './helpers/harness.js';
import { run } from './helpers/exec.js';

const CC = ['o', 'no', 'b', 'nb', 'z', 'nz', 'be', 'nbe', 's', 'ns', 'p', 'np', 'l', 'nl', 'le', 'nle'];

/** The SDM condition table, evaluated directly on a flags value. */
function expected(n: number, f: number): boolean {
  const cf = !!(f & CF), zf = !!(f & ZF), sf = !!(f & SF), of = !!(f & OF), pf = !!(f & PF);
  const base = [of, cf, zf, cf || zf, sf, pf, sf !== of, zf || sf !== of][n >> 1];
  return n & 1 ? !base : base;
}

describe('Jcc', () => {
  test('all sixteen conditions, short and near, against every flag combination that matters', () => {
    const combos = [0, CF, ZF, SF, OF, PF, CF | ZF, SF | OF, ZF | SF, ZF | OF, CF | SF | PF, CF | ZF | SF | OF | PF];
    for (const form of ['short', 'near']) {
      const code = asm(CC.map((cc) => `j${cc} ${form} $+0x40`).join('\n'), 32);
      const h = makeCpu('pm32', code);
      let at = CODE_BASE;
      for (let n = 0; n < 16; n++) {
        const len = form === 'short' ? 2 : 6;
        for (const f of combos) {
          h.cpu.setEflags(f | 2);
          h.cpu.eip = at;
          step(h.cpu, 1);
          expect(h.cpu.eip, `j${CC[n]} flags ${f}`).toBe(expected(n, f) ? at + 0x40 : at + len);
        }
        at += len;
      }
    }
  });

  test('conditions read lazy flags correctly after arithmetic', () => {
    const r = run('pm32', `
      xor ebx, ebx
      mov eax, 0x7fffffff
      add eax, 1                   ; OF, SF, not CF
      jo .a
      int3
    .a: jl .b                      ; SF != OF: not taken
      jng .b                       ; ZF = 0 and SF == OF: not taken
      inc ebx
    .b: cmp eax, 1
      ja .c                        ; 0x80000000 > 1 unsigned
      int3
    .c: jge .d                     ; signed -2^31 < 1: not taken
      inc ebx
    .d:
    `);
    expect(r.vector).toBe(-1);
    expect(r.cpu.regs[EBX]).toBe(2);
  });
});

describe('JMP/CALL/RET', () => {
  test('CALL rel and RET, CALL/JMP through a register and memory, RET imm16', () => {
    const r = run('pm32', `
      call f
      mov ebx, eax
      mov ecx, g
      call ecx
      mov dword [0x5000], h
      jmp [0x5000]
      int3
    f: mov eax, 1
      ret
    g: push dword 7
      push dword 8
      call k
      ret
    k: mov eax, [esp+4]
      ret 8
    h:
    `);
    expect(r.vector).toBe(-1);
    expect(r.cpu.regs[EBX]).toBe(1);
    expect(r.cpu.regs[EAX]).toBe(8);
    expect(r.cpu.regs[ESP]).toBe(STACK_TOP);
  });

  test('16-bit operand size truncates EIP; a 16-bit CALL pushes a word', () => {
    const h = makeCpu('real', asm('jmp short $-5', 16, 0));
    step(h.cpu, 1);
    expect(h.cpu.eip).toBe(0xfffb); // 5 back from offset 0: wraps at 16 bits
    const p = makeCpu('pm32', asm('db 0x66, 0xe8, 0x1c, 0x00 ; o16 call rel16: (0x10004 + 0x1c) & 0xffff', 32));
    step(p.cpu, 1);
    expect(p.cpu.eip).toBe(0x20);
    expect(p.cpu.regs[ESP]).toBe(STACK_TOP - 2);
    expect(p.mem.view.getUint16(STACK_TOP - 2, true)).toBe((CODE_BASE + 4) & 0xffff);
  });

  test('a target beyond the CS limit raises #GP(0) before anything changes', () => {
    for (const src of ['jmp near $+0x2000', 'call $+0x2000', 'jz near $+0x2000', 'mov ecx, 0x13000\ncall ecx', 'push dword 0x13000\nret']) {
      const code = asm(`nop\n${src}`, 32);
      const h = makeCpu('pm32', code);
      h.cpu.setSegCache(CS, 0x08, 0, 0x11fff, 0xc09b);
      h.cpu.setEflags(ZF | 2);
      const events: number[] = [];
      h.cpu.events = { onException: (v) => { events.push(v); throw new Error('stop'); } };
      const insns = src.split('\n').length;
      expect(() => step(h.cpu, 1 + insns)).toThrow('stop');
      expect(events).toEqual([13]);
      const sp = src.startsWith('push') ? STACK_TOP - 4 : STACK_TOP;
      expect(h.cpu.regs[ESP], src).toBe(sp);
      expect(h.cpu.eip, src).toBe(CODE_BASE + 1 + (insns > 1 ? 5 : 0)); // at the branch
    }
  });
});

describe('LOOP/JCXZ', () => {
  test('LOOP with a 67 prefix counts CX only; LOOPE/LOOPNE; JECXZ/JCXZ', () => {
    const r = run('pm32', `
      mov ecx, 0x10003
      xor eax, eax
    .l: inc eax
      a16 loop .l                  ; CX 3 -> 0: three passes, upper ECX kept
      mov ebx, ecx
      mov ecx, 10
      xor edx, edx
    .m: inc edx
      cmp edx, 4
      loopne .m                    ; stops when EDX is 4 (ZF), ECX 6
      jecxz .bad
      mov ecx, 0x10000
      a16 jcxz .ok
    .bad: int3
    .ok:
    `);
    expect(r.vector).toBe(-1);
    expect(r.cpu.regs[EAX]).toBe(3);
    expect(r.cpu.regs[EBX]).toBe(0x10000);
    expect(r.cpu.regs[2]).toBe(4);
  });

  test('LOOP to a target beyond the CS limit leaves ECX unchanged', () => {
    const code = asm('loop $+0x40', 32);
    const h = makeCpu('pm32', code);
    h.cpu.setSegCache(CS, 0x08, 0, CODE_BASE + 0x20, 0xc09b);
    h.cpu.regs[ECX] = 5;
    h.cpu.events = { onException: () => { throw new Error('stop'); } };
    expect(() => step(h.cpu, 1)).toThrow('stop');
    expect(h.cpu.regs[ECX]).toBe(5);
  });
});
