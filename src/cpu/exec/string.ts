// The string family: MOVS/CMPS/STOS/LODS/SCAS and INS/OUTS with REP/REPE/REPNE (SDM Vol. 2
// and Vol. 1 7.3.9).
//
// The source is seg:(E)SI with the segment override, the destination always ES:(E)DI; the
// address size picks SI/DI/CX or ESI/EDI/ECX; EFLAGS.DF the direction. A REP instruction runs
// one iteration at a time with the registers updated after each, so a fault in the middle
// leaves a consistent, restartable state (SDM Vol. 1 7.3.9.3). Long REPs stop early without
// retiring when virtual time reaches cpu.runUntil or something needs attention (an interrupt),
// and resume from the registers when run again. Each iteration but the one that retires the
// instruction adds one cycle. Under TF or a data/I/O breakpoint hit, the REP stops after each
// iteration so that the #DB trap comes between iterations.

import { ACC_READ, ACC_WRITE, DF, EAX, ECX, EDI, EDX, ES, ESI, TF } from '../constants.js';
import { DR6_BS } from '../debug.js';
import { PF_SLOW } from '../../machine/memory.js';
import { LZ_SUB, type Cpu } from '../cpu.js';
import { REP_E, REP_NONE, type Exec, type Insn } from '../insn.js';
import { IO_IN, IO_REP, IO_STRING } from '../vmx/intercept-io.js';
import { startIo } from './io.js';

const MOVS = 0, CMPS = 1, STOS = 2, LODS = 3, SCAS = 4, INS = 5, OUTS = 6;

function read(cpu: Cpu, seg: number, off: number, size: number): number {
  return size === 1 ? cpu.read8(seg, off) : size === 2 ? cpu.read16(seg, off) : cpu.read32(seg, off);
}

function write(cpu: Cpu, seg: number, off: number, v: number, size: number): void {
  if (size === 1) cpu.write8(seg, off, v);
  else if (size === 2) cpu.write16(seg, off, v);
  else cpu.write32(seg, off, v);
}

/** The accumulator at `size` bytes. */
function acc(cpu: Cpu, size: number): number {
  return size === 1 ? cpu.regs[EAX] & 0xff : size === 2 ? cpu.regs[EAX] & 0xffff : cpu.regs[EAX];
}

/** Adds `delta` to index register r at the address size. */
function advance(cpu: Cpu, r: number, a32: boolean, delta: number): void {
  if (a32) cpu.regs[r] = (cpu.regs[r] + delta) | 0;
  else cpu.setReg16(r, cpu.regs[r] + delta);
}

/** One iteration of string operation `op` on `size`-byte elements. */
function once(cpu: Cpu, i: Insn, op: number, size: number): void {
  const a32 = i.a32;
  const delta = cpu.flags & DF ? -size : size;
  const si = a32 ? cpu.regs[ESI] : cpu.regs[ESI] & 0xffff;
  const di = a32 ? cpu.regs[EDI] : cpu.regs[EDI] & 0xffff;
  const bits = size * 8, m = size === 4 ? -1 : (1 << bits) - 1;
  switch (op) {
    case MOVS:
      write(cpu, ES, di, read(cpu, i.seg, si, size), size);
      advance(cpu, ESI, a32, delta);
      advance(cpu, EDI, a32, delta);
      return;
    case CMPS: {
      const a = read(cpu, i.seg, si, size), b = read(cpu, ES, di, size);
      cpu.setLazy(LZ_SUB, a, b, (a - b) & m, bits);
      advance(cpu, ESI, a32, delta);
      advance(cpu, EDI, a32, delta);
      return;
    }
    case STOS:
      write(cpu, ES, di, acc(cpu, size), size);
      advance(cpu, EDI, a32, delta);
      return;
    case LODS: {
      const v = read(cpu, i.seg, si, size);
      if (size === 1) cpu.setReg8(EAX, v);
      else cpu.setReg(EAX, v, size === 4);
      advance(cpu, ESI, a32, delta);
      return;
    }
    case SCAS: {
      const a = acc(cpu, size), b = read(cpu, ES, di, size);
      cpu.setLazy(LZ_SUB, a, b, (a - b) & m, bits);
      advance(cpu, EDI, a32, delta);
      return;
    }
    case INS: {
      // The destination is checked for writing before the port is read, so a fault does not
      // lose (or repeat) a port read.
      const lin = cpu.linear(ES, di, size, true);
      cpu.probeWrite(lin, size);
      const v = cpu.ioRead(cpu.regs[EDX] & 0xffff, size as 1 | 2 | 4);
      const user = cpu.cpl === 3;
      if (size === 1) cpu.writeLinear8(lin, v, user);
      else if (size === 2) cpu.writeLinear16(lin, v, user);
      else cpu.writeLinear32(lin, v, user);
      advance(cpu, EDI, a32, delta);
      return;
    }
    default: // OUTS
      cpu.ioWrite(cpu.regs[EDX] & 0xffff, size as 1 | 2 | 4, read(cpu, i.seg, si, size));
      advance(cpu, ESI, a32, delta);
  }
}

// ---- Fast path for REP MOVS/STOS ----------------------------------------------------------
//
// A chunk of iterations whose elements all lie inside the segment window, on one linear page,
// without address-size wrap, on plain RAM, is done with one translation and a block copy/fill.
// It is exact: the first element's checks and translation are the ones the per-iteration path
// would do first, nothing between the elements can observe memory (no MMIO, no code, no
// breakpoints, no alignment checks), and overlapping MOVS ranges are taken only where a block
// move equals element-by-element copying (forward with the destination below the source, or
// backward with it above).

/**
 * How many `size`-byte elements from offset `off` of segment `seg` (downward when `back`) lie in
 * the segment window, the address size and the current linear page; 0 if access is not allowed.
 */
function roomInPage(cpu: Cpu, seg: number, off: number, size: number, back: boolean, a32: boolean, write: boolean): number {
  if ((cpu.segAcc[seg] & (write ? 2 : 1)) === 0) return 0;
  const lo = cpu.segLo[seg], hi = Math.min(cpu.segHi[seg], a32 ? 0xffffffff : 0xffff);
  if (off < lo || off + size - 1 > hi) return 0;
  const inPage = (cpu.segBase[seg] + off) & 0xfff;
  if (inPage + size > 0x1000) return 0;
  if (back) return Math.min(Math.floor((off - lo) / size), Math.floor(inPage / size)) + 1;
  return Math.min(Math.floor((hi - off + 1) / size), Math.floor((0x1000 - inPage) / size));
}

/**
 * Runs up to `max` iterations of REP MOVS (`move`) or REP STOS as one block operation and
 * returns how many it did (0: the per-iteration path must take the next one). Registers are
 * updated by the caller.
 */
function blockChunk(cpu: Cpu, i: Insn, move: boolean, size: number, max: number): number {
  if (cpu.slowMode || cpu.alignCheck) return 0;
  const a32 = i.a32, back = (cpu.flags & DF) !== 0;
  const di = a32 ? cpu.regs[EDI] >>> 0 : cpu.regs[EDI] & 0xffff;
  let n = Math.min(max, roomInPage(cpu, ES, di, size, back, a32, true));
  const si = a32 ? cpu.regs[ESI] >>> 0 : cpu.regs[ESI] & 0xffff;
  if (move) n = Math.min(n, roomInPage(cpu, i.seg, si, size, back, a32, false));
  if (n < 2) return 0;
  const user = cpu.cpl === 3, flags = cpu.mem.pageFlags;
  const span = (n - 1) * size;
  let src = 0;
  if (move) {
    src = cpu.translateLinear((cpu.segBase[i.seg] + si) | 0, ACC_READ, user);
    if (flags[src >>> 12] & PF_SLOW) return 0;
  }
  const dst = cpu.translateLinear((cpu.segBase[ES] + di) | 0, ACC_WRITE, user);
  if (flags[dst >>> 12] !== 0) return 0;
  const start = back ? dst - span : dst, bytes = span + size;
  const ram = cpu.mem.ram;
  if (move) {
    const from = back ? src - span : src;
    const overlap = from < start + bytes && start < from + bytes;
    if (overlap && (back ? start < from : start > from)) return 0;
    ram.copyWithin(start, from, from + bytes);
  } else if (size === 1) {
    ram.fill(cpu.regs[EAX] & 0xff, start, start + bytes);
  } else { // one element, then doubling copies of the filled part
    if (size === 2) cpu.mem.view.setUint16(start, cpu.regs[EAX], true);
    else cpu.mem.view.setInt32(start, cpu.regs[EAX], true);
    for (let done = size; done < bytes; done *= 2) ram.copyWithin(start + done, start, start + Math.min(done, bytes - done));
  }
  return n;
}

/** Runs `op` once, or under its REP prefix (REPE/REPNE conditions for CMPS/SCAS). */
function str(cpu: Cpu, i: Insn, op: number, size: number): void {
  // The I/O permission (and a VM exit) is checked first, even for a REP with a zero count (as
  // Bochs does). A REP that stops early checks again when it resumes, so I/O breakpoints trap
  // per iteration.
  if ((op === INS || op === OUTS) &&
      !startIo(cpu, i, cpu.regs[EDX] & 0xffff, size, (op === INS ? IO_IN : 0) | IO_STRING | (i.rep !== REP_NONE ? IO_REP : 0))) return;
  if (i.rep === REP_NONE) {
    once(cpu, i, op, size);
    return;
  }
  const a32 = i.a32;
  let count = a32 ? cpu.regs[ECX] >>> 0 : cpu.regs[ECX] & 0xffff;
  if (count === 0) return;
  const conditional = op === CMPS || op === SCAS;
  const block = op === MOVS || op === STOS;
  const whileEqual = i.rep === REP_E;
  for (;;) {
    // A block chunk stops where the per-iteration path would stop: at the run budget, or after
    // one iteration when something already needs attention.
    const max = cpu.attention ? 1 : Math.min(count, Math.max(1, cpu.runUntil - cpu.cycles));
    let n = block ? blockChunk(cpu, i, op === MOVS, size, max) : 0;
    if (n > 0) {
      const delta = cpu.flags & DF ? -size * n : size * n;
      if (op === MOVS) advance(cpu, ESI, a32, delta);
      advance(cpu, EDI, a32, delta);
    } else {
      once(cpu, i, op, size);
      n = 1;
    }
    count -= n;
    if (a32) cpu.regs[ECX] = count;
    else cpu.setReg16(ECX, count);
    if (count === 0 || (conditional && cpu.getZF() !== whileEqual)) {
      cpu.extraCycles += n - 1;
      if (n > 1) cpu.yieldBlock = true;
      return;
    }
    cpu.extraCycles += n;
    cpu.yieldBlock = true; // the block's instruction budget no longer matches virtual time
    if (cpu.slowMode) {
      // Single-step and data/I/O breakpoint traps come after each iteration, with EIP at the
      // REP instruction (as Bochs); the run loop delivers the pending trap at the boundary.
      if (cpu.flags & TF) cpu.debugTrap |= DR6_BS;
      if (cpu.debugTrap !== 0) cpu.attention = true;
    }
    if (cpu.cycles >= cpu.runUntil || cpu.attention) {
      cpu.noRetire = true;
      cpu.eip = cpu.prevEip;
      return;
    }
  }
}

/** The handlers of one string operation: byte form and word/dword form. */
function forms(byteKey: string, wordKey: string, op: number): Record<string, Exec> {
  return {
    [byteKey]: (cpu, i) => str(cpu, i, op, 1),
    [wordKey]: (cpu, i) => str(cpu, i, op, i.o32 ? 4 : 2),
  };
}

export const handlers: Record<string, Exec> = {
  ...forms('movs_YbXb', 'movs_YvXv', MOVS),
  ...forms('cmps_XbYb', 'cmps_XvYv', CMPS),
  ...forms('stos_YbAL', 'stos_YveAX', STOS),
  ...forms('lods_ALXb', 'lods_eAXXv', LODS),
  ...forms('scas_ALYb', 'scas_eAXYv', SCAS),
  ...forms('ins_YbDX', 'ins_YvDX', INS),
  ...forms('outs_DXXb', 'outs_DXXv', OUTS),
};
