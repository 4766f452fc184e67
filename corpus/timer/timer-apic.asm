; nasm -f bin -i corpus/hello/ -o corpus/timer/timer-apic.bin corpus/timer/timer-apic.asm
; The local APIC's timer, as an SMP-era OS drives it, for the flat loader (32-bit protected
; mode at 0x100000): an IDT with the timer's vector (0x40) and the spurious vector (0xFF),
; the APIC software-enabled through SVR, the timer periodic with divide-by-16 and an initial
; count of 62500 (10 ms at the default 100 MHz virtual clock), HLT until the handler has
; counted TICKS interrupts (each ends with an EOI to the APIC), then the count on the debug
; console and COM1, and isa-debug-exit 0x10 (status 33).
bits 32
org 0x100000

TICKS       equ 10
APIC        equ 0xfee00000
IDT         equ 0x80000

start:
    mov eax, tick           ; gate 0x40: the timer
    mov ebx, 0x40
    call set_gate
    mov eax, spurious       ; gate 0xFF: the APIC's spurious vector
    mov ebx, 0xff
    call set_gate
    lidt [idtr]

    mov dword [APIC + 0xf0], 0x1ff      ; SVR: software-enabled, spurious vector 0xFF
    mov dword [APIC + 0x3e0], 0x3       ; divide configuration: by 16
    mov dword [APIC + 0x320], 0x20040   ; LVT timer: periodic, vector 0x40
    mov dword [APIC + 0x380], 62500     ; initial count: starts the timer

    sti
.wait:
    hlt
    cmp dword [count], TICKS
    jb .wait
    cli
    mov dword [APIC + 0x320], 0x10000   ; mask the timer

    mov eax, [count]        ; the count in decimal
    mov edi, numbuf + 11
    mov ecx, 10
.digit:
    xor edx, edx
    div ecx
    add dl, '0'
    dec edi
    mov [edi], dl
    test eax, eax
    jnz .digit
    mov esi, prefix
    call puts
    mov esi, edi
    call puts
    mov esi, suffix
    call puts
    jmp finish

; EBX vector, EAX handler: a present 32-bit ring-0 interrupt gate through the loader's code
; selector 0x08.
set_gate:
    mov edx, eax
    and edx, 0xffff
    or edx, 0x80000
    mov [IDT + ebx * 8], edx
    mov edx, eax
    and edx, 0xffff0000
    or edx, 0x8e00
    mov [IDT + ebx * 8 + 4], edx
    ret

tick:
    inc dword [count]
    mov dword [APIC + 0xb0], 0          ; EOI
    iret

spurious:
    iret                                ; no EOI for the spurious vector

%include "print.inc"

idtr:   dw 256 * 8 - 1
        dd IDT
count:  dd 0
numbuf: times 12 db 0
prefix: db "apic timer: ", 0
suffix: db " ticks", 10, 0
