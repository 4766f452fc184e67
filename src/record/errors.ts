// The one error for a trace that cannot be read or written as asked: not a trace, bad magic, a
// format this trapdiff does not read, a corrupt header. A UserError, so the CLI prints it as one
// line and exits with the bad-input code. Damage after the header (a torn or corrupt chunk) is
// not an error: the reader returns the intact prefix and says where it stopped.

import { UserError } from '../machine/errors.js';

export class TraceError extends UserError {}
