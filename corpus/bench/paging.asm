; nasm -f bin -i corpus/bench/ -o corpus/bench/paging.rom corpus/bench/paging.asm
; Benchmark workload "paging": 32-bit protected mode with paging, touching 3840 distinct 4 KiB
; pages (linear 1-16 MiB) per iteration and reloading CR3 after every 64 of them, so nearly
; every touch is a TLB miss (a page walk and an accessed/dirty-bit update) on any emulator,
; whatever the size of its TLB. The first MiB is identity-mapped (code, stack, page tables);
; linear page n >= 256 maps to one of 64 pool pages, (n mod 64), so the touches alias and the
; checksum (a running sum that each touch reads from and writes back to its page) depends on
; their order.
%include "common.inc"

PD      equ 0x10000             ; page directory
PT      equ 0x11000             ; 4 page tables (16 MiB), 0x11000-0x14FFF
POOL    equ 0x20000             ; 64 physical pages, 0x20000-0x5FFFF
PTE_P_RW equ 3                  ; present, writable, supervisor
GROUPS  equ 60                  ; 60 groups of 64 pages: linear pages 256..4095
GROUP_PAGES equ 64

        bits 16
start:
        SWITCH_TO_PM32
        ; Page directory: 4 tables, the other 1020 entries not present.
        mov edi, PD
        xor eax, eax
        mov ecx, 1024
        rep stosd
        mov dword [PD + 0], PT + 0x0000 + PTE_P_RW
        mov dword [PD + 4], PT + 0x1000 + PTE_P_RW
        mov dword [PD + 8], PT + 0x2000 + PTE_P_RW
        mov dword [PD + 12], PT + 0x3000 + PTE_P_RW
        ; Page tables: pages 0-255 identity, pages 256-4095 into the pool.
        xor ebx, ebx                    ; page number
.identity:
        mov eax, ebx
        shl eax, 12
        or eax, PTE_P_RW
        mov [PT + ebx*4], eax
        inc ebx
        cmp ebx, 256
        jne .identity
.pooled:
        mov eax, ebx
        and eax, 63
        shl eax, 12
        add eax, POOL + PTE_P_RW
        mov [PT + ebx*4], eax
        inc ebx
        cmp ebx, 4096
        jne .pooled
        mov eax, PD
        mov cr3, eax
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        mov ebp, [iterations]
        xor edx, edx
.iteration:
        mov esi, 0x100000
        mov ebx, GROUPS
.group:
        mov ecx, GROUP_PAGES
.page:
        add edx, [esi]
        xor edx, esi
        mov [esi], edx
        add esi, 4096
        dec ecx
        jnz .page
        mov eax, cr3                    ; flush the TLB
        mov cr3, eax
        dec ebx
        jnz .group
        dec ebp
        jnz .iteration
        jmp finish32

        ROM_TAIL 200
