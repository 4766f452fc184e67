// The one error class for bad input from the user (a malformed image, a bad option): the CLI
// prints its message as one line, `trapdiff: <message>`, and exits 2. Any other exception is a
// bug in trapdiff and is reported as such.

export class UserError extends Error {
  override readonly name = 'UserError';
}
