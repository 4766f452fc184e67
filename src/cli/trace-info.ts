// `trapdiff trace-info FILE [--json]`
//
// What a trace holds, read chunk by chunk (never the whole trace in memory): its header (format,
// trapdiff version, machine, image, environment, recording options), the run's end, the events
// by kind and the inputs by source, the size (and the stored snapshots' share of it), bytes per
// logged input, and whether the trace is complete.
//
// Exit status: 0 for a complete trace; for an incomplete one (a .partial, or damaged after its
// header) the description of its intact prefix and then `trapdiff: FILE is incomplete (...)`,
// status 2; 2 as well when the file is not a readable trace.

import { TraceReader, type EndEvent, type TraceHeader } from '../record/format.js';
import { parseArgs, UserError } from './args.js';
import type { CliIo } from './main.js';
import { describeCounts } from './trace-input.js';

export const TRACE_INFO_USAGE = 'trapdiff trace-info FILE [--json]';

export interface TraceInfo {
  trace: string;
  bytes: number;
  complete: boolean;
  stoppedAt: string | null;
  format: number;
  header: TraceHeader;
  /** The recorded end (null for an incomplete trace). */
  end: EndEvent | null;
  /** The last instruction count an event names. */
  lastIcount: number;
  events: number;
  countsByKind: Record<string, number>;
  inputsBySource: Record<string, number>;
  snapshotBytes: number;
  /** The whole file's bytes over the inputs logged (null: none). */
  bytesPerInput: number | null;
}

export function traceInfo(path: string): TraceInfo {
  const reader = TraceReader.open(path);
  const countsByKind: Record<string, number> = {}, inputsBySource: Record<string, number> = {};
  let events = 0, snapshotBytes = 0, lastIcount = 0, end: EndEvent | null = null;
  try {
    for (const e of reader.events()) {
      events++;
      countsByKind[e.kind] = (countsByKind[e.kind] ?? 0) + 1;
      lastIcount = Math.max(lastIcount, e.icount);
      if (e.kind === 'input') inputsBySource[e.source] = (inputsBySource[e.source] ?? 0) + 1;
      else if (e.kind === 'snapshot') snapshotBytes += e.data.length;
      else if (e.kind === 'end') end = e;
    }
  } finally {
    reader.close();
  }
  const inputs = countsByKind['input'] ?? 0;
  return {
    trace: path, bytes: reader.bytes, complete: reader.complete, stoppedAt: reader.stoppedAt ?? null, format: reader.format,
    header: reader.header, end: reader.complete ? end : null, lastIcount, events, countsByKind, inputsBySource, snapshotBytes,
    bytesPerInput: inputs > 0 ? reader.bytes / inputs : null,
  };
}

function describe(i: TraceInfo): string {
  const { machine, env, options } = i.header;
  const extra = (o: Record<string, unknown>, known: string[]): string => {
    const rest = Object.entries(o).filter(([k]) => !known.includes(k));
    return rest.length === 0 ? '' : `, ${rest.map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ')}`;
  };
  const sources = Object.entries(i.inputsBySource).sort((x, y) => y[1] - x[1]).map(([s, n]) => `${s} ${n}`).join(', ');
  const lines = [
    `trace ${i.trace}: ${i.bytes} bytes, ${i.complete ? 'complete' : `INCOMPLETE (${i.stoppedAt})`}; format ${i.format}, recorded by trapdiff ${i.header.trapdiffVersion}`,
    `image: ${machine.imageName} (sha256 ${machine.imageSha256}), loader ${machine.loader}${Object.keys(machine.loadOptions).length > 0 ? ` ${JSON.stringify(machine.loadOptions)}` : ''}` +
      `, ${machine.memMiB} MiB, VMX ${machine.vmx ? 'on' : 'off'}${extra(machine, ['imageName', 'imageSha256', 'loader', 'loadOptions', 'memMiB', 'vmx'])}`,
    `env: ${env.kind}, ${env.cyclesPerSecond} cycles/s${extra(env, ['kind', 'cyclesPerSecond'])}`,
    `options: checkpoint every ${options.checkpointEvery}, snapshot every ${options.snapshotEvery}, max-insns ${options.maxInsns ?? 'none'}` +
      extra(options, ['checkpointEvery', 'snapshotEvery', 'maxInsns']),
    i.end !== null
      ? `run: ${i.end.icount} instructions, stop ${i.end.stop}${i.end.exitCode === null ? '' : ` (exit code ${i.end.exitCode})`}`
      : `run: no end recorded; the intact events reach instruction ${i.lastIcount}`,
    `events: ${i.events} (${describeCounts(i.countsByKind)})`,
    `inputs by source: ${sources === '' ? 'none' : sources}`,
    `stored snapshots: ${i.snapshotBytes} bytes (${i.bytes > 0 ? ((i.snapshotBytes / i.bytes) * 100).toFixed(0) : 0}% of the trace)`,
    `bytes per input: ${i.bytesPerInput === null ? '- (no inputs)' : `${i.bytesPerInput.toFixed(1)} (the whole trace over its inputs)`}`,
  ];
  return lines.join('\n') + '\n';
}

export function traceInfoCommand(args: readonly string[], io: CliIo): number {
  const p = parseArgs('trace-info', args, { json: 'boolean' });
  if (p.positional.length !== 1) throw new UserError(`trace-info takes one trace FILE (usage: ${TRACE_INFO_USAGE})`);
  const info = traceInfo(p.positional[0]!);
  io.stdout.write(p.flags.has('json') ? JSON.stringify(info) + '\n' : describe(info));
  if (info.complete) return 0;
  throw new UserError(`${info.trace} is incomplete (${info.stoppedAt})`);
}
