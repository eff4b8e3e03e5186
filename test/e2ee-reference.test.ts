// Interoperability with an independent implementation written from docs/protocol.md alone:
// test/e2ee-reference.py (Python standard library only: its own Ed25519, X25519, HKDF, XChaCha20-
// Poly1305). It replays every message one participant received in a meeting that exercises every
// list-entry kind and a leader hand-over, and must reach exactly the state our participant reached:
// chain head, members, their sender indices and certificates, security code, certified epoch, every
// (meeting-bound) SFrame key and every frame-authentication key.
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

function scenario() {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: 'interop-1',
    leaderId: 'leader',
    random: seededRandom('interop'),
    clock: clock.read,
    certificate: fakeCertificate('leader', 700),
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
