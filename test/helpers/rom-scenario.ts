// What a ROM scenario of compareOnRom (rom.ts) is, apart from vitest: scripts/vmx-bochs.ts reads
// the scenarios the VMX tests declare and runs them on trapdiff and Bochs itself.

/** How a test runs a ROM on Bochs and what it expects there, where it is not the default model
 *  agreeing with trapdiff. */
export interface BochsRun {
  title: string;
  expected: string[] | string;
  /** Bochs's CPU model (run-rom's third argument), when not its Core Duo T2400. */
  model?: string;
  /** Seconds Bochs runs, when the ROM does not end it (a shutdown): the transcript so far counts. */
  seconds?: number;
}

/** One compareOnRom: its title, the ROM (base64), trapdiff's expected transcript, Bochs's run. */
export interface RomScenario {
  title: string;
  rom: string;
  expected: string[] | string;
  bochs: BochsRun;
}

/**
 * The environment variable naming a directory: while it is set, each compareOnRom writes its
 * scenario there as JSON (scripts/vmx-bochs.ts sets it for `vitest list`).
 */
export const ROM_SCENARIO_DIR = 'TRAPDIFF_ROM_SCENARIO_DIR';

/**
 * The part of transcript `out` an expectation compares: the whole text (a string expectation),
 * or its lines, each ended by a newline (an array; what follows the last newline is left out).
 */
export function comparable(out: string, want: string[] | string): string[] | string {
  return typeof want === 'string' ? out : out.split('\n').slice(0, -1);
}
