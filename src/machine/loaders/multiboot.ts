// The Multiboot (version 0.6.96) loader: finds the header in the first 8 KiB, loads the kernel by
// the header's address fields (the "a.out kludge", flags bit 16) or else by its ELF32 program
// headers, builds the information structure (memory sizes and a memory map) in the boot area and
// enters the kernel as the specification's section 3.2 says (boot.ts).

import { UserError } from '../errors.js';
import type { PhysicalMemory } from '../memory.js';
import type { BootTarget } from './boot.js';
import { BOOT_INFO, checkPlacement, enterFlatProtectedMode } from './boot.js';

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
const SEARCH_LIMIT = 8192;
/** Requirement bits (0-15) this loader satisfies: 0 page-align modules (there are none), 1 memory info. */
const SUPPORTED_REQUIREMENTS = 0x3;
const FLAG_VIDEO = 1 << 2;
const FLAG_AOUT_KLUDGE = 1 << 16;

// Information structure flags (section 3.3).
const INFO_MEM = 1 << 0, INFO_MMAP = 1 << 6, INFO_LOADER_NAME = 1 << 9;
const LOADER_NAME = 'trapdiff';

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** Offset of a valid Multiboot header (magic, flags, checksum summing to 0), or -1. */
export function findMultibootHeader(image: Uint8Array): number {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const limit = Math.min(SEARCH_LIMIT, image.length) - 12;
  for (let off = 0; off <= limit; off += 4) {
    if (v.getUint32(off, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    if (((MULTIBOOT_HEADER_MAGIC + v.getUint32(off + 4, true) + v.getUint32(off + 8, true)) | 0) === 0) return off;
  }
  return -1;
}

export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
}

interface Segment { fileOffset: number; fileSize: number; addr: number; memSize: number }

/** One piece to copy: [fileOffset, +fileSize) to addr, then zeros up to memSize. */
function copySegments(mem: PhysicalMemory, image: Uint8Array, segs: Segment[]): void {
  for (const s of segs) checkPlacement(mem, 'kernel segment', s.addr, s.memSize);
  for (const s of segs) {
    mem.load(s.addr, image.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    mem.load(s.addr + s.fileSize, new Uint8Array(s.memSize - s.fileSize));
  }
}

function aoutKludge(v: DataView, hdr: number, image: Uint8Array): { segs: Segment[]; entry: number } {
  if (hdr + 32 > image.length) throw new UserError('multiboot header is truncated (address fields missing)');
  const headerAddr = v.getUint32(hdr + 12, true), loadAddr = v.getUint32(hdr + 16, true);
  const loadEnd = v.getUint32(hdr + 20, true), bssEnd = v.getUint32(hdr + 24, true);
  const entry = v.getUint32(hdr + 28, true);
  const fileOffset = hdr - (headerAddr - loadAddr);
  if (loadAddr > headerAddr || fileOffset < 0) {
    throw new UserError(`multiboot load_addr ${hex(loadAddr)} and header_addr ${hex(headerAddr)} place the load before the file start`);
  }
  const fileSize = loadEnd === 0 ? image.length - fileOffset : loadEnd - loadAddr;
  if (fileSize < 0 || fileOffset + fileSize > image.length) {
    throw new UserError(`multiboot load_end_addr ${hex(loadEnd)} is outside the file`);
  }
  const end = loadAddr + fileSize;
  if (bssEnd !== 0 && bssEnd < end) throw new UserError(`multiboot bss_end_addr ${hex(bssEnd)} is below the loaded image`);
  const memSize = (bssEnd === 0 ? end : bssEnd) - loadAddr;
  return { segs: [{ fileOffset, fileSize, addr: loadAddr, memSize }], entry };
}

function elfSegments(v: DataView, image: Uint8Array): { segs: Segment[]; entry: number } {
  if (image.length < 52) throw new UserError('ELF header is truncated');
  if (image[4] !== 1 || image[5] !== 1) throw new UserError('ELF image is not 32-bit little-endian');
  if (v.getUint16(16, true) !== 2 || v.getUint16(18, true) !== 3) throw new UserError('ELF image is not an i386 executable');
  const phoff = v.getUint32(28, true), phentsize = v.getUint16(42, true), phnum = v.getUint16(44, true);
  if (phnum === 0 || phentsize < 32 || phoff + phnum * phentsize > image.length) {
    throw new UserError('ELF program headers are missing or truncated');
  }
  const segs: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (v.getUint32(ph, true) !== 1 /* PT_LOAD */) continue;
    const fileOffset = v.getUint32(ph + 4, true), addr = v.getUint32(ph + 12, true); // p_paddr
    const fileSize = v.getUint32(ph + 16, true), memSize = v.getUint32(ph + 20, true);
    if (fileOffset + fileSize > image.length) throw new UserError(`ELF segment ${i} extends past the end of the file`);
    if (memSize < fileSize) throw new UserError(`ELF segment ${i} has p_memsz below p_filesz`);
    if (memSize > 0) segs.push({ fileOffset, fileSize, addr, memSize });
  }
  if (segs.length === 0) throw new UserError('ELF image has no loadable segment');
  return { segs, entry: v.getUint32(24, true) };
}

/** Writes the information structure, memory map and loader name at BOOT_INFO; returns its address. */
function writeInfo(mem: PhysicalMemory): number {
  const info = new DataView(new ArrayBuffer(0x800));
  const mmapOff = 0x80, nameOff = 0x100;
  // Memory map: conventional memory below the legacy hole, and everything from 1 MiB up.
  const ranges: [number, number][] = [[0, 0xa0000], [0x100000, mem.size - 0x100000]];
  ranges.forEach(([base, len], i) => {
    const e = mmapOff + i * 24;
    info.setUint32(e, 20, true); // size of the rest of the entry
    info.setUint32(e + 4, base, true);
    info.setUint32(e + 12, len, true);
    info.setUint32(e + 20, 1, true); // available RAM
  });
  for (let i = 0; i < LOADER_NAME.length; i++) info.setUint8(nameOff + i, LOADER_NAME.charCodeAt(i));
  info.setUint32(0, INFO_MEM | INFO_MMAP | INFO_LOADER_NAME, true);
  info.setUint32(4, 640, true); // mem_lower, KiB
  info.setUint32(8, (mem.size - 0x100000) / 1024, true); // mem_upper, KiB from 1 MiB
  info.setUint32(44, ranges.length * 24, true); // mmap_length
  info.setUint32(48, BOOT_INFO + mmapOff, true); // mmap_addr
  info.setUint32(64, BOOT_INFO + nameOff, true); // boot_loader_name
  mem.load(BOOT_INFO, new Uint8Array(info.buffer));
  return BOOT_INFO;
}

export function loadMultiboot(t: BootTarget, image: Uint8Array): string {
  if (image.length === 0) throw new UserError('multiboot image is empty');
  if (t.mem.size < 0x200000) throw new UserError('multiboot needs at least 2 MiB of RAM');
  const hdr = findMultibootHeader(image);
  if (hdr < 0) throw new UserError('no multiboot header (magic 0x1BADB002 with a valid checksum) in the first 8 KiB');
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const flags = v.getUint32(hdr + 4, true);
  if (flags & FLAG_VIDEO) throw new UserError('multiboot header requests a video mode; trapdiff has no display');
  if (flags & 0xffff & ~SUPPORTED_REQUIREMENTS) {
    throw new UserError(`multiboot header has unsupported requirement flags ${hex(flags & 0xffff)}`);
  }
  let how: string;
  let loaded: { segs: Segment[]; entry: number };
  if (flags & FLAG_AOUT_KLUDGE) {
    how = 'a.out kludge';
    loaded = aoutKludge(v, hdr, image);
  } else if (isElf(image)) {
    how = 'ELF';
    loaded = elfSegments(v, image);
  } else {
    throw new UserError('multiboot image is neither ELF nor has address fields (flags bit 16)');
  }
  const { segs, entry } = loaded;
  if (!segs.some((s) => entry >= s.addr && entry < s.addr + s.memSize)) {
    throw new UserError(`multiboot entry point ${hex(entry)} is outside the loaded image`);
  }
  copySegments(t.mem, image, segs);
  enterFlatProtectedMode(t, entry, MULTIBOOT_BOOTLOADER_MAGIC, writeInfo(t.mem));
  const extent = segs.map((s) => `${hex(s.addr)}-${hex(s.addr + s.memSize - 1)}`).join(', ');
  return `multiboot (${how}) kernel at ${extent}, entered at ${hex(entry)} with EAX=0x2badb002 EBX=${hex(BOOT_INFO)}`;
}
