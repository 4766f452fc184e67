// The benchmark workloads (corpus/bench/*.rom, sources beside them): what each does, how many
// instructions it retires for a given iteration count, and the checksums it must print.
//
// Every ROM carries its iteration count in a header at offset 0xFFE8, after the magic
// "TDBENCH1" at 0xFFE0 (common.inc, ROM_TAIL), so one committed image serves the full run,
// `--quick` and the smoke test: patchIterations() rewrites the count.
//
// Instruction counts are architectural retired instructions as trapdiff counts them (cpu.icount):
// a REP string instruction retires once however many iterations it makes, and an instruction
// that faults does not retire. Each count runs from the reset vector to the instruction that
// completes "Shutdown" on port 0x8900 (where trapdiff stops) and is perIteration * n + fixed,
// worked out from the sources (the comments below give the sums) and checked against trapdiff's
// own count on every run.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../corpus/bench');

const MAGIC = 'TDBENCH1';
const MAGIC_AT = 0xffe0;
const ITERATIONS_AT = 0xffe8;
export const ROM_SIZE = 0x10000;

/** A run size and the checksum that trapdiff, v86, Bochs and QEMU all printed for it. */
export interface KnownChecksum {
  iterations: number;
  checksum: string;
}

export interface Workload {
  name: string;
  description: string;
  perIteration: number;
  fixed: number;
  /** Iterations of `--quick` (the ROM's own count is the full run's). */
  quickIterations: number;
  /** Known results: a tiny run for the smoke test, the quick run and the full run, in that order. */
  known: readonly KnownChecksum[];
}

// Shared by every workload: the reset vector's far jump (1), SWITCH_TO_PM32 (14) and finish32
// up to the stop (99: 1 + 8 digits * 7 + 2 for the newline + 3 + 7 * 5 + 2 for the 8th
// "Shutdown" byte).
const RESET_JMP = 1, TO_PM32 = 14, FINISH = 99;

/** The baseline: startup and ending only; its time on a peer is the peer's fixed cost. */
export const NULL_WORKLOAD: Workload = {
  name: 'null',
  description: 'start and end only (baseline for peers\' startup time)',
  perIteration: 0,
  fixed: RESET_JMP + TO_PM32 + 2 + FINISH,
  quickIterations: 1,
  known: [{ iterations: 1, checksum: '00000000' }],
};

export const WORKLOADS: readonly Workload[] = [
  {
    name: 'alu',
    description: 'ADD, XOR, DEC, JNZ loop, real mode, 32-bit registers',
    perIteration: 4,
    // 4 before the loop, 2 after it, then the switch, JMP finish32.
    fixed: RESET_JMP + 4 + 2 + TO_PM32 + 1 + FINISH,
    quickIterations: 10_000_000,
    known: [
      { iterations: 1000, checksum: 'A1D0BF13' },
      { iterations: 10_000_000, checksum: 'A24FFA53' },
      { iterations: 100_000_000, checksum: 'ED9EA253' },
    ],
  },
  {
    name: 'mem',
    description: 'REP MOVSD/STOSD/MOVSB (16+16+4 KiB) and a load/add/store loop, 32-bit PM',
    // 12 for three string moves with their setup, 2 + 1024 * 8 for the dword loop, DEC/JNZ.
    perIteration: 12 + 2 + 1024 * 8 + 2,
    // 3 + 4096 * 5 to fill the source, 2 before the loop, JMP finish32.
    fixed: RESET_JMP + TO_PM32 + 3 + 4096 * 5 + 2 + 1 + FINISH,
    quickIterations: 200,
    known: [
      { iterations: 2, checksum: '0BB1DF31' },
      { iterations: 200, checksum: '4F108816' },
      { iterations: 2000, checksum: '73490F60' },
    ],
  },
  {
    name: 'paging',
    description: '3840 pages touched per iteration, CR3 reloaded every 64: TLB misses, 32-bit PM',
    // 2 + 60 groups * (1 + 64 pages * 6 + 4) + DEC/JNZ.
    perIteration: 2 + 60 * (1 + 64 * 6 + 4) + 2,
    // Clear the directory (4), 4 PDEs, 1 + 256 * 7 identity PTEs, 3840 * 8 pool PTEs, paging on
    // (5), 2 before the loop, JMP finish32.
    fixed: RESET_JMP + TO_PM32 + 4 + 4 + 1 + 256 * 7 + 3840 * 8 + 5 + 2 + 1 + FINISH,
    quickIterations: 20,
    known: [
      { iterations: 1, checksum: '4564A000' },
      { iterations: 20, checksum: '87E48000' },
      { iterations: 200, checksum: '237F8000' },
    ],
  },
  {
    name: 'excint',
    description: 'ring 3 INT 0x40, #GP (HLT) and #PF, each to ring 0 and IRETD back',
    // INT (1) + handler (3), #GP handler (5), #PF handler (6), DEC/JNZ; HLT and the faulting
    // load do not retire.
    perIteration: 1 + 3 + 5 + 6 + 2,
    // GDT and TSS (10), 1 + 32 gates * 13, 4 gates (9 + 9 + 10 + 9), LIDT, 1 + 1024 * 7 PTEs,
    // the hole, clear the directory (4), the PDE, paging on (5), ring-3 data segments (5),
    // 3 registers, 5 pushes and IRETD; INT 0x41 and JMP finish32.
    fixed: RESET_JMP + TO_PM32 + 10 + 1 + 32 * 13 + 37 + 1 + 1 + 1024 * 7 + 1 + 4 + 1 + 5 + 5 + 3 + 6 + 2 + FINISH,
    quickIterations: 30_000,
    known: [
      { iterations: 100, checksum: 'C755FBD2' },
      { iterations: 30_000, checksum: 'B39A5ECC' },
      { iterations: 300_000, checksum: 'F0DCF66C' },
    ],
  },
  {
    name: 'smc',
    description: 'a loop that patches the immediate of its own ADD every iteration, 32-bit PM',
    perIteration: 5,
    // Copy the loop to RAM (4), 4 to enter it; MOV/JMP back to finish32.
    fixed: RESET_JMP + TO_PM32 + 4 + 4 + 2 + FINISH,
    quickIterations: 10_000,
    known: [
      { iterations: 100, checksum: 'B9F5332E' },
      { iterations: 10_000, checksum: '276530EE' },
      { iterations: 100_000, checksum: 'E6227DEE' },
    ],
  },
];

export function instructionCount(w: Workload, iterations: number): number {
  return w.perIteration * iterations + w.fixed;
}

/** The checksum every emulator printed for this run size, or undefined if none is on record. */
export function knownChecksum(w: Workload, iterations: number): string | undefined {
  return w.known.find((c) => c.iterations === iterations)?.checksum;
}

function checkHeader(rom: Uint8Array, name: string): void {
  const magic = new TextDecoder('latin1').decode(rom.subarray(MAGIC_AT, MAGIC_AT + MAGIC.length));
  if (rom.length !== ROM_SIZE || magic !== MAGIC) throw new Error(`corpus/bench/${name}.rom is not a benchmark ROM (no ${MAGIC} header)`);
}

/** The workload's ROM as committed. */
export function readRom(w: Workload): Uint8Array {
  const rom = new Uint8Array(readFileSync(resolve(BENCH_DIR, `${w.name}.rom`)));
  checkHeader(rom, w.name);
  return rom;
}

export function romIterations(rom: Uint8Array): number {
  return new DataView(rom.buffer, rom.byteOffset, rom.byteLength).getUint32(ITERATIONS_AT, true);
}

/** A copy of the ROM that runs `iterations` times. */
export function patchIterations(rom: Uint8Array, iterations: number): Uint8Array {
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 0xffffffff) {
    throw new Error(`iteration count ${iterations} is not an integer from 1 to 2^32-1`);
  }
  const out = rom.slice();
  new DataView(out.buffer).setUint32(ITERATIONS_AT, iterations, true);
  return out;
}
