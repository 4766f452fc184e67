; nasm -f bin -i corpus/bench/ -o corpus/bench/null.rom corpus/bench/null.asm
; Benchmark baseline "null": only the common start and ending (no work; the iteration count is
; unused). Its wall time on a peer emulator is that peer's startup and exit cost, which the
; benchmark subtracts from the other workloads' times.
%include "common.inc"

        bits 16
start:
        SWITCH_TO_PM32
        xor edx, edx
        jmp finish32

        ROM_TAIL 1
