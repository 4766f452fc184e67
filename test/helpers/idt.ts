// Protected-mode fixtures for the interrupt, V86, system and debug tests: IDT gates, extra GDT
// entries, a 32-bit TSS (with I/O bitmap and VME redirection map) and ring-3 entry, plus an
// event recorder. Built on harness.ts's flat GDT (selectors in SEL) and IDT at IDT_BASE, with the
// descriptors of segments.ts.

import { CS, DS, ES, FS, GS, SS, TR } from '../../src/cpu/constants.js';
import type { Cpu } from '../../src/cpu/cpu.js';
import { asm, CODE_BASE, IDT_BASE, makeCpu, SEL, type Harness } from './harness.js';
import { gateDesc, segDescriptor, setGdt, writeDesc } from './segments.js';

export const INT_GATE = 0xe, TRAP_GATE = 0xf, TASK_GATE = 0x5, INT_GATE16 = 0x6;

/** Where withHandler puts the handler. */
export const HANDLER = CODE_BASE + 0x100;
/** A flat ring-0 CPU running 32-bit `main` at CODE_BASE, with `handler` at HANDLER. */
export function withHandler(main: string, handler = 'hlt'): Harness {
  return makeCpu('pm32', asm(`${main}\ntimes 0x100-($-$$) db 0\n${handler}`));
}

/** Writes IDT entry `vector`: a gate of `type` to sel:offset with `dpl`, present unless told. */
export function gate(h: Harness, vector: number, sel: number, offset: number, type = INT_GATE, dpl = 0, present = true): void {
  writeDesc(h.cpu, IDT_BASE + vector * 8, gateDesc(sel, offset, type, dpl, 0, present));
}

export const TSS_BASE = 0x3000;
export const TSS_SEL = 0x38;
/** Offset of the I/O bitmap inside the TSS (the redirection map is the 32 bytes before it). */
export const IOMAP_OFFSET = 0x88;
/** TSS limit: the I/O bitmap covers ports 0-0x3ff (128 bytes) plus the trailing 0xff byte. */
export const TSS_LIMIT = IOMAP_OFFSET + 128;

/**
 * A busy 32-bit TSS at TSS_BASE in GDT entry 7 (TSS_SEL), loaded into TR, with SS0:ESP0 and an
 * I/O bitmap that allows every port (set bits with denyPort) and a redirection map of zeros.
 */
export function setupTss(h: Harness, esp0: number, ss0: number = SEL.data32): void {
  const v = h.mem.view;
  for (let k = 0; k < TSS_LIMIT + 1; k++) h.mem.ram[TSS_BASE + k] = 0;
  v.setUint32(TSS_BASE + 4, esp0, true);
  v.setUint16(TSS_BASE + 8, ss0, true);
  v.setUint16(TSS_BASE + 0x66, IOMAP_OFFSET, true);
  h.mem.ram[TSS_BASE + TSS_LIMIT] = 0xff;
  setGdt(h.cpu, TSS_SEL >> 3, segDescriptor(TSS_BASE, TSS_LIMIT, 0x8b, 0));
  h.cpu.setSegCache(TR, TSS_SEL, TSS_BASE, TSS_LIMIT, 0x8b);
}
export function denyPort(h: Harness, port: number): void {
  h.mem.ram[TSS_BASE + IOMAP_OFFSET + (port >> 3)] |= 1 << (port & 7);
}
/** Marks INT `vector` as going to the protected-mode handler under VME (redirection bit set). */
export function noRedirect(h: Harness, vector: number): void {
  h.mem.ram[TSS_BASE + IOMAP_OFFSET - 32 + (vector >> 3)] |= 1 << (vector & 7);
}

/** Puts the flat CPU at CPL 3 on the ring-3 flat selectors, at eip and esp if given. */
export function enterRing3(cpu: Cpu, eip?: number, esp?: number): void {
  cpu.setSegCache(CS, SEL.code32r3, 0, 0xffffffff, 0xc0fb);
  for (const s of [SS, DS, ES, FS, GS]) cpu.setSegCache(s, SEL.data32r3, 0, 0xffffffff, 0xc0f3);
  if (esp !== undefined) cpu.regs[4] = esp;
  if (eip !== undefined) cpu.eip = eip;
  cpu.setCpl(3);
}

export interface Recorded {
  exceptions: Array<[number, number]>;
  interrupts: Array<[number, number]>;
  shutdowns: number;
}
/** Records exceptions (vector, error code) and interrupts (vector, kind). */
export function record(cpu: Cpu): Recorded {
  const r: Recorded = { exceptions: [], interrupts: [], shutdowns: 0 };
  cpu.events = {
    onException: (v, e) => { r.exceptions.push([v, e]); },
    onInterrupt: (v, k) => { r.interrupts.push([v, k]); },
    onShutdown: () => { r.shutdowns++; },
  };
  return r;
}

/** The dword at linear (= physical, no paging) address a. */
export function dword(h: Harness, a: number): number {
  return h.mem.view.getUint32(a, true);
}
