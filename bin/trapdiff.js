#!/usr/bin/env node
// The installed `trapdiff` command: registers tsx's TypeScript loader in this process and runs
// the CLI from its sources.
import { register } from 'tsx/esm/api';

register();
const { runMain } = await import('../src/cli/main.ts');
runMain();
