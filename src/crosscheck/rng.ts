// The cross-check's own seeded PRNG (mulberry32): the seed alone makes a test ROM, so any
// disagreement can be rebuilt from the seed and the test index printed with it.

export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed | 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** A 32-bit value biased towards the edges arithmetic cares about (0, 1, signs, carries). */
  value32(): number {
    switch (this.int(8)) {
      case 0: return this.pick([0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe]);
      case 1: return this.int(256);
      case 2: return (0xffffff00 | this.int(256)) >>> 0;
      case 3: return (this.u32() & 0xffff) >>> 0;
      default: return this.u32();
    }
  }
}

/** Derives the seed of test `index` of a run from the run's seed (splitmix32-style). */
export function testSeed(runSeed: number, index: number): number {
  let z = (Math.imul(runSeed | 0, 0x9e3779b1) + Math.imul(index + 1, 0x85ebca6b)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}
