; nasm -f bin -o corpus/hypervisor/hypervisor.rom corpus/hypervisor/hypervisor.asm
; A bare-metal hypervisor as a 64 KiB BIOS ROM: it enables VMX the way firmware and a VMM do
; (CPUID.1:ECX.VMX, IA32_FEATURE_CONTROL, paging and the CR0/CR4 bits IA32_VMX_CR0/CR4_FIXED0/1
; fix, VMXON with the revision identifier of IA32_VMX_BASIC), builds a VMCS with VMWRITE (controls
; adjusted to the capability MSRs, the TRUE ones when IA32_VMX_BASIC[55] says they exist), and
; launches a flat 32-bit guest. The guest prints through port 0xE9 itself (not in the I/O bitmaps:
; no VM exit), then executes CPUID, an OUT and an IN to a device the hypervisor emulates (ports
; 600H and 601H, set in I/O bitmap A) and HLT. The hypervisor prints each VM exit ("exit 10
; cpuid ..."), emulates the instruction, advances the guest's RIP by the VM-exit instruction
; length and resumes it with VMRESUME; on the HLT exit it leaves VMX operation and ends the run:
; isa-debug-exit 0x10 (status 33), then Bochs's shutdown port. Without VMX it says so and ends
; with isa-debug-exit 0x11 (status 35). Run it with `npx trapdiff run corpus/hypervisor/hypervisor.rom`.
;
; Memory: GDT 1000H, TSS 4000H, host stack below 8000H, page directory 20000H, VMXON region
; 30000H, VMCS 31000H, I/O bitmaps A 32000H and B 33000H, guest data 50000H, guest stack below 70000H.
bits 16
org 0xf0000

GDT_AT      equ 0x1000
TSS_AT      equ 0x4000
HOST_STACK  equ 0x8000
PAGE_DIR    equ 0x20000
VMXON_AT    equ 0x30000
VMCS_AT     equ 0x31000
IO_BITMAP_A equ 0x32000
IO_BITMAP_B equ 0x33000
GUEST_DATA  equ 0x50000
GUEST_STACK equ 0x70000
EXITS       equ 0x5000          ; VM exits counted by the hypervisor
TRUE_MSRS   equ 0x5004          ; index of the capability MSR of the pin-based controls (481H or 48DH)
DEVICE      equ 0x5008          ; the emulated device's register: what an IN from 601H reads
DEVICE_OUT  equ 0x600
DEVICE_IN   equ 0x601

; VMCS field encodings (SDM Vol. 3D Appendix B)
PIN_CONTROLS equ 0x4000
PROC_CONTROLS equ 0x4002
EXIT_CONTROLS equ 0x400c
ENTRY_CONTROLS equ 0x4012
VM_INSTRUCTION_ERROR equ 0x4400
EXIT_REASON equ 0x4402
EXIT_INSTRUCTION_LENGTH equ 0x440c
EXIT_QUALIFICATION equ 0x6400
GUEST_RIP equ 0x681e

PROC_HLT_EXITING equ 1 << 7
PROC_USE_IO_BITMAPS equ 1 << 25

; VMW field, value: VMWRITE (value through EAX)
%macro VMW 2
    mov eax, %2
    mov ebx, %1
    vmwrite ebx, eax
%endmacro
; PUTS "text", ...: prints the text, whose bytes follow the call (puts_inline returns past them)
%macro PUTS 1+
    call puts_inline
    db %1, 0
%endmacro
; STOP routine, "text": ends the run through fail or vmfail with the message "hypervisor: text"
%macro STOP 2
    mov esi, %%message
    jmp %1
%%message: db "hypervisor: ", %2, 0
%endmacro
; ON_VMFAIL "instruction": after a VMX instruction, VMfailInvalid or VMfailValid ends the run
; with "hypervisor: instruction failed" (and the VM-instruction error)
%macro ON_VMFAIL 1
    ja %%succeeded
    STOP vmfail, {%1, " failed"}
%%succeeded:
%endmacro

; the tables the start-up code refers to
vmxon_ptr: dq VMXON_AT
vmcs_ptr:  dq VMCS_AT
gdt:
    dq 0
    dd 0x0000ffff, 0x00cf9b00   ; 08: code, flat, ring 0, 32-bit
    dd 0x0000ffff, 0x00cf9300   ; 10: data, flat, ring 0, 32-bit
    dd (TSS_AT << 16) | 0x67, 0x00008900 | (TSS_AT >> 16) ; 18: 32-bit TSS at TSS_AT
gdt_end:
gdtr:
    dw gdt_end - gdt - 1
    dd GDT_AT

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov si, gdt - 0xf0000       ; the GDT goes to RAM (LTR marks the TSS busy in it)
    mov di, GDT_AT
    mov cx, gdt_end - gdt
    cs rep movsb
    mov bx, gdtr - 0xf0000
    o32 lgdt [cs:bx]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp dword 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    mov esp, HOST_STACK
    mov ax, 0x18
    ltr ax
    PUTS "hypervisor: start", 10

    ; VMX offered? CPUID.1:ECX bit 5
    mov eax, 1
    cpuid
    bt ecx, 5
    jc .vmx
    PUTS "hypervisor: no VMX (CPUID.1:ECX.VMX = 0)", 10
    mov al, 0x11
    jmp finish
.vmx:
    ; IA32_FEATURE_CONTROL: lock it with "VMX outside SMX" on, unless firmware locked it already
    mov ecx, 0x3a
    rdmsr
    test al, 1
    jnz .locked
    or eax, 5
    wrmsr
    jmp .enabled
.locked:
    test al, 4
    jnz .enabled
    STOP fail, "VMX disabled by IA32_FEATURE_CONTROL"
.enabled:
    ; VMX operation needs paging (CR0.PG is fixed to 1): one identity-mapped 4-MiB page
    mov dword [PAGE_DIR], 0x83
    mov eax, PAGE_DIR
    mov cr3, eax
    mov eax, cr4
    or eax, 0x10                ; PSE
    mov cr4, eax
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    ; CR0 and CR4 as VMX operation fixes them (CR4.VMXE among the bits fixed to 1)
    mov ebx, cr0
    mov ecx, 0x486
    call fix_bits
    mov cr0, ebx
    mov ebx, cr4
    mov ecx, 0x488
    call fix_bits
    mov cr4, ebx
    ; the VMXON region and the VMCS start with the revision identifier (IA32_VMX_BASIC[30:0])
    mov ecx, 0x480
    rdmsr
    and eax, 0x7fffffff
    mov [VMXON_AT], eax
    mov [VMCS_AT], eax
    mov dword [TRUE_MSRS], 0x481
    bt edx, 55 - 32             ; the TRUE capability MSRs exist: they say which default1 controls may be 0
    jnc .plain
    mov dword [TRUE_MSRS], 0x48d
.plain:
    vmxon [vmxon_ptr]
    ON_VMFAIL "VMXON"
    PUTS "hypervisor: VMX on", 10
    vmclear [vmcs_ptr]
    ON_VMFAIL "VMCLEAR"
    vmptrld [vmcs_ptr]
    ON_VMFAIL "VMPTRLD"

    ; I/O bitmaps: only the device's two ports exit
    mov edi, IO_BITMAP_A
    mov ecx, 2 * 4096 / 4
    xor eax, eax
    rep stosd
    mov byte [IO_BITMAP_A + DEVICE_OUT / 8], (1 << (DEVICE_OUT % 8)) | (1 << (DEVICE_IN % 8))

    ; the controls: what the hypervisor needs, adjusted to what the capability MSRs allow
    xor eax, eax
    mov ecx, [TRUE_MSRS]
    call controls
    VMW PIN_CONTROLS, eax
    mov eax, PROC_HLT_EXITING | PROC_USE_IO_BITMAPS
    mov ecx, [TRUE_MSRS]
    inc ecx
    call controls
    VMW PROC_CONTROLS, eax
    xor eax, eax
    mov ecx, [TRUE_MSRS]
    add ecx, 2
    call controls
    VMW EXIT_CONTROLS, eax
    xor eax, eax
    mov ecx, [TRUE_MSRS]
    add ecx, 3
    call controls
    VMW ENTRY_CONTROLS, eax
    VMW 0x2000, IO_BITMAP_A
    VMW 0x2001, 0
    VMW 0x2002, IO_BITMAP_B
    VMW 0x2003, 0
    VMW 0x4004, 0               ; exception bitmap
    VMW 0x400a, 0               ; CR3-target count
    VMW 0x400e, 0               ; MSR-store/-load counts
    VMW 0x4010, 0
    VMW 0x4014, 0
    VMW 0x4016, 0               ; no event to inject
    VMW 0x6000, 0               ; CR0/CR4 guest/host masks: the guest owns every bit
    VMW 0x6002, 0

    ; host state: this code, flat segments, the stack VM exits start on, vm_exit
    mov eax, cr0
    VMW 0x6c00, eax
    mov eax, cr3
    VMW 0x6c02, eax
    mov eax, cr4
    VMW 0x6c04, eax
    VMW 0x0c00, 0x10            ; ES
    VMW 0x0c02, 0x08            ; CS
    VMW 0x0c04, 0x10            ; SS
    VMW 0x0c06, 0x10            ; DS
    VMW 0x0c08, 0x10            ; FS
    VMW 0x0c0a, 0x10            ; GS
    VMW 0x0c0c, 0x18            ; TR
    VMW 0x6c06, 0               ; FS, GS, TR, GDTR, IDTR bases
    VMW 0x6c08, 0
    VMW 0x6c0a, TSS_AT
    VMW 0x6c0c, GDT_AT
    VMW 0x6c0e, 0
    VMW 0x4c00, 0               ; SYSENTER_CS, _ESP, _EIP
    VMW 0x6c10, 0
    VMW 0x6c12, 0
    VMW 0x6c14, HOST_STACK
    VMW 0x6c16, vm_exit

    ; guest state: the same flat 32-bit ring-0 world, its own stack, starting at guest
    mov eax, cr0
    VMW 0x6800, eax
    mov eax, cr3
    VMW 0x6802, eax
    mov eax, cr4
    VMW 0x6804, eax
    VMW 0x681a, 0x400           ; DR7
    xor esi, esi                ; ES, CS, SS, DS, FS, GS: selector, base, limit, access rights
.segment:
    mov edx, 0x10
    mov edi, 0xc093             ; data: read/write, accessed, DPL 0, present, 32-bit, 4-KiB granular
    cmp esi, 1
    jne .data
    mov edx, 0x08
    mov edi, 0xc09b             ; code: execute/read, accessed
.data:
    lea ebx, [0x0800 + esi * 2]
    vmwrite ebx, edx
    lea ebx, [0x6806 + esi * 2]
    xor eax, eax
    vmwrite ebx, eax
    lea ebx, [0x4800 + esi * 2]
    mov eax, 0xffffffff
    vmwrite ebx, eax
    lea ebx, [0x4814 + esi * 2]
    vmwrite ebx, edi
    inc esi
    cmp esi, 6
    jne .segment
    VMW 0x080c, 0               ; LDTR: unusable
    VMW 0x4820, 0x10000
    VMW 0x080e, 0x18            ; TR: the busy TSS
    VMW 0x6814, TSS_AT
    VMW 0x480e, 0x67
    VMW 0x4822, 0x8b
    VMW 0x6816, GDT_AT
    VMW 0x4810, gdt_end - gdt - 1
    VMW 0x6818, 0
    VMW 0x4812, 0
    VMW 0x681c, GUEST_STACK
    VMW GUEST_RIP, guest
    VMW 0x6820, 2               ; RFLAGS: IF = 0
    VMW 0x6822, 0               ; no pending debug exceptions
    VMW 0x4824, 0               ; interruptibility: none
    VMW 0x4826, 0               ; activity: active
    VMW 0x482a, 0               ; SYSENTER MSRs
    VMW 0x6824, 0
    VMW 0x6826, 0
    VMW 0x2800, 0xffffffff      ; no VMCS link pointer
    VMW 0x2801, 0xffffffff

    mov dword [EXITS], 0
    PUTS "hypervisor: launching the guest", 10
    vmlaunch
    STOP vmfail, "VMLAUNCH failed"

; ---------------------------------------------------------------- VM exits
; Every VM exit starts here on the host stack; the guest's general-purpose registers are still
; in the registers (only RSP and RIP are switched), so they are saved first: PUSHAD leaves them at
; [esp] EDI, +4 ESI, +8 EBP, +16 EBX, +20 EDX, +24 ECX, +28 EAX.
G_EBX equ 16
G_EDX equ 20
G_ECX equ 24
G_EAX equ 28
vm_exit:
    pushad
    inc dword [EXITS]
    mov ebx, EXIT_REASON
    vmread eax, ebx
    cmp eax, 10
    je exit_cpuid
    cmp eax, 30
    je exit_io
    cmp eax, 12
    je exit_hlt
    push eax
    PUTS "hypervisor: unexpected VM exit, reason "
    pop eax
    call puthex
    call newline
    mov al, 0x11
    jmp finish

; CPUID: leaf 40000000H is the hypervisor's own (its signature); any other leaf runs on the
; processor with VMX hidden from the guest (CPUID.1:ECX.VMX = 0)
exit_cpuid:
    PUTS "exit 10 cpuid leaf "
    mov eax, [esp + G_EAX]
    call puthex
    call newline
    mov eax, [esp + G_EAX]
    cmp eax, 0x40000000
    jne .native
    mov dword [esp + G_EBX], 'Trap'
    mov dword [esp + G_ECX], 'diff'
    mov dword [esp + G_EDX], 'Demo'
    jmp resume
.native:
    mov ecx, [esp + G_ECX]
    cpuid
    cmp dword [esp + G_EAX], 1
    jne .store
    and ecx, ~(1 << 5)
.store:
    mov [esp + G_EAX], eax
    mov [esp + G_EBX], ebx
    mov [esp + G_ECX], ecx
    mov [esp + G_EDX], edx
    jmp resume

; I/O: the exit qualification gives the port (bits 31:16), the direction (bit 3: IN) and the
; size (bits 2:0, size - 1); the device takes a byte on 600H and answers it plus one on 601H
exit_io:
    mov ebx, EXIT_QUALIFICATION
    vmread edx, ebx
    test edx, 0x10 | 7          ; string instructions and word/dword sizes: not this device's
    jnz .unexpected
    test edx, 8
    jnz .in
    PUTS "exit 30 io out port "
    mov eax, edx
    shr eax, 16
    call puthex16
    PUTS " value "
    movzx eax, byte [esp + G_EAX]
    call puthex8
    call newline
    movzx eax, byte [esp + G_EAX]
    inc eax
    mov [DEVICE], eax
    jmp resume
.in:
    PUTS "exit 30 io in port "
    mov eax, edx
    shr eax, 16
    call puthex16
    PUTS " value "
    mov eax, [DEVICE]
    mov [esp + G_EAX], al        ; IN AL: only AL changes
    call puthex8
    call newline
    jmp resume
.unexpected:
    PUTS "hypervisor: unexpected I/O, qualification "
    mov eax, edx
    call puthex
    call newline
    mov al, 0x11
    jmp finish

; HLT: the guest is done; leave VMX operation and end the run
exit_hlt:
    PUTS "exit 12 hlt", 10
    PUTS "hypervisor: the guest halted after "
    mov eax, [EXITS]
    call putdec
    PUTS " VM exits", 10
    vmxoff
    PUTS "hypervisor: VMX off", 10
    mov al, 0x10
    jmp finish

; the guest goes on after the instruction that exited
resume:
    mov ebx, GUEST_RIP
    vmread eax, ebx
    mov ebx, EXIT_INSTRUCTION_LENGTH
    vmread ecx, ebx
    add eax, ecx
    mov ebx, GUEST_RIP
    vmwrite ebx, eax
    popad
    vmresume
    STOP vmfail, "VMRESUME failed"

; ---------------------------------------------------------------- the guest
guest:
    PUTS "guest: hello from VMX non-root operation", 10
    mov eax, 0x40000000
    cpuid                       ; VM exit 10: the hypervisor answers
    mov [GUEST_DATA], ebx
    mov [GUEST_DATA + 4], ecx
    mov [GUEST_DATA + 8], edx
    mov byte [GUEST_DATA + 12], 0
    PUTS "guest: hypervisor signature "
    mov esi, GUEST_DATA
    call puts
    call newline
    mov dx, DEVICE_OUT
    mov al, 'A'
    out dx, al                  ; VM exit 30
    mov dx, DEVICE_IN
    in al, dx                   ; VM exit 30: the device answers 'B'
    mov [GUEST_DATA + 16], al
    mov byte [GUEST_DATA + 17], 0
    PUTS "guest: the device answered "
    mov esi, GUEST_DATA + 16
    call puts
    call newline
    hlt                         ; VM exit 12
    jmp $

; ---------------------------------------------------------------- helpers
; fix_bits: EBX with the bits the capability MSR pair ECX (FIXED0), ECX + 1 (FIXED1) fixes
fix_bits:
    rdmsr
    or ebx, eax
    inc ecx
    rdmsr
    and ebx, eax
    ret

; controls: EAX, the controls wanted, as the capability MSR ECX allows them (its low half: bits
; that must be 1; its high half: bits that may be 1); a wanted control it does not allow fails
controls:
    mov ebx, eax
    rdmsr
    or eax, ebx
    and eax, edx
    not edx
    test ebx, edx
    jnz .unsupported
    ret
.unsupported:
    STOP fail, "a control the processor does not allow"

; vmfail: prints ESI and the VM-instruction error (VMfailValid) or "VMfailInvalid", then ends
vmfail:
    jc fail
    call puts
    PUTS ", VM-instruction error "
    mov ebx, VM_INSTRUCTION_ERROR
    vmread eax, ebx
    call putdec
    call newline
    mov al, 0x11
    jmp finish
; fail: prints ESI, then ends with status 35
fail:
    call puts
    call newline
    mov al, 0x11
    jmp finish

; puts_inline: prints the NUL-terminated string at its return address and returns past it
; (the PUTS macro's string; clobbers AL, ESI)
puts_inline:
    pop esi
    call puts
    jmp esi
; puts: the NUL-terminated string at ESI to port 0xE9, ESI left past its NUL (clobbers AL)
puts:
    lodsb
    test al, al
    jz .done
    out 0xe9, al
    jmp puts
.done:
    ret
newline:
    mov al, 10
    out 0xe9, al
    ret
; puthex / puthex16 / puthex8: EAX (its low 32, 16, 8 bits) in hex digits (clobbers EAX, ECX, EDX)
puthex:
    mov ecx, 8
    jmp hexdigits
puthex16:
    shl eax, 16
    mov ecx, 4
    jmp hexdigits
puthex8:
    shl eax, 24
    mov ecx, 2
hexdigits:
    rol eax, 4
    mov edx, eax
    and al, 15
    add al, '0'
    cmp al, '9'
    jbe .digit
    add al, 'A' - '0' - 10
.digit:
    out 0xe9, al
    mov eax, edx
    loop hexdigits
    ret
; putdec: EAX in decimal (clobbers EAX, ECX, EDX)
putdec:
    xor ecx, ecx
.divide:
    xor edx, edx
    push ebx
    mov ebx, 10
    div ebx
    pop ebx
    push edx
    inc ecx
    test eax, eax
    jnz .divide
.print:
    pop eax
    add al, '0'
    out 0xe9, al
    loop .print
    ret

; finish: isa-debug-exit with AL (trapdiff and QEMU stop with status (AL << 1) | 1), then
; "Shutdown" to Bochs's shutdown port
finish:
    out 0xf4, al
    mov dx, 0x8900
    mov esi, shutdown_word
.next:
    lodsb
    test al, al
    jz .halt
    out dx, al
    jmp .next
.halt:
    cli
    hlt
    jmp .halt

shutdown_word: db "Shutdown", 0

    times 0xfff0 - ($ - $$) db 0xff
bits 16
reset:
    jmp 0xf000:(start - 0xf0000) ; the reset vector, F000:FFF0
    times 0x10000 - ($ - $$) db 0xff
