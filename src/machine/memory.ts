// Physical memory: RAM, ROM and MMIO ranges over the 4 GiB physical address space, with a flag
// byte per 4 KiB page that lets the CPU take a fast path for plain RAM (see PF_*), and
// copy-on-write snapshots of RAM.
//
// Layout choices (documented in the README): RAM starts at 0 and is plain RAM everywhere below
// its size except where a ROM or MMIO range is mapped over it (there is no VGA hole: trapdiff has
// no video device, and guests that compare against peers stay out of 0xA0000-0xFFFFF anyway).
// Addresses above RAM that nothing claims read as all-ones and ignore writes, like an ISA bus
// with nothing answering.

import type { AccessSize, Device } from './device.js';

/** Page is not plain RAM (ROM, MMIO, unmapped): accesses go to readSlow/writeSlow. */
export const PF_SLOW = 1;
/** Page holds decoded code: set and cleared by the CPU only. */
export const PF_CODE = 2;
/** Page is clean since the last snapshot: its first write goes to writeSlow (copy-on-write). */
export const PF_TRACK = 4;
/** Page is ROM: slow to access but immutable, so the CPU may cache code decoded from it. */
export const PF_ROM = 8;
/**
 * Page is watched and unwritten since the watch was last collected: its first write goes to
 * writeSlow, which lists the page (the recorder re-hashes only pages written between checkpoints).
 */
export const PF_WATCH = 16;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
const PAGE_COUNT = 1 << 20;

const ALL_ONES = [0, 0xff, 0xffff, 0, -1] as const;

type Region =
  | { kind: 'rom'; base: number; data: Uint8Array }
  | { kind: 'mmio'; base: number; length: number; device: Device };

export class PhysicalMemory {
  readonly ram: Uint8Array;
  readonly view: DataView;
  readonly size: number;
  readonly pageFlags = new Uint8Array(PAGE_COUNT);
  /** Region index + 1 per page (0: RAM below size, or unmapped above it). */
  private readonly pageRegion = new Uint16Array(PAGE_COUNT);
  private readonly regions: Region[] = [];

  // Copy-on-write state: one baseline at a time. `shadow` holds the baseline content of every
  // page written since it was taken (lazily, at the first write); `dirty` lists those pages.
  private shadow: Uint8Array | null = null;
  private readonly dirty: Int32Array;
  private dirtyCount = 0;
  private snapshotId = 0;

  // Write watch (PF_WATCH): pages written since the watch was armed or last collected, or null
  // when nothing watches (then no page carries PF_WATCH and the fast path is as without it).
  private watched: Int32Array | null = null;
  private watchedCount = 0;

  constructor(sizeBytes: number) {
    if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE !== 0 || sizeBytes > 0xc000_0000) {
      throw new RangeError(`RAM size ${sizeBytes} must be a positive multiple of 4 KiB up to 3 GiB`);
    }
    this.size = sizeBytes;
    this.ram = new Uint8Array(sizeBytes);
    this.view = new DataView(this.ram.buffer);
    this.dirty = new Int32Array(sizeBytes >>> PAGE_SHIFT);
    this.pageFlags.fill(PF_SLOW, sizeBytes >>> PAGE_SHIFT);
  }

  /** Maps `data` read-only at `base` (page-aligned, whole pages), over RAM or above it. */
  mapRom(base: number, data: Uint8Array): void {
    if (data.length % PAGE_SIZE !== 0) throw new RangeError('ROM length must be a multiple of 4 KiB');
    this.addRegion({ kind: 'rom', base, data }, base, data.length);
  }

  /** Routes [device.mmio.base, +length) to the device (rounded out to whole pages). */
  mapMmio(device: Device): void {
    const r = device.mmio;
    if (!r) throw new Error(`device ${device.name} has no MMIO range`);
    this.addRegion({ kind: 'mmio', base: r.base, length: r.length, device }, r.base,
      Math.ceil(r.length / PAGE_SIZE) * PAGE_SIZE);
  }

  private addRegion(region: Region, base: number, length: number): void {
    if (base % PAGE_SIZE !== 0 || base < 0 || base + length > 2 ** 32 || length === 0) {
      throw new RangeError(`region at 0x${base.toString(16)} (+0x${length.toString(16)}) is not page-aligned inside 4 GiB`);
    }
    const first = base >>> PAGE_SHIFT, end = first + length / PAGE_SIZE;
    for (let p = first; p < end; p++) {
      if (this.pageRegion[p] !== 0) throw new RangeError(`region at 0x${base.toString(16)} overlaps another`);
    }
    this.regions.push(region);
    for (let p = first; p < end; p++) {
      this.pageRegion[p] = this.regions.length;
      this.pageFlags[p]! |= region.kind === 'rom' ? PF_SLOW | PF_ROM : PF_SLOW;
    }
  }

  readSlow(addr: number, size: AccessSize): number {
    addr >>>= 0;
    const r = this.pageRegion[addr >>> PAGE_SHIFT]!;
    if (r === 0) {
      if (addr >= this.size) return ALL_ONES[size];
      return size === 1 ? this.ram[addr]! : size === 2 ? this.view.getUint16(addr, true) : this.view.getInt32(addr, true);
    }
    const region = this.regions[r - 1]!;
    const off = addr - region.base;
    if (region.kind === 'rom') {
      const d = region.data;
      return size === 1 ? d[off]! : size === 2 ? d[off]! | (d[off + 1]! << 8)
        : d[off]! | (d[off + 1]! << 8) | (d[off + 2]! << 16) | (d[off + 3]! << 24);
    }
    if (off >= region.length || !region.device.mmioRead) return ALL_ONES[size];
    return region.device.mmioRead(off, size);
  }

  writeSlow(addr: number, size: AccessSize, v: number): void {
    addr >>>= 0;
    const p = addr >>> PAGE_SHIFT;
    const r = this.pageRegion[p]!;
    if (r === 0) {
      if (addr >= this.size) return;
      if (this.pageFlags[p]! & (PF_TRACK | PF_WATCH)) this.noteWrite(p);
      if (size === 1) this.ram[addr] = v;
      else if (size === 2) this.view.setUint16(addr, v, true);
      else this.view.setInt32(addr, v, true);
      return;
    }
    const region = this.regions[r - 1]!;
    if (region.kind === 'mmio') {
      const off = addr - region.base;
      if (off < region.length) region.device.mmioWrite?.(off, size, v);
    }
    // ROM: writes are ignored.
  }

  /** The first write to RAM page `p` since a snapshot (PF_TRACK) or a watch collection (PF_WATCH). */
  private noteWrite(p: number): void {
    if (this.pageFlags[p]! & PF_TRACK) this.preserve(p);
    if (this.pageFlags[p]! & PF_WATCH) this.watchHit(p);
  }

  private watchHit(p: number): void {
    this.watched![this.watchedCount++] = p;
    this.pageFlags[p]! &= ~PF_WATCH;
  }

  /** Starts watching writes to every RAM page (anew: pages listed so far are forgotten). */
  watchWrites(): void {
    this.watched ??= new Int32Array(this.size >>> PAGE_SHIFT);
    this.watchedCount = 0;
    const pages = this.size >>> PAGE_SHIFT;
    for (let p = 0; p < pages; p++) this.pageFlags[p]! |= PF_WATCH;
  }

  /**
   * The RAM pages written since the watch started or since the last call, each once, in order
   * of first write; watches them again. The array is reused by the next call.
   */
  collectWrites(): Int32Array {
    const list = this.watched;
    if (list === null) throw new Error('collectWrites: nothing is watched (watchWrites first)');
    const n = this.watchedCount;
    for (let i = 0; i < n; i++) this.pageFlags[list[i]!]! |= PF_WATCH;
    this.watchedCount = 0;
    return list.subarray(0, n);
  }

  /** Stops the write watch: writes take the fast path again. */
  unwatchWrites(): void {
    if (this.watched === null) return;
    const pages = this.size >>> PAGE_SHIFT;
    for (let p = 0; p < pages; p++) this.pageFlags[p]! &= ~PF_WATCH;
    this.watched = null;
    this.watchedCount = 0;
  }

  /** Copies page `p`'s baseline content aside before its first write since the snapshot. */
  private preserve(p: number): void {
    const from = p << PAGE_SHIFT;
    this.shadow!.set(this.ram.subarray(from, from + PAGE_SIZE), from);
    this.dirty[this.dirtyCount++] = p;
    this.pageFlags[p]! &= ~PF_TRACK;
  }

  /**
   * Makes RAM's current content the copy-on-write baseline (replacing any earlier one) and
   * returns its id for restore().
   */
  snapshot(): number {
    this.shadow ??= new Uint8Array(this.size);
    const pages = this.size >>> PAGE_SHIFT;
    for (let p = 0; p < pages; p++) this.pageFlags[p]! |= PF_TRACK;
    this.dirtyCount = 0;
    return ++this.snapshotId;
  }

  /**
   * Puts back RAM as it was at snapshot `id` (the latest one), copying only pages written since.
   * Code the CPU decoded from those pages is stale afterwards: the caller restores the CPU too,
   * which drops its decoded blocks.
   */
  restore(id: number): void {
    if (id !== this.snapshotId || this.shadow === null) {
      throw new Error(`memory snapshot ${id} is not the current baseline (${this.snapshotId})`);
    }
    const shadow = this.shadow;
    for (let i = 0; i < this.dirtyCount; i++) {
      const p = this.dirty[i]!, from = p << PAGE_SHIFT;
      this.ram.set(shadow.subarray(from, from + PAGE_SIZE), from);
      this.pageFlags[p]! |= PF_TRACK;
      if (this.pageFlags[p]! & PF_WATCH) this.watchHit(p);
    }
    this.dirtyCount = 0;
  }

  /** Pages written since the current snapshot (for statistics and tests). */
  get dirtyPages(): number {
    return this.dirtyCount;
  }

  /**
   * Copies bytes into RAM for loaders and tests (before the CPU has decoded anything: no code
   * invalidation). Honours copy-on-write. Throws a RangeError outside RAM.
   */
  load(addr: number, bytes: Uint8Array): void {
    this.checkRam(addr, bytes.length);
    if (bytes.length === 0) return;
    const last = (addr + bytes.length - 1) >>> PAGE_SHIFT;
    for (let p = addr >>> PAGE_SHIFT; p <= last; p++) if (this.pageFlags[p]! & (PF_TRACK | PF_WATCH)) this.noteWrite(p);
    this.ram.set(bytes, addr);
  }

  /** A copy of RAM bytes (for loaders, reports and tests). */
  readBytes(addr: number, length: number): Uint8Array {
    this.checkRam(addr, length);
    return this.ram.slice(addr, addr + length);
  }

  private checkRam(addr: number, length: number): void {
    if (!(addr >= 0 && length >= 0 && addr + length <= this.size)) {
      throw new RangeError(`0x${addr.toString(16)}+0x${length.toString(16)} is outside RAM (0x${this.size.toString(16)} bytes)`);
    }
  }
}
