; nasm -f bin -i corpus/hello/ -o corpus/hello/hello-multiboot.bin corpus/hello/hello-multiboot.asm
; A Multiboot kernel loaded by the header's address fields (the a.out kludge, flags bit 16).
bits 32
org 0x100000

MB_MAGIC equ 0x1badb002
MB_FLAGS equ (1 << 1) | (1 << 16)   ; memory information; address fields valid

header:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)
    dd header                   ; header_addr
    dd header                   ; load_addr
    dd load_end                 ; load_end_addr
    dd bss_end                  ; bss_end_addr
    dd entry                    ; entry_addr

%define HOW "a.out kludge"
%define STACK_TOP stack_top
%include "multiboot.inc"
load_end:

section .bss
    resb 4096
stack_top:
bss_end:
