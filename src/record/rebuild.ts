// A recorded machine, built again: from the trace header's machine configuration and the image
// (whose SHA-256 must be the recorded one), and from the trace's stored snapshots.
//
// A stored snapshot (the `data` of a 'snapshot' event) is msgpack of StoredSnapshot: the CPU
// state (Cpu.saveState, TLB included), every device's save(), Machine.clockSyncAt, and the RAM
// pages written since the previous stored snapshot (the first one, at instruction 0 right after
// loading, holds none: it covers what differs from the freshly loaded image). The machine at
// snapshot k is therefore: the image loaded into a fresh machine, the pages of snapshots 0..k
// applied in order, then snapshot k's CPU and devices.

import { createHash } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import type { CpuState } from '../cpu/cpu.js';
import type { Env } from '../machine/env.js';
import { isLoaderKind, type LoadOptions } from '../machine/loaders/index.js';
import { createMachine, type Machine, type MachineOptions } from '../machine/machine.js';
import { PAGE_SHIFT, PAGE_SIZE } from '../machine/memory.js';
import { TraceError, type TraceHeader } from './format.js';

export type MachineSpec = TraceHeader['machine'];

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Refuses an image other than the one a trace was recorded from (one-line TraceError). */
export function checkImage(spec: MachineSpec, image: Uint8Array, what = 'the trace'): void {
  const sha = sha256Hex(image);
  if (sha !== spec.imageSha256) {
    throw new TraceError(`${what} was recorded from ${spec.imageName} (sha256 ${spec.imageSha256.slice(0, 16)}…), ` +
      `not from this image (sha256 ${sha.slice(0, 16)}…)`);
  }
}

/** Extra machine options of a rebuilt machine (output streams); never its configuration. */
export type RebuildOptions = Pick<MachineOptions, 'onDebugOutput' | 'onSerialOutput'>;

/**
 * A fresh machine of `spec` with `image` loaded, its Env `env` (attached to the CPU when it can
 * be), its write watch armed. The caller has matched the image to the spec (checkImage, once:
 * a replay builds machines again on seeks).
 */
export function buildMachine(
  spec: MachineSpec,
  image: Uint8Array,
  env: Env & { attach?(cpu: { readonly icount: number }): void },
  opts: RebuildOptions = {},
): Machine {
  if (!isLoaderKind(spec.loader)) throw new TraceError(`the trace names an unknown loader '${spec.loader}'`);
  const m = createMachine({ ...opts, memMiB: spec.memMiB, vmx: spec.vmx, env });
  // From creation on, so that a StateTracker made `fresh` knows every page not listed is zeros.
  m.mem.watchWrites();
  env.attach?.(m.cpu);
  m.load(image, spec.loader, spec.loadOptions as LoadOptions);
  return m;
}

export interface StoredSnapshot {
  cpu: CpuState;
  devices: unknown[];
  clockSyncAt: number;
  /** RAM page numbers, ascending, and their contents (PAGE_SIZE bytes each, in that order). */
  pages: number[];
  ram: Uint8Array;
}

/** The stored-snapshot bytes of `m` now, holding RAM pages `pages`. */
export function encodeSnapshot(m: Machine, pages: readonly number[]): Uint8Array {
  const ram = new Uint8Array(pages.length * PAGE_SIZE);
  pages.forEach((p, k) => ram.set(m.mem.ram.subarray(p << PAGE_SHIFT, (p + 1) << PAGE_SHIFT), k * PAGE_SIZE));
  const s: StoredSnapshot = {
    cpu: m.cpu.saveState(), devices: m.devices.map((d) => d.save?.()), clockSyncAt: m.clockSyncAt,
    pages: [...pages], ram,
  };
  return pack(s);
}

export function decodeSnapshot(data: Uint8Array): StoredSnapshot {
  let s: StoredSnapshot;
  try {
    s = unpack(data) as StoredSnapshot;
  } catch (e) {
    throw new TraceError(`a stored snapshot is not valid msgpack (${e instanceof Error ? e.message : String(e)})`);
  }
  if (s === null || typeof s !== 'object' || !Array.isArray(s.pages) || !(s.ram instanceof Uint8Array) ||
    s.ram.length !== s.pages.length * PAGE_SIZE || typeof s.cpu !== 'object' || !Array.isArray(s.devices)) {
    throw new TraceError('a stored snapshot does not have the documented shape');
  }
  return s;
}

/** Writes a stored snapshot's RAM pages into `m`. */
export function applyPages(m: Machine, s: StoredSnapshot): void {
  s.pages.forEach((p, k) => m.mem.load(p << PAGE_SHIFT, s.ram.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE)));
}

/** Puts `m` in the CPU, device and clock state of `s` (its RAM pages applied already). */
export function applyMachineState(m: Machine, s: StoredSnapshot): void {
  m.cpu.restoreState(s.cpu);
  m.devices.forEach((d, k) => {
    if (d.restore && s.devices[k] !== undefined) d.restore(s.devices[k]);
  });
  m.clockSyncAt = s.clockSyncAt;
}
