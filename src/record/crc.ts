// CRC-32 as in zlib, PNG and Ethernet (reflected polynomial 0xEDB88320, initial value and final
// xor 0xFFFFFFFF; "123456789" -> 0xCBF43926). Node has it natively from 20.15 / 22.2; the table
// version serves the older Node 20 releases that package.json still admits.

import zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, previous?: number) => number;

let table: Uint32Array | undefined;

/** The portable implementation (exported so a test can hold it against the native one). */
export function crc32Portable(data: Uint8Array, previous = 0): number {
  table ??= makeTable();
  let crc = ~previous;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** CRC-32 of `data`, continuing from `previous` (the CRC of the bytes before it) when given. */
export const crc32: Crc32 = (zlib as { crc32?: Crc32 }).crc32 ?? crc32Portable;
