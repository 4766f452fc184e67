// Paging: translation, protection, A/D bits, #PF error codes and CR2, and the TLB's flush
// rules (a stale entry stays visible until software flushes it).

import { describe, expect, it } from 'vitest';
import { CR0_PG, CR0_WP, CR4_PGE, CR4_PSE, DS, EXC_PF } from '../src/cpu/constants.js';
import { FAULT, type Cpu } from '../src/cpu/cpu.js';
import { flushTlb, invalidatePage } from '../src/cpu/paging.js';
import { makeCpu, type Harness } from './helpers/harness.js';

const PD = 0x20000, PT = 0x21000;
const P = 1, RW = 2, US = 4, A = 0x20, D = 0x40, PS = 0x80, G = 0x100;

/** Identity-maps the first 4 MiB with 4 KiB pages (flags per page overridable) and enables paging. */
function withPaging(h: Harness, pteFlags = P | RW | US, pdeFlags = P | RW | US): Cpu {
  const { cpu, mem } = h;
  mem.view.setUint32(PD, PT | pdeFlags, true);
  for (let n = 0; n < 1024; n++) mem.view.setUint32(PT + n * 4, (n << 12) | pteFlags, true);
  cpu.cr3 = PD;
  cpu.cr0 |= CR0_PG;
  cpu.updateMode();
  return cpu;
}
const pte = (h: Harness, page: number) => h.mem.view.getUint32(PT + page * 4, true);
const setPte = (h: Harness, page: number, v: number) => h.mem.view.setUint32(PT + page * 4, v, true);

/** Runs `f` and returns the fault it raised as [vector, error code], or null. */
function faultOf(f: () => void): [number, number] | null {
  try {
    f();
    return null;
  } catch (e) {
    if (e !== FAULT) throw e;
    return [FAULT.vector, FAULT.errorCode];
  }
}

describe('paging', () => {
  it('translates and sets accessed, then dirty bits', () => {
    const h = makeCpu('pm32', new Uint8Array(0));
    const cpu = withPaging(h);
    h.mem.view.setUint32(0x5000, 0xdeadbeef, true);
    expect(cpu.read32(DS, 0x5000) >>> 0).toBe(0xdeadbeef);
    expect(pte(h, 5) & (A | D)).toBe(A);
    expect(h.mem.view.getUint32(PD, true) & A).toBe(A);
    cpu.write32(DS, 0x5004, 1);
    expect(pte(h, 5) & (A | D)).toBe(A | D);
  });

  it('reports not-present faults with CR2 and the W/U bits', () => {
    const h = makeCpu('pm32', new Uint8Array(0));
    const cpu = withPaging(h);
    setPte(h, 7, 0);
    flushTlb(cpu, false);
    expect(faultOf(() => cpu.read8(DS, 0x7123))).toEqual([EXC_PF, 0]);
    expect(cpu.cr2 >>> 0).toBe(0x7123);
    expect(faultOf(() => cpu.write8(DS, 0x7fff, 0))).toEqual([EXC_PF, 2]);
    cpu.setCpl(3);
    expect(faultOf(() => cpu.write8(DS, 0x7001, 0))).toEqual([EXC_PF, 6]);
  });

  it('checks U/S and R/W, with CR0.WP deciding supervisor writes', () => {
    const h = makeCpu('pm32', new Uint8Array(0));
    const cpu = withPaging(h);
    setPte(h, 8, (8 << 12) | P); // supervisor, read-only
    flushTlb(cpu, false);
    expect(faultOf(() => cpu.write8(DS, 0x8000, 1))).toBeNull(); // WP = 0: supervisor may write
    cpu.cr0 |= CR0_WP;
    cpu.updateMode();
    flushTlb(cpu, false);
    expect(faultOf(() => cpu.write8(DS, 0x8000, 1))).toEqual([EXC_PF, 3]);
    cpu.setCpl(3);
    expect(faultOf(() => cpu.read8(DS, 0x8000))).toEqual([EXC_PF, 5]);
  });

  it('keeps a stale translation until INVLPG or a CR3 reload', () => {
    const h = makeCpu('pm32', new Uint8Array(0));
    const cpu = withPaging(h);
    h.mem.view.setUint32(0x9000, 0x11111111, true);
    h.mem.view.setUint32(0xa000, 0x22222222, true);
    expect(cpu.read32(DS, 0x9000)).toBe(0x11111111);
    setPte(h, 9, 0xa000 | P | RW | US); // remap without flushing
    expect(cpu.read32(DS, 0x9000)).toBe(0x11111111);
    invalidatePage(cpu, 0x9000);
    expect(cpu.read32(DS, 0x9000)).toBe(0x22222222);
    setPte(h, 9, 0x9000 | P | RW | US);
    expect(cpu.read32(DS, 0x9000)).toBe(0x22222222);
    flushTlb(cpu, false);
    expect(cpu.read32(DS, 0x9000)).toBe(0x11111111);
  });

  it('keeps global pages across a non-global flush when CR4.PGE is set', () => {
    const h = makeCpu('pm32', new Uint8Array(0));
    const cpu = withPaging(h);
    cpu.cr4 |= CR4_PGE;
    setPte(h, 9, 0x9000 | P | RW | G);
    flushTlb(cpu, false);
    h.mem.view.setUint32(0x9000, 0x33, true);
    h.mem.view.setUint32(0xa000, 0x44, true);
    expect(cpu.read32(DS, 0x9000)).toBe(0x33);
    setPte(h, 9, 0xa000 | P | RW | G);
    flushTlb(cpu, true);
    expect(cpu.read32(DS, 0x9000)).toBe(0x33);
    flushTlb(cpu, false);
    expect(cpu.read32(DS, 0x9000)).toBe(0x44);
  });

  it('maps 4 MiB pages with CR4.PSE and rejects reserved bits', () => {
    const h = makeCpu('pm32', new Uint8Array(0), 16);
    const cpu = withPaging(h);
    cpu.cr4 |= CR4_PSE;
    h.mem.view.setUint32(PD + 4 * 1, 0x00800000 | P | RW | PS, true); // 4-8 MiB -> 8-12 MiB
    flushTlb(cpu, false);
    h.mem.view.setUint32(0x00812344, 0x5a5a5a5a, true);
    expect(cpu.read32(DS, 0x00412344)).toBe(0x5a5a5a5a);
    expect(h.mem.view.getUint32(PD + 4, true) & (A | D)).toBe(A);
    cpu.write8(DS, 0x00400000, 0);
    expect(h.mem.view.getUint32(PD + 4, true) & D).toBe(D);
    h.mem.view.setUint32(PD + 4 * 2, 0x00c00000 | 0x2000 | P | RW | PS, true);
    expect(faultOf(() => cpu.read8(DS, 0x00800000))).toEqual([EXC_PF, 9]);
  });

  it('checks both pages of a split write before writing either', () => {
    const h = makeCpu('pm32', new Uint8Array(0));
    const cpu = withPaging(h);
    setPte(h, 0xc, 0);
    flushTlb(cpu, false);
    h.mem.view.setUint32(0xbffc, 0, true);
    expect(faultOf(() => cpu.write32(DS, 0xbffe, -1))).toEqual([EXC_PF, 2]);
    expect(cpu.cr2 >>> 0).toBe(0xc000);
    expect(h.mem.view.getUint32(0xbffc, true)).toBe(0);
  });
});
