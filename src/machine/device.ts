// The contract between the machine (memory, port bus, run loop) and the devices. A device sees
// the machine only through the MachineContext it is built with, and the machine sees a device
// only through the Device interface: neither reaches into the other.

import type { Env } from './env.js';

export type AccessSize = 1 | 2 | 4;

export interface Device {
  readonly name: string;
  /** I/O ports this device answers; a 2- or 4-byte access is routed by its first port. */
  readonly ports?: readonly number[];
  /** One physical MMIO range (page-aligned base; mmioRead/Write get the offset into it). */
  readonly mmio?: { readonly base: number; readonly length: number };
  ioRead?(port: number, size: AccessSize): number;
  ioWrite?(port: number, size: AccessSize, value: number): void;
  mmioRead?(offset: number, size: AccessSize): number;
  mmioWrite?(offset: number, size: AccessSize, value: number): void;
  /**
   * Virtual time (cpu.cycles) at which the device next needs tick(), or Infinity. The machine
   * re-reads it after every tick and after ctx.deadlineChanged(); it never calls tick() early
   * for this device's sake, but tick(now) must tolerate now > deadline (catch up).
   */
  nextDeadline?(): number;
  tick?(now: number): void;
  /** Power-on / system-reset state. */
  reset?(): void;
  /** Full device state as plain data (structured-cloneable); restore(save()) is an identity. */
  save?(): unknown;
  restore?(s: unknown): void;
}

/** What the CPU's INTR line is wired to: the 8259 pair (or an APIC in front of it). */
export interface InterruptController {
  /** Drives ISA IRQ input `line` (0-15) to `level`; edge-triggered inputs act on 0 -> 1. */
  setIrq(line: number, level: boolean): void;
  /**
   * The CPU's interrupt-acknowledge cycle after it accepted INTR: returns the vector to deliver
   * (the controller's spurious vector when the request went away) and updates ISR/IRR.
   */
  acknowledge(): number;
}

/** How the machine stops at a device's request. */
export type DeviceStop =
  /** isa-debug-exit (port 0xF4): exitCode = (value << 1) | 1, as QEMU computes it. */
  | 'exit'
  /** Bochs shutdown port (0x8900, the bytes "Shutdown"): a clean power-off, exitCode 0. */
  | 'poweroff';

export interface MachineContext {
  /** The nondeterminism boundary: time of day, TSC, serial input, entropy. */
  readonly env: Env;
  /** Virtual time now (cpu.cycles); the unit of nextDeadline/tick. */
  now(): number;
  /** ISA IRQ line `line` into the interrupt controller. */
  raiseIrq(line: number): void;
  lowerIrq(line: number): void;
  /** The CPU's INTR pin: the interrupt controller drives it (level). */
  setIntr(level: boolean): void;
  /** Pulses the CPU's NMI pin. */
  nmi(): void;
  /**
   * A device's nextDeadline() may now be earlier than before (the guest reprogrammed a timer):
   * the machine ends the current CPU slice after this instruction and re-reads deadlines.
   */
  deadlineChanged(): void;
  /** Ends the run after the current instruction (see DeviceStop). */
  requestStop(kind: DeviceStop, exitCode?: number): void;
  /** System reset (8042 pulse 0xFE, port 0x92 bit 0): CPU and devices reset, RAM kept. */
  requestReset(): void;
  /** The A20 gate (8042 output port bit 1, port 0x92 bit 1); enabled at power-on. */
  setA20(enabled: boolean): void;
  /** A byte written to the debug console (port 0xE9). */
  debugOutput(byte: number): void;
  /** A byte the UART transmitted; `com` is 1 for COM1 (0x3F8). */
  serialOutput(com: number, byte: number): void;
  /** A POST code (port 0x80, or 0x190 as Bochs' extended POST port). */
  postCode(value: number): void;
}

export interface DeviceSet {
  /** Every device, in the order ports/MMIO are registered (a port claimed twice is an error). */
  readonly devices: readonly Device[];
  /** What cpu.interruptAck calls and ctx.raiseIrq/lowerIrq drive. */
  readonly interruptController: InterruptController;
  /** The local APIC, told of every WRMSR to IA32_APIC_BASE the CPU accepts (if there is one). */
  readonly apic?: { setBaseMsr(value: number): void };
}

/** src/machine/devices/index.ts exports `createDevices` of this type. */
export type CreateDevices = (ctx: MachineContext) => DeviceSet;
