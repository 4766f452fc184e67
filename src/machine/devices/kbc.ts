// The 8042 keyboard controller at 0x60 (data) / 0x64 (status/command), with a PS/2 keyboard
// that answers its commands but has no keys pressed, and the chipset's port 0x92 ("system
// control port A": fast A20 on bit 1, fast reset on bit 0).
//
// What PC software does with it is modelled: the controller command byte (0x20/0x60), the
// self tests (0xAA -> 0x55, 0xAB/0xA9 -> 0x00), keyboard/aux enable and disable, the output
// port (0xD0 read, 0xD1 write: bit 1 is the A20 gate, bit 0 low resets the system), 0xDD/0xDF
// (A20 off/on), the 0xF0-0xFF output pulses (0xFE resets the system), writes into the output
// buffer (0xD2/0xD3), and the keyboard's replies (ACK 0xFA, reset 0xAA, identify 0xAB 0x83,
// echo, scan-code set). Commands complete at once: IBF never reads 1. There is no mouse:
// bytes sent to the aux device (0xD4) go nowhere.
//
// A20: the controller's output-port bit and port 0x92 bit 1 both drive the gate, the last write
// winning, as in Bochs and QEMU; both read back the gate's state. A reset requested here resets
// the CPU and the devices; the controller keeps its system flag across it (status bit 2, how a
// BIOS tells a warm reset from power-on).

import type { MachineContext } from '../device.js';
import { ByteIoDevice, cloneState } from './ports.js';

// Status register bits.
const ST_OBF = 0x01, ST_SYS = 0x04, ST_CMD = 0x08, ST_UNLOCKED = 0x10, ST_AUXB = 0x20;
// Command byte bits.
const CB_KBD_INT = 0x01, CB_AUX_INT = 0x02, CB_SYS = 0x04, CB_KBD_OFF = 0x10, CB_AUX_OFF = 0x20, CB_XLAT = 0x40;
/** Queued output byte that came from the aux device (bit 8 of a queue entry). */
const FROM_AUX = 0x100;

const ACK = 0xfa, RESEND = 0xfe;

interface KbcState {
  cmdByte: number;
  /** Status bits the controller keeps (system flag, last write was a command). */
  status: number;
  /** Output buffer (entry 0) and the bytes queued behind it; bit 8 marks aux bytes. */
  out: number[];
  /** The last byte read from port 0x60 (what a read of an empty buffer returns). */
  lastOut: number;
  /** Controller command waiting for its data byte on port 0x60, or 0. */
  pendingCmd: number;
  /** Keyboard command waiting for its argument byte, or 0. */
  kbdPending: number;
  scancodeSet: number;
  a20: boolean;
  /** Port 0x92 bit 0 as last written. */
  fastReset: number;
}

export class KeyboardController extends ByteIoDevice {
  readonly name = 'kbc';
  readonly ports = [0x60, 0x64, 0x92] as const;
  private s: KbcState = KeyboardController.fresh(0);
  private irq1 = false;
  private irq12 = false;

  constructor(private readonly ctx: MachineContext) {
    super();
  }

  private static fresh(sysFlag: number): KbcState {
    return {
      cmdByte: CB_KBD_INT | CB_AUX_INT | CB_XLAT | sysFlag, status: sysFlag | ST_CMD, out: [], lastOut: 0,
      pendingCmd: 0, kbdPending: 0, scancodeSet: 2, a20: true, fastReset: 0,
    };
  }

  private setA20(enabled: boolean): void {
    this.s.a20 = enabled;
    this.ctx.setA20(enabled);
  }

  private push(byte: number): void {
    this.s.out.push(byte);
    this.updateIrq();
  }

  private updateIrq(): void {
    const head = this.s.out[0];
    const cb = this.s.cmdByte;
    const irq1 = head !== undefined && (head & FROM_AUX) === 0 && (cb & CB_KBD_INT) !== 0;
    const irq12 = head !== undefined && (head & FROM_AUX) !== 0 && (cb & CB_AUX_INT) !== 0;
    if (irq1 !== this.irq1) {
      this.irq1 = irq1;
      if (irq1) this.ctx.raiseIrq(1);
      else this.ctx.lowerIrq(1);
    }
    if (irq12 !== this.irq12) {
      this.irq12 = irq12;
      if (irq12) this.ctx.raiseIrq(12);
      else this.ctx.lowerIrq(12);
    }
  }

  private outputPort(): number {
    const head = this.s.out[0];
    return 0xc1 | (this.s.a20 ? 0x02 : 0) | (head !== undefined ? (head & FROM_AUX ? 0x20 : 0x10) : 0);
  }

  private writeOutputPort(v: number): void {
    this.setA20((v & 0x02) !== 0);
    if ((v & 0x01) === 0) this.ctx.requestReset();
  }

  private command(cmd: number): void {
    const s = this.s;
    switch (cmd) {
      case 0x20: this.push(s.cmdByte); break;
      case 0xa7: s.cmdByte |= CB_AUX_OFF; break;
      case 0xa8: s.cmdByte &= ~CB_AUX_OFF; break;
      case 0xa9: case 0xab: this.push(0x00); break; // interface tests pass
      case 0xaa:
        s.status |= ST_SYS;
        this.push(0x55);
        break;
      case 0xad: s.cmdByte |= CB_KBD_OFF; break;
      case 0xae: s.cmdByte &= ~CB_KBD_OFF; break;
      case 0xc0: this.push(0x80); break; // input port: keyboard not inhibited
      case 0xd0: this.push(this.outputPort()); break;
      case 0xdd: this.setA20(false); break;
      case 0xdf: this.setA20(true); break;
      case 0xe0: this.push(0x00); break; // test inputs
      case 0x60: case 0xd1: case 0xd2: case 0xd3: case 0xd4:
        s.pendingCmd = cmd;
        break;
      default:
        // 0xF0-0xFF pulse output-port bits 3:0 that are 0 in the command; bit 0 is RESET.
        if (cmd >= 0xf0 && (cmd & 1) === 0) this.ctx.requestReset();
        // 0x21-0x3F and 0x61-0x7F address the controller's RAM, which is not modelled: the
        // reads return 0 and the writes' data bytes are swallowed.
        else if (cmd > 0x20 && cmd < 0x40) this.push(0x00);
        else if (cmd > 0x60 && cmd < 0x80) s.pendingCmd = cmd;
    }
  }

  private commandData(cmd: number, v: number): void {
    const s = this.s;
    switch (cmd) {
      case 0x60:
        s.cmdByte = v;
        s.status = (s.status & ~ST_SYS) | (v & CB_SYS);
        this.updateIrq();
        break;
      case 0xd1: this.writeOutputPort(v); break;
      case 0xd2: this.push(v); break;
      case 0xd3: this.push(v | FROM_AUX); break;
      // 0xD4 (to the aux device) and RAM writes: no device, no RAM.
    }
  }

  /** A byte for the keyboard itself. */
  private keyboard(v: number): void {
    const s = this.s;
    const pending = s.kbdPending;
    if (pending !== 0) {
      s.kbdPending = 0;
      if (pending === 0xf0) {
        if (v === 0) {
          this.push(ACK);
          // With translation on, the controller turns the set number into its set-1 code.
          this.push(s.cmdByte & CB_XLAT ? [0, 0x43, 0x41, 0x3f][s.scancodeSet]! : s.scancodeSet);
          return;
        }
        if (v <= 3) s.scancodeSet = v;
      }
      this.push(ACK);
      return;
    }
    switch (v) {
      case 0xff: // reset and self-test
        s.scancodeSet = 2;
        this.push(ACK);
        this.push(0xaa);
        break;
      case 0xf2: // identify: an MF2 keyboard (0x83 translated to 0x41)
        this.push(ACK);
        this.push(0xab);
        this.push(s.cmdByte & CB_XLAT ? 0x41 : 0x83);
        break;
      case 0xee: this.push(0xee); break; // echo
      case 0xed: case 0xf3: case 0xf0: // LEDs, typematic rate, scan-code set: an argument follows
        s.kbdPending = v;
        this.push(ACK);
        break;
      default:
        // Enable/disable scanning, defaults and the typematic modes (0xF4-0xFD) are acknowledged;
        // anything else is asked again.
        this.push(v >= 0xf4 && v <= 0xfd ? ACK : RESEND);
    }
  }

  protected readByte(port: number): number {
    const s = this.s;
    if (port === 0x92) return (s.fastReset & 1) | (s.a20 ? 0x02 : 0);
    const head = s.out[0];
    if (port === 0x64) {
      return (s.status & (ST_SYS | ST_CMD)) | ST_UNLOCKED | (head !== undefined ? ST_OBF | (head & FROM_AUX ? ST_AUXB : 0) : 0);
    }
    if (head !== undefined) {
      s.out.shift();
      s.lastOut = head & 0xff;
      // Lower the line first so that the next queued byte is a fresh edge.
      if (this.irq1 || this.irq12) {
        const wasAux = this.irq12;
        this.irq1 = this.irq12 = false;
        this.ctx.lowerIrq(wasAux ? 12 : 1);
      }
      this.updateIrq();
    }
    return s.lastOut;
  }

  protected writeByte(port: number, v: number): void {
    const s = this.s;
    if (port === 0x92) {
      const rising = (v & 1) !== 0 && (s.fastReset & 1) === 0;
      s.fastReset = v & 1;
      this.setA20((v & 0x02) !== 0);
      if (rising) this.ctx.requestReset();
      return;
    }
    if (port === 0x64) {
      s.status |= ST_CMD;
      s.pendingCmd = 0;
      this.command(v);
      return;
    }
    s.status &= ~ST_CMD;
    if (s.pendingCmd !== 0) {
      const cmd = s.pendingCmd;
      s.pendingCmd = 0;
      this.commandData(cmd, v);
    } else {
      this.keyboard(v);
    }
  }

  reset(): void {
    this.s = KeyboardController.fresh(this.s.status & ST_SYS);
    this.updateIrq();
  }

  save(): unknown {
    return cloneState({ s: this.s, irq1: this.irq1, irq12: this.irq12 });
  }

  restore(saved: unknown): void {
    const r = cloneState(saved as { s: KbcState; irq1: boolean; irq12: boolean });
    this.s = r.s;
    this.irq1 = r.irq1;
    this.irq12 = r.irq12;
  }
}
