; nasm -f bin -i corpus/bench/ -o corpus/bench/alu.rom corpus/bench/alu.asm
; Benchmark workload "alu": the integer loop ADD, XOR, DEC, JNZ in real mode with 32-bit
; registers, 4 instructions an iteration (1e8 iterations by default: 4e8 instructions).
; Checksum: EAX + EBX after the loop.
%include "common.inc"

        bits 16
start:
        cli
        mov eax, 0x12345678
        mov ebx, 0x9E3779B9
        mov ecx, [cs:ROFF(iterations)]
.loop:
        add eax, ebx
        xor ebx, eax
        dec ecx
        jnz .loop
        mov edx, eax
        add edx, ebx
        SWITCH_TO_PM32
        jmp finish32

        ROM_TAIL 100000000
