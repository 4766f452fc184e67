// The trapdiff command line: dispatches to one file per command. Bad input (a UserError) is one
// line on stderr, `trapdiff: <message>`, and exit status 2; anything else is a bug and shows its
// stack.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_SNAPSHOT_EVERY } from '../record/recorder.js';
import { UserError } from './args.js';
import { BISECT_USAGE, bisectCommand } from './bisect.js';
import { DECODE_USAGE, decodeCommand } from './decode.js';
import { RECORD_USAGE, recordCommand } from './record.js';
import { REPLAY_USAGE, replayCommand } from './replay.js';
import { RUN_USAGE, runCommand } from './run.js';
import { showcaseCommand } from './showcase.js';
import { DIVERGENCE_EXIT } from './trace-input.js';
import { TRACE_INFO_USAGE, traceInfoCommand } from './trace-info.js';

export interface CliIo {
  stdout: { write(s: string | Uint8Array): unknown };
  stderr: { write(s: string | Uint8Array): unknown };
  stderrIsTTY: boolean;
}

const HELP = `trapdiff: IA-32 emulator for differential testing of virtualization modes

usage:
  ${RUN_USAGE}
      Runs IMAGE; the guest's port 0xE9 and COM1 output goes to stdout, a report to stderr.
      Exit status: hlt/poweroff 0, isa-debug-exit the guest's (value << 1) | 1, error 1,
      bad input 2, shutdown (triple fault) 3, instruction budget reached 4, livelock 5.
  ${RECORD_USAGE}
      Runs IMAGE as run does and records the run into the trace FILE: every input with its
      instruction count, observations, a checkpoint every K instructions (default ${DEFAULT_CHECKPOINT_EVERY}) and a
      stored snapshot every M (default ${DEFAULT_SNAPSHOT_EVERY}). Exit status: 0 trace written, 1 error, 2 bad input.
  ${REPLAY_USAGE}
      Replays the trace from its log alone and verifies every checkpoint; a divergence prints the
      state diff. --at N: the state after N instructions; --back K: and the K instructions before
      N, each with what it changed. The image is the one the trace names (relative to it) or
      --image, checked by SHA-256. --prefix: accept an incomplete trace's intact events.
      Exit status: 0 replays exactly, ${DIVERGENCE_EXIT} diverges, 2 bad input.
  ${BISECT_USAGE}
      The first instruction at which two traces of one image diverge, with the state diff.
      Exit status: 0 no divergence, ${DIVERGENCE_EXIT} diverge, 2 bad input.
  ${TRACE_INFO_USAGE}
      A trace's header, events by kind, inputs by source, size and completeness.
      Exit status: 0 complete, 2 incomplete or not a trace.
  ${DECODE_USAGE}
      Disassembles bytes with the CPU's own decoder.
  trapdiff showcase [--json]
      Runs the showcase guests of corpus/ (what npm start does); --json: one object, {runs, failures}.
  trapdiff help
      This text.
`;

export function main(argv: readonly string[], io: CliIo): number {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': return runCommand(rest, io);
      case 'record': return recordCommand(rest, io);
      case 'replay': return replayCommand(rest, io);
      case 'bisect': return bisectCommand(rest, io);
      case 'trace-info': return traceInfoCommand(rest, io);
      case 'decode': return decodeCommand([...rest], io.stdout, io.stderr);
      case 'showcase': return showcaseCommand(rest, io);
      case 'help': case '--help': case '-h':
        io.stdout.write(HELP);
        return 0;
      case undefined:
        io.stderr.write(HELP);
        return 2;
      default:
        throw new UserError(`unknown command '${command}' (try 'trapdiff help')`);
    }
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    io.stderr.write(`trapdiff: ${e.message}\n`);
    return 2;
  }
}

/** True when this module is the program being run (tsx src/cli/main.ts), not imported. */
function isEntryPoint(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

export function runMain(): void {
  // A reader that goes away (`trapdiff decode ... | head`) ends the output, not with a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
  const code = main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stderrIsTTY: process.stderr.isTTY === true });
  process.exitCode = code;
}

if (isEntryPoint()) runMain();
