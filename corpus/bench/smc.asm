; nasm -f bin -i corpus/bench/ -o corpus/bench/smc.rom corpus/bench/smc.asm
; Benchmark workload "smc": self-modifying code in flat 32-bit protected mode. A 4-instruction
; loop copied to RAM stores its running sum into the immediate of its own ADD every iteration,
; so the next iteration executes the patched instruction (any decoded or translated copy of
; the loop is invalidated each time). Checksum: the final sum.
%include "common.inc"

SMC_RAM equ 0x20000

        bits 16
start:
        SWITCH_TO_PM32
        mov esi, smc_code
        mov edi, SMC_RAM
        mov ecx, smc_end - smc_code
        rep movsb
        mov ecx, [iterations]
        mov edx, 0x12345
        mov eax, SMC_RAM
        jmp eax

; Runs from SMC_RAM: position-dependent only through the patched address.
smc_code:
        add edx, strict dword 0x9E3779B9
.imm    equ $ - 4
        imul eax, edx, 0x9E3779B8
        mov [SMC_RAM + (.imm - smc_code)], eax
        dec ecx
        jnz smc_code
        mov eax, finish32
        jmp eax
smc_end:

        ROM_TAIL 100000
