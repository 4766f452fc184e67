// The committed corpus binaries are what their sources assemble to: scripts/build-corpus.sh
// rebuilds every corpus/**/*.asm into a temp dir (by the nasm command on each source's first
// line, run from the repository root) and each result must equal the committed file byte for byte. Skipped without nasm.

import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const hasNasm = spawnSync('nasm', ['-v']).status === 0;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe.skipIf(!hasNasm)('corpus binaries', () => {
  it('rebuild byte for byte from their sources', () => {
    const out = mkdtempSync(join(tmpdir(), 'trapdiff-corpus-'));
    execFileSync('bash', [join(ROOT, 'scripts/build-corpus.sh'), out], { stdio: 'pipe' });
    const built = filesUnder(out);
    const sources = filesUnder(join(ROOT, 'corpus')).filter((f) => f.endsWith('.asm'));
    expect(built.length).toBe(sources.length);
    for (const f of built) {
      const rel = relative(out, f);
      expect(readFileSync(f).equals(readFileSync(join(ROOT, rel))), `${rel} differs from its source`).toBe(true);
    }
  });
});
