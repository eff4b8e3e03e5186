// Protocol v2 (docs/protocol.md §12): hybrid X25519 + ML-KEM-768 key wrap, version negotiation and
// downgrade refusal, people's bindings signed by a WebCrypto key, and the rule that people never lead.
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createBindingAsync,
  E2eeError,
  EphemeralKeyPair,
  IdentityKeyPair,
  KemKeyPair,
  type KeyMessage,
  LeaderSession,
  ParticipantSession,
  type SessionEvent,
  SimulatedMeeting,
  type TrustIdentity,
} from '../src/core/e2ee/index.js';
import { FakeClock, seededRandom } from './e2ee-helpers.js';

const keyMessages = (m: SimulatedMeeting, to: string) =>
  m.delivered.filter((d) => d.to === to && d.message.type === 'e2ee.key').map((d) => d.message as KeyMessage);
const eventsOf = (m: SimulatedMeeting, id: string, type: SessionEvent['type']) =>
  (m.events.get(id) ?? []).filter((e) => e.type === type);

function agreed(m: SimulatedMeeting): void {
  const codes = new Set(m.securityCodes().values());
  expect(codes.size).toBe(1);
  expect([...codes][0]).toMatch(/^\d{5}( \d{5}){7}$/);
  const epochs = new Set([m.leader.epoch, ...[...m.participants.values()].map((p) => p.epoch)]);
  expect(epochs.size).toBe(1);
}

describe('protocol v2 meetings', () => {
  it('are the default: signed v2 create, v2 bindings, every key message carries its ML-KEM ciphertext', () => {
    const m = new SimulatedMeeting({ meetingId: 'v2-default', leaderId: 'lead', random: seededRandom('v2') });
    m.join('a');
    m.join('b');
    m.admit(['a', 'b']);
    agreed(m);
    const list = m.wire.map((t) => JSON.parse(t)).filter((x) => x.type === 'e2ee.list');
    expect(list[0].entries[0].body).toMatchObject({ kind: 'create', version: 2 });
    expect(list[0].v).toBe(2);
    const binding = m.wire.map((t) => JSON.parse(t)).find((x) => x.type === 'e2ee.binding').binding;
    expect(binding.versions).toEqual([2]);
    expect(Buffer.from(binding.kemKey, 'base64url').length).toBe(1184);
    m.rekey();
    m.rekey();
    agreed(m);
    const toA = keyMessages(m, 'a');
    expect(toA.length).toBe(3);
    // One encapsulation per (leader key, member): the same ciphertext every epoch, another per member.
    expect(new Set(toA.map((k) => k.kemCiphertext)).size).toBe(1);
    expect(Buffer.from(toA[0]!.kemCiphertext!, 'base64url').length).toBe(1088);
    expect(keyMessages(m, 'b')[0]!.kemCiphertext).not.toBe(toA[0]!.kemCiphertext);
    expect(m.leader.state.leaderWrap.size).toBe(2);
    // A hand-over: the successor encapsulates afresh to every other member under its own key.
    m.handOver('a');
    agreed(m);
    const afterHandOver = keyMessages(m, 'b').at(-1)!;
    expect(afterHandOver.from).toBe('a');
    expect(afterHandOver.kemCiphertext).not.toBe(keyMessages(m, 'b')[0]!.kemCiphertext);
    m.leave('b');
    expect(m.leader.state.leaderWrap.size).toBe(1);
  });

  it('run v1 only when configured on both sides, with no ML-KEM material on the wire', () => {
    const v1 = { protocolVersion: 1, minProtocolVersion: 1 } as const;
    const m = new SimulatedMeeting({ meetingId: 'v1', leaderId: 'lead', random: seededRandom('v1'), ...v1 });
    m.join('a');
    m.admit(['a']);
    agreed(m);
    expect(
      m.wire.some((t) => t.includes('kemCiphertext') || t.includes('kemKey') || t.includes('"version"')),
    ).toBe(false);
    expect(m.wire.every((t) => JSON.parse(t).v === 1)).toBe(true);
  });

  it('a v2 participant refuses a genuinely signed v1 meeting: downgrade', () => {
    const m = new SimulatedMeeting({
      meetingId: 'v1-meeting',
      leaderId: 'lead',
      random: seededRandom('down-1'),
      protocolVersion: 1,
      minProtocolVersion: 1,
    });
    // It accepts v1 in principle but binds for v2: the leader refuses its v2 binding for a v1 meeting.
    const a = m.join('a', { protocolVersion: 2, minProtocolVersion: 2 });
    expect(m.leader.waiting).toEqual([]);
    expect(eventsOf(m, 'lead', 'rejected')).toEqual([expect.objectContaining({ code: 'malformed' })]);
    // The relay hands it the v1 chain anyway: it sees a meeting below its minimum and refuses.
    const chain = m.wire.map((t) => JSON.parse(t)).find((x) => x.type === 'e2ee.list');
    const out = m.inject('a', { ...chain, to: 'a' });
    expect(out.events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'downgrade', participantId: 'lead', offered: 1, required: 2 }),
        expect.objectContaining({ type: 'rejected', code: 'downgrade' }),
      ]),
    );
    expect(a.isMember).toBe(false);
    expect(a.state.list.length).toBe(0);
  });

  it('a v2 leader refuses a genuinely signed v1 binding: downgrade, never an admission request', () => {
    const m = new SimulatedMeeting({
      meetingId: 'v2-meeting',
      leaderId: 'lead',
      random: seededRandom('down-2'),
    });
    const old = m.join('old', { protocolVersion: 1, minProtocolVersion: 1 });
    expect(eventsOf(m, 'lead', 'downgrade')).toEqual([
      expect.objectContaining({ participantId: 'old', offered: 1, required: 2 }),
    ]);
    expect(eventsOf(m, 'lead', 'admission-request')).toEqual([]);
    expect(m.leader.waiting).toEqual([]);
    expect(() => m.admit(['old'])).not.toThrow();
    expect(old.isMember).toBe(false);
    // A leader that accepts v1 (minProtocolVersion 1) still runs v2 and cannot add a v1 binding to it.
    const lenient = new SimulatedMeeting({
      meetingId: 'v2-lenient',
      leaderId: 'lead',
      random: seededRandom('down-3'),
      minProtocolVersion: 1,
    });
    lenient.join('old', { protocolVersion: 1, minProtocolVersion: 1 });
    expect(lenient.leader.waiting).toEqual([]);
    expect(eventsOf(lenient, 'lead', 'rejected')).toEqual([expect.objectContaining({ code: 'downgrade' })]);
  });

  it('a session cannot run a version below its own minimum', () => {
    const identity = IdentityKeyPair.generate(seededRandom('x'));
    expect(
      () => new ParticipantSession({ meetingId: 'm', participantId: 'p', identity, protocolVersion: 1 }),
    ).toThrow(/below minProtocolVersion/);
  });
});

describe('people: bindings signed by a WebCrypto key, and never leaders', () => {
  async function person(meetingId: string, participantId: string, seed = participantId) {
    const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const identityKey = new Uint8Array(await webcrypto.subtle.exportKey('raw', pair.publicKey));
    const random = seededRandom(`person/${seed}`);
    const keys = { ephemeral: EphemeralKeyPair.generate(random), kem: KemKeyPair.generate(random) };
    let signed = 0;
    const binding = await createBindingAsync({
      meetingId,
      participantId,
      identityKey,
      keys,
      sign: async (statement) => {
        signed++;
        return new Uint8Array(await webcrypto.subtle.sign('Ed25519', pair.privateKey, statement));
      },
    });
    return { pair, identityKey, keys, binding, signed: () => signed };
  }

  it('a person joins with a precomputed binding, agrees on everything, and signs nothing else', async () => {
    const people = new Set(['alice']);
    const trustIdentity: TrustIdentity = (id) => ({
      trusted: true,
      kind: people.has(id) ? 'person' : 'room',
    });
    const m = new SimulatedMeeting({
      meetingId: 'people',
      leaderId: 'lead',
      random: seededRandom('p'),
      trustIdentity,
    });
    m.join('room-b');
    const alice = await person('people', 'alice');
    expect(alice.signed()).toBe(1);
    const session = new ParticipantSession({
      meetingId: 'people',
      participantId: 'alice',
      prepared: { binding: alice.binding, keys: alice.keys },
      identityKey: alice.identityKey,
      trustIdentity,
    });
    expect(session.state.identity).toBeUndefined();
    m.add(session);
    m.admit(['room-b', 'alice']);
    agreed(m);
    expect(session.isMember).toBe(true);
    m.rekey();
    m.leave('room-b');
    for (let i = 0; i < 20; i++) m.tick();
    agreed(m);
    expect(alice.signed()).toBe(1); // the binding, and nothing more
    // It cannot be made a leader even by its own hand.
    expect(() => LeaderSession.takeOver(session)).toThrow(E2eeError);
    // A prepared binding must match its keys and the given identity key.
    const other = await person('people', 'alice', 'another-device');
    expect(
      () =>
        new ParticipantSession({
          meetingId: 'people',
          participantId: 'alice',
          prepared: { binding: alice.binding, keys: other.keys },
        }),
    ).toThrow(/does not match/);
    expect(
      () =>
        new ParticipantSession({
          meetingId: 'people',
          participantId: 'alice',
          prepared: { binding: alice.binding, keys: alice.keys },
          identityKey: other.identityKey,
        }),
    ).toThrow(/does not match/);
    // A signer that signs something else is caught at once.
    await expect(
      createBindingAsync({
        meetingId: 'people',
        participantId: 'alice',
        identityKey: alice.identityKey,
        keys: alice.keys,
        sign: async (s) =>
          new Uint8Array(await webcrypto.subtle.sign('Ed25519', alice.pair.privateKey, s.subarray(1))),
      }),
    ).rejects.toThrow(/does not verify/);
  });

  it('the leader never hands leadership to a person; eligibleSuccessors lists rooms only', async () => {
    const clock = new FakeClock();
    const people = new Set(['alice']);
    const trustIdentity: TrustIdentity = (id) => ({
      trusted: true,
      kind: people.has(id) ? 'person' : 'room',
    });
    const m = new SimulatedMeeting({
      meetingId: 'hand-over',
      leaderId: 'lead',
      random: seededRandom('h'),
      clock: clock.read,
      trustIdentity,
    });
    m.join('alice');
    m.join('room-b');
    m.admit(['alice', 'room-b']);
    expect(m.leader.eligibleSuccessors()).toEqual(['room-b']);
    const length = m.leader.state.list.length;
    expect(() => m.leader.handOver('alice')).toThrow(expect.objectContaining({ code: 'not-eligible' }));
    expect(m.leader.active).toBe(true);
    expect(m.leader.state.list.length).toBe(length); // nothing signed
    // A plain boolean trust answer has no kind: rooms then stay eligible.
    m.handOver('room-b');
    expect(m.leader.participantId).toBe('room-b');
    agreed(m);
  });
});
