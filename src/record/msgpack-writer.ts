// A MessagePack writer for the few value types of trace events, appending into one reusable
// buffer: the recorder encodes each event as it is appended, with no per-event allocation
// (building arrays for msgpackr's pack() cost more than the rest of recording). The bytes are
// plain MessagePack: msgpackr reads them back, and encodes everything else (header, footer,
// checkpoint states).

const textEncoder = new TextEncoder();

export class MsgpackWriter {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);
  /** Bytes written since reset(). */
  length = 0;

  reset(): void {
    this.length = 0;
  }

  /** The bytes written (a view, valid until the next write). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  /** Header of an array of `n` (at most 15) elements. */
  fixArray(n: number): void {
    this.reserve(1);
    this.buf[this.length++] = 0x90 | n;
  }

  /** An array32 header whose count is filled in later by patchArray32(at). */
  array32Placeholder(): number {
    this.reserve(5);
    const at = this.length;
    this.buf[at] = 0xdd;
    this.length += 5;
    return at;
  }

  patchArray32(at: number, n: number): void {
    this.view.setUint32(at + 1, n);
  }

  nil(): void {
    this.reserve(1);
    this.buf[this.length++] = 0xc0;
  }

  /** A safe integer, in the shortest MessagePack integer form; beyond 32 bits as float64 (exact). */
  int(v: number): void {
    this.reserve(9);
    const b = this.buf;
    const p = this.length;
    if (v >= 0 ? v < 0x80 : v >= -0x20) {
      b[p] = v & 0xff;
      this.length = p + 1;
    } else if (v >= 0 ? v < 0x100 : v >= -0x80) {
      b[p] = v >= 0 ? 0xcc : 0xd0;
      b[p + 1] = v & 0xff;
      this.length = p + 2;
    } else if (v >= 0 ? v < 0x1_0000 : v >= -0x8000) {
      b[p] = v >= 0 ? 0xcd : 0xd1;
      b[p + 1] = (v >> 8) & 0xff;
      b[p + 2] = v & 0xff;
      this.length = p + 3;
    } else if (v >= 0 ? v < 0x1_0000_0000 : v >= -0x8000_0000) {
      b[p] = v >= 0 ? 0xce : 0xd2;
      b[p + 1] = (v >>> 24) & 0xff;
      b[p + 2] = (v >>> 16) & 0xff;
      b[p + 3] = (v >>> 8) & 0xff;
      b[p + 4] = v & 0xff;
      this.length = p + 5;
    } else {
      b[p] = 0xcb;
      this.view.setFloat64(p + 1, v);
      this.length = p + 9;
    }
  }

  str(s: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit. Encode after room for the longest header,
    // then move the bytes next to the header their length calls for.
    this.reserve(5 + 3 * s.length);
    const b = this.buf;
    const start = this.length;
    const n = textEncoder.encodeInto(s, b.subarray(start + 5)).written;
    let headerBytes = 5;
    if (n < 32) {
      b[start] = 0xa0 | n;
      headerBytes = 1;
    } else if (n < 0x100) {
      b[start] = 0xd9;
      b[start + 1] = n;
      headerBytes = 2;
    } else if (n < 0x1_0000) {
      b[start] = 0xda;
      this.view.setUint16(start + 1, n);
      headerBytes = 3;
    } else {
      b[start] = 0xdb;
      this.view.setUint32(start + 1, n);
    }
    if (headerBytes < 5) b.copyWithin(start + headerBytes, start + 5, start + 5 + n);
    this.length = start + headerBytes + n;
  }

  bin(data: Uint8Array): void {
    const n = data.length;
    this.reserve(5 + n);
    if (n < 0x100) this.view.setUint8(this.head(0xc4, 1), n);
    else if (n < 0x1_0000) this.view.setUint16(this.head(0xc5, 2), n);
    else this.view.setUint32(this.head(0xc6, 4), n);
    this.buf.set(data, this.length);
    this.length += n;
  }

  /** Bytes that already are one MessagePack value (from msgpackr). */
  raw(value: Uint8Array): void {
    this.reserve(value.length);
    this.buf.set(value, this.length);
    this.length += value.length;
  }

  /** Writes a type byte and skips `size` bytes for its argument; returns the argument's offset. */
  private head(type: number, size: number): number {
    this.buf[this.length] = type;
    const at = this.length + 1;
    this.length = at + size;
    return at;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.length));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
}
