// The wire format as the relay sees it: every message a real meeting produces passes the schema
// and size check and round-trips through JSON; malformed or oversized input is refused with a typed
// error, never a crash.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  E2EE_MESSAGE_TYPES,
  E2eeError,
  isE2eeMessage,
  MAX_E2EE_MESSAGE_BYTES,
  parseE2eeMessage,
  SimulatedMeeting,
  validateE2eeMessage,
} from '../src/core/e2ee/index.js';
import { FakeClock, seededRandom } from './e2ee-helpers.js';

function realTraffic(): string[] {
  const m = new SimulatedMeeting({
    meetingId: 'wire-1',
    leaderId: 'leader',
    random: seededRandom('wire'),
    clock: new FakeClock().read,
    autoAdmit: true,
  });
  for (const id of ['room-a', 'room-b', 'room-c']) m.join(id);
  m.lock();
  m.unlock();
  m.leave('room-b');
  m.handOver('room-a');
  return m.wire;
}

describe('E2EE wire messages', () => {
  const wire = realTraffic();

  it('a real meeting uses every message type, each valid and JSON-stable', () => {
    const types = new Set(wire.map((t) => (JSON.parse(t) as { type: string }).type));
    // e2ee.resync appears only after a lost message (test/e2ee-sessions.test.ts covers it).
    expect([...types].sort()).toEqual(E2EE_MESSAGE_TYPES.filter((t) => t !== 'e2ee.resync').sort());
    for (const text of wire) {
      const message = parseE2eeMessage(text);
      expect(JSON.stringify(message)).toBe(text);
      expect(message.v).toBe(2);
    }
  });

  it('routing fields are the only ones the relay needs', () => {
    for (const text of wire) {
      const message = parseE2eeMessage(text);
      expect(typeof message.meetingId).toBe('string');
      expect(typeof message.from).toBe('string');
      if (message.type === 'e2ee.key' || message.type === 'e2ee.ack')
        expect(typeof message.to).toBe('string');
    }
  });

  it('refuses unknown fields, wrong versions, bad base64url, bad ids and wrong sizes', () => {
    const key = JSON.parse(wire.find((t) => t.includes('"e2ee.key"'))!);
    const bad = [
      { ...key, extra: 1 },
      { ...key, v: 3 },
      { ...key, v: '2' },
      { ...key, kemCiphertext: key.kemCiphertext.slice(4) },
      { ...key, kemCiphertext: `${key.kemCiphertext}AAAA` },
      { ...key, nonce: `${key.nonce.slice(0, -1)}=` },
      { ...key, nonce: key.nonce.slice(1) },
      { ...key, ciphertext: `${key.ciphertext}AA` },
      { ...key, from: 'has space' },
      { ...key, to: 'x'.repeat(129) },
      { ...key, epoch: -1 },
      { ...key, epoch: 1.5 },
      { ...key, type: 'e2ee.other' },
      null,
      [],
      'text',
    ];
    for (const value of bad) {
      expect(isE2eeMessage(value)).toBe(false);
      expect(() => validateE2eeMessage(value)).toThrow(E2eeError);
    }
  });

  it('refuses oversized and non-JSON text', () => {
    expect(() => parseE2eeMessage('{')).toThrow(E2eeError);
    expect(() => parseE2eeMessage(' '.repeat(MAX_E2EE_MESSAGE_BYTES + 1))).toThrow(/too large/);
  });

  it('never crashes on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        try {
          validateE2eeMessage(value);
        } catch (error) {
          expect(error).toBeInstanceOf(E2eeError);
        }
      }),
    );
  });
});

describe('sessions fed unvalidated objects', () => {
  it('report them as rejected instead of throwing', () => {
    const m = new SimulatedMeeting({
      meetingId: 'wire-2',
      leaderId: 'leader',
      random: seededRandom('unvalidated'),
      clock: new FakeClock().read,
      autoAdmit: true,
    });
    const participant = m.join('room-a');
    const junk: unknown[] = [
      null,
      7,
      {},
      { type: 'e2ee.key' },
      { v: 1, type: 'e2ee.list', meetingId: 'wire-2', from: 'leader' },
    ];
    for (const value of junk) {
      for (const session of [m.leader, participant]) {
        const out = session.handle(value as never);
        expect(out.outgoing).toEqual([]);
        expect(out.events).toEqual([expect.objectContaining({ type: 'rejected', code: 'malformed' })]);
      }
    }
  });
});
