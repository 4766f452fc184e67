// `npm run bench -- [--peers] [--json] [--runs N] [--quick] [--only a,b] [--clock wall|cpu] [--no-record]`
//
// The speed benchmark: each workload ROM of corpus/bench (src/bench/workloads.ts) on trapdiff
// in-process, as MIPS (its exact instruction count over the median wall time of N runs) and as
// a ratio to the first workload; the snapshot/restore rate; with --peers the same ROMs on v86,
// Bochs and QEMU in the same run, and trapdiff's speed as a fraction of each. Every run's
// checksum must match the others' (and the recorded one): a mismatch is reported and makes the
// exit status 1. The table goes to stdout (--json: one JSON object instead), progress to
// stderr. --clock cpu times by CPU time (user + system) instead of wall time, which a busy
// machine disturbs less. Then the record/replay section (src/bench/record.ts; --no-record skips
// it): each workload plain, recorded and replayed under the live environment, the trace's bytes
// per input, and seeking in the longest trace. docs/BENCH.md describes the method and the figures.

import { cpus, totalmem } from 'node:os';
import { availablePeers, type Peer } from '../src/bench/peers.js';
import { recordBench, seekBench, type RecordBench, type SeekBench } from '../src/bench/record.js';
import { runTrapdiff, snapshotRate, type BenchClock, type SnapshotRate } from '../src/bench/trapdiff.js';
import {
  instructionCount, knownChecksum, NULL_WORKLOAD, patchIterations, readRom, romIterations, WORKLOADS, type Workload,
} from '../src/bench/workloads.js';

interface Options {
  peers: boolean;
  json: boolean;
  runs: number;
  quick: boolean;
  only: string[] | null;
  clock: BenchClock;
  record: boolean;
}

const USAGE = 'npm run bench -- [--peers] [--json] [--runs N] [--quick] [--only alu,mem,...] [--clock wall|cpu] [--no-record]';

function parseOptions(argv: string[]): Options {
  const o: Options = { peers: false, json: false, runs: 3, quick: false, only: null, clock: 'wall', record: true };
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--peers') o.peers = true;
    else if (a === '--json') o.json = true;
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-record') o.record = false;
    else if (a === '--runs' || a === '--only' || a === '--clock') {
      const v = argv[++k];
      if (v === undefined) throw new Error(`${a} needs a value\nusage: ${USAGE}`);
      if (a === '--only') o.only = v.split(',');
      else if (a === '--clock') {
        if (v !== 'wall' && v !== 'cpu') throw new Error(`--clock ${v}: wall or cpu`);
        o.clock = v;
      }
      else if (!/^[1-9]\d*$/.test(v)) throw new Error(`--runs ${v}: not a positive integer`);
      else o.runs = Number(v);
    } else throw new Error(`unknown option ${a}\nusage: ${USAGE}`);
  }
  const names = WORKLOADS.map((w) => w.name);
  for (const n of o.only ?? []) if (!names.includes(n)) throw new Error(`--only: no workload ${n} (there are ${names.join(', ')})`);
  return o;
}

/** One emulator's result on one workload. */
interface Result {
  /** Wall time of each run, in seconds. */
  seconds: number[];
  /** CPU time (user + system) of each run, in seconds. */
  cpuSeconds: number[];
  /** Median time by the chosen clock, less the emulator's startup baseline where it has one. */
  netSeconds: number | null;
  mips: number | null;
  output: string;
  /** The checksum line agrees with the other emulators' and the recorded one. */
  checksumOk: boolean;
  instructionsCounted?: number;
  error?: string;
}

interface WorkloadReport {
  name: string;
  description: string;
  iterations: number;
  instructions: number;
  checksum: string | null;
  trapdiff: Result;
  /** trapdiff MIPS over the first workload's. */
  ratioToFirst: number | null;
  peers: Record<string, Result & { baselineSeconds: number | null; trapdiffRatio: number | null }>;
}

const log = (s: string): void => void process.stderr.write(s + '\n');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

type Timed = Omit<Result, 'netSeconds' | 'mips' | 'checksumOk'>;

/** N timed runs; stops at the first error (a run that fails once would fail again). */
async function timeRuns(runs: number, run: () => Promise<{ seconds: number; cpuSeconds: number; output: string; instructions?: number }>): Promise<Timed> {
  const seconds: number[] = [];
  const cpuSeconds: number[] = [];
  let output = '';
  let instructionsCounted: number | undefined;
  for (let k = 0; k < runs; k++) {
    let r;
    try {
      r = await run();
    } catch (e) {
      return { seconds, cpuSeconds, output, error: errorText(e) };
    }
    if (k > 0 && r.output !== output) return { seconds, cpuSeconds, output, error: `output changed between runs: ${JSON.stringify(output)}, then ${JSON.stringify(r.output)}` };
    seconds.push(r.seconds);
    cpuSeconds.push(r.cpuSeconds);
    output = r.output;
    instructionsCounted = r.instructions;
  }
  return { seconds, cpuSeconds, output, ...(instructionsCounted === undefined ? {} : { instructionsCounted }) };
}

/** The median time of the runs by the chosen clock. */
const medianTime = (r: Timed, clock: Options['clock']): number => median(clock === 'wall' ? r.seconds : r.cpuSeconds);

function finish(r: Timed, clock: Options['clock'], instructions: number, baseline: number | null): Result {
  if (r.error !== undefined || r.seconds.length === 0) return { ...r, netSeconds: null, mips: null, checksumOk: false };
  const net = medianTime(r, clock) - (baseline ?? 0);
  // A net time at or below zero means the workload is lost in the peer's startup noise.
  return { ...r, netSeconds: net > 0 ? net : null, mips: net > 0 ? instructions / net / 1e6 : null, checksumOk: false };
}

/** The checksum printed by the guest (its one line), or null for output of another shape. */
function checksumOf(output: string): string | null {
  const m = /^([0-9A-F]{8})\n$/.exec(output);
  return m === null ? null : m[1];
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const workloads = WORKLOADS.filter((w) => o.only === null || o.only.includes(w.name));
  const romFor = (w: Workload): Uint8Array => {
    const rom = readRom(w);
    return o.quick ? patchIterations(rom, w.quickIterations) : rom;
  };
  // The snapshot rate first, on a fresh heap: the workloads' machines (64 MiB each) leave garbage
  // whose collection would be charged to it.
  let snapshot: SnapshotRate | { error: string };
  log('trapdiff: snapshot/restore rate');
  try {
    snapshot = snapshotRate(WORKLOADS.find((w) => w.name === 'paging')!, o.quick ? 0.3 : 1, o.clock);
  } catch (e) {
    snapshot = { error: errorText(e) };
  }
  const { peers, missing } = o.peers ? availablePeers() : { peers: [] as Peer[], missing: [] as string[] };
  for (const m of missing) log(`peer skipped: ${m}`);

  // Each peer's startup cost: the median time of the null ROM.
  const baselines = new Map<string, number | null>();
  const baselineRuns: Record<string, Timed> = {};
  for (const p of peers) {
    log(`${p.name}: baseline (null ROM) x${o.runs}`);
    const r = (baselineRuns[p.name] = await timeRuns(o.runs, () => p.run(readRom(NULL_WORKLOAD))));
    if (r.error !== undefined) log(`${p.name}: baseline failed: ${r.error}`);
    baselines.set(p.name, r.error === undefined ? medianTime(r, o.clock) : null);
  }

  const reports: WorkloadReport[] = [];
  for (const w of workloads) {
    const rom = romFor(w);
    const iterations = romIterations(rom);
    const instructions = instructionCount(w, iterations);
    log(`trapdiff: ${w.name} (${instructions} instructions) x${o.runs}`);
    const trapdiff = finish(await timeRuns(o.runs, async () => runTrapdiff(w, rom)), o.clock, instructions, null);
    if (trapdiff.error !== undefined) log(`trapdiff: ${w.name}: ${trapdiff.error}`);
    const peerResults: WorkloadReport['peers'] = {};
    for (const p of peers) {
      log(`${p.name}: ${w.name} x${o.runs}`);
      const baseline = baselines.get(p.name) ?? null;
      const r = finish(await timeRuns(o.runs, () => p.run(rom)), o.clock, instructions, baseline);
      if (r.error !== undefined) log(`${p.name}: ${w.name}: ${r.error}`);
      peerResults[p.name] = { ...r, baselineSeconds: baseline, trapdiffRatio: null };
    }
    // The checksum: the recorded one, else what the emulators agree on.
    const all = [trapdiff, ...Object.values(peerResults)].filter((r) => r.error === undefined);
    const recorded = knownChecksum(w, iterations);
    const checksum = recorded ?? (all.length > 0 ? checksumOf(all[0].output) : null);
    for (const r of all) r.checksumOk = checksum !== null && checksumOf(r.output) === checksum;
    for (const r of Object.values(peerResults)) {
      if (r.mips !== null && trapdiff.mips !== null) r.trapdiffRatio = trapdiff.mips / r.mips;
    }
    reports.push({ name: w.name, description: w.description, iterations, instructions, checksum, trapdiff, ratioToFirst: null, peers: peerResults });
  }
  const first = reports[0]?.trapdiff.mips ?? null;
  for (const r of reports) r.ratioToFirst = first !== null && r.trapdiff.mips !== null ? r.trapdiff.mips / first : null;
  const recording = o.record ? recordSection(workloads, romFor, o) : null;

  const ok = reports.every((r) => [r.trapdiff, ...Object.values(r.peers)].every((x) => x.checksumOk)) &&
    (recording === null || (recording.workloads.every((r) => !('error' in r)) && !('error' in recording.seek)));
  const report = {
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version, platform: `${process.platform}-${process.arch}`,
    },
    runs: o.runs,
    quick: o.quick,
    clock: o.clock,
    method: {
      mips: `exact retired-instruction count of the workload (REP string instruction = 1, faulting instruction = 0) / median ${o.clock === 'wall' ? 'wall' : 'CPU (user + system)'} time`,
      trapdiff: 'in-process, Machine.run() only',
      peers: Object.fromEntries(peers.map((p) => [p.name, `${p.measures}, minus its median time on the null ROM`])),
      trapdiffRatio: 'trapdiff MIPS / peer MIPS (1 = as fast as the peer)',
    },
    peersSkipped: missing,
    baselines: baselineRuns,
    workloads: reports,
    snapshot,
    record: recording,
    ok,
  };
  process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' :
    formatTable(report.workloads, peers.map((p) => p.name), snapshot, report.method.peers, o) + (recording === null ? '' : formatRecord(recording, o)));
  if (!ok) log('CHECKSUM MISMATCH or failed run: see the table');
  return ok ? 0 : 1;
}

interface RecordSection {
  method: string;
  workloads: Array<RecordBench | { workload: string; error: string }>;
  seek: SeekBench | { workload: string; error: string };
}

/** The record/replay figures of each workload, and seeking in the longest trace (alu's when selected). */
function recordSection(workloads: readonly Workload[], romFor: (w: Workload) => Uint8Array, o: Options): RecordSection {
  const out: RecordSection['workloads'] = [];
  for (const w of workloads) {
    log(`trapdiff: ${w.name} plain, recorded and replayed (env live) x${o.runs}`);
    try {
      out.push(recordBench(w, romFor(w), o.runs, o.clock));
    } catch (e) {
      out.push({ workload: w.name, error: errorText(e) });
    }
  }
  const longest = workloads.find((w) => w.name === 'alu') ?? workloads[0]!;
  log(`trapdiff: seeking in the ${longest.name} trace`);
  let seek: RecordSection['seek'];
  try {
    seek = seekBench(longest, romFor(longest), o.clock);
  } catch (e) {
    seek = { workload: longest.name, error: errorText(e) };
  }
  return {
    method: `each run from a fresh machine (64 MiB) to the power-off port, timed whole by ${o.clock === 'wall' ? 'wall' : 'CPU'} time ` +
      '(machine built, ROM loaded, run; the trace written to a temporary file); record() and replay() with the default K and M; ' +
      'the three ways one after the other in each round, each round starting with another; seconds, overhead and replay/plain: ' +
      'of each way\'s best run (the least disturbed: run times on this machine are bimodal, by the JIT\'s outcome and the load); ' +
      'median: the median of the rounds\' ratios',
    workloads: out, seek,
  };
}

function formatRecord(s: RecordSection, o: Options): string {
  const head = ['workload', 'plain s', 'record s', 'overhead', '(median)', 'replay s', 'replay/plain', '(median)', 'trace bytes', 'inputs', 'bytes/input', 'per input'];
  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
  const rows = s.workloads.map((r) => 'error' in r
    ? [r.workload, 'FAILED', '', '', '', '', '', '', '', '', '', '']
    : [r.workload, r.plainSeconds.toFixed(3), r.recordSeconds.toFixed(3), pct(r.recordOverhead), pct(r.median.recordOverhead),
      r.replaySeconds.toFixed(3), r.replayRatio.toFixed(3), r.median.replayRatio.toFixed(3),
      String(r.traceBytes), String(r.events['input'] ?? 0), fmt(r.bytesPerInput), fmt(r.inputBytesPerInput)]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join('  ');
  const out = [
    '',
    `record/replay under the live environment (${o.runs} rounds, ${o.clock === 'wall' ? 'wall' : 'CPU'} time; seconds and ratios of each way's best run,`,
    '  (median): the median of the rounds\' ratios; targets: recording within 5% of plain, replay no slower):',
    line(head), ...rows.map(line),
    'bytes/input: the whole trace over its inputs; per input: a trace of the inputs alone over their number',
  ];
  for (const r of s.workloads) if ('error' in r) out.push(`record ${r.workload}: ${r.error}`);
  if ('error' in s.seek) out.push(`seek in ${s.seek.workload}: FAILED: ${s.seek.error}`);
  else {
    const k = s.seek;
    out.push(`seek in the ${k.workload} trace (${k.instructions} instructions, a snapshot every ${k.snapshotEvery}): ` +
      `${k.viaSnapshotMs.toFixed(0)} ms via the nearest snapshot, ${k.fromStartMs.toFixed(0)} ms from instruction 0 ` +
      `(median over ${k.points.length} points at ${k.points.join(', ')})`);
  }
  return out.join('\n') + '\n';
}

const fmt = (x: number | null, digits = 1): string => (x === null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(digits));

function formatTable(reports: WorkloadReport[], peerNames: string[], snapshot: SnapshotRate | { error: string }, peerMethods: Record<string, string>, o: Options): string {
  const head = ['workload', 'instructions', 'checksum', 'trapdiff MIPS', 'vs first'];
  for (const p of peerNames) head.push(`${p} MIPS`, `trapdiff/${p}`);
  const rows = reports.map((r) => {
    const mark = (x: Result): string => (x.error !== undefined ? ' FAILED' : x.checksumOk ? '' : ' BAD CHECKSUM');
    const row = [r.name, String(r.instructions), r.checksum ?? '?', fmt(r.trapdiff.mips) + mark(r.trapdiff), fmt(r.ratioToFirst, 2)];
    for (const p of peerNames) {
      const x = r.peers[p];
      row.push(fmt(x.mips) + mark(x), fmt(x.trapdiffRatio, 3));
    }
    return row;
  });
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]): string => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  ');
  const out = [
    `trapdiff benchmark: median of ${o.runs} run(s)${o.quick ? ', --quick sizes' : ''}; MIPS = the workload's exact instruction count / ${o.clock === 'wall' ? 'wall' : 'CPU'} time`,
    line(head),
    ...rows.map(line),
    '',
  ];
  if ('error' in snapshot) out.push(`snapshot/restore: FAILED: ${snapshot.error}`);
  else {
    out.push(`snapshot/restore (${snapshot.guest} guest): ${fmt(snapshot.restoresPerSecond)} restores/s, each after ${snapshot.runInsns} instructions from the snapshot; ` +
      `${fmt(snapshot.snapshotsPerSecond)} snapshots/s`);
  }
  for (const [p, m] of Object.entries(peerMethods)) out.push(`${p}: ${m}`);
  for (const r of reports) {
    for (const [name, x] of [['trapdiff', r.trapdiff] as const, ...Object.entries(r.peers)]) {
      if (x.error !== undefined) out.push(`${name} ${r.name}: ${x.error}`);
      else if (!x.checksumOk) out.push(`${name} ${r.name}: printed ${JSON.stringify(x.output)}, expected ${r.checksum ?? '?'}`);
    }
  }
  return out.join('\n') + '\n';
}

main().then(
  (status) => process.exit(status),
  (e: unknown) => {
    log(`bench: ${errorText(e)}`);
    process.exit(2);
  },
);
