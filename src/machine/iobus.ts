// The I/O port space: 64 Ki ports, each answered by at most one device. A port nobody claims
// reads as all-ones and ignores writes (an ISA bus with nothing driving it).

import type { AccessSize, Device } from './device.js';

const ALL_ONES = [0, 0xff, 0xffff, 0, -1] as const;

/** Called after every port access (value is what was read or written). */
export type IoObserver = (port: number, size: AccessSize, value: number, write: boolean) => void;

export class IoBus {
  private readonly byPort: (Device | null)[] = new Array<Device | null>(0x10000).fill(null);
  observer: IoObserver | null = null;

  /** Claims every port of `device.ports`; a port claimed twice is a wiring error. */
  attach(device: Device): void {
    for (const port of device.ports ?? []) {
      if (!(Number.isInteger(port) && port >= 0 && port <= 0xffff)) throw new RangeError(`${device.name}: bad port ${port}`);
      const owner = this.byPort[port];
      if (owner) throw new Error(`port 0x${port.toString(16)} claimed by both ${owner.name} and ${device.name}`);
      this.byPort[port] = device;
    }
  }

  /** The device answering `port`, if any. */
  deviceAt(port: number): Device | null {
    return this.byPort[port & 0xffff]!;
  }

  read(port: number, size: AccessSize): number {
    port &= 0xffff;
    const d = this.byPort[port];
    const value = d?.ioRead ? d.ioRead(port, size) : ALL_ONES[size];
    this.observer?.(port, size, value, false);
    return value;
  }

  write(port: number, size: AccessSize, value: number): void {
    port &= 0xffff;
    this.byPort[port]?.ioWrite?.(port, size, value);
    this.observer?.(port, size, value, true);
  }
}
