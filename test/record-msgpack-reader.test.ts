import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MalformedMsgpack, MsgpackReader } from '../src/record/msgpack-reader.js';
import { MsgpackWriter } from '../src/record/msgpack-writer.js';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** Any value msgpackr packs: scalars of every width, strings of every length class, bytes, containers. */
const anyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer({ min: -0x8000_0000, max: 0xffff_ffff }),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true }),
    fc.constantFrom(null, true, false),
    fc.string({ maxLength: 40 }),
    fc.string({ minLength: 300, maxLength: 400 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie('value'), { maxLength: 20 }),
    fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('MsgpackReader', () => {
  const seed = 0x5eed;
  it(`reads what msgpackr reads and skips exactly one value (seed ${seed})`, () => {
    const reader = new MsgpackReader();
    fc.assert(
      fc.property(fc.array(anyValue, { minLength: 1, maxLength: 5 }), (values) => {
        const bytes = Buffer.concat(values.map((v) => packr.pack(v)));
        reader.reset(bytes);
        for (const v of values) expect(normal(reader.value())).toEqual(normal(unpackr.unpack(packr.pack(v))));
        expect(reader.done).toBe(true);
        reader.reset(bytes);
        for (let i = 0; i < values.length; i++) reader.skip();
        expect(reader.done).toBe(true);
      }),
      { seed, numRuns: 300 },
    );
  });

  it('reads the integers MsgpackWriter writes, at every width', () => {
    const w = new MsgpackWriter();
    const ints = [0, 127, 128, 255, 256, 65535, 65536, 0xffff_ffff, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1];
    for (const v of ints) w.int(v);
    const r = new MsgpackReader();
    r.reset(w.bytes());
    expect(ints.map(() => r.value())).toEqual(ints);
  });

  it('refuses bytes cut short and bytes that are no MessagePack type', () => {
    const r = new MsgpackReader();
    for (const bytes of [Uint8Array.of(0xcd, 1), Uint8Array.of(0xa5, 0x41), Uint8Array.of(0x92, 1), Uint8Array.of(0xc1), Uint8Array.of()]) {
      r.reset(bytes);
      expect(() => r.value(), String(bytes)).toThrow(MalformedMsgpack);
    }
    r.reset(Uint8Array.of(0x93, 1));
    expect(() => r.skip()).toThrow(MalformedMsgpack);
  });
});

/** Bytes as plain arrays, so a Buffer and a Uint8Array of the same bytes compare equal. */
function normal(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(normal);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]));
  return v;
}
