// trapdiff's own version, from package.json: recorded in trace headers and reported by the CLI.

import { readFileSync } from 'node:fs';

export const TRAPDIFF_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
