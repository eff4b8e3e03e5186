// Interoperability with an independent implementation written from docs/protocol.md alone:
// test/e2ee-reference.py (Python standard library only: its own Ed25519, X25519, HKDF, XChaCha20-
// Poly1305). It replays every message one participant received in a meeting that exercises every
// list-entry kind and a leader hand-over, and must reach exactly the state our participant reached:
// chain head, members, their sender indices and certificates, security code, certified epoch, every
// (meeting-bound) SFrame key and every frame-authentication key. Once as a v1 meeting, once as a v2
// meeting (docs/protocol.md §12), where the test gives the reference the participant's ML-KEM
// decapsulations (Python's standard library has no ML-KEM); everything else it computes itself.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type RandomSource, SimulatedMeeting } from '../src/core/e2ee/index.js';
import { FakeClock, mutateString, seededRandom } from './e2ee-helpers.js';

const REFERENCE = fileURLToPath(new URL('./e2ee-reference.py', import.meta.url));

interface ReferenceResult {
  securityCode: string | null;
  leaderId: string;
  listLength: number;
  listHead: string;
  members: Record<string, number>;
  certificates: Record<string, string>;
  sendEpoch: number;
  senderKeys: Record<string, string>;
  frameAuth: Record<string, { send: string; receive: string }>;
  rejected: string[];
}

function reference(input: object): ReferenceResult {
  const out = execFileSync('python3', [REFERENCE], { input: JSON.stringify(input), timeout: 60_000 });
  return JSON.parse(out.toString()) as ReferenceResult;
}

/** A random source that remembers its first draw (the participant's ephemeral X25519 seed). */
function recording(seed: string): { random: RandomSource; first: () => Uint8Array } {
  const inner = seededRandom(seed);
  const draws: Uint8Array[] = [];
  return {
    random: (n) => {
      const bytes = inner(n);
      draws.push(Uint8Array.from(bytes));
      return bytes;
    },
    first: () => draws[0]!,
  };
}

/** Stand-in certificate DER: the protocol carries it opaquely (its trust policy is the daemon's). */
const fakeCertificate = (name: string, length: number) => seededRandom(`certificate/${name}`)(length);

function scenario(version: 1 | 2 = 1) {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: 'interop-1',
    leaderId: 'leader',
    random: seededRandom('interop'),
    clock: clock.read,
    certificate: fakeCertificate('leader', 700),
    // v1 explicitly (the v2 default is replayed below, with ML-KEM decapsulations as an oracle:
    // Python's standard library has no ML-KEM).
    protocolVersion: version,
    minProtocolVersion: version,
  });
  const watched = recording('watched');
  m.join('room-a', { random: watched.random, certificate: fakeCertificate('room-a', 2048) });
  m.join('room-b', { certificate: fakeCertificate('room-b', 1) });
  m.join('room-c'); // no certificate: the empty string
  m.admit(['room-a', 'room-b', 'room-c']);
  m.lock();
  clock.advance(1_000);
  m.unlock();
  m.leave('room-b');
  clock.advance(300_000);
  m.tick(); // periodic rekey
  m.handOver('room-c');
  m.join('room-d');
  m.admit(['room-d']);
  const messages = m.delivered.filter((d) => d.to === 'room-a').map((d) => d.message);
  return { m, messages, ephemeralSeed: Buffer.from(watched.first()).toString('hex') };
}

describe('interoperability with the Python reference of docs/protocol.md', () => {
  const { m, messages, ephemeralSeed } = scenario();
  const ours = m.participants.get('room-a')!;
  const input = { meetingId: m.meetingId, participantId: 'room-a', ephemeralSeed, messages };

  it('reaches the same state from the same messages', () => {
    expect(new Set(messages.map((x) => x.type))).toEqual(
      new Set(['e2ee.list', 'e2ee.key', 'e2ee.heartbeat']),
    );
    const theirs = reference(input);
    expect(theirs.rejected).toEqual([]);
    expect(theirs.leaderId).toBe('room-c');
    expect(theirs.listLength).toBe(ours.state.list.length);
    expect(theirs.listHead).toBe(Buffer.from(ours.state.list.head).toString('hex'));
    expect(theirs.members).toEqual(
      Object.fromEntries(ours.state.list.members().map((x) => [x.participantId, x.senderIndex])),
    );
    expect(theirs.certificates).toEqual(
      Object.fromEntries(
        ours.state.list
          .members()
          .map((x) => [x.participantId, Buffer.from(x.certificate).toString('base64url')]),
      ),
    );
    expect(theirs.certificates['room-a']).toHaveLength(Math.ceil((2048 * 4) / 3));
    expect(theirs.certificates['room-c']).toBe('');
    expect(theirs.securityCode).toBe(ours.securityCode);
    expect(theirs.sendEpoch).toBe(ours.epoch);
    const keys = m.lastKeys('room-a')!;
    const ourKeys = Object.fromEntries([
      [String(keys.sendKid), Buffer.from(keys.sendKey).toString('hex')],
      ...keys.receiveKeys
        .filter((k) => k.epoch === keys.epoch)
        .map((k) => [String(k.kid), Buffer.from(k.key).toString('hex')]),
    ]);
    expect(theirs.senderKeys).toEqual(ourKeys);
    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
    expect(keys.auth).toHaveLength(ours.state.list.members().length - 1);
    expect(theirs.frameAuth).toEqual(
      Object.fromEntries(
        keys.auth.map((a) => [String(a.peerIndex), { send: hex(a.send), receive: hex(a.receive) }]),
      ),
    );
  });

  it('the reference skips a re-sent entry spelled differently, refuses a changed one and a replayed heartbeat', () => {
    const list = messages.find((x) => x.type === 'e2ee.list');
    if (list?.type !== 'e2ee.list') throw new Error('no list');
    const entry = list.entries[0]!;
    const respelled = { ...list, entries: [Object.fromEntries(Object.entries(entry).reverse())] };
    const changed = { ...list, entries: [{ ...entry, time: entry.time + 1 }] };
    const heartbeat = messages.findLast((x) => x.type === 'e2ee.heartbeat')!;
    const theirs = reference({ ...input, messages: [...messages, respelled, changed, heartbeat] });
    expect(theirs.rejected).toEqual([
      expect.stringMatching(/^e2ee\.list: entry differs from the verified one/),
      expect.stringMatching(/^e2ee\.heartbeat: stale heartbeat/),
    ]);
    expect(theirs.listHead).toBe(Buffer.from(ours.state.list.head).toString('hex'));
  });

  it('the reference also refuses a forged heartbeat and a tampered wrapped key', () => {
    const index = messages.findLastIndex((x) => x.type === 'e2ee.heartbeat');
    const heartbeat = messages[index]!;
    if (heartbeat.type !== 'e2ee.heartbeat') throw new Error('no heartbeat');
    const forged = { ...heartbeat, signature: mutateString(heartbeat.signature, 10, 3) };
    const keyIndex = messages.findLastIndex((x) => x.type === 'e2ee.key');
    const key = messages[keyIndex]!;
    if (key.type !== 'e2ee.key') throw new Error('no key');
    const tampered = { ...key, ciphertext: mutateString(key.ciphertext, 5, 1) };
    const altered = messages.map((x, i) => (i === index ? forged : i === keyIndex ? tampered : x));
    const theirs = reference({ ...input, messages: altered });
    expect(theirs.rejected).toEqual([
      expect.stringMatching(/^e2ee\.key: wrapped key does not authenticate/),
      expect.stringMatching(/^e2ee\.heartbeat: heartbeat does not verify/),
    ]);
    expect(theirs.sendEpoch).toBeLessThan(ours.epoch);
  });
});

describe('interoperability with the Python reference: a protocol v2 meeting', () => {
  const { m, messages, ephemeralSeed } = scenario(2);
  const ours = m.participants.get('room-a')!;
  // The one thing the reference cannot compute: ML-KEM-768 decapsulation with room-a's private key.
  const kemSecrets = Object.fromEntries(
    messages.flatMap((x) =>
      x.type === 'e2ee.key' && x.kemCiphertext
        ? [
            [
              x.kemCiphertext,
              Buffer.from(ours.state.kem!.decapsulate(Buffer.from(x.kemCiphertext, 'base64url'))).toString(
                'hex',
              ),
            ],
          ]
        : [],
    ),
  );
  const input = {
    meetingId: m.meetingId,
    participantId: 'room-a',
    ephemeralSeed,
    messages,
    kemSecrets,
    minVersion: 2,
  };

  it('reaches the same state: v2 chain, hybrid-wrapped keys (two leaders), sender and frame-auth keys', () => {
    expect(Object.keys(kemSecrets)).toHaveLength(2); // one ciphertext per leader (lead, then room-c)
    const theirs = reference(input) as ReferenceResult & { version: number };
    expect(theirs.rejected).toEqual([]);
    expect(theirs.version).toBe(2);
    expect(theirs.leaderId).toBe('room-c');
    expect(theirs.listHead).toBe(Buffer.from(ours.state.list.head).toString('hex'));
    expect(theirs.securityCode).toBe(ours.securityCode);
    expect(theirs.sendEpoch).toBe(ours.epoch);
    const keys = m.lastKeys('room-a')!;
    expect(theirs.senderKeys[String(keys.sendKid)]).toBe(Buffer.from(keys.sendKey).toString('hex'));
    expect(Object.keys(theirs.frameAuth)).toHaveLength(keys.auth.length);
  });

  it('the reference refuses a stripped or swapped ML-KEM ciphertext and, requiring v2, a v1 meeting', () => {
    const keyIndex = messages.findLastIndex((x) => x.type === 'e2ee.key');
    const key = messages[keyIndex]!;
    if (key.type !== 'e2ee.key') throw new Error('no key');
    const { kemCiphertext: _ct, ...stripped } = key;
    const other = Object.keys(kemSecrets).find((ct) => ct !== key.kemCiphertext)!;
    for (const [altered, reason] of [
      [stripped, /^e2ee\.key: downgrade/],
      [{ ...key, kemCiphertext: other }, /^e2ee\.key: wrapped key does not authenticate/],
    ] as const) {
      const theirs = reference({
        ...input,
        messages: messages.map((x, i) => (i === keyIndex ? altered : x)),
      });
      expect(theirs.rejected).toEqual([expect.stringMatching(reason)]);
      expect(theirs.sendEpoch).toBeLessThan(ours.epoch);
    }
    // And a participant that requires v2 refuses the v1 meeting of the first scenario.
    const v1 = scenario(1);
    const theirs = reference({
      meetingId: v1.m.meetingId,
      participantId: 'room-a',
      ephemeralSeed: v1.ephemeralSeed,
      messages: v1.messages,
      minVersion: 2,
    });
    expect(theirs.rejected[0]).toMatch(/downgrade/);
    expect(theirs.listLength).toBe(0);
  });
});
