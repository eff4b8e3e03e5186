// Interoperability with an independent implementation written from docs/protocol.md alone:
// test/e2ee-reference.py (Python standard library only: its own Ed25519, X25519, HKDF, XChaCha20-
// Poly1305). It replays every message one participant received in a meeting that exercises every
// list-entry kind and a leader hand-over, and must reach exactly the state our participant reached:
// chain head, members and sender indices, security code, certified epoch and every SFrame key.
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
  sendEpoch: number;
  senderKeys: Record<string, string>;
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

function scenario() {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: 'interop-1',
    leaderId: 'leader',
    random: seededRandom('interop'),
    clock: clock.read,
  });
  const watched = recording('watched');
  m.join('room-a', { random: watched.random });
  m.join('room-b');
  m.join('room-c');
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
