// `trapdiff decode`: disassembles bytes given as hex or a file with the CPU's own decoder, so it
// shows exactly how the emulator splits and reads them (including what it treats as #UD).

import { readFileSync } from 'node:fs';
import { disassemble } from '../cpu/disasm.js';
import { parseArgs, parseChoice, parseUint, UserError } from './args.js';

export const DECODE_USAGE = 'trapdiff decode HEX|--file F [--bits 16|32] [--origin ADDR] [--json]';

const SPEC = { file: 'string', bits: 'string', origin: 'string', json: 'boolean', help: 'boolean' } as const;

interface Writable {
  write(s: string): unknown;
}

function readInput(positional: string[], file: string | undefined): Uint8Array {
  if (file !== undefined) {
    if (positional.length) throw new UserError('give either HEX or --file, not both');
    try {
      return new Uint8Array(readFileSync(file));
    } catch (e) {
      throw new UserError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  if (positional.length === 0) throw new UserError(`nothing to decode (usage: ${DECODE_USAGE})`);
  // Bytes may be split over several arguments or spaced out ("0f 01 c1"); an 0x prefix is allowed.
  const hex = positional.join('').replace(/\s+/g, '').replace(/^0x/i, '');
  if (!/^[0-9a-f]*$/i.test(hex)) throw new UserError(`'${positional.join(' ')}' is not hex`);
  if (hex.length % 2) throw new UserError(`'${positional.join(' ')}' has an odd number of hex digits`);
  if (hex.length === 0) throw new UserError('nothing to decode');
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/**
 * Runs `trapdiff decode`: one line per instruction, `ADDRESS  HEXBYTES  TEXT`, or with --json
 * one JSON array of {offset, length, bytes, text, invalid}. Returns the exit status: 0, or 2 for
 * bad input (reported as one line on `err`).
 */
export function decodeCommand(args: string[], out: Writable, err: Writable = process.stderr): number {
  try {
    const p = parseArgs('decode', args, SPEC);
    if (p.flags.has('help')) {
      out.write(`usage: ${DECODE_USAGE}\n  Decodes bytes as 16- or 32-bit code (default 32) loaded at ADDR (default 0).\n`);
      return 0;
    }
    const bits = Number(parseChoice('--bits', p.strings.get('bits') ?? '32', ['16', '32'])) as 16 | 32;
    const originText = p.strings.get('origin');
    const origin = originText === undefined ? 0 : parseUint('--origin', originText, 0xffffffff);
    const lines = disassemble(readInput(p.positional, p.strings.get('file')), bits, origin);
    if (p.flags.has('json')) {
      out.write(JSON.stringify(lines) + '\n');
      return 0;
    }
    const width = lines.reduce((w, l) => Math.max(w, l.bytes.length), 0);
    const text = lines.map((l) => {
      const address = l.offset.toString(16).padStart(bits === 16 ? 4 : 8, '0');
      return `${address}  ${l.bytes.padEnd(width)}  ${l.text}\n`;
    });
    out.write(text.join(''));
    return 0;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    err.write(`trapdiff decode: ${e.message.replace(/^decode: /, '')}\n`);
    return 2;
  }
}
