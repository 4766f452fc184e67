// The VMX instructions as guest code (SDM Vol. 3C chapter 30): every #UD/#GP(0) condition and
// VMsucceed / VMfailInvalid / VMfailValid(n) outcome this slice implements, the capability MSRs,
// the VMCS field table and layout, and the CR0/CR4 rules of VMX operation. Each case runs ring-0
// 32-bit code with paging on (VMX fixes CR0.PG to 1), executes one instruction under test with all
// six arithmetic flags set beforehand, and reads back the flags and the VM-instruction error field
// with VMREAD of 0x4400.

import { describe, expect, it } from 'vitest';
import {
  CF, CR0_NE, CR0_PE, CR0_PG, CR4_VMXE, EXC_GP, EXC_UD, ESI, EDI, ECX, EDX, EAX, VM, ZF,
} from '../src/cpu/constants.js';
import { FEAT_ECX_VMX } from '../src/cpu/cpuid.js';
import { MSR_FEATURE_CONTROL } from '../src/cpu/msr.js';
import {
  CONTROL_MUST1, CR4_IMPLEMENTED, EPT_VPID_CAP, FIELD_SUPPORTED, MODEL, VMCS_REVISION_ID, controlMsr, supports,
} from '../src/cpu/vmx/capabilities.js';
import {
  DEFAULT1, ENTRY, EXIT, PIN, PROC, PROC2, PROC2_EPT, PROC2_UNRESTRICTED_GUEST, PROC2_VPID, PROC_CR3_LOAD_EXITING,
  PROC_IO_BITMAPS, PROC_MSR_BITMAPS, PROC_SECONDARY, PROC_TPR_SHADOW,
} from '../src/cpu/vmx/controls.js';
import { FIELDS, T_EXIT_INFO, W16, W32, W64, WNAT } from '../src/cpu/vmx/fields.js';
import { FIELD_OFFSET, VMCS_LAUNCH_OFFSET, VMCS_LAYOUT_SIZE, fieldIndex } from '../src/cpu/vmx/vmcs.js';
import { INVALID_PTR } from '../src/cpu/vmx/state.js';
import { createMachine } from '../src/machine/machine.js';
import { run, type Run } from './helpers/exec.js';
import type { Harness } from './helpers/harness.js';
import { enterRing3 } from './helpers/idt.js';
import {
  CURRENT_A, DATA, ENTRY_FAILURE_GUEST_STATE, resumeHostAt, VALID_A, VMCS_A, VMCS_B, VMXON, vmxReady, w,
} from './helpers/vmx.js';
import { compareOnRom } from './helpers/rom.js';
import { vmxRom } from './helpers/vmx-rom.js';

const ALL_FLAGS = 0x8d5; // CF PF AF ZF SF OF
const VMFAIL_INVALID = CF, VMFAIL_VALID = ZF, VMSUCCEED = 0;

interface Opts {
  /** Skip VMXON / leave FEATURE_CONTROL unlocked / other tweaks before the run. */
  setup?: (h: Harness) => void;
  /** Prefix run before the instruction under test (default: VMXON). */
  prelude?: string;
  /** Read the VM-instruction error field afterwards (needs VMX operation). */
  readError?: boolean;
  /** The field read instead of the VM-instruction error (default 0x4400). */
  errorField?: number;
}
interface Outcome extends Run {
  /** Arithmetic flags right after the instruction under test. */
  flags: number;
  /** VMREAD 0x4400 afterwards (-1 when not read or VMREAD did not succeed). */
  error: number;
}


/** Runs `prelude`, then `insn` with every arithmetic flag set, then captures flags and error. */
function vmx(insn: string, o: Opts = {}): Outcome {
  const prelude = o.prelude ?? `vmxon [${DATA}]`;
  const readError = o.readError ?? true;
  const src = `${prelude}
    mov eax, ${ALL_FLAGS}
    push eax
    popfd
    ${insn}
    pushfd
    pop esi
    mov edi, -1
    ${readError ? `mov ebx, ${o.errorField ?? 0x4400}\nvmread edi, ebx` : ''}`;
  const r = run('pm32', src, (h) => {
    vmxReady(h);
    o.setup?.(h);
  });
  return { ...r, flags: r.cpu.regs[ESI] & ALL_FLAGS, error: r.cpu.regs[EDI] };
}
/** The vector the run stopped on (-1: none). */
function fault(insn: string, o: Opts = {}): number {
  return vmx(insn, { readError: false, ...o }).vector;
}

describe('enabling VMX', () => {
  it('CPUID.1:ECX.VMX is set where the machine offers VMX (by default), clear elsewhere; CR4.VMXE is an implemented bit', () => {
    expect(run('pm32', 'mov eax, 1\ncpuid').cpu.regs[ECX] & FEAT_ECX_VMX).toBe(FEAT_ECX_VMX);
    expect(run('pm32', 'mov eax, 1\ncpuid', (h) => { h.cpu.vmx.supported = false; }).cpu.regs[ECX] & FEAT_ECX_VMX).toBe(0);
    expect(createMachine({ memMiB: 1 }).cpu.vmx.supported).toBe(true);
    expect(createMachine({ memMiB: 1, vmx: false }).cpu.vmx.supported).toBe(false);
    expect(CR4_IMPLEMENTED & CR4_VMXE).toBe(CR4_VMXE);
  });
  it('without VMX (machine option vmx: false) the VMX MSRs are #GP(0) and the VMX instructions #UD', () => {
    const noVmx = (h: Harness): void => { h.cpu.vmx.supported = false; };
    expect(run('pm32', 'mov ecx, 0x480\nrdmsr', noVmx).vector).toBe(EXC_GP);
    for (const insn of [`vmxon [${DATA}]`, 'vmxoff', 'vmcall', `invept eax, [${DATA}]`]) {
      expect([insn, run('pm32', insn, noVmx).vector]).toEqual([insn, EXC_UD]);
    }
  });
  it('VMXON succeeds with CR0/CR4 fixed bits, FEATURE_CONTROL locked and enabled, a good region', () => {
    const r = vmx(`vmxon [${DATA}]`, { prelude: '', readError: false });
    expect(r.vector).toBe(-1);
    expect(r.flags).toBe(VMSUCCEED);
    expect(r.cpu.vmx.on).toBe(true);
    expect(r.cpu.vmx.vmxonPtr).toBe(VMXON);
    expect(r.cpu.vmx.vmcsPtr).toBe(INVALID_PTR);
  });
  it('VMXON: #UD without CR4.VMXE, in real mode and in virtual-8086 mode', () => {
    expect(fault(`vmxon [${DATA}]`, { prelude: '', setup: (h) => { h.cpu.cr4 &= ~CR4_VMXE; } })).toBe(EXC_UD);
    const real = run('real', 'vmxon [0x100]', (h) => { h.cpu.cr4 = CR4_VMXE; });
    expect(real.vector).toBe(EXC_UD);
    const v86 = run('real', 'vmxon [0x100]', (h) => {
      h.cpu.cr0 |= CR0_PE;
      h.cpu.cr4 = CR4_VMXE;
      h.cpu.setEflags(h.cpu.getEflags() | VM);
      h.cpu.setCpl(3);
    });
    expect(v86.vector).toBe(EXC_UD);
  });
  it('VMXON: #GP(0) at CPL 3, with A20M, with CR0.NE or CR0.PG clear, or FEATURE_CONTROL not set up', () => {
    const cases: Array<(h: Harness) => void> = [
      (h) => enterRing3(h.cpu, h.cpu.eip, 0x7000),
      (h) => { h.cpu.setA20Gate(false); },
      (h) => { h.cpu.cr0 &= ~CR0_NE; },
      (h) => { h.cpu.cr0 &= ~CR0_PG; h.cpu.updateMode(); },
      (h) => { h.cpu.msrs.set(MSR_FEATURE_CONTROL, 4n); }, // enabled but not locked
      (h) => { h.cpu.msrs.set(MSR_FEATURE_CONTROL, 1n); }, // locked, VMX disabled
    ];
    for (const setup of cases) {
      const r = vmx(`vmxon [${DATA}]`, { prelude: '', setup, readError: false });
      expect([r.vector, r.errorCode]).toEqual([EXC_GP, 0]);
      expect(r.cpu.vmx.on).toBe(false);
    }
  });
  it('VMXON: VMfailInvalid for a misaligned or >32-bit pointer and a wrong revision identifier', () => {
    const cases: Array<(h: Harness) => void> = [
      (h) => h.mem.view.setUint32(DATA, VMXON + 8, true),
      (h) => h.mem.view.setUint32(DATA + 4, 1, true),
      (h) => h.mem.view.setUint32(VMXON, VMCS_REVISION_ID + 1, true),
      (h) => h.mem.view.setUint32(VMXON, (VMCS_REVISION_ID | 0x80000000) >>> 0, true),
    ];
    for (const setup of cases) {
      const r = vmx(`vmxon [${DATA}]`, { prelude: '', setup, readError: false });
      expect(r.flags).toBe(VMFAIL_INVALID);
      expect(r.cpu.vmx.on).toBe(false);
    }
  });
  it('VMXON in VMX root operation: VMfailInvalid without a current VMCS, VMfailValid(15) with one', () => {
    expect(vmx(`vmxon [${DATA}]`, { readError: false }).flags).toBe(VMFAIL_INVALID);
    const r = vmx(`vmxon [${DATA}]`, { prelude: CURRENT_A });
    expect([r.flags, r.error]).toEqual([VMFAIL_VALID, 15]);
  });
  it('VMXON in root operation at CPL 3 is #GP(0)', () => {
    const r = vmx(`vmxon [${DATA}]`, { prelude: '', readError: false, setup: (h) => {
      h.cpu.vmx.on = true;
      enterRing3(h.cpu, h.cpu.eip, 0x7000);
    } });
    expect(r.vector).toBe(EXC_GP);
  });
  it('in VMX operation, MOV to CR0/CR4 may not clear a fixed-1 bit (PE, NE, PG, VMXE)', () => {
    for (const insn of ['mov eax, cr4\nand eax, ~0x2000\nmov cr4, eax', 'mov eax, cr0\nand eax, ~0x20\nmov cr0, eax',
      'mov eax, cr0\nand eax, 0x7fffffff\nmov cr0, eax']) {
      expect(fault(insn)).toBe(EXC_GP);
      expect(fault(insn, { prelude: '' })).toBe(-1); // outside VMX operation: allowed
    }
  });
});

describe('VMXOFF', () => {
  it('#UD outside VMX operation; succeeds in root operation and leaves it', () => {
    expect(fault('vmxoff', { prelude: '' })).toBe(EXC_UD);
    const r = vmx('vmxoff', { prelude: CURRENT_A, readError: false });
    expect(r.flags).toBe(VMSUCCEED);
    expect(r.cpu.vmx.on).toBe(false);
    expect(fault('vmxoff\nvmptrst [0x40100]', { prelude: CURRENT_A })).toBe(EXC_UD);
  });
  it('#GP(0) at CPL 3', () => {
    expect(fault('vmxoff', { prelude: '', setup: (h) => {
      h.cpu.vmx.on = true;
      enterRing3(h.cpu, h.cpu.eip, 0x7000);
    } })).toBe(EXC_GP);
  });
});

describe('A20M in VMX operation (SDM 23.8, 30 VMXON/VMXOFF)', () => {
  it('VMX operation blocks A20M: the gate disabled in it masks nothing until VMXOFF; snapshots keep the gate', () => {
    const r = vmx('nop', { readError: false });
    const cpu = r.cpu;
    cpu.setA20Gate(false);
    expect([cpu.a20Gate, cpu.a20Mask]).toEqual([false, -1]);
    const s = cpu.saveState();
    cpu.setA20Gate(true);
    cpu.restoreState(s);
    expect([cpu.a20Gate, cpu.a20Mask]).toEqual([false, -1]);
    const off = vmx('vmxoff', { readError: false, setup: (h) => { h.cpu.vmx.on = true; h.cpu.setA20Gate(false); } });
    expect([off.flags, off.cpu.vmx.on, off.cpu.a20Mask]).toEqual([VMSUCCEED, false, ~(1 << 20)]);
    off.cpu.setA20Gate(true);
    expect(off.cpu.a20Mask).toBe(-1);
  });
});

describe('VMCLEAR / VMPTRLD / VMPTRST', () => {
  it('#UD outside VMX operation (every instruction but VMXON)', () => {
    for (const insn of [`vmclear [${DATA}]`, `vmptrld [${DATA}]`, `vmptrst [${DATA}]`, 'vmread eax, ebx',
      'vmwrite ebx, eax', 'vmlaunch', 'vmresume', 'vmcall', `invept eax, [${DATA}]`, `invvpid eax, [${DATA}]`]) {
      expect(fault(insn, { prelude: '' })).toBe(EXC_UD);
    }
  });
  it('#UD in virtual-8086 mode in VMX root operation (every instruction, VMXON and VMCALL too)', () => {
    for (const insn of ['vmclear [0x100]', 'vmptrld [0x100]', 'vmptrst [0x100]', 'vmread eax, ebx', 'vmwrite ebx, eax',
      'vmlaunch', 'vmresume', 'vmxoff', 'vmxon [0x100]', 'vmcall', 'invept eax, [0x100]', 'invvpid eax, [0x100]']) {
      const r = run('real', insn, (h) => {
        h.cpu.cr0 |= CR0_PE;
        h.cpu.cr4 = CR4_VMXE;
        h.cpu.vmx.on = true;
        h.cpu.vmx.vmxonPtr = VMXON;
        h.cpu.setEflags(h.cpu.getEflags() | VM);
        h.cpu.setCpl(3);
      });
      expect([insn, r.vector]).toEqual([insn, EXC_UD]);
    }
  });
  it('register operands of VMXON, VMCLEAR, VMPTRLD, VMPTRST, INVEPT, INVVPID are #UD', () => {
    for (const bytes of ['0xf3, 0x0f, 0xc7, 0xf0', '0x66, 0x0f, 0xc7, 0xf0', '0x0f, 0xc7, 0xf0', '0x0f, 0xc7, 0xf8',
      '0x66, 0x0f, 0x38, 0x80, 0xc1', '0x66, 0x0f, 0x38, 0x81, 0xc1']) {
      expect([bytes, fault(`db ${bytes}`, { prelude: CURRENT_A })]).toEqual([bytes, EXC_UD]);
    }
  });
  it('#GP(0) at CPL 3 in VMX root operation', () => {
    for (const insn of [`vmclear [${DATA}]`, `vmptrld [${DATA}]`, `vmptrst [${DATA}]`, 'vmread eax, ebx',
      'vmwrite ebx, eax', 'vmlaunch', 'vmresume', 'vmcall', `invept eax, [${DATA}]`, `invvpid eax, [${DATA}]`]) {
      const r = vmx(insn, { prelude: '', readError: false, setup: (h) => {
        h.cpu.vmx.on = true;
        h.cpu.vmx.vmxonPtr = VMXON;
        enterRing3(h.cpu, h.cpu.eip, 0x7000);
      } });
      expect([insn, r.vector, r.errorCode]).toEqual([insn, EXC_GP, 0]);
    }
  });
  it('VMPTRLD makes a VMCS current and VMPTRST stores its pointer; VMPTRST without one stores all ones', () => {
    const r = vmx(`vmptrst [${DATA + 0x100}]`, { prelude: CURRENT_A });
    expect(r.flags).toBe(VMSUCCEED);
    expect(r.cpu.vmx.vmcsPtr).toBe(VMCS_A);
    expect([r.mem.view.getUint32(DATA + 0x100, true), r.mem.view.getUint32(DATA + 0x104, true)]).toEqual([VMCS_A, 0]);
    const none = vmx(`vmptrst [${DATA + 0x100}]`, { readError: false });
    expect(none.flags).toBe(VMSUCCEED);
    expect([none.mem.view.getUint32(DATA + 0x100, true), none.mem.view.getUint32(DATA + 0x104, true)])
      .toEqual([0xffffffff, 0xffffffff]);
  });
  it('VMPTRLD failures: invalid address (9), the VMXON pointer (10), a wrong revision (11)', () => {
    const bad = (setup: (h: Harness) => void, operand = DATA + 16): Outcome =>
      vmx(`vmptrld [${operand}]`, { prelude: CURRENT_A, setup });
    expect(bad((h) => h.mem.view.setUint32(DATA + 16, VMCS_B + 4, true))).toMatchObject({ flags: VMFAIL_VALID, error: 9 });
    expect(bad((h) => h.mem.view.setUint32(DATA + 20, 1, true))).toMatchObject({ flags: VMFAIL_VALID, error: 9 });
    expect(bad(() => {}, DATA)).toMatchObject({ flags: VMFAIL_VALID, error: 10 });
    expect(bad((h) => h.mem.view.setUint32(VMCS_B, 0, true))).toMatchObject({ flags: VMFAIL_VALID, error: 11 });
    expect(bad((h) => h.mem.view.setUint32(VMCS_B, (VMCS_REVISION_ID | 0x80000000) >>> 0, true)))
      .toMatchObject({ flags: VMFAIL_VALID, error: 11 });
    // Without a current VMCS the same failures are VMfailInvalid.
    const r = vmx(`vmptrld [${DATA}]`, { readError: false });
    expect(r.flags).toBe(VMFAIL_INVALID);
  });
  it('VMCLEAR: invalid address (2) and the VMXON pointer (3); success clears the launch state and the current pointer', () => {
    const misaligned = vmx(`vmclear [${DATA + 16}]`, { prelude: CURRENT_A, setup: (h) => h.mem.view.setUint32(DATA + 16, 0x123, true) });
    expect([misaligned.flags, misaligned.error]).toEqual([VMFAIL_VALID, 2]);
    const vmxonPtr = vmx(`vmclear [${DATA}]`, { prelude: CURRENT_A });
    expect([vmxonPtr.flags, vmxonPtr.error]).toEqual([VMFAIL_VALID, 3]);
    expect(vmx(`vmclear [${DATA}]`, { readError: false }).flags).toBe(VMFAIL_INVALID);
    const other = vmx(`vmclear [${DATA + 16}]`, { prelude: CURRENT_A, setup: (h) => h.mem.view.setUint32(VMCS_B + VMCS_LAUNCH_OFFSET, 1, true) });
    expect(other.flags).toBe(VMSUCCEED);
    expect(other.cpu.vmx.vmcsPtr).toBe(VMCS_A); // another VMCS: the current one stays
    expect(other.mem.view.getUint32(VMCS_B + VMCS_LAUNCH_OFFSET, true)).toBe(0);
    const current = vmx(`vmclear [${DATA + 8}]`, { prelude: CURRENT_A, readError: false });
    expect(current.flags).toBe(VMSUCCEED);
    expect(current.cpu.vmx.vmcsPtr).toBe(INVALID_PTR);
  });
  it('a memory operand beyond the segment limit is #GP(0) before any VMX outcome', () => {
    const r = vmx('vmptrld [ds:0xfffffffc]', { prelude: CURRENT_A, readError: false });
    expect(r.vector).toBe(EXC_GP);
  });
});

describe('VMREAD / VMWRITE', () => {
  it('VMfailInvalid without a current VMCS', () => {
    expect(vmx('mov ebx, 0x4002\nvmread eax, ebx', { readError: false }).flags).toBe(VMFAIL_INVALID);
    expect(vmx('mov ebx, 0x4002\nvmwrite ebx, eax', { readError: false }).flags).toBe(VMFAIL_INVALID);
  });
  it('round trips of every width, register and memory operands', () => {
    const r = vmx(`mov ebx, 0x6820
      mov eax, 0x12345678
      vmwrite ebx, eax
      vmread [${DATA + 0x200}], ebx
      mov ebx, 0x0802
      mov dword [${DATA + 0x204}], 0xabcd1234
      vmwrite ebx, [${DATA + 0x204}]
      vmread ecx, ebx
      mov ebx, 0x2010
      mov eax, 0x89abcdef
      vmwrite ebx, eax
      mov ebx, 0x2011
      mov eax, 0x11
      vmwrite ebx, eax
      mov ebx, 0x2010
      vmread edx, ebx
      mov ebx, 0x2011
      vmread ebp, ebx`, { prelude: CURRENT_A });
    expect(r.vector).toBe(-1);
    expect(r.flags).toBe(VMSUCCEED);
    expect(r.mem.view.getUint32(DATA + 0x200, true)).toBe(0x12345678); // natural width: 32 bits
    expect(r.cpu.regs[ECX]).toBe(0x1234); // 16-bit field: low half kept, read zero-extended
    expect(r.cpu.regs[EDX] >>> 0).toBe(0x89abcdef);
    expect(r.cpu.regs[5]).toBe(0x11);
    expect(r.mem.view.getUint32(VMCS_A + FIELD_OFFSET[fieldIndex(0x2010)] + 4, true)).toBe(0x11);
  });
  it('VMWRITE of a 64-bit field with the full encoding clears the high half', () => {
    const r = vmx(`mov ebx, 0x2011
      mov eax, 0x77
      vmwrite ebx, eax
      mov ebx, 0x2010
      mov eax, 5
      vmwrite ebx, eax
      mov ebx, 0x2011
      vmread ecx, ebx`, { prelude: CURRENT_A });
    expect(r.cpu.regs[ECX]).toBe(0);
  });
  it('unsupported components are VMfailValid(12): unknown, high half of a 32-bit field, bits 31:15, absent feature', () => {
    for (const enc of [0x0002, 0x4001, 0x6801, 0x8000 | 0x4002, 0x10000 | 0x4002, 0x2012 + 0x100, 0x4830]) {
      const rd = vmx(`mov ebx, ${enc}\nvmread eax, ebx`, { prelude: CURRENT_A });
      expect([enc, rd.flags, rd.error]).toEqual([enc, VMFAIL_VALID, 12]);
      const wr = vmx(`mov ebx, ${enc}\nvmwrite ebx, eax`, { prelude: CURRENT_A });
      expect([enc, wr.flags, wr.error]).toEqual([enc, VMFAIL_VALID, 12]);
    }
  });
  it('VM-exit information fields are read-only: VMWRITE is VMfailValid(13), VMREAD works', () => {
    const w = vmx('mov ebx, 0x4402\nvmwrite ebx, eax', { prelude: CURRENT_A });
    expect([w.flags, w.error]).toEqual([VMFAIL_VALID, 13]);
    const r = vmx('mov ebx, 0x6400\nvmread eax, ebx', { prelude: CURRENT_A });
    expect(r.flags).toBe(VMSUCCEED);
  });
  it('the error field belongs to the current VMCS; VMPTRLD of another shows its own', () => {
    const r = vmx(`vmclear [${DATA + 16}]\nvmptrld [${DATA + 16}]`, { prelude: `${CURRENT_A}\nmov ebx, 0x4402\nvmwrite ebx, eax` });
    expect([r.flags, r.error]).toEqual([VMSUCCEED, 0]);
    expect(r.mem.view.getUint32(VMCS_A + FIELD_OFFSET[fieldIndex(0x4400)], true)).toBe(13);
  });
  it('a faulting VMREAD memory destination leaves the flags alone', () => {
    const r = vmx('mov ebx, 0x4400\nvmread [ds:0xfffffffe], ebx', { prelude: CURRENT_A, readError: false });
    expect(r.vector).toBe(EXC_GP);
    expect(r.cpu.getEflags() & ALL_FLAGS).toBe(ALL_FLAGS);
  });
});

describe('VMLAUNCH / VMRESUME / VMCALL', () => {
  it('VMfailInvalid without a current VMCS', () => {
    for (const insn of ['vmlaunch', 'vmresume', 'vmcall']) expect(vmx(insn, { readError: false }).flags).toBe(VMFAIL_INVALID);
  });
  it('VMRESUME of a clear VMCS is VMfailValid(5); VMLAUNCH of a launched one VMfailValid(4)', () => {
    const resume = vmx('vmresume', { prelude: CURRENT_A });
    expect([resume.flags, resume.error]).toEqual([VMFAIL_VALID, 5]);
    const launch = vmx('vmlaunch', {
      prelude: `${CURRENT_A}\nmov dword [${VMCS_A + VMCS_LAUNCH_OFFSET}], 1`,
    });
    expect([launch.flags, launch.error]).toEqual([VMFAIL_VALID, 4]);
  });
  it('right after MOV SS, VM entry fails with VMfailValid(26)', () => {
    const r = vmx('mov ax, ss\nmov ss, ax\nvmlaunch', { prelude: CURRENT_A });
    expect([r.flags, r.error]).toEqual([VMFAIL_VALID, 26]);
  });
  it('a VMLAUNCH or VMRESUME whose controls and host state pass reaches the guest-state checks', () => {
    const launch = vmx('vmlaunch\nentered:', { prelude: `${VALID_A}\n${resumeHostAt('entered')}`, errorField: 0x4402 });
    expect([launch.flags, launch.error]).toEqual([0, ENTRY_FAILURE_GUEST_STATE]);
    const launched = `${VALID_A}\n${resumeHostAt('entered')}\nmov dword [${VMCS_A + VMCS_LAUNCH_OFFSET}], 1`;
    const resume = vmx('vmresume\nentered:', { prelude: launched, errorField: 0x4402 });
    expect([resume.flags, resume.error]).toEqual([0, ENTRY_FAILURE_GUEST_STATE]);
  });
  it('VMCALL in root operation: VMfailValid(1) (no dual-monitor treatment)', () => {
    const r = vmx('vmcall', { prelude: CURRENT_A });
    expect([r.flags, r.error]).toEqual([VMFAIL_VALID, 1]);
  });
});

describe('VM entry: checks of the controls (VMfailValid 7) and the host state (VMfailValid 8)', () => {
  const pin = CONTROL_MUST1[PIN], proc = CONTROL_MUST1[PROC], exit = CONTROL_MUST1[EXIT], entry = CONTROL_MUST1[ENTRY];
  const sec = proc | PROC_SECONDARY;
  /** VMLAUNCH after `writes` on top of the valid VMCS: the error number, or 'entry' when the checks pass. */
  function launch(...writes: string[]): number | 'entry' {
    const r = vmx('vmlaunch\nentered:', { prelude: [VALID_A, resumeHostAt('entered'), ...writes].join('\n') });
    if (r.flags === VMFAIL_VALID) return r.error;
    expect(r.flags).toBe(0); // host resumed after the VM-entry failure (RFLAGS = 2)
    expect(vmx('vmlaunch\nentered:', { prelude: [VALID_A, resumeHostAt('entered'), ...writes].join('\n'), errorField: 0x4402 }).error)
      .toBe(ENTRY_FAILURE_GUEST_STATE);
    return 'entry';
  }
  it('control fields', () => {
    const cases: Array<[string, string[], number | 'entry']> = [
      ['pin default1 bit clear', [w(0x4000, pin & ~2)], 7],
      ['pin bit 7 (posted interrupts) set', [w(0x4000, pin | 0x80)], 7],
      ['proc bit 17 reserved', [w(0x4002, proc | (1 << 17))], 7],
      ['proc CR8-load exiting (Intel 64 only)', [w(0x4002, proc | (1 << 19))], 7],
      ['secondary RDTSCP not supported', [w(0x4002, sec), w(0x401e, 1 << 3)], 7],
      ['secondary ignored when not activated', [w(0x401e, -1)], 'entry'],
      ['CR3-target count 5', [w(0x400a, 5)], 7],
      ['CR3-target count 4', [w(0x400a, 4)], 'entry'],
      ['I/O bitmap B misaligned', [w(0x4002, proc | PROC_IO_BITMAPS), w(0x2000, 0x50000), w(0x2002, 0x50800)], 7],
      ['I/O bitmaps aligned', [w(0x4002, proc | PROC_IO_BITMAPS), w(0x2000, 0x50000), w(0x2002, 0x51000)], 'entry'],
      ['I/O bitmap A above 4 GiB', [w(0x4002, proc | PROC_IO_BITMAPS), w(0x2000, 0x50000), w(0x2001, 1), w(0x2002, 0x51000)], 7],
      ['MSR bitmap above 4 GiB', [w(0x4002, proc | PROC_MSR_BITMAPS), w(0x2004, 0x50000), w(0x2005, 1)], 7],
      ['MSR bitmap misaligned', [w(0x4002, proc | PROC_MSR_BITMAPS), w(0x2004, 0x50010)], 7],
      ['MSR bitmap aligned', [w(0x4002, proc | PROC_MSR_BITMAPS), w(0x2004, 0x50000)], 'entry'],
      ['virtual-APIC page misaligned', [w(0x4002, proc | PROC_TPR_SHADOW), w(0x2012, 0x52080)], 7],
      ['TPR threshold bits 31:4 (virtualizing APIC accesses: no VTPR comparison)', [w(0x4002, sec | PROC_TPR_SHADOW), w(0x401e, 1),
        w(0x2014, 0x53000), w(0x2012, 0x52000), w(0x401c, 0x10)], 7],
      ['TPR threshold above VTPR', [w(0x4002, proc | PROC_TPR_SHADOW), w(0x2012, 0x52000), 'mov byte [0x52080], 0x40', w(0x401c, 5)], 7],
      ['TPR threshold = VTPR', [w(0x4002, proc | PROC_TPR_SHADOW), w(0x2012, 0x52000), 'mov byte [0x52080], 0x40', w(0x401c, 4)], 'entry'],
      ['TPR threshold above VTPR, virtualizing APIC accesses', [w(0x4002, sec | PROC_TPR_SHADOW), w(0x401e, 1), w(0x2014, 0x53000),
        w(0x2012, 0x52000), 'mov byte [0x52080], 0x40', w(0x401c, 5)], 'entry'],
      ['virtual NMIs without NMI exiting', [w(0x4000, pin | 0x20)], 7],
      ['NMI-window exiting without virtual NMIs', [w(0x4000, pin | 8), w(0x4002, proc | (1 << 22))], 7],
      ['APIC-access page misaligned', [w(0x4002, sec), w(0x401e, 1), w(0x2014, 0x53010)], 7],
      ['VPID 0', [w(0x4002, sec), w(0x401e, PROC2_VPID)], 7],
      ['VPID 1', [w(0x4002, sec), w(0x401e, PROC2_VPID), w(0x0000, 1)], 'entry'],
      ['EPTP walk length 3', [w(0x4002, sec), w(0x401e, PROC2_EPT), w(0x201a, 0x54016)], 7],
      ['EPTP memory type 1 (WC)', [w(0x4002, sec), w(0x401e, PROC2_EPT), w(0x201a, 0x54019)], 7],
      ['EPTP bit 7 (reserved)', [w(0x4002, sec), w(0x401e, PROC2_EPT), w(0x201a, 0x5409e)], 7],
      ['EPTP bits 63:32', [w(0x4002, sec), w(0x401e, PROC2_EPT), w(0x201a, 0x5401e), w(0x201b, 1)], 7],
      ['EPTP valid', [w(0x4002, sec), w(0x401e, PROC2_EPT), w(0x201a, 0x5401e)], 'entry'],
      ['unrestricted guest without EPT', [w(0x4002, sec), w(0x401e, PROC2_UNRESTRICTED_GUEST)], 7],
      ['save preemption timer without the timer', [w(0x400c, exit | (1 << 22))], 7],
      ['host address-space size (Intel 64 only)', [w(0x400c, exit | (1 << 9))], 7],
      ['exit MSR-store area misaligned', [w(0x400e, 1), w(0x2006, 0x55008)], 7],
      ['exit MSR-load area past 4 GiB', [w(0x4010, 0x10000000), w(0x2008, 0x10)], 7],
      ['exit MSR-store area above 4 GiB', [w(0x400e, 1), w(0x2006, 0x55000), w(0x2007, 1)], 7],
      ['exit MSR-load area misaligned', [w(0x4010, 1), w(0x2008, 0x55004)], 7],
      ['entry MSR-load area misaligned', [w(0x4014, 1), w(0x200a, 0x55001)], 7],
      ['MSR areas ignored with count 0', [w(0x2006, 0x55008), w(0x2008, 0x55004), w(0x200a, 0x55001)], 'entry'],
      ['entry MSR-load area fits', [w(0x4014, 2), w(0x200a, 0x55010)], 'entry'],
      ['entry MSR-load address above 4 GiB', [w(0x4014, 1), w(0x200a, 0x55000), w(0x200b, 1)], 7],
      ['IA-32e mode guest (Intel 64 only)', [w(0x4012, entry | (1 << 9))], 7],
    ];
    for (const [what, writes, expected] of cases) expect([what, launch(...writes)]).toEqual([what, expected]);
  });
  it('event injection', () => {
    const inject = (info: number, ...more: string[]): number | 'entry' => launch(w(0x4016, info | 0x80000000), ...more);
    const cases: Array<[string, number | 'entry', number | 'entry']> = [
      ['external interrupt 0x20', inject(0x20), 'entry'],
      ['NMI vector 2', inject(0x202), 'entry'],
      ['NMI vector 3', inject(0x203), 7],
      ['type 1 (reserved)', inject(0x120), 7],
      ['#GP with its error code', inject(0xb0d), 'entry'],
      ['#GP without an error code', inject(0x30d), 7],
      ['#UD with an error code', inject(0xb06), 7],
      ['hardware exception vector 32', inject(0x320), 7],
      ['error code bits 31:16', inject(0xb0d, w(0x4018, 0x10000)), 7],
      ['software interrupt, length 2', inject(0x480, w(0x401a, 2)), 'entry'],
      ['software interrupt, length 0', inject(0x480), 7],
      ['software exception, length 16', inject(0x603, w(0x401a, 16)), 7],
      ['privileged software exception, length 0', inject(0x501), 7],
      ['privileged software exception (INT1), length 1', inject(0x501, w(0x401a, 1)), 'entry'],
      ['#DF with its error code 0', inject(0xb08), 'entry'],
      ['#PF without an error code', inject(0x30e), 7],
      ['software interrupt with an error code', inject(0xc80, w(0x401a, 2)), 7],
      ['reserved bit 12', inject(0x1020), 7],
      ['other event (MTF) vector 0', inject(0x700), 'entry'],
      ['other event vector 1', inject(0x701), 7],
      ['unrestricted real-mode guest: #GP without error code', inject(0x30d, w(0x4002, sec),
        w(0x401e, PROC2_EPT | PROC2_UNRESTRICTED_GUEST), w(0x201a, 0x5401e), w(0x6800, 0x20)), 'entry'],
    ];
    for (const [what, got, expected] of cases) expect([what, got]).toEqual([what, expected]);
  });
  it('host state, checked after the controls', () => {
    const cases: Array<[string, string[], number | 'entry']> = [
      ['host CR0.PG clear', ['mov eax, cr0\nand eax, 0x7fffffff\nmov ebx, 0x6c00\nvmwrite ebx, eax'], 8],
      ['host CR0.NE clear', ['mov eax, cr0\nand eax, ~0x20\nmov ebx, 0x6c00\nvmwrite ebx, eax'], 8],
      ['host CR4.VMXE clear', [w(0x6c04, 0x10)], 8],
      ['host CR4.PAE (not implemented)', [w(0x6c04, 0x2030)], 8],
      ['host CS null', [w(0x0c02, 0)], 8],
      ['host SS null', [w(0x0c04, 0)], 8],
      ['host TR null', [w(0x0c0c, 0)], 8],
      ['host DS with RPL 3', [w(0x0c06, 0x13)], 8],
      ['host FS with TI', [w(0x0c08, 0x14)], 8],
      ['host ES, DS, FS, GS null', [w(0x0c06, 0)], 'entry'],
      ['host PAT with type 2, loaded', [w(0x400c, exit | (1 << 19)), w(0x2c00, 0x0206)], 8],
      ['host PAT with type 2, not loaded', [w(0x2c00, 0x0206)], 'entry'],
      ['host PAT valid, loaded', [w(0x400c, exit | (1 << 19)), w(0x2c00, 0x0706)], 'entry'],
      ['bad controls and bad host state: controls first', [w(0x400a, 5), w(0x0c02, 0)], 7],
    ];
    for (const [what, writes, expected] of cases) expect([what, launch(...writes)]).toEqual([what, expected]);
  });
});

describe('INVEPT / INVVPID', () => {
  const desc = (lo: number, hi = 0, w2 = 0, w3 = 0): string =>
    `mov dword [${DATA + 0x300}], ${lo}\nmov dword [${DATA + 0x304}], ${hi}\nmov dword [${DATA + 0x308}], ${w2}\nmov dword [${DATA + 0x30c}], ${w3}`;
  const invept = (type: number, d: string): Outcome => vmx(`mov eax, ${type}\ninvept eax, [${DATA + 0x300}]`, { prelude: `${CURRENT_A}\n${d}` });
  const invvpid = (type: number, d: string): Outcome => vmx(`mov eax, ${type}\ninvvpid eax, [${DATA + 0x300}]`, { prelude: `${CURRENT_A}\n${d}` });
  it('INVEPT: types 1 and 2 with a valid EPTP succeed; other types and bad EPTPs are VMfailValid(28)', () => {
    expect(invept(1, desc(0x5001e)).flags).toBe(VMSUCCEED); // WB, walk length 4
    expect(invept(1, desc(0x50018)).flags).toBe(VMSUCCEED); // UC
    expect(invept(2, desc(0)).flags).toBe(VMSUCCEED);
    for (const [type, d] of [[0, desc(0x5001e)], [3, desc(0x5001e)], [1, desc(0x5001d)], [1, desc(0x50016)],
      [1, desc(0x5009e)], [1, desc(0x5001e, 1)]] as const) {
      const r = invept(type, d);
      expect([type, d, r.flags, r.error]).toEqual([type, d, VMFAIL_VALID, 28]);
    }
  });
  it('INVVPID: the four types; VPID 0 (except all-context), bits 63:16, a >32-bit address are VMfailValid(28)', () => {
    for (const type of [0, 1, 2, 3]) expect(invvpid(type, desc(1, 0, 0x1000)).flags).toBe(VMSUCCEED);
    expect(invvpid(2, desc(0)).flags).toBe(VMSUCCEED);
    for (const [type, d] of [[4, desc(1)], [0, desc(0)], [1, desc(0)], [3, desc(0)], [1, desc(0x10001)],
      [1, desc(1, 1)], [0, desc(1, 0, 0, 1)]] as const) {
      const r = invvpid(type, d);
      expect([type, d, r.flags, r.error]).toEqual([type, d, VMFAIL_VALID, 28]);
    }
  });
});

describe('capability MSRs', () => {
  function rdmsr(index: number): bigint {
    const r = run('pm32', `mov ecx, ${index}\nrdmsr`, (h) => { h.cpu.vmx.supported = true; });
    expect(r.vector).toBe(-1);
    return (BigInt(r.cpu.regs[EDX] >>> 0) << 32n) | BigInt(r.cpu.regs[EAX] >>> 0);
  }
  it('IA32_VMX_BASIC: revision, 4 KiB, 32-bit addresses, WB, TRUE controls', () => {
    expect(rdmsr(0x480)).toBe(BigInt(VMCS_REVISION_ID) | (0x1000n << 32n) | (1n << 48n) | (6n << 50n) | (1n << 55n));
  });
  it('control MSRs derive from the one model declaration; TRUE ones let the model-clearable default1 bits be 0', () => {
    const classes = [[0x481, 0x48d, PIN], [0x482, 0x48e, PROC], [0x483, 0x48f, EXIT], [0x484, 0x490, 4]] as const;
    for (const [plain, tru, cls] of classes) {
      const p = rdmsr(plain), t = rdmsr(tru);
      expect(p & 0xffffffffn).toBe(BigInt(DEFAULT1[cls]));
      expect(p >> 32n).toBe(t >> 32n);
      expect(p >> 32n).toBe(BigInt((DEFAULT1[cls] | MODEL[cls]) >>> 0));
      expect(t & 0xffffffffn).toBe(BigInt((DEFAULT1[cls] & ~MODEL[cls]) >>> 0));
    }
    expect(rdmsr(0x48e) & BigInt(PROC_CR3_LOAD_EXITING)).toBe(0n); // TRUE: CR3-load exiting may be 0
    expect(rdmsr(0x482) & BigInt(PROC_CR3_LOAD_EXITING)).toBe(BigInt(PROC_CR3_LOAD_EXITING));
    expect(rdmsr(0x48b)).toBe(controlMsr(PROC2, false));
    expect(rdmsr(0x48b) >> 32n).toBe(0xe7n); // APIC accesses, EPT, descriptor tables, VPID, WBINVD, unrestricted
    expect(rdmsr(0x48c)).toBe(EPT_VPID_CAP);
    expect(supports(PROC2, PROC2_EPT)).toBe(true);
  });
  it('MISC, CR0/CR4 fixed bits and VMCS_ENUM', () => {
    expect(rdmsr(0x485)).toBe(5n | (1n << 6n) | (1n << 7n) | (4n << 16n));
    expect(rdmsr(0x486)).toBe(BigInt((CR0_PE | CR0_NE | CR0_PG) >>> 0));
    expect(rdmsr(0x487)).toBe(0xffffffffn);
    expect(rdmsr(0x488)).toBe(BigInt(CR4_VMXE));
    expect(rdmsr(0x489)).toBe(BigInt(CR4_IMPLEMENTED));
    expect(rdmsr(0x48a)).toBe(0x17n << 1n); // the VMX-preemption timer value, index 23
  });
  it('the capability MSRs are read-only and VMFUNC (0x491) does not exist: #GP(0)', () => {
    for (const index of [0x480, 0x482, 0x48c, 0x490]) {
      const r = run('pm32', `mov ecx, ${index}\nxor eax, eax\nxor edx, edx\nwrmsr`);
      expect(r.vector).toBe(EXC_GP);
    }
    expect(run('pm32', 'mov ecx, 0x491\nrdmsr').vector).toBe(EXC_GP);
  });
});

describe('VMCS fields and layout', () => {
  it('widths and types come from the encodings; exit-information fields alone are read-only', () => {
    expect(FIELDS.find((f) => f.encoding === 0x0802)?.width).toBe(W16);
    expect(FIELDS.find((f) => f.encoding === 0x2800)?.width).toBe(W64);
    expect(FIELDS.find((f) => f.encoding === 0x4400)?.width).toBe(W32);
    expect(FIELDS.find((f) => f.encoding === 0x681e)?.width).toBe(WNAT);
    for (const f of FIELDS) expect(f.readOnly).toBe(f.type === T_EXIT_INFO);
    expect(FIELDS.filter((f) => f.readOnly).length).toBe(15); // 8 32-bit, 6 natural-width, guest-physical address
  });
  it('every field has its own naturally aligned slot after the 16-byte header, within 4 KiB', () => {
    const taken = new Set<number>();
    FIELDS.forEach((f, k) => {
      const size = f.width === W16 ? 2 : f.width === W64 ? 8 : 4;
      expect(FIELD_OFFSET[k] % size).toBe(0);
      expect(FIELD_OFFSET[k]).toBeGreaterThanOrEqual(16);
      for (let b = 0; b < size; b++) {
        expect(taken.has(FIELD_OFFSET[k] + b)).toBe(false);
        taken.add(FIELD_OFFSET[k] + b);
      }
    });
    expect(VMCS_LAYOUT_SIZE).toBeLessThanOrEqual(0x1000);
  });
  it('fields of supported features exist, the others do not', () => {
    expect(fieldIndex(0x201a)).toBeGreaterThanOrEqual(0); // EPT pointer
    expect(fieldIndex(0x0000)).toBeGreaterThanOrEqual(0); // VPID
    expect(fieldIndex(0x2806)).toBe(-1); // guest IA32_EFER: no EFER on this model
    expect(fieldIndex(0x2c04)).toBe(-1); // host IA32_PERF_GLOBAL_CTRL
    expect(FIELD_SUPPORTED.filter((s) => !s).length).toBe(4);
  });
});

describe('snapshots', () => {
  it('saveState/restoreState carry the VMX state', () => {
    const r = vmx('nop', { prelude: CURRENT_A, readError: false });
    const s = r.cpu.saveState();
    expect(s.vmx).toMatchObject({ on: true, vmxonPtr: VMXON, vmcsPtr: VMCS_A, nonRoot: false });
    r.cpu.reset();
    expect(r.cpu.vmx.on).toBe(false);
    r.cpu.restoreState(s);
    expect(r.cpu.vmx.save()).toEqual(s.vmx);
  });
});

/**
 * A ROM run by trapdiff and by Bochs (Core Duo model with VMX): enables VMX as firmware would
 * (paging, CR0.NE, CR4.VMXE, FEATURE_CONTROL, the revision identifier from IA32_VMX_BASIC), then
 * prints the arithmetic flags and the VM-instruction error (EEEEEEEE: VMREAD failed) after each
 * VMX instruction outcome both emulators share. Left out: VMCALL (Bochs stops: "not
 * implemented"), pointers above 4 GiB (Bochs allows its own physical-address width, this model
 * has 32 bits), INVEPT/INVVPID (the Core Duo model of Bochs has no EPT or VPID).
 */
const VMX_ROM = vmxRom(`  FLAGS {vmxon [PTR+32]}
  FLAGS {vmxon [PTR+24]}
  FLAGS {vmxon [PTR]}
  T {vmxon [PTR]}
  T {vmptrld [PTR+32]}
  T {vmclear [PTR+8]}
  T {vmptrld [PTR+8]}
  T {vmxon [PTR]}
  T {vmptrld [PTR+24]}
  T {vmptrld [PTR]}
  T {vmptrld [PTR+32]}
  T {vmclear [PTR+24]}
  T {vmclear [PTR]}
  mov ecx, 0x12345
  T {vmread eax, ecx}
  mov ecx, 0x4001
  T {vmwrite ecx, eax}
  mov ecx, 0x4402
  T {vmwrite ecx, eax}
  mov ecx, 0x681e
  mov edx, 0x12345678
  T {vmwrite ecx, edx}
  T {vmread [0x40100], ecx}
  mov eax, [0x40100]
  call hex
  mov ecx, 0x0802
  mov edx, 0xabcd1234
  T {vmwrite ecx, edx}
  T {vmread edx, ecx}
  mov eax, edx
  call hex
  mov ecx, 0x2801
  mov edx, 0x77
  T {vmwrite ecx, edx}
  dec ecx
  mov edx, 5
  T {vmwrite ecx, edx}
  inc ecx
  T {vmread edx, ecx}
  mov eax, edx
  call hex
  T {vmresume}
  push dword 0x8d5
  popfd
  mov ax, ss
  mov ss, ax
  vmlaunch
  pushfd
  pop eax
  and eax, 0x8d5
  call hex
  call err
  T {vmptrst [0x40100]}
  mov eax, [0x40100]
  call hex
  mov eax, [0x40104]
  call hex
  T {vmclear [PTR+16]}
  T {vmclear [PTR+8]}
  mov ecx, 0x4400
  T {vmread eax, ecx}
  T {vmlaunch}
  T {vmptrst [0x40100]}
  mov eax, [0x40100]
  call hex
  mov eax, [0x40104]
  call hex
`);
const VMX_ROM_EXPECTED = [
  '00000001', '00000001', '00000000', '00000001', 'EEEEEEEE', '00000001', 'EEEEEEEE', '00000000',
  'EEEEEEEE', '00000000', '00000000', '00000040', '0000000F', '00000040', '00000009', '00000040',
  '0000000A', '00000040', '0000000B', '00000040', '00000002', '00000040', '00000003', '00000040',
  '0000000C', '00000040', '0000000C', '00000040', '0000000D', '00000000', '0000000D', '00000000',
  '0000000D', '12345678', '00000000', '0000000D', '00000000', '0000000D', '00001234', '00000000',
  '0000000D', '00000000', '0000000D', '00000000', '0000000D', '00000000', '00000040', '00000005',
  '00000040', '0000001A', '00000000', '0000001A', '00031000', '00000000', '00000000', '0000001A',
  '00000000', 'EEEEEEEE', '00000001', 'EEEEEEEE', '00000001', 'EEEEEEEE', '00000000', 'EEEEEEEE',
  'FFFFFFFF', 'FFFFFFFF', '00000000',
];

compareOnRom('VMX instructions on a ROM', VMX_ROM, VMX_ROM_EXPECTED);

/**
 * A20M in VMX operation on a ROM (SDM 23.8: VMX operation blocks A20M; VMXOFF unblocks it): the
 * gate turned off through port 92H after VMXON leaves 160000H apart from 60000H; after VMXOFF
 * 160000H aliases 60000H until the gate is on again. (VMXON in A20M mode is #GP(0): unit case.)
 */
const A20M_ROM = vmxRom(`  FLAGS {vmxon [PTR]}
  mov byte [0x60000], 0x11
  mov byte [0x160000], 0
  in al, 0x92
  and al, 0xfc
  out 0x92, al
  mov byte [0x160000], 0x22
  movzx eax, byte [0x60000]
  call hex
  movzx eax, byte [0x160000]
  call hex
  FLAGS {vmxoff}
  movzx eax, byte [0x160000]
  call hex
  in al, 0x92
  and al, 0xfe
  or al, 2
  out 0x92, al
  movzx eax, byte [0x160000]
  call hex
  FLAGS {vmxon [PTR]}
`);
// Bochs masks address bit 20 whenever the gate is off, in VMX operation too (docs/VMX.md,
// "Differences from Bochs"): both writes land at 60000H there.
const a20mTranscript = (blocked: boolean): string[] => blocked
  ? ['00000000', '00000011', '00000022', '00000000', '00000011', '00000022', '00000000', '00000000']
  : ['00000000', '00000022', '00000022', '00000000', '00000022', '00000000', '00000000', '00000000'];
compareOnRom('A20M in VMX operation on a ROM', A20M_ROM, a20mTranscript(true),
  { title: 'Bochs differs as documented (no A20M blocking)', expected: a20mTranscript(false) });

/**
 * INVEPT and INVVPID outcomes on a ROM, checked against Bochs's Westmere model (its Core Duo has
 * no EPT or VPID). Left out: an individual-address INVVPID with a linear address above 4 GiB
 * (Bochs applies its 64-bit canonical rule) and EPTPs above 4 GiB (its physical-address width).
 */
const INV_ROM = vmxRom(`  FLAGS {vmxon [PTR]}
  T {vmclear [PTR+8]}
  T {vmptrld [PTR+8]}
%macro INV 5 ; instruction, type, descriptor dwords 0, 1, 2
  mov dword [0x40200], %3
  mov dword [0x40204], %4
  mov dword [0x40208], %5
  mov dword [0x4020c], 0
  mov eax, %2
  T {%1 eax, [0x40200]}
%endmacro
  INV invept, 1, 0x5001e, 0, 0
  INV invept, 1, 0x50018, 0, 0
  INV invept, 2, 0, 0, 0
  INV invept, 0, 0x5001e, 0, 0
  INV invept, 3, 0x5001e, 0, 0
  INV invept, 1, 0x5001d, 0, 0
  INV invept, 1, 0x50016, 0, 0
  INV invept, 1, 0x5009e, 0, 0
  INV invept, 1, 0x5011e, 0, 0
  INV invvpid, 0, 1, 0, 0x1000
  INV invvpid, 1, 1, 0, 0
  INV invvpid, 2, 1, 0, 0
  INV invvpid, 3, 1, 0, 0
  INV invvpid, 2, 0, 0, 0
  INV invvpid, 4, 1, 0, 0
  INV invvpid, 0, 0, 0, 0x1000
  INV invvpid, 1, 0, 0, 0
  INV invvpid, 3, 0, 0, 0
  INV invvpid, 1, 0x10001, 0, 0
  INV invvpid, 1, 1, 1, 0
`);
const INV_ROM_EXPECTED = [
  '00000000', '00000000', 'EEEEEEEE', '00000000', '00000000',
  ...['00000000', '00000000', '00000000', '00000000', '00000000', '00000000'],
  ...Array.from({ length: 6 }, () => ['00000040', '0000001C']).flat(), // INVEPT failures
  ...Array.from({ length: 5 }, () => ['00000000', '0000001C']).flat(), // INVVPID successes
  ...Array.from({ length: 6 }, () => ['00000040', '0000001C']).flat(), // INVVPID failures
  '00000000',
];

compareOnRom('INVEPT and INVVPID on a ROM', INV_ROM, INV_ROM_EXPECTED,
  { title: 'Bochs (Westmere model) agrees', expected: INV_ROM_EXPECTED, model: 'corei5_arrandale_m520' });

/**
 * VM-entry control and host-state checks on a ROM (VMfailValid 7 and 8), checked against Bochs's
 * Core Duo model: each case starts from controls at the plain MSRs' allowed 0-settings and a
 * valid host state, breaks one thing and runs VMLAUNCH. Left out: addresses above 4 GiB (Bochs
 * has a wider physical-address width, so its entry goes on to the guest).
 */
const ENTRY_ROM = vmxRom(`  FLAGS {vmxon [PTR]}
  BASE
  W 0x4000, 0x14
  T {vmlaunch}
  BASE
  OR 0x4002, 1 << 17
  T {vmlaunch}
  BASE
  W 0x400a, 5
  T {vmlaunch}
  BASE
  OR 0x400c, 1 << 9
  T {vmlaunch}
  BASE
  OR 0x4012, 1 << 9
  T {vmlaunch}
  BASE
  W 0x4016, 0x80000203
  T {vmlaunch}
  BASE
  W 0x4016, 0x8000030d
  T {vmlaunch}
  BASE
  W 0x4016, 0x80000480
  T {vmlaunch}
  BASE
  W 0x4016, 0x80000b06
  T {vmlaunch}
  BASE
  W 0x400e, 1
  W 0x2006, 0x55008
  T {vmlaunch}
  BASE
  OR 0x4002, 1 << 22
  T {vmlaunch}
  BASE
  mov eax, cr0
  and eax, 0x7fffffff
  W 0x6c00, eax
  T {vmlaunch}
  BASE
  W 0x6c04, 0x10
  T {vmlaunch}
  BASE
  W 0x0c02, 0
  T {vmlaunch}
  BASE
  W 0x0c04, 0
  T {vmlaunch}
  BASE
  W 0x0c0c, 0
  T {vmlaunch}
  BASE
  W 0x0c06, 0x13
  T {vmlaunch}
  BASE
  W 0x0c08, 0x14
  T {vmlaunch}
  BASE
  W 0x400a, 5
  W 0x0c02, 0
  T {vmlaunch}
`);
const ENTRY_ROM_EXPECTED = [
  '00000000',
  ...Array.from({ length: 11 }, () => ['00000040', '00000007']).flat(), // control fields
  ...Array.from({ length: 7 }, () => ['00000040', '00000008']).flat(), // host state
  '00000040', '00000007', // both: the controls are checked first
  '00000000',
];

compareOnRom('VM-entry checks on a ROM', ENTRY_ROM, ENTRY_ROM_EXPECTED);
