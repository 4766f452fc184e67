// The flat loader: a raw binary copied to one address and entered there in 32-bit flat protected
// mode, ring 0, paging off (the state of boot.ts: ESP = 0x7F000).

import type { BootTarget } from './boot.js';
import { checkPlacement, enterFlatProtectedMode } from './boot.js';
import { UserError } from '../errors.js';

export const FLAT_DEFAULT_AT = 0x100000;

export function loadFlat(t: BootTarget, image: Uint8Array, at = FLAT_DEFAULT_AT): string {
  if (image.length === 0) throw new UserError('flat image is empty');
  checkPlacement(t.mem, 'flat image', at, image.length);
  t.mem.load(at, image);
  enterFlatProtectedMode(t, at);
  return `flat binary, ${image.length} bytes at 0x${at.toString(16)}, entered at 0x${at.toString(16)} in 32-bit protected mode`;
}
