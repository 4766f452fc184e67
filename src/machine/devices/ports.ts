// Base for devices whose registers are bytes at consecutive I/O ports (every ISA device here).
// The port bus routes a 2- or 4-byte access by its first port; an ISA bus splits it into byte
// cycles, so a word access reads or writes the device's byte registers in turn, and the bytes
// that fall on ports the device does not own float (read as 0xFF, writes go nowhere).

import type { AccessSize, Device } from '../device.js';

export abstract class ByteIoDevice implements Device {
  abstract readonly name: string;
  abstract readonly ports: readonly number[];

  protected abstract readByte(port: number): number;
  protected abstract writeByte(port: number, value: number): void;

  ioRead(port: number, size: AccessSize): number {
    if (size === 1) return this.readByte(port);
    let v = 0;
    for (let i = 0; i < size; i++) {
      const p = (port + i) & 0xffff;
      v |= (this.ports.includes(p) ? this.readByte(p) & 0xff : 0xff) << (8 * i);
    }
    return size === 4 ? v | 0 : v;
  }

  ioWrite(port: number, size: AccessSize, value: number): void {
    if (size === 1) {
      this.writeByte(port, value & 0xff);
      return;
    }
    for (let i = 0; i < size; i++) {
      const p = (port + i) & 0xffff;
      if (this.ports.includes(p)) this.writeByte(p, (value >>> (8 * i)) & 0xff);
    }
  }
}

/** A deep copy of a device's plain-data state, for Device.save/restore. */
export function cloneState<T>(s: T): T {
  return structuredClone(s);
}
