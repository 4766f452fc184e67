// The VMCS region in physical memory and VMREAD/VMWRITE-level access to its fields (SDM Vol. 3C
// 24.2, 24.11). The format beyond the first 8 bytes is implementation-specific; this one's layout:
//
//   offset 0   VMCS revision identifier (bits 30:0; bit 31 "shadow-VMCS indicator", always 0 here)
//   offset 4   VMX-abort indicator
//   offset 8   launch state: LAUNCH_LAUNCHED once VMLAUNCH succeeded, any other value is "clear"
//   offset 12  reserved (0)
//   offset 16  the fields, in the order of FIELDS (fields.ts), each at its natural alignment:
//              16-bit fields 2 bytes, 32-bit and natural-width fields 4 bytes, 64-bit fields 8
//              bytes (low dword first). Every declared field has a slot, whether or not the
//              model supports its feature, so enabling a feature does not move the others.
//
// No VMCS data is cached inside the processor: VMREAD and VMWRITE go to the region itself, so
// VMCLEAR has nothing to write back and the region is always up to date (the SDM allows a
// processor to cache the current VMCS; software that writes the region directly while it is
// current gets undefined results there, and the written value here). Snapshots therefore need
// no VMCS state besides the pointers in VmxState.

import type { Cpu } from '../cpu.js';
import { FIELD_SUPPORTED } from './capabilities.js';
import { FIELDS, W16, W64 } from './fields.js';

export const VMCS_REVISION_OFFSET = 0, VMCS_ABORT_OFFSET = 4, VMCS_LAUNCH_OFFSET = 8;
/** Launch-state value of a launched VMCS; VMCLEAR stores LAUNCH_CLEAR. */
export const LAUNCH_CLEAR = 0, LAUNCH_LAUNCHED = 1;
const FIELDS_START = 16;

/** Byte offset of each field of FIELDS inside the region. */
export const FIELD_OFFSET: Uint16Array = new Uint16Array(FIELDS.length);
/** Bytes of the region this layout uses (at most the 4 KiB IA32_VMX_BASIC reports). */
export const VMCS_LAYOUT_SIZE = (() => {
  let at = FIELDS_START;
  FIELDS.forEach((fd, k) => {
    const size = fd.width === W16 ? 2 : fd.width === W64 ? 8 : 4;
    at = (at + size - 1) & ~(size - 1);
    FIELD_OFFSET[k] = at;
    at += size;
  });
  if (at > 0x1000) throw new Error('VMCS layout exceeds 4 KiB');
  return at;
})();

/** Field index (into FIELDS) by full encoding, -1 for none. Encodings are 15 bits. */
const INDEX_BY_ENCODING = new Int16Array(0x8000).fill(-1);
FIELDS.forEach((fd, k) => {
  if (INDEX_BY_ENCODING[fd.encoding] !== -1) throw new Error(`VMCS field ${fd.name}: encoding used twice`);
  INDEX_BY_ENCODING[fd.encoding] = k;
});

/**
 * The field a VMREAD/VMWRITE encoding names on this model, or -1 ("unsupported VMCS component"):
 * bits 31:15 must be clear, the field must exist, and the high access type (bit 0) is valid for
 * 64-bit fields only.
 */
export function fieldIndex(encoding: number): number {
  if (encoding >>> 15 !== 0) return -1;
  const k = INDEX_BY_ENCODING[encoding & ~1];
  if (k < 0 || !FIELD_SUPPORTED[k] || (encoding & 1 && FIELDS[k].width !== W64)) return -1;
  return k;
}

/**
 * The value VMREAD returns for field k accessed with `encoding` (of the VMCS at `ptr`): 16-bit
 * fields zero-extended, the low or (high access type) high dword of a 64-bit field.
 */
export function readField(cpu: Cpu, ptr: number, k: number, encoding: number): number {
  const at = ptr + FIELD_OFFSET[k];
  if (FIELDS[k].width === W16) return cpu.readPhys16(at);
  return cpu.readPhys32(encoding & 1 ? at + 4 : at);
}

/**
 * VMWRITE of `v` to field k accessed with `encoding`: a 16-bit field takes the low 16 bits; the
 * full access type of a 64-bit field writes the low dword and clears the high one (a 32-bit
 * operand zero-extended), the high access type writes the high dword only.
 */
export function writeField(cpu: Cpu, ptr: number, k: number, encoding: number, v: number): void {
  const at = ptr + FIELD_OFFSET[k];
  const width = FIELDS[k].width;
  if (width === W16) {
    cpu.writePhys16(at, v & 0xffff);
  } else if (encoding & 1) {
    cpu.writePhys32(at + 4, v);
  } else {
    cpu.writePhys32(at, v);
    if (width === W64) cpu.writePhys32(at + 4, 0);
  }
}

/** Index of a field the VMX code names by encoding; a missing one is a table error. */
function knownField(encoding: number): number {
  const k = fieldIndex(encoding);
  if (k < 0) throw new Error(`VMCS field ${encoding.toString(16)} is not supported by this model`);
  return k;
}
/** Reads field `encoding` of the current VMCS (the caller knows there is one). */
export function vmcsRead(cpu: Cpu, encoding: number): number {
  return readField(cpu, cpu.vmx.vmcsPtr, knownField(encoding), encoding);
}
/** Writes field `encoding` of the current VMCS, read-only fields included (the processor may). */
export function vmcsWrite(cpu: Cpu, encoding: number, v: number): void {
  writeField(cpu, cpu.vmx.vmcsPtr, knownField(encoding), encoding, v);
}

export function revisionId(cpu: Cpu, ptr: number): number {
  return cpu.readPhys32(ptr + VMCS_REVISION_OFFSET);
}
export function isLaunched(cpu: Cpu, ptr: number): boolean {
  return cpu.readPhys32(ptr + VMCS_LAUNCH_OFFSET) === LAUNCH_LAUNCHED;
}
/** Sets the launch state; VMCLEAR (clear) and a successful VMLAUNCH (launched). */
export function setLaunched(cpu: Cpu, ptr: number, launched: boolean): void {
  cpu.writePhys32(ptr + VMCS_LAUNCH_OFFSET, launched ? LAUNCH_LAUNCHED : LAUNCH_CLEAR);
}

/** A 64-bit field of the current VMCS as a bigint. */
export function qword(cpu: Cpu, encoding: number): bigint {
  return (BigInt(vmcsRead(cpu, encoding | 1) >>> 0) << 32n) | BigInt(vmcsRead(cpu, encoding) >>> 0);
}
