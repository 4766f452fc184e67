// Every corpus guest under every loader its guest.json declares, checked against the manifest's
// expectations, and the runs it marks "bochs" also on the Bochs peer (the same debug-console
// transcript). A new guest is covered by adding corpus/<name>/guest.json.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkExpect, listGuests, runGuest } from '../src/cli/corpus.js';
import { makePeer, peerAvailable } from '../src/crosscheck/peers.js';

const guests = listGuests();

describe('corpus', () => {
  it('has guests', () => {
    expect(guests.map((g) => g.name)).toContain('hello');
  });

  for (const g of guests) {
    describe(g.name, () => {
      it.each(g.runs.map((r) => [`${r.image} (${r.load})`, r] as const))('%s', (_label, r) => {
        expect(checkExpect(r.expect, runGuest(g, r))).toEqual([]);
      });
      for (const r of g.runs.filter((run) => run.bochs)) {
        it.skipIf(!peerAvailable('bochs'))(`${r.image}: Bochs prints the same`, async () => {
          expect(await makePeer('bochs').run(readFileSync(join(g.dir, r.image)))).toBe(runGuest(g, r).debugOutput);
        }, 30_000);
      }
    });
  }
});
