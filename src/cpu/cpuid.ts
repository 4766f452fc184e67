// The CPUID model: one Intel Core Duo T2400 ("Yonah", family 6, model 14, stepping 8) reduced
// to the features this emulator implements now (docs/CPU-MODEL.md, "CPUID"). A feature bit is
// set only when the instruction, register bit or MSR behind it works: no x87, MMX, SSE, PAE or
// machine check yet. VMX is reported when vmx/capabilities.ts turns it on (docs/VMX.md).

import { EAX, EBX, ECX, EDX } from './constants.js';
import type { Cpu } from './cpu.js';
import { EXIT_REASON_CPUID, instructionExit } from './vmx/exit.js';
import { MSR_BIOS_SIGN_ID, apicEnabled, miscEnable, MISC_LIMIT_CPUID, MISC_MONITOR_FSM } from './msr.js';

/** Family 6, model 14 (Core Duo "Yonah"), stepping 8: EAX of leaf 1 and EDX after reset. */
export const CPUID_SIGNATURE = 0x6e8;
/** The microcode revision reported in BIOS_SIGN_ID after CPUID leaf 1: no update loaded. */
export const MICROCODE_REVISION = 0;

/** Leaf 1 EDX: VME, DE, PSE, TSC, MSR, CX8, APIC, SEP, MTRR, PGE, CMOV, PAT. */
export const FEAT_EDX = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 8) | (1 << 9) |
  (1 << 11) | (1 << 12) | (1 << 13) | (1 << 15) | (1 << 16);
export const FEAT_EDX_APIC = 1 << 9;
/** Leaf 1 ECX: MONITOR/MWAIT and VMX. */
export const FEAT_ECX_MONITOR = 1 << 3;
export const FEAT_ECX_VMX = 1 << 5;
/** Leaf 1 ECX of the model with VMX; VMX is reported only where the machine offers it. */
export const FEAT_ECX = FEAT_ECX_MONITOR | FEAT_ECX_VMX;

const MAX_BASIC = 0xa;
const MAX_EXTENDED = 0x80000008;
/** "GenuineIntel" in EBX, EDX, ECX order. */
const VENDOR = [0x756e6547, 0x49656e69, 0x6c65746e];
/** Leaf 2 cache and TLB descriptors of the T2400 (one iteration: AL = 1). */
const LEAF2 = [0x02b3b001, 0x000000f0, 0x00000000, 0x2c04307d];
/** Leaf 4 (deterministic cache parameters) subleaves: L1D, L1I, L2; one core, one thread. */
const LEAF4 = [
  [0x00000121, 0x01c0003f, 0x0000003f, 0], // L1 data, 8-way, 64 sets, 64-byte lines: 32 KiB
  [0x00000122, 0x01c0003f, 0x0000003f, 0], // L1 instruction, 32 KiB
  [0x00000143, 0x01c0003f, 0x00000fff, 0], // L2 unified, 8-way, 4096 sets: 2 MiB
];
/** Leaf 5: 64-byte monitor line; MWAIT extensions enumerated, interrupts break MWAIT. */
const LEAF5 = [64, 64, 3, 0];
const BRAND = 'Genuine Intel(R) CPU           T2400  @ 1.83GHz';
const BRAND_DWORDS = (() => {
  const bytes = new Uint8Array(48);
  for (let k = 0; k < BRAND.length; k++) bytes[k] = BRAND.charCodeAt(k);
  const v = new DataView(bytes.buffer);
  return Array.from({ length: 12 }, (_, k) => v.getInt32(k * 4, true));
})();

/** Writes the four result registers. */
function out(cpu: Cpu, a: number, b: number, c: number, d: number): void {
  cpu.regs[EAX] = a;
  cpu.regs[EBX] = b;
  cpu.regs[ECX] = c;
  cpu.regs[EDX] = d;
}

/** Executes CPUID for leaf EAX (subleaf ECX) into EAX, EBX, ECX, EDX. */
export function cpuid(cpu: Cpu): void {
  if (cpu.vmx.nonRoot) return instructionExit(cpu, EXIT_REASON_CPUID); // unconditional in VMX non-root
  let leaf = cpu.regs[EAX] >>> 0;
  const sub = cpu.regs[ECX] >>> 0;
  const maxBasic = miscEnable(cpu) & MISC_LIMIT_CPUID ? 2 : MAX_BASIC;
  // Intel answers a leaf above the highest basic or extended leaf with the highest basic leaf.
  if ((leaf < 0x80000000 && leaf > maxBasic) || leaf > MAX_EXTENDED) leaf = maxBasic;
  switch (leaf) {
    case 0:
      out(cpu, maxBasic, VENDOR[0], VENDOR[2], VENDOR[1]);
      return;
    case 1: {
      const monitor = miscEnable(cpu) & MISC_MONITOR_FSM ? FEAT_ECX_MONITOR : 0;
      const apic = apicEnabled(cpu) ? FEAT_EDX_APIC : 0;
      // EBX: brand index 0, CLFLUSH size 0 (no CLFLUSH), one logical processor, APIC ID 0.
      out(cpu, CPUID_SIGNATURE, 1 << 16, (FEAT_ECX & ~FEAT_ECX_MONITOR & ~(cpu.vmx.supported ? 0 : FEAT_ECX_VMX)) | monitor, (FEAT_EDX & ~FEAT_EDX_APIC) | apic);
      cpu.msrs.set(MSR_BIOS_SIGN_ID, BigInt(MICROCODE_REVISION) << 32n);
      return;
    }
    case 2:
      out(cpu, LEAF2[0], LEAF2[1], LEAF2[2], LEAF2[3]);
      return;
    case 4: {
      const l = LEAF4[sub];
      if (l === undefined) out(cpu, 0, 0, 0, 0);
      else out(cpu, l[0], l[1], l[2], l[3]);
      return;
    }
    case 5:
      out(cpu, LEAF5[0], LEAF5[1], LEAF5[2], LEAF5[3]);
      return;
    case 0x80000000:
      out(cpu, MAX_EXTENDED | 0, 0, 0, 0);
      return;
    case 0x80000002: case 0x80000003: case 0x80000004: {
      const k = (leaf - 0x80000002) * 4;
      out(cpu, BRAND_DWORDS[k], BRAND_DWORDS[k + 1], BRAND_DWORDS[k + 2], BRAND_DWORDS[k + 3]);
      return;
    }
    case 0x80000006:
      out(cpu, 0, 0, 0x08006040, 0); // L2: 2048 KiB, 8-way, 64-byte lines
      return;
    case 0x80000008:
      out(cpu, 0x2020, 0, 0, 0); // 32 physical and 32 linear address bits
      return;
    default:
      // Leaves 3, 6-0xA, 0x80000001, 0x80000005, 0x80000007: nothing this model implements.
      out(cpu, 0, 0, 0, 0);
  }
}
