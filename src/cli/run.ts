// `trapdiff run IMAGE [--load bios|multiboot|flat] [--at ADDR] [--mem MiB] [--max-insns N]
//                    [--env deterministic|live] [--vmx] [--json] [--progress]`
//
// Runs one image to its end, on the Core Duo without VMX unless --vmx offers it (CPUID.1:ECX.VMX,
// CR4.VMXE, the VMX MSRs: the machine option `vmx`, docs/VMX.md). The guest's port 0xE9 and COM1 output streams to stdout as it
// comes, line by line per source (with --json stdout holds only the result object); a report
// goes to stderr.
//
// Exit status by how the run stopped (RUN_EXIT_CODES):
//   hlt 0, poweroff 0, exit: the guest's isa-debug-exit status ((value << 1) | 1),
//   error 1 (a trapdiff bug), bad input 2, shutdown (triple fault) 3, budget 4.

import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { createMachine, DEFAULT_MEM_MIB, MAX_MEM_MIB, type RunResult, type StopKind } from '../machine/machine.js';
import { LOADERS, sniffLoader, type LoaderKind } from '../machine/loaders/index.js';
import { parseArgs, parseChoice, parseUint, UserError } from './args.js';
import type { CliIo } from './main.js';

export const RUN_USAGE =
  'trapdiff run IMAGE [--load bios|multiboot|flat] [--at ADDR] [--mem MiB] [--max-insns N] [--env deterministic|live] [--vmx] [--json] [--progress]';

export const RUN_EXIT_CODES: Readonly<Record<Exclude<StopKind, 'exit'>, number>> = {
  hlt: 0, poweroff: 0, error: 1, shutdown: 3, budget: 4, livelock: 5,
};

/** Largest image file read: beyond any loader's reach (128 KiB ROM, a kernel in 3 GiB of RAM is unusual). */
const MAX_IMAGE_BYTES = 512 * 1024 * 1024;

const SPEC = {
  load: 'string', at: 'string', mem: 'string', 'max-insns': 'string', env: 'string', vmx: 'boolean', json: 'boolean',
  progress: 'boolean',
} as const;

function readImage(path: string): Uint8Array {
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

function report(r: RunResult, loader: LoaderKind, description: string): string {
  const lines = [
    `trapdiff: ${description}`,
    `trapdiff: stop ${r.stop}${r.exitCode === null ? '' : ` (exit code ${r.exitCode})`}${r.error ? `: ${r.error}` : ''}`,
    `trapdiff: ${r.instructions} instructions in ${r.seconds.toFixed(3)} s (${r.mips.toFixed(1)} MIPS), loader ${loader}`,
  ];
  if (r.postCodes.length > 0) {
    const codes = r.postCodes.slice(-16).map((c) => c.toString(16).padStart(2, '0'));
    lines.push(`trapdiff: POST codes${r.postCodes.length > 16 ? ' (last 16)' : ''}: ${codes.join(' ')}`);
  }
  return lines.join('\n') + '\n';
}

export function runCommand(args: readonly string[], io: CliIo): number {
  const p = parseArgs('run', args, SPEC);
  if (p.positional.length !== 1) throw new UserError(`run takes one IMAGE (usage: ${RUN_USAGE})`);
  const path = p.positional[0]!;
  const at = p.strings.has('at') ? parseUint('--at', p.strings.get('at')!, 0xffffffff) : undefined;
  // --at only means something to the flat loader, so it selects it when --load is absent.
  const loadOption = p.strings.has('load') ? parseChoice('--load', p.strings.get('load')!, LOADERS) : undefined;
  const memMiB = p.strings.has('mem') ? parseUint('--mem', p.strings.get('mem')!, MAX_MEM_MIB) : DEFAULT_MEM_MIB;
  const maxInsns = p.strings.has('max-insns') ? parseUint('--max-insns', p.strings.get('max-insns')!) : undefined;
  const env = p.strings.has('env') ? parseChoice('--env', p.strings.get('env')!, ['deterministic', 'live'] as const) : 'deterministic';
  const json = p.flags.has('json');
  const image = readImage(path);
  const load = loadOption ?? (at !== undefined ? 'flat' : sniffLoader(image, basename(path)));

  // One line buffer per source, so lines of the debug console and of COM1 never interleave.
  const debugOut = new OutputStream((b) => io.stdout.write(b));
  const serialOut = new OutputStream((b) => io.stdout.write(b));
  const flushOutput = (): void => {
    debugOut.flush();
    serialOut.flush();
  };
  const machine = createMachine({
    memMiB,
    env,
    vmx: p.flags.has('vmx'),
    ...(json ? {} : {
      onDebugOutput: (b: number) => debugOut.push(b),
      onSerialOutput: (com: number, b: number) => { if (com === 1) serialOut.push(b); },
    }),
  });
  const description = machine.load(image, load, at === undefined ? {} : { at });

  const tty = io.stderrIsTTY;
  const showProgress = tty || p.flags.has('progress');
  let progressShown = false;
  const result = machine.run({
    ...(maxInsns === undefined ? {} : { maxInsns }),
    ...(showProgress ? {
      onProgress: ({ instructions, seconds, mips }) => {
        flushOutput();
        const line = `trapdiff: ${(instructions / 1e6).toFixed(1)} M instructions, ${seconds.toFixed(0)} s, ${mips.toFixed(1)} MIPS`;
        io.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`);
        progressShown = true;
      },
    } : {}),
  });
  machine.env.dispose();
  flushOutput();
  if (progressShown && tty) io.stderr.write('\r\x1b[K');
  if (json) {
    const { stop, instructions, postCodes, debugOutput, serialOutput, exitCode, seconds, mips } = result;
    io.stdout.write(JSON.stringify({ stop, instructions, postCodes, debugOutput, serialOutput, exitCode, seconds, mips, ...(result.error ? { error: result.error } : {}) }) + '\n');
  }
  io.stderr.write(report(result, load, description));
  return result.stop === 'exit' ? result.exitCode! : RUN_EXIT_CODES[result.stop];
}
