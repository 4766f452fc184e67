// Runners that execute a cross-check ROM and return its port 0xE9 transcript: v86 (in-process),
// Bochs with VMX (../shared/peers/bochs-vmx/run-rom), QEMU (qemu-system-i386 -bios) and trapdiff
// itself (src/machine). Each peer also names what the generator must leave out for it.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AC, ID, RF } from '../cpu/constants.js';
import type { PeerProfile } from './generator.js';

export type PeerName = 'v86' | 'bochs' | 'qemu' | 'trapdiff';

export interface Peer {
  name: PeerName;
  profile: PeerProfile;
  /** Runs a 64 KiB ROM; resolves with everything the guest wrote to port 0xE9. */
  run(rom: Uint8Array): Promise<string>;
}

const here = dirname(fileURLToPath(import.meta.url));
export const BOCHS_RUN_ROM = resolve(here, '../../../shared/peers/bochs-vmx/run-rom');
/** Guest transcripts end with this line (rom.ts 'finish'). */
const END_MARK = 'END\n';
/** A ROM of ~300 tests runs in well under a second on every peer; this bounds a hang. */
const RUN_SECONDS = 20;

/**
 * What v86 (0.5.462) lacks or does differently by design, found by running its generator
 * output against Bochs: see docs/CROSSCHECK.md for the evidence of each.
 */
const V86_EXCLUDE = new Set<string>([
  'vmcall', 'vmlaunch', 'vmresume', 'vmxoff', 'vmread', 'vmwrite', 'vmptrld', 'vmclear', 'vmxon', 'vmptrst',
  'invept', 'invvpid', // no VMX
  'int-beyond-idt', // INT n past the IDT limit: v86 panics ("Unimplemented: #GP handler") instead of #GP(n*8+2)
  'lock-ud', // LOCK on a form that does not allow it: v86 ignores the prefix instead of #UD
  'int1', // F1 (INT1/ICEBP): v86 has no #DB for it
  'nop_Ev', // 0F 19-0F 1E hint NOPs: v86 raises #UD
  'invd', 'rdpmc', // v86 raises #UD
  'bound', // v86 misses #BR for out-of-range indexes (Bochs and QEMU raise it)
  'enter-nested', // ENTER with nesting level >= 1: v86 builds a different frame (Bochs and QEMU agree)
  'reset-dtr', // GDTR/IDTR limit after reset: v86 0, SDM Table 9-1 FFFFh (SGDT/SIDT in real mode)
  'cr-reserved', // MOV to/from CR1, CR5-CR7 at CPL 3: v86 #UD, Bochs and QEMU #GP(0) (privilege first)
  'ins', 'outs', // at CPL 3 with IOPL 0: v86 reports a different error code / EIP
  'ud0', 'ud1', // v86 decodes a different length, its #UD comes elsewhere
  'far-tss', // far JMP/CALL to a (busy) TSS: v86 has no task switch and no #GP for it
  'far-gate', // far JMP through a call gate to a more privileged segment: v86 takes it, no #GP
  'bt-pf', // BT* with memory and a #PF: v86 reports a CR2 inside the operand, not its start
  'vm86-int3', // INT3/INTO in virtual-8086 mode with IOPL < 3: v86 #GP(0), Bochs #BP/#OF (SDM INT n)
]);

/** What QEMU 7.2 TCG lacks, found against Bochs (docs/CROSSCHECK.md). */
const QEMU_EXCLUDE = new Set<string>([
  'f6/1', 'f7/1', // TEST's undocumented /1 aliases: QEMU raises #UD
  'int1', // F1: QEMU raises #UD
  'lock-ud', // LOCK on a form that does not allow it: QEMU ignores the prefix instead of #UD
  'nop_Ev', // 0F 19-0F 1E: QEMU decodes some as MPX/CET forms (#UD, other lengths)
  'cr-reserved', // MOV CR1/CR5-7 at CPL 3: QEMU #UD, Bochs #GP(0)
  'cmpxchg8b', // QEMU changes flags besides ZF
  'pf', // #PF of a read-modify-write: QEMU reports a read (error code bit 1 clear), Bochs a write
  'les', 'lfs', 'lgs', // segment state after loading refused/null selectors differs from Bochs
  'iret-outer', // IRET to ring 3: QEMU keeps DPL-0 data segment registers (SDM: made null)
]);

const profile = (name: string, exclude: Set<string>, popfExtra: number, ignoreFlags = 0): PeerProfile => ({ name, exclude, popfExtra, ignoreFlags });

export const PROFILES: Record<PeerName, PeerProfile> = {
  // v86 never sets RF in the EFLAGS image of a fault (SDM Vol. 3A 17.3.1.1 says it is set).
  v86: profile('v86', V86_EXCLUDE, AC | ID, RF),
  bochs: profile('bochs', new Set(), AC | ID),
  // QEMU (TCG) does not set RF in fault frames either; it has no F6/F7 /1 TEST aliases.
  qemu: profile('qemu', QEMU_EXCLUDE, AC | ID, RF),
  trapdiff: profile('trapdiff', new Set(), AC | ID),
};

// ---- v86 ----
interface V86Instance {
  add_listener(ev: string, f: () => void): void;
  destroy(): Promise<void>;
  v86: { cpu: { io: { register_write(port: number, dev: unknown, f: (b: number) => void): void } } };
}

function v86Peer(): Peer {
  const require = createRequire(import.meta.url);
  const wasm = join(dirname(require.resolve('v86')), 'v86.wasm');
  return {
    name: 'v86',
    profile: PROFILES.v86,
    async run(rom) {
      const { V86 } = (await import('v86')) as unknown as { V86: new (o: object) => V86Instance };
      // v86 maps a 128 KiB BIOS below 1 MiB: the ROM is its upper half.
      const bios = new Uint8Array(0x20000);
      bios.set(rom, 0x10000);
      return new Promise((done) => {
        const chunks: string[] = [];
        let tail = '';
        let finished = false;
        const emu = new V86({ wasm_path: wasm, bios: { buffer: bios.buffer }, memory_size: 16 << 20, autostart: true, disable_speaker: true });
        // v86 reports what it does not implement by a WebAssembly trap thrown from its timer
        // callback: take it as the end of this run, not of the process.
        const onPanic = (e: unknown): void => {
          chunks.push(`\nV86-PANIC ${e instanceof Error ? e.message : String(e)}\n`);
          finish();
        };
        process.on('uncaughtException', onPanic);
        const finish = (): void => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          process.off('uncaughtException', onPanic);
          emu.destroy().catch(() => undefined).finally(() => done(chunks.join('')));
        };
        const timer = setTimeout(finish, RUN_SECONDS * 1000);
        emu.add_listener('emulator-ready', () => {
          emu.v86.cpu.io.register_write(0xe9, null, (b) => {
            const c = String.fromCharCode(b);
            chunks.push(c);
            tail = (tail + c).slice(-END_MARK.length);
            if (tail === END_MARK) finish();
          });
        });
      });
    },
  };
}

// ---- processes: Bochs and QEMU ----
function runProcess(cmd: string, args: string[], outFile?: string): Promise<string> {
  return new Promise((done, fail) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.on('error', fail);
    p.on('close', () => done(outFile ? (existsSync(outFile) ? readFileSync(outFile, 'latin1') : '') : Buffer.concat(out).toString('latin1')));
  });
}

function withRomFile<T>(rom: Uint8Array, f: (dir: string, path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'xcheck-'));
  const path = join(dir, 'test.rom');
  writeFileSync(path, rom);
  return f(dir, path).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function bochsPeer(): Peer {
  return {
    name: 'bochs',
    profile: PROFILES.bochs,
    run: (rom) => withRomFile(rom, (_dir, path) => runProcess(BOCHS_RUN_ROM, [path, String(RUN_SECONDS)])),
  };
}

function qemuPeer(): Peer {
  return {
    name: 'qemu',
    profile: PROFILES.qemu,
    run: (rom) => withRomFile(rom, (dir, path) => {
      const out = join(dir, 'e9.txt');
      return runProcess('timeout', [String(RUN_SECONDS), 'qemu-system-i386', '-display', 'none', '-nodefaults', '-accel', 'tcg',
        '-bios', path, '-device', 'isa-debug-exit,iobase=0xf4,iosize=1', '-debugcon', `file:${out}`], out);
    }),
  };
}

// ---- trapdiff ----
/** Instructions one ROM may take on trapdiff (a ROM of ~300 tests needs a few million). */
const TRAPDIFF_BUDGET = 200_000_000;

function trapdiffPeer(): Peer {
  return {
    name: 'trapdiff',
    profile: PROFILES.trapdiff,
    async run(rom) {
      // Loaded on use: the peers-only cross-checks must not depend on the CPU building.
      const { createMachine } = await import('../machine/machine.js');
      const m = createMachine({ memMiB: 16, vmx: true }); // the Core Duo with VMX, as Bochs's model
      m.load(rom, 'bios');
      const r = m.run({ maxInsns: TRAPDIFF_BUDGET });
      const err = r.stop === 'error' ? `\nTRAPDIFF-ERROR ${r.error}\n` : '';
      return r.debugOutput + err;
    },
  };
}

export function peerAvailable(name: PeerName): boolean {
  if (name === 'bochs') return existsSync(BOCHS_RUN_ROM);
  if (name === 'qemu') return spawnSync('qemu-system-i386', ['--version']).status === 0;
  return true;
}

export function makePeer(name: PeerName): Peer {
  switch (name) {
    case 'v86': return v86Peer();
    case 'bochs': return bochsPeer();
    case 'qemu': return qemuPeer();
    case 'trapdiff': return trapdiffPeer();
  }
}
