// Building descriptors (segments, gates, LDT/TSS) and GDT contents for the segmentation,
// far-transfer, task and interrupt tests, and running a CPU while catching the first exception
// (so the tests need no IDT).

import type { Cpu } from '../../src/cpu/cpu.js';
import { catchException, GDT_BASE, step, type Caught } from './harness.js';

/** The two dwords of a segment descriptor: `access` is the byte P/DPL/S/type, `flags` the G/D/L/AVL nibble. */
export function segDescriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = ((base & 0xffff) << 16) | (limit & 0xffff);
  const hi = (base & 0xff000000) | ((flags & 0xf) << 20) | (limit & 0xf0000) | (access << 8) | ((base >>> 16) & 0xff);
  return [lo >>> 0, hi >>> 0];
}
/** A code/data segment descriptor (int32 dwords): `type` is the 4-bit type, S = 1; flags: G (8), D/B (4). */
export function segDesc(base: number, limit: number, type: number, dpl: number, opts: { p?: boolean; g?: boolean; db?: boolean } = {}): [number, number] {
  const { p = true, g = false, db = true } = opts;
  const [lo, hi] = segDescriptor(base, limit, type | 0x10 | (dpl << 5) | (p ? 0x80 : 0), (g ? 8 : 0) | (db ? 4 : 0));
  return [lo | 0, hi | 0];
}
/** A system descriptor (LDT, TSS): S = 0. */
export function sysDesc(base: number, limit: number, type: number, dpl: number, p = true): [number, number] {
  const [lo, hi] = segDesc(base, limit, type, dpl, { p, db: false });
  return [lo, hi & ~0x1000];
}
/** A call, interrupt, trap or task gate. */
export function gateDesc(sel: number, offset: number, type: number, dpl: number, params = 0, p = true): [number, number] {
  const lo = (sel << 16) | (offset & 0xffff);
  const hi = (offset & 0xffff0000) | ((type | (dpl << 5) | (p ? 0x80 : 0)) << 8) | (params & 0x1f);
  return [lo | 0, hi | 0];
}

/** Writes descriptor `d` at GDT index `index` (the harness GDT) and grows GDTR's limit to cover it. */
export function setGdt(cpu: Cpu, index: number, d: [number, number]): number {
  writeDesc(cpu, GDT_BASE + index * 8, d);
  cpu.gdtrLimit = Math.max(cpu.gdtrLimit, index * 8 + 7);
  return index * 8;
}
export function writeDesc(cpu: Cpu, addr: number, [lo, hi]: [number, number]): void {
  cpu.mem.view.setInt32(addr, lo, true);
  cpu.mem.view.setInt32(addr + 4, hi, true);
}
export function descHi(cpu: Cpu, sel: number): number {
  return cpu.mem.view.getUint32(GDT_BASE + (sel & 0xfff8) + 4, true);
}

/** Runs `n` instructions; returns the first exception raised (not delivered), or null. */
export function runCatch(cpu: Cpu, n = 1): Caught | null {
  try {
    return catchException(cpu, () => step(cpu, n));
  } finally {
    cpu.events = null;
  }
}
