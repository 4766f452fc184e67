; nasm -f bin -i corpus/hello/ -o corpus/hello/hello-flat.bin corpus/hello/hello-flat.asm
; A raw binary for the flat loader (default --at 0x100000): entered at its first byte in 32-bit
; flat protected mode with ESP = 0x7F000.
bits 32
org 0x100000

start:
    mov esi, msg
    call puts
    jmp finish

%include "print.inc"

msg: db "Hello, world! (flat loader, 32-bit protected mode)", 10, 0
