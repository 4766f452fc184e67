// Running the trapdiff CLI from tests: in-process through main() (fast: exit status, stdout and
// stderr exactly as the process would produce them), or as a real process through tsx.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const text = (s: string | Uint8Array): string => (typeof s === 'string' ? s : Buffer.from(s).toString('latin1'));

export function cliInProcess(...argv: string[]): CliResult {
  let stdout = '', stderr = '';
  const status = main(argv, {
    stdout: { write: (s) => (stdout += text(s)) },
    stderr: { write: (s) => (stderr += text(s)) },
    stderrIsTTY: false,
  });
  return { status, stdout, stderr };
}

/** Spawns `cmd args` in the repository root and collects its output. */
export function spawnCli(cmd: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The CLI as a process: `node --import tsx src/cli/main.ts` (what `npx tsx` runs, minus npx's startup). */
export const trapdiffProcess = (...args: string[]): Promise<CliResult> =>
  spawnCli(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args]);
