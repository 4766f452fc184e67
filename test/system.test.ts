// System instructions: MOV CR/DR rules, LMSW/SMSW/CLTS, CPUID leaves, MSRs, RDTSC/RDPMC rules,
// SYSENTER/SYSEXIT, the FPU-less escapes, MONITOR/MWAIT, the #UD forms, and the POPF/IRET/CLI/STI
// flag rules per CPL and IOPL.

import { describe, expect, it } from 'vitest';
import {
  AC, CR0_EM, CR0_MP, CR0_PE, CR0_TS, CR4_DE, CR4_PCE, CR4_PVI, CR4_TSD, EXC_DB, EXC_GP, EXC_NM, EXC_UD,
  ID, IF, IOPL, NT, RF, TF, VIF, VIP, VM,
} from '../src/cpu/constants.js';
import { CPUID_SIGNATURE } from '../src/cpu/cpuid.js';
import { asm, CODE_BASE, makeCpu, runToHlt, SEL, STACK_TOP, type Harness } from './helpers/harness.js';
import { dword, enterRing3, gate, HANDLER, record, setupTss, withHandler } from './helpers/idt.js';
import { compareOnRom, GDT_FLAT_R0, GDT_FLAT_R3, GDT_TSS, ROM_HEX, romEnd, romFlatSegments, romIretToRing3, romLoadTss, romPrint, romShutdown, romStart } from './helpers/rom.js';

interface Opts { ring3?: boolean; cr4?: number; eflags?: number; setup?: (h: Harness) => void }
/** Runs 32-bit `code` (ending in HLT, which faults at ring 3) and returns the CPU and its exceptions. */
function exec(code: string, o: Opts = {}): { h: Harness; ex: Array<[number, number]> } {
  const h = withHandler(`${code}\nhlt`);
  for (const v of [EXC_GP, EXC_UD, EXC_NM, EXC_DB]) gate(h, v, SEL.code32, HANDLER);
  setupTss(h, 0x8000);
  h.cpu.cr4 = o.cr4 ?? 0;
  if (o.eflags !== undefined) h.cpu.setEflags(o.eflags | 2);
  if (o.ring3) enterRing3(h.cpu, CODE_BASE, 0x7000);
  o.setup?.(h);
  const r = record(h.cpu);
  runToHlt(h.cpu);
  return { h, ex: r.exceptions };
}
/** The first exception `code` raises, or null. */
function first(code: string, o: Opts = {}): [number, number] | null {
  const { ex } = exec(code, o);
  return ex.length ? ex[0] : null;
}
const GP0: [number, number] = [EXC_GP, 0];
const UD: [number, number] = [EXC_UD, 0];
const NM: [number, number] = [EXC_NM, 0];

describe('MOV to/from control registers', () => {
  it('needs CPL 0', () => {
    expect(first('mov eax, cr0', { ring3: true })).toEqual(GP0);
    expect(first('mov cr3, eax', { ring3: true })).toEqual(GP0);
  });
  it('CR0: PG without PE and NW without CD are #GP(0); undefined bits are ignored, ET reads 1', () => {
    expect(first('mov eax, 0x80000000\nmov cr0, eax')).toEqual(GP0);
    expect(first('mov eax, 0x20000001\nmov cr0, eax')).toEqual(GP0);
    const { h, ex } = exec('mov eax, 0x0000ffc3\nmov cr0, eax\nmov ebx, cr0');
    expect(ex).toEqual([]);
    expect(h.cpu.regs[3] >>> 0).toBe(0x00000013); // PE, MP and ET
  });
  it('CR4: unsupported bits (PAE, MCE, OSFXSR) are #GP(0); VMXE only where the machine offers VMX', () => {
    for (const bit of [5, 6, 9, 14]) expect(first(`mov eax, ${1 << bit}\nmov cr4, eax`)).toEqual(GP0);
    expect(first('mov eax, 0x2000\nmov cr4, eax', { setup: (s) => { s.cpu.vmx.supported = false; } })).toEqual(GP0);
    const { h, ex } = exec('mov eax, 0x219f\nmov cr4, eax\nmov ebx, cr4');
    expect(ex).toEqual([]);
    expect(h.cpu.regs[3]).toBe(0x219f);
  });
  it('CR2 and CR3 hold what is written', () => {
    const { h } = exec('mov eax, 0x12345678\nmov cr2, eax\nmov eax, 0x5000\nmov cr3, eax\nmov ebx, cr2\nmov ecx, cr3');
    expect(h.cpu.regs[3]).toBe(0x12345678);
    expect(h.cpu.regs[1]).toBe(0x5000);
  });
  it('CR1 and CR5-CR7 are #UD', () => {
    expect(first('db 0x0f, 0x20, 0xc8')).toEqual(UD); // mov eax, cr1
    expect(first('db 0x0f, 0x22, 0xe8')).toEqual(UD); // mov cr5, eax
  });
  it('LMSW loads PE/MP/EM/TS but cannot clear PE; CLTS clears TS; SMSW reads CR0', () => {
    const { h, ex } = exec('mov ax, 0xe\nlmsw ax\nsmsw ebx\nclts\nsmsw ecx');
    expect(ex).toEqual([]);
    expect(h.cpu.regs[3] & 0xf).toBe(CR0_PE | CR0_MP | CR0_EM | CR0_TS);
    expect(h.cpu.regs[1] & 0xf).toBe(CR0_PE | CR0_MP | CR0_EM);
    expect(first('lmsw ax', { ring3: true })).toEqual(GP0);
    const smsw = exec('smsw eax', { ring3: true });
    expect(smsw.ex).toEqual([GP0]); // SMSW is not privileged: only the final HLT faults
    expect(dword(smsw.h, smsw.h.cpu.regs[4] + 4)).toBe(CODE_BASE + 3);
  });
});

describe('MOV to/from debug registers', () => {
  it('DR4/DR5 alias DR6/DR7 unless CR4.DE, which makes them #UD', () => {
    const { h } = exec('mov eax, dr4\nmov ebx, dr5');
    expect(h.cpu.regs[0] >>> 0).toBe(0xffff0ff0);
    expect(h.cpu.regs[3]).toBe(0x400);
    expect(first('mov eax, dr5', { cr4: CR4_DE })).toEqual(UD);
  });
  it('DR6 and DR7 fixed bits', () => {
    const { h } = exec('xor eax, eax\nmov dr6, eax\nmov dr7, eax\nmov ebx, dr6\nmov ecx, dr7');
    expect(h.cpu.regs[3] >>> 0).toBe(0xffff0ff0);
    expect(h.cpu.regs[1]).toBe(0x400);
  });
  it('CPL > 0 is #GP(0); DR7.GD makes any access #DB with DR6.BD, clearing GD', () => {
    expect(first('mov eax, dr0', { ring3: true })).toEqual(GP0);
    const { h, ex } = exec('mov eax, 0x2400\nmov dr7, eax\nmov eax, dr0');
    expect(ex).toEqual([[EXC_DB, 0]]);
    expect(h.cpu.dr[6] & (1 << 13)).toBe(1 << 13);
    expect(h.cpu.dr[7] & (1 << 13)).toBe(0);
    expect(dword(h, h.cpu.regs[4])).toBe(CODE_BASE + 8); // a fault: EIP of the MOV
  });
});

describe('CPUID', () => {
  function cpuid(leaf: number, sub = 0, setup?: (h: Harness) => void): number[] {
    const { h } = exec(`mov eax, ${leaf}\nmov ecx, ${sub}\ncpuid`, { setup });
    return [0, 3, 1, 2].map((r) => h.cpu.regs[r] >>> 0);
  }
  const text = (regs: number[]) => Buffer.from(new Uint32Array(regs).buffer).toString('latin1');
  it('leaf 0: highest leaf 0Ah, GenuineIntel', () => {
    const [a, b, c, d] = cpuid(0);
    expect(a).toBe(0xa);
    expect(text([b, d, c])).toBe('GenuineIntel');
  });
  it('leaf 1: Core Duo signature and exactly the implemented features', () => {
    const [a, b, c, d] = cpuid(1);
    expect(a).toBe(CPUID_SIGNATURE);
    expect(b).toBe(0x10000);
    expect(c).toBe((1 << 3) | (1 << 5)); // MONITOR, VMX; no SSE3
    expect(cpuid(1, 0, (h) => { h.cpu.vmx.supported = false; })[2]).toBe(1 << 3); // a machine without VMX
    expect(d).toBe(0x1bb3e); // VME DE PSE TSC MSR CX8 APIC SEP MTRR PGE CMOV PAT; no FPU
  });
  it('leaf 2 descriptors, leaf 4 caches, leaf 5 monitor sizes', () => {
    expect(cpuid(2)).toEqual([0x02b3b001, 0xf0, 0, 0x2c04307d]);
    expect(cpuid(4, 0)).toEqual([0x121, 0x01c0003f, 0x3f, 0]);
    expect(cpuid(4, 2)).toEqual([0x143, 0x01c0003f, 0xfff, 0]);
    expect(cpuid(4, 3)).toEqual([0, 0, 0, 0]);
    expect(cpuid(5)).toEqual([64, 64, 3, 0]);
  });
  it('extended leaves and the brand string', () => {
    expect(cpuid(0x80000000)[0]).toBe(0x80000008);
    const brand = [2, 3, 4].flatMap((k) => cpuid(0x80000000 + k));
    expect(text(brand).replace(/\0+$/, '')).toBe('Genuine Intel(R) CPU           T2400  @ 1.83GHz');
    expect(cpuid(0x80000008)[0]).toBe(0x2020);
  });
  it('leaves beyond the highest answer with the highest basic leaf', () => {
    expect(cpuid(0x20)).toEqual(cpuid(0xa));
    expect(cpuid(0x80000020)).toEqual(cpuid(0xa));
  });
  it('MISC_ENABLE limits the highest leaf to 2 and can turn MONITOR off', () => {
    const limited = (h: Harness) => { h.cpu.msrs.set(0x1a0, 0x400081n | (1n << 22n)); };
    expect(cpuid(0, 0, limited)[0]).toBe(2);
    expect(cpuid(4, 0, limited)).toEqual(cpuid(2));
    expect(cpuid(1, 0, (h) => { h.cpu.msrs.set(0x1a0, 0x1881n); })[2] & 8).toBe(0);
  });
});

describe('MSRs', () => {
  function rdmsr(index: number, setup?: (h: Harness) => void): { v: bigint; ex: Array<[number, number]> } {
    const { h, ex } = exec(`mov ecx, ${index}\nrdmsr`, { setup });
    return { v: (BigInt(h.cpu.regs[2] >>> 0) << 32n) | BigInt(h.cpu.regs[0] >>> 0), ex };
  }
  function wrmsr(index: number, v: bigint, then = ''): { h: Harness; ex: Array<[number, number]> } {
    return exec(`mov ecx, ${index}\nmov eax, ${Number(v & 0xffffffffn)}\nmov edx, ${Number(v >> 32n)}\nwrmsr\n${then}`);
  }
  it('unknown indices are #GP(0) for RDMSR and WRMSR; CPL 3 is #GP(0)', () => {
    expect(rdmsr(0x12345).ex).toEqual([GP0]);
    expect(rdmsr(0x179).ex).toEqual([GP0]); // no machine-check architecture
    expect(wrmsr(0xc0000080, 0n).ex).toEqual([GP0]); // no EFER on a 32-bit Core Duo
    expect(first('rdmsr', { ring3: true })).toEqual(GP0);
  });
  it('reset values: APIC_BASE, MTRRcap, PAT, MISC_ENABLE', () => {
    expect(rdmsr(0x1b).v).toBe(0xfee00900n);
    expect(rdmsr(0xfe).v).toBe(0x508n);
    expect(rdmsr(0x277).v).toBe(0x0007040600070406n);
    expect(rdmsr(0x1a0).v).toBe(0x41881n);
  });
  it('reserved bits and read-only MSRs are #GP(0)', () => {
    expect(wrmsr(0x1b, 0xfee00901n).ex).toEqual([GP0]);
    expect(wrmsr(0xfe, 0n).ex).toEqual([GP0]);
    expect(wrmsr(0x277, 0x0007040600070402n).ex).toEqual([GP0]); // type 2 is reserved
    expect(wrmsr(0x2ff, 0x100n).ex).toEqual([GP0]);
    expect(wrmsr(0x200, 0x2n).ex).toEqual([GP0]);
    expect(wrmsr(0x186, 1n << 32n).ex).toEqual([GP0]);
    expect(wrmsr(0x3a, 2n).ex).toEqual([GP0]);
  });
  it('writes read back: SYSENTER, MTRRs, FEATURE_CONTROL until locked', () => {
    expect(wrmsr(0x174, 0x10n, 'rdmsr').h.cpu.regs[0]).toBe(0x10);
    expect(wrmsr(0x201, 0xfff00800n, 'rdmsr').h.cpu.regs[0] >>> 0).toBe(0xfff00800);
    expect(wrmsr(0x250, 0x0606060606060606n, 'rdmsr').h.cpu.regs[2]).toBe(0x06060606);
    const { h, ex } = wrmsr(0x3a, 5n, 'mov eax, 4\nwrmsr');
    expect(ex).toEqual([GP0]);
    expect(h.cpu.msrs.get(0x3a)).toBe(5n);
  });
  it('the TSC: WRMSR sets it, RDTSC counts on from it', () => {
    const { h } = wrmsr(0x10, 0x100000000n, 'rdtsc');
    const now = BigInt(h.cpu.icount); // the harness TSC counts retired instructions
    const tsc = (BigInt(h.cpu.regs[2] >>> 0) << 32n) | BigInt(h.cpu.regs[0] >>> 0);
    expect(tsc > 0x100000000n && tsc <= 0x100000000n + now).toBe(true);
  });
  it('RDTSC with CR4.TSD is #GP(0) at CPL 3 only', () => {
    expect(first('rdtsc', { ring3: true, cr4: CR4_TSD })).toEqual(GP0);
    expect(exec('rdtsc', { cr4: CR4_TSD }).ex).toEqual([]);
    expect(exec('rdtsc\nhlt', { ring3: true }).ex).toEqual([GP0]); // the HLT, not RDTSC
    expect(exec('rdtsc\nhlt', { ring3: true }).h.cpu.eip).toBe(HANDLER + 1);
  });
  it('RDPMC: CR4.PCE rule at CPL 3, ECX 0-1 only; counters keep the low 32 bits sign-extended to 40', () => {
    expect(first('xor ecx, ecx\nrdpmc', { ring3: true })).toEqual(GP0);
    expect(exec('xor ecx, ecx\nrdpmc\nnop', { ring3: true, cr4: CR4_PCE }).h.cpu.eip).toBe(HANDLER + 1);
    expect(first('mov ecx, 2\nrdpmc')).toEqual(GP0);
    const { h } = wrmsr(0xc2, 0x80000000n, 'mov ecx, 1\nrdpmc');
    expect(h.cpu.regs[2]).toBe(0xff);
    expect(h.cpu.regs[0] >>> 0).toBe(0x80000000);
  });
});

describe('SYSENTER / SYSEXIT', () => {
  const setCs = (cs: number) => (h: Harness) => {
    h.cpu.msrs.set(0x174, BigInt(cs));
    h.cpu.msrs.set(0x175, 0x6000n);
    h.cpu.msrs.set(0x176, BigInt(HANDLER));
  };
  it('SYSENTER from ring 3 enters ring 0 flat at SYSENTER_EIP/ESP with IF cleared', () => {
    const { h, ex } = exec('sysenter', { ring3: true, eflags: IF, setup: setCs(SEL.code32) });
    expect(ex).toEqual([]);
    expect(h.cpu.cpl).toBe(0);
    expect(h.cpu.seg[1]).toBe(SEL.code32);
    expect(h.cpu.seg[2]).toBe(SEL.data32);
    expect(h.cpu.regs[4]).toBe(0x6000);
    expect(h.cpu.eip).toBe(HANDLER + 1);
    expect(h.cpu.getEflags() & IF).toBe(0);
  });
  it('SYSENTER with SYSENTER_CS = 0 is #GP(0)', () => {
    expect(first('sysenter', { ring3: true, setup: setCs(0) })).toEqual(GP0);
  });
  it('SYSEXIT returns to ring 3 at EDX with ESP = ECX; #GP(0) at CPL 3 or with SYSENTER_CS = 0', () => {
    const { h } = exec('mov ecx, 0x5000\nmov edx, 0x10050\nsysexit\ntimes 0x50-($-$$) db 0\nnop\nhlt', { setup: setCs(SEL.code32) });
    expect(h.cpu.regs[4]).not.toBe(0x5000); // ring-0 handler stack after the ring-3 HLT faulted
    expect(dword(h, h.cpu.regs[4] + 4)).toBe(0x10051);
    expect(dword(h, h.cpu.regs[4] + 8)).toBe(SEL.code32r3);
    expect(dword(h, h.cpu.regs[4] + 20)).toBe(SEL.data32r3);
    expect(first('sysexit', { setup: setCs(0) })).toEqual(GP0);
    expect(first('sysexit', { ring3: true, setup: setCs(SEL.code32) })).toEqual(GP0);
  });
  it('SYSENTER in real mode is #GP(0)', () => {
    const h = makeCpu('real', asm('sysenter', 16, 0));
    h.cpu.msrs.set(0x174, 8n);
    const r = record(h.cpu);
    runToHlt(h.cpu, 1);
    expect(r.exceptions[0]).toEqual(GP0);
  });
});

describe('no FPU, MONITOR/MWAIT, #UD forms', () => {
  it('x87 escapes: #NM with CR0.EM or CR0.TS, else #UD; WAIT: #NM only with MP and TS', () => {
    expect(first('fninit')).toEqual(UD);
    expect(first('fld dword [0]', { setup: (h) => { h.cpu.cr0 |= CR0_EM; } })).toEqual(NM);
    expect(first('fninit', { setup: (h) => { h.cpu.cr0 |= CR0_TS; } })).toEqual(NM);
    expect(exec('wait', { setup: (h) => { h.cpu.cr0 |= CR0_TS; } }).ex).toEqual([]);
    expect(first('wait', { setup: (h) => { h.cpu.cr0 |= CR0_TS | CR0_MP; } })).toEqual(NM);
  });
  it('MONITOR/MWAIT: ring 0 only (#UD), extensions in ECX are #GP(0), MWAIT returns', () => {
    expect(exec('xor ecx, ecx\nmov eax, 0x100\nmonitor\nmwait').ex).toEqual([]);
    expect(first('xor ecx, ecx\nmonitor', { ring3: true })).toEqual(UD);
    expect(first('mov ecx, 1\nmonitor')).toEqual(GP0);
    expect(first('mov ecx, 2\nmwait')).toEqual(GP0);
  });
  it('UD0, UD1, UD2 and the VMX instructions are #UD', () => {
    for (const code of ['ud2', 'db 0x0f, 0xb9, 0xc0', 'db 0x0f, 0xff, 0xc0', 'vmcall', 'vmxoff', 'vmxon [0]', 'vmread eax, ebx']) {
      expect(first(code)).toEqual(UD);
    }
  });
  it('INVD, WBINVD, INVLPG, HLT need CPL 0', () => {
    for (const code of ['invd', 'wbinvd', 'invlpg [0]', 'clts']) expect(first(code, { ring3: true })).toEqual(GP0);
    expect(exec('invd\nwbinvd\ninvlpg [0]').ex).toEqual([]);
  });
});

describe('flag rules per CPL and IOPL', () => {
  /** Runs POPF of `value` (32-bit) and returns the resulting EFLAGS. */
  function popf(value: number, o: Opts): number {
    const { h } = exec(`push dword ${value}\npopfd\npushfd\npop ebx\nnop`, o);
    return h.cpu.regs[3] >>> 0;
  }
  const ALL = 0x3f7fd5 & ~TF; // every flag POPF could name but VM (and TF, which would trap)
  it('CPL 0: everything but VM, VIF, VIP; RF cleared', () => {
    expect(popf(ALL, { eflags: 0 })).toBe((ALL & ~(VIF | VIP | RF | VM)) | 2);
  });
  it('CPL 3, IOPL 3: IF changes, IOPL does not', () => {
    expect(popf(0, { ring3: true, eflags: IOPL | IF }) & (IF | IOPL)).toBe(IOPL);
  });
  it('CPL 3, IOPL 0: IF and IOPL stay, no fault; AC, ID, NT, TF-free arithmetic flags change', () => {
    const f = popf(AC | ID | NT | 0x8d5, { ring3: true, eflags: IF });
    expect(f & (IF | IOPL)).toBe(IF);
    expect(f & (AC | ID | NT | 0x8d5)).toBe(AC | ID | NT | 0x8d5);
  });
  it('16-bit POPF leaves the high half', () => {
    const { h } = exec('push word 0\npopfw\npushfd\npop ebx', { eflags: AC | ID });
    expect(h.cpu.regs[3] & (AC | ID)).toBe(AC | ID);
  });
  it('PUSHF clears VM and RF in the image', () => {
    const { h } = exec('pushfd\npop ebx', { setup: (x) => { x.cpu.setEflags(x.cpu.getEflags() | RF); } });
    expect(h.cpu.regs[3] & RF).toBe(0);
  });
  it('IRET at CPL 3 keeps IOPL and IF (IOPL 0); at CPL 0 loads both', () => {
    const iret = (o: Opts) => exec(`push dword ${IOPL | IF}\npush dword ${o.ring3 ? SEL.code32r3 : SEL.code32}\npush dword 0x10020\niretd\ntimes 0x20-($-$$) db 0\npushfd\npop ebx`, o).h.cpu.regs[3];
    expect(iret({ ring3: true }) & (IOPL | IF)).toBe(0);
    expect(iret({}) & (IOPL | IF)).toBe(IOPL | IF);
  });
  it('CLI/STI: #GP(0) when CPL > IOPL, VIF under PVI at CPL 3', () => {
    expect(first('cli', { ring3: true })).toEqual(GP0);
    expect(first('sti', { ring3: true })).toEqual(GP0);
    const { h, ex } = exec('cli\nnop', { ring3: true, cr4: CR4_PVI, eflags: IF | VIF });
    expect(ex).toEqual([GP0]); // only the final HLT
    expect(h.cpu.regs[4]).toBe(0x8000 - 24);
    expect(dword(h, 0x8000 - 12) & (IF | VIF)).toBe(IF);
    expect(exec('cli', { ring3: true, eflags: IOPL | IF }).ex).toEqual([GP0]);
  });
  it('STI at CPL 3 under PVI with VIP pending is #GP(0)', () => {
    expect(first('sti', { ring3: true, cr4: CR4_PVI, eflags: VIP })).toEqual(GP0);
  });
  it('HLT at CPL 3 is #GP(0)', () => {
    const { h, ex } = exec('', { ring3: true });
    expect(ex).toEqual([GP0]);
    expect(h.cpu.cpl).toBe(0);
    expect(STACK_TOP).toBe(0x9000);
  });
});

/**
 * A ROM run by trapdiff and by Bochs: INT from ring 3 (the ring-0 frame), IRET at CPL 0 loading
 * every flag but TF and VM into ring 3, POPF at CPL 3 with IOPL 3 and then IOPL 0, and a trap gate
 * keeping IF; the flags seen at each step are printed at the end.
 */
const FLAG_ROM = `${romStart()}
${romFlatSegments()}
  mov dword [0x2000 + 0x30*8], 0x00080000 + (h30 - 0xF0000)
  mov dword [0x2004 + 0x30*8], 0x000fee00
  mov dword [0x2000 + 0x31*8], 0x00080000 + (h31 - 0xF0000)
  mov dword [0x2004 + 0x31*8], 0x000fef00      ; trap gate, DPL 3
${romLoadTss(false)}
${romIretToRing3('0x00000002', 'r3')}
r3:
  mov ax, 0x23
  mov ds, ax
  int 0x30                 ; frame printed; the handler IRETs with a rich EFLAGS image
  pushfd
  pop eax
  mov [0x6000], eax
  push dword 0
  popfd                    ; CPL 3, IOPL 3: IF clears, IOPL stays
  pushfd
  pop eax
  mov [0x6004], eax
  int 0x31                 ; trap gate: IF kept in the handler
h31_back:
  pushfd
  pop eax
  mov [0x6008], eax
  push dword 0x3200
  popfd                    ; IOPL 0 now (set by the handler's IRET): IF and IOPL stay
  pushfd
  pop eax
  mov [0x600c], eax
  int 0x30
h30:
${romPrint(['[esp]', '[esp+4]', '[esp+8]', '[esp+12]', '[esp+16]'])}
  cmp dword [0x6010], 0
  jne finish
  mov dword [0x6010], 1
  mov dword [esp+8], 0x003d7ed7 ; every flag but TF and VM
  iretd
h31:
  pushfd
  pop eax
  call hex
  mov dword [esp+8], 0x00000202  ; IOPL 0, IF
  iretd
finish:
  mov ax, 0x10
  mov ds, ax
  mov esi, 0x6000
.p: mov eax, [esi]
  call hex
  add esi, 4
  cmp esi, 0x6010
  jne .p
${romShutdown()}
  hlt
  jmp $

${ROM_HEX}

${romEnd(GDT_FLAT_R0 + GDT_FLAT_R3 + GDT_TSS, { idtVectors: '0x50' })}
`;
const FLAG_EXPECTED = [
  '000F00A0', '0000001B', '00000002', '00007000', '00000023',
  '00183002', '000F00C9', '0000001B', '00000202', '00007000',
  '00000023', '003C7ED7', '00183002', '00000202', '00000202',
];

compareOnRom('EFLAGS rules on a ROM', FLAG_ROM, FLAG_EXPECTED);

/**
 * A ROM run by trapdiff and by Bochs: CR0's undefined bits and ET, LMSW not clearing PE, SMSW r32,
 * #GP(0) for NW without CD and PG without PE, SYSEXIT to ring 3 and SYSENTER back (selectors,
 * ESP, EFLAGS), SYSENTER with SYSENTER_CS = 0. (Bochs does not fault RDPMC with ECX = 2, which
 * the SDM requires: that case stays in the unit tests.)
 */
const SYS_ROM = `${romStart()}
${romFlatSegments(false)}
  mov dword [0x2000 + 13*8], 0x00080000 + (h13 - 0xF0000)
  mov dword [0x2004 + 13*8], 0x000f8e00
  ; S1: CR0 undefined bits are ignored, ET reads 1; SMSW r32; LMSW cannot clear PE
  mov eax, cr0
  or eax, 0x0000ffc0
  and eax, ~0x10
  mov cr0, eax
  mov eax, cr0
  call hex
  xor eax, eax
  lmsw ax
  smsw eax
  call hex
  ; S2: NW without CD, PG without PE: #GP(0)
  mov dword [0x3000], s2b
  mov eax, cr0
  and eax, ~0x40000000
  or eax, 0x20000000
  mov cr0, eax
s2b:
  mov dword [0x3000], s3
  mov eax, 0x80000000
  mov cr0, eax
s3:
  ; S3: SYSEXIT to ring 3 and SYSENTER back
  mov ecx, 0x174
  mov eax, 0x08
  xor edx, edx
  wrmsr
  mov ecx, 0x175
  mov eax, 0x8800
  wrmsr
  mov ecx, 0x176
  mov eax, s3_r0
  wrmsr
  mov ecx, 0x7000
  mov edx, s3_r3
  pushfd
  or dword [esp], 0x3200               ; IOPL 3, IF: ring 3 may print
  popfd
  sysexit
s3_r3:
${romPrint(['cs', 'ss', 'esp'])}
  sysenter
s3_r0:
${romPrint(['cs', 'ss', 'esp'])}
  pushfd
  pop eax
  call hex
  ; S4: SYSENTER with SYSENTER_CS = 0: #GP(0)
  mov dword [0x3000], done
  mov ecx, 0x174
  xor eax, eax
  xor edx, edx
  wrmsr
  sysenter
done:
${romShutdown()}
  hlt
  jmp $

h13:
  mov ax, 0x10
  mov ds, ax
${romPrint(['[esp]', '[esp+4]'])}
  mov esp, 0x9000
  jmp [0x3000]

${ROM_HEX}

${romEnd(GDT_FLAT_R0 + GDT_FLAT_R3, { idtVectors: '0x50' })}
`;
const SYS_EXPECTED = [
  '60000011', '60000011', '00000000', '000F008E',
  '00000000', '000F00A0', '0000001B', '00000023',
  '00007000', '00000008', '00000010', '00008800',
  '00003093', '00000000', '000F0126',
];

compareOnRom('system instructions on a ROM', SYS_ROM, SYS_EXPECTED);
