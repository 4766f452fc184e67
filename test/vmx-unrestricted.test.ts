// Unrestricted guests (SDM Vol. 3C 25.6 "unrestricted guest", 26.3.1.2, 27.2.2, 27.3): unit cases
// on the test harness, and a ROM on which a real-mode guest under EPT (CR0.PE = PG = 0, CS F000H on the ROM, its IVT on guest-physical
// page 0, which the EPT maps to host frame 73000H) loads segments, takes INT n and an injected
// interrupt through the IVT, switches to protected mode and back, makes VM exits (CPUID, VMCALL,
// an exception by the bitmap, EPT violations, one during INT n) whose saved state the host
// prints; run on trapdiff and on Bochs's Westmere model.

import { describe, expect, it } from 'vitest';
import { CR0_PE, CR0_PG, CS, ECX } from '../src/cpu/constants.js';
import { CONTROL_MUST1 } from '../src/cpu/vmx/capabilities.js';
import { PROC, PROC2_EPT, PROC2_UNRESTRICTED_GUEST, PROC_SECONDARY } from '../src/cpu/vmx/controls.js';
import { vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { eptControls, eptRun, FRAME_A, FRAME_B, identityEpt, PAGE, RWX, setLeaf, WB } from './helpers/ept.js';
import { eptOn, eptRom, leafRom } from './helpers/ept-rom.js';
import { run } from './helpers/exec.js';
import type { Harness } from './helpers/harness.js';
import { compareOnRom } from './helpers/rom.js';
import { program, vmxReady, w } from './helpers/vmx.js';

describe('unrestricted guest (real mode and unpaged protected mode under EPT)', () => {
  /** A real-mode guest at CS 1000H (base 10000H) running the 16-bit code at `guest16`. */
  const REAL_GUEST = [
    'mov eax, cr0', `and eax, ~${(CR0_PE | CR0_PG) >>> 0}`, 'mov ebx, 0x6800', 'vmwrite ebx, eax',
    ...[0, 1, 2, 3, 4, 5].flatMap((s) => [w(0x0800 + 2 * s, s === CS ? 0x1000 : 0), w(0x6806 + 2 * s, s === CS ? 0x10000 : 0),
      w(0x4800 + 2 * s, 0xffff), w(0x4814 + 2 * s, s === CS ? 0x9b : 0x93)]),
    w(0x681e, 'guest16 - 0x10000'), w(0x681c, 0x7000),
  ];
  const realRun = (code16: string, setup?: (h: Harness) => void, proc2 = PROC2_UNRESTRICTED_GUEST, writes: string[] = []) =>
    eptRun(`guest_insn: jmp $\nbits 16\nguest16:\n${code16}\nbits 32\nguest_next:`, setup, { proc2, writes: [...REAL_GUEST, ...writes] });
  it('a real-mode guest reads through the EPT (linear = guest-physical) and exits on CPUID', () => {
    const e = realRun(`mov ax, ${PAGE >> 4}\nmov ds, ax\nmov ecx, [0]\ncpuid`, setLeaf(PAGE, FRAME_A | WB | RWX));
    expect(e.reason).toBe(10);
    expect(e.cpu.regs[ECX] >>> 0).toBe(0xaaaaaaaa);
    expect(vmcsRead(e.cpu, 0x6800) & (CR0_PE | CR0_PG)).toBe(0);
    expect(vmcsRead(e.cpu, 0x0802)).toBe(0x1000);
  });
  it('an EPT violation in real mode reports the linear address (segment base + offset)', () => {
    const e = realRun(`mov ax, ${PAGE >> 4}\nmov ds, ax\nmov byte [0x33], 1`, setLeaf(PAGE, PAGE | WB | 5));
    expect([e.reason, e.qualification, e.gpa, e.linear]).toEqual([48, 0x1aa, PAGE + 0x33, PAGE + 0x33]);
  });
  it('a #GP in real mode that exits by the exception bitmap: no error code (27.2.2 bit 11 = 0)', () => {
    const e = realRun('mov ax, [0xffff]', () => {}, PROC2_UNRESTRICTED_GUEST, [w(0x4004, 1 << 13)]);
    expect([e.reason, vmcsRead(e.cpu, 0x4404) >>> 0]).toEqual([0, 0x8000030d]);
  });
  it('the guest enters protected mode (MOV CR0 sets PE, far jump) and unpaged protected mode runs under EPT', () => {
    const e = realRun('mov eax, cr0\nor al, 1\nmov cr0, eax\njmp dword 0x08:pm\nbits 32\npm: mov ax, 0x10\nmov ds, ax\n' +
      `mov ecx, [${PAGE}]\ncpuid\nbits 16`, setLeaf(PAGE, FRAME_B | WB | RWX));
    expect(e.reason).toBe(10);
    expect(vmcsRead(e.cpu, 0x6800) & (CR0_PE | CR0_PG)).toBe(CR0_PE);
    expect([vmcsRead(e.cpu, 0x0802), e.cpu.regs[ECX] >>> 0]).toEqual([8, 0xbbbbbbbb]);
  });
  it('a protected-mode guest may clear PG and PE when unrestricted', () => {
    const e = eptRun(`mov eax, cr0\nand eax, 0x7fffffff\nmov cr0, eax\nguest_insn: cpuid\nguest_next:`, () => {}, { proc2: PROC2_UNRESTRICTED_GUEST });
    expect(e.reason).toBe(10);
    expect(vmcsRead(e.cpu, 0x6800) & CR0_PG).toBe(0);
  });
  it('without "unrestricted guest", clearing CR0.PG in the guest is #GP(0)', () => {
    const r = run('pm32', program(eptControls(PROC2_EPT), 'mov eax, cr0\nand eax, 0x7fffffff\nguest_insn: mov cr0, eax\nguest_next:'), (h) => {
      vmxReady(h);
      identityEpt(h);
    });
    expect([r.vector, r.errorCode, r.cpu.vmx.nonRoot]).toEqual([13, 0, true]);
  });
  it('VM entry refuses "unrestricted guest" without "enable EPT" (VMfailValid 7)', () => {
    const r = run('pm32', program([w(0x4002, CONTROL_MUST1[PROC] | PROC_SECONDARY), w(0x401e, PROC2_UNRESTRICTED_GUEST)],
      'guest_insn: cpuid\nguest_next:', '', 'vmlaunch\nmov edi, 0x4400\nvmread esi, edi'), vmxReady);
    expect(r.cpu.regs[6]).toBe(7);
  });
});


/** The ROM's real-mode guest state: segment fields (ES, CS, SS, DS, FS, GS), CR0 without PE/PG, the IVT, SP. */
const REAL_GUEST_ROM = `  mov eax, cr0
  and eax, 0x7ffffffe
  W 0x6800, eax
${[0, 1, 2, 3, 4, 5].map((s) => `  W 0x${(0x800 + 2 * s).toString(16)}, ${s === 1 ? 0xf000 : 0}
  W 0x${(0x6806 + 2 * s).toString(16)}, ${s === 1 ? 0xf0000 : 0}
  W 0x${(0x4800 + 2 * s).toString(16)}, 0xffff
  W 0x${(0x4814 + 2 * s).toString(16)}, ${s === 1 ? 0x9b : 0x93}`).join('\n')}
  W 0x6818, 0
  W 0x4812, 0x3ff
  W 0x681c, 0x7000`;
/** Printing a segment register's selector, base, limit and access rights (index 0-5: ES CS SS DS FS GS). */
const SEG = (s: number): string[] => [0x800, 0x6806, 0x4800, 0x4814].map((f) => `PRINT 0x${(f + 2 * s).toString(16)}`);
const SEG_CS = 1, SEG_DS = 3;

/** A case: set-up lines on top of the real-mode guest, its 16-bit code, what the host prints after the exit reason. */
interface RealCase { setup: string[]; guest: string; after: string[] }
const CASES: RealCase[] = [
  // segment loads: DS 7000H reads 70010H; ES 1234H
  { setup: [], guest: 'mov ax, 0x7000\n  mov ds, ax\n  mov eax, [0x10]\n  mov bx, 0x1234\n  mov es, bx\n  cpuid',
    after: ['RIP', 'PRINT 0x6800', ...SEG(SEG_CS), ...SEG(SEG_DS), ...SEG(0), 'PRINT 0x681c', 'PRINT 0x6820', 'GUEST_EAX'] },
  // INT 30H through the IVT to the handler's CPUID: the frame on the stack
  { setup: [], guest: 'sti\n  int 0x30',
    after: ['HANDLER', 'PRINT 0x681c', 'PRINT 0x6820', 'FRAME'] },
  // an injected external interrupt (vector 40H) through the IVT
  { setup: ['W 0x6820, 0x202', 'W 0x4016, 0x80000040'], guest: 'nop', after: ['HANDLER', 'PRINT 0x681c', 'FRAME'] },
  // INT 30H with the IVT's page not present in the EPT: an EPT violation during delivery
  { setup: [leafRom(0, 0)], guest: 'int 0x30', after: ['PRINT 0x4408', 'PRINT 0x2400', 'PRINT 0x640a', 'RIP', 'PRINT 0x440c', 'PRINT 0x681c'] },
  // a data write to a read/execute page: the linear address is segment base + offset
  { setup: [leafRom(0x70, 0x70035)], guest: 'mov ax, 0x7000\n  mov ds, ax\n  mov byte [0x33], 1', after: ['PRINT 0x2400', 'PRINT 0x640a', 'RIP'] },
  // #UD by the exception bitmap: no error code in real mode
  { setup: ['W 0x4004, 1 << 6'], guest: 'ud2', after: ['PRINT 0x4404', 'RIP'] },
  // #GP (a word at offset FFFFH) by the exception bitmap: no error code is pushed in real mode (27.2.2 bit 11 = 0)
  { setup: ['W 0x4004, 1 << 13'], guest: 'mov ax, [0xffff]', after: ['PRINT 0x4404', 'RIP'] },
  // VMCALL from real mode
  { setup: [], guest: 'vmcall', after: ['RIP', 'PRINT 0x440c'] },
  // to protected mode (its own GDT at 3000H), a read through DS 10H, back to real mode through a 16-bit segment
  { setup: ['W 0x6816, 0x3000', 'W 0x4810, 0x27'], guest: `mov eax, cr0
  or al, 1
  mov cr0, eax
  jmp dword 0x08:.pm
bits 32
.pm:
  mov ax, 0x10
  mov ds, ax
  mov eax, [0x70010]
  jmp 0x18:.pm16 - 0xf0000
bits 16
.pm16:
  mov bx, 0x20
  mov ds, bx
  mov ebx, cr0
  and bl, 0xfe
  mov cr0, ebx
  jmp 0xf000:.real - 0xf0000
.real:
  mov bx, 0x7000
  mov ds, bx
  cpuid`, after: ['PRINT 0x6800', ...SEG(SEG_CS), ...SEG(SEG_DS), 'GUEST_EAX'] },
];

function realRom(): string {
  const body = CASES.map((c, k) => `  FLAT_GUEST
${eptOn(0x80)}  ${leafRom(0, 0x73037)}
${REAL_GUEST_ROM}
${c.setup.map((l) => `  ${l}`).join('\n')}
  LAUNCH g${k} - 0xf0000, NEXT
  PRINT 0x4402
${c.after.map((l) => `  ${l === 'RIP' || l === 'FRAME' ? `${l} g${k}` : l}`).join('\n')}`).join('\n');
  const guests = `bits 16
${CASES.map((c, k) => `g${k}:\n  ${c.guest}\n  jmp $`).join('\n')}
handler:
  cpuid
  jmp $
bits 32`;
  return eptRom({
    prelude: `%define NEXT 0x41110
%define SAVED 0x41114
%macro RIP 1 ; the saved guest RIP minus a label's offset in CS F000H
  mov ebx, 0x681e
  vmread eax, ebx
  sub eax, %1 - 0xf0000
  call hex
%endmacro
%macro HANDLER 0 ; the saved RIP minus the handler's
  RIP handler
%endmacro
; FRAME label: the IP (minus the label's offset), CS and FLAGS an IVT delivery pushed at 6FFAH
%macro FRAME 1
  movzx eax, word [0x6ffa]
  sub eax, %1 - 0xf0000
  call hex
  movzx eax, word [0x6ffc]
  call hex
  movzx eax, word [0x6ffe]
  call hex
%endmacro
%macro GUEST_EAX 0 ; EAX as the guest left it
  mov eax, [SAVED]
  call hex
%endmacro
  mov dword [0x70010], 0x12345678
  mov dword [0x73000 + 0x30 * 4], 0xf0000000 + handler - 0xf0000
  mov dword [0x73000 + 0x40 * 4], 0xf0000000 + handler - 0xf0000
  mov dword [0x3000], 0
  mov dword [0x3004], 0
  mov dword [0x3008], 0x0000ffff
  mov dword [0x300c], 0x00cf9b00
  mov dword [0x3010], 0x0000ffff
  mov dword [0x3014], 0x00cf9300
  mov dword [0x3018], 0x0000ffff
  mov dword [0x301c], 0x00009b0f
  mov dword [0x3020], 0x0000ffff
  mov dword [0x3024], 0x00009300`,
    body,
    guests,
    host: '  mov [SAVED], eax\n  jmp [NEXT]',
  });
}
/**
 * The transcript; `bochs`: Bochs's, which saves CS access rights 93H (a data type) for a real-mode
 * guest whose CS holds 9BH (loaded so by VM entry, kept by a real-mode far JMP): SDM 26.3.2.2 and
 * 27.3.2 keep what the register holds (docs/VMX.md, "Differences from Bochs").
 */
function realTranscript(bochs: boolean): string[] {
  const csAr = bochs ? '00000093' : '0000009B';
  return [
    '00000000', // VMXON
    // segment loads, CPUID: RIP, CR0 (PE = PG = 0), CS, DS, ES (selector, base, limit, rights), RSP, RFLAGS, EAX
    '0000000A', '0000000E', '60000030', '0000F000', '000F0000', '0000FFFF', csAr, '00007000', '00070000', '0000FFFF',
    '00000093', '00001234', '00012340', '0000FFFF', '00000093', '00007000', '00000002', '12345678',
    // INT 30H through the IVT: the handler's CPUID, SP, FLAGS (IF, TF clear), the frame: IP after INT, CS, FLAGS
    '0000000A', '00000000', '00006FFA', '00000002', '00000003', '0000F000', '00000202',
    // an injected interrupt through the IVT: the frame's IP is the entry RIP
    '0000000A', '00000000', '00006FFA', '00000000', '0000F000', '00000202',
    // INT 30H, the IVT page not present: IDT-vectoring, guest-physical and linear 0C0H, RIP of INT, length, SP
    '00000030', '80000430', '000000C0', '000000C0', '00000000', '00000002', '00007000',
    // a write to a read/execute page at DS 7000H: guest-physical and linear 70033H
    '00000030', '00070033', '00070033', '00000005',
    '00000000', '80000306', '00000000', // #UD
    '00000000', '8000030D', '00000000', // #GP: no error code in real mode
    '00000012', '00000000', '00000003', // VMCALL (+ length)
    // to protected mode and back: CR0, CS, DS, EAX read in protected mode
    '0000000A', '60000030', '0000F000', '000F0000', '0000FFFF', csAr, '00007000', '00070000', '0000FFFF', '00000093', '12345678',
    '00000000', // VMXOFF
  ];
}
compareOnRom('real-mode guests under EPT on a ROM (unrestricted guest)', realRom(), realTranscript(false),
  { title: 'Bochs (Westmere model) differs as documented', expected: realTranscript(true), model: 'corei5_arrandale_m520' });
