// ROMs that a test runs on trapdiff and on Bochs, comparing what each prints to port 0xE9: the
// NASM building blocks they share (real-mode start, flat protected-mode segments, the IDT and
// TSS set-up, returns to ring 3 and V86, exception stubs and their reports, the hex printer, the
// "Shutdown" string, the GDT and the reset vector) and `compareOnRom`, which declares the two tests. Every ROM is 64 KiB at
// 0xF0000 (16-bit start), copies its GDT to 0x1000 and keeps its IDT at 0x2000.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makePeer, peerAvailable } from '../../src/crosscheck/peers.js';
import { runProcessPeer } from '../../src/peers/launch.js';
import { asm } from './harness.js';
import { comparable, ROM_SCENARIO_DIR, type BochsRun, type RomScenario } from './rom-scenario.js';

/**
 * The reset path: copies `gdt`..`gdt_end` to 0x1000 (then runs `copyMore`, 16-bit code that can
 * copy more), loads GDTR (and IDTR from `idtr` unless `idt` is false), sets CR0.PE and jumps to
 * `pm32` (which the ROM defines) in 32-bit code.
 */
export function romStart(o: { idt?: boolean; copyMore?: string } = {}): string {
  return `start:
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov si, gdt - 0xF0000
  mov di, 0x1000
  mov cx, gdt_end - gdt
  cs rep movsb
${o.copyMore ?? ''}  o32 lgdt [cs:gdtr - 0xF0000]
${o.idt === false ? '' : '  o32 lidt [cs:idtr - 0xF0000]\n'}  mov eax, cr0
  or al, 1
  mov cr0, eax
  jmp dword 0x08:pm32
bits 32
`;
}

/** At `pm32`: the flat ring-0 data selector 0x10 in DS, ES, SS (and FS, GS unless told), ESP 0x9000. */
export function romFlatSegments(fsGs = true): string {
  return `pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
${fsGs ? '  mov fs, ax\n  mov gs, ax\n' : ''}  mov esp, 0x9000
`;
}

/** Zeroes IDT entries 0..vectors-1. */
export const romClearIdt = (vectors: string): string => `  mov edi, 0x2000
  mov ecx, ${vectors} * 2
  xor eax, eax
  rep stosd
`;

/** IDT entry `vector` (in the IDT at 2000H): a gate to `target` through selector `sel`, type and attribute word `attr`. */
export const romGate = (vector: string, target: string, sel: string, attr: string): string => `  mov eax, ${target}
  mov [0x2000 + ${vector}*8], ax
  mov word [0x2002 + ${vector}*8], ${sel}
  mov word [0x2004 + ${vector}*8], ${attr}
  shr eax, 16
  mov [0x2006 + ${vector}*8], ax
`;

/**
 * Interrupt gates (DPL 0) for #TS, #NP, #SS and #GP to selector `sel`, at the handlers `exc10`..
 * `exc13`, which the ROM lays out at equal distances.
 */
export const romFaultGates = (sel: string): string => `  mov ebx, 10
  mov edx, exc10
.idt:
  mov eax, edx
  mov [0x2000 + ebx*8], ax
  mov word [0x2002 + ebx*8], ${sel}
  mov word [0x2004 + ebx*8], 0x8e00
  shr eax, 16
  mov [0x2006 + ebx*8], ax
  add edx, exc11 - exc10
  inc ebx
  cmp ebx, 14
  jne .idt
`;

/** The TSS at 0x4000 (GDT entry 0x28): ESP0 0x8000, SS0 0x10, loaded into TR; the I/O map base
 *  beyond the TSS limit (no bitmap) when `noIoMap`. */
export const romLoadTss = (noIoMap: boolean): string => `  mov dword [0x4004], 0x8000
  mov dword [0x4008], 0x10
${noIoMap ? '  mov word [0x4066], 0x68\n' : ''}  mov ax, 0x28
  ltr ax
`;

/** IRETD to ring 3 at `target` (flat selectors 0x1b/0x23, ESP 0x7000) with `eflags`. */
export const romIretToRing3 = (eflags: string, target: string): string => `  push dword 0x23
  push dword 0x7000
  push dword ${eflags}
  push dword 0x1b
  push dword ${target}
  iretd
`;

/** IRETD to V86 at F000:`target` (a label in the ROM), SP 0x7000, data segments 0, with `eflags`. */
export const romIretToV86 = (eflags: string, target: string): string => `  push dword 0
  push dword 0
  push dword 0
  push dword 0
  push dword 0
  push dword 0x7000
  push dword ${eflags}
  push dword 0xf000
  push dword ${target} - 0xF0000
  iretd
`;

/** Writes "Shutdown" (at `msg`, read through DS unless `seg` names another) to port 0x8900: the
 *  peers' signal that the ROM has finished. */
export const romShutdown = (seg = ''): string => `  mov dx, 0x8900
  mov esi, msg
  mov ecx, 8
.s: mov al, [${seg}esi]
  out dx, al
  inc esi
  loop .s
`;

/** `hex`: prints EAX to port 0xE9 as 8 hex digits and a newline, keeping every register. */
export const ROM_HEX = `hex:
  pushad
  mov ecx, 8
  mov ebx, eax
  mov dx, 0xe9
.l: rol ebx, 4
  mov al, bl
  and al, 15
  add al, '0'
  cmp al, '9'
  jbe .p
  add al, 7
.p: out dx, al
  loop .l
  mov al, 10
  out dx, al
  popad
  ret
`;

/** Prints each of `operands` (sources of a 32-bit MOV to EAX) with `hex`. */
export const romPrint = (operands: string[]): string => operands.map((x) => `  mov eax, ${x}\n  call hex\n`).join('');

/** Exception stubs `excN`: push N (after a zero error code for the `noErrorCode` vectors), jump
 *  to the ROM's `excommon`. */
export const romFaultStubs = (vectors: number[], noErrorCode: number[] = []): string => vectors.map((v) =>
  noErrorCode.includes(v) ? `exc${v}: push dword 0\n  push dword ${v}\n  jmp excommon\n` : `exc${v}: push dword ${v}\n  jmp excommon\n`).join('');

/** An exception handler's report: flat ring-0 DS and ES, print `operands` (stack slots), then
 *  back to the ring-0 stack at 0x9000 and on to the next case, whose address is at 0x3000. */
export const romReportAndResume = (operands: string[]): string => `  mov ax, 0x10
  mov ds, ax
  mov es, ax
${romPrint(operands)}  mov ax, 0x10
  mov ss, ax
  mov esp, 0x9000
  jmp [0x3000]
`;

/** GDT entries 0x08 (code) and 0x10 (data): flat, ring 0, 32-bit. */
export const GDT_FLAT_R0 = `  dd 0x0000ffff, 0x00cf9b00      ; 08 code r0
  dd 0x0000ffff, 0x00cf9300      ; 10 data r0
`;
/** GDT entries 0x18 (code) and 0x20 (data): flat, ring 3, 32-bit; after GDT_FLAT_R0. */
export const GDT_FLAT_R3 = `  dd 0x0000ffff, 0x00cffb00      ; 18 code r3
  dd 0x0000ffff, 0x00cff300      ; 20 data r3
`;
/** GDT entry 0x28: the available 32-bit TSS at 0x4000 that romLoadTss loads; after GDT_FLAT_R3. */
export const GDT_TSS = `  dd 0x40000067, 0x00008900      ; 28 TSS
`;

/**
 * The end of the ROM: `msg` ("Shutdown"), `gdt` (the null descriptor, then `entries`), `gdtr`,
 * `idtr` for `idtVectors` gates at 0x2000 (none if omitted), `extra` data, and the reset vector
 * jumping to `start`.
 */
export function romEnd(entries: string, o: { idtVectors?: string; extra?: string } = {}): string {
  return `msg: db "Shutdown"
align 8
gdt:
  dq 0
${entries}gdt_end:
gdtr: dw gdt_end - gdt - 1
  dd 0x1000
${o.idtVectors === undefined ? '' : `idtr: dw ${o.idtVectors} * 8 - 1
  dd 0x2000
`}${o.extra ?? ''}  times 0xfff0 - ($ - $$) db 0xff
bits 16
  jmp 0xF000:(start - 0xF0000)
  times 0x10000 - ($ - $$) db 0xff
`;
}

/** The port 0xE9 transcript of `rom` on trapdiff, or on Bochs as `bochs` says (model, seconds). */
export const romOutput = (peer: 'trapdiff' | 'bochs', rom: Uint8Array, bochs: Omit<BochsRun, 'title' | 'expected'> = {}): Promise<string> =>
  peer === 'trapdiff' || (bochs.model === undefined && bochs.seconds === undefined) ? makePeer(peer).run(rom)
    : runProcessPeer('bochs', rom, { seconds: bochs.seconds ?? 20, model: bochs.model });

let scenarios = 0;
/** Leaves the scenario where scripts/vmx-bochs.ts collects them, when it is the one listing the tests. */
function recordScenario(scenario: RomScenario): void {
  const dir = process.env[ROM_SCENARIO_DIR];
  if (dir) writeFileSync(join(dir, `${process.pid}-${scenarios++}.json`), JSON.stringify(scenario));
}

/**
 * Declares `describe(title)` with a test that runs `source` (assembled at 0xF0000) on trapdiff
 * and one that runs it on Bochs, when Bochs is there. Each compares the transcript with
 * `expected`: as lines, each ending in a newline (an array; what follows the last newline is not
 * compared), or as the whole text (a string). `bochs` gives Bochs's own title, expectation, CPU
 * model and run time where they differ on purpose. The scenario is also left where
 * scripts/vmx-bochs.ts collects them when it lists the tests (rom-scenario.ts).
 */
export function compareOnRom(title: string, source: string, expected: string[] | string,
  bochs: BochsRun = { title: 'Bochs agrees', expected }): void {
  const check = (out: string, want: string[] | string): void => {
    expect(comparable(out, want)).toEqual(want);
  };
  describe(title, () => {
    const rom = asm(source, 16, 0xf0000);
    recordScenario({ title, rom: Buffer.from(rom).toString('base64'), expected, bochs });
    it('trapdiff', async () => {
      check(await romOutput('trapdiff', rom), expected);
    });
    it.skipIf(!peerAvailable('bochs'))(bochs.title, async () => {
      check(await romOutput('bochs', rom, bochs), bochs.expected);
    }, 30_000);
  });
}
