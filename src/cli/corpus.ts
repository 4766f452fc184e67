// The corpus: guests under corpus/<name>/, each with a guest.json manifest that says how to run
// its images and what they must do. The corpus test and the showcase both read it, so a new
// guest plugs in by adding a directory.
//
// guest.json:
// {
//   "description": "one line",
//   "showcase": true,                        // optional: `npm start` runs it
//   "runs": [{
//     "image": "hello-bios.rom",             // beside guest.json
//     "load": "bios" | "multiboot" | "flat",
//     "at": "0x100000", "mem": 16, "maxInsns": 1000000,   // optional, as the run options
//     "vmx": false,                          // optional: the machine without VMX (run --no-vmx)
//     "bochs": true,                         // optional: the corpus test also runs it on Bochs
//                                            // (Core Duo with VMX; skipped where absent): same debug output
//     "expect": {                            // every field optional
//       "stop": "exit", "exitCode": 1, "instructions": 123,
//       "debugOutput": "exact text", "serialOutput": "exact text",
//       "debugOutputMatch": "regex", "serialOutputMatch": "regex", "postCodes": [1, 2]
//     }
//   }]
// }

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { basename, join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMachine, type RunResult, type StopKind } from '../machine/machine.js';
import { isLoaderKind, type LoaderKind } from '../machine/loaders/index.js';
import { parseUint } from './args.js';

export const CORPUS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../corpus');

export interface GuestExpect {
  stop?: StopKind;
  exitCode?: number | null;
  instructions?: number;
  debugOutput?: string;
  serialOutput?: string;
  debugOutputMatch?: string;
  serialOutputMatch?: string;
  postCodes?: number[];
}

export interface GuestRun {
  image: string;
  load: LoaderKind;
  at?: string;
  mem?: number;
  maxInsns?: number;
  vmx?: boolean;
  bochs?: boolean;
  expect: GuestExpect;
}

export interface Guest {
  name: string;
  dir: string;
  description: string;
  showcase: boolean;
  runs: GuestRun[];
}

/** Every guest of the corpus, by directory name. */
export function listGuests(dir = CORPUS_DIR): Guest[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'guest.json')))
    .map((e) => readGuest(join(dir, e.name)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function readGuest(dir: string): Guest {
  const name = dir.split(/[\\/]/).pop()!;
  const m = JSON.parse(readFileSync(join(dir, 'guest.json'), 'utf8')) as Partial<Guest>;
  if (!Array.isArray(m.runs) || m.runs.length === 0) throw new Error(`corpus/${name}/guest.json has no runs`);
  for (const r of m.runs) {
    if (typeof r.image !== 'string' || !isLoaderKind(r.load)) throw new Error(`corpus/${name}/guest.json: a run needs image and load`);
  }
  return { name, dir, description: m.description ?? '', showcase: m.showcase === true, runs: m.runs.map((r) => ({ ...r, expect: r.expect ?? {} })) };
}

/**
 * The name of a run's regression trace in traces/ (`npm run traces:update` records it as
 * traces/<name>.trace; test/traces.test.ts checks that every run has one): the image's base
 * name, with -novmx for a run without VMX.
 */
export function regressionTraceName(r: GuestRun): string {
  return `${basename(r.image).replace(/\.[^.]+$/, '')}${r.vmx === false ? '-novmx' : ''}`;
}

/** Runs one entry of a guest on a fresh deterministic machine. */
export function runGuest(g: Guest, r: GuestRun): RunResult {
  const m = createMachine({ memMiB: r.mem, vmx: r.vmx !== false });
  m.load(readFileSync(join(g.dir, r.image)), r.load, r.at === undefined ? {} : { at: parseUint('at', r.at, 0xffffffff) });
  return m.run({ maxInsns: r.maxInsns ?? 100_000_000 });
}

/** The ways `result` differs from `e`, one line each (empty: as expected). */
export function checkExpect(e: GuestExpect, result: RunResult): string[] {
  const bad: string[] = [];
  const show = (v: unknown): string => JSON.stringify(v);
  const same = (field: keyof GuestExpect & keyof RunResult): void => {
    if (e[field] !== undefined && show(e[field]) !== show(result[field])) {
      bad.push(`${field}: expected ${show(e[field])}, got ${show(result[field])}`);
    }
  };
  same('stop');
  same('exitCode');
  same('instructions');
  same('debugOutput');
  same('serialOutput');
  same('postCodes');
  if (e.debugOutputMatch !== undefined && !new RegExp(e.debugOutputMatch).test(result.debugOutput)) {
    bad.push(`debugOutput ${show(result.debugOutput)} does not match /${e.debugOutputMatch}/`);
  }
  if (e.serialOutputMatch !== undefined && !new RegExp(e.serialOutputMatch).test(result.serialOutput)) {
    bad.push(`serialOutput ${show(result.serialOutput)} does not match /${e.serialOutputMatch}/`);
  }
  if (result.error !== undefined) bad.push(`internal error: ${result.error}`);
  return bad;
}
