// Converts between virtual time (cpu.cycles, at env.cyclesPerSecond) and a device's own input
// clock (the PIT's 1.193182 MHz, the RTC's 32.768 kHz). Devices never read host time: a device
// clock is a pure function of the cycle count, computed exactly in integers so that tick
// boundaries never drift however long a run lasts.

export class DeviceClock {
  constructor(
    /** Virtual cycles per second (env.cyclesPerSecond). */
    readonly cyclesPerSecond: number,
    /** Device input clock in Hz. */
    readonly hz: number,
  ) {
    if (!(Number.isInteger(cyclesPerSecond) && cyclesPerSecond > 0 && Number.isInteger(hz) && hz > 0)) {
      throw new RangeError(`clock rates must be positive integers (${cyclesPerSecond}, ${hz})`);
    }
  }

  /**
   * Device ticks elapsed at virtual time `cycles`: floor(cycles * hz / cyclesPerSecond), split
   * into whole seconds and a remainder so that no intermediate product exceeds 2^53.
   */
  ticksAt(cycles: number): number {
    const cps = this.cyclesPerSecond;
    const sec = Math.floor(cycles / cps);
    return sec * this.hz + Math.floor(((cycles - sec * cps) * this.hz) / cps);
  }

  /** The first virtual cycle at which ticksAt() reaches `tick`. */
  cycleOfTick(tick: number): number {
    const sec = Math.floor(tick / this.hz);
    let c = sec * this.cyclesPerSecond + Math.ceil(((tick - sec * this.hz) * this.cyclesPerSecond) / this.hz);
    // The float division above can be one off at an exact boundary; settle it with ticksAt.
    while (this.ticksAt(c) < tick) c++;
    while (c > 0 && this.ticksAt(c - 1) >= tick) c--;
    return c;
  }
}
