// The VMX ROM frame that the VMX test files share (their ROMs run on trapdiff and on Bochs through
// compareOnRom, helpers/rom.ts).

import { GDT_FLAT_R0, ROM_HEX, romEnd, romFlatSegments, romShutdown, romStart } from './rom.js';

/**
 * The ROM frame: enter protected mode, enable VMX as firmware would (paging, CR0.NE, CR4.VMXE,
 * FEATURE_CONTROL, the revision identifier from IA32_VMX_BASIC), run `body`, VMXOFF, print, end.
 * Its macros: FLAGS insn (run it with the six arithmetic flags set, print them), T insn (FLAGS,
 * then the VM-instruction error, EEEEEEEE when VMREAD fails), W, OR, PRINT, BASE, FLAT_GUEST and
 * LAUNCH (below); `hex`
 * prints EAX.
 */
export const vmxRom = (body: string): string => `${romStart({ idt: false })}
%define PTR 0x40000
; PTR+0 VMXON, +8 VMCS A, +16 VMCS B, +24 misaligned, +32 region with a wrong revision, +40 above 4 GiB
%macro FLAGS 1
  push dword 0x8d5
  popfd
  %1
  pushfd
  pop eax
  and eax, 0x8d5
  call hex
%endmacro
%macro T 1
  FLAGS {%1}
  call err
%endmacro
; W field, value: VMWRITE; OR field, bits: VMREAD, OR, VMWRITE
%macro W 2
  mov ebx, %1
  mov eax, %2
  vmwrite ebx, eax
%endmacro
%macro OR 2
  mov ebx, %1
  vmread eax, ebx
  or eax, %2
  vmwrite ebx, eax
%endmacro
; BASE: VMCS A cleared and current, controls at the plain MSRs' allowed 0-settings, a valid host state
%macro BASE 0
  vmclear [PTR+8]
  vmptrld [PTR+8]
  mov ecx, 0x481
  rdmsr
  W 0x4000, eax
  mov ecx, 0x482
  rdmsr
  W 0x4002, eax
  mov ecx, 0x483
  rdmsr
  W 0x400c, eax
  mov ecx, 0x484
  rdmsr
  W 0x4012, eax
  mov eax, cr0
  W 0x6c00, eax
  mov eax, cr4
  W 0x6c04, eax
  W 0x0c02, 8
  W 0x0c04, 0x10
  W 0x0c06, 0x10
  W 0x0c08, 0
  W 0x0c0c, 0x28
  W 0x400a, 0
  W 0x400e, 0
  W 0x4014, 0
  W 0x4016, 0
%endmacro
; LAUNCH: VMLAUNCH with the host resuming on this stack, the address after it stored at [NEXT]
; (NEXT: the ROM's %define; its host code ends in jmp [NEXT]); T prints flags and error if it
; falls through
%macro LAUNCH 0
  mov dword [NEXT], %%after
  mov eax, esp
  W 0x6c14, eax
  T {vmlaunch}
%%after:
%endmacro
; LAUNCH label, slot: VMLAUNCH of the guest at label with the host RSP as it is; the host code
; resumes the ROM with jmp [slot] just after the macro; a failed VMLAUNCH prints FA11FA11 and the error.
; A ROM that %defines HOST_TF (an address) runs VMLAUNCH with the dword there ORed into EFLAGS.
%macro LAUNCH 2
  W 0x681e, %1
  mov dword [%2], %%after
  mov eax, esp
  W 0x6c14, eax
%ifdef HOST_TF
  pushfd
  mov eax, [HOST_TF]
  or [esp], eax
  popfd
%endif
  vmlaunch
  mov eax, 0xfa11fa11
  call hex
  call err
%%after:
%endmacro
; PRINT field: VMREAD of the field, printed
%macro PRINT 1
  mov ebx, %1
  vmread eax, ebx
  call hex
%endmacro
; FLAT_GUEST: BASE with the TRUE controls' allowed 0-settings and a flat ring-0 guest (CS 08H,
; data 10H, TR 28H at 0, GDTR 1000H limit 17H, IDTR 0 limit 0, RSP 7000H) that starts at the
; label guest; VM exits resume at the label host
%macro FLAT_GUEST 0
  BASE
  mov ecx, 0x48d
  rdmsr
  W 0x4000, eax
  mov ecx, 0x48e
  rdmsr
  W 0x4002, eax
  mov ecx, 0x48f
  rdmsr
  W 0x400c, eax
  mov ecx, 0x490
  rdmsr
  W 0x4012, eax
  W 0x4010, 0
  mov eax, cr0
  W 0x6800, eax
  mov eax, cr3
  W 0x6802, eax
  W 0x6c02, eax
  mov eax, cr4
  W 0x6804, eax
  mov esi, 0
%%seg:
  lea ebx, [0x0800 + esi * 2]
  mov eax, 0x10
  cmp esi, 1
  jne %%sel
  mov eax, 8
%%sel:
  vmwrite ebx, eax
  lea ebx, [0x6806 + esi * 2]
  xor eax, eax
  vmwrite ebx, eax
  lea ebx, [0x4800 + esi * 2]
  mov eax, -1
  vmwrite ebx, eax
  lea ebx, [0x4814 + esi * 2]
  mov eax, 0xc093
  cmp esi, 1
  jne %%ar
  mov eax, 0xc09b
%%ar:
  vmwrite ebx, eax
  inc esi
  cmp esi, 6
  jne %%seg
  W 0x080c, 0
  W 0x4820, 0x10000
  W 0x080e, 0x28
  W 0x6814, 0
  W 0x480e, 0x67
  W 0x4822, 0x8b
  W 0x6816, 0x1000
  W 0x4810, 0x17
  W 0x6818, 0
  W 0x4812, 0
  W 0x681c, 0x7000
  W 0x681e, guest
  W 0x6820, 2
  W 0x2800, -1
  W 0x2801, -1
  W 0x6c16, host
%endmacro
${romFlatSegments(false)}
  mov dword [0x20000], 0x83
  mov eax, 0x20000
  mov cr3, eax
  mov eax, cr4
  or eax, 0x2010
  mov cr4, eax
  mov eax, cr0
  or eax, 0x80000020
  mov cr0, eax
  mov ecx, 0x3a
  rdmsr
  or eax, 5
  wrmsr
  mov ecx, 0x480
  rdmsr
  mov [0x30000], eax
  mov [0x31000], eax
  mov [0x32000], eax
  mov dword [0x33000], 0
  mov edi, PTR
  xor eax, eax
  mov ecx, 16
  rep stosd
  mov dword [PTR], 0x30000
  mov dword [PTR+8], 0x31000
  mov dword [PTR+16], 0x32000
  mov dword [PTR+24], 0x32008
  mov dword [PTR+32], 0x33000
  mov dword [PTR+40], 0x32000
  mov dword [PTR+44], 1
${body}  FLAGS {vmxoff}
${romShutdown()}
  hlt
  jmp $

; VM-instruction error of the current VMCS, or EEEEEEEE when VMREAD fails
err:
  push ebx
  mov eax, 0xeeeeeeee
  mov ebx, 0x4400
  vmread eax, ebx
  call hex
  pop ebx
  ret

${ROM_HEX}

${romEnd(GDT_FLAT_R0)}
`;

/**
 * The labels guest and host of FLAT_GUEST for ROMs whose cases end in the guest's CPUID or a
 * VM-entry failure: the host prints the exit reason and qualification, then resumes the ROM with
 * jmp [NEXT] (the slot of LAUNCH label, NEXT).
 */
export const CPUID_GUEST_REASON_HOST = `guest:
  cpuid
  hlt
host:
  PRINT 0x4402
  PRINT 0x6400
  jmp [NEXT]
`;
