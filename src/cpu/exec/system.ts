// The system family: MOV to/from control and debug registers, CLTS, LMSW, SMSW, INVD, WBINVD,
// INVLPG, CPUID, RDTSC, RDMSR/WRMSR, RDPMC, SYSENTER/SYSEXIT, MONITOR/MWAIT, the x87 escapes and
// WAIT of an FPU-less model and the UD0/UD1/UD2 encodings; the VMX instructions come from vmx/.
// In VMX non-root operation the instructions ask vmx/intercept*.ts whether they exit, after
// their #UD and privilege checks (SDM Vol. 3C 25.1.1).

import {
  ACC_READ, AR_DB, CR0_DEFINED, AR_G, CR0_CD, CR0_EM, CR0_MP, CR0_NW, CR0_PE, CR0_PG, CR0_TS, CR0_WP, CR0_ET,
  CR4_DE, CR4_PCE, CR4_PGE, CR4_PSE, CR4_TSD, CR4_VMXE, CS, EAX, ECX, EDX, ESP,
  EXC_GP, EXC_NM, EXC_UD, IF, RF, SS, VM,
} from '../constants.js';
import type { Cpu } from '../cpu.js';
import type { Exec, Insn } from '../insn.js';
import { flushTlb, invalidatePage } from '../paging.js';
import { cpuid } from '../cpuid.js';
import { DR6_FIXED1, DR7_FIXED0, DR7_FIXED1, generalDetect } from '../debug.js';
import {
  MISC_MONITOR_FSM, MSR_PMC0, MSR_TSC, MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP, miscEnable,
  readMsr, sysenterMsr, writeMsr,
} from '../msr.js';
import { CR4_IMPLEMENTED, crAllowedInVmx } from '../vmx/capabilities.js';
import {
  PROC2_WBINVD_EXITING, PROC_INVLPG_EXITING, PROC_MONITOR_EXITING, PROC_MWAIT_EXITING, PROC_RDPMC_EXITING,
  PROC_RDTSC_EXITING,
} from '../vmx/controls.js';
import {
  EXIT_REASON_INVD, EXIT_REASON_INVLPG, EXIT_REASON_MONITOR, EXIT_REASON_MWAIT, EXIT_REASON_RDPMC,
  EXIT_REASON_RDTSC, EXIT_REASON_WBINVD, instructionExit,
} from '../vmx/exit.js';
import { handlers as vmx } from '../vmx/instructions.js';
import { exitsByControl, exitsBySecondaryControl, guestTscOffset, msrExits } from '../vmx/intercept.js';
import {
  cltsClearsTs, guestCrView, guestCrWrite, lmswExits, movDrExits, movFromCrExits, movToCrExits,
} from '../vmx/intercept-cr.js';

/** CPL 0 outside virtual-8086 mode (real mode counts as CPL 0), else #GP(0). */
function requireCpl0(cpu: Cpu): void {
  if (cpu.cpl !== 0 || cpu.v86) cpu.fault(EXC_GP, 0);
}
/** EDX:EAX <- a 64-bit value. */
function setEdxEax(cpu: Cpu, v: bigint): void {
  cpu.regs[EAX] = Number(v & 0xffffffffn) | 0;
  cpu.regs[EDX] = Number((v >> 32n) & 0xffffffffn) | 0;
}
function edxEax(cpu: Cpu): bigint {
  return (BigInt(cpu.regs[EDX] >>> 0) << 32n) | BigInt(cpu.regs[EAX] >>> 0);
}

// ---------------------------------------------------------------- control registers

const mov_RdCd: Exec = (cpu, i) => {
  requireCpl0(cpu);
  const n = i.reg; // the decoder admits CR0, CR2, CR3, CR4 only
  if (cpu.vmx.nonRoot && movFromCrExits(cpu, n, i.rm)) return;
  const v = n === 0 ? cpu.cr0 : n === 2 ? cpu.cr2 : n === 3 ? cpu.cr3 : cpu.cr4;
  cpu.regs[i.rm] = cpu.vmx.nonRoot ? guestCrView(cpu, n, v) : v;
};
const mov_CdRd: Exec = (cpu, i) => {
  requireCpl0(cpu);
  let v = cpu.regs[i.rm];
  if (cpu.vmx.nonRoot) {
    if (movToCrExits(cpu, i.reg, i.rm, v)) return;
    v = guestCrWrite(cpu, i.reg, v);
  }
  switch (i.reg) {
    case 0: writeCr0(cpu, v); break;
    case 2: cpu.cr2 = v; break;
    case 3:
      cpu.cr3 = v;
      flushTlb(cpu, true);
      break;
    default: writeCr4(cpu, v);
  }
};
/** MOV to CR0 (and LMSW, CLTS): #GP(0) for PG without PE or NW without CD; ET reads as 1. */
export function writeCr0(cpu: Cpu, v: number): void {
  if ((v & CR0_PG && !(v & CR0_PE)) || (v & CR0_NW && !(v & CR0_CD))) cpu.fault(EXC_GP, 0);
  // VMX fixes PE, NE, PG to 1 (23.8); an unrestricted guest may clear PE and PG (24.6.2).
  const fixedPePg = cpu.vmx.nonRoot && cpu.vmx.guest.unrestricted ? CR0_PE | CR0_PG : 0;
  if (cpu.vmx.on && !crAllowedInVmx(0, v | fixedPePg)) cpu.fault(EXC_GP, 0);
  const next = (v & CR0_DEFINED) | CR0_ET;
  const changed = cpu.cr0 ^ next;
  cpu.cr0 = next;
  if (changed & (CR0_PG | CR0_WP | CR0_PE)) flushTlb(cpu, false);
  if (!(next & CR0_PE)) cpu.setCpl(0);
  cpu.updateMode();
}
/**
 * MOV to CR4: a bit outside CR4_IMPLEMENTED (PAE, MCE, OSFXSR, ...) is #GP(0), and so is VMXE
 * where the machine does not offer VMX. The list lives with the VMX capabilities because
 * IA32_VMX_CR4_FIXED1 must report exactly it.
 */
function writeCr4(cpu: Cpu, v: number): void {
  if (v & ~CR4_IMPLEMENTED || (v & CR4_VMXE && !cpu.vmx.supported) || (cpu.vmx.on && !crAllowedInVmx(4, v))) {
    cpu.fault(EXC_GP, 0);
  }
  const changed = cpu.cr4 ^ v;
  cpu.cr4 = v;
  if (changed & (CR4_PSE | CR4_PGE)) flushTlb(cpu, false);
  cpu.updateMode();
}

// ---------------------------------------------------------------- debug registers

/** The DR number addressed: DR4/DR5 alias DR6/DR7 unless CR4.DE makes them #UD; then CPL and GD. */
function debugRegister(cpu: Cpu, i: Insn): number {
  let n = i.reg;
  if (n === 4 || n === 5) {
    if (cpu.cr4 & CR4_DE) cpu.faultNoCode(EXC_UD);
    n += 2;
  }
  requireCpl0(cpu);
  generalDetect(cpu);
  return n;
}
const mov_RdDd: Exec = (cpu, i) => {
  if (cpu.vmx.nonRoot && movDrExits(cpu, i, true)) return;
  cpu.regs[i.rm] = cpu.dr[debugRegister(cpu, i)];
};
const mov_DdRd: Exec = (cpu, i) => {
  if (cpu.vmx.nonRoot && movDrExits(cpu, i, false)) return;
  const n = debugRegister(cpu, i), v = cpu.regs[i.rm];
  if (n < 4) cpu.dr[n] = v;
  else if (n === 6) cpu.dr[6] = (v & 0xe00f) | DR6_FIXED1;
  else cpu.dr[7] = (v & ~DR7_FIXED0) | DR7_FIXED1;
  cpu.updateMode(); // breakpoints switch the per-instruction path on or off
};

// ---------------------------------------------------------------- CR0 shortcuts, caches, TLB

const clts: Exec = (cpu) => {
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot && !cltsClearsTs(cpu)) return;
  cpu.cr0 &= ~CR0_TS;
};
/** LMSW loads PE, MP, EM, TS; it can set PE but not clear it. */
const lmsw_Ew: Exec = (cpu, i) => {
  requireCpl0(cpu);
  const v = cpu.readE16(i);
  if (cpu.vmx.nonRoot && lmswExits(cpu, i, v)) return;
  const next = (cpu.cr0 & ~0xe) | (v & 0xf) | (cpu.cr0 & CR0_PE);
  writeCr0(cpu, cpu.vmx.nonRoot ? guestCrWrite(cpu, 0, next) : next);
};
/** SMSW: a register gets CR0 (all of it with a 32-bit operand), memory gets 16 bits. */
const smsw_Ev: Exec = (cpu, i) => {
  const cr0 = cpu.vmx.nonRoot ? guestCrView(cpu, 0, cpu.cr0) : cpu.cr0;
  if (i.mod === 3) cpu.setReg(i.rm, cr0, i.o32);
  else cpu.write16(i.seg, cpu.ea(i), cr0 & 0xffff);
};
/** No caches are modelled: INVD and WBINVD only check privilege (and exit in VMX non-root operation). */
const invd: Exec = (cpu) => {
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot) instructionExit(cpu, EXIT_REASON_INVD); // unconditional
};
const wbinvd: Exec = (cpu) => {
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot) exitsBySecondaryControl(cpu, PROC2_WBINVD_EXITING, EXIT_REASON_WBINVD);
};
/** INVLPG: no segment-limit check, only the linear address (SDM INVLPG), also the exit qualification. */
const invlpg_M: Exec = (cpu, i) => {
  requireCpl0(cpu);
  const lin = (cpu.segBase[i.seg] + cpu.ea(i)) | 0;
  if (cpu.vmx.nonRoot && exitsByControl(cpu, PROC_INVLPG_EXITING, EXIT_REASON_INVLPG, lin)) return;
  invalidatePage(cpu, lin);
};

// ---------------------------------------------------------------- CPUID, TSC, MSRs, PMCs

const rdtsc: Exec = (cpu) => {
  if (cpu.cr4 & CR4_TSD && (cpu.cpl !== 0 || cpu.v86)) cpu.fault(EXC_GP, 0);
  let offset = cpu.tscOffset;
  if (cpu.vmx.nonRoot) {
    if (exitsByControl(cpu, PROC_RDTSC_EXITING, EXIT_REASON_RDTSC)) return;
    offset += guestTscOffset(cpu);
  }
  setEdxEax(cpu, cpu.readTsc() + offset);
};
const rdmsr: Exec = (cpu) => {
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot && msrExits(cpu, false)) return;
  const index = cpu.regs[ECX] >>> 0;
  const v = readMsr(cpu, index);
  setEdxEax(cpu, cpu.vmx.nonRoot && index === MSR_TSC ? v + guestTscOffset(cpu) : v);
};
const wrmsr: Exec = (cpu) => {
  requireCpl0(cpu);
  if (cpu.vmx.nonRoot && msrExits(cpu, true)) return;
  writeMsr(cpu, cpu.regs[ECX] >>> 0, edxEax(cpu));
};
/** RDPMC: counters 0 and 1; at CPL > 0 only with CR4.PCE. The counters hold what was written. */
const rdpmc: Exec = (cpu) => {
  if (!(cpu.cr4 & CR4_PCE) && (cpu.cpl !== 0 || cpu.v86)) cpu.fault(EXC_GP, 0);
  if (cpu.vmx.nonRoot && exitsByControl(cpu, PROC_RDPMC_EXITING, EXIT_REASON_RDPMC)) return;
  const n = cpu.regs[ECX] >>> 0;
  if (n > 1) cpu.fault(EXC_GP, 0);
  setEdxEax(cpu, readMsr(cpu, MSR_PMC0 + n));
};

// ---------------------------------------------------------------- SYSENTER / SYSEXIT

/** Flat 4 GiB segments of SYSENTER/SYSEXIT: accessed code (execute/read) and data (read/write). */
const FLAT_CODE = 0x9b | AR_DB | AR_G, FLAT_DATA = 0x93 | AR_DB | AR_G;

const sysenter: Exec = (cpu) => {
  const cs = sysenterMsr(cpu, MSR_SYSENTER_CS);
  if (!cpu.protectedMode || (cs & 0xfffc) === 0) cpu.fault(EXC_GP, 0);
  cpu.setEflags(cpu.getEflags() & ~(VM | IF | RF));
  cpu.setSegCache(CS, cs & 0xfffc, 0, 0xffffffff, FLAT_CODE);
  cpu.setSegCache(SS, (cs & 0xfffc) + 8, 0, 0xffffffff, FLAT_DATA);
  cpu.regs[ESP] = sysenterMsr(cpu, MSR_SYSENTER_ESP);
  cpu.eip = sysenterMsr(cpu, MSR_SYSENTER_EIP) >>> 0;
  cpu.setCpl(0);
};
const sysexit: Exec = (cpu) => {
  const cs = sysenterMsr(cpu, MSR_SYSENTER_CS);
  if (!cpu.protectedMode || (cs & 0xfffc) === 0) cpu.fault(EXC_GP, 0);
  requireCpl0(cpu);
  cpu.setSegCache(CS, ((cs + 16) & 0xfffc) | 3, 0, 0xffffffff, FLAT_CODE | 0x60);
  cpu.setSegCache(SS, ((cs + 24) & 0xfffc) | 3, 0, 0xffffffff, FLAT_DATA | 0x60);
  cpu.regs[ESP] = cpu.regs[ECX];
  cpu.eip = cpu.regs[EDX] >>> 0;
  cpu.setCpl(3);
};

// ---------------------------------------------------------------- MONITOR / MWAIT

/** #UD at CPL > 0, in V86, or when MISC_ENABLE turned MONITOR/MWAIT (and CPUID.MONITOR) off. */
function monitorAllowed(cpu: Cpu): void {
  if (cpu.cpl !== 0 || cpu.v86 || !(miscEnable(cpu) & MISC_MONITOR_FSM)) cpu.faultNoCode(EXC_UD);
}
/**
 * MONITOR checks DS:eAX as a read would and arms the monitor (cpu.monitorArmed). No store
 * triggers it on this model (docs/CPU-MODEL.md): MWAIT returns at once anyway.
 */
const monitor: Exec = (cpu, i) => {
  monitorAllowed(cpu);
  if (cpu.vmx.nonRoot && exitsByControl(cpu, PROC_MONITOR_EXITING, EXIT_REASON_MONITOR)) return;
  const off = i.a32 ? cpu.regs[EAX] : cpu.regs[EAX] & 0xffff;
  const lin = cpu.linear(i.seg, off, 1, false);
  if (cpu.regs[ECX] !== 0) cpu.fault(EXC_GP, 0); // no MONITOR extensions
  cpu.translateLinear(lin, ACC_READ, false);
  cpu.monitorArmed = true;
};
/**
 * MWAIT returns at once and disarms the monitor: a wake-up without a cause is architecturally
 * allowed, and it keeps virtual time independent of the idle loop. ECX bit 0 (interrupts break
 * MWAIT) is the only extension. Its VM exit's qualification says whether the monitor was armed.
 */
const mwait: Exec = (cpu) => {
  monitorAllowed(cpu);
  if (cpu.vmx.nonRoot && exitsByControl(cpu, PROC_MWAIT_EXITING, EXIT_REASON_MWAIT, cpu.monitorArmed ? 1 : 0)) return;
  if (cpu.regs[ECX] & ~1) cpu.fault(EXC_GP, 0);
  cpu.monitorArmed = false;
};

// ---------------------------------------------------------------- no FPU, undefined

/** x87 escape without an FPU (CPUID.FPU = 0): #NM when CR0.EM or CR0.TS asks for it, else #UD. */
const esc_Ev: Exec = (cpu) => {
  cpu.faultNoCode(cpu.cr0 & (CR0_EM | CR0_TS) ? EXC_NM : EXC_UD);
};
/** WAIT: #NM when MP and TS are both set; with no FPU there is never an error to wait for. */
const wait: Exec = (cpu) => {
  if ((cpu.cr0 & (CR0_MP | CR0_TS)) === (CR0_MP | CR0_TS)) cpu.faultNoCode(EXC_NM);
};
const ud: Exec = (cpu) => cpu.faultNoCode(EXC_UD);

export const handlers: Record<string, Exec> = {
  mov_RdCd, mov_CdRd, mov_RdDd, mov_DdRd, clts, lmsw_Ew, smsw_Ev, invd, wbinvd, invlpg_M,
  cpuid,
  rdtsc, rdmsr, wrmsr, rdpmc, sysenter, sysexit, monitor, mwait, esc_Ev, wait,
  ud2: ud, ud1_GvEv: ud, ud0_GvEv: ud,
  ...vmx,
};
