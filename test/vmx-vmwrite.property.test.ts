// Random VMWRITEs over a valid VMCS, then VMLAUNCH (issue 5's property): the VM entry either
// succeeds with the guest state of the VMCS loaded exactly (SDM Vol. 3C 26.3.2), or ends in a
// documented failure: VMfailValid with an error number VMLAUNCH may give (30.3, Table 30-1), or a
// VM-entry failure exit (26.8) with its documented reason and qualification and the host state
// loaded (27.5), or a VMX abort (27.7) — never a JavaScript exception. Written against the
// architecture only, so it holds as the controls VM entry refuses today get implemented: a random
// VMCS that turns one on gets whatever VM entry does, and a successful entry must still load
// the guest state.
//
// The host (helpers/vmx.ts: VMCS A with valid controls and host state, a flat guest) runs a loop
// over a table of writes in memory, so one assembled program serves every run: each table entry
// is an encoding, a value and an operation (0: VMWRITE the value; 1: VMREAD, XOR with the value,
// VMWRITE: a bit flip near the valid state).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CR0_AM, CR0_CD, CR0_EM, CR0_ET, CR0_MP, CR0_NE, CR0_NW, CR0_PE, CR0_PG, CR0_TS, CR0_WP, CS, ESP, SS, TR,
} from '../src/cpu/constants.js';
import { MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP } from '../src/cpu/msr.js';
import { FIELDS, W64 } from '../src/cpu/vmx/fields.js';
import { isLaunched, VMCS_ABORT_OFFSET, vmcsRead } from '../src/cpu/vmx/vmcs.js';
import { runUntilEip } from './helpers/exec.js';
import { asm, CODE_BASE, makeCpu, step, type Harness } from './helpers/harness.js';
import { DATA, GUEST_FLAT, resumeHostAt, VALID_A, VMCS_A, vmxReady, w } from './helpers/vmx.js';

const SEED = 0x7e5a;
const RUNS = 250;
/** The write table: a count, then 12-byte entries (encoding, value, operation). */
const TABLE = DATA + 0x400, MAX_WRITES = 12;

const PROGRAM = `${VALID_A}
  ${GUEST_FLAT}
  ${resumeHostAt('host')}
  ${w(0x4c00, 0x1111)}
  ${w(0x6c10, 0x2222)}
  ${w(0x6c12, 0x3333)}
  mov esi, ${TABLE + 4}
  mov ecx, [${TABLE}]
writes:
  jecxz launch
  mov ebx, [esi]
  mov eax, [esi + 4]
  cmp dword [esi + 8], 0
  je .put
  vmread edx, ebx
  xor eax, edx
.put:
  vmwrite ebx, eax
  add esi, 12
  dec ecx
  jmp writes
launch:
  vmlaunch
  jmp $
guest:
  cpuid
  jmp $
host:
  jmp $
`;
const CODE = asm(PROGRAM, 32, CODE_BASE);
/** VMLAUNCH (0F 01 C2) sits right before the final `jmp $` of the host side's fall-through. */
const LAUNCH_AT = CODE_BASE + findLaunch(CODE);
function findLaunch(code: Uint8Array): number {
  for (let k = 0; k + 2 < code.length; k++) if (code[k] === 0x0f && code[k + 1] === 0x01 && code[k + 2] === 0xc2) return k;
  throw new Error('no VMLAUNCH in the program');
}

interface Write { encoding: number; value: number; flip: boolean }

/** Encodings: the declared fields (supported or not, read-only included), their high halves, anything. */
const encodingArb = fc.oneof(
  { weight: 7, arbitrary: fc.constantFrom(...FIELDS.map((fd) => fd.encoding)) },
  { weight: 1, arbitrary: fc.constantFrom(...FIELDS.filter((fd) => fd.width === W64).map((fd) => fd.encoding | 1)) },
  { weight: 2, arbitrary: fc.oneof(fc.integer({ min: 0, max: 0x7fff }), fc.integer({ min: -0x80000000, max: 0x7fffffff })) },
);
const valueArb = fc.oneof(
  fc.constantFrom(0, 1, 2, -1, 0x80000000 | 0, 0x7fffffff, 0xffff, 0x10000, 0xfff, 0x1000, 0x80000203 | 0, 0x8b, 0xc093),
  fc.integer({ min: -0x80000000, max: 0x7fffffff }),
);
const writeArb: fc.Arbitrary<Write> = fc.oneof(
  fc.record({ encoding: encodingArb, value: valueArb, flip: fc.constant(false) }),
  fc.record({ encoding: encodingArb, value: fc.integer({ min: 0, max: 31 }).map((b) => (1 << b) | 0), flip: fc.constant(true) }),
);

// ---------------------------------------------------------------- the SDM's expectations

/** CR0 after VM entry/exit loads `field` (26.3.2.1, 27.5.1): ET, NW, CD and reserved bits not modified. */
const CR0_LOADED = CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
const cr0After = (before: number, field: number): number =>
  (field & CR0_LOADED) | CR0_ET | (before & (CR0_NW | CR0_CD));

/** SYSENTER MSR values the VM-entry MSR-load list leaves (it runs after the guest-state fields). */
function sysenterAfterList(h: Harness, fields: [number, number, number]): [number, number, number] {
  const v = [...fields] as [number, number, number];
  const count = vmcsRead(h.cpu, 0x4014) >>> 0, base = vmcsRead(h.cpu, 0x200a) >>> 0;
  for (let n = 0; n < count && n <= 512; n++) {
    const index = h.cpu.readPhys32(base + 16 * n) >>> 0;
    if (index >= MSR_SYSENTER_CS && index <= MSR_SYSENTER_EIP) v[index - MSR_SYSENTER_CS] = h.cpu.readPhys32(base + 16 * n + 8);
  }
  return v;
}
const msr32 = (h: Harness, index: number): number => Number((h.cpu.msrs.get(index) ?? 0n) & 0xffffffffn);
/** Register and field values compared as unsigned 32-bit numbers. */
const u = (values: number[]): number[] => values.map((v) => v >>> 0);

/** Guest state loaded as the VMCS says (26.3.2): the assertion of a successful entry. */
function expectGuestLoaded(h: Harness, cr0Before: number, injected: boolean): void {
  const { cpu } = h;
  const f = (enc: number): number => vmcsRead(cpu, enc) >>> 0;
  expect(cpu.cr0 >>> 0).toBe(cr0After(cr0Before, f(0x6800)) >>> 0);
  expect(u([cpu.cr3, cpu.cr4])).toEqual([f(0x6802), f(0x6804)]);
  // With "load debug controls" (VM-entry control 2): DR7 with bits 15:14 and 12 clear, bit 10 set.
  if (f(0x4012) & 4) expect(cpu.dr[7] >>> 0).toBe(((f(0x681a) & ~0xd000) | 0x400) >>> 0);
  expect(u([cpu.gdtrBase, cpu.gdtrLimit, cpu.idtrBase, cpu.idtrLimit])).toEqual([f(0x6816), f(0x4810), f(0x6818), f(0x4812)]);
  const sysenter = u(sysenterAfterList(h, [f(0x482a), f(0x6824), f(0x6826)]));
  expect([msr32(h, MSR_SYSENTER_CS), msr32(h, MSR_SYSENTER_ESP), msr32(h, MSR_SYSENTER_EIP)]).toEqual(sysenter);
  // Delivering an injected event (26.5) goes on to change RIP, RSP, RFLAGS, CS, SS, the activity
  // state (a triple fault shuts down) and the interruptibility state.
  if (injected) return;
  const activity = f(0x4826);
  expect(cpu.shutdown).toBe(activity === 2);
  for (let s = 0; s < 8; s++) {
    const ar = f(0x4814 + 2 * s);
    expect(cpu.seg[s]).toBe(f(0x0800 + 2 * s));
    // An unusable register's base, limit and other access rights are undefined after loading;
    // this model loads an unusable CS as usable (CS is index 1).
    if (ar & 0x10000 && s !== 1) expect(cpu.segAr[s] & 0x10000).toBe(0x10000);
    else expect(u([cpu.segBase[s], cpu.segLimit[s], cpu.segAr[s]])).toEqual([f(0x6806 + 2 * s), f(0x4800 + 2 * s), ar & ~0x10000]);
  }
  expect(u([cpu.regs[ESP], cpu.eip, cpu.getEflags()])).toEqual([f(0x681c), f(0x681e), f(0x6820)]);
  expect(cpu.cpl).toBe((f(0x4818) >> 5) & 3);
  expect(cpu.halted).toBe(activity === 1);
  const intr = f(0x4824);
  expect(cpu.shadowAt === cpu.icount).toBe((intr & 3) !== 0);
  expect(cpu.inhibitDebugAt === cpu.icount).toBe((intr & 2) !== 0);
  expect(cpu.nmiBlocked).toBe((intr & 8) !== 0);
}

/** Host state loaded (27.5) after a VM-entry failure, and the launch state unchanged. */
function expectHostLoaded(h: Harness, cr0Before: number): void {
  const { cpu } = h;
  const f = (enc: number): number => vmcsRead(cpu, enc) >>> 0;
  expect(cpu.cr0 >>> 0).toBe(cr0After(cr0Before, f(0x6c00)) >>> 0);
  expect(u([cpu.cr3, cpu.cr4, cpu.regs[ESP], cpu.eip, cpu.getEflags()])).toEqual([f(0x6c02), f(0x6c04), f(0x6c14), f(0x6c16), 2]);
  expect([cpu.seg[CS], cpu.seg[SS], cpu.seg[TR]]).toEqual([f(0x0c02), f(0x0c04), f(0x0c0c)]);
  expect(cpu.vmx.nonRoot).toBe(false);
  expect(isLaunched(cpu, VMCS_A)).toBe(false);
}

/** VM-entry failure reasons (26.8) and the qualifications each may carry. */
function documentedEntryFailure(reason: number, qualification: number, entryListCount: number): boolean {
  switch (reason) {
    case (0x80000000 | 33) | 0: return [0, 2, 3, 4].includes(qualification); // invalid guest state
    case (0x80000000 | 34) | 0: return qualification >= 1 && qualification <= entryListCount; // MSR loading
    case (0x80000000 | 41) | 0: return true; // machine-check event
    default: return false;
  }
}

type Outcome = 'entered' | 'vmfail' | 'entry-failure' | 'exit-at-entry' | 'abort';

/** Runs the program with `writes` in its table; checks the outcome and names it. */
function launchWith(writes: Write[]): Outcome {
  const h = makeCpu('pm32', CODE);
  vmxReady(h);
  const view = h.mem.view;
  view.setUint32(TABLE, writes.length, true);
  writes.forEach(({ encoding, value, flip }, k) => {
    view.setUint32(TABLE + 4 + 12 * k, encoding >>> 0, true);
    view.setUint32(TABLE + 8 + 12 * k, value >>> 0, true);
    view.setUint32(TABLE + 12 + 12 * k, flip ? 1 : 0, true);
  });
  expect(runUntilEip(h.cpu, LAUNCH_AT).vector).toBe(-1);
  const cpu = h.cpu, cr0Before = cpu.cr0;
  cpu.events = null; // runUntilEip's exception catcher: from here on exceptions are delivered
  const injected = vmcsRead(cpu, 0x4016) < 0;
  const entryListCount = vmcsRead(cpu, 0x4014) >>> 0;
  // VMLAUNCH itself never faults here (ring 0, protected mode, VMX root operation): a fault would
  // find no IDT and shut down without an abort indicator (checked below).
  const before = cpu.icount;
  step(cpu, 1);
  expect(cpu.icount).toBeGreaterThan(before);
  if (cpu.vmx.nonRoot) {
    expectGuestLoaded(h, cr0Before, injected);
    expect(isLaunched(cpu, VMCS_A)).toBe(true);
    return 'entered';
  }
  if (cpu.shutdown) {
    expect([3, 4, 5]).toContain(h.cpu.readPhys32(VMCS_A + VMCS_ABORT_OFFSET));
    return 'abort';
  }
  if (cpu.eip === LAUNCH_AT + 3) {
    expect(cpu.getEflags() & 0x8d5).toBe(0x40); // ZF: VMfailValid
    expect([7, 8]).toContain(vmcsRead(cpu, 0x4400)); // invalid control fields / host-state fields
    return 'vmfail';
  }
  const reason = vmcsRead(cpu, 0x4402);
  if (reason < 0) {
    expect(documentedEntryFailure(reason, vmcsRead(cpu, 0x6400), entryListCount)).toBe(true);
    expectHostLoaded(h, cr0Before);
    return 'entry-failure';
  }
  // A VM exit right at the end of a successful entry (event delivery, a pending MTF or timer):
  // the entry succeeded, the exit loaded the host state.
  expect(isLaunched(cpu, VMCS_A)).toBe(true);
  expect(cpu.eip).toBe(vmcsRead(cpu, 0x6c16) >>> 0);
  expect(reason & 0xffff).toBeLessThan(70);
  return 'exit-at-entry';
}
describe('random VMWRITEs over a valid VMCS, then VMLAUNCH (property)', () => {
  it(`gives a loaded guest state or a documented failure, never a JS exception (seed ${SEED})`, () => {
    console.log(`vmx-vmwrite property: seed ${SEED}, ${RUNS} runs`);
    const seen = new Map<Outcome, number>();
    fc.assert(fc.property(fc.array(writeArb, { minLength: 0, maxLength: MAX_WRITES }), (writes) => {
      const outcome = launchWith(writes);
      seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
    }), { seed: SEED, numRuns: RUNS });
    console.log('outcomes:', Object.fromEntries(seen));
    // The sample reaches both sides: entries that succeed and each kind of documented failure.
    expect(seen.get('entered') ?? 0).toBeGreaterThan(0);
    expect(seen.get('vmfail') ?? 0).toBeGreaterThan(0);
    expect(seen.get('entry-failure') ?? 0).toBeGreaterThan(0);
  });
  it('no writes: the flat guest enters', () => {
    expect(launchWith([])).toBe('entered');
  });
  it('CR0.CD and CR0.NW in the guest CR0 field are not loaded (26.3.2.1)', () => {
    expect(launchWith([{ encoding: 0x6800, value: CR0_CD | CR0_NW, flip: true }])).toBe('entered');
  });
});
