// The event state of VMX non-root operation that lives outside the VMCS (SDM Vol. 3C 25.2-25.5,
// 31.7): the running guest's event controls (read once at VM entry: VMWRITE exits, so they cannot
// change while the guest runs), the VMX-preemption timer, a pending MTF VM exit, virtual-NMI
// blocking, the shutdown activity state, and the event being delivered (for IDT-vectoring
// information). events.ts uses it; cpu.vmx.events holds it and the CPU snapshot carries it.

export class GuestEvents {
  pin = 0;
  proc = 0;
  exceptionBitmap = 0;
  pfMask = 0;
  pfMatch = 0;
  exitControls = 0;
  /** The "monitor trap flag" control of the running guest: every instruction runs on the per-instruction path. */
  monitorTrap = false;
  /** Virtual cycle at which the VMX-preemption timer reaches zero; -1 when it is not running. */
  timerDeadline = -1;
  /** An MTF VM exit is pending at the next instruction boundary (25.5.2). */
  mtfPending = false;
  /**
   * The guest is in the shutdown activity state (entered so by VM entry; cpu.halted is also set):
   * only an NMI, the preemption timer and NMI-window exiting end it (26.6.2, 25.5.1, 26.6.6).
   */
  shutdown = false;
  /** Virtual-NMI blocking (with "virtual NMIs" = 1; 31.7.1). */
  virtualNmiBlocked = false;
  /**
   * IDT-vectoring information (valid bit set) of the event being delivered through the guest IDT,
   * else 0 (27.2.3), with its error code and, for software events, the instruction length.
   */
  vectoring = 0;
  vectoringError = 0;
  vectoringLength = 0;
  /**
   * The delivery sets RF in the RFLAGS image it pushes (a fault-class exception not injected): a
   * fault-like VM exit during the delivery saves that image's RF (27.3.3). Like `vectoring`, never
   * set at an instruction boundary, so snapshots need not carry it.
   */
  vectoringRf = false;
  /** DR6-format bits of a #DB that becomes a VM exit: its exit qualification (27.2.1). */
  debugQualification = 0;
  /** Linear address of a #PF raised in non-root operation: CR2, or the exit qualification (27.1). */
  faultAddress = 0;

  reset(): void {
    this.pin = this.proc = this.exceptionBitmap = this.pfMask = this.pfMatch = this.exitControls = 0;
    this.monitorTrap = this.mtfPending = this.virtualNmiBlocked = this.shutdown = false;
    this.timerDeadline = -1;
    this.vectoring = this.vectoringError = this.vectoringLength = this.debugQualification = this.faultAddress = 0;
    this.vectoringRf = false;
  }
  save(): number[] {
    return [this.pin, this.proc, this.exceptionBitmap, this.pfMask, this.pfMatch, this.exitControls,
      +this.monitorTrap, this.timerDeadline, +this.mtfPending, +this.virtualNmiBlocked, this.vectoring,
      this.vectoringError, this.vectoringLength, this.debugQualification, this.faultAddress, +this.shutdown];
  }
  restore(s: number[] | undefined): void {
    this.reset();
    if (s === undefined) return;
    [this.pin, this.proc, this.exceptionBitmap, this.pfMask, this.pfMatch, this.exitControls, , this.timerDeadline, , ,
      this.vectoring, this.vectoringError, this.vectoringLength, this.debugQualification, this.faultAddress] = s;
    this.monitorTrap = s[6] === 1;
    this.mtfPending = s[8] === 1;
    this.virtualNmiBlocked = s[9] === 1;
    this.shutdown = s[15] === 1;
  }
}
