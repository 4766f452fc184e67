// The cross-check ROM: a 64 KiB BIOS image that runs many random sequences back to back in one
// mode and reports each on port 0xE9.
//
// Boot (real mode, F000:FFF0) -> mode setup (real mode: an IVT of 256 logging stubs; protected
// mode: GDT/IDT/TSS copied to RAM, CR0.PE, optional identity paging) -> test 0 -> test 1 ... ->
// "END", "Shutdown" to port 0x8900, a write to port 0xF4, CLI; HLT.
//
// A test: reset the segment registers and the stack, store the test index and the address of
// the next test in the context block, fill the scratch area with a seeded pattern (guest code),
// load EFLAGS and the eight registers, enter the sequence (ring 3 through IRETD), run it, end
// with INT 30h. Every exception and the INT 30h go through one handler that records the vector,
// the error code (or -1), the pushed EIP, the registers, EFLAGS and selectors as they were at
// the interruption, zeroes the frame it left on the scratch stack (it holds EFLAGS, whose
// undefined flags would otherwise reach the digest), computes a digest of the scratch area and
// prints one line of 20 hex dwords (CTX_FIELDS order), then jumps to the next test.

import { VM } from '../cpu/constants.js';
import { Emitter, ROM_LINEAR, ROM_SIZE, CC_B, CC_NB, CC_Z, CC_NZ } from './emit.js';
import { layoutSequence, type SeqLayout, type TestCase } from './generator.js';
import {
  BOOT_MAGIC, BOOT_MAGIC_AT, CTX, PF_PAGES, CTX_FIELDS, CTX_NEXT, END_VECTOR, GDT_ENTRIES, IDT_OFF, LDT_OFF, PD_4K, PD_4M,
  PT_LOW, RING0_STACK, RM_SEG, RM_STACK, SCRATCH_LINEAR, SCRATCH_SIZE, SEL_KCODE, SEL_KFLAT, SEL_KSCR, SEL_TSS,
  SEL_TSS2, SEL_UCODE, SEL_USCR, STACK_INIT, SYS, SYS_LEN, TASK_VECTOR, TSS2_OFF, TSS_OFF, ctxOff, modeInfo, type Mode,
} from './modes.js';

/** Code starts here; the system-table blob (protected mode) sits below it. */
const CODE_START = 0x800;
const GDTR_AT = 0x700, IDTR_AT = 0x708;
/** Tests must end before this (the reset vector lives at 0xFFF0). */
const CODE_LIMIT = 0xffe0;
const IDT_VECTORS = END_VECTOR + 1;
/** TSS2's stack pointer (scratch segment). */
const TASK_STACK = 0xb00;
/** Vectors whose exception pushes an error code (SDM Vol. 3A Table 6-1). */
const ERROR_CODE_VECTORS = (1 << 8) | (0x1f << 10) | (1 << 17);

export interface PlacedTest {
  tc: TestCase;
  /** Items of tc that were laid out (a prefix when minimizing). */
  count: number;
  layout: SeqLayout;
}

export interface BuiltRom {
  rom: Uint8Array;
  mode: Mode;
  placed: PlacedTest[];
}

const REGS_SAVED = [0, 1, 2, 3, 5, 6, 7];
const reg32Off = (r: number): number => ctxOff('eax') + 4 * r;

function descriptor(base: number, limit: number, access: number, flags: number): [number, number] {
  const lo = (limit & 0xffff) | ((base & 0xffff) << 16);
  const hi = ((base >>> 16) & 0xff) | (access << 8) | (limit & 0xf0000) | (flags << 20) | (base & 0xff000000);
  return [lo >>> 0, hi >>> 0];
}

function gate(offset: number, sel: number, typeDpl: number): [number, number] {
  return [((offset & 0xffff) | (sel << 16)) >>> 0, ((offset & 0xffff0000) | (typeDpl << 8)) >>> 0];
}

/** GDT, IDT and TSS as copied to SYS; stub addresses are known by the time this is written. */
function systemBlob(stubsLinear: number, gateTarget: number, taskTarget: number): Uint8Array {
  const blob = new Uint8Array(SYS_LEN);
  const dv = new DataView(blob.buffer);
  const put = (at: number, [lo, hi]: [number, number]): void => { dv.setUint32(at, lo, true); dv.setUint32(at + 4, hi, true); };
  // Code/data descriptors are marked accessed already: whether and when a peer writes the
  // accessed bit back (v86 never does) would otherwise show through LAR.
  const gdt: Array<[number, number]> = [
    [0, 0],
    descriptor(0, 0xfffff, 0x9b, 0xc), // 0x08 ring-0 code, flat
    descriptor(0, 0xfffff, 0x93, 0xc), // 0x10 ring-0 data, flat
    descriptor(SCRATCH_LINEAR, 0xffff, 0x93, 0x4), // 0x18 ring-0 scratch data (B = 1)
    descriptor(0, 0xfffff, 0xfb, 0xc), // 0x20 ring-3 code, flat
    descriptor(SCRATCH_LINEAR, 0xffff, 0xf3, 0x4), // 0x28 ring-3 scratch data (B = 1)
    descriptor(SYS + TSS_OFF, 0x67, 0x89, 0), // 0x30 32-bit TSS
    descriptor(0, 0xffff, 0x9b, 0), // 0x38 16-bit code
    descriptor(SCRATCH_LINEAR, 0xffff, 0xb3, 0x4), // 0x40 DPL-1 scratch data
    descriptor(SCRATCH_LINEAR, 0xffff, 0x72, 0x4), // 0x48 not present, DPL 3
    gate(gateTarget, SEL_KCODE, 0xec), // 0x50 call gate, DPL 3
    descriptor(SCRATCH_LINEAR, 0x0fff, 0xf7, 0), // 0x58 expand-down data, DPL 3
    descriptor(SYS + LDT_OFF, 0xf, 0x82, 0), // 0x60 LDT
    descriptor(0, 0xfffff, 0x9f, 0xc), // 0x68 conforming readable code
    descriptor(SYS + TSS2_OFF, 0x67, 0xe9, 0), // 0x70 second 32-bit TSS, DPL 3 (task switches)
    gate(0, SEL_TSS2, 0xe5), // 0x78 task gate to it, DPL 3
  ];
  if (gdt.length !== GDT_ENTRIES) throw new Error('GDT size mismatch');
  gdt.forEach((d, i) => put(8 * i, d));
  for (let v = 0; v < IDT_VECTORS; v++) {
    // INT3, INTO and the end vector may be raised from ring 3 (gate DPL 3).
    const dpl3 = v === 3 || v === 4 || v === END_VECTOR;
    put(IDT_OFF + 8 * v, v === TASK_VECTOR ? gate(0, SEL_TSS2, 0xe5) : gate(stubsLinear + 5 * v, SEL_KCODE, dpl3 ? 0xee : 0x8e));
  }
  // TSS2: a ring-0 task that starts at the task target with known registers, stack in the
  // scratch area, the 4 KiB page tables (its CR3 is loaded even with paging off).
  const t2 = (off: number, v: number): void => dv.setUint32(TSS2_OFF + off, v, true);
  t2(4, RING0_STACK); t2(8, SEL_KFLAT); t2(0x1c, PD_4K); t2(0x20, taskTarget); t2(0x24, 2);
  for (let r = 0; r < 8; r++) t2(0x28 + 4 * r, r === 4 ? TASK_STACK : (0x7a5c0000 + r * 0x1111) >>> 0);
  [SEL_KSCR, SEL_KCODE, SEL_KSCR, SEL_KSCR, SEL_KSCR, SEL_KSCR].forEach((sel, s) => t2(0x48 + 4 * s, sel));
  dv.setUint16(TSS2_OFF + 0x66, 0x68, true);
  dv.setUint32(TSS_OFF + 4, RING0_STACK, true);
  dv.setUint32(TSS_OFF + 8, SEL_KFLAT, true);
  dv.setUint16(TSS_OFF + 0x66, 0x68, true); // I/O map base at the limit: no bitmap, IOPL rules
  return blob;
}

/** Digest of the scratch area, then the context block printed as one line, then the next test. */
function emitDump(e: Emitter): void {
  e.label('dump');
  e.o32(); e.b(0x31, 0xc0); // xor eax,eax
  e.o32(); e.b(0x31, 0xf6); // xor esi,esi
  e.label('dump_digest');
  e.o32(); e.b(0xc1, 0xc0, 5); // rol eax,5
  e.opEsi(0x33, 0); // xor eax,[esi]
  e.o32(); e.b(0x83, 0xc6, 4); // add esi,4
  e.o32(); e.b(0x81, 0xfe); e.d32(SCRATCH_SIZE); // cmp esi,SCRATCH_SIZE
  e.jcc8(CC_B, 'dump_digest');
  e.store(ctxOff('digest'), 0);
  e.movImm(6, CTX);
  e.label('dump_print');
  e.opEsi(0x8b, 7); // mov edi,[esi]
  e.call('hex8');
  e.b(0xb0, 0x20); e.outE9();
  e.o32(); e.b(0x83, 0xc6, 4);
  e.o32(); e.b(0x81, 0xfe); e.d32(CTX + 4 * CTX_FIELDS.length);
  e.jcc8(CC_B, 'dump_print');
  e.b(0xb0, 0x0a); e.outE9();
  // jmp [CTX_NEXT]
  e.b(0xff); if (e.bits === 16) { e.b(0x26); e.w16(CTX_NEXT); } else { e.b(0x25); e.d32(CTX_NEXT); }

  // hex8: prints EDI as 8 hex digits (clobbers EAX, CL).
  e.label('hex8');
  e.b(0xb1, 8); // mov cl,8
  e.label('hex8_loop');
  e.o32(); e.b(0xc1, 0xc7, 4); // rol edi,4
  e.o32(); e.b(0x89, 0xf8); // mov eax,edi
  e.b(0x24, 0x0f, 0x3c, 0x0a); // and al,15; cmp al,10
  e.jcc8(CC_B, 'hex8_digit');
  e.b(0x04, 7);
  e.label('hex8_digit');
  e.b(0x04, 0x30); e.outE9();
  e.b(0xfe, 0xc9); // dec cl
  e.jcc8(CC_NZ, 'hex8_loop');
  e.b(0xc3);

  e.label('finish');
  for (const c of 'END\n') { e.b(0xb0, c.charCodeAt(0)); e.outE9(); }
  e.outString(0x8900, 'Shutdown');
  e.b(0xb0, 0, 0xe6, 0xf4); // isa-debug-exit
  e.b(0xfa, 0xf4, 0xeb, 0xfc); // cli; hlt; jmp back to the cli
}

/** Real-mode logging stubs (CALL common, 3 bytes each, for all 256 vectors) and the handler. */
function emitRealHandler(e: Emitter): void {
  e.label('stubs');
  for (let v = 0; v < 256; v++) e.call('common');
  e.label('common');
  for (const r of REGS_SAVED) e.store(reg32Off(r), r);
  storeCr2(e);
  e.b(0x58); // pop ax: return address of the stub
  e.b(0x2d); e.ref('abs16', 'stubs', 3); // sub ax, stubs+3
  e.b(0x31, 0xd2, 0xbb, 3, 0, 0xf7, 0xf3); // xor dx,dx; mov bx,3; div bx
  const movzxPopStore = (off: number): void => { e.b(0x58, 0x66, 0x0f, 0xb7, 0xc0); e.store(off, 0); };
  e.b(0x66, 0x0f, 0xb7, 0xc0); e.store(ctxOff('vec'), 0);
  e.storeImm(ctxOff('err'), 0xffffffff);
  movzxPopStore(ctxOff('eip'));
  movzxPopStore(ctxOff('cs'));
  // FLAGS from the frame, the upper half of EFLAGS as it is now (INT does not change it but AC).
  e.b(0x58, 0x66, 0x0f, 0xb7, 0xc0);
  e.b(0x66, 0x9c, 0x66, 0x5a); // pushfd; pop edx
  e.b(0x66, 0x81, 0xe2, 0, 0, 0xff, 0xff); // and edx,0xffff0000
  e.b(0x66, 0x09, 0xd0); // or eax,edx
  e.store(ctxOff('eflags'), 0);
  e.store(ctxOff('esp'), 4);
  e.b(0x66, 0x6a, 0, 0x66, 0x6a, 0, 0x83, 0xc4, 8); // zero the 8 frame bytes
  for (const [s, f] of [[0, 'es'], [2, 'ss'], [3, 'ds'], [4, 'fs'], [5, 'gs']] as const) e.storeSreg(ctxOff(f), s);
  e.movImm(4, RM_STACK);
  e.jmp('dump');
}

/** Protected-mode stubs (CALL common, 5 bytes each, for IDT_VECTORS vectors) and the handler. */
function emitPmHandler(e: Emitter): void {
  e.label('stubs');
  for (let v = 0; v < IDT_VECTORS; v++) e.call('common');
  e.label('common');
  // DS may be anything the sequence left (a return to ring 3 nulls a DPL-0 DS): keep it for the
  // report and use the ring-0 scratch selector (same base) for the context block.
  e.b(0x1e, 0x50); // push ds; push eax
  e.movImm16(0, SEL_KSCR); e.movSreg(3, 0);
  e.b(0x58); // pop eax
  for (const r of REGS_SAVED) e.store(reg32Off(r), r);
  e.b(0x58, 0x0f, 0xb7, 0xc0); e.store(ctxOff('ds'), 0); // the interrupted DS
  storeCr2(e);
  e.b(0x58); // pop eax
  e.b(0x2d); e.ref('lin32', 'stubs', 5); // sub eax, stubs+5
  e.b(0x31, 0xd2, 0xb9); e.d32(5); e.b(0xf7, 0xf1); // xor edx,edx; mov ecx,5; div ecx
  e.store(ctxOff('vec'), 0);
  e.b(0x83, 0xf8, 0x20); e.jcc8(CC_NB, 'noerr'); // vectors >= 32 have no error code
  e.b(0xba); e.d32(ERROR_CODE_VECTORS); e.b(0x0f, 0xa3, 0xc2); e.jcc8(CC_NB, 'noerr'); // bt edx,eax
  e.b(0x58); e.jmp8('haveerr');
  e.label('noerr');
  e.b(0xb8); e.d32(0xffffffff);
  e.label('haveerr');
  e.store(ctxOff('err'), 0);
  e.b(0x58); e.store(ctxOff('eip'), 0);
  e.b(0x58, 0x0f, 0xb7, 0xc0); e.store(ctxOff('cs'), 0); // CS slot: low 16 bits only
  e.b(0x58); e.store(ctxOff('eflags'), 0);
  e.b(0xf6, 0x05); e.d32(ctxOff('cs')); e.b(3); // test byte [cs], 3
  e.jcc8(CC_Z, 'samepl');
  e.b(0x58); e.store(ctxOff('esp'), 0);
  e.b(0x58, 0x0f, 0xb7, 0xc0); e.store(ctxOff('ss'), 0);
  // From virtual-8086 mode the frame holds ES, DS, FS, GS too (the registers were nulled).
  e.b(0xf7, 0x05); e.d32(ctxOff('eflags')); e.d32(VM); // test dword [eflags], VM
  e.jcc8(CC_Z, 'segs');
  for (const f of ['es', 'ds', 'fs', 'gs'] as const) { e.b(0x58, 0x0f, 0xb7, 0xc0); e.store(ctxOff(f), 0); }
  e.jmp8('segs_done');
  e.label('samepl');
  e.store(ctxOff('esp'), 4);
  // Zero what the interruption and this handler pushed on the scratch stack (frame, stub
  // return, DS, EAX: at most 28 bytes); the frame holds EFLAGS with its undefined flags.
  for (let k = 0; k < 7; k++) e.b(0x6a, 0);
  e.b(0x83, 0xc4, 28);
  e.storeSreg(ctxOff('ss'), 2);
  e.label('segs');
  for (const [s, f] of [[0, 'es'], [4, 'fs'], [5, 'gs']] as const) e.storeSreg(ctxOff(f), s);
  e.label('segs_done');
  e.movImm16(0, SEL_KFLAT); e.movSreg(2, 0); e.movImm(4, RING0_STACK);
  e.jmp('dump');
  // The call gate's target: ends the test from ring 0 (reached from ring 3 with a stack switch).
  e.label('gate_target');
  e.b(0xcd, END_VECTOR);
  // TSS2's entry point: ends the test from the new task.
  e.label('task_target');
  e.b(0xcd, END_VECTOR);
}

/** mov eax, cr2; mov [ctx.cr2], eax */
function storeCr2(e: Emitter): void {
  e.b(0x0f, 0x20, 0xd0);
  e.store(ctxOff('cr2'), 0);
}

/** Fills the scratch area with a seeded LCG pattern (through DS). */
function emitFill(e: Emitter, seed: number, label: string): void {
  e.o32(); e.b(0x31, 0xff); // xor edi,edi
  e.movImm(0, seed);
  e.movImm(1, SCRATCH_SIZE / 4);
  e.label(label);
  e.storeEdiEax();
  e.o32(); e.b(0x69, 0xc0); e.d32(1664525); // imul eax,eax,1664525
  e.o32(); e.b(0x05); e.d32(1013904223);
  e.o32(); e.b(0x83, 0xc7, 4);
  e.o32(); e.b(0x49); // dec ecx
  e.jcc8(CC_NZ, label);
}

function emitTest(e: Emitter, mode: Mode, tc: TestCase, count: number, i: number): SeqLayout {
  const m = modeInfo(mode);
  e.label(`test_${i}`);
  if (!m.real || m.vm86) {
    // Undo a task switch of the previous test: both TSS descriptors available again, TSS2's
    // image afresh from the ROM, TR = the harness TSS, CR0.TS clear.
    e.movImm16(0, SEL_KFLAT); e.movSreg(3, 0); e.movSreg(0, 0);
    for (const sel of [SEL_TSS, SEL_TSS2]) { e.b(0x80, 0x25); e.d32(SYS + sel + 5); e.b(0xfd); } // and byte [..], ~busy
    e.movImm(6, ROM_LINEAR + TSS2_OFF); e.movImm(7, SYS + TSS2_OFF); e.movImm(1, 0x68); e.b(0xfc, 0xf3, 0xa4); // cld; rep movsb
    e.movImm16(0, SEL_TSS); e.b(0x0f, 0x00, 0xd8, 0x0f, 0x06); // ltr ax; clts
  }
  const seg = m.vm86 ? SEL_KSCR : m.real ? RM_SEG : m.ring === 3 ? SEL_USCR : SEL_KSCR;
  e.movImm16(0, seg);
  for (const s of [3, 0, 4, 5]) e.movSreg(s, 0);
  if (m.ring === 3) { e.movImm16(0, SEL_KFLAT); e.movSreg(2, 0); e.movImm(4, RING0_STACK); } else { e.movImm16(0, seg); e.movSreg(2, 0); e.movImm(4, STACK_INIT); }
  if (m.paging) { e.movImm(0, tc.pse ? PD_4M : PD_4K); e.b(0x0f, 0x22, 0xd8); }
  e.o32(); e.b(0x31, 0xc0, 0x0f, 0x22, 0xd0); // CR2 = 0: a #PF of this test shows alone
  e.storeImm(ctxOff('idx'), tc.index);
  e.storeLabel(CTX_NEXT, `test_${i + 1}`);
  emitFill(e, tc.fill, `fill_${i}`);
  if (m.vm86) {
    // IRETD to virtual-8086 mode: GS, FS, DS, ES, SS:ESP, EFLAGS.VM, F000:sequence.
    for (const v of [RM_SEG, RM_SEG, RM_SEG, RM_SEG, RM_SEG, STACK_INIT, tc.eflags | VM, 0xf000]) { e.b(0x68); e.d32(v); }
    e.b(0x68); e.ref('abs16', `seq_${i}`); e.w16(0);
  } else if (m.ring === 3) {
    for (const v of [SEL_USCR, STACK_INIT, tc.eflags, SEL_UCODE]) { e.b(0x68); e.d32(v); }
    e.b(0x68); e.ref('lin32', `seq_${i}`);
  } else {
    e.o32(); e.b(0x68); e.d32(tc.eflags); e.o32(); e.b(0x9d); // push eflags; popfd
  }
  for (const r of REGS_SAVED) e.movImm(r, tc.regs[r]);
  if (m.ring === 3) e.b(0xcf); // iretd into ring 3
  e.label(`seq_${i}`);
  // The sequence's own view of its address: a CS offset in 16-bit modes, linear in 32-bit ones.
  const layout = layoutSequence(tc, count, m.bits === 16 ? e.pos : ROM_LINEAR + e.pos);
  e.bytes(layout.bytes);
  return layout;
}

/**
 * Builds a ROM running `tests` (all in `mode`) until the ROM is full; `placed` says which fit.
 * `counts[i]` lays out only a prefix of test i's items (minimization), default all.
 */
export function buildRom(mode: Mode, tests: readonly TestCase[], counts?: readonly number[]): BuiltRom {
  const m = modeInfo(mode);
  const e = new Emitter();
  e.pos = CODE_START;
  e.bits = 16;
  e.label('start');
  e.b(0xfa, 0xfc); // cli; cld
  e.b(0x31, 0xc0, 0x8e, 0xd8); // xor ax,ax; mov ds,ax
  e.b(0x66, 0x81, 0x3e); e.w16(BOOT_MAGIC_AT); e.d32(BOOT_MAGIC);
  e.jcc8(CC_NZ, 'fresh');
  for (const c of 'RESET\nEND\n') { e.b(0xb0, c.charCodeAt(0)); e.outE9(); }
  e.outString(0x8900, 'Shutdown');
  e.b(0xfa, 0xf4);
  e.label('fresh');
  e.b(0x66, 0xc7, 0x06); e.w16(BOOT_MAGIC_AT); e.d32(BOOT_MAGIC);
  if (m.real && !m.vm86) {
    // IVT: vector n -> F000:stubs+3n.
    e.b(0x31, 0xc0, 0x8e, 0xc0, 0x31, 0xff); // xor ax,ax; mov es,ax; xor di,di
    e.b(0xb8); e.ref('abs16', 'stubs');
    e.b(0xb9); e.w16(256);
    e.label('ivt');
    e.b(0x26, 0x89, 0x05, 0x26, 0xc7, 0x45, 0x02, 0x00, 0xf0, 0x83, 0xc7, 0x04, 0x05, 0x03, 0x00);
    e.b(0xe2, 0); e.pos--; e.ref('rel8', 'ivt');
    e.jmp('test_0');
    emitRealHandler(e);
  } else {
    e.b(0x0e, 0x1f); // push cs; pop ds
    e.movImm16(0, SYS >>> 4); e.movSreg(0, 0);
    e.b(0xbe); e.w16(0); e.b(0x31, 0xff, 0xb9); e.w16(SYS_LEN); e.b(0xf3, 0xa4); // rep movsb
    e.b(0x2e, 0x0f, 0x01, 0x16); e.w16(GDTR_AT);
    e.b(0x2e, 0x0f, 0x01, 0x1e); e.w16(IDTR_AT);
    e.b(0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0); // CR0.PE
    e.b(0x66, 0xea); e.ref('lin32', 'pm_entry'); e.w16(SEL_KCODE);
    e.bits = 32;
    e.label('pm_entry');
    e.movImm16(0, SEL_KFLAT);
    for (const s of [3, 0, 2]) e.movSreg(s, 0);
    e.movImm(4, RING0_STACK);
    e.movImm16(0, SEL_TSS); e.b(0x0f, 0x00, 0xd8); // ltr ax
    if (m.paging) {
      e.movImm(7, PT_LOW); e.movImm(0, 7); e.movImm(1, 1024);
      e.label('pt');
      e.b(0xab, 0x05); e.d32(0x1000); // stosd; add eax,4096
      e.b(0xe2, 0); e.pos--; e.ref('rel8', 'pt');
      for (const { page, pte } of PF_PAGES) { e.b(0xc7, 0x05); e.d32(PT_LOW + 4 * page); e.d32(pte); }
      e.b(0xc7, 0x05); e.d32(PD_4K); e.d32(PT_LOW | 7);
      e.b(0xc7, 0x05); e.d32(PD_4M); e.d32(0x87);
      e.b(0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x10, 0x0f, 0x22, 0xe0); // CR4.PSE
      e.movImm(0, PD_4K); e.b(0x0f, 0x22, 0xd8); // CR3
      e.b(0x0f, 0x20, 0xc0, 0x0d); e.d32(0x80000000); e.b(0x0f, 0x22, 0xc0); // CR0.PG
    }
    e.jmp('test_0');
    emitPmHandler(e);
  }
  emitDump(e);

  const placed: PlacedTest[] = [];
  tests.forEach((tc, i) => {
    if (placed.length < i) return;
    const mark = e.mark();
    const count = counts?.[i] ?? tc.items.length;
    const layout = emitTest(e, mode, tc, count, i);
    if (e.pos > CODE_LIMIT - 8) { e.rollback(mark); return; }
    placed.push({ tc, count, layout });
  });
  e.label(`test_${placed.length}`);
  e.jmp('finish');

  if (!m.real || m.vm86) {
    e.buf.set(systemBlob(ROM_LINEAR + e.offset('stubs'), ROM_LINEAR + e.offset('gate_target'), ROM_LINEAR + e.offset('task_target')), 0);
    const dv = new DataView(e.buf.buffer);
    dv.setUint16(GDTR_AT, GDT_ENTRIES * 8 - 1, true); dv.setUint32(GDTR_AT + 2, SYS, true);
    dv.setUint16(IDTR_AT, IDT_VECTORS * 8 - 1, true); dv.setUint32(IDTR_AT + 2, SYS + IDT_OFF, true);
  }
  // Reset vector: jmp far F000:start.
  e.pos = ROM_SIZE - 16;
  e.b(0xea); e.w16(e.offset('start')); e.w16(0xf000);
  e.resolve();
  return { rom: e.buf, mode, placed };
}
