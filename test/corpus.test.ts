// Every corpus guest under every loader its guest.json declares, checked against the manifest's
// expectations. A new guest is covered by adding corpus/<name>/guest.json.

import { describe, expect, it } from 'vitest';
import { checkExpect, listGuests, runGuest } from '../src/cli/corpus.js';

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
    });
  }
});
