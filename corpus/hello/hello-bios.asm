; nasm -f bin -i corpus/hello/ -o corpus/hello/hello-bios.rom corpus/hello/hello-bios.asm
; A 64 KiB BIOS ROM: the CPU starts at F000:FFF0 (the jump at the end), in real mode.
bits 16
org 0                       ; the ROM is F000:0000-F000:FFFF (0xF0000-0xFFFFF)

start:
    cli
    mov ax, cs
    mov ds, ax
    xor ax, ax              ; a stack in RAM below the ROM
    mov ss, ax
    mov sp, 0x7000
    mov si, msg
    call puts
    jmp finish

%include "print.inc"

msg: db "Hello, world! (bios loader, real mode)", 10, 0

    times 0xfff0 - ($ - $$) db 0xff
reset:
    jmp 0xf000:start        ; the reset vector, F000:FFF0
    times 0x10000 - ($ - $$) db 0xff
