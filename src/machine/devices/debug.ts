// The emulator-only ports test guests talk through, as the peer emulators define them:
// - 0xE9: Bochs/QEMU debug console: a written byte goes to the debug output; a read returns
//   0xE9 (how guests detect the port).
// - 0x80 and 0x190: POST code ports (0x80 the PC's, 0x190 Bochs' extended one); the machine
//   records the codes in order.
// - 0xF4: QEMU's isa-debug-exit: a write stops the machine with exit code (value << 1) | 1.
// - 0x8900: Bochs' shutdown port: the bytes of "Shutdown", written in sequence, power off.

import type { MachineContext } from '../device.js';
import { ByteIoDevice } from './ports.js';

const SHUTDOWN = 'Shutdown';

export class DebugPorts extends ByteIoDevice {
  readonly name = 'debug-ports';
  readonly ports = [0xe9, 0x80, 0x190, 0xf4, 0x8900] as const;
  /** Characters of "Shutdown" matched so far on port 0x8900. */
  private shutdownPos = 0;

  constructor(private readonly ctx: MachineContext) {
    super();
  }

  protected readByte(port: number): number {
    return port === 0xe9 ? 0xe9 : 0xff;
  }

  protected writeByte(port: number, v: number): void {
    switch (port) {
      case 0xe9:
        this.ctx.debugOutput(v);
        break;
      case 0x80: case 0x190:
        this.ctx.postCode(v);
        break;
      case 0xf4:
        this.ctx.requestStop('exit', (v << 1) | 1);
        break;
      case 0x8900:
        if (v === SHUTDOWN.charCodeAt(this.shutdownPos)) {
          if (++this.shutdownPos === SHUTDOWN.length) {
            this.shutdownPos = 0;
            this.ctx.requestStop('poweroff');
          }
        } else {
          this.shutdownPos = v === SHUTDOWN.charCodeAt(0) ? 1 : 0;
        }
        break;
    }
  }

  reset(): void {
    this.shutdownPos = 0;
  }

  save(): unknown {
    return { shutdownPos: this.shutdownPos };
  }

  restore(s: unknown): void {
    this.shutdownPos = (s as { shutdownPos: number }).shutdownPos;
  }
}
