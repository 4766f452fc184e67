// The peer emulators a user would pick instead of trapdiff, run on the benchmark ROMs: v86
// in-process (JIT to WebAssembly), Bochs through ../shared/peers/bochs-vmx/run-rom and QEMU
// (TCG) as child processes. Each run returns the guest's port 0xE9 output, a wall time and a
// CPU time (user + system): for v86 from starting the emulator to the checksum's newline (its
// WebAssembly compile is before the start), for Bochs and QEMU the whole process tree, startup
// included (CPU time through /usr/bin/time); the benchmark subtracts each peer's time on the
// null ROM from its other times.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROM_SIZE } from './workloads.js';

export interface PeerRun {
  /** Wall time in seconds (see the file comment for what it covers). */
  seconds: number;
  /** User + system CPU time in seconds, over the same span. */
  cpuSeconds: number;
  /** The guest's port 0xE9 output. */
  output: string;
  /** The peer's own instruction counter, where it has one. */
  instructions?: number;
}

export interface Peer {
  name: string;
  /** What the wall time covers, for the report. */
  measures: string;
  run(rom: Uint8Array): Promise<PeerRun>;
}

/** No workload runs this long on any peer; a run past it is hung. */
const TIMEOUT_SECONDS = 600;
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BOCHS_RUN_ROM = resolve(REPO, '../shared/peers/bochs-vmx/run-rom');
const QEMU = 'qemu-system-i386';
/** GNU time: the CPU time of a child process tree (Node reports none for children). */
const GNU_TIME = '/usr/bin/time';
const DEBUG_PORT = 0xe9;

/** The subset of v86's instance the runner touches beyond its typed API. */
interface V86Internals {
  v86: { cpu: { io: { register_write(port: number, device: unknown, byteHandler: (b: number) => void): void } } };
}

function v86Peer(): Peer {
  const require = createRequire(import.meta.url);
  const wasmPath = join(dirname(require.resolve('v86')), 'v86.wasm');
  return {
    name: 'v86',
    measures: 'in-process, emulator start to the checksum line (WebAssembly compile excluded)',
    async run(rom) {
      const { V86 } = await import('v86');
      // v86 maps a 128 KiB BIOS ending at 1 MiB: the 64 KiB ROM is its upper half.
      const bios = new Uint8Array(2 * ROM_SIZE).fill(0xff);
      bios.set(rom, ROM_SIZE);
      const emu = new V86({
        wasm_path: wasmPath, bios: { buffer: bios.buffer }, memory_size: 64 << 20, autostart: false, disable_speaker: true,
      });
      try {
        return await new Promise<PeerRun>((done, fail) => {
          const timer = setTimeout(() => fail(new Error(`v86: no checksum line after ${TIMEOUT_SECONDS} s`)), TIMEOUT_SECONDS * 1000);
          emu.add_listener('emulator-ready', () => {
            let output = '';
            let t0 = 0;
            let c0 = process.cpuUsage();
            (emu as unknown as V86Internals).v86.cpu.io.register_write(DEBUG_PORT, null, (byte) => {
              output += String.fromCharCode(byte);
              if (byte !== 0x0a) return;
              const seconds = (performance.now() - t0) / 1000;
              const c = process.cpuUsage(c0);
              clearTimeout(timer);
              done({ seconds, cpuSeconds: (c.user + c.system) / 1e6, output, instructions: emu.get_instruction_counter() });
            });
            t0 = performance.now();
            c0 = process.cpuUsage();
            void emu.run();
          });
        });
      } finally {
        await emu.destroy();
      }
    },
  };
}

/** Runs `cmd` under GNU time; returns its wall time, CPU time and stdout. */
function timeProcess(dir: string, cmd: string, args: string[]): Promise<{ seconds: number; cpuSeconds: number; stdout: string }> {
  const timeFile = join(dir, 'time.out');
  return new Promise((done, fail) => {
    const t0 = performance.now();
    const child = spawn(GNU_TIME, ['-f', '%U %S', '-o', timeFile, cmd, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_SECONDS * 1000);
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', fail);
    child.on('close', () => {
      const seconds = (performance.now() - t0) / 1000;
      clearTimeout(timer);
      // GNU time writes "Command exited with non-zero status N" first when the status is not 0.
      const m = /([\d.]+) ([\d.]+)\s*$/.exec(existsSync(timeFile) ? readFileSync(timeFile, 'latin1') : '');
      if (m === null) fail(new Error(`${cmd}: no CPU time from ${GNU_TIME}`));
      else done({ seconds, cpuSeconds: Number(m[1]) + Number(m[2]), stdout: Buffer.concat(chunks).toString('latin1') });
    });
  });
}

/** Bochs and QEMU read the ROM from a file: each run writes it to a fresh temporary directory. */
async function withRomFile<T>(rom: Uint8Array, f: (dir: string, romPath: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-bench-'));
  try {
    const romPath = join(dir, 'bench.rom');
    writeFileSync(romPath, rom);
    return await f(dir, romPath);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function bochsPeer(): Peer {
  return {
    name: 'bochs',
    measures: 'whole run-rom process (Bochs 3.0 built without debugger, Core Duo model)',
    run: (rom) => withRomFile(rom, async (dir, romPath) => {
      const r = await timeProcess(dir, BOCHS_RUN_ROM, [romPath, String(TIMEOUT_SECONDS)]);
      return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, output: r.stdout };
    }),
  };
}

function qemuPeer(): Peer {
  return {
    name: 'qemu',
    measures: 'whole qemu-system-i386 process (TCG)',
    run: (rom) => withRomFile(rom, async (dir, romPath) => {
      const out = join(dir, 'debugcon.out');
      const r = await timeProcess(dir, QEMU, [
        '-display', 'none', '-nodefaults', '-accel', 'tcg', '-bios', romPath,
        '-device', 'isa-debug-exit,iobase=0xf4,iosize=1', '-debugcon', `file:${out}`,
      ]);
      return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, output: existsSync(out) ? readFileSync(out, 'latin1') : '' };
    }),
  };
}

function qemuInstalled(): boolean {
  return spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** The peers available on this machine, and a note for each one that is not. */
export function availablePeers(): { peers: Peer[]; missing: string[] } {
  const peers: Peer[] = [v86Peer()];
  const missing: string[] = [];
  const timed = existsSync(GNU_TIME);
  if (!timed) missing.push(`bochs, qemu: ${GNU_TIME} (Debian package "time") not installed`);
  else if (existsSync(BOCHS_RUN_ROM)) peers.push(bochsPeer());
  else missing.push(`bochs: ${BOCHS_RUN_ROM} not found`);
  if (timed && qemuInstalled()) peers.push(qemuPeer());
  else if (timed) missing.push(`qemu: ${QEMU} not installed`);
  return { peers, missing };
}
