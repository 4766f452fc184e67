// Handlers of the segment family: see the file's owner comment once implemented.
import type { Exec } from '../insn.js';

export const handlers: Record<string, Exec> = {};
