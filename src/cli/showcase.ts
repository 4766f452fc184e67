// `trapdiff showcase` (what `npm start` runs): every corpus guest marked "showcase", under each
// loader it declares, with what it printed and how it ended, checked against its manifest.

import { checkExpect, listGuests, runGuest } from './corpus.js';
import { parseArgs, UserError } from './args.js';
import type { CliIo } from './main.js';

export function showcaseCommand(args: readonly string[], io: CliIo): number {
  if (parseArgs('showcase', args, {}).positional.length > 0) throw new UserError('showcase takes no arguments');
  const guests = listGuests().filter((g) => g.showcase);
  io.stdout.write('trapdiff: IA-32 emulator for differential testing of virtualization modes\n');
  io.stdout.write(`Running ${guests.length} showcase guest(s) from corpus/ on the deterministic machine.\n`);
  let failures = 0;
  for (const g of guests) {
    io.stdout.write(`\n== ${g.name}: ${g.description}\n`);
    for (const r of g.runs) {
      const result = runGuest(g, r);
      const bad = checkExpect(r.expect, result);
      failures += bad.length > 0 ? 1 : 0;
      // MIPS only means something for runs long enough to outweigh the first decoding.
      const speed = result.instructions >= 1e6 ? `, ${result.mips.toFixed(1)} MIPS` : '';
      io.stdout.write(`-- ${r.image} (loader ${r.load}): stop ${result.stop}${result.exitCode === null ? '' : `, exit code ${result.exitCode}`}, ` +
        `${result.instructions} instructions in ${(result.seconds * 1000).toFixed(1)} ms${speed} -> ${bad.length === 0 ? 'as expected' : 'UNEXPECTED'}\n`);
      const shown = (result.debugOutput || result.serialOutput).replace(/\n$/, '');
      if (shown) io.stdout.write(shown.replace(/^/gm, '   | ') + '\n');
      for (const line of bad) io.stdout.write(`   ! ${line}\n`);
    }
  }
  io.stdout.write(failures === 0 ? '\nAll showcase runs behaved as their manifests say.\n' : `\n${failures} run(s) did not behave as expected.\n`);
  return failures === 0 ? 0 : 1;
}
