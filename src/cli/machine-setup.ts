// What the commands that run a guest share (`run`, `record`): the machine options
// (--load/--at/--mem/--max-insns/--env/--no-vmx) parsed into one MachineSetup with the image read
// and its loader chosen; the guest's output streamed to stdout line by line; and the progress
// line on stderr (rewritten in place on a terminal, one line per report with --progress).

import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { LOADERS, sniffLoader, type LoaderKind, type LoadOptions } from '../machine/loaders/index.js';
import { DEFAULT_MEM_MIB, MAX_MEM_MIB, type MachineOptions } from '../machine/machine.js';
import { parseChoice, parseUint, UserError, type ParsedArgs } from './args.js';
import type { CliIo } from './main.js';

export const MACHINE_USAGE = '[--load bios|multiboot|flat] [--at ADDR] [--mem MiB] [--max-insns N] [--env deterministic|live] [--no-vmx]';

/** The machine options, for a command's parseArgs spec. */
export const MACHINE_SPEC = {
  load: 'string', at: 'string', mem: 'string', 'max-insns': 'string', env: 'string', 'no-vmx': 'boolean',
} as const;

/** Largest image file read: beyond any loader's reach (128 KiB ROM, a kernel in 3 GiB of RAM is unusual). */
const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

export interface MachineSetup {
  /** The image file as given on the command line. */
  path: string;
  image: Uint8Array;
  load: LoaderKind;
  loadOptions: LoadOptions;
  memMiB: number;
  /** --max-insns; undefined: no budget. */
  maxInsns: number | undefined;
  env: 'deterministic' | 'live';
  vmx: boolean;
}

export function readImage(path: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserError(`${path} is not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (size > MAX_IMAGE_BYTES) throw new UserError(`${path} is ${size} bytes; images are at most 512 MiB`);
  return readFileSync(path);
}

/** The machine options of `p` (parsed with MACHINE_SPEC) for the image at `path`, which is read. */
export function machineSetup(p: ParsedArgs, path: string): MachineSetup {
  const at = p.strings.has('at') ? parseUint('--at', p.strings.get('at')!, 0xffffffff) : undefined;
  const load = p.strings.has('load') ? parseChoice('--load', p.strings.get('load')!, LOADERS) : undefined;
  const memMiB = p.strings.has('mem') ? parseUint('--mem', p.strings.get('mem')!, MAX_MEM_MIB) : DEFAULT_MEM_MIB;
  const maxInsns = p.strings.has('max-insns') ? parseUint('--max-insns', p.strings.get('max-insns')!) : undefined;
  const env = p.strings.has('env') ? parseChoice('--env', p.strings.get('env')!, ['deterministic', 'live'] as const) : 'deterministic';
  const image = readImage(path);
  return {
    path, image,
    // --at only means something to the flat loader, so it selects it when --load is absent.
    load: load ?? (at !== undefined ? 'flat' : sniffLoader(image, basename(path))),
    loadOptions: at === undefined ? {} : { at },
    memMiB, maxInsns, env, vmx: !p.flags.has('no-vmx'),
  };
}

/** Collects output bytes and writes them in chunks: at a newline, at 4 KiB, and at flush(). */
class OutputStream {
  private buf = Buffer.alloc(4096);
  private n = 0;
  constructor(private readonly write: (b: Buffer) => void) {}
  push(byte: number): void {
    this.buf[this.n++] = byte;
    if (byte === 0x0a || this.n === this.buf.length) this.flush();
  }
  flush(): void {
    if (this.n === 0) return;
    this.write(Buffer.from(this.buf.subarray(0, this.n)));
    this.n = 0;
  }
}

export interface GuestOutput {
  /** Machine options streaming the debug console and COM1 to stdout (none when stdout is for JSON). */
  options: Pick<MachineOptions, 'onDebugOutput' | 'onSerialOutput'>;
  flush(): void;
}

/**
 * The guest's port 0xE9 and COM1 output to io.stdout, one line buffer per source so lines of
 * the two never interleave; nothing when `json` (stdout then holds only the result object).
 */
export function guestOutput(io: CliIo, json: boolean): GuestOutput {
  const debugOut = new OutputStream((b) => io.stdout.write(b));
  const serialOut = new OutputStream((b) => io.stdout.write(b));
  return {
    options: json ? {} : {
      onDebugOutput: (b: number) => debugOut.push(b),
      onSerialOutput: (com: number, b: number) => { if (com === 1) serialOut.push(b); },
    },
    flush: () => {
      debugOut.flush();
      serialOut.flush();
    },
  };
}

export interface ProgressLine {
  /** Whether progress is shown at all (stderr is a terminal, or --progress). */
  readonly enabled: boolean;
  /** Shows one progress line (after `before`, e.g. flushing the guest's output). */
  show(line: string): void;
  /** Erases the last line on a terminal, before the report. */
  done(): void;
}

export function progressLine(io: CliIo, requested: boolean, before: () => void = () => {}): ProgressLine {
  const tty = io.stderrIsTTY;
  let shown = false;
  return {
    enabled: tty || requested,
    show(line) {
      before();
      io.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
      shown = true;
    },
    done() {
      if (shown && tty) io.stderr.write('\r\x1b[K');
    },
  };
}

/** "12.3 M instructions": counts in progress lines. */
export const millions = (n: number): string => `${(n / 1e6).toFixed(1)} M instructions`;
