; nasm -f bin -i corpus/hello/ -o corpus/hello/hello-elf.elf corpus/hello/hello-elf.asm
; A Multiboot kernel as an ELF32 executable (headers written by hand, so no linker is needed):
; one PT_LOAD segment at 1 MiB whose memory size covers a 4 KiB stack past the file's end.
bits 32
BASE equ 0x100000
org BASE

MB_MAGIC equ 0x1badb002
MB_FLAGS equ 1 << 1                 ; memory information

ehdr:
    db 0x7f, "ELF", 1, 1, 1, 0      ; ELFCLASS32, ELFDATA2LSB, EV_CURRENT, System V
    times 8 db 0
    dw 2                            ; e_type: ET_EXEC
    dw 3                            ; e_machine: EM_386
    dd 1                            ; e_version
    dd entry                        ; e_entry
    dd phdr - $$                    ; e_phoff
    dd 0                            ; e_shoff
    dd 0                            ; e_flags
    dw phdr - ehdr                  ; e_ehsize
    dw 32                           ; e_phentsize
    dw 1                            ; e_phnum
    dw 40, 0, 0                     ; e_shentsize, e_shnum, e_shstrndx
phdr:
    dd 1                            ; p_type: PT_LOAD
    dd 0                            ; p_offset
    dd BASE                         ; p_vaddr
    dd BASE                         ; p_paddr
    dd file_end - $$                ; p_filesz
    dd file_end - $$ + 4096         ; p_memsz: the stack follows the file
    dd 7                            ; p_flags: RWX
    dd 0x1000                       ; p_align

    align 4
mbheader:
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)

%define HOW "ELF"
%define STACK_TOP file_end + 4096
%include "multiboot.inc"
file_end:
