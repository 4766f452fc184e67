; nasm -f bin -i corpus/bench/ -o corpus/bench/mem.rom corpus/bench/mem.asm
; Benchmark workload "mem": memory and string moves in flat 32-bit protected mode. Each
; iteration copies 16 KiB with REP MOVSD, fills 16 KiB with REP STOSD, copies 4099 bytes
; between unaligned addresses with REP MOVSB, and runs a load/add/store loop over 1024 dwords
; (7 instructions a dword) whose sum is the checksum. Buffers lie in conventional RAM below
; 640 KiB, so the A20 gate does not matter.
%include "common.inc"

SRC     equ 0x20000
DST     equ 0x30000
FILL    equ 0x40000
BYTES   equ 0x50000
DWORDS  equ 4096                ; 16 KiB per REP MOVSD / REP STOSD
LOOP_DWORDS equ 1024

        bits 16
start:
        SWITCH_TO_PM32
        ; Source pattern: a Weyl sequence, so the checksum depends on every dword moved.
        mov edi, SRC
        mov ecx, DWORDS
        mov eax, 0x01234567
.fill:
        mov [edi], eax
        add eax, 0x9E3779B9
        add edi, 4
        dec ecx
        jnz .fill
        mov ebp, [iterations]
        xor edx, edx
.iteration:
        mov esi, SRC
        mov edi, DST
        mov ecx, DWORDS
        rep movsd
        mov edi, FILL
        mov eax, ebp
        mov ecx, DWORDS
        rep stosd
        mov esi, SRC + 1
        mov edi, BYTES + 3
        mov ecx, 4099
        rep movsb
        ; SRC[i] = DST[i] + FILL[i] + BYTES[i]: the next iteration copies the new values.
        xor ebx, ebx
        mov ecx, LOOP_DWORDS
.dword:
        mov eax, [DST + ebx]
        add eax, [FILL + ebx]
        add eax, [BYTES + ebx]
        mov [SRC + ebx], eax
        add edx, eax
        add ebx, 4
        dec ecx
        jnz .dword
        dec ebp
        jnz .iteration
        jmp finish32

        ROM_TAIL 2000
