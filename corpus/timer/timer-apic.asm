; nasm -f bin -i corpus/hello/ -i corpus/timer/ -o corpus/timer/timer-apic.rom corpus/timer/timer-apic.asm
; A 64 KiB BIOS ROM on the local APIC's timer, as an SMP-era OS drives it: the APIC
; software-enabled through SVR (spurious vector 0xFF), the timer periodic with divide-by-16 and
; an initial count of 62500 (10 ms at trapdiff's default 100 MHz virtual clock; peers run their
; own bus clocks), HLT until the vector 0x40 handler has counted TICKS interrupts (each ends
; with an EOI to the APIC), then the count on the debug console and COM1, and isa-debug-exit
; 0x10 (status 33). The APIC's registers at 0xFEE00000 are reached through FS with a 4 GiB
; limit ("big real mode"); the interrupts go through the real-mode IVT.
bits 16
org 0                       ; the ROM is F000:0000-F000:FFFF (0xF0000-0xFFFFF)

TICKS   equ 10
APIC    equ 0xfee00000
COUNT   equ 0x500           ; the tick counter, in RAM (the ROM is read-only)
NUMBUF  equ 0x510           ; the count as decimal text

%include "bigreal.inc"

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [COUNT], 0
    mov word [0x40 * 4], tick       ; IVT 0x40: the timer
    mov word [0x40 * 4 + 2], 0xf000
    mov word [0xff * 4], spurious   ; IVT 0xFF: the APIC's spurious vector
    mov word [0xff * 4 + 2], 0xf000

    BIG_REAL_FS             ; FS: base 0, limit 4 GiB (bigreal.inc)

    mov dword [fs:dword APIC + 0xf0], 0x1ff     ; SVR: software-enabled, spurious vector 0xFF
    mov dword [fs:dword APIC + 0x3e0], 0x3      ; divide configuration: by 16
    mov dword [fs:dword APIC + 0x320], 0x20040  ; LVT timer: periodic, vector 0x40
    mov dword [fs:dword APIC + 0x380], 62500    ; initial count: starts the timer

    sti
.wait:
    hlt                     ; sleep until the next interrupt
    cmp word [COUNT], TICKS
    jb .wait
    cli
    mov dword [fs:dword APIC + 0x320], 0x10000  ; mask the timer

    %include "report.inc"       ; prints "<prefix><count><suffix>", then finish

; Vector 0x40: count, then EOI to the APIC.
tick:
    push ds
    push word 0
    pop ds
    inc word [COUNT]
    mov dword [fs:dword APIC + 0xb0], 0
    pop ds
    iret

; The spurious vector needs no EOI.
spurious:
    iret

prefix: db "apic timer: ", 0
suffix: db " ticks", 10, 0

%include "rom-tail.inc"          ; print routines, the big-real-mode GDT, the reset vector
