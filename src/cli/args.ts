// Option parsing shared by the commands: `--name value`, `--name=value` and boolean `--flag`,
// positionals in between. Every mistake is a UserError with a one-line message.

import { UserError } from '../machine/errors.js';

export { UserError };

/** Each option's kind: 'string' takes a value, 'boolean' is a flag. */
export type OptionSpec = Readonly<Record<string, 'string' | 'boolean'>>;

export interface ParsedArgs {
  positional: string[];
  strings: Map<string, string>;
  flags: Set<string>;
}

export function parseArgs(command: string, args: readonly string[], spec: OptionSpec): ParsedArgs {
  const out: ParsedArgs = { positional: [], strings: new Map(), flags: new Set() };
  for (let k = 0; k < args.length; k++) {
    const arg = args[k]!;
    if (!arg.startsWith('--') || arg === '--') {
      if (arg.startsWith('-') && arg !== '-') throw new UserError(`${command}: unknown option ${arg}`);
      out.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (kind === undefined) throw new UserError(`${command}: unknown option --${name}`);
    if (out.strings.has(name) || out.flags.has(name)) throw new UserError(`${command}: option --${name} given twice`);
    if (kind === 'boolean') {
      if (eq >= 0) throw new UserError(`${command}: option --${name} takes no value`);
      out.flags.add(name);
    } else {
      const value = eq >= 0 ? arg.slice(eq + 1) : args[++k];
      if (value === undefined || value === '') throw new UserError(`${command}: option --${name} needs a value`);
      out.strings.set(name, value);
    }
  }
  return out;
}

/** A non-negative integer in decimal or 0x-hex, at most `max`. */
export function parseUint(what: string, text: string, max = Number.MAX_SAFE_INTEGER): number {
  const t = text.replace(/_/g, '');
  const n = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t.slice(2), 16) : /^[0-9]+$/.test(t) ? parseInt(t, 10) : NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw new UserError(`${what} must be an integer from 0 to ${max} (decimal or 0x-hex), not '${text}'`);
  }
  return n;
}

/** One of `choices`. */
export function parseChoice<T extends string>(what: string, text: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(text)) throw new UserError(`${what} must be one of ${choices.join(', ')}, not '${text}'`);
  return text as T;
}
