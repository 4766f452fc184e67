// `trapdiff run IMAGE [--load bios|multiboot|flat] [--at ADDR] [--mem MiB] [--max-insns N]
//                    [--env deterministic|live] [--no-vmx] [--json] [--progress]`
//
// Runs one image to its end, on the Core Duo with VMX unless --no-vmx takes it away (CPUID.1:ECX.VMX,
// CR4.VMXE, the VMX MSRs: the machine option `vmx`, docs/VMX.md). The guest's port 0xE9 and COM1 output streams to stdout as it
// comes, line by line per source (with --json stdout holds only the result object); a report
// goes to stderr.
//
// Exit status by how the run stopped (RUN_EXIT_CODES):
//   hlt 0, poweroff 0, exit: the guest's isa-debug-exit status ((value << 1) | 1),
//   error 1 (a trapdiff bug), bad input 2, shutdown (triple fault) 3, budget 4.

import { createMachine, type RunResult, type StopKind } from '../machine/machine.js';
import type { LoaderKind } from '../machine/loaders/index.js';
import { parseArgs, UserError } from './args.js';
import { guestOutput, MACHINE_SPEC, MACHINE_USAGE, machineSetup, millions, progressLine } from './machine-setup.js';
import type { CliIo } from './main.js';

export const RUN_USAGE = `trapdiff run IMAGE ${MACHINE_USAGE} [--json] [--progress]`;

export const RUN_EXIT_CODES: Readonly<Record<Exclude<StopKind, 'exit'>, number>> = {
  hlt: 0, poweroff: 0, error: 1, shutdown: 3, budget: 4, livelock: 5,
};

/** The exit status of a run that stopped as `r` did. */
export const runExitCode = (r: Pick<RunResult, 'stop' | 'exitCode'>): number => (r.stop === 'exit' ? r.exitCode! : RUN_EXIT_CODES[r.stop]);

const SPEC = { ...MACHINE_SPEC, json: 'boolean', progress: 'boolean' } as const;

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
  const setup = machineSetup(p, p.positional[0]!);
  const json = p.flags.has('json');
  const output = guestOutput(io, json);
  const machine = createMachine({ memMiB: setup.memMiB, env: setup.env, vmx: setup.vmx, ...output.options });
  const description = machine.load(setup.image, setup.load, setup.loadOptions);

  const progress = progressLine(io, p.flags.has('progress'), output.flush);
  const result = machine.run({
    ...(setup.maxInsns === undefined ? {} : { maxInsns: setup.maxInsns }),
    ...(progress.enabled ? {
      onProgress: ({ instructions, seconds, mips }) =>
        progress.show(`trapdiff: ${millions(instructions)}, ${seconds.toFixed(0)} s, ${mips.toFixed(1)} MIPS`),
    } : {}),
  });
  machine.env.dispose();
  output.flush();
  progress.done();
  if (json) {
    const { stop, instructions, postCodes, debugOutput, serialOutput, exitCode, seconds, mips } = result;
    io.stdout.write(JSON.stringify({ stop, instructions, postCodes, debugOutput, serialOutput, exitCode, seconds, mips, ...(result.error ? { error: result.error } : {}) }) + '\n');
  }
  io.stderr.write(report(result, setup.load, description));
  return runExitCode(result);
}
