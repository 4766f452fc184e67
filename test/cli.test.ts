// The command line as a user meets it: exit statuses by stop kind, stdout/stderr separation,
// --json, progress and bad usage. Most cases run main() in-process; a few spawn real processes
// (`npx tsx src/cli/main.ts`, `npx trapdiff`, node with tsx) to check the process wiring.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliInProcess, ROOT, spawnCli, trapdiffProcess } from './helpers/cli.js';

const HELLO = join(ROOT, 'corpus/hello');
const dir = mkdtempSync(join(tmpdir(), 'trapdiff-cli-'));

/** A flat image of the given 32-bit code bytes, written to the temp dir. */
function flat(name: string, code: number[]): string {
  const p = join(dir, name);
  writeFileSync(p, Uint8Array.from(code));
  return p;
}

const HELLO_BIOS = 'Hello, world! (bios loader, real mode)\n';

describe('trapdiff CLI in-process', () => {
  it('help: usage on stdout, exit 0; no command: usage on stderr, exit 2', () => {
    const help = cliInProcess('help');
    expect(help).toMatchObject({ status: 0, stderr: '' });
    expect(help.stdout).toContain('trapdiff run IMAGE');
    const none = cliInProcess();
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('usage:');
  });

  it.each([
    [['frob'], /^trapdiff: unknown command 'frob'/],
    [['run', '--bogus', 'x'], /^trapdiff: run: unknown option --bogus\n$/],
    [['run'], /^trapdiff: run takes one IMAGE/],
    [['run', 'a', 'b'], /^trapdiff: run takes one IMAGE/],
    [['run', 'x', '--max-insns'], /^trapdiff: run: option --max-insns needs a value\n$/],
    [['run', 'x', '--json', '--json'], /given twice/],
    [['run', 'x', '--json=1'], /takes no value/],
    [['run', 'x', '--no-vmx=1'], /takes no value/],
    [['run', 'x', '--env', 'host'], /--env must be one of deterministic, live/],
    [['run', 'x', '--max-insns', '-5'], /--max-insns must be an integer .* not '-5'/],
    [['run', 'x', '--max-insns', '1e6'], /--max-insns must be an integer/],
    [['showcase', 'x'], /showcase takes no arguments/],
  ])('bad usage %j: one line on stderr, exit 2', (args, message) => {
    const r = cliInProcess(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('exit statuses follow the stop: budget 4, hlt 0, shutdown 3, exit (v << 1) | 1', () => {
    const loop = cliInProcess('run', flat('loop.bin', [0xeb, 0xfe]), '--max-insns', '1000');
    expect(loop.status).toBe(4);
    expect(loop.stderr).toMatch(/stop budget\n.*: 1000 instructions/);
    const hlt = cliInProcess('run', flat('hlt.bin', [0xfa, 0xf4]));
    expect(hlt.status).toBe(0);
    expect(hlt.stderr).toMatch(/stop hlt/);
    // lidt [0x100010] (limit 0); ud2: #UD cannot be delivered, nor #GP, nor #DF: shutdown
    const tf = cliInProcess('run', flat('tf.bin', [0x0f, 0x01, 0x1d, 0x10, 0x00, 0x10, 0x00, 0x0f, 0x0b, ...new Array<number>(7).fill(0x90), 0, 0, 0, 0, 0, 0]));
    expect(tf.stderr).toMatch(/stop shutdown/);
    expect(tf.status).toBe(3);
    // mov al, 7; out 0xf4, al
    const exit = cliInProcess('run', flat('exit.bin', [0xb0, 0x07, 0xe6, 0xf4]));
    expect(exit.stderr).toMatch(/stop exit \(exit code 15\)/);
    expect(exit.status).toBe(15);
  });

  it('streams the guest output to stdout and reports on stderr', () => {
    const r = cliInProcess('run', join(HELLO, 'hello-bios.rom'));
    expect(r.stdout).toBe(HELLO_BIOS + HELLO_BIOS); // port 0xE9, then COM1
    expect(r.stderr).toMatch(/^trapdiff: BIOS ROM, 64 KiB/);
    expect(r.stderr).toMatch(/stop exit \(exit code 33\)/);
    expect(r.status).toBe(33);
  });

  it('the machine offers VMX by default: the corpus hypervisor launches its guest; with --no-vmx CPUID says no VMX', () => {
    const hypervisor = join(ROOT, 'corpus/hypervisor/hypervisor.rom');
    const on = cliInProcess('run', hypervisor);
    expect(on.stdout).toContain('exit 10 cpuid leaf 40000000\n');
    expect(on.stdout).toContain('hypervisor: VMX off\n');
    expect(on.status).toBe(33);
    const off = cliInProcess('run', hypervisor, '--no-vmx');
    expect(off.stdout).toBe('hypervisor: start\nhypervisor: no VMX (CPUID.1:ECX.VMX = 0)\n');
    expect(off.status).toBe(35);
  });

  it('--json: stdout holds only the result object', () => {
    const r = cliInProcess('run', join(HELLO, 'hello-flat.bin'), '--json', '--env', 'live');
    const o = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(o).sort()).toEqual(['debugOutput', 'exitCode', 'instructions', 'mips', 'postCodes', 'seconds', 'serialOutput', 'stop']);
    expect(o).toMatchObject({ stop: 'exit', exitCode: 33, debugOutput: 'Hello, world! (flat loader, 32-bit protected mode)\n' });
    expect(r.status).toBe(33);
  });

  it('showcase --json prints one object with every run and no failures', () => {
    const r = cliInProcess('showcase', '--json');
    const out = JSON.parse(r.stdout) as { runs: Array<{ guest: string; asExpected: boolean; stop: string }>; failures: number };
    expect(out.failures).toBe(0);
    expect(out.runs.length).toBeGreaterThan(2);
    expect(out.runs.every((run) => run.asExpected)).toBe(true);
  });

  it('showcase (npm start) runs the showcase guests and says they behaved', () => {
    const r = cliInProcess('showcase');
    expect(r.stdout).toContain(`   | ${HELLO_BIOS}`);
    expect(r.stdout).toContain('All showcase runs behaved as their manifests say.');
    expect(r.status).toBe(0);
  });
});

describe.concurrent('trapdiff CLI as a process', () => {
  it('npx tsx src/cli/main.ts: output on stdout, report on stderr, the guest exit status', async () => {
    const r = await spawnCli('npx', ['tsx', 'src/cli/main.ts', 'run', join(HELLO, 'hello-bios.rom')]);
    expect(r.stdout).toBe(HELLO_BIOS + HELLO_BIOS);
    expect(r.stderr).toMatch(/stop exit/);
    expect(r.status).toBe(33);
  });

  it('npx trapdiff (bin/trapdiff.js) runs the CLI', async () => {
    const r = await spawnCli('npx', ['trapdiff', 'help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('trapdiff decode');
  });

  it('bad usage exits 2 with one line', async () => {
    const r = await trapdiffProcess('run', '--bogus');
    expect(r).toEqual({ status: 2, stdout: '', stderr: 'trapdiff: run: unknown option --bogus\n' });
  });

  it('--progress prints progress lines on stderr for long runs', async () => {
    const r = await trapdiffProcess('run', flat('spin.bin', [0xeb, 0xfe]), '--max-insns', '100000000', '--progress');
    expect(r.status).toBe(4);
    expect(r.stderr).toMatch(/M instructions, \d+ s, [\d.]+ MIPS\n/);
  });
});
