; nasm -f bin -i corpus/bench/ -o corpus/bench/excint.rom corpus/bench/excint.asm
; Benchmark workload "excint": exception- and interrupt-heavy code. A ring-3 loop in 32-bit
; protected mode with paging raises three events an iteration, each delivered through the IDT
; to ring 0 (a stack switch through the TSS) and returning to ring 3 with IRETD: INT 0x40 (a
; software interrupt, gate DPL 3), #GP(0) from HLT at CPL 3, and #PF from reading a
; not-present page; the fault handlers skip the faulting instruction. Any other exception ends
; the run with checksum 0xBAD000vv (vv: the vector).
; Why these faults: they are raised alike by Bochs, QEMU and v86 (QEMU and v86 skip segment
; type checks on a write through CS, for one), and Bochs does not write a log line for them
; (it logs selector-load and segment-check faults, which would time its logging).
%include "common.inc"

GDT     equ 0x0800
TSS     equ 0x0600
IDT     equ 0x1000
PD      equ 0x10000
PT      equ 0x11000             ; one page table: 0-4 MiB identity, one page not present
HOLE    equ 0x300000            ; the not-present page
USER_STACK equ 0x6000
SEL_CODE3 equ 0x1B
SEL_DATA3 equ 0x23
SEL_TSS equ 0x28
PTE_USER equ 7                  ; present, writable, user
GATE_R0 equ 0x8E00              ; 32-bit interrupt gate, DPL 0
GATE_R3 equ 0xEE00              ; 32-bit interrupt gate, DPL 3

        bits 16
start:
        SWITCH_TO_PM32
        ; The GDT with ring-3 segments and a TSS, in RAM (the CPU sets the TSS busy bit).
        mov esi, gdt_ring3
        mov edi, GDT
        mov ecx, (gdt_ring3_end - gdt_ring3) / 4
        rep movsd
        lgdt [gdt_ring3_desc]
        mov dword [TSS + 4], STACK_TOP  ; ESP0
        mov dword [TSS + 8], SEL_DATA   ; SS0
        mov word [TSS + 0x66], 0x68     ; no I/O permission bitmap
        mov ax, SEL_TSS
        ltr ax
        ; IDT: vectors 0-31 to their own stubs (unexpected), 13, 14, 0x40 and 0x41 to handlers.
        xor ebx, ebx
.gate:
        mov eax, unexpected_stubs
        lea eax, [eax + ebx*8]          ; stubs are 8 bytes apart
        mov edi, GATE_R0
        call set_gate
        inc ebx
        cmp ebx, 32
        jne .gate
        mov ebx, 13
        mov eax, gp_handler
        call set_gate
        mov ebx, 14
        mov eax, pf_handler
        call set_gate
        mov ebx, 0x40
        mov eax, int_handler
        mov edi, GATE_R3
        call set_gate
        mov ebx, 0x41
        mov eax, done_handler
        call set_gate
        lidt [idt_desc]
        ; Paging: identity 0-4 MiB, user-accessible, except HOLE.
        xor ebx, ebx
.pte:
        mov eax, ebx
        shl eax, 12
        or eax, PTE_USER
        mov [PT + ebx*4], eax
        inc ebx
        cmp ebx, 1024
        jne .pte
        mov dword [PT + (HOLE >> 12) * 4], 0
        mov edi, PD
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PD], PT + PTE_USER
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        ; To ring 3 (IOPL 0, IF 0).
        mov ax, SEL_DATA3
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ecx, [iterations]
        mov ebx, HOLE + 0x123
        xor edx, edx
        push SEL_DATA3
        push USER_STACK
        push 0x2                        ; EFLAGS: only the fixed bit
        push SEL_CODE3
        push user_loop
        iretd

user_loop:
        int 0x40
        hlt                             ; #GP(0), 1 byte
        mov eax, [ebx]                  ; #PF, 2 bytes
        dec ecx
        jnz user_loop
        int 0x41

; set_gate: IDT[EBX] = 32-bit interrupt gate to EAX, type and DPL bits from DI.
set_gate:
        mov [IDT + ebx*8], ax
        mov word [IDT + ebx*8 + 2], SEL_CODE
        shr eax, 16
        mov [IDT + ebx*8 + 4], di
        mov [IDT + ebx*8 + 6], ax
        ret

int_handler:
        rol edx, 3
        inc edx
        iretd
gp_handler:
        pop eax                         ; error code
        xor edx, eax
        add edx, 13
        inc dword [esp]
        iretd
pf_handler:
        pop eax                         ; error code
        add edx, eax
        mov eax, cr2
        xor edx, eax
        add dword [esp], 2
        iretd
done_handler:
        jmp finish32

        align 8
unexpected_stubs:
%assign v 0
%rep 32
        mov dl, v                       ; 2 bytes
        jmp near unexpected             ; 5 bytes
        nop
%assign v v + 1
%endrep
unexpected:
        movzx edx, dl
        or edx, 0xBAD00000
        mov esp, STACK_TOP
        jmp finish32

        align 8
gdt_ring3:
        dq 0
        dq 0x00CF9B000000FFFF           ; 0x08: code, ring 0 (accessed bit set: no descriptor writes)
        dq 0x00CF93000000FFFF           ; 0x10: data, ring 0
        dq 0x00CFFB000000FFFF           ; 0x18: code, ring 3
        dq 0x00CFF3000000FFFF           ; 0x20: data, ring 3
        dw 0x67, TSS, 0x8900, 0         ; 0x28: 32-bit TSS, available
gdt_ring3_end:
gdt_ring3_desc:
        dw gdt_ring3_end - gdt_ring3 - 1
        dd GDT
idt_desc:
        dw 0x42 * 8 - 1
        dd IDT

        ROM_TAIL 300000
