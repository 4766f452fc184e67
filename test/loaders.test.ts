// The loaders: where each puts the image, the CPU state it enters with, the Multiboot
// information structure, loader sniffing, and every kind of bad image being one line on stderr
// with exit status 2 from the CLI.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cpu } from '../src/cpu/cpu.js';
import { CR0_PE, CS, DS, EAX, EBX, ESP, SS } from '../src/cpu/constants.js';
import { PhysicalMemory } from '../src/machine/memory.js';
import { IoBus } from '../src/machine/iobus.js';
import { UserError } from '../src/machine/errors.js';
import { loadImage, sniffLoader, type LoaderKind } from '../src/machine/loaders/index.js';
import { BOOT_GDT, BOOT_INFO, BOOT_STACK_TOP } from '../src/machine/loaders/boot.js';
import { cliInProcess } from './helpers/cli.js';

const MiB = 1024 * 1024;
const HELLO = fileURLToPath(new URL('../corpus/hello', import.meta.url));

function target(memMiB = 16) {
  const mem = new PhysicalMemory(memMiB * MiB);
  return { mem, cpu: new Cpu(mem, new IoBus()) };
}

const u32 = (mem: PhysicalMemory, a: number): number => mem.view.getUint32(a, true);

/** An a.out-kludge Multiboot image loaded at `base` whose code is `code`, with optional field overrides. */
function kludgeImage(opts: { base?: number; flags?: number; entry?: number; bss?: number; loadEnd?: number; headerAddr?: number; pad?: number } = {}): Uint8Array {
  const base = opts.base ?? 0x100000, pad = opts.pad ?? 0;
  const img = new Uint8Array(pad + 64).fill(0x90);
  const v = new DataView(img.buffer);
  const flags = opts.flags ?? 0x10002;
  const fields = [0x1badb002, flags, (-(0x1badb002 + flags)) >>> 0, opts.headerAddr ?? base + pad, base,
    opts.loadEnd ?? base + img.length, opts.bss ?? base + img.length + 0x1000, opts.entry ?? base + pad + 32];
  fields.forEach((f, k) => v.setUint32(pad + 4 * k, f, true));
  return img;
}

describe('bios loader', () => {
  it('maps a 64 KiB ROM at 0xF0000 and at the top of 4 GiB and leaves the CPU at its reset vector', () => {
    const t = target();
    const rom = new Uint8Array(64 * 1024).map((_, k) => (k * 7) & 0xff);
    loadImage(t, rom, 'bios');
    expect(t.mem.readSlow(0xf0000, 4)).toBe(t.mem.readSlow(0xffff0000, 4));
    expect(t.mem.readSlow(0xffff0, 1)).toBe((0xfff0 * 7) & 0xff);
    expect(t.mem.readSlow(0xfffffff0, 1)).toBe((0xfff0 * 7) & 0xff);
    expect(t.cpu.seg[CS]).toBe(0xf000);
    expect(t.cpu.segBase[CS] >>> 0).toBe(0xffff0000);
    expect(t.cpu.eip).toBe(0xfff0);
  });

  it('takes 128 KiB and any 2 KiB multiple below it (padding the partial page with 0xFF)', () => {
    const big = target();
    loadImage(big, new Uint8Array(128 * 1024).fill(1), 'bios');
    expect(big.mem.readSlow(0xe0000, 1)).toBe(1);
    const small = target();
    loadImage(small, new Uint8Array(2048).fill(2), 'bios');
    expect(small.mem.readSlow(0xff800, 1)).toBe(2);
    expect(small.mem.readSlow(0xff7ff, 1)).toBe(0xff);
    expect(small.mem.readSlow(0xfffff800, 4)).toBe(0x02020202);
  });

  it.each([
    ['empty', 0, /empty/],
    ['oversized', 130 * 1024, /at most 128 KiB/],
    ['not a 2 KiB multiple', 3000, /multiple of 2 KiB/],
  ])('rejects a ROM that is %s', (_what, size, message) => {
    expect(() => loadImage(target(), new Uint8Array(size), 'bios')).toThrow(message);
  });
});

describe('flat loader', () => {
  it('copies the image to --at and enters it in flat 32-bit protected mode', () => {
    for (const at of [undefined, 0x200000, 0x1000]) {
      const t = target();
      const img = Uint8Array.from([0xf4, 1, 2, 3]);
      loadImage(t, img, 'flat', at === undefined ? {} : { at });
      const where = at ?? 0x100000;
      expect(Array.from(t.mem.readBytes(where, 4))).toEqual([0xf4, 1, 2, 3]);
      const c = t.cpu;
      expect(c.eip).toBe(where);
      expect(c.cr0 & CR0_PE).toBe(CR0_PE);
      expect(c.regs[ESP]).toBe(BOOT_STACK_TOP);
      expect([c.seg[CS], c.seg[SS], c.seg[DS]]).toEqual([0x08, 0x10, 0x10]);
      expect([c.segBase[CS], c.segLimit[CS], c.segLimit[SS]]).toEqual([0, 0xffffffff, 0xffffffff]);
      expect(c.segAr[CS]).toBe(0xc09b);
      expect(c.segAr[DS]).toBe(0xc093);
      expect(c.getEflags()).toBe(2);
      // The GDT the selectors refer to is in guest memory.
      expect([c.gdtrBase, c.gdtrLimit]).toEqual([BOOT_GDT, 23]);
      expect([u32(t.mem, BOOT_GDT + 8), u32(t.mem, BOOT_GDT + 12)]).toEqual([0x0000ffff, 0x00cf9b00]);
      expect([u32(t.mem, BOOT_GDT + 16), u32(t.mem, BOOT_GDT + 20)]).toEqual([0x0000ffff, 0x00cf9300]);
    }
  });

  it.each([
    ['empty', 0, undefined, /empty/],
    ['past the end of RAM', 16, 16 * MiB - 8, /does not fit in 16 MiB/],
    ['over the boot area', 16, 0x7fff8, /overlaps the boot area/],
    ['past 4 GiB', 32, 0xfffffff0, /outside the 4 GiB/],
  ])('rejects an image %s', (_what, size, at, message) => {
    expect(() => loadImage(target(), new Uint8Array(size).fill(1), 'flat', at === undefined ? {} : { at })).toThrow(message);
  });

  it('refuses --at for the other loaders', () => {
    expect(() => loadImage(target(), new Uint8Array(65536), 'bios', { at: 0x1000 })).toThrow(/flat loader only/);
  });
});

describe('multiboot loader', () => {
  it('loads by the a.out kludge, zeroes the bss and passes the information structure', () => {
    const t = target(32);
    t.mem.ram.fill(0xaa, 0x100000, 0x102000);
    const img = kludgeImage();
    loadImage(t, img, 'multiboot');
    const c = t.cpu;
    expect(Array.from(t.mem.readBytes(0x100000, img.length))).toEqual(Array.from(img));
    expect(t.mem.ram.subarray(0x100000 + img.length, 0x100000 + img.length + 0x1000).every((b) => b === 0)).toBe(true);
    expect(t.mem.ram[0x100000 + img.length + 0x1000]).toBe(0xaa);
    expect([c.eip, c.regs[EAX] >>> 0, c.regs[EBX]]).toEqual([0x100020, 0x2badb002, BOOT_INFO]);
    expect(c.cr0 & CR0_PE).toBe(CR0_PE);
    const m = t.mem;
    expect(u32(m, BOOT_INFO) & 0x241).toBe(0x241); // mem, mmap, boot loader name
    expect(u32(m, BOOT_INFO + 4)).toBe(640);
    expect(u32(m, BOOT_INFO + 8)).toBe(31 * 1024);
    const mmapLen = u32(m, BOOT_INFO + 44), mmap = u32(m, BOOT_INFO + 48);
    const entries: number[][] = [];
    for (let e = mmap; e < mmap + mmapLen; e += u32(m, e) + 4) {
      entries.push([u32(m, e + 4), u32(m, e + 8), u32(m, e + 12), u32(m, e + 16), u32(m, e + 20)]);
    }
    expect(entries).toEqual([[0, 0, 0xa0000, 0, 1], [0x100000, 0, 31 * MiB, 0, 1]]);
    const name = u32(m, BOOT_INFO + 64);
    expect(Buffer.from(m.readBytes(name, 9)).toString('latin1')).toBe('trapdiff\0');
  });

  it('finds the header anywhere 4-aligned in the first 8 KiB and loads from the right file offset', () => {
    const t = target();
    const img = kludgeImage({ pad: 8000 });
    loadImage(t, img, 'multiboot');
    expect(t.mem.ram[0x100000 + 8000]).toBe(0x02);
    expect(t.cpu.eip).toBe(0x100000 + 8032);
    expect(() => loadImage(target(), kludgeImage({ pad: 8192 }), 'multiboot')).toThrow(/no multiboot header/);
  });

  it('loads an ELF kernel by its program headers', () => {
    const t = target();
    const elf = readFileSync(join(HELLO, 'hello-elf.elf'));
    loadImage(t, elf, 'multiboot');
    expect(Array.from(t.mem.readBytes(0x100000, elf.length))).toEqual(Array.from(elf));
    expect(t.cpu.eip).toBe(new DataView(elf.buffer, elf.byteOffset).getUint32(24, true));
  });

  const elfWith = (patch: (v: DataView) => void): Uint8Array => {
    const elf = Uint8Array.from(readFileSync(join(HELLO, 'hello-elf.elf')));
    patch(new DataView(elf.buffer));
    return elf;
  };

  it.each<[string, () => Uint8Array, RegExp]>([
    ['an empty file', () => new Uint8Array(0), /empty/],
    ['no header', () => new Uint8Array(4096), /no multiboot header/],
    ['a bad checksum', () => { const i = kludgeImage(); i[8] ^= 1; return i; }, /no multiboot header/],
    ['a video mode request', () => kludgeImage({ flags: 0x10006 }), /video mode/],
    ['an unknown requirement bit', () => kludgeImage({ flags: 0x10012 }), /unsupported requirement flags 0x12/],
    ['an entry point outside the image', () => kludgeImage({ entry: 0x300000 }), /entry point 0x300000 is outside/],
    ['load_end past the file', () => kludgeImage({ loadEnd: 0x100000 + 4096 }), /load_end_addr .* outside the file/],
    ['header_addr below load_addr', () => kludgeImage({ headerAddr: 0x0ffff0 }), /before the file start/],
    ['bss below the image', () => kludgeImage({ bss: 0x100010 }), /bss_end_addr/],
    ['a kernel beyond RAM', () => kludgeImage({ base: 0x1000000 - 32 }), /does not fit in 16 MiB/],
    ['a kernel over the boot area', () => kludgeImage({ base: 0x7ff00 }), /overlaps the boot area/],
    ['neither ELF nor address fields', () => kludgeImage({ flags: 0x2 }), /neither ELF nor/],
    ['a 64-bit ELF', () => elfWith((v) => v.setUint8(4, 2)), /not 32-bit/],
    ['an ELF for another machine', () => elfWith((v) => v.setUint16(18, 62, true)), /not an i386 executable/],
    ['truncated ELF program headers', () => elfWith((v) => v.setUint32(28, 0x10000, true)), /program headers/],
    ['an ELF segment past the file', () => elfWith((v) => v.setUint32(52 + 16, 0x10000, true)), /past the end of the file/],
  ])('rejects %s', (_what, make, message) => {
    let err: unknown;
    try {
      loadImage(target(), make(), 'multiboot');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('sniffLoader', () => {
  it.each<[string, Uint8Array, string, LoaderKind]>([
    ['ELF', readFileSync(join(HELLO, 'hello-elf.elf')), 'k', 'multiboot'],
    ['a Multiboot header', kludgeImage(), 'k.bin', 'multiboot'],
    ['a .rom name', new Uint8Array(4096), 'x.ROM', 'bios'],
    ['a 64 KiB file', new Uint8Array(65536), 'x.bin', 'bios'],
    ['a 128 KiB file', new Uint8Array(131072), 'x', 'bios'],
    ['anything else', new Uint8Array(100), 'x.bin', 'flat'],
  ])('chooses by %s', (_what, image, name, kind) => {
    expect(sniffLoader(image, name)).toBe(kind);
  });
});

describe('bad images through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trapdiff-loaders-'));
  const file = (name: string, bytes: Uint8Array): string => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  it.each<[string, () => string[], RegExp]>([
    ['a missing file', () => [join(dir, 'nope.bin')], /cannot read .*ENOENT/],
    ['an empty image', () => [file('empty.bin', new Uint8Array(0))], /flat image is empty/],
    ['an oversized ROM', () => [file('big.rom', new Uint8Array(192 * 1024)), '--load', 'bios'], /at most 128 KiB/],
    ['a bad multiboot header', () => [file('bad.bin', kludgeImage({ flags: 0x10006 }))], /video mode/],
    ['a bad --at', () => [file('a.bin', new Uint8Array(8)), '--at', '12x'], /--at must be an integer/],
    ['an --at past 4 GiB', () => [file('a.bin', new Uint8Array(8)), '--at', '0x100000000'], /--at must be an integer from 0 to 4294967295/],
    ['an image that does not fit memory', () => [file('k.bin', kludgeImage({ base: 0x2000000 })), '--mem', '16'], /does not fit in 16 MiB/],
    ['a bad --mem', () => [file('a.bin', new Uint8Array(8)), '--mem', '0'], /memory size 0 MiB/],
    ['a bad --load', () => [file('a.bin', new Uint8Array(8)), '--load', 'pxe'], /--load must be one of bios, multiboot, flat/],
  ])('%s: exit 2 with one line on stderr', (_what, args, message) => {
    const r = cliInProcess('run', ...args());
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^trapdiff: [^\n]*\n$/);
    expect(r.stderr).toMatch(message);
  });
});
