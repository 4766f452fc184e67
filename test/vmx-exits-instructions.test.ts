// Instruction-caused VM exits (SDM Vol. 3C 25.1.2, 25.1.3) with their exit qualification (27.2.1),
// instruction length (27.2.4) and instruction information (27.2.5), the instruction behaviour the
// controls change without an exit (25.3: TSC offsetting, CR0/CR4 read shadows and guest/host
// masks), and the faults that take priority over the exits (25.1.1). Each case is a ring-0 host
// that fills VMCS A through VMWRITE and launches a flat guest (helpers/vmx.ts `program`); the
// guest runs the instruction under test at `guest_insn` and a VMCALL at `guest_next`, so an exit
// with reason 18 at `guest_next` means the instruction did not exit. ROM versions of the cases
// run on trapdiff and on Bochs at the end of the file.

import { describe, expect, it } from 'vitest';
import { EAX, EBX, ECX, EDX, ESI } from '../src/cpu/constants.js';
import { CONTROL_MUST1, controlMsr } from '../src/cpu/vmx/capabilities.js';
import {
  PROC, PROC2_DESC_TABLE_EXITING, PROC2_VIRTUALIZE_APIC, PROC2_WBINVD_EXITING, PROC_CR3_LOAD_EXITING, PROC_CR3_STORE_EXITING,
  PROC_INVLPG_EXITING, PROC_IO_BITMAPS, PROC_MONITOR_EXITING, PROC_MOV_DR_EXITING, PROC_MSR_BITMAPS,
  PROC_MWAIT_EXITING, PROC_PAUSE_EXITING, PROC_RDPMC_EXITING, PROC_RDTSC_EXITING, PROC_SECONDARY,
  PROC_TPR_SHADOW, PROC_TSC_OFFSETTING, PROC_UNCOND_IO_EXITING,
} from '../src/cpu/vmx/controls.js';
import { vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { run, type Run } from './helpers/exec.js';
import { asm, CODE_BASE, GDT_BASE, IDT_BASE, makeCpu, type Harness } from './helpers/harness.js';
import { compareOnRom } from './helpers/rom.js';
import { vmxRom } from './helpers/vmx-rom.js';
import {
  DATA, ENTRY_FAILURE_GUEST_STATE, LABEL_INSN, LABEL_NEXT, PATH, HOST_RESUMED, program, rd, TSS, vmxReady, w,
} from './helpers/vmx.js';

const REASON = 0x4402, QUALIFICATION = 0x6400, LENGTH = 0x440c, INFO = 0x440e, GUEST_LINEAR = 0x640a,
  GUEST_RIP = 0x681e, GUEST_CR0 = 0x6800;
const VMCALL = 18;
/** Bitmap pages: I/O bitmaps A and B, MSR bitmaps. */
const IO_A = 0x50000, IO_B = 0x51000, MSR_BITMAPS = 0x52000;
/** Host code: the guest RIP moves past the exiting instruction (by the VM-exit instruction length). */
const ADVANCE_GUEST_RIP = 'mov ebx, 0x440c\nvmread ecx, ebx\nmov ebx, 0x681e\nvmread eax, ebx\nadd eax, ecx\nvmwrite ebx, eax';
/** Where guests store what they read. */
const OUT = DATA + 0x200;

/** The primary controls at their minimum plus `bits`. */
const proc = (bits: number): string => w(0x4002, CONTROL_MUST1[PROC] | bits);
/** Secondary controls `bits`, activated. */
const proc2 = (bits: number, primary = 0): string[] => [proc(PROC_SECONDARY | primary), w(0x401e, bits)];

interface Exit extends Run {
  reason: number;
  qualification: number;
  length: number;
  info: number;
  /** Where the guest was: 'insn' (guest_insn), 'next' (guest_next) or the RIP. */
  at: string | number;
}
/** Runs the host with `writes`, guest code `guest` (labels guest_insn, guest_next), and reads the exit. */
function exitOf(writes: string[], guest: string): Exit {
  const r = run('pm32', program(writes, `${guest}\nvmcall`), vmxReady);
  const rip = r.vector < 0 ? vmcsRead(r.cpu, GUEST_RIP) >>> 0 : -1;
  const at = rip === rd(r, LABEL_INSN) ? 'insn' : rip === rd(r, LABEL_NEXT) ? 'next' : rip;
  return {
    ...r, at, reason: vmcsRead(r.cpu, REASON), qualification: vmcsRead(r.cpu, QUALIFICATION) >>> 0,
    length: vmcsRead(r.cpu, LENGTH), info: vmcsRead(r.cpu, INFO) >>> 0,
  };
}
/** The exit happened at guest_insn with `reason`, `qualification` and `length`. */
function expectExit(e: Exit, reason: number, qualification: number, length: number): void {
  expect(e.vector).toBe(-1);
  expect(rd(e, PATH)).toBe(HOST_RESUMED);
  expect([e.at, e.reason, e.qualification, e.length]).toEqual(['insn', reason, qualification >>> 0, length]);
  expect(e.cpu.vmx.nonRoot).toBe(false);
}
/** The instruction ran in the guest without an exit: the VMCALL after it exited. */
function expectNoExit(e: Exit): void {
  expect(e.vector).toBe(-1);
  expect([e.at, e.reason]).toEqual(['next', VMCALL]);
}
/** The instruction faulted in the guest (with `vector`) instead of exiting. */
function expectFault(e: Exit, vector: number): void {
  expect(e.vector).toBe(vector);
  expect(e.cpu.vmx.nonRoot).toBe(true);
}

/** A ring-3 guest: CS 1BH, SS/DS/ES/FS/GS 23H (DPL 3), EFLAGS `eflags`. */
const RING3 = [w(0x0802, 0x1b), w(0x4816, 0xc0fb), ...[0, 2, 3, 4, 5].flatMap((s) => [w(0x0800 + 2 * s, 0x23),
  w(0x4814 + 2 * s, 0xc0f3)])];

describe('unconditional and single-control exits', () => {
  it('INVD exits unconditionally (13, length 2); at CPL 3 it is #GP(0) first', () => {
    expectExit(exitOf([], 'guest_insn: invd\nguest_next:'), 13, 0, 2);
    expectFault(exitOf(RING3, 'guest_insn: invd\nguest_next:'), 13);
  });
  it('INVLPG exits (14) with the linear address as qualification; without the control it runs', () => {
    const guest = 'mov ebx, 0x1234\nguest_insn: invlpg [ebx+0x10]\nguest_next:';
    expectExit(exitOf([proc(PROC_INVLPG_EXITING)], guest), 14, 0x1244, 4);
    expectNoExit(exitOf([], guest));
  });
  it('RDPMC exits (15); at CPL 3 without CR4.PCE #GP(0) comes first; an invalid counter exits', () => {
    expectExit(exitOf([proc(PROC_RDPMC_EXITING)], 'mov ecx, 7\nguest_insn: rdpmc\nguest_next:'), 15, 0, 2);
    expectFault(exitOf([proc(PROC_RDPMC_EXITING), ...RING3], 'guest_insn: rdpmc\nguest_next:'), 13);
  });
  it('RDTSC exits (16); with CR4.TSD at CPL 3 #GP(0) comes first', () => {
    expectExit(exitOf([proc(PROC_RDTSC_EXITING)], 'guest_insn: rdtsc\nguest_next:'), 16, 0, 2);
    const tsd = [proc(PROC_RDTSC_EXITING), ...RING3, 'mov eax, cr4\nor eax, 4\nmov ebx, 0x6804\nvmwrite ebx, eax'];
    expectFault(exitOf(tsd, 'guest_insn: rdtsc\nguest_next:'), 13);
  });
  it('MONITOR (39) and PAUSE (40) exit; MWAIT (36) tells whether the monitor was armed', () => {
    expectExit(exitOf([proc(PROC_MONITOR_EXITING)], 'mov eax, 0x5000\nxor ecx, ecx\nxor edx, edx\nguest_insn: monitor\nguest_next:'), 39, 0, 3);
    expectExit(exitOf([proc(PROC_PAUSE_EXITING)], 'guest_insn: pause\nguest_next:'), 40, 0, 2);
    expectNoExit(exitOf([], 'guest_insn: pause\nguest_next:'));
    const mwait = 'xor ecx, ecx\nguest_insn: mwait\nguest_next:';
    expectExit(exitOf([proc(PROC_MWAIT_EXITING)], mwait), 36, 0, 3);
    const armed = `mov eax, 0x5000\nxor ecx, ecx\nxor edx, edx\nmonitor\n${mwait}`;
    expectExit(exitOf([proc(PROC_MWAIT_EXITING)], armed), 36, 1, 3);
    // MONITOR arms the monitor, an MWAIT that runs disarms it.
    const monitor = 'mov eax, 0x5000\nxor ecx, ecx\nxor edx, edx\nguest_insn: monitor\nguest_next:';
    expect(exitOf([], monitor).cpu.monitorArmed).toBe(true);
    expect(exitOf([], `${monitor}\nmwait`).cpu.monitorArmed).toBe(false);
  });
  it('MWAIT exits before its ECX check (#GP), MONITOR before its address check', () => {
    expectExit(exitOf([proc(PROC_MWAIT_EXITING)], 'mov ecx, 2\nguest_insn: mwait\nguest_next:'), 36, 0, 3);
    expectFault(exitOf([], 'mov ecx, 2\nguest_insn: mwait\nguest_next:'), 13);
  });
  it('WBINVD exits (54) with "WBINVD exiting", only when secondary controls are activated', () => {
    expectExit(exitOf(proc2(PROC2_WBINVD_EXITING), 'guest_insn: wbinvd\nguest_next:'), 54, 0, 2);
    expectNoExit(exitOf([proc(0), w(0x401e, PROC2_WBINVD_EXITING)], 'guest_insn: wbinvd\nguest_next:'));
  });
  it('a compiled or interpreted block stops at the exiting instruction', () => {
    // The instructions after RDTSC in the same block must not run on the host.
    const e = exitOf([proc(PROC_RDTSC_EXITING)], `guest_insn: rdtsc\nguest_next: mov dword [${OUT}], 1`);
    expectExit(e, 16, 0, 2);
    expect(rd(e, OUT)).toBe(0);
  });
});

describe('TSC offsetting (25.3)', () => {
  const readTsc = `guest_insn: rdtsc\nmov [${OUT}], eax\nmov [${OUT + 4}], edx\nmov ecx, 0x10\nrdmsr\nmov [${OUT + 8}], edx\nguest_next:`;
  it('RDTSC and RDMSR(IA32_TSC) return TSC + offset with "use TSC offsetting"', () => {
    const e = exitOf([proc(PROC_TSC_OFFSETTING | PROC_MSR_BITMAPS), w(0x2004, MSR_BITMAPS), w(0x2010, 0),
      w(0x2011, 0x12345678)], readTsc);
    expect(e.reason).toBe(VMCALL);
    expect([rd(e, OUT + 4), rd(e, OUT + 8)]).toEqual([0x12345678, 0x12345678]);
  });
  it('a negative offset wraps modulo 2^64; without the control the offset field is ignored', () => {
    const e = exitOf([proc(PROC_TSC_OFFSETTING | PROC_MSR_BITMAPS), w(0x2004, MSR_BITMAPS), w(0x2010, 0),
      w(0x2011, -1)], readTsc);
    expect([rd(e, OUT + 4), rd(e, OUT + 8)]).toEqual([0xffffffff, 0xffffffff]);
    const off = exitOf([proc(PROC_MSR_BITMAPS), w(0x2004, MSR_BITMAPS), w(0x2010, 0), w(0x2011, 0x12345678)], readTsc);
    expect([rd(off, OUT + 4), rd(off, OUT + 8)]).toEqual([0, 0]);
  });
});

describe('control-register accesses (28) and MOV DR (29)', () => {
  const TS = 8, MP = 2, PE = 1;
  const cr0Mask = (mask: number, shadow: number): string[] => [w(0x6000, mask), w(0x6004, shadow)];
  it('MOV to CR0 exits when a host-owned bit differs from the read shadow (qualification: CR, type 0, register)', () => {
    const guest = 'mov ecx, cr0\nor ecx, 8\nguest_insn: mov cr0, ecx\nguest_next:';
    expectExit(exitOf(cr0Mask(TS, 0), guest), 28, 0x100, 3);
  });
  it('a MOV to CR0 matching the shadow runs and leaves host-owned bits alone; reads see the shadow', () => {
    const guest = `mov ecx, cr0\nmov [${OUT}], ecx\nor ecx, 8\nsmsw [${OUT + 4}]\nguest_insn: mov cr0, ecx\nguest_next:`;
    const e = exitOf(cr0Mask(TS, TS), guest);
    expectNoExit(e);
    expect(rd(e, OUT) & TS).toBe(TS); // the shadow's TS
    expect(rd(e, OUT + 4) & TS).toBe(TS);
    expect(vmcsRead(e.cpu, GUEST_CR0) & TS).toBe(0); // the real TS is the host's
  });
  it('MOV to CR4 exits on a host-owned bit (qualification 4 | register 3 << 8); MOV from CR4 reads the shadow', () => {
    expectExit(exitOf([w(0x6002, 0x10), w(0x6006, 0)], 'mov ebx, cr4\nor ebx, 0x10\nguest_insn: mov cr4, ebx\nguest_next:'), 28, 0x304, 3);
    const e = exitOf([w(0x6002, 0x2000), w(0x6006, 0)], `guest_insn: mov eax, cr4\nmov [${OUT}], eax\nguest_next:`);
    expectNoExit(e);
    expect(rd(e, OUT) & 0x2000).toBe(0);
  });
  it('MOV to CR3 with CR3-load exiting exits unless the value is one of the first CR3-target-count targets', () => {
    const load = proc(PROC_CR3_LOAD_EXITING);
    const guest = 'mov edx, cr3\nguest_insn: mov cr3, edx\nguest_next:';
    expectExit(exitOf([load], guest), 28, 0x203, 3);
    const cr3 = 'mov eax, cr3\nmov ebx, 0x600e\nvmwrite ebx, eax';
    expectNoExit(exitOf([load, w(0x400a, 4), cr3], guest)); // target 3
    expectExit(exitOf([load, w(0x400a, 3), cr3], guest), 28, 0x203, 3); // beyond the count
    expectNoExit(exitOf([], guest));
  });
  it('MOV from CR3 with CR3-store exiting exits (type 1); MOV to/from CR0 at CPL 3 is #GP(0) first', () => {
    expectExit(exitOf([proc(PROC_CR3_STORE_EXITING)], 'guest_insn: mov esi, cr3\nguest_next:'), 28, 0x613, 3);
    expectFault(exitOf([...RING3, ...cr0Mask(-1, 0)], 'guest_insn: mov eax, cr0\nguest_next:'), 13);
  });
  it('CLTS: exit (type 2) when TS is host-owned and set in the shadow, no change when clear, normal otherwise', () => {
    const setTs = 'mov eax, cr0\nor eax, 8\nmov ebx, 0x6800\nvmwrite ebx, eax';
    expectExit(exitOf([setTs, ...cr0Mask(TS, TS)], 'guest_insn: clts\nguest_next:'), 28, 0x20, 2);
    const kept = exitOf([setTs, ...cr0Mask(TS, 0)], 'guest_insn: clts\nguest_next:');
    expectNoExit(kept);
    expect(vmcsRead(kept.cpu, GUEST_CR0) & TS).toBe(TS);
    const cleared = exitOf([setTs], 'guest_insn: clts\nguest_next:');
    expect(vmcsRead(cleared.cpu, GUEST_CR0) & TS).toBe(0);
  });
  it('LMSW: exit (type 3, source data in 31:16) on a host-owned MP/EM/TS change or PE set against the shadow', () => {
    expectExit(exitOf(cr0Mask(MP, 0), 'mov ax, 0x0003\nguest_insn: lmsw ax\nguest_next:'), 28, 0x00030030, 3);
    // PE is 1 in CR0: LMSW cannot clear it, so a clear PE with PE owned and set in the shadow does not exit.
    expectNoExit(exitOf(cr0Mask(PE, PE), 'mov ax, 0\nguest_insn: lmsw ax\nguest_next:'));
    expectExit(exitOf(cr0Mask(PE, 0), 'mov ax, 1\nguest_insn: lmsw ax\nguest_next:'), 28, 0x00010030, 3);
  });
  it('LMSW with a memory operand: bit 6 and the operand\'s linear address in the guest-linear-address field', () => {
    const e = exitOf(cr0Mask(TS, 0), `mov word [${OUT}], 0x000b\nmov ebx, ${OUT - 4}\nguest_insn: lmsw [ebx+4]\nguest_next:`);
    expectExit(e, 28, 0x000b0070, 4);
    expect(vmcsRead(e.cpu, GUEST_LINEAR) >>> 0).toBe(OUT);
  });
  it('LMSW that does not exit leaves host-owned bits of CR0 as they are', () => {
    const e = exitOf(cr0Mask(MP, MP), 'mov ax, 0x000b\nguest_insn: lmsw ax\nguest_next:');
    expectNoExit(e);
    expect(vmcsRead(e.cpu, GUEST_CR0) & 0xf).toBe(TS | PE); // MP stays the host's 0, TS set
  });
  it('MOV DR exits (29: DR number, direction, register) before the CPL, CR4.DE and DR7.GD faults', () => {
    const dr = proc(PROC_MOV_DR_EXITING);
    expectExit(exitOf([dr], 'guest_insn: mov dr7, eax\nguest_next:'), 29, 0x007, 3);
    expectExit(exitOf([dr], 'guest_insn: mov ebx, dr6\nguest_next:'), 29, 0x316, 3);
    expectExit(exitOf([dr, ...RING3], 'guest_insn: mov dr0, edx\nguest_next:'), 29, 0x200, 3);
    const de = 'mov eax, cr4\nor eax, 8\nmov ebx, 0x6804\nvmwrite ebx, eax';
    expectExit(exitOf([dr, de], 'guest_insn: mov dr4, ecx\nguest_next:'), 29, 0x104, 3);
    expectFault(exitOf([de], 'guest_insn: mov dr4, ecx\nguest_next:'), 6);
    const gd = 'mov ebx, 0x681a\nmov eax, 0x2400\nvmwrite ebx, eax\nmov ebx, 0x4012\nvmread eax, ebx\nor eax, 4\nvmwrite ebx, eax';
    expectExit(exitOf([dr, gd], 'guest_insn: mov eax, dr1\nguest_next:'), 29, 0x011, 3);
  });
});

describe('I/O instructions (30)', () => {
  const IO_QUAL = (size: number, inp: boolean, str: boolean, rep: boolean, imm: boolean, port: number): number =>
    ((size - 1) | (inp ? 8 : 0) | (str ? 16 : 0) | (rep ? 32 : 0) | (imm ? 64 : 0) | (port << 16)) >>> 0;
  const uncond = proc(PROC_UNCOND_IO_EXITING);
  const bitmaps = (...lines: string[]): string[] => [proc(PROC_IO_BITMAPS), w(0x2000, IO_A), w(0x2002, IO_B), ...lines];
  it('unconditional I/O exiting: size, direction, immediate/DX, port', () => {
    expectExit(exitOf([uncond], 'guest_insn: out 0x80, al\nguest_next:'), 30, IO_QUAL(1, false, false, false, true, 0x80), 2);
    expectExit(exitOf([uncond], 'mov dx, 0x3f8\nguest_insn: in eax, dx\nguest_next:'), 30, IO_QUAL(4, true, false, false, false, 0x3f8), 1);
    expectExit(exitOf([uncond], 'guest_insn: in ax, 0x60\nguest_next:'), 30, IO_QUAL(2, true, false, false, true, 0x60), 3);
  });
  it('string I/O: string and REP bits, the linear address of the memory operand', () => {
    const ins = exitOf([uncond], 'mov dx, 0x1234\nmov edi, 0x5000\nxor ecx, ecx\nguest_insn: rep insw\nguest_next:');
    expectExit(ins, 30, IO_QUAL(2, true, true, true, false, 0x1234), 3);
    expect(vmcsRead(ins.cpu, GUEST_LINEAR)).toBe(0x5000);
    const outs = exitOf([uncond, w(0x6806 + 2 * 4, 0x100)], 'mov dx, 0x80\nmov esi, 0x6000\nguest_insn: fs outsb\nguest_next:');
    expectExit(outs, 30, IO_QUAL(1, false, true, false, false, 0x80), 2);
    expect(vmcsRead(outs.cpu, GUEST_LINEAR)).toBe(0x6100);
  });
  it('REP INS/OUTS with a zero count exit all the same (25.1.3: the controls and ports decide, not the count)', () => {
    const repOuts = 'mov dx, 0x80\nmov esi, 0x6000\nxor ecx, ecx\nguest_insn: rep outsb\nguest_next:';
    expectExit(exitOf([uncond], repOuts), 30, IO_QUAL(1, false, true, true, false, 0x80), 2);
    expectExit(exitOf(bitmaps(`mov byte [${IO_A + 0x10}], 1`), repOuts), 30, IO_QUAL(1, false, true, true, false, 0x80), 2);
    const clear = exitOf(bitmaps(), repOuts);
    expectNoExit(clear);
    expect([clear.cpu.regs[ECX], clear.cpu.regs[ESI]]).toEqual([0, 0x6000]);
  });
  it('I/O bitmaps: a set bit for any port touched exits; the unconditional control is then ignored', () => {
    const port80 = `mov byte [${IO_A + 0x10}], 1`;
    expectExit(exitOf(bitmaps(port80), 'guest_insn: out 0x80, al\nguest_next:'), 30, IO_QUAL(1, false, false, false, true, 0x80), 2);
    expectNoExit(exitOf(bitmaps(port80), 'guest_insn: out 0x81, al\nguest_next:'));
    expectExit(exitOf(bitmaps(port80), 'guest_insn: out 0x7f, eax\nguest_next:'), 30, IO_QUAL(4, false, false, false, true, 0x7f), 2);
    expectNoExit(exitOf([proc(PROC_IO_BITMAPS | PROC_UNCOND_IO_EXITING), w(0x2000, IO_A), w(0x2002, IO_B)], 'guest_insn: out 0x80, al\nguest_next:'));
  });
  it('bitmap B covers 8000H-FFFFH; an access across 7FFFH/8000H checks both; a wrap past FFFFH always exits', () => {
    const port8000 = `mov byte [${IO_B}], 1`;
    expectExit(exitOf(bitmaps(port8000), 'mov dx, 0x7fff\nguest_insn: in ax, dx\nguest_next:'), 30, IO_QUAL(2, true, false, false, false, 0x7fff), 2);
    expectNoExit(exitOf(bitmaps(port8000), 'mov dx, 0x7ffe\nguest_insn: in ax, dx\nguest_next:'));
    expectExit(exitOf(bitmaps(), 'mov dx, 0xffff\nguest_insn: in ax, dx\nguest_next:'), 30, IO_QUAL(2, true, false, false, false, 0xffff), 2);
  });
  it('the TSS I/O-permission check comes first: CPL 3 > IOPL with no TSS bitmap is #GP(0)', () => {
    const noMap = `mov word [${TSS + 0x66}], 0x68`;
    expectFault(exitOf([uncond, noMap, ...RING3], 'guest_insn: out 0x80, al\nguest_next:'), 13);
    expectExit(exitOf([uncond, noMap, ...RING3, w(0x6820, 0x3002)], 'guest_insn: out 0x80, al\nguest_next:'),
      30, IO_QUAL(1, false, false, false, true, 0x80), 2);
  });
});

describe('RDMSR (31) and WRMSR (32)', () => {
  const bitmaps = (...lines: string[]): string[] => [proc(PROC_MSR_BITMAPS), w(0x2004, MSR_BITMAPS), ...lines];
  const rdmsr = (ecx: number): string => `mov ecx, ${ecx}\nguest_insn: rdmsr\nguest_next:`;
  const wrmsr = (ecx: number): string => `mov ecx, ${ecx}\nxor eax, eax\nxor edx, edx\nguest_insn: wrmsr\nguest_next:`;
  it('exit unconditionally without MSR bitmaps, even for an MSR that does not exist; CPL 3 is #GP(0) first', () => {
    expectExit(exitOf([], rdmsr(0x174)), 31, 0, 2);
    expectExit(exitOf([], wrmsr(0x12345)), 32, 0, 2);
    expectFault(exitOf(RING3, rdmsr(0x174)), 13);
  });
  it('with bitmaps: low and high ranges by their read/write bitmaps, other indexes always exit', () => {
    expectNoExit(exitOf(bitmaps(), rdmsr(0x174)));
    expectExit(exitOf(bitmaps(`mov byte [${MSR_BITMAPS + 0x2e}], 0x10`), rdmsr(0x174)), 31, 0, 2);
    expectNoExit(exitOf(bitmaps(`mov byte [${MSR_BITMAPS + 0x82e}], 0x10`), rdmsr(0x174)));
    expectExit(exitOf(bitmaps(`mov byte [${MSR_BITMAPS + 0x82e}], 0x10`), wrmsr(0x174)), 32, 0, 2);
    expectExit(exitOf(bitmaps(`mov byte [${MSR_BITMAPS + 0x410}], 1`), rdmsr(0xc0000080)), 31, 0, 2);
    expectExit(exitOf(bitmaps(`mov byte [${MSR_BITMAPS + 0xc10}], 1`), wrmsr(0xc0000080)), 32, 0, 2);
    expectExit(exitOf(bitmaps(), rdmsr(0x2000)), 31, 0, 2);
    expectExit(exitOf(bitmaps(), rdmsr(0xc0002000)), 31, 0, 2);
    // In range with a clear bit: the MSR is read normally, and one that does not exist is #GP(0).
    expectFault(exitOf(bitmaps(), rdmsr(0x1fff)), 13);
  });
});

describe('descriptor-table exiting (46, 47) and the instruction-information field', () => {
  const dt = proc2(PROC2_DESC_TABLE_EXITING);
  /** Instruction information: scaling, address size, segment, index (-1 none), base (-1 none). */
  const mem = (scale: number, a32: boolean, seg: number, index: number, base: number): number =>
    (scale | (a32 ? 1 << 7 : 0) | (seg << 15) | (index < 0 ? 1 << 22 : index << 18) | (base < 0 ? 1 << 27 : base << 23)) >>> 0;
  const info = (e: Exit): number => e.info;
  it('SGDT/SIDT/LGDT/LIDT (46): displacement, operand size (bit 11), identity (29:28)', () => {
    const sgdt = exitOf(dt, 'mov ebx, 0x5000\nguest_insn: sgdt [ebx+8]\nguest_next:');
    expectExit(sgdt, 46, 8, 4);
    expect(info(sgdt)).toBe((mem(0, true, 3, -1, EBX) | (1 << 11)) >>> 0);
    const lidt = exitOf(dt, 'xor eax, eax\nxor ecx, ecx\nguest_insn: lidt [eax+ecx*4-0x100]\nguest_next:');
    expectExit(lidt, 46, -0x100, 8);
    expect(info(lidt)).toBe((mem(2, true, 3, ECX, EAX) | (1 << 11) | (3 << 28)) >>> 0);
    const lgdt16 = exitOf(dt, 'xor ebp, ebp\nxor esi, esi\nguest_insn: o16 lgdt [bp+si+2]\nguest_next:');
    expectExit(lgdt16, 46, 2, 6);
    expect(info(lgdt16)).toBe((mem(0, false, 2, ESI, 5) | (2 << 28)) >>> 0);
    const sidt = exitOf(dt, `guest_insn: sidt [es:${OUT}]\nguest_next:`);
    expectExit(sidt, 46, OUT, 8);
    expect(info(sidt)).toBe((mem(0, true, 0, -1, -1) | (1 << 11) | (1 << 28)) >>> 0);
  });
  it('SLDT/STR/LLDT/LTR (47): register operands (Reg1, bit 10) and memory operands', () => {
    const sldt = exitOf(dt, 'guest_insn: sldt dx\nguest_next:');
    expectExit(sldt, 47, 0, 4);
    expect(info(sldt)).toBe(((EDX << 3) | (1 << 10)) >>> 0);
    const ltr = exitOf(dt, 'mov esi, 0x5000\nguest_insn: ltr [esi-2]\nguest_next:');
    expectExit(ltr, 47, -2, 4);
    expect(info(ltr)).toBe((mem(0, true, 3, -1, ESI) | (3 << 28)) >>> 0);
    const str = exitOf(dt, 'guest_insn: str eax\nguest_next:');
    expect(info(str)).toBe(((EAX << 3) | (1 << 10) | (1 << 28)) >>> 0);
  });
  it('priority: LLDT and LGDT at CPL 3 are #GP(0); SGDT at CPL 3 exits (no CPL check)', () => {
    expectFault(exitOf([...dt, ...RING3], 'guest_insn: lldt ax\nguest_next:'), 13);
    expectFault(exitOf([...dt, ...RING3], `guest_insn: lgdt [${OUT}]\nguest_next:`), 13);
    expectExit(exitOf([...dt, ...RING3], `guest_insn: sgdt [${OUT}]\nguest_next:`), 46, OUT, 7);
  });
});

describe('VMX instructions in the guest: qualification = displacement, instruction information', () => {
  it('VMREAD to memory and VMWRITE from a register (Table 27-14)', () => {
    const vmread = exitOf([], 'mov ebx, 0x5000\nguest_insn: vmread [ebx+0x20], ecx\nguest_next:');
    expectExit(vmread, 23, 0x20, 4);
    expect(vmread.info).toBe((1 << 7 | 3 << 15 | 1 << 22 | EBX << 23 | ECX << 28) >>> 0);
    const vmwrite = exitOf([], 'guest_insn: vmwrite edx, eax\nguest_next:');
    expectExit(vmwrite, 25, 0, 3);
    expect(vmwrite.info).toBe((EAX << 3 | 1 << 10 | EDX << 28) >>> 0);
  });
  it('VMPTRLD, VMCLEAR, VMXON (Table 27-13) and INVEPT, INVVPID (Table 27-9)', () => {
    const vmptrld = exitOf([], 'mov esi, 0x5000\nmov ecx, 1\nguest_insn: vmptrld [esi+ecx*8-8]\nguest_next:');
    expectExit(vmptrld, 21, -8, 5);
    expect(vmptrld.info).toBe((3 | 1 << 7 | 3 << 15 | ECX << 18 | ESI << 23) >>> 0);
    const vmclear = exitOf([], `guest_insn: vmclear [${DATA + 8}]\nguest_next:`);
    expectExit(vmclear, 19, DATA + 8, 8);
    expect(vmclear.info).toBe((1 << 7 | 3 << 15 | 1 << 22 | 1 << 27) >>> 0);
    const vmxon = exitOf([], 'mov ebp, 0x5000\nguest_insn: vmxon [ebp]\nguest_next:');
    expectExit(vmxon, 27, 0, 5);
    expect(vmxon.info).toBe((1 << 7 | 2 << 15 | 1 << 22 | 5 << 23) >>> 0);
    const invvpid = exitOf([], 'mov edi, 0x5000\nmov edx, 1\nguest_insn: invvpid edx, [edi]\nguest_next:');
    expectExit(invvpid, 53, 0, 5);
    expect(invvpid.info).toBe((1 << 7 | 3 << 15 | 1 << 22 | 7 << 23 | EDX << 28) >>> 0);
  });
  it('VMLAUNCH: qualification 0', () => {
    expectExit(exitOf([], 'guest_insn: vmlaunch\nguest_next:'), 20, 0, 3);
  });
  /** Each VMX instruction with its exit reason and length (operand [5000H]: disp32). */
  const EVERY: Array<[string, number, number]> = [
    ['vmcall', 18, 3], ['vmclear [0x5000]', 19, 8], ['vmlaunch', 20, 3], ['vmptrld [0x5000]', 21, 7], ['vmptrst [0x5000]', 22, 7],
    ['vmread eax, ebx', 23, 3], ['vmresume', 24, 3], ['vmwrite ebx, eax', 25, 3], ['vmxoff', 26, 3], ['vmxon [0x5000]', 27, 8],
    ['invept eax, [0x5000]', 50, 9], ['invvpid eax, [0x5000]', 53, 9],
  ];
  it('every VMX instruction exits with its reason, also at CPL 3 (the exit comes before the CPL check)', () => {
    for (const [insn, reason, length] of EVERY) {
      for (const writes of [[], RING3]) {
        const e = exitOf(writes, `guest_insn: ${insn}\nguest_next:`);
        expect([insn, writes.length, e.vector, e.at, e.reason, e.length]).toEqual([insn, writes.length, -1, 'insn', reason, length]);
      }
    }
  });
  it('in a virtual-8086 guest every VMX instruction is #UD (checked before the exit) but VMCALL, which exits', () => {
    // Segments at selector x 16 (CS 1000H: the code at 10000H), limits FFFFH, access rights F3H.
    const v86 = [w(0x6820, 0x20002), w(0x681e, `guest - ${CODE_BASE}`), ...[0, 1, 2, 3, 4, 5].flatMap((s) => [
      w(0x0800 + 2 * s, s === 1 ? CODE_BASE >> 4 : 0), w(0x6806 + 2 * s, s === 1 ? CODE_BASE : 0), w(0x4800 + 2 * s, 0xffff),
      w(0x4814 + 2 * s, 0xf3)])];
    for (const [insn, reason] of EVERY) {
      const e = exitOf(v86, `bits 16\nguest_insn: ${insn}\nguest_next:\nbits 32`);
      if (reason === VMCALL) expect([e.at, e.reason, e.length]).toEqual([rd(e, LABEL_INSN) - CODE_BASE, VMCALL, 3]); // RIP: CS-relative
      else expect([insn, e.vector, e.cpu.vmx.nonRoot]).toEqual([insn, 6, true]);
    }
  });
});

describe('task switches (9): qualification = TSS selector and source', () => {
  /** Guest GDT entries 38H (available 32-bit TSS at 3100H), 40H (task gate to 38H), 48H (busy TSS at 3200H). */
  const gdt = [
    `mov dword [${GDT_BASE + 0x38}], 0x31000067\nmov dword [${GDT_BASE + 0x3c}], 0x8900`,
    `mov dword [${GDT_BASE + 0x40}], 0x00380000\nmov dword [${GDT_BASE + 0x44}], 0x8500`,
    `mov dword [${GDT_BASE + 0x48}], 0x32000067\nmov dword [${GDT_BASE + 0x4c}], 0x8b00`,
    w(0x4810, 0x4f),
  ];
  it('CALL (source 0) and JMP (source 2) to a TSS, JMP through a task gate (the TSS selector)', () => {
    expectExit(exitOf(gdt, 'guest_insn: call 0x38:0\nguest_next:'), 9, 0x38, 7);
    expectExit(exitOf(gdt, 'guest_insn: jmp 0x38:0\nguest_next:'), 9, (0x38 | 2 << 30) >>> 0, 7);
    expectFault(exitOf(gdt, 'guest_insn: jmp 0x3b:0\nguest_next:'), 13); // RPL 3 above the TSS's DPL 0
    expectExit(exitOf(gdt, 'guest_insn: jmp 0x40:0\nguest_next:'), 9, (0x38 | 2 << 30) >>> 0, 7);
  });
  it('IRET with NT = 1 (source 1) names the back link of the current TSS', () => {
    const e = exitOf([...gdt, `mov word [${TSS}], 0x48`], 'pushfd\nor dword [esp], 0x4000\npopfd\nguest_insn: iretd\nguest_next:');
    expectExit(e, 9, (0x48 | 1 << 30) >>> 0, 1);
  });
  it('INT n through a task gate in the IDT (source 3), with the INT\'s length', () => {
    const gate = `mov dword [${IDT_BASE + 0x40 * 8}], 0x00380000\nmov dword [${IDT_BASE + 0x40 * 8 + 4}], 0x8500`;
    expectExit(exitOf([...gdt, gate], 'guest_insn: int 0x40\nguest_next:'), 9, (0x38 | 3 << 30) >>> 0, 2);
  });
  it('the new TSS descriptor\'s checks come first: a busy TSS is #GP, a limit below 67H #TS (25.4.2)', () => {
    expectFault(exitOf(gdt, 'guest_insn: jmp 0x48:0\nguest_next:'), 13);
    expectFault(exitOf([...gdt, `mov word [${GDT_BASE + 0x38}], 0x60`], 'guest_insn: jmp 0x38:0\nguest_next:'), 10);
  });
});

describe('VM-entry controls of this slice', () => {
  it('the CR3-load/store exiting pair is must-be-1 in the plain MSR and may be 0 by the TRUE MSR', () => {
    const cr3 = BigInt(PROC_CR3_LOAD_EXITING | PROC_CR3_STORE_EXITING);
    expect(controlMsr(PROC, false) & cr3).toBe(cr3);
    expect(controlMsr(PROC, true) & cr3).toBe(0n);
  });
  it('a CR3-target count above 4 is VMfailValid(7)', () => {
    const r = run('pm32', program([w(0x400a, 5)], 'guest_insn: nop\nguest_next:', '', 'vmlaunch\npushfd\npop esi'), vmxReady);
    expect(r.cpu.regs[ESI] & 0x40).toBe(0x40);
    expect(vmcsRead(r.cpu, 0x4400)).toBe(7);
  });
});

describe('debug traps and VM exits (26 introduction, 27.3.4)', () => {
  const G_RFLAGS = 0x6820, G_INTR = 0x4824, G_PENDING = 0x6822, INTR_INFO = 0x4404, BITMAP = 0x4004;
  const DB_INTERCEPTED = w(BITMAP, 1 << 1), BS = 0x4000, ENABLED_BP = 0x1000, MOV_SS = 2;
  const setTf = 'pushfd\nor dword [esp], 0x100\npopfd';
  /** Guest DR7 `dr7` (with "load debug controls") and DR0 = `dr0` (DR0-DR3 are not switched). */
  const breakpoint = (dr0: number | string, dr7: number): string[] => [`mov eax, ${dr0}\nmov dr0, eax`, w(0x681a, dr7),
    'mov ebx, 0x4012\nvmread eax, ebx\nor eax, 4\nvmwrite ebx, eax'];
  const WRITE_DWORD_AT_OUT = 0x000d0401, READ_BYTE = 0x00030401;
  interface Traced extends Harness { hostExceptions: number[]; field: (encoding: number) => number }
  /**
   * Runs the host program to its end on the run loop (the per-instruction path that delivers
   * debug traps), recording every exception raised outside the guest: none may reach the host.
   */
  function traced(writes: string[], guest: string, host = '', entry = 'vmlaunch'): Traced {
    const code = asm(`${program(writes, guest, host, entry)}\njmp $`, 32, CODE_BASE);
    const h = makeCpu('pm32', code);
    vmxReady(h);
    const hostExceptions: number[] = [];
    h.cpu.events = { onException: (vector) => { if (!h.cpu.vmx.nonRoot) hostExceptions.push(vector); } };
    const end = CODE_BASE + code.length - 2;
    for (let n = 0; n < 1000 && h.cpu.eip !== end && hostExceptions.length === 0; n++) h.cpu.run(h.cpu.cycles + 50);
    return { ...h, hostExceptions, field: (encoding) => vmcsRead(h.cpu, encoding) >>> 0 };
  }
  /** Reason, guest RIP as 'insn'/'next'/address, saved RFLAGS, interruptibility, pending debug exceptions. */
  const saved = (t: Traced): Array<number | string> => {
    const rip = t.field(GUEST_RIP);
    return [t.field(REASON), rip === rd(t, LABEL_INSN) ? 'insn' : rip === rd(t, LABEL_NEXT) ? 'next' : rip,
      t.field(G_RFLAGS), t.field(G_INTR), t.field(G_PENDING)];
  };
  /** Host code: once, resume the guest after the exiting instruction (RIP + instruction length). */
  const RESUME_AFTER = `cmp dword [${OUT}], 0
    jne resumed
    mov dword [${OUT}], 1
    ${ADVANCE_GUEST_RIP}
    vmresume
  resumed:`;

  it('TF = 1: an exiting CPUID takes no single-step trap (pending debug exceptions 0, TF saved), none reaches the host', () => {
    const t = traced([DB_INTERCEPTED], `${setTf}\nguest_insn: cpuid\nguest_next:`);
    expect(saved(t)).toEqual([10, 'insn', 0x102, 0, 0]);
    expect(t.hostExceptions).toEqual([]);
  });
  it('resumed after the CPUID, the next instruction single-steps: a #DB exit (BS) after it', () => {
    const t = traced([DB_INTERCEPTED], `${setTf}\ncpuid\nguest_insn: nop\nguest_next:`, RESUME_AFTER);
    expect(saved(t)).toEqual([0, 'next', 0x102, 0, 0]);
    expect([t.field(INTR_INFO), t.field(QUALIFICATION)]).toEqual([0x80000301, BS]);
    expect(t.hostExceptions).toEqual([]);
  });
  it('a data breakpoint hit by the instruction before an exiting one: its #DB comes first, at the exiting instruction', () => {
    const t = traced([DB_INTERCEPTED, ...breakpoint(OUT, WRITE_DWORD_AT_OUT)], `mov [${OUT}], eax\nguest_insn: cpuid\nguest_next:`);
    expect(saved(t)).toEqual([0, 'insn', 2, 0, 0]);
    expect([t.field(INTR_INFO), t.field(QUALIFICATION)]).toEqual([0x80000301, 1]);
  });
  it('MOV SS, then an exiting CPUID: blocking by MOV SS and the traps it holds back are saved (BS with TF = 1)', () => {
    const t = traced([DB_INTERCEPTED], `${setTf}\nmov ss, [g_ss]\nguest_insn: cpuid\nguest_next:\njmp $\ng_ss: dw 0x10`);
    expect(saved(t)).toEqual([10, 'insn', 0x102, MOV_SS, BS]);
    expect(t.hostExceptions).toEqual([]);
  });
  it('MOV SS reading a data breakpoint, then an exiting CPUID: B0 and "enabled breakpoint" saved', () => {
    const t = traced([DB_INTERCEPTED, ...breakpoint('g_ss', READ_BYTE)], 'mov ss, [g_ss]\nguest_insn: cpuid\nguest_next:\njmp $\ng_ss: dw 0x10');
    expect(saved(t)).toEqual([10, 'insn', 2, MOV_SS, ENABLED_BP | 1]);
  });
  it('an exiting instruction that read a data breakpoint (LMSW m16) did not complete: pending debug exceptions 0', () => {
    const t = traced([DB_INTERCEPTED, w(0x6000, 8), w(0x6004, 0), `mov word [${OUT}], 0xb`, ...breakpoint(OUT, READ_BYTE)],
      `guest_insn: lmsw [${OUT}]\nguest_next:`);
    expect(saved(t)).toEqual([28, 'insn', 2, 0, 0]);
    expect(t.hostExceptions).toEqual([]);
  });
  it('VMLAUNCH with TF = 1: no single-step trap after a successful entry nor after a VM-entry failure; VMfail traps', () => {
    const launchTf = `${setTf}\nvmlaunch`;
    const entered = traced([DB_INTERCEPTED], 'guest_insn: cpuid\nguest_next:', '', launchTf);
    expect(saved(entered)).toEqual([10, 'insn', 2, 0, 0]);
    expect(entered.hostExceptions).toEqual([]);
    const failed = traced([w(G_RFLAGS, 0)], 'guest_insn: cpuid\nguest_next:', '', launchTf);
    expect(failed.field(REASON)).toBe(ENTRY_FAILURE_GUEST_STATE >>> 0);
    expect([rd(failed, PATH), failed.hostExceptions]).toEqual([HOST_RESUMED, []]);
    const vmfail = traced([], 'guest_insn: cpuid\nguest_next:', '', `${setTf}\nvmresume`);
    expect([vmfail.field(0x4400), vmfail.hostExceptions[0]]).toEqual([5, 1]); // #DB after VMRESUME (VMfailValid 5)
  });
  it('a TPR-below-threshold exit overtakes the debug traps of the TPR write: saved as pending debug exceptions', () => {
    const APIC_PAGE = 0x60000, VAPIC = 0x61000;
    const tpr = [...proc2(PROC2_VIRTUALIZE_APIC, PROC_TPR_SHADOW), w(0x2014, APIC_PAGE), w(0x2015, 0), w(0x2012, VAPIC),
      w(0x2013, 0), w(0x401c, 3), `mov dword [${VAPIC + 0x80}], 0x50`, DB_INTERCEPTED];
    const write = `guest_insn: mov byte [${APIC_PAGE + 0x80}], 0x20\nguest_next:`;
    expect(saved(traced(tpr, `${setTf}\n${write}`))).toEqual([43, 'next', 0x102, 0, BS]);
    expect(saved(traced([...tpr, ...breakpoint(APIC_PAGE + 0x80, 0x00010401)], write))).toEqual([43, 'next', 2, 0, ENABLED_BP | 1]);
  });
});

// ---------------------------------------------------------------- the cases as ROMs, against Bochs

/** A ROM case: VMCS set-up after FLAT_GUEST, the guest code (a VMCALL follows), what the host prints. */
interface RomCase {
  setup: string[];
  guest: string;
  /** Bits of the instruction-information field to print (those the SDM defines for the case). */
  info?: number;
  /** Print the guest-linear-address field. */
  linear?: boolean;
  /** Host code after the exit was printed (prints more). */
  after?: string;
  /** VMLAUNCH with RFLAGS.TF = 1. */
  hostTf?: boolean;
  /** What the host prints of the case (numbers, printed as 8 hex digits). */
  out: number[];
}
const OR = (field: number, bits: number): string => `OR 0x${field.toString(16)}, 0x${(bits >>> 0).toString(16)}`;
const W = (field: number, value: number | string): string => `W 0x${field.toString(16)}, ${value}`;
const ROM_OUT = 0x41000;
const hex8 = (v: number): string => (v >>> 0).toString(16).toUpperCase().padStart(8, '0');

/** What the host prints of an exit: reason, qualification and instruction length (then the masked
 * instruction information and the guest-linear address where the case asks). */
const EXIT_PRINT = `  PRINT 0x4402
  PRINT 0x6400
  PRINT 0x440c
  cmp dword [SHOW], 0
  je .linear
  mov ebx, 0x440e
  vmread eax, ebx
  and eax, [SHOW]
  call hex
.linear:
  cmp dword [LIN], 0
  je .next
  PRINT 0x640a
.next:`;

/**
 * The ROM: per case FLAT_GUEST (interruptibility and pending debug exceptions 0), the set-up, VMLAUNCH of the guest (with TF = 1 where asked); the
 * host prints the exit (`print`) and goes on to the next case. RESUME in a case's `after` resumes
 * the guest after the exiting instruction, and the host goes on after it once the next exit is printed.
 */
function exitsRom(cases: RomCase[], print = EXIT_PRINT): string {
  const body = cases.map((c, k) => `  FLAT_GUEST
  W 0x4824, 0
  W 0x6822, 0
${c.setup.map((l) => `  ${l}`).join('\n')}
  mov dword [SHOW], 0x${((c.info ?? 0) >>> 0).toString(16)}
  mov dword [LIN], ${c.linear ? 1 : 0}
  mov dword [AT], g${k}
  mov dword [HOST_TF], ${c.hostTf ? 0x100 : 0}
  LAUNCH g${k}, NEXT
${c.after ?? ''}`).join('\n');
  const guests = cases.map((c, k) => `g${k}:\n${c.guest}\n  vmcall`).join('\n');
  return vmxRom(`%define SHOW 0x41100
%define LIN 0x41104
%define NEXT 0x41108
%define AT 0x4110c
%define HOST_TF 0x41110
%macro RESUME 0
  ${ADVANCE_GUEST_RIP}
  mov dword [NEXT], %%after
  vmresume
  mov eax, 0xfa11fa11
  call hex
  call err
%%after:
%endmacro
  FLAGS {vmxon [PTR]}
${body}
  jmp rom_done
; zero_bitmaps: clears the I/O bitmaps (50000H, 51000H) and the MSR bitmaps (52000H) through DS
; (after a VM exit ES is null and the host GDTR base is 0: no segment loads in the host)
zero_bitmaps:
  mov ecx, 0x3000 / 4
.zero:
  mov dword [0x50000 + ecx * 4 - 4], 0
  loop .zero
  ret
guest: ; FLAT_GUEST's start, replaced by each case's
${guests}
host:
${print}
  jmp [NEXT]
rom_done:
`);
}

/** Guest GDT entries for the task-switch cases (the ROM's guest GDT is at 1000H). */
const ROM_TASKS = [`mov dword [0x1038], 0x31000067`, `mov dword [0x103c], 0x8900`, `mov dword [0x1040], 0x00380000`,
  `mov dword [0x1044], 0x8500`, `mov dword [0x1048], 0x32000067`, `mov dword [0x104c], 0x8b00`, W(0x4810, 0x4f)];
/** Instruction-information bits defined for a memory operand with a base and no index (scaling, Reg1 undefined). */
const INFO_BASE_ONLY = 0xffc38780 | 0, INFO_REGISTER_FORM = 0xf0000478 | 0;

/** The I/O-bitmap set-up of the ROM cases: port 80H (bitmap A) exits. */
const ROM_IO_BITMAPS = [OR(0x4002, PROC_IO_BITMAPS), W(0x2000, 0x50000), W(0x2002, 0x51000), 'call zero_bitmaps', 'mov byte [0x50010], 1'];
/** The MSR-bitmap set-up: reads of C0000080H (high read bitmap, byte 10H) and 1D9H (low, byte 3BH bit 1) exit. */
const ROM_MSR_BITMAPS = [OR(0x4002, PROC_MSR_BITMAPS), W(0x2004, 0x52000), 'call zero_bitmaps', 'mov byte [0x52410], 1', 'mov byte [0x5203b], 2'];
/** VMCALL's exit (18, length 3): the instruction under test did not exit. */
const RAN = [VMCALL, 0, 3];

const PRIMARY_CASES: RomCase[] = [
  { setup: [], guest: '  invd', out: [13, 0, 2] },
  { setup: [OR(0x4002, PROC_INVLPG_EXITING)], guest: '  mov ebx, 0x1234\n  invlpg [ebx+0x10]', out: [14, 0x1244, 4] },
  { setup: [OR(0x4002, PROC_RDPMC_EXITING)], guest: '  xor ecx, ecx\n  rdpmc', out: [15, 0, 2] },
  { setup: [OR(0x4002, PROC_RDTSC_EXITING)], guest: '  rdtsc', out: [16, 0, 2] },
  { setup: [OR(0x4002, PROC_TSC_OFFSETTING), W(0x2010, 0), W(0x2011, 0x12345678)],
    guest: `  rdtsc\n  mov [${ROM_OUT}], edx`, after: `  mov eax, [${ROM_OUT}]\n  call hex`, out: [...RAN, 0x12345678] },
  { setup: [W(0x6000, 8), W(0x6004, 0)], guest: '  mov ecx, cr0\n  or ecx, 8\n  mov cr0, ecx', out: [28, 0x100, 3] },
  { setup: [W(0x6000, 8), W(0x6004, 8)], guest: `  mov eax, cr0\n  mov [${ROM_OUT}], eax`,
    after: `  mov eax, [${ROM_OUT}]\n  and eax, 8\n  call hex`, out: [...RAN, 8] },
  { setup: [W(0x6002, 0x10), W(0x6006, 0)], guest: '  mov ebx, cr4\n  or ebx, 0x10\n  mov cr4, ebx', out: [28, 0x304, 3] },
  { setup: [OR(0x4002, PROC_CR3_LOAD_EXITING)], guest: '  mov edx, cr3\n  mov cr3, edx', out: [28, 0x203, 3] },
  { setup: [OR(0x4002, PROC_CR3_LOAD_EXITING), W(0x400a, 2), 'mov eax, cr3', 'W 0x600a, eax'], guest: '  mov edx, cr3\n  mov cr3, edx',
    out: RAN },
  { setup: [OR(0x4002, PROC_CR3_STORE_EXITING)], guest: '  mov esi, cr3', out: [28, 0x613, 3] },
  { setup: [W(0x6000, 8), W(0x6004, 8)], guest: '  clts', out: [28, 0x20, 2] },
  { setup: [W(0x6000, 2), W(0x6004, 0)], guest: '  mov ax, 3\n  lmsw ax', out: [28, 0x30030, 3] },
  { setup: [W(0x6000, 8), W(0x6004, 0)], guest: `  mov word [${ROM_OUT}], 0xb\n  mov ebx, ${ROM_OUT - 4}\n  lmsw [ebx+4]`, linear: true,
    out: [28, 0xb0070, 4, ROM_OUT] },
  { setup: [OR(0x4002, PROC_MOV_DR_EXITING)], guest: '  mov dr7, eax', out: [29, 0x007, 3] },
  { setup: [OR(0x4002, PROC_MOV_DR_EXITING)], guest: '  mov ebx, dr6', out: [29, 0x316, 3] },
  { setup: [OR(0x4002, PROC_UNCOND_IO_EXITING)], guest: '  out 0x80, al', out: [30, 0x800040, 2] },
  { setup: [OR(0x4002, PROC_UNCOND_IO_EXITING)], guest: '  mov dx, 0x3f8\n  in eax, dx', out: [30, 0x3f8000b, 1] },
  { setup: [OR(0x4002, PROC_UNCOND_IO_EXITING)], guest: '  mov dx, 0x1234\n  mov edi, 0x5000\n  mov ecx, 2\n  rep insw', linear: true,
    out: [30, 0x12340039, 3, 0x5000] },
  { setup: [OR(0x4002, PROC_UNCOND_IO_EXITING), W(0x6808 + 6, 0x100)], guest: '  mov dx, 0x80\n  mov esi, 0x6000\n  fs outsb', linear: true,
    out: [30, 0x800010, 2, 0x6100] },
  { setup: [OR(0x4002, PROC_UNCOND_IO_EXITING)], guest: '  mov dx, 0x80\n  mov esi, 0x6000\n  xor ecx, ecx\n  rep outsb', linear: true,
    out: [30, 0x800030, 2, 0x6000] },
  { setup: ROM_IO_BITMAPS, guest: '  mov dx, 0x80\n  mov edi, 0x5000\n  xor ecx, ecx\n  rep insb', linear: true, out: [30, 0x800038, 2, 0x5000] },
  ...([['out 0x80, al', [30, 0x800040, 2]], ['out 0x81, al', RAN], ['mov dx, 0x7fff\n  in ax, dx', [30, 0x7fff0009, 2]],
    ['mov dx, 0xffff\n  in al, dx', RAN], ['mov dx, 0xffff\n  in ax, dx', [30, 0xffff0009, 2]]] as Array<[string, number[]]>)
    .map(([g, out]) => ({ setup: [...ROM_IO_BITMAPS, 'mov byte [0x51000], 1'], guest: `  ${g}`, out })),
  { setup: [], guest: '  mov ecx, 0x174\n  rdmsr', out: [31, 0, 2] },
  { setup: [], guest: '  mov ecx, 0x12345\n  wrmsr', out: [32, 0, 2] },
  ...([[0x174, RAN], [0xc0000080, [31, 0, 2]], [0x2000, [31, 0, 2]], [0x1d9, [31, 0, 2]]] as Array<[number, number[]]>)
    .map(([msr, out]) => ({ setup: ROM_MSR_BITMAPS, guest: `  mov ecx, 0x${msr.toString(16)}\n  rdmsr`, out })),
  { setup: [OR(0x4002, PROC_MWAIT_EXITING)], guest: '  xor ecx, ecx\n  mwait', out: [36, 0, 3] },
  { setup: [OR(0x4002, PROC_MWAIT_EXITING)], guest: '  mov eax, 0x5000\n  xor ecx, ecx\n  xor edx, edx\n  monitor\n  mwait', out: [36, 1, 3] },
  { setup: [OR(0x4002, PROC_MONITOR_EXITING)], guest: '  mov eax, 0x5000\n  xor ecx, ecx\n  xor edx, edx\n  monitor', out: [39, 0, 3] },
  { setup: [OR(0x4002, PROC_PAUSE_EXITING)], guest: '  pause', out: [40, 0, 2] },
  { setup: [], guest: '  mov ebx, 0x5000\n  vmread [ebx+0x20], ecx', info: INFO_BASE_ONLY, out: [23, 0x20, 4, 0x11c18080] },
  { setup: [], guest: '  vmwrite edx, eax', info: INFO_REGISTER_FORM, out: [25, 0, 3, 0x20000400] },
  { setup: [], guest: '  mov esi, 0x5000\n  mov ecx, 1\n  vmptrld [esi+ecx*8-8]', info: 0x0fc78783, out: [21, -8, 5, 0x03058083] },
  { setup: [], guest: `  vmclear [0x${(DATA + 8).toString(16)}]`, info: 0x0fc78780, out: [19, DATA + 8, 8, 0x08418080] },
  { setup: ROM_TASKS, guest: '  call 0x38:0', out: [9, 0x38, 7] },
  { setup: ROM_TASKS, guest: '  jmp 0x40:0', out: [9, 0x80000038, 7] },
  { setup: [...ROM_TASKS, 'mov word [0], 0x48'], guest: '  pushfd\n  or dword [esp], 0x4000\n  popfd\n  iretd', out: [9, 0x40000048, 1] },
  { setup: [...ROM_TASKS, W(0x6818, 0x2000), W(0x4812, 0x7ff), 'mov dword [0x2200], 0x00380000', 'mov dword [0x2204], 0x8500'],
    guest: '  int 0x40', out: [9, 0xc0000038, 2] },
];

/**
 * The transcript of a ROM of `cases`: VMXON's flags, what the host prints of each case (reason,
 * qualification and length, with VMCALL's 12H where the instruction does not exit; the masked
 * instruction information, the guest-linear address and what `after` prints where the case asks),
 * VMXOFF's flags. Bochs prints the same for the primary cases on its Core Duo model.
 */
const romTranscript = (cases: RomCase[]): string[] => ['00000000', ...cases.flatMap((c) => c.out.map(hex8)), '00000000'];
compareOnRom('instruction-caused VM exits on a ROM (Core Duo controls)', exitsRom(PRIMARY_CASES), romTranscript(PRIMARY_CASES));

/**
 * The secondary controls (Bochs's Westmere model: its Core Duo has none) and INVEPT/INVVPID.
 * `sizeBit`: bit 11 (operand size 32) of the LGDT/LIDT/SGDT/SIDT information, which Bochs leaves 0.
 */
const secondaryCases = (sizeBit: number): RomCase[] => [
  { setup: [OR(0x4002, PROC_SECONDARY), W(0x401e, PROC2_WBINVD_EXITING)], guest: '  wbinvd', out: [54, 0, 2] },
  { setup: [W(0x401e, PROC2_WBINVD_EXITING)], guest: '  wbinvd', out: RAN },
  ...([['mov ebx, 0x5000\n  sgdt [ebx+8]', [46, 8, 4, 0x01c18080 | sizeBit]],
    ['xor eax, eax\n  xor ecx, ecx\n  lidt [eax+ecx*4-0x100]', [46, -0x100, 8, 0x30058080 | sizeBit]],
    ['xor ebp, ebp\n  xor esi, esi\n  o16 lgdt [bp+si+2]', [46, 2, 6, 0x22990000]],
    [`sidt [es:${ROM_OUT}]`, [46, ROM_OUT, 8, 0x18400080 | sizeBit]]] as Array<[string, number[]]>).map(([g, out]) => ({
    setup: [OR(0x4002, PROC_SECONDARY), W(0x401e, PROC2_DESC_TABLE_EXITING)], guest: `  ${g}`, info: 0x3fff8f80, out })),
  { setup: [OR(0x4002, PROC_SECONDARY), W(0x401e, PROC2_DESC_TABLE_EXITING)], guest: '  sldt dx', info: 0x30000478, out: [47, 0, 4, 0x410] },
  { setup: [OR(0x4002, PROC_SECONDARY), W(0x401e, PROC2_DESC_TABLE_EXITING)], guest: '  mov esi, 0x5000\n  ltr [esi-2]', info: 0x3fc38780,
    out: [47, -2, 4, 0x33418080] },
  { setup: [OR(0x4002, PROC_SECONDARY), W(0x401e, PROC2_DESC_TABLE_EXITING)], guest: '  str eax', info: 0x30000478, out: [47, 0, 3, 0x10000400] },
  { setup: [], guest: '  mov edi, 0x5000\n  mov edx, 1\n  invvpid edx, [edi]', info: INFO_BASE_ONLY & ~0x400, out: [53, 0, 5, 0x23c18080] },
  { setup: [], guest: '  mov esi, 0x5000\n  mov ecx, 1\n  invept eax, [esi+ecx*2]', info: 0xffc78783 | 0, out: [50, 0, 6, 0x03058081] },
];
// Bochs reports no operand size in the GDTR/IDTR instruction information; SDM Table 27-10 puts
// it in bit 11 (docs/VMX.md, "Differences from Bochs").
compareOnRom('secondary-control exits and INVEPT/INVVPID on a ROM', exitsRom(secondaryCases(0x800)), romTranscript(secondaryCases(0x800)),
  { title: 'Bochs (Westmere model) agrees but for the GDTR/IDTR operand-size bit', expected: romTranscript(secondaryCases(0)),
    model: 'corei5_arrandale_m520' });

/**
 * Debug traps around instruction-caused exits (the unit cases of "debug traps and VM exits"): the
 * host prints reason, qualification, interruption information, the guest RIP as an offset from
 * the case's guest label, and the saved RFLAGS, interruptibility and pending debug exceptions.
 */
const DEBUG_PRINT = `  PRINT 0x4402
  PRINT 0x6400
  PRINT 0x4404
  mov ebx, 0x681e
  vmread eax, ebx
  sub eax, [AT]
  call hex
  PRINT 0x6820
  PRINT 0x4824
  PRINT 0x6822`;
/** Guest DR7 `dr7` with "load debug controls", DR0 `dr0` (not switched by VM entry). */
const romBreakpoint = (dr0: number, dr7: number): string[] => [`mov eax, 0x${dr0.toString(16)}`, 'mov dr0, eax',
  W(0x681a, `0x${dr7.toString(16)}`), OR(0x4012, 4), W(0x2802, 0), W(0x2803, 0)];
const ROM_SS = ROM_OUT + 0x10, DB_INTERCEPTED = W(0x4004, 2), SET_TF = '  pushfd\n  or dword [esp], 0x100\n  popfd';
const DEBUG_CASES: RomCase[] = [
  // TF: the exiting CPUID takes no single-step trap; resumed after it, the NOP single-steps
  { setup: [DB_INTERCEPTED], guest: `${SET_TF}\n  cpuid\n  nop`, after: '  RESUME',
    out: [10, 0, 0, 9, 0x102, 0, 0, 0, 0x4000, 0x80000301, 12, 0x102, 0, 0] },
  // a data breakpoint before CPUID: #DB first, at CPUID
  { setup: [DB_INTERCEPTED, ...romBreakpoint(ROM_OUT, 0x000d0401)], guest: `  mov [${ROM_OUT}], eax\n  cpuid`,
    out: [0, 1, 0x80000301, 5, 2, 0, 0] },
  // TF, MOV SS, CPUID: MOV SS blocking, BS pending
  { setup: [DB_INTERCEPTED, `mov word [${ROM_SS}], 0x10`], guest: `${SET_TF}\n  mov ss, [${ROM_SS}]\n  cpuid`,
    out: [10, 0, 0, 15, 0x102, 2, 0x4000] },
  // MOV SS reading a data breakpoint, CPUID: B0, enabled breakpoint
  { setup: [DB_INTERCEPTED, `mov word [${ROM_SS}], 0x10`, ...romBreakpoint(ROM_SS, 0x00030401)], guest: `  mov ss, [${ROM_SS}]\n  cpuid`,
    out: [10, 0, 0, 6, 2, 2, 0x1001] },
  // LMSW reads a data breakpoint and exits: nothing pending
  { setup: [DB_INTERCEPTED, W(0x6000, 8), W(0x6004, 0), `mov word [${ROM_OUT}], 0xb`, ...romBreakpoint(ROM_OUT, 0x00030401)],
    guest: `  lmsw [${ROM_OUT}]`, out: [28, 0xb0070, 0, 0, 2, 0, 0] },
  // VMLAUNCH with TF = 1: no trap, the guest's CPUID exits
  { setup: [DB_INTERCEPTED], guest: '  cpuid', hostTf: true, out: [10, 0, 0, 0, 2, 0, 0] },
  // a VM-entry failure with TF = 1: no trap in the host
  { setup: [W(0x6820, 0)], guest: '  cpuid', hostTf: true, out: [0x80000021, 0, 0, 0, 0, 0, 0] },
];
compareOnRom('debug traps and instruction-caused exits on a ROM (Core Duo)', exitsRom(DEBUG_CASES, DEBUG_PRINT), romTranscript(DEBUG_CASES));

/** The TPR-below-threshold exit after a TPR write that hit debug traps (secondary controls: Bochs's Westmere model). */
const TPR_SHADOW_SETUP = [OR(0x4002, PROC_SECONDARY | PROC_TPR_SHADOW), W(0x401e, PROC2_VIRTUALIZE_APIC), W(0x2014, 0x60000),
  W(0x2015, 0), W(0x2012, 0x61000), W(0x2013, 0), W(0x401c, 3), 'mov dword [0x61080], 0x50', DB_INTERCEPTED];
const TPR_WRITE = '  mov byte [0x60080], 0x20';
const TPR_DEBUG_CASES: RomCase[] = [
  // TF: the exit after the write, BS pending
  { setup: TPR_SHADOW_SETUP, guest: `${SET_TF}\n${TPR_WRITE}`, out: [43, 0, 0, 16, 0x102, 0, 0x4000] },
  // a data breakpoint on the write: B0, enabled breakpoint pending
  { setup: [...TPR_SHADOW_SETUP, ...romBreakpoint(0x60080, 0x00010401)], guest: TPR_WRITE, out: [43, 0, 0, 7, 2, 0, 0x1001] },
];
compareOnRom('TPR-below-threshold exits overtaking debug traps on a ROM', exitsRom(TPR_DEBUG_CASES, DEBUG_PRINT),
  romTranscript(TPR_DEBUG_CASES), { title: 'Bochs (Westmere model) agrees', expected: romTranscript(TPR_DEBUG_CASES), model: 'corei5_arrandale_m520' });
