// The command line as a user meets it: spawned through tsx (and once through bin/trapdiff.js),
// checking stdout/stderr separation, --json, exit statuses by stop kind and bad options.

import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HELLO = join(ROOT, 'corpus/hello');
const dir = mkdtempSync(join(tmpdir(), 'trapdiff-cli-'));

interface Result { status: number | null; stdout: string; stderr: string }

function spawnCli(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString('latin1')));
    p.on('error', reject);
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const trapdiff = (...args: string[]): Promise<Result> => spawnCli('npx', ['tsx', 'src/cli/main.ts', ...args]);

/** A flat image of the given 32-bit code bytes, written to the temp dir. */
function flat(name: string, code: number[]): string {
  const p = join(dir, name);
  writeFileSync(p, Uint8Array.from(code));
  return p;
}

describe.concurrent('trapdiff CLI', () => {
  it('help: usage on stdout, exit 0; no command: usage on stderr, exit 2', async () => {
    const help = await trapdiff('help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('trapdiff run IMAGE');
    expect(help.stderr).toBe('');
    const none = await trapdiff();
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('usage:');
  });

  it('npx trapdiff (bin/trapdiff.js) runs the CLI', async () => {
    const r = await spawnCli('npx', ['trapdiff', 'help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('trapdiff decode');
  });

  it.each([
    [['frob'], /^trapdiff: unknown command 'frob'/],
    [['run', '--bogus', 'x'], /^trapdiff: run: unknown option --bogus\n$/],
    [['run'], /^trapdiff: run takes one IMAGE/],
    [['run', 'a', 'b'], /^trapdiff: run takes one IMAGE/],
    [['run', 'x', '--max-insns'], /^trapdiff: run: option --max-insns needs a value\n$/],
    [['run', 'x', '--json', '--json'], /given twice/],
    [['run', 'x', '--env', 'host'], /--env must be one of deterministic, live/],
    [['run', 'x', '--max-insns', '-5'], /unknown option -5/],
  ])('bad usage %j: one line on stderr, exit 2', async (args, message) => {
    const r = await trapdiff(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('exit statuses follow the stop: budget 4, hlt 0, shutdown 3, exit (v << 1) | 1', async () => {
    const loop = await trapdiff('run', flat('loop.bin', [0xeb, 0xfe]), '--max-insns', '1000');
    expect(loop.status).toBe(4);
    expect(loop.stderr).toMatch(/stop budget/);
    expect(loop.stderr).toMatch(/1000 instructions/);
    const hlt = await trapdiff('run', flat('hlt.bin', [0xfa, 0xf4]));
    expect(hlt.status).toBe(0);
    expect(hlt.stderr).toMatch(/stop hlt/);
    // lidt [0x100010] (limit 0); ud2 -> #UD, #GP, #DF and shutdown
    const tf = await trapdiff('run', flat('tf.bin', [0x0f, 0x01, 0x1d, 0x10, 0x00, 0x10, 0x00, 0x0f, 0x0b, ...new Array(7).fill(0x90), 0, 0, 0, 0, 0, 0]));
    expect(tf.status).toBe(3);
    expect(tf.stderr).toMatch(/stop shutdown/);
    // mov al, 7; out 0xf4, al
    const exit = await trapdiff('run', flat('exit.bin', [0xb0, 0x07, 0xe6, 0xf4]));
    expect(exit.status).toBe(15);
    expect(exit.stderr).toMatch(/stop exit \(exit code 15\)/);
  });

  it('streams the guest output to stdout and reports on stderr', async () => {
    const r = await trapdiff('run', join(HELLO, 'hello-bios.rom'));
    const line = 'Hello, world! (bios loader, real mode)\n';
    expect(r.stdout).toBe(line + line); // port 0xE9, then COM1
    expect(r.stderr).toMatch(/^trapdiff: BIOS ROM, 64 KiB/);
    expect(r.stderr).toMatch(/stop exit \(exit code 33\)/);
    expect(r.status).toBe(33);
  });

  it('--json: stdout holds only the result object', async () => {
    const r = await trapdiff('run', join(HELLO, 'hello-flat.bin'), '--json', '--env', 'live');
    const o = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(o).sort()).toEqual(['debugOutput', 'exitCode', 'instructions', 'mips', 'postCodes', 'seconds', 'serialOutput', 'stop']);
    expect(o).toMatchObject({ stop: 'exit', exitCode: 33, debugOutput: 'Hello, world! (flat loader, 32-bit protected mode)\n' });
    expect(r.status).toBe(33);
  });

  it('--progress prints progress lines on stderr for long runs', async () => {
    const r = await trapdiff('run', flat('spin.bin', [0xeb, 0xfe]), '--max-insns', '100000000', '--progress');
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/M instructions, \d+ s, [\d.]+ MIPS\n/);
  });
});
