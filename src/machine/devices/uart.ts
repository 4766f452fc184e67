// A 16550A UART (National Semiconductor PC16550D datasheet) as COM1: 0x3F8-0x3FF, IRQ4.
//
// Modelled: RBR/THR, IER, IIR with the datasheet's interrupt priorities (line status > received
// data / character timeout > THR empty > modem status), FCR (FIFO enable and clear, receive
// trigger levels 1/4/8/14), LCR with DLAB and the divisor latch, MCR (OUT2 gates the IRQ as the
// PC wires it; loopback), LSR (DR, OE, THRE, TEMT), MSR with delta bits, and SCR.
//
// Transmission is instantaneous: a byte written to THR goes to the machine's serial output
// (or, in loopback, into the receiver) at once, and THR is empty again, re-raising the THR-empty
// interrupt. Reception is paced by virtual time: one byte per character time (start, data,
// parity and stop bits at 115200 / divisor baud) is taken from env.serialInput(), on a tick
// when the receive interrupt is enabled, else when the guest polls LSR or RBR; a byte is only
// taken when the FIFO has room, so input is never lost to overrun. The character-timeout
// interrupt (FIFO mode) fires after four character times without receiver activity.
// In loopback the modem outputs are forced inactive (datasheet), which on a PC disconnects the
// IRQ; parity, framing and break errors never occur.

import type { MachineContext } from '../device.js';
import { ByteIoDevice, cloneState } from './ports.js';

const IER_RDA = 0x01, IER_THRE = 0x02, IER_LS = 0x04, IER_MS = 0x08;
const IIR_NONE = 0x01, IIR_MS = 0x00, IIR_THRE = 0x02, IIR_RDA = 0x04, IIR_LS = 0x06, IIR_TIMEOUT = 0x0c, IIR_FIFO = 0xc0;
const FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02;
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80;
/** What the outside world shows on the modem inputs: a connected terminal (CTS, DSR, DCD). */
const MSR_EXTERNAL = MSR_CTS | MSR_DSR | MSR_DCD;
const FIFO_SIZE = 16;
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** The 1.8432 MHz crystal / 16: the baud rate at divisor 1. */
const BASE_BAUD = 115200;

interface UartState {
  rx: number[];
  lastRx: number;
  ier: number;
  lcr: number;
  mcr: number;
  fcr: number;
  scr: number;
  divisor: number;
  /** LSR error bits (OE) latched until LSR is read. */
  lsrErrors: number;
  /** MSR delta bits (3:0) latched until MSR is read. */
  msrDelta: number;
  /** MSR inputs (7:4) last seen, for the deltas. */
  msrInputs: number;
  threPending: boolean;
  /** Virtual time of the last receiver activity (a byte in or out of the FIFO). */
  rxActivity: number;
  /** Earliest virtual time the next input byte may arrive. */
  nextRx: number;
  irq: boolean;
}

export class Uart16550 extends ByteIoDevice {
  readonly name: string;
  readonly ports: readonly number[];
  private s: UartState;

  constructor(private readonly ctx: MachineContext, private readonly com = 1, private readonly base = 0x3f8, private readonly irqLine = 4) {
    super();
    this.name = `com${com}`;
    this.ports = Array.from({ length: 8 }, (_, i) => base + i);
    this.s = this.fresh();
  }

  private fresh(): UartState {
    // The datasheet's master-reset values; the divisor (undefined there) starts at 12 (9600 baud).
    return {
      rx: [], lastRx: 0, ier: 0, lcr: 0, mcr: 0, fcr: 0, scr: 0, divisor: 12, lsrErrors: 0, msrDelta: 0,
      msrInputs: MSR_EXTERNAL, threPending: false, rxActivity: 0, nextRx: 0, irq: false,
    };
  }

  private fifoOn(): boolean {
    return (this.s.fcr & FCR_ENABLE) !== 0;
  }

  private loop(): boolean {
    return (this.s.mcr & MCR_LOOP) !== 0;
  }

  /** One character time in virtual cycles, from LCR's frame and the divisor. */
  private charCycles(): number {
    const lcr = this.s.lcr, dataBits = 5 + (lcr & 3);
    const stopBits = lcr & 4 ? (dataBits === 5 ? 1.5 : 2) : 1;
    const bits = 1 + dataBits + (lcr & 8 ? 1 : 0) + stopBits;
    const divisor = this.s.divisor || 0x10000;
    return Math.max(1, Math.round((this.ctx.env.cyclesPerSecond * bits * divisor) / BASE_BAUD));
  }

  /** A byte arrives at the receiver (from the Env or looped back). */
  private receive(byte: number, now: number): void {
    const s = this.s;
    if (s.rx.length >= (this.fifoOn() ? FIFO_SIZE : 1)) {
      s.lsrErrors |= LSR_OE;
      // Without FIFOs the new byte overwrites RBR; with them the FIFO is kept and it is lost.
      if (!this.fifoOn()) s.rx[0] = byte;
    } else {
      s.rx.push(byte);
    }
    s.rxActivity = now;
  }

  /** Takes the next byte from the outside world when one is due and there is room. */
  private pollInput(now: number): void {
    const s = this.s;
    if (this.loop() || now < s.nextRx || s.rx.length >= (this.fifoOn() ? FIFO_SIZE : 1)) return;
    const b = this.ctx.env.serialInput(now);
    if (b !== null) this.receive(b & 0xff, now);
    s.nextRx = now + this.charCycles();
  }

  private timedOut(now: number): boolean {
    return this.s.rx.length > 0 && now >= this.s.rxActivity + 4 * this.charCycles();
  }

  /** The IIR interrupt identification now (IIR_NONE if nothing is pending). */
  private source(now: number): number {
    const s = this.s;
    if (s.ier & IER_LS && s.lsrErrors) return IIR_LS;
    if (s.ier & IER_RDA && s.rx.length > 0) {
      if (!this.fifoOn() || s.rx.length >= TRIGGER_LEVELS[s.fcr >> 6]!) return IIR_RDA;
      if (this.timedOut(now)) return IIR_TIMEOUT;
    }
    if (s.ier & IER_THRE && s.threPending) return IIR_THRE;
    if (s.ier & IER_MS && s.msrDelta) return IIR_MS;
    return IIR_NONE;
  }

  private updateIrq(now: number): void {
    const s = this.s;
    const level = this.source(now) !== IIR_NONE && (s.mcr & MCR_OUT2) !== 0 && !this.loop();
    if (level !== s.irq) {
      s.irq = level;
      if (level) this.ctx.raiseIrq(this.irqLine);
      else this.ctx.lowerIrq(this.irqLine);
    }
  }

  /** MSR bits 7:4: looped-back MCR outputs, or the outside world's lines. */
  private modemInputs(): number {
    const m = this.s.mcr;
    if (!this.loop()) return MSR_EXTERNAL;
    return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0) | (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
  }

  private refreshModem(): void {
    const s = this.s, inputs = this.modemInputs(), changed = inputs ^ s.msrInputs;
    // Delta CTS/DSR/DCD on any change; TERI only on RI's trailing edge.
    s.msrDelta |= ((changed >> 4) & 0x0b) | (changed & s.msrInputs & MSR_RI ? 0x04 : 0);
    s.msrInputs = inputs;
  }

  nextDeadline(): number {
    const s = this.s;
    if ((s.ier & IER_RDA) === 0) return Infinity;
    let next = this.loop() || s.rx.length >= (this.fifoOn() ? FIFO_SIZE : 1) ? Infinity : s.nextRx;
    if (this.fifoOn() && s.rx.length > 0) {
      const timeout = s.rxActivity + 4 * this.charCycles();
      if (timeout > this.ctx.now()) next = Math.min(next, timeout);
    }
    return next;
  }

  tick(now: number): void {
    this.pollInput(now);
    this.updateIrq(now);
  }

  protected readByte(port: number): number {
    const s = this.s, now = this.ctx.now();
    let v: number;
    switch (port - this.base) {
      case 0:
        if (s.lcr & LCR_DLAB) return s.divisor & 0xff;
        this.pollInput(now);
        if (s.rx.length > 0) {
          s.lastRx = s.rx.shift()!;
          s.rxActivity = now;
        }
        v = s.lastRx;
        break;
      case 1:
        return s.lcr & LCR_DLAB ? s.divisor >> 8 : s.ier;
      case 2: {
        const src = this.source(now);
        if (src === IIR_THRE) s.threPending = false;
        v = src | (this.fifoOn() ? IIR_FIFO : 0);
        break;
      }
      case 3: return s.lcr;
      case 4: return s.mcr;
      case 5:
        this.pollInput(now);
        v = (s.rx.length > 0 ? LSR_DR : 0) | s.lsrErrors | LSR_THRE | LSR_TEMT;
        s.lsrErrors = 0;
        break;
      case 6:
        v = s.msrInputs | s.msrDelta;
        s.msrDelta = 0;
        break;
      default: return s.scr;
    }
    this.updateIrq(now);
    return v;
  }

  protected writeByte(port: number, v: number): void {
    const s = this.s, now = this.ctx.now();
    switch (port - this.base) {
      case 0:
        if (s.lcr & LCR_DLAB) {
          s.divisor = (s.divisor & 0xff00) | v;
          break;
        }
        // THR: the byte leaves at once; THR is empty again, a fresh THRE interrupt.
        s.threPending = false;
        this.updateIrq(now);
        if (this.loop()) this.receive(v, now);
        else this.ctx.serialOutput(this.com, v);
        s.threPending = true;
        break;
      case 1:
        if (s.lcr & LCR_DLAB) {
          s.divisor = (s.divisor & 0xff) | (v << 8);
          break;
        }
        // Enabling the THRE interrupt with THR empty raises it (16550 behaviour).
        if (v & IER_THRE && (s.ier & IER_THRE) === 0) s.threPending = true;
        s.ier = v & 0x0f;
        break;
      case 2:
        if ((v ^ s.fcr) & FCR_ENABLE) s.rx.length = 0; // switching FIFO mode clears the FIFOs
        if (v & FCR_ENABLE) {
          if (v & FCR_CLEAR_RX) s.rx.length = 0;
          s.fcr = v & 0xc9;
        } else {
          s.fcr = 0;
        }
        break;
      case 3: s.lcr = v; break;
      case 4:
        s.mcr = v & 0x1f;
        this.refreshModem();
        break;
      case 5: case 6: break; // LSR and MSR are read-only (factory test writes are ignored)
      default: s.scr = v;
    }
    this.updateIrq(now);
    // IER, FCR, LCR and MCR move the receive/timeout deadline (THR and SCR do not).
    if (port - this.base >= 1 && port - this.base <= 4) this.ctx.deadlineChanged();
  }

  reset(): void {
    if (this.s.irq) this.ctx.lowerIrq(this.irqLine);
    this.s = this.fresh();
    this.s.nextRx = this.ctx.now();
  }

  save(): unknown {
    return cloneState(this.s);
  }

  restore(saved: unknown): void {
    this.s = cloneState(saved as UartState);
  }
}
