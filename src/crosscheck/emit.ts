// A byte emitter with labels for the test ROMs: no assembler, just the handful of encodings the
// harness needs, written once in 16- and 32-bit flavours (the `bits` of the code being emitted).

export type FixKind = 'rel8' | 'rel16' | 'rel32' | 'abs16' | 'lin32';

/** Where the ROM sits: a 64 KiB image mapped at 0xF0000-0xFFFFF (real-mode segment F000). */
export const ROM_LINEAR = 0xf0000;
export const ROM_SIZE = 0x10000;

interface Fixup {
  at: number;
  kind: FixKind;
  label: string;
  addend: number;
}

export class Emitter {
  readonly buf = new Uint8Array(ROM_SIZE);
  pos = 0;
  bits: 16 | 32 = 16;
  private readonly labels = new Map<string, number>();
  private readonly labelOrder: string[] = [];
  private readonly fixups: Fixup[] = [];

  /** A point to roll back to when what follows turns out not to fit. */
  mark(): { pos: number; labels: number; fixups: number } {
    return { pos: this.pos, labels: this.labelOrder.length, fixups: this.fixups.length };
  }

  rollback(m: { pos: number; labels: number; fixups: number }): void {
    this.buf.fill(0, m.pos, this.pos);
    this.pos = m.pos;
    for (const name of this.labelOrder.splice(m.labels)) this.labels.delete(name);
    this.fixups.length = m.fixups;
  }

  b(...xs: number[]): void {
    for (const x of xs) this.buf[this.pos++] = x & 0xff;
  }

  w16(v: number): void {
    this.b(v, v >>> 8);
  }

  d32(v: number): void {
    this.b(v, v >>> 8, v >>> 16, v >>> 24);
  }

  bytes(xs: ArrayLike<number>): void {
    for (let i = 0; i < xs.length; i++) this.buf[this.pos++] = xs[i];
  }

  label(name: string): void {
    if (this.labels.has(name)) throw new Error(`label ${name} defined twice`);
    this.labels.set(name, this.pos);
    this.labelOrder.push(name);
  }

  /** ROM offset of a label (after resolve() for forward ones). */
  offset(name: string): number {
    const v = this.labels.get(name);
    if (v === undefined) throw new Error(`undefined label ${name}`);
    return v;
  }

  ref(kind: FixKind, label: string, addend = 0): void {
    this.fixups.push({ at: this.pos, kind, label, addend });
    this.pos += kind === 'rel8' ? 1 : kind === 'rel16' || kind === 'abs16' ? 2 : 4;
  }

  resolve(): void {
    for (const f of this.fixups) {
      const t = this.offset(f.label) + f.addend;
      const end = f.at + (f.kind === 'rel8' ? 1 : f.kind === 'rel16' || f.kind === 'abs16' ? 2 : 4);
      let v: number;
      switch (f.kind) {
        case 'rel8':
          v = t - end;
          if (v < -128 || v > 127) throw new Error(`rel8 to ${f.label} out of range`);
          break;
        case 'rel16': case 'rel32': v = t - end; break;
        case 'abs16': v = t; break;
        case 'lin32': v = ROM_LINEAR + t; break;
      }
      const save = this.pos;
      this.pos = f.at;
      if (f.kind === 'rel8') this.b(v);
      else if (f.kind === 'rel16' || f.kind === 'abs16') this.w16(v);
      else this.d32(v);
      this.pos = save;
    }
    this.fixups.length = 0;
  }

  // ---- encodings used by the harness (operands: 32-bit registers unless named otherwise) ----

  /** Operand-size prefix that makes the next instruction 32-bit in 16-bit code. */
  o32(): void {
    if (this.bits === 16) this.b(0x66);
  }

  /** Operand-size prefix that makes the next instruction 16-bit in 32-bit code. */
  o16(): void {
    if (this.bits === 32) this.b(0x66);
  }

  /** ModRM + displacement for a [disp] operand (DS-relative absolute offset). */
  private absModrm(reg: number, disp: number): void {
    if (this.bits === 16) { this.b((reg << 3) | 6); this.w16(disp); } else { this.b((reg << 3) | 5); this.d32(disp); }
  }

  /** ModRM for [esi]-style register-indirect 32-bit addressing (prefix 0x67 in 16-bit code). */
  private a32Indirect(): void {
    if (this.bits === 16) this.b(0x67);
  }

  movImm(r: number, v: number): void { this.o32(); this.b(0xb8 + r); this.d32(v); }
  movImm16(r: number, v: number): void { this.o16(); this.b(0xb8 + r); this.w16(v); }
  store(disp: number, r: number): void { this.o32(); this.b(0x89); this.absModrm(r, disp); }
  storeImm(disp: number, v: number): void { this.o32(); this.b(0xc7); this.absModrm(0, disp); this.d32(v); }
  /** mov dword [disp], address of label (zero-extended CS offset in 16-bit code). */
  storeLabel(disp: number, label: string): void {
    this.o32(); this.b(0xc7); this.absModrm(0, disp);
    if (this.bits === 16) { this.ref('abs16', label); this.w16(0); } else this.ref('lin32', label);
  }
  /** mov sreg, r16 */
  movSreg(s: number, r: number): void { this.b(0x8e, 0xc0 | (s << 3) | r); }
  /** xor eax,eax; mov ax, sreg; mov [disp], eax */
  storeSreg(disp: number, s: number): void {
    this.o32(); this.b(0x31, 0xc0);
    this.o16(); this.b(0x8c, 0xc0 | (s << 3));
    this.store(disp, 0);
  }
  /** mov r, [esi] / xor r, [esi] (opcode 8B / 33) with 32-bit addressing. */
  opEsi(opcode: number, r: number): void { this.a32Indirect(); this.o32(); this.b(opcode, (r << 3) | 6); }
  /** mov [edi], eax with 32-bit addressing. */
  storeEdiEax(): void { this.a32Indirect(); this.o32(); this.b(0x89, 0x07); }
  jmp(label: string): void { this.b(0xe9); this.ref(this.bits === 16 ? 'rel16' : 'rel32', label); }
  jcc8(cc: number, label: string): void { this.b(0x70 + cc); this.ref('rel8', label); }
  jmp8(label: string): void { this.b(0xeb); this.ref('rel8', label); }
  call(label: string): void { this.b(0xe8); this.ref(this.bits === 16 ? 'rel16' : 'rel32', label); }
  outE9(): void { this.b(0xe6, 0xe9); }
  /** Sends the bytes of a string to a port through DX (mov dx, port; mov al, c; out dx, al ...). */
  outString(port: number, s: string): void {
    this.movImm16(2, port);
    for (const c of s) this.b(0xb0, c.charCodeAt(0), 0xee);
  }
}

export const CC_B = 2, CC_NB = 3, CC_Z = 4, CC_NZ = 5;
