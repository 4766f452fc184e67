// What the multiboot and flat loaders share: the boot area they reserve in guest memory, the
// checks that an image lands in RAM outside it, and the flat 32-bit protected-mode entry state.
//
// Boot area, 0x70000-0x7FFFF (64 KiB, below the traditional EBDA):
//   0x70000-0x7EFFF  the stack; ESP = 0x7F000 at entry, growing down
//   0x7F000-0x7F017  the GDT: null, flat code (0x08), flat data (0x10)
//   0x7F800-0x7FFFF  the multiboot information structure, memory map and strings
// Images may be placed anywhere else in RAM.

import type { Cpu } from '../../cpu/cpu.js';
import { AR_DB, AR_G, AR_P, AR_S, CR0_ET, CR0_PE, CS, DS, EAX, EBX, ES, ESP, FS, GS, SEGT_CODE, SEGT_READABLE, SEGT_WRITABLE, SS, AR_ACCESSED } from '../../cpu/constants.js';
import { UserError } from '../errors.js';
import type { PhysicalMemory } from '../memory.js';

export const BOOT_AREA_BASE = 0x70000;
export const BOOT_AREA_END = 0x80000;
export const BOOT_STACK_TOP = 0x7f000;
export const BOOT_GDT = 0x7f000;
export const BOOT_INFO = 0x7f800;

export const FLAT_CODE_SEL = 0x08;
export const FLAT_DATA_SEL = 0x10;
// Access rights in the VMCS layout: present, DPL 0, 32-bit, 4 KiB granular, accessed (so the CPU
// never has to set the bit in the GDT).
const AR_FLAT = AR_P | AR_S | AR_DB | AR_G | AR_ACCESSED;
const AR_CODE = AR_FLAT | SEGT_CODE | SEGT_READABLE;
const AR_DATA = AR_FLAT | SEGT_WRITABLE;

export interface BootTarget {
  readonly mem: PhysicalMemory;
  readonly cpu: Cpu;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** Throws a UserError unless [base, base+length) lies in RAM and outside the boot area. */
export function checkPlacement(mem: PhysicalMemory, what: string, base: number, length: number): void {
  const end = base + length;
  if (!Number.isSafeInteger(base) || base < 0 || end > 2 ** 32) {
    throw new UserError(`${what} at ${hex(base)} (+${hex(length)}) is outside the 4 GiB address space`);
  }
  if (end > mem.size) {
    throw new UserError(`${what} at ${hex(base)}-${hex(end - 1)} does not fit in ${mem.size >>> 20} MiB of RAM (use --mem)`);
  }
  if (base < BOOT_AREA_END && end > BOOT_AREA_BASE) {
    throw new UserError(`${what} at ${hex(base)}-${hex(end - 1)} overlaps the boot area ${hex(BOOT_AREA_BASE)}-${hex(BOOT_AREA_END - 1)}`);
  }
}

/** A flat 4 GiB descriptor with the given access byte (bits 8-15 of the high dword). */
function flatDescriptor(view: DataView, at: number, access: number): void {
  view.setUint32(at, 0x0000ffff, true);
  view.setUint32(at + 4, 0x00cf0000 | (access << 8), true);
}

/**
 * The state the Multiboot specification (section 3.2) prescribes, which the flat loader uses
 * too: PE=1, PG=0, CS a flat 32-bit execute/read segment, the other segments flat read/write
 * data, EFLAGS with IF=0 and VM=0, A20 enabled (the power-on state). Beyond the specification
 * (which leaves them undefined) ESP = BOOT_STACK_TOP, GDTR points at the boot GDT, and every
 * other general register is 0.
 */
export function enterFlatProtectedMode(t: BootTarget, entry: number, eax = 0, ebx = 0): void {
  const { cpu, mem } = t;
  const gdt = new DataView(new ArrayBuffer(24));
  flatDescriptor(gdt, 8, 0x9b);
  flatDescriptor(gdt, 16, 0x93);
  mem.load(BOOT_GDT, new Uint8Array(gdt.buffer));
  cpu.gdtrBase = BOOT_GDT;
  cpu.gdtrLimit = 23;
  cpu.cr0 = CR0_PE | CR0_ET;
  cpu.setSegCache(CS, FLAT_CODE_SEL, 0, 0xffffffff, AR_CODE);
  for (const s of [SS, DS, ES, FS, GS]) cpu.setSegCache(s, FLAT_DATA_SEL, 0, 0xffffffff, AR_DATA);
  cpu.cpl = 0;
  cpu.setEflags(0x2);
  cpu.regs.fill(0);
  cpu.regs[EAX] = eax;
  cpu.regs[EBX] = ebx;
  cpu.regs[ESP] = BOOT_STACK_TOP;
  cpu.eip = entry >>> 0;
}
