// The VMX state of the processor that lives outside the VMCS (SDM Vol. 3C 23.1, 24.1): whether it
// is in VMX operation, the VMXON pointer and the current-VMCS pointer. The Cpu holds one VmxState
// (cpu.vmx) and includes it in its snapshots.

import { GuestEvents } from './event-state.js';

/** The pointer value FFFFFFFF_FFFFFFFFH: "no current VMCS" (never a valid, 4-KiB-aligned address). */
export const INVALID_PTR = -1;

export interface VmxSnapshot {
  on: boolean;
  vmxonPtr: number;
  vmcsPtr: number;
  nonRoot: boolean;
  /** The translation controls of the running guest (GuestTranslation), absent in older snapshots. */
  translation?: number[];
  /** Tag of the CPU's TLB entries, and the parked TLB contexts: [tag, page, read, write, page, ...] each. */
  tlbTag?: number;
  parkedTlb?: number[][];
  /** The guest's event state (GuestEvents.save), absent in older snapshots. */
  events?: number[];
}

/**
 * The controls of the current VM entry that address translation and APIC virtualization consult
 * on every slow-path access (ept.ts, apic-virt.ts, paging.ts), read from the VMCS once at VM entry
 * (the VMCS cannot change while the guest runs: VMWRITE exits) and reset at VM exit. -1 = off.
 */
export class GuestTranslation {
  /** EPT PML4 table address (EP4TA) with "enable EPT", else -1. */
  eptRoot = -1;
  /** EPTP bit 6: accessed and dirty flags for EPT (this model's extension, docs/VMX.md). */
  eptAd = false;
  /** VPID with "enable VPID", else 0 (VM entries and exits then flush VPID 0 mappings). */
  vpid = 0;
  /** APIC-access page (physical) with "virtualize APIC accesses", else -1. */
  apicAccessPage = -1;
  /** Virtual-APIC page with "use TPR shadow", else -1. */
  virtualApicPage = -1;
  /** TPR threshold bits 3:0. */
  tprThreshold = 0;
  /** Due before the next guest instruction (apic-virt.ts): 0, TPR_CHECK or TPR_WRITTEN. */
  tprPending = 0;
  /** "Unrestricted guest": CR0.PE and CR0.PG are not fixed to 1 for the guest. */
  unrestricted = false;
  /** icount of an IRET that unblocked NMIs (EPT-violation qualification bit 12), else -1. */
  iretUnblockedNmiAt = -1;

  reset(): void {
    this.eptRoot = this.apicAccessPage = this.virtualApicPage = this.iretUnblockedNmiAt = -1;
    this.vpid = this.tprThreshold = this.tprPending = 0;
    this.eptAd = this.unrestricted = false;
  }
  save(): number[] {
    return [this.eptRoot, +this.eptAd, this.vpid, this.apicAccessPage, this.virtualApicPage, this.tprThreshold,
      this.tprPending, this.iretUnblockedNmiAt, +this.unrestricted];
  }
  restore(s: number[] | undefined): void {
    this.reset();
    if (s === undefined) return;
    [this.eptRoot, , this.vpid, this.apicAccessPage, this.virtualApicPage, this.tprThreshold, this.tprPending,
      this.iretUnblockedNmiAt] = s;
    this.eptAd = s[1] === 1;
    this.unrestricted = s[8] === 1;
  }
}

export class VmxState {
  /**
   * The model offers VMX: CPUID.1:ECX.VMX, a settable CR4.VMXE and the VMX capability MSRs. A
   * machine option (MachineOptions.vmx), not state: on, as the Core Duo T2400 has VT-x; off, the
   * same CPU without it (docs/VMX.md).
   */
  supported = true;
  /** In VMX operation: from a successful VMXON until VMXOFF or RESET. */
  on = false;
  /** Physical address of the VMXON region while in VMX operation, else INVALID_PTR. */
  vmxonPtr = INVALID_PTR;
  /** Physical address of the current VMCS, or INVALID_PTR. */
  vmcsPtr = INVALID_PTR;
  /** In VMX non-root operation: from a successful VM entry until the next VM exit (entry.ts). */
  nonRoot = false;
  /**
   * VM entries and VM exits (VM-entry failures included) so far. The per-instruction path compares
   * it across one instruction: an instruction that enters or leaves the guest takes no debug
   * traps of its own (SDM Vol. 3C 26 introduction; 25.1: an exiting instruction does not complete).
   * Only differences matter, so it is not saved in snapshots.
   */
  transitions = 0;
  /** The running guest's translation and APIC-virtualization controls. */
  readonly guest = new GuestTranslation();
  /**
   * TLB tag of the entries in cpu.tlbRead/tlbWrite (paging.ts tlbTag: VPID and EP4TA; 0 in VMX
   * root operation) and the entries of the other tags, parked while another tag runs.
   */
  tlbTag = 0;
  readonly parkedTlb = new Map<number, number[]>();
  /** The running guest's event controls and event state (events.ts). */
  readonly events = new GuestEvents();

  /**
   * RESET (and VMXOFF): outside VMX operation, no VMXON region, no current VMCS. Parked TLB
   * contexts are dropped (a processor may always drop cached translations).
   */
  reset(): void {
    this.on = this.nonRoot = false;
    this.vmxonPtr = this.vmcsPtr = INVALID_PTR;
    this.guest.reset();
    this.events.reset();
    this.tlbTag = 0;
    this.parkedTlb.clear();
  }
  save(): VmxSnapshot {
    return {
      on: this.on, vmxonPtr: this.vmxonPtr, vmcsPtr: this.vmcsPtr, nonRoot: this.nonRoot,
      translation: this.guest.save(), events: this.events.save(), tlbTag: this.tlbTag, parkedTlb: [...this.parkedTlb].map(([tag, entries]) => [tag, ...entries]),
    };
  }
  restore(s: VmxSnapshot): void {
    this.on = s.on;
    this.vmxonPtr = s.vmxonPtr;
    this.vmcsPtr = s.vmcsPtr;
    this.nonRoot = s.nonRoot ?? false; // snapshots taken before VM entry existed lack it
    this.guest.restore(s.translation);
    this.events.restore(s.events);
    this.tlbTag = s.tlbTag ?? 0;
    this.parkedTlb.clear();
    for (const [tag, ...entries] of s.parkedTlb ?? []) this.parkedTlb.set(tag, entries);
  }
}

/**
 * Thrown (this one object, so nothing is allocated) when a VM exit ends an instruction or an
 * event delivery in the middle, after the exit has loaded the host state (an EPT violation or
 * misconfiguration, an APIC access): the run loop catches it and goes on with the host.
 */
export const VM_EXITED = { vmExited: true };
