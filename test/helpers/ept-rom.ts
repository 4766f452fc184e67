// The EPT ROMs' frame (test/vmx-ept, vmx-delivery, vmx-vpid, vmx-unrestricted): inside the VMX
// ROM frame of helpers/vmx-rom.ts, an identity EPT built by the host, the VMWRITEs that turn EPT
// on, and the layout of a ROM made of cases that each launch a guest.

import { vmxRom } from './vmx-rom.js';

/** EPT structures of the ROMs: PML4 50000H, PDPT 51000H, PD 52000H, PT 53000H. */
export const ROM_EPT_PT = 0x53000;

/**
 * `identity_ept`: an identity EPT (WB, RWX) with 4-KiB pages for guest-physical 0-2 MiB and a
 * 2-MiB page for 2-4 MiB that maps host 0; it also clears the ROM's scratch dword at 41200H.
 */
export const IDENTITY_EPT = `identity_ept:
  mov dword [0x50000], 0x51007
  mov dword [0x50004], 0
  mov dword [0x51000], 0x52007
  mov dword [0x51004], 0
  mov dword [0x52000], 0x53007
  mov dword [0x52004], 0
  mov dword [0x52008], 0xb7
  mov dword [0x5200c], 0
  xor ecx, ecx
.pt:
  mov eax, ecx
  shl eax, 12
  or eax, 0x37
  mov [0x53000 + ecx * 8], eax
  mov dword [0x53004 + ecx * 8], 0
  inc ecx
  cmp ecx, 512
  jne .pt
  mov dword [0x41200], 0
  ret
`;

/** Host lines after FLAT_GUEST: the identity EPT, secondary controls on with "enable EPT" and `proc2`, the EPTP. */
export const eptOn = (proc2 = 0): string => `  call identity_ept
  OR 0x4002, 0x80000000
  W 0x401e, ${2 | proc2}
  W 0x201a, 0x5001e
  W 0x201b, 0
`;

/** A host line setting the EPT leaf of guest-physical page `page` (a page number below 200H) to `value`. */
export const leafRom = (page: number, value: number): string =>
  `mov dword [0x${ROM_EPT_PT.toString(16)} + 0x${page.toString(16)} * 8], 0x${value.toString(16)}`;

/**
 * An EPT ROM: `prelude` (%defines, %macros, set-up), VMXON, `body` (the cases, each launching a
 * guest at a label of `guests` whose exits resume at `host`), VMXOFF; identity_ept is there to call.
 */
export const eptRom = (o: { prelude: string; body: string; guests: string; host: string }): string => vmxRom(`${o.prelude}
  FLAGS {vmxon [PTR]}
${o.body}
  jmp rom_done
${IDENTITY_EPT}guest:
${o.guests}
host:
${o.host}
rom_done:
`);
