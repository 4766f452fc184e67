// Runners that execute a cross-check ROM and return its port 0xE9 transcript: v86, Bochs with VMX
// and QEMU (launched by src/peers/launch.ts) and trapdiff itself (src/machine). Each peer also
// names what the generator must leave out for it.

import { AC, ID, RF } from '../cpu/constants.js';
import { peerInstalled, runProcessPeer, runV86 } from '../peers/launch.js';
import type { PeerProfile } from './generator.js';

export type PeerName = 'v86' | 'bochs' | 'qemu' | 'trapdiff';

export interface Peer {
  name: PeerName;
  profile: PeerProfile;
  /** Runs a 64 KiB ROM; resolves with everything the guest wrote to port 0xE9. */
  run(rom: Uint8Array): Promise<string>;
}

/** Guest transcripts end with this line (rom.ts 'finish'). */
const END_MARK = 'END\n';
/** A ROM of ~300 tests runs in well under a second on every peer; this bounds a hang. */
const RUN_SECONDS = 20;

/**
 * What v86 (0.5.462) lacks or does differently by design, found by running its generator
 * output against Bochs: see docs/CROSSCHECK.md for the evidence of each.
 */
const V86_EXCLUDE = new Set<string>([
  'vmcall', 'vmlaunch', 'vmresume', 'vmxoff', 'vmread', 'vmwrite', 'vmptrld', 'vmclear', 'vmxon', 'vmptrst',
  'invept', 'invvpid', // no VMX
  'int-beyond-idt', // INT n past the IDT limit: v86 panics ("Unimplemented: #GP handler") instead of #GP(n*8+2)
  'lock-ud', // LOCK on a form that does not allow it: v86 ignores the prefix instead of #UD
  'int1', // F1 (INT1/ICEBP): v86 has no #DB for it
  'nop_Ev', // 0F 19-0F 1E hint NOPs: v86 raises #UD
  'invd', 'rdpmc', // v86 raises #UD
  'bound', // v86 misses #BR for out-of-range indexes (Bochs and QEMU raise it)
  'enter-nested', // ENTER with nesting level >= 1: v86 builds a different frame (Bochs and QEMU agree)
  'reset-dtr', // GDTR/IDTR limit after reset: v86 0, SDM Table 9-1 FFFFh (SGDT/SIDT in real mode)
  'cr-reserved', // MOV to/from CR1, CR5-CR7 at CPL 3: v86 #UD, Bochs and QEMU #GP(0) (privilege first)
  'ins', 'outs', // at CPL 3 with IOPL 0: v86 reports a different error code / EIP
  'ud0', 'ud1', // v86 decodes a different length, its #UD comes elsewhere
  'far-tss', // far JMP/CALL to a (busy) TSS: v86 has no task switch and no #GP for it
  'far-gate', // far JMP through a call gate to a more privileged segment: v86 takes it, no #GP
  'bt-pf', // BT* with memory and a #PF: v86 reports a CR2 inside the operand, not its start
  'vm86-int3', // INT3/INTO in virtual-8086 mode with IOPL < 3: v86 #GP(0), Bochs #BP/#OF (SDM INT n)
]);

/** What QEMU 7.2 TCG lacks, found against Bochs (docs/CROSSCHECK.md). */
const QEMU_EXCLUDE = new Set<string>([
  'f6/1', 'f7/1', // TEST's undocumented /1 aliases: QEMU raises #UD
  'int1', // F1: QEMU raises #UD
  'lock-ud', // LOCK on a form that does not allow it: QEMU ignores the prefix instead of #UD
  'nop_Ev', // 0F 19-0F 1E: QEMU decodes some as MPX/CET forms (#UD, other lengths)
  'cr-reserved', // MOV CR1/CR5-7 at CPL 3: QEMU #UD, Bochs #GP(0)
  'cmpxchg8b', // QEMU changes flags besides ZF
  'pf', // #PF of a read-modify-write: QEMU reports a read (error code bit 1 clear), Bochs a write
  'les', 'lfs', 'lgs', // segment state after loading refused/null selectors differs from Bochs
  'iret-outer', // IRET to ring 3: QEMU keeps DPL-0 data segment registers (SDM: made null)
]);

const profile = (name: string, exclude: Set<string>, popfExtra: number, ignoreFlags = 0): PeerProfile => ({ name, exclude, popfExtra, ignoreFlags });

export const PROFILES: Record<PeerName, PeerProfile> = {
  // v86 never sets RF in the EFLAGS image of a fault (SDM Vol. 3A 17.3.1.1 says it is set).
  v86: profile('v86', V86_EXCLUDE, AC | ID, RF),
  bochs: profile('bochs', new Set(), AC | ID),
  // QEMU (TCG) does not set RF in fault frames either; it has no F6/F7 /1 TEST aliases.
  qemu: profile('qemu', QEMU_EXCLUDE, AC | ID, RF),
  trapdiff: profile('trapdiff', new Set(), AC | ID),
};

// ---- the emulators of src/peers/launch.ts ----
function v86Peer(): Peer {
  return {
    name: 'v86',
    profile: PROFILES.v86,
    async run(rom) {
      const r = await runV86(rom, { memoryMiB: 16, endMark: END_MARK, seconds: RUN_SECONDS });
      // A panic ends the transcript with what v86 lacked (the comparison reports it); a timeout
      // leaves it without its END line.
      return r.end === 'panic' ? `${r.output}\nV86-PANIC ${r.panic}\n` : r.output;
    },
  };
}

function processPeer(name: 'bochs' | 'qemu'): Peer {
  return { name, profile: PROFILES[name], run: (rom) => runProcessPeer(name, rom, { seconds: RUN_SECONDS }) };
}

// ---- trapdiff ----
/** Instructions one ROM may take on trapdiff (a ROM of ~300 tests needs a few million). */
const TRAPDIFF_BUDGET = 200_000_000;

function trapdiffPeer(): Peer {
  return {
    name: 'trapdiff',
    profile: PROFILES.trapdiff,
    async run(rom) {
      // Loaded on use: the peers-only cross-checks must not depend on the CPU building.
      const { createMachine } = await import('../machine/machine.js');
      const m = createMachine({ memMiB: 16, vmx: true }); // the Core Duo with VMX, as Bochs's model
      m.load(rom, 'bios');
      const r = m.run({ maxInsns: TRAPDIFF_BUDGET });
      const err = r.stop === 'error' ? `\nTRAPDIFF-ERROR ${r.error}\n` : '';
      return r.debugOutput + err;
    },
  };
}

export function peerAvailable(name: PeerName): boolean {
  return name === 'trapdiff' || peerInstalled(name);
}

export function makePeer(name: PeerName): Peer {
  switch (name) {
    case 'v86': return v86Peer();
    case 'bochs':
    case 'qemu': return processPeer(name);
    case 'trapdiff': return trapdiffPeer();
  }
}
