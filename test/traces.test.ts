// Regression replay: every trace in traces/ (corpus guests recorded under the live environment
// by `npm run traces:update`) must replay exactly on this trapdiff: every checkpoint, input and
// observation, and the end. A divergence fails its test with the replayer's message and the
// state diff. When a change of trapdiff's behaviour is intended, re-record with
// `npm run traces:update` and commit the traces it rewrites (it shows what changed).

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listGuests, regressionTraceName } from '../src/cli/corpus.js';
import { openTrace, traceImage } from '../src/cli/trace-input.js';
import { replay } from '../src/record/replayer.js';
import { ROOT } from './helpers/cli.js';

const TRACES = join(ROOT, 'traces');
const files = readdirSync(TRACES).filter((f) => f.endsWith('.trace')).sort();

describe('traces/ replay exactly', () => {
  it('traces/ holds the committed regression traces', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it('has a trace for every corpus run (corpus/*/guest.json) and none for anything else', () => {
    const runs = listGuests().flatMap((g) => g.runs.map((r) => ({ guest: g.name, image: r.image, trace: `${regressionTraceName(r)}.trace` })));
    expect(runs.length).toBeGreaterThan(0);
    const problems = [
      ...runs.filter((r) => !files.includes(r.trace)).map((r) =>
        `corpus/${r.guest} run ${r.image} has no trace traces/${r.trace}: record it with npm run traces:update -- ${r.trace.replace(/\.trace$/, '')} and commit it`),
      ...files.filter((f) => !runs.some((r) => r.trace === f)).map((f) =>
        `traces/${f} belongs to no corpus run: delete it (git rm traces/${f}) or restore its run in a guest.json`),
    ];
    expect(problems, problems.join('\n')).toEqual([]);
  });

  for (const f of files) {
    it(f, () => {
      const path = join(TRACES, f);
      const trace = openTrace(path, false);
      expect(trace.header.env.kind).toBe('live');
      const r = replay(trace, traceImage(trace, path, undefined));
      if (!r.ok) {
        const d = r.divergence!;
        expect.fail(`${f} diverges: ${d.message}\n${d.text}(re-record with npm run traces:update if the change is intended)`);
      }
      expect(r.icount).toBe(r.recordedEnd!.icount);
    });
  }
});
