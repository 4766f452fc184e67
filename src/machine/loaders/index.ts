// Loader selection: by name, or sniffed from the image (see sniffLoader).

import { UserError } from '../errors.js';
import type { BootTarget } from './boot.js';
import { BIOS_MAX, loadBios } from './bios.js';
import { loadFlat } from './flat.js';
import { findMultibootHeader, isElf, loadMultiboot } from './multiboot.js';

export const LOADERS = ['bios', 'multiboot', 'flat'] as const;
export type LoaderKind = (typeof LOADERS)[number];

export function isLoaderKind(s: string): s is LoaderKind {
  return (LOADERS as readonly string[]).includes(s);
}

/**
 * The default loader for an image: an ELF file or one with a Multiboot header in its first
 * 8 KiB is `multiboot`; a file named *.rom or *.bios, or one of exactly 64 or 128 KiB, is
 * `bios`; anything else is `flat`.
 */
export function sniffLoader(image: Uint8Array, fileName = ''): LoaderKind {
  if (isElf(image) || findMultibootHeader(image) >= 0) return 'multiboot';
  if (/\.(rom|bios)$/i.test(fileName) || image.length === 64 * 1024 || image.length === BIOS_MAX) return 'bios';
  return 'flat';
}

export interface LoadOptions {
  /** Load address of a flat image (only the flat loader takes one). */
  at?: number;
}

/** Puts the image into a freshly reset machine and sets the CPU's entry state; returns a description. */
export function loadImage(t: BootTarget, image: Uint8Array, kind: LoaderKind, opts: LoadOptions = {}): string {
  if (opts.at !== undefined && kind !== 'flat') throw new UserError(`--at applies to the flat loader only, not ${kind}`);
  switch (kind) {
    case 'bios': return loadBios(t, image);
    case 'multiboot': return loadMultiboot(t, image);
    case 'flat': return loadFlat(t, image, opts.at);
  }
}
