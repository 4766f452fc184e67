// The BIOS loader: a ROM image mapped so that it ends at 0xFFFFF and, aliased, at 0xFFFFFFFF,
// the way a PC's firmware flash is decoded. The CPU starts from its reset state, CS.base =
// 0xFFFF0000 and EIP = 0xFFF0, so the first fetch is the ROM's last 16 bytes at the top of
// 4 GiB; the far jump there reloads CS and continues in the low copy.

import { UserError } from '../errors.js';
import { PAGE_SIZE } from '../memory.js';
import type { BootTarget } from './boot.js';

export const BIOS_MAX = 128 * 1024;
const BIOS_GRANULE = 2 * 1024;

export function loadBios(t: BootTarget, image: Uint8Array): string {
  if (image.length === 0) throw new UserError('BIOS image is empty');
  if (image.length > BIOS_MAX) throw new UserError(`BIOS image is ${image.length} bytes; at most 128 KiB fits below 1 MiB`);
  if (image.length % BIOS_GRANULE !== 0) {
    throw new UserError(`BIOS image is ${image.length} bytes; its size must be a multiple of 2 KiB (64 or 128 KiB usually)`);
  }
  // Mapping works in whole pages: a ROM that is not a page multiple is padded at its start with
  // 0xFF (what an erased flash reads).
  const mapped = Math.ceil(image.length / PAGE_SIZE) * PAGE_SIZE;
  const rom = new Uint8Array(mapped).fill(0xff);
  rom.set(image, mapped - image.length);
  t.mem.mapRom(0x100000 - mapped, rom);
  t.mem.mapRom(2 ** 32 - mapped, rom);
  return `BIOS ROM, ${image.length / 1024} KiB at 0x${(0x100000 - image.length).toString(16)}-0xfffff`;
}
