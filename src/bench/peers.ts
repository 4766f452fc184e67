// The peer emulators a user would pick instead of trapdiff, run on the benchmark ROMs through
// src/peers/launch.ts, with a stopwatch on top. Each run returns the guest's port 0xE9 output, a
// wall time and a CPU time (user + system): for v86 from starting the emulator to the checksum's
// newline (its WebAssembly compile is before the start), for Bochs and QEMU the whole process
// tree, startup included (CPU time through /usr/bin/time); the benchmark subtracts each peer's
// time on the null ROM from its other times.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BOCHS_RUN_ROM, peerInstalled, QEMU, runProcessPeer, runV86 } from '../peers/launch.js';

export interface PeerRun {
  /** Wall time in seconds (see the file comment for what it covers). */
  seconds: number;
  /** User + system CPU time in seconds, over the same span. */
  cpuSeconds: number;
  /** The guest's port 0xE9 output. */
  output: string;
  /** The peer's own instruction counter, where it has one. */
  instructions?: number;
}

export interface Peer {
  name: string;
  /** What the wall time covers, for the report. */
  measures: string;
  run(rom: Uint8Array): Promise<PeerRun>;
}

/** No workload runs this long on any peer; a run past it is hung. */
const TIMEOUT_SECONDS = 600;
/** GNU time: the CPU time of a child process tree (Node reports none for children). */
const GNU_TIME = '/usr/bin/time';

function v86Peer(): Peer {
  return {
    name: 'v86',
    measures: 'in-process, emulator start to the checksum line (WebAssembly compile excluded)',
    async run(rom) {
      let t0 = 0;
      let c0 = process.cpuUsage();
      let seconds = 0;
      let cpuSeconds = 0;
      const r = await runV86(rom, {
        memoryMiB: 64, endMark: '\n', seconds: TIMEOUT_SECONDS,
        started: () => {
          t0 = performance.now();
          c0 = process.cpuUsage();
        },
        ended: () => {
          seconds = (performance.now() - t0) / 1000;
          const c = process.cpuUsage(c0);
          cpuSeconds = (c.user + c.system) / 1e6;
        },
      });
      if (r.end === 'timeout') throw new Error(`v86: no checksum line after ${TIMEOUT_SECONDS} s`);
      if (r.end === 'panic') throw new Error(`v86: ${r.panic}`);
      return { seconds, cpuSeconds, output: r.output, instructions: r.instructions };
    },
  };
}

/** Bochs or QEMU under GNU time: wall time from spawn to exit, CPU time of the process tree. */
function processPeer(name: 'bochs' | 'qemu', measures: string): Peer {
  return {
    name,
    measures,
    async run(rom) {
      let t0 = 0;
      let seconds = 0;
      let times = '';
      const output = await runProcessPeer(name, rom, {
        seconds: TIMEOUT_SECONDS,
        prefix: (dir) => [GNU_TIME, '-f', '%U %S', '-o', join(dir, 'time.out')],
        started: () => {
          t0 = performance.now();
        },
        ended: (dir) => {
          seconds = (performance.now() - t0) / 1000;
          const timeFile = join(dir, 'time.out');
          times = existsSync(timeFile) ? readFileSync(timeFile, 'latin1') : '';
        },
      });
      // GNU time writes "Command exited with non-zero status N" first when the status is not 0.
      const m = /([\d.]+) ([\d.]+)\s*$/.exec(times);
      if (m === null) throw new Error(`${name}: no CPU time from ${GNU_TIME}`);
      return { seconds, cpuSeconds: Number(m[1]) + Number(m[2]), output };
    },
  };
}

/** The peers available on this machine, and a note for each one that is not. */
export function availablePeers(): { peers: Peer[]; missing: string[] } {
  const peers: Peer[] = [v86Peer()];
  const missing: string[] = [];
  const timed = existsSync(GNU_TIME);
  if (!timed) missing.push(`bochs, qemu: ${GNU_TIME} (Debian package "time") not installed`);
  else if (peerInstalled('bochs')) peers.push(processPeer('bochs', 'whole run-rom process (Bochs 3.0 built without debugger, Core Duo model)'));
  else missing.push(`bochs: ${BOCHS_RUN_ROM} not found`);
  if (timed && peerInstalled('qemu')) peers.push(processPeer('qemu', 'whole qemu-system-i386 process (TCG)'));
  else if (timed) missing.push(`qemu: ${QEMU} not installed`);
  return { peers, missing };
}
