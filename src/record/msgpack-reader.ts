// A MessagePack reader for the rows of trace chunks, the counterpart of msgpack-writer.ts: it
// reads one value at a time from a byte range, so a chunk's rows are decoded field by field with
// no array per row (unpacking each row into an array cost a replay of a fault-heavy trace more
// than a tenth of its time). Scalars are read here; anything nested (a checkpoint state's map, an
// unknown kind's field) is handed to msgpackr whole.

import { Unpackr } from 'msgpackr';

/** The bytes are not the MessagePack expected (cut short, or a type a row cannot hold). */
export class MalformedMsgpack extends Error {}

const textDecoder = new TextDecoder();
const nested = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export class MsgpackReader {
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.bytes.buffer);
  /** Offset of the next value. */
  pos = 0;

  /** Reads `bytes` from its start. */
  reset(bytes: Uint8Array): void {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  /** Whether every byte has been read. */
  get done(): boolean {
    return this.pos === this.bytes.length;
  }

  /** The element count of the array that comes next, or -1 (nothing read) when it is no array. */
  arrayLength(): number {
    const type = this.byte(this.pos);
    if ((type & 0xf0) === 0x90) {
      this.pos++;
      return type & 0x0f;
    }
    if (type === 0xdc) return this.view.getUint16(this.advance(3) + 1);
    if (type === 0xdd) return this.view.getUint32(this.advance(5) + 1);
    return -1;
  }

  /** The next value: numbers, nil, booleans, strings, bytes (a view) here; arrays, maps and extensions by msgpackr. */
  value(): unknown {
    // Small enough to inline: most fields of a row are positive fixints.
    const at = this.pos, type = this.bytes[at];
    if (type !== undefined && type < 0x80) {
      this.pos = at + 1;
      return type;
    }
    return this.otherValue();
  }

  private otherValue(): unknown {
    const at = this.pos, type = this.byte(at);
    if (type >= 0xe0) {
      this.pos = at + 1;
      return type - 0x100;
    }
    if ((type & 0xe0) === 0xa0) return this.text(at + 1, type & 0x1f);
    const v = this.view;
    switch (type) {
      case 0xc0: this.pos = at + 1; return null;
      case 0xc2: this.pos = at + 1; return false;
      case 0xc3: this.pos = at + 1; return true;
      case 0xcc: return v.getUint8(this.advance(2) + 1);
      case 0xcd: return v.getUint16(this.advance(3) + 1);
      case 0xce: return v.getUint32(this.advance(5) + 1);
      case 0xcf: return Number(v.getBigUint64(this.advance(9) + 1));
      case 0xd0: return v.getInt8(this.advance(2) + 1);
      case 0xd1: return v.getInt16(this.advance(3) + 1);
      case 0xd2: return v.getInt32(this.advance(5) + 1);
      case 0xd3: return Number(v.getBigInt64(this.advance(9) + 1));
      case 0xca: return v.getFloat32(this.advance(5) + 1);
      case 0xcb: return v.getFloat64(this.advance(9) + 1);
      case 0xd9: return this.text(at + 2, this.size(at, 1));
      case 0xda: return this.text(at + 3, this.size(at, 2));
      case 0xdb: return this.text(at + 5, this.size(at, 4));
      case 0xc4: return this.binary(at + 2, this.size(at, 1));
      case 0xc5: return this.binary(at + 3, this.size(at, 2));
      case 0xc6: return this.binary(at + 5, this.size(at, 4));
    }
    this.skip();
    try {
      return nested.unpack(this.bytes.subarray(at, this.pos));
    } catch (err) {
      throw new MalformedMsgpack(`undecodable value at byte ${at}: ${(err as Error).message}`);
    }
  }

  /** Steps over the next value, whatever it holds. */
  skip(): void {
    const at = this.pos, type = this.byte(at);
    if (type < 0x80 || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3) this.pos = at + 1;
    else if ((type & 0xe0) === 0xa0) this.advance(1 + (type & 0x1f));
    else if ((type & 0xf0) === 0x90) this.skipValues(at, 1, type & 0x0f);
    else if ((type & 0xf0) === 0x80) this.skipValues(at, 1, 2 * (type & 0x0f));
    else {
      switch (type) {
        case 0xcc: case 0xd0: this.advance(2); break;
        case 0xcd: case 0xd1: case 0xd4: this.advance(3); break;
        case 0xd5: this.advance(4); break;
        case 0xce: case 0xd2: case 0xca: this.advance(5); break;
        case 0xd6: this.advance(6); break;
        case 0xcf: case 0xd3: case 0xcb: this.advance(9); break;
        case 0xd7: this.advance(10); break;
        case 0xd8: this.advance(18); break;
        case 0xc4: case 0xd9: this.skipBytes(at, 2, this.size(at, 1)); break;
        case 0xc5: case 0xda: this.skipBytes(at, 3, this.size(at, 2)); break;
        case 0xc6: case 0xdb: this.skipBytes(at, 5, this.size(at, 4)); break;
        case 0xc7: this.skipBytes(at, 3, this.size(at, 1)); break;
        case 0xc8: this.skipBytes(at, 4, this.size(at, 2)); break;
        case 0xc9: this.skipBytes(at, 6, this.size(at, 4)); break;
        case 0xdc: this.skipValues(at, 3, this.size(at, 2)); break;
        case 0xdd: this.skipValues(at, 5, this.size(at, 4)); break;
        case 0xde: this.skipValues(at, 3, 2 * this.size(at, 2)); break;
        case 0xdf: this.skipValues(at, 5, 2 * this.size(at, 4)); break;
        default: throw new MalformedMsgpack(`byte ${at}: 0x${type.toString(16)} is not a MessagePack type`);
      }
    }
  }

  /** The big-endian length of `width` bytes after the type byte at `at`. */
  private size(at: number, width: 1 | 2 | 4): number {
    this.pos = at;
    this.advance(1 + width);
    return width === 1 ? this.view.getUint8(at + 1) : width === 2 ? this.view.getUint16(at + 1) : this.view.getUint32(at + 1);
  }

  /** Moves past the value at `at`: `header` bytes, then `n` bytes. */
  private skipBytes(at: number, header: number, n: number): void {
    this.pos = at;
    this.advance(header + n);
  }

  /** Moves past the container at `at`: `header` bytes, then `n` values. */
  private skipValues(at: number, header: number, n: number): void {
    this.pos = at;
    this.advance(header);
    for (let i = 0; i < n; i++) this.skip();
  }

  private text(start: number, n: number): string {
    this.pos = start;
    const end = this.advance(n);
    return textDecoder.decode(this.bytes.subarray(end, end + n));
  }

  private binary(start: number, n: number): Uint8Array {
    this.pos = start;
    const from = this.advance(n);
    return this.bytes.subarray(from, from + n);
  }

  /**
   * Claims the `n` bytes at the current position (the value's start, from which the view is
   * read); returns that position. Throws when the bytes end first.
   */
  private advance(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw new MalformedMsgpack(`cut short at byte ${this.bytes.length}`);
    this.pos = at + n;
    return at;
  }

  private byte(at: number): number {
    if (at >= this.bytes.length) throw new MalformedMsgpack(`cut short at byte ${at}`);
    return this.bytes[at]!;
  }
}
