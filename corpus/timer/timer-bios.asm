; nasm -f bin -i corpus/hello/ -i corpus/timer/ -o corpus/timer/timer-bios.rom corpus/timer/timer-bios.asm
; A 64 KiB BIOS ROM that drives the PC's timer hardware the way a real-mode OS does: it programs
; the 8259 pair (vectors 0x08/0x70, cascade on IR2, only IRQ0 unmasked) and PIT channel 0 in
; mode 2 at 100 Hz (divisor 11932), enables interrupts, sleeps in HLT until its IRQ0 handler
; has counted TICKS interrupts, prints the count on the debug console (0xE9) and COM1, and ends
; through isa-debug-exit (0xF4) and the Bochs shutdown port. POST codes 1, 2, 3 mark the stages.
; It first puts the local APIC in virtual-wire mode (software-enabled, LINT0 = ExtINT), as PC
; firmware does, so that the 8259's INT reaches INTR on every peer: QEMU's APIC comes out of
; reset with LINT0 masked and blocks it. The APIC's registers at 0xFEE00000 are out of a
; real-mode segment's reach, so FS gets a 4 GiB limit first ("big real mode").
bits 16
org 0                       ; the ROM is F000:0000-F000:FFFF (0xF0000-0xFFFFF)

TICKS   equ 10
COUNT   equ 0x500           ; the tick counter, in RAM (the ROM is read-only)
NUMBUF  equ 0x510           ; the count as decimal text

%include "bigreal.inc"
%include "pic-irq0.inc"

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [COUNT], 0
    mov word [8 * 4], irq0  ; IVT entry 8 (IRQ0 after the remap below)
    mov word [8 * 4 + 2], 0xf000

    PIC_IRQ0_VIRTUAL_WIRE   ; APIC virtual wire, 8259 pair with only IRQ0 (pic-irq0.inc)
    mov al, 1
    out 0x80, al

    ; PIT channel 0: LSB then MSB, mode 2 (rate generator), binary; 1193182 / 11932 = 100 Hz.
    mov al, 0x34
    out 0x43, al
    mov ax, 11932
    out 0x40, al
    mov al, ah
    out 0x40, al
    mov al, 2
    out 0x80, al

    sti
.wait:
    hlt                     ; sleep until the next interrupt
    cmp word [COUNT], TICKS
    jb .wait
    cli
    mov al, 3
    out 0x80, al

    %include "report.inc"       ; prints "<prefix><count><suffix>", then finish

    IRQ0_COUNTER            ; irq0: count, EOI (pic-irq0.inc)

prefix: db "timer: ", 0
suffix: db " ticks", 10, 0

%include "rom-tail.inc"          ; print routines, the big-real-mode GDT, the reset vector
