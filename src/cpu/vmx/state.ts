// The VMX state of the processor that lives outside the VMCS (SDM Vol. 3C 23.1, 24.1): whether it
// is in VMX operation, the VMXON pointer and the current-VMCS pointer. The Cpu holds one VmxState
// (cpu.vmx) and includes it in its snapshots.

/** The pointer value FFFFFFFF_FFFFFFFFH: "no current VMCS" (never a valid, 4-KiB-aligned address). */
export const INVALID_PTR = -1;

export interface VmxSnapshot {
  on: boolean;
  vmxonPtr: number;
  vmcsPtr: number;
  nonRoot: boolean;
}

export class VmxState {
  /**
   * The model offers VMX: CPUID.1:ECX.VMX, a settable CR4.VMXE and the VMX capability MSRs. A
   * machine option (MachineOptions.vmx), not state: off by default while VM entry and VM exits
   * are not implemented (docs/VMX.md), so that CPUID reports exactly what the CPU does.
   */
  supported = false;
  /** In VMX operation: from a successful VMXON until VMXOFF or RESET. */
  on = false;
  /** Physical address of the VMXON region while in VMX operation, else INVALID_PTR. */
  vmxonPtr = INVALID_PTR;
  /** Physical address of the current VMCS, or INVALID_PTR. */
  vmcsPtr = INVALID_PTR;
  /** In VMX non-root operation: from a successful VM entry until the next VM exit (entry.ts). */
  nonRoot = false;

  /** RESET (and VMXOFF): outside VMX operation, no VMXON region, no current VMCS. */
  reset(): void {
    this.on = this.nonRoot = false;
    this.vmxonPtr = this.vmcsPtr = INVALID_PTR;
  }
  save(): VmxSnapshot {
    return { on: this.on, vmxonPtr: this.vmxonPtr, vmcsPtr: this.vmcsPtr, nonRoot: this.nonRoot };
  }
  restore(s: VmxSnapshot): void {
    this.on = s.on;
    this.vmxonPtr = s.vmxonPtr;
    this.vmcsPtr = s.vmcsPtr;
    this.nonRoot = s.nonRoot ?? false; // snapshots taken before VM entry existed lack it
  }
}
