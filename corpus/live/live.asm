; nasm -f bin -i corpus/hello/ -i corpus/timer/ -o corpus/live/live.rom corpus/live/live.asm
; A 64 KiB BIOS ROM whose run depends on the environment's time: PIT channel 0 interrupts at
; 1 kHz through the 8259 (APIC in virtual-wire mode, as in timer-bios) while the guest spins,
; counting loop iterations, until TICKS interrupts have come; then it reads the TSC (RDTSC) and
; the CMOS RTC's time and prints "live: spins S, tsc T, rtc hh:mm:ss" on the debug console and
; COM1, and exits through isa-debug-exit 0x10 (status 33). Under the deterministic environment
; the line is always the same; under the live one the timer follows the host clock, so the spin
; count, the TSC and the time differ from run to run (the record/replay tests' live guest).
bits 16
org 0                       ; the ROM is F000:0000-F000:FFFF (0xF0000-0xFFFFF)

TICKS   equ 20
COUNT   equ 0x500           ; timer interrupts so far (word)
SPINS   equ 0x504           ; loop iterations while waiting (dword)
LINE    equ 0x600           ; the report line, built here

%include "bigreal.inc"
%include "pic-irq0.inc"

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [COUNT], 0
    mov dword [SPINS], 0
    mov word [8 * 4], irq0  ; IVT entry 8 (IRQ0 after the remap below)
    mov word [8 * 4 + 2], 0xf000

    PIC_IRQ0_VIRTUAL_WIRE   ; APIC virtual wire, 8259 pair with only IRQ0 (pic-irq0.inc)

    ; PIT channel 0: LSB then MSB, mode 2 (rate generator), binary; 1193182 / 1193 = 1 kHz.
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al

    sti
.spin:
    inc dword [SPINS]
    cmp word [COUNT], TICKS
    jb .spin
    cli

    mov di, LINE
    mov si, msg_spins
    call copy_cs
    mov eax, [SPINS]
    call hex32
    mov si, msg_tsc
    call copy_cs
    rdtsc
    push eax
    mov eax, edx
    call hex32
    pop eax
    call hex32
    mov si, msg_rtc
    call copy_cs
    mov al, 4               ; hours
    call cmos_bcd
    mov al, ':'
    stosb
    mov al, 2               ; minutes
    call cmos_bcd
    mov al, ':'
    stosb
    mov al, 0               ; seconds
    call cmos_bcd
    mov ax, 0x000a          ; newline, NUL
    stosw
    mov si, LINE
    call puts
    jmp finish

; Copies the NUL-terminated string at CS:SI to ES:DI (without the NUL).
copy_cs:
    cs lodsb
    test al, al
    jz .done
    stosb
    jmp copy_cs
.done:
    ret

; EAX as 8 hex digits at ES:DI. Clobbers EAX, BL, CX.
hex32:
    mov cx, 8
.digit:
    rol eax, 4
    mov bl, al
    and bl, 0x0f
    add bl, '0'
    cmp bl, '9'
    jbe .store
    add bl, 'a' - '0' - 10
.store:
    mov [es:di], bl
    inc di
    loop .digit
    ret

; CMOS register AL (a BCD time byte) as two digits at ES:DI. Clobbers AX.
cmos_bcd:
    out 0x70, al
    in al, 0x71
    mov ah, al
    shr al, 4
    add al, '0'
    stosb
    mov al, ah
    and al, 0x0f
    add al, '0'
    stosb
    ret

    IRQ0_COUNTER            ; irq0: count, EOI (pic-irq0.inc)

msg_spins: db "live: spins ", 0
msg_tsc:   db ", tsc ", 0
msg_rtc:   db ", rtc ", 0

%include "rom-tail.inc"          ; print routines, the big-real-mode GDT, the reset vector
