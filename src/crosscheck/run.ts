// The cross-check driver: generate tests, pack them into ROMs, run two peers, compare, classify
// disagreements (minimizing by prefix where the report alone does not name an instruction).

import { compareReports, culpritFromReports, describeDiff, diffClass, listing, parseTranscript, type Diff, type Transcript } from './compare.js';
import { generateTest, type PeerProfile, type TestCase } from './generator.js';
import type { Mode } from './modes.js';
import type { Peer } from './peers.js';
import { buildRom, type PlacedTest } from './rom.js';

export interface Example {
  seed: number;
  index: number;
  mode: Mode;
  diff: string;
  /** Items of the minimal failing prefix (or all). */
  items: number;
  listing: string[];
}

export interface ClassSummary {
  name: string;
  count: number;
  example: Example;
}

export interface Summary {
  peers: [string, string];
  seed: number;
  total: number;
  agreed: number;
  /** Tests that reported on both sides and were compared. */
  percent: number;
  classes: ClassSummary[];
  /** Tests that ended in each exception vector (both sides agreeing), for coverage. */
  vectors: Record<string, number>;
}

export interface CrossOptions {
  a: Peer;
  b: Peer;
  seed: number;
  count: number;
  modes: readonly Mode[];
  /** Minimize register/flag/memory disagreements by prefix (extra ROM runs). */
  minimize?: boolean;
  /** At most this many disagreements are minimized per class name before minimization. */
  minimizePerClass?: number;
  onProgress?: (done: number, total: number, agreed: number) => void;
}

/** The union of two peers' exclusions: the generator draws only what both implement. */
export function jointProfile(a: PeerProfile, b: PeerProfile): PeerProfile {
  return {
    name: `${a.name}+${b.name}`,
    exclude: new Set([...a.exclude, ...b.exclude]),
    popfExtra: a.popfExtra & b.popfExtra,
    ignoreFlags: a.ignoreFlags | b.ignoreFlags,
  };
}

async function runBoth(o: CrossOptions, rom: Uint8Array): Promise<[Transcript, Transcript]> {
  const [ta, tb] = await Promise.all([o.a.run(rom), o.b.run(rom)]);
  return [parseTranscript(ta), parseTranscript(tb)];
}

interface Pending {
  p: PlacedTest;
  diff: Diff;
  culprit: string | null;
  items: number;
}

/** Finds the shortest prefix of a test that disagrees; returns its diff and last item's key. */
async function minimize(o: CrossOptions, profile: PeerProfile, tc: TestCase): Promise<{ diff: Diff; culprit: string; placed: PlacedTest } | null> {
  const n = tc.items.length;
  const copies = Array.from({ length: n + 1 }, (_, k) => ({ ...tc, index: k }));
  const counts = copies.map((_, k) => k);
  const rom = buildRom(tc.mode, copies, counts);
  const [ta, tb] = await runBoth(o, rom.rom);
  for (const p of rom.placed) {
    const d = compareReports(p, ta.byIndex.get(p.tc.index), tb.byIndex.get(p.tc.index), profile.ignoreFlags);
    if (d) {
      const k = p.count;
      const culprit = culpritFromReports(p, d, ta.byIndex.get(k), tb.byIndex.get(k)) ?? (k > 0 ? tc.items[k - 1].key : 'harness');
      return { diff: d, culprit, placed: p };
    }
  }
  return null;
}

export async function crossCheck(o: CrossOptions): Promise<Summary> {
  const profile = jointProfile(o.a.profile, o.b.profile);
  let next = 0;
  let done = 0;
  let agreed = 0;
  const vectors: Record<string, number> = {};
  const pending: Pending[] = [];
  let batch = 0;
  while (next < o.count) {
    const mode = o.modes[batch++ % o.modes.length];
    const tests: TestCase[] = [];
    for (let i = next; i < Math.min(o.count, next + 400); i++) tests.push(generateTest(o.seed, i, mode, profile));
    const rom = buildRom(mode, tests);
    next += rom.placed.length;
    const [ta, tb] = await runBoth(o, rom.rom);
    for (const p of rom.placed) {
      const ra = ta.byIndex.get(p.tc.index), rb = tb.byIndex.get(p.tc.index);
      const d = compareReports(p, ra, rb, profile.ignoreFlags);
      done++;
      if (!d) {
        agreed++;
        const v = ra![1];
        vectors[v.toString(16)] = (vectors[v.toString(16)] ?? 0) + 1;
      } else pending.push({ p, diff: d, culprit: culpritFromReports(p, d, ra, rb), items: p.count });
    }
    o.onProgress?.(done, o.count, agreed);
  }

  // Classify: exceptions name their instruction; the rest are minimized (a few per field).
  const classes = new Map<string, ClassSummary>();
  /** The test behind each class's example, while it is not minimized yet. */
  const unminimized = new Map<string, TestCase | null>();
  const minimizedPerField = new Map<string, number>();
  const add = (name: string, ex: Example, tc: TestCase | null): void => {
    const c = classes.get(name);
    if (!c) classes.set(name, { name, count: 1, example: ex });
    else {
      c.count++;
      if (ex.items >= c.example.items) return;
      c.example = ex;
    }
    unminimized.set(name, tc);
  };
  for (const q of pending) {
    let { diff, culprit } = q;
    let placed = q.p;
    let minimized = false;
    const field = diff.field;
    const budget = o.minimizePerClass ?? 40;
    if (culprit === null && o.minimize !== false && (minimizedPerField.get(field) ?? 0) < budget) {
      minimizedPerField.set(field, (minimizedPerField.get(field) ?? 0) + 1);
      const r = await minimize(o, profile, q.p.tc);
      if (r) ({ diff, culprit, placed } = r);
      minimized = r !== null;
    }
    add(diffClass(diff, culprit), {
      seed: o.seed,
      index: q.p.tc.index,
      mode: q.p.tc.mode,
      diff: describeDiff(diff, o.a.name, o.b.name),
      items: placed.count,
      listing: listing(placed),
    }, minimized ? null : q.p.tc);
  }
  // Every class shows a minimal example: the shortest prefix of its test that still disagrees.
  if (o.minimize !== false) {
    for (const [name, tc] of unminimized) {
      if (!tc) continue;
      const r = await minimize(o, profile, tc);
      const c = classes.get(name)!;
      if (r) c.example = { ...c.example, diff: describeDiff(r.diff, o.a.name, o.b.name), items: r.placed.count, listing: listing(r.placed) };
    }
  }
  return {
    peers: [o.a.name, o.b.name],
    seed: o.seed,
    total: done,
    agreed,
    percent: done ? (100 * agreed) / done : 100,
    classes: [...classes.values()].sort((x, y) => y.count - x.count),
    vectors,
  };
}

export function formatSummary(s: Summary): string {
  const lines = [`${s.peers[0]} vs ${s.peers[1]}, seed ${s.seed}: ${s.agreed}/${s.total} agree (${s.percent.toFixed(3)}%)`];
  lines.push(`end vectors of agreeing tests: ${Object.entries(s.vectors).map(([v, n]) => `${v}:${n}`).join(' ')}`);
  for (const c of s.classes) {
    lines.push('', `[${c.count}] ${c.name}`, `  e.g. seed ${c.example.seed} test ${c.example.index} (${c.example.mode}, ${c.example.items} items): ${c.example.diff}`);
    for (const l of c.example.listing) lines.push(`    ${l}`);
  }
  return lines.join('\n');
}

