// The exact search for the first divergent instruction: two executions (ReplayMachines, fed by
// the same input log or each by its own) that stand at the same instruction count in the same
// state are stepped together, and the full state (architectural state, RAM, devices) and the
// inputs each consumed are compared after every instruction. To keep that affordable over long
// stretches they first go in chunks compared at the chunk's end; a chunk that ends different
// is rewound (copy-on-write marks) and replayed one instruction at a time.

import { ACC_EXEC, AR_DB, CS } from '../cpu/constants.js';
import { disassemble } from '../cpu/disasm.js';
import type { Machine, RunResult } from '../machine/machine.js';
import { deviceChanges, diffStates, memoryRanges, unifiedDiff, type DiffExtras, type StateDiff } from './diff.js';
import type { InputEvent } from './format.js';
import { describeEvent } from './observations.js';
import type { ReplayMachine } from './replay-machine.js';
import { stateHash, type ArchState } from './state.js';

/** The first instruction after which two executions differ. */
export interface FirstDifference {
  /** state: registers, memory or devices differ; input: the inputs consumed differ; stop: one run stopped otherwise. */
  kind: 'state' | 'input' | 'stop';
  /**
   * Instructions retired before the differing instruction (it ran while cpu.icount was this
   * value, the numbering of trace events); both states below are taken after it.
   */
  icount: number;
  /** Its address (EIP) and linear address, and its disassembly. */
  eip: number;
  linear: number;
  instruction: string;
  /** One line. */
  message: string;
  a: ArchState;
  b: ArchState;
  /** Inputs each side consumed while executing it. */
  inputs: { a: InputEvent[]; b: InputEvent[] };
  diff: StateDiff;
  /** Unified diff of the two states' text renderings (labels: the sides' names). */
  text: string;
}

export interface LockstepOptions {
  /** Names of the two sides in reports (default 'a', 'b'). */
  labels?: [string, string];
  /** Instructions per compared chunk before single-stepping (default 1024; 1: step throughout). */
  chunk?: number;
  onProgress?: (icount: number) => void;
}

/** Where the instruction that is about to run (or was just run) lies, for the disassembly. */
export interface CodePlace {
  eip: number;
  csBase: number;
  d32: boolean;
}

/** Where the machine's next instruction lies (CS:EIP now). */
export function codePlace(m: Machine): CodePlace {
  const cpu = m.cpu;
  return { eip: cpu.eip, csBase: cpu.segBase[CS]!, d32: (cpu.segAr[CS]! & AR_DB) !== 0 };
}

/** The instruction at `p` disassembled (bytes read through the CPU's paging), or why not. */
function disassembleAt(m: Machine, p: CodePlace): { linear: number; text: string } {
  const cpu = m.cpu;
  const linear = (p.csBase + p.eip) >>> 0;
  const bytes = new Uint8Array(15);
  try {
    for (let k = 0; k < 15; k++) bytes[k] = cpu.readPhys8(cpu.translateLinear((linear + k) | 0, ACC_EXEC, cpu.cpl === 3));
  } catch {
    return { linear, text: '(code not readable)' };
  }
  const line = disassemble(bytes, p.d32 ? 32 : 16, p.eip)[0]!;
  return { linear, text: `${line.text}  [${line.bytes}]` };
}

interface Step {
  run: RunResult;
  inputs: InputEvent[];
  state: ArchState;
  hash: string;
}

function advance(rm: ReplayMachine, n: number): Step {
  const from = rm.env.position;
  const run = rm.runTo(rm.icount + n);
  const state = rm.state.capture();
  return { run, inputs: rm.trace.inputs.slice(from, rm.env.position), state, hash: stateHash(state) };
}

const sameInputs = (a: InputEvent[], b: InputEvent[]): boolean =>
  a.length === b.length && a.every((e, k) => e.source === b[k]!.source && e.value === b[k]!.value);

/** How steps sa and sb differ (kind and one line), or null. */
function compare(sa: Step, sb: Step, labels: [string, string], a: ReplayMachine, b: ReplayMachine): { kind: FirstDifference['kind']; message: string } | null {
  const asked = b.env.mismatch ?? a.env.mismatch;
  if (asked !== null) return { kind: 'input', message: asked.message };
  if (!sameInputs(sa.inputs, sb.inputs)) {
    const k = sa.inputs.findIndex((e, j) => sb.inputs[j]?.source !== e.source || sb.inputs[j]?.value !== e.value);
    const at = k < 0 ? sa.inputs.length : k;
    return { kind: 'input', message: `inputs differ: ${labels[0]} got ${describeEvent(sa.inputs[at] ?? null)}, ${labels[1]} got ${describeEvent(sb.inputs[at] ?? null)}` };
  }
  if (sa.run.stop !== sb.run.stop || sa.state.icount !== sb.state.icount) {
    return { kind: 'stop', message: `${labels[0]} stopped (${sa.run.stop}) at instruction ${sa.state.icount}, ${labels[1]} (${sb.run.stop}) at ${sb.state.icount}` };
  }
  if (sa.hash !== sb.hash) return { kind: 'state', message: 'state differs' };
  return null;
}

/**
 * How a and b, standing at the same instruction count before running on, differ (null: they do
 * not): a difference found before any instruction of the search ran (e.g. inputs at power-on).
 */
export function compareStanding(a: ReplayMachine, b: ReplayMachine, labels: [string, string] = ['a', 'b']): FirstDifference | null {
  const sa = a.state.capture(), sb = b.state.capture();
  if (stateHash(sa) === stateHash(sb)) return null;
  const extras = machineExtras(a, b);
  const place = codePlace(a.machine);
  const { linear } = disassembleAt(a.machine, place);
  return {
    kind: 'state', icount: a.icount, eip: place.eip, linear, instruction: '(none: the states differ before it runs)',
    message: `the states differ at instruction ${a.icount}, before it runs`,
    a: sa, b: sb, inputs: { a: [], b: [] }, diff: diffStates(sa, sb, extras), text: unifiedDiff(sa, sb, labels, extras),
  };
}

/**
 * Steps a and b (at the same instruction count, in the same state) together until instruction
 * count `until` and returns the first instruction after which they differ, or null (equal all
 * the way, or both stopped alike before `until`).
 */
export function lockstep(a: ReplayMachine, b: ReplayMachine, until: number, opts: LockstepOptions = {}): FirstDifference | null {
  const labels = opts.labels ?? ['a', 'b'];
  const chunk = Math.max(1, opts.chunk ?? 1024);
  if (a.icount !== b.icount) throw new Error(`lockstep: the sides stand at instructions ${a.icount} and ${b.icount}`);
  a.state.takeWrittenPages();
  b.state.takeWrittenPages();
  while (a.icount < until) {
    const n = Math.min(chunk, until - a.icount);
    if (n > 1) {
      const ma = a.mark(), mb = b.mark();
      const sa = advance(a, n), sb = advance(b, n);
      if (compare(sa, sb, labels, a, b) === null) {
        if (sa.run.stop !== 'budget') return null;
        opts.onProgress?.(a.icount);
        continue;
      }
      a.rewind(ma);
      b.rewind(mb);
    }
    for (let k = 0; k < n; k++) {
      const before = codePlace(a.machine), icount = a.icount;
      const sa = advance(a, 1), sb = advance(b, 1);
      const why = compare(sa, sb, labels, a, b);
      if (why !== null) return difference(a, b, before, icount, sa, sb, why, labels);
      if (sa.run.stop !== 'budget') return null;
    }
    opts.onProgress?.(a.icount);
  }
  return null;
}

function difference(
  a: ReplayMachine, b: ReplayMachine, before: CodePlace, icount: number, sa: Step, sb: Step,
  why: { kind: FirstDifference['kind']; message: string }, labels: [string, string],
): FirstDifference {
  const { eip, linear, text } = retiredInstruction(a.machine, before);
  const extras = machineExtras(a, b);
  return {
    kind: why.kind, icount, eip, linear, instruction: text,
    message: `instruction ${icount} at ${(eip >>> 0).toString(16).padStart(8, '0')} (${text}): ${why.message}`,
    a: sa.state, b: sb.state, inputs: { a: sa.inputs, b: sb.inputs },
    diff: diffStates(sa.state, sb.state, extras),
    text: unifiedDiff(sa.state, sb.state, labels, extras),
  };
}

/**
 * The instruction that `m` just retired, given where its CS:EIP stood before (codePlace): at
 * prevEip, where EIP stood unless an interrupt or exception was delivered first (then it is the
 * handler's first instruction, in the new CS); disassembled from memory as it is now.
 */
export function retiredInstruction(m: Machine, before: CodePlace): { eip: number; linear: number; text: string } {
  const cpu = m.cpu;
  const place = cpu.prevEip === before.eip ? before : { ...codePlace(m), eip: cpu.prevEip };
  return { eip: place.eip, ...disassembleAt(m, place) };
}

/** The memory ranges (of pages written since the search began) and device fields where a and b differ. */
function machineExtras(a: ReplayMachine, b: ReplayMachine): DiffExtras {
  const pages = [...a.state.takeWrittenPages(), ...b.state.takeWrittenPages()];
  return { memory: memoryRanges(a.machine.mem.ram, b.machine.mem.ram, pages), devices: deviceChanges(a.machine, b.machine) };
}
