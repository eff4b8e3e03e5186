// The E2EE known answers agree three ways: the standard-library-only Python implementation of
// docs/protocol.md (test/e2ee-reference.py --kat) computes them, `sealroom selftest` embeds them
// (src/core/e2ee/kat.ts) and the document lists them (§11). And the self-test really checks them:
// a wrong label, a dropped or swapped field, or a mutated value makes a named test fail.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { KemKeyPair, kemEncapsulate } from '../src/core/e2ee/index.js';
import {
  E2EE_KAT,
  E2EE_KAT_V2,
  computeKatV2,
  e2eeKnownAnswerTests,
  e2eeV2KnownAnswerTests,
} from '../src/core/e2ee/kat.js';
import { runKnownAnswerTests } from '../src/core/selftest.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const reference = (): Record<string, unknown> =>
  JSON.parse(
    execFileSync('python3', [`${root}test/e2ee-reference.py`, '--kat'], { timeout: 60_000 }).toString(),
  );

/** Every hex string (≥ 16 hex digits) of a value, with its path. */
function hexLeaves(value: unknown, path = ''): [string, string][] {
  if (typeof value === 'string') return /^[0-9a-f]{16,}$/.test(value) ? [[path, value]] : [];
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => hexLeaves(v, `${path}.${k}`));
  }
  return [];
}

describe('E2EE known answers: Python reference = selftest = docs/protocol.md', () => {
  it('kat.ts holds exactly what the Python reference computes', () => {
    const { chainWire: _wire, ...computed } = reference();
    expect(JSON.parse(JSON.stringify(E2EE_KAT))).toEqual(computed);
  });

  it('docs/protocol.md lists every known answer in full', () => {
    const doc = readFileSync(`${root}docs/protocol.md`, 'utf8').replace(/[\s`]+/g, '');
    const leaves = hexLeaves(E2EE_KAT);
    expect(leaves.length).toBeGreaterThan(25);
    const missing = leaves.filter(([, hex]) => !doc.includes(hex)).map(([path]) => path);
    expect(missing).toEqual([]);
    expect(doc).toContain(E2EE_KAT.chainSecurityCode);
    expect(doc).toContain(E2EE_KAT.securityCode);
  });

  it('v2: kat.ts holds what this code computes and what the Python reference computes from the ML-KEM outputs', () => {
    expect(JSON.parse(JSON.stringify(E2EE_KAT_V2))).toEqual(computeKatV2());
    // ML-KEM-768 from @noble/post-quantum (FIPS 203), deterministic from the seeds; the rest from the doc.
    const hex = (t: string) => new Uint8Array(Buffer.from(t, 'hex'));
    const leader = KemKeyPair.fromSeed(hex(E2EE_KAT_V2.kem.leaderSeed));
    const bob = KemKeyPair.fromSeed(hex(E2EE_KAT_V2.kem.bobSeed));
    const { ciphertext, sharedSecret } = kemEncapsulate(bob.publicKey, () => hex(E2EE_KAT_V2.kem.message));
    const kem = {
      leaderKey: Buffer.from(leader.publicKey).toString('hex'),
      bobKey: Buffer.from(bob.publicKey).toString('hex'),
      ciphertext: Buffer.from(ciphertext).toString('hex'),
      sharedSecret: Buffer.from(sharedSecret).toString('hex'),
    };
    const python = JSON.parse(
      execFileSync('python3', [`${root}test/e2ee-reference.py`, '--kat-v2'], {
        input: JSON.stringify(kem),
        timeout: 60_000,
      }).toString(),
    );
    const { leaderSeed: _l, bobSeed: _b, message: _m, ...kemAnswers } = E2EE_KAT_V2.kem;
    expect(python).toEqual(JSON.parse(JSON.stringify({ ...E2EE_KAT_V2, kem: kemAnswers })));
  });

  it('docs/protocol.md lists every v2 known answer in full', () => {
    const doc = readFileSync(`${root}docs/protocol.md`, 'utf8').replace(/[\s`]+/g, '');
    const leaves = hexLeaves(E2EE_KAT_V2);
    expect(leaves.length).toBeGreaterThan(15);
    expect(leaves.filter(([, hex]) => !doc.includes(hex)).map(([path]) => path)).toEqual([]);
  });

  it('every built-in E2EE known answer passes', () => {
    expect(runKnownAnswerTests(e2eeKnownAnswerTests)).toEqual({
      passed: e2eeKnownAnswerTests.length,
      failed: [],
    });
    expect(runKnownAnswerTests(e2eeV2KnownAnswerTests)).toEqual({
      passed: e2eeV2KnownAnswerTests.length,
      failed: [],
    });
    expect(e2eeV2KnownAnswerTests.length).toBe(4);
  });
});

/** Runs the E2EE self-test against fresh modules where `mock` replaced one module. */
async function selftestWith(
  path: string,
  mock: (actual: Record<string, unknown>) => Record<string, unknown>,
) {
  vi.resetModules();
  vi.doMock(path, async (importOriginal) => mock(await importOriginal<Record<string, unknown>>()));
  const kat = await import('../src/core/e2ee/kat.js');
  return runKnownAnswerTests([...kat.e2eeKnownAnswerTests, ...kat.e2eeV2KnownAnswerTests]).failed.map(
    (f) => f.name,
  );
}

describe('sealroom selftest fails on a wrong label or field', () => {
  afterEach(() => {
    vi.doUnmock('../src/core/e2ee/labels.js');
    vi.doUnmock('../src/core/e2ee/canonical.js');
    vi.resetModules();
  });

  it('a wrong heartbeat label fails the heartbeat and sample-chain answers, and only those', async () => {
    const failed = await selftestWith('../src/core/e2ee/labels.js', (actual) => ({
      ...actual,
      LABELS: { ...(actual.LABELS as object), heartbeat: 'sealroom/v1/heartbeat2' },
    }));
    expect(failed).toEqual([
      'e2ee: heartbeat statement and signature',
      'e2ee: sample chain (create, add, add, leave, heartbeat)',
    ]);
  });

  const labels = [
    'binding',
    'listEntry',
    'listHash',
    'heartbeat',
    'wrapKey',
    'wrapAad',
    'senderKey',
    'frameAuth',
    'securityCode',
  ];
  it.each(labels)('a wrong %s label fails at least one answer', async (name) => {
    const failed = await selftestWith('../src/core/e2ee/labels.js', (actual) => {
      const table = actual.LABELS as Record<string, string>;
      expect(table[name]).toMatch(/^sealroom\/v1\//);
      return { ...actual, LABELS: { ...table, [name]: `${table[name]}x` } };
    });
    expect(failed.length).toBeGreaterThan(0);
  });

  it.each(['binding', 'listEntry', 'wrapSecret', 'wrapKey', 'wrapAad'])(
    'a wrong v2 %s label fails a v2 answer (and no v1 answer)',
    async (name) => {
      const failed = await selftestWith('../src/core/e2ee/labels.js', (actual) => {
        const table = actual.LABELS_V2 as Record<string, string>;
        expect(table[name]).toMatch(/^sealroom\/v2\//);
        return { ...actual, LABELS_V2: { ...table, [name]: `${table[name]}x` } };
      });
      expect(failed.length).toBeGreaterThan(0);
      expect(failed.every((f) => f.startsWith('e2ee v2:'))).toBe(true);
    },
  );

  it.each([
    ['a dropped last field', (fields: unknown[]) => fields.slice(0, -1)],
    ['two fields swapped', (fields: unknown[]) => [fields[1], fields[0], ...fields.slice(2)]],
  ])('%s of the heartbeat statement fails the heartbeat answer', async (_what, mutate) => {
    const failed = await selftestWith('../src/core/e2ee/canonical.js', (actual) => {
      const encode = actual.encodeCanonical as (label: string, ...fields: unknown[]) => Uint8Array;
      return {
        ...actual,
        encodeCanonical: (label: string, ...fields: unknown[]) =>
          encode(label, ...(label === 'sealroom/v1/heartbeat' ? mutate(fields) : fields)),
      };
    });
    expect(failed).toContain('e2ee: heartbeat statement and signature');
  });

  it('an add statement without the certificate fails the add-entry answer', async () => {
    const failed = await selftestWith('../src/core/e2ee/canonical.js', (actual) => {
      const encode = actual.encodeCanonical as (label: string, ...fields: unknown[]) => Uint8Array;
      return {
        ...actual,
        encodeCanonical: (label: string, ...fields: unknown[]) =>
          encode(
            label,
            ...(label === 'sealroom/v1/list-entry' && fields[5] === 'add'
              ? [...fields.slice(0, 10), fields[11]]
              : fields),
          ),
      };
    });
    expect(failed).toContain('e2ee: add list-entry statement (with certificate) and list hash');
  });
});
