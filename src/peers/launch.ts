// Launching the peer emulators on a 64 KiB ROM and collecting what the guest writes to port 0xE9:
// v86 in-process (JIT to WebAssembly), Bochs with VMX through ../shared/peers/bochs-vmx/run-rom
// and QEMU (TCG) as child processes. The cross-check (src/crosscheck/peers.ts) adds its profiles
// on top, the benchmark (src/bench/peers.ts) its timing: the hooks below mark where a run starts
// and ends, so a stopwatch spans the guest's run and nothing of the set-up or tear-down.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type PeerEmulator = 'v86' | 'bochs' | 'qemu';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BOCHS_RUN_ROM = resolve(REPO, '../shared/peers/bochs-vmx/run-rom');
export const QEMU = 'qemu-system-i386';
const DEBUG_PORT = 0xe9;
/** The ROM size every peer maps at the top of the first MiB (and below 4 GiB). */
const ROM_BYTES = 0x10000;

/** Where a caller's stopwatch starts and stops. */
export interface RunHooks {
  /** Right before the guest's first instruction (v86) or the peer's process is spawned. */
  started?(): void;
  /** As soon as the run has ended, before anything is torn down; `dir` is a process peer's
   *  temporary directory (where a `prefix` command may have left files), '' for v86. */
  ended?(dir: string): void;
}

/** Whether the peer can run here: v86 is a dependency; Bochs and QEMU are found on this machine. */
export function peerInstalled(peer: PeerEmulator): boolean {
  if (peer === 'bochs') return existsSync(BOCHS_RUN_ROM);
  if (peer === 'qemu') return spawnSync(QEMU, ['--version'], { stdio: 'ignore' }).status === 0;
  return true;
}

// ---- v86 ----

export interface V86Options extends RunHooks {
  /** Guest RAM in MiB. */
  memoryMiB: number;
  /** The run has ended once the port 0xE9 output ends with this text. */
  endMark: string;
  /** A run that has not ended by then stops with end 'timeout'. */
  seconds: number;
}

export interface V86Run {
  output: string;
  /** 'panic': v86 hit something it does not implement (`panic` says what). */
  end: 'done' | 'timeout' | 'panic';
  panic?: string;
  /** v86's retired-instruction counter at the end. */
  instructions: number;
}

/** The part of v86's instance the runner touches beyond its typed API. */
interface V86Internals {
  v86: { cpu: { io: { register_write(port: number, device: unknown, byteHandler: (b: number) => void): void } } };
}

export async function runV86(rom: Uint8Array, o: V86Options): Promise<V86Run> {
  const { V86 } = await import('v86');
  const wasmPath = join(dirname(createRequire(import.meta.url).resolve('v86')), 'v86.wasm');
  // v86 maps a 128 KiB BIOS ending at 1 MiB: the 64 KiB ROM is its upper half.
  const bios = new Uint8Array(2 * ROM_BYTES).fill(0xff);
  bios.set(rom, ROM_BYTES);
  const emu = new V86({
    wasm_path: wasmPath, bios: { buffer: bios.buffer }, memory_size: o.memoryMiB << 20, autostart: false, disable_speaker: true,
  });
  let output = '';
  let finished = false;
  let settle: (r: V86Run) => void = () => undefined;
  const result = new Promise<V86Run>((done) => { settle = done; });
  // The guest may write more before the emulator is torn down: the first end counts.
  const finish = (end: V86Run['end'], panic?: string): void => {
    if (finished) return;
    finished = true;
    o.ended?.('');
    clearTimeout(timer);
    process.off('uncaughtException', onPanic);
    settle({ output, end, panic, instructions: emu.get_instruction_counter() });
  };
  // v86 reports what it does not implement by a WebAssembly trap thrown from its timer
  // callback: take it as the end of this run, not of the process.
  const onPanic = (e: unknown): void => finish('panic', e instanceof Error ? e.message : String(e));
  process.on('uncaughtException', onPanic);
  const timer = setTimeout(() => finish('timeout'), o.seconds * 1000);
  emu.add_listener('emulator-ready', () => {
    (emu as unknown as V86Internals).v86.cpu.io.register_write(DEBUG_PORT, null, (byte) => {
      output += String.fromCharCode(byte);
      if (output.endsWith(o.endMark)) finish('done');
    });
    o.started?.();
    void emu.run();
  });
  try {
    return await result;
  } finally {
    await emu.destroy().catch(() => undefined);
  }
}

// ---- Bochs and QEMU: child processes reading the ROM from a file ----

export interface ProcessOptions extends RunHooks {
  /** Bounds the run: past it the peer is stopped and its output so far returned. */
  seconds: number;
  /** A command to run the peer under (GNU time, for one), given the run's temporary directory. */
  prefix?(dir: string): string[];
  /** Bochs's CPU model, when not run-rom's default (the Core Duo T2400 with VMX). */
  model?: string;
}

/** The peer's command line, and the file it writes port 0xE9 to (null: its stdout). */
function command(peer: 'bochs' | 'qemu', dir: string, romPath: string, o: ProcessOptions): { argv: string[]; outFile: string | null } {
  const seconds = o.seconds;
  if (peer === 'bochs') return { argv: [BOCHS_RUN_ROM, romPath, String(seconds), ...(o.model ? [o.model] : [])], outFile: null };
  const outFile = join(dir, 'debugcon.out');
  return {
    argv: ['timeout', String(seconds), QEMU, '-display', 'none', '-nodefaults', '-accel', 'tcg', '-bios', romPath,
      '-device', 'isa-debug-exit,iobase=0xf4,iosize=1', '-debugcon', `file:${outFile}`],
    outFile,
  };
}

/** Runs the ROM on Bochs or QEMU; resolves with the guest's port 0xE9 output. */
export async function runProcessPeer(peer: 'bochs' | 'qemu', rom: Uint8Array, o: ProcessOptions): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-peer-'));
  try {
    const romPath = join(dir, 'rom.bin');
    writeFileSync(romPath, rom);
    const { argv, outFile } = command(peer, dir, romPath, o);
    const [cmd, ...args] = [...(o.prefix?.(dir) ?? []), ...argv];
    return await new Promise<string>((done, fail) => {
      o.started?.();
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.on('error', fail);
      child.on('close', () => {
        o.ended?.(dir);
        if (outFile === null) done(Buffer.concat(chunks).toString('latin1'));
        else done(existsSync(outFile) ? readFileSync(outFile, 'latin1') : '');
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
