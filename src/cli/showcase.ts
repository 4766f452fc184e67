// `trapdiff showcase` (what `npm start` runs): every corpus guest marked "showcase", under each
// loader it declares, with what it printed and how it ended, checked against its manifest.

import { checkExpect, listGuests, runGuest } from './corpus.js';
import { parseArgs, UserError } from './args.js';
import type { CliIo } from './main.js';

export function showcaseCommand(args: readonly string[], io: CliIo): number {
  const p = parseArgs('showcase', args, { json: 'boolean' });
  if (p.positional.length > 0) throw new UserError('showcase takes no arguments');
  const json = p.flags.has('json');
  const say = (text: string): void => {
    if (!json) io.stdout.write(text);
  };
  const guests = listGuests().filter((g) => g.showcase);
  say('trapdiff: IA-32 emulator for differential testing of virtualization modes\n');
  say(`Running ${guests.length} showcase guest(s) from corpus/ on the deterministic machine.\n`);
  const report: Array<{ guest: string; image: string; load: string; asExpected: boolean; problems: string[] } & ReturnType<typeof runGuest>> = [];
  for (const g of guests) {
    say(`\n== ${g.name}: ${g.description}\n`);
    for (const r of g.runs) {
      const result = runGuest(g, r);
      const bad = checkExpect(r.expect, result);
      report.push({ guest: g.name, image: r.image, load: r.load, asExpected: bad.length === 0, problems: bad, ...result });
      // MIPS only means something for runs long enough to outweigh the first decoding.
      const speed = result.instructions >= 1e6 ? `, ${result.mips.toFixed(1)} MIPS` : '';
      say(`-- ${r.image} (loader ${r.load}): stop ${result.stop}${result.exitCode === null ? '' : `, exit code ${result.exitCode}`}, ` +
        `${result.instructions} instructions in ${(result.seconds * 1000).toFixed(1)} ms${speed} -> ${bad.length === 0 ? 'as expected' : 'UNEXPECTED'}\n`);
      const shown = (result.debugOutput || result.serialOutput).replace(/\n$/, '');
      if (shown) say(shown.replace(/^/gm, '   | ') + '\n');
      for (const line of bad) say(`   ! ${line}\n`);
    }
  }
  const failures = report.filter((r) => !r.asExpected).length;
  if (json) io.stdout.write(JSON.stringify({ runs: report, failures }) + '\n');
  say(failures === 0 ? '\nAll showcase runs behaved as their manifests say.\n' : `\n${failures} run(s) did not behave as expected.\n`);
  return failures === 0 ? 0 : 1;
}
