// VPID and the TLB across VM entries and exits (SDM Vol. 3C 28.3): a paged guest (its own page
// directory at 24000H, linear 400000H mapped by the PTE at 25000H to frame A, 71000H, which holds
// AAAAAAAAH) reads the page, VMCALLs; the host points the guest's PTE at frame B (72000H,
// BBBBBBBBH) without telling the guest, invalidates something or nothing, resumes; the guest
// reads again and VMCALLs. What the second read sees is certain only where the SDM makes an
// invalidation certain (28.3.3.1: VM entries and exits without VPID; INVVPID; INVEPT; the guest's
// INVLPG or MOV CR3); where a stale translation "may" be used, trapdiff's documented model keeps
// every entry until it is invalidated (docs/VMX.md). So the ROM runs twice: the whole transcript
// on trapdiff (the model), and with every uncertain value reduced to "one of the two frames" on
// trapdiff and Bochs's Westmere model.

import { describe, expect, it } from 'vitest';
import { eptOn, eptRom } from './helpers/ept-rom.js';
import { asm } from './helpers/harness.js';
import { compareOnRom, romOutput } from './helpers/rom.js';

const LINEAR = 0x400000, PTE = 0x25000, FRAME_A = 0x71000, FRAME_B = 0x72000, A = 'AAAAAAAA', B = 'BBBBBBBB';
const INVVPID = (type: number, vpid: number, linear = LINEAR): string =>
  `mov dword [0x41300], ${vpid}\n  mov dword [0x41308], ${linear}\n  mov eax, ${type}\n  FLAGS {invvpid eax, [0x41300]}`;
const INVEPT = (type: number, eptp: number): string =>
  `mov dword [0x41300], ${eptp}\n  mov dword [0x41308], 0\n  mov eax, ${type}\n  FLAGS {invept eax, [0x41300]}`;
const TO_B = `mov dword [${PTE}], ${FRAME_B | 3}`;

/**
 * A case: VPID 5 on or off; `guest` runs after the first read, before the first VMCALL; `host`
 * runs between the exits; `resumed` is the guest's code before its second read; `model` the two
 * values trapdiff reads (before each VMCALL), `certain` whether the SDM makes each certain.
 */
interface VpidCase { what: string; vpid: boolean; guest?: string; host: string; resumed?: string; global?: boolean; model: [string, string]; certain: [boolean, boolean] }
const CASES: VpidCase[] = [
  { what: 'no VPID: VM exit and entry invalidate', vpid: false, host: TO_B, model: [A, B], certain: [true, true] },
  { what: 'VPID: nothing invalidated', vpid: true, host: TO_B, model: [A, A], certain: [true, false] },
  { what: 'INVVPID individual address', vpid: true, host: `${TO_B}\n  ${INVVPID(0, 5)}`, model: [A, B], certain: [true, true] },
  { what: 'INVVPID individual address, another page', vpid: true, host: `${TO_B}\n  ${INVVPID(0, 5, LINEAR + 0x1000)}`, model: [A, A], certain: [true, false] },
  { what: 'INVVPID single context', vpid: true, host: `${TO_B}\n  ${INVVPID(1, 5)}`, model: [A, B], certain: [true, true] },
  { what: 'INVVPID single context of VPID 6', vpid: true, host: `${TO_B}\n  ${INVVPID(1, 6)}`, model: [A, A], certain: [true, false] },
  { what: 'INVVPID all contexts', vpid: true, host: `${TO_B}\n  ${INVVPID(2, 0)}`, model: [A, B], certain: [true, true] },
  { what: 'INVVPID single context keeping globals', vpid: true, host: `${TO_B}\n  ${INVVPID(3, 5)}`, model: [A, B], certain: [true, true] },
  { what: 'INVVPID single context keeping globals, a global page', vpid: true, global: true,
    host: `mov dword [${PTE}], ${FRAME_B | 0x103}\n  ${INVVPID(3, 5)}`, model: [A, A], certain: [true, false] },
  { what: 'INVEPT single context', vpid: true, host: `${TO_B}\n  ${INVEPT(1, 0x5001e)}`, model: [A, B], certain: [true, true] },
  { what: 'INVEPT single context of another EPTP', vpid: true, host: `${TO_B}\n  ${INVEPT(1, 0x6001e)}`, model: [A, A], certain: [true, false] },
  { what: 'INVEPT all contexts', vpid: true, host: `${TO_B}\n  ${INVEPT(2, 0)}`, model: [A, B], certain: [true, true] },
  { what: "the guest's INVLPG", vpid: true, host: TO_B, resumed: `invlpg [${LINEAR}]`, model: [A, B], certain: [true, true] },
  { what: "the guest's MOV CR3", vpid: true, host: TO_B, resumed: 'mov ecx, cr3\n  mov cr3, ecx', model: [A, B], certain: [true, true] },
  { what: 'the guest changes its own PTE without INVLPG; the host INVVPIDs', vpid: true,
    guest: `mov dword [${PTE}], ${FRAME_B | 3}\n  mov eax, [${LINEAR}]`, host: INVVPID(1, 5), model: [A, B], certain: [false, true] },
  { what: 'the guest changes its own PTE without INVLPG; no VPID', vpid: false,
    guest: `mov dword [${PTE}], ${FRAME_B | 3}\n  mov eax, [${LINEAR}]`, host: '', model: [A, B], certain: [false, true] },
];

/**
 * The ROM; `certainOnly`: an uncertain value prints as 00000001 when it is AAAAAAAAH or
 * BBBBBBBBH (the only two translations there ever were). Each case starts from INVVPID all
 * contexts and the PTE pointing at frame A; the host prints EAX at each exit and the flags of
 * its INVVPID/INVEPT (VMsucceed: 0).
 */
function vpidRom(certainOnly: boolean): string {
  const value = (certain: boolean): string => (certain || !certainOnly ? '  mov eax, [SAVED]\n  call hex' : '  mov eax, [SAVED]\n  call either');
  const body = CASES.map((c, k) => `  FLAT_GUEST
${eptOn(c.vpid ? 0x20 : 0)}  W 0x0000, 5
  W 0x6802, 0x24000
  mov eax, cr4
  or eax, ${c.global ? 0x80 : 0}
  W 0x6804, eax
  mov dword [${PTE}], ${FRAME_A | 3 | (c.global ? 0x100 : 0)}
  mov eax, 2
  invvpid eax, [0x41310]
  LAUNCH g${k}, NEXT
${value(c.certain[0])}
  ${c.host}
  RESUME NEXT
${value(c.certain[1])}
  PRINT 0x4402`).join('\n');
  const guests = CASES.map((c, k) => `g${k}:
  mov eax, [${LINEAR}]
  ${c.guest ?? ''}
  vmcall
  ${c.resumed ?? ''}
  mov eax, [${LINEAR}]
  vmcall
  jmp $`).join('\n');
  return eptRom({
    prelude: `%define NEXT 0x41110
%define SAVED 0x41114
; RESUME slot: VMRESUME past the exiting instruction, the host resuming with jmp [slot] just after
%macro RESUME 1
  mov ebx, 0x681e
  vmread eax, ebx
  mov ecx, 0x440c
  vmread ecx, ecx
  add eax, ecx
  vmwrite ebx, eax
  mov dword [%1], %%after
  mov eax, esp
  W 0x6c14, eax
  vmresume
  mov eax, 0xfa11fa12
  call hex
  call err
%%after:
%endmacro
  mov dword [${FRAME_A}], 0x${A}
  mov dword [${FRAME_B}], 0x${B}
  mov dword [0x24000], 0x83
  mov dword [0x24004], 0x25003
  mov edi, 0x41300
  xor eax, eax
  mov ecx, 8
  rep stosd
  jmp vpid_cases
; either: prints 00000001 for AAAAAAAAH or BBBBBBBBH, else EAX
either:
  cmp eax, 0x${A}
  je .yes
  cmp eax, 0x${B}
  jne .print
.yes:
  mov eax, 1
.print:
  jmp hex
vpid_cases:`,
    body,
    guests,
    host: '  mov [SAVED], eax\n  jmp [NEXT]',
  });
}

/** The transcript: per case the two values (uncertain ones as 00000001 when `certainOnly`), the flags of an invalidation, exit reason 18. */
function vpidTranscript(certainOnly: boolean): string[] {
  const shown = (value: string, certain: boolean): string => (certain || !certainOnly ? value : '00000001');
  return ['00000000', ...CASES.flatMap((c) => [shown(c.model[0], c.certain[0]),
    ...(/inv(vpid|ept)/.test(c.host) ? ['00000000'] : []), shown(c.model[1], c.certain[1]), '00000012']), '00000000'];
}

describe("trapdiff's TLB model: every translation stays until invalidated", () => {
  it('the whole transcript (stale values where the SDM allows them)', async () => {
    const out = await romOutput('trapdiff', asm(vpidRom(false), 16, 0xf0000));
    expect(out.split('\n').slice(0, -1)).toEqual(vpidTranscript(false));
  });
});

compareOnRom('VPID, INVVPID and INVEPT on a ROM (outcomes the SDM makes certain)', vpidRom(true), vpidTranscript(true),
  { title: 'Bochs (Westmere model) agrees', expected: vpidTranscript(true), model: 'corei5_arrandale_m520' });
