// Issue 9 in the E2EE core: certificates in the chain and the trust policy, meeting-bound keys,
// frame-authentication keys, key freshness (send grace, leader lost), strictly advancing heartbeats,
// which "ahead" heartbeats are parked, low-order keys, atomic admission and strict validators.
import { describe, expect, it } from 'vitest';
import {
  bindingStatement,
  deriveFrameAuthKey,
  type E2eeMessage,
  EphemeralKeyPair,
  type HeartbeatMessage,
  IdentityKeyPair,
  KemKeyPair,
  type KeysEvent,
  LeaderSession,
  ParticipantSession,
  SEND_GRACE_MS,
  type SessionEvent,
  SimulatedMeeting,
  signHeartbeat,
  toBase64Url,
  validateE2eeMessage,
} from '../src/core/e2ee/index.js';
import { bindingToWire, heartbeatToWire, listEntryToWire } from '../src/core/e2ee/messages.js';
import { FakeClock, seededRandom } from './e2ee-helpers.js';

const cert = (id: string) => new TextEncoder().encode(`certificate of ${id}`);

function meeting(
  seed: string,
  options: { trustIdentity?: Parameters<typeof LeaderSession.create>[0]['trustIdentity'] } = {},
) {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: `meeting-${seed}`,
    leaderId: 'leader',
    random: seededRandom(seed),
    clock: clock.read,
    autoAdmit: true,
    certificate: cert('leader'),
    ...options,
  });
  return { m, clock };
}

const ofType = <T extends SessionEvent['type']>(events: SessionEvent[] | undefined, type: T) =>
  (events ?? []).filter((e): e is Extract<SessionEvent, { type: T }> => e.type === type);

function tickFor(m: SimulatedMeeting, clock: FakeClock, ms: number, step = 250): void {
  for (let t = 0; t < ms; t += step) {
    clock.advance(step);
    m.tick();
  }
}

describe('certificates and the trust policy', () => {
  it('carries each certificate in the chain: roster, admission request, trust calls at leader and members', () => {
    const calls: string[] = [];
    const trustIdentity = (id: string, key: Uint8Array, certificate: Uint8Array) => {
      calls.push(`${id}:${new TextDecoder().decode(certificate)}:${key.length}`);
      return true;
    };
    const clock = new FakeClock();
    const m = new SimulatedMeeting({
      meetingId: 'meeting-certs',
      leaderId: 'leader',
      random: seededRandom('certs'),
      clock: clock.read,
      certificate: cert('leader'),
      trustIdentity,
    });
    m.join('room-a', { certificate: cert('room-a') });
    expect(ofType(m.events.get('leader'), 'admission-request')).toEqual([
      expect.objectContaining({ participantId: 'room-a', certificate: toBase64Url(cert('room-a')) }),
    ]);
    expect(calls).toEqual(['room-a:certificate of room-a:32']); // the leader, before asking the room
    calls.length = 0;
    m.admit(['room-a']);
    // The leader asks again at admission; room-a replays the chain: the creator's add (index 1)
    // and its own add.
    expect(calls).toEqual([
      'room-a:certificate of room-a:32',
      'leader:certificate of leader:32',
      'room-a:certificate of room-a:32',
    ]);
    m.join('room-b', { certificate: cert('room-b') });
    calls.length = 0;
    m.admit(['room-b']);
    // The leader asks, room-b replays three adds; room-a applies the new one.
    expect(calls.sort()).toEqual(
      [
        'room-b:certificate of room-b:32',
        'leader:certificate of leader:32',
        'room-a:certificate of room-a:32',
        'room-b:certificate of room-b:32',
        'room-b:certificate of room-b:32',
      ].sort(),
    );
    const roster = ofType(m.events.get('room-b'), 'roster').at(-1)!;
    expect(roster.members.map((x) => [x.participantId, x.certificate])).toEqual([
      ['leader', toBase64Url(cert('leader'))],
      ['room-a', toBase64Url(cert('room-a'))],
      ['room-b', toBase64Url(cert('room-b'))],
    ]);
  });

  it('a binding the policy refuses never becomes an admission request, an entry or a key', () => {
    const { m } = meeting('refuse', {
      trustIdentity: (id) => id !== 'ghost',
    });
    const wireBefore = m.wire.length;
    m.join('ghost');
    expect(ofType(m.events.get('leader'), 'identity-refused')).toEqual([
      { type: 'identity-refused', participantId: 'ghost', reason: expect.any(String) },
    ]);
    expect(ofType(m.events.get('leader'), 'rejected')).toEqual([
      expect.objectContaining({ code: 'untrusted-identity' }),
    ]);
    expect(ofType(m.events.get('leader'), 'admission-request')).toEqual([]);
    expect(m.leader.members).toEqual(['leader']);
    expect(m.wire.slice(wireBefore).map((t) => JSON.parse(t).type)).toEqual(['e2ee.binding']);
  });

  it('a joiner refusing the creator (index 1) shows no security code for that leader', () => {
    const { m } = meeting('untrusted-creator');
    const a = m.join('room-a', { trustIdentity: (id) => id !== 'leader' });
    expect(a.state.list.length).toBeLessThan(2);
    expect(a.securityCode).toBeUndefined();
    expect(ofType(m.events.get('room-a'), 'security-code')).toEqual([]);
  });

  it('a member refuses an add entry its policy does not trust: nothing applied, identity-refused', () => {
    const { m } = meeting('member-refuses');
    const a = m.join('room-a', { trustIdentity: (id) => id !== 'room-z' });
    const length = a.state.list.length;
    m.join('room-z');
    expect(a.state.list.length).toBe(length);
    expect(a.state.list.member('room-z')).toBeUndefined();
    expect(ofType(m.events.get('room-a'), 'identity-refused')).toEqual([
      expect.objectContaining({ participantId: 'room-z' }),
    ]);
  });

  it('admit asks the policy again (a certificate revoked meanwhile) and admits the rest', () => {
    let revoked = false;
    const clock = new FakeClock();
    const m = new SimulatedMeeting({
      meetingId: 'meeting-revoked',
      leaderId: 'leader',
      random: seededRandom('revoked'),
      clock: clock.read,
      trustIdentity: (id) => !(revoked && id === 'room-b'),
    });
    m.join('room-a');
    m.join('room-b');
    revoked = true;
    const out = m.leader.admit(['room-a', 'room-b']);
    expect(ofType(out.events, 'identity-refused')).toEqual([
      expect.objectContaining({ participantId: 'room-b' }),
    ]);
    expect(m.leader.members.sort()).toEqual(['leader', 'room-a']);
  });
});

describe('hostile keys and messages', () => {
  it('a re-sent entry with the same signature but another statement is refused, not skipped', () => {
    const { m } = meeting('resent-changed');
    const a = m.join('room-a');
    const wire = listEntryToWire(a.state.list.entries[1]!);
    const out = a.handle({
      v: 1,
      type: 'e2ee.list',
      meetingId: a.state.meetingId,
      from: 'leader',
      entries: [{ ...wire, time: wire.time + 1 }], // signature copied from the genuine entry
    } as E2eeMessage);
    expect(ofType(out.events, 'rejected')).toEqual([expect.objectContaining({ code: 'chain-broken' })]);
    const same = a.handle({
      v: 1,
      type: 'e2ee.list',
      meetingId: a.state.meetingId,
      from: 'leader',
      entries: [wire],
    } as E2eeMessage);
    expect(ofType(same.events, 'rejected')).toEqual([]);
  });

  const LOW_ORDER = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];

  it('refuses a validly signed binding with a low-order X25519 key before any admission request', () => {
    const { m, clock } = meeting('low-order');
    m.join('room-a');
    const identity = IdentityKeyPair.generate(seededRandom('evil'));
    const kemKey = KemKeyPair.generate(seededRandom('evil-kem')).publicKey;
    for (const hex of LOW_ORDER) {
      const unsigned = {
        meetingId: m.meetingId,
        participantId: 'evil',
        identityKey: identity.publicKey,
        ephemeralKey: new Uint8Array(Buffer.from(hex, 'hex')),
        kemKey,
        versions: [2] as const,
      };
      const binding = {
        ...unsigned,
        signature: identity.sign(bindingStatement(unsigned)),
        certificate: new Uint8Array(0),
      };
      const out = m.leader.handle({
        v: 2,
        type: 'e2ee.binding',
        meetingId: m.meetingId,
        from: 'evil',
        binding: bindingToWire(binding),
      });
      expect(out.outgoing).toEqual([]);
      expect(out.events).toEqual([expect.objectContaining({ type: 'rejected', code: 'malformed' })]);
    }
    expect(m.leader.waiting).toEqual([]);
    // The meeting carries on: rekeys (on timers) still work.
    clock.advance(300_000);
    m.tick();
    expect(m.participants.get('room-a')!.epoch).toBe(m.leader.epoch);
  });

  it('admit with a locked meeting throws before appending anything', () => {
    const clock = new FakeClock();
    const m = new SimulatedMeeting({
      meetingId: 'm-atomic',
      leaderId: 'leader',
      random: seededRandom('atomic'),
      clock: clock.read,
    });
    m.join('room-a');
    m.lock();
    const length = m.leader.state.list.length;
    expect(() => m.leader.admit(['room-a'])).toThrow();
    expect(m.leader.state.list.length).toBe(length);
  });

  it('validators refuse epoch 0, non-canonical base64url, oversized certificates and 33 entries', () => {
    const { m } = meeting('validators');
    m.join('room-a');
    const messages = m.wire.map((t) => JSON.parse(t) as E2eeMessage);
    const key = messages.find((x) => x.type === 'e2ee.key')!;
    const heartbeat = messages.find((x) => x.type === 'e2ee.heartbeat')!;
    const binding = messages.find((x) => x.type === 'e2ee.binding')!;
    const list = messages.find((x) => x.type === 'e2ee.list')!;
    if (binding.type !== 'e2ee.binding' || list.type !== 'e2ee.list' || heartbeat.type !== 'e2ee.heartbeat')
      throw new Error('traffic');
    // A 32-byte key's last base64url character carries 2 unused bits: setting them re-spells it.
    const respell = (text: string) => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet.indexOf(text.at(-1)!);
      return text.slice(0, -1) + alphabet[last ^ 1]!;
    };
    expect(Buffer.from(respell(heartbeat.listHead), 'base64url')).toEqual(
      Buffer.from(heartbeat.listHead, 'base64url'),
    );
    const bad: unknown[] = [
      { ...key, epoch: 0 },
      { ...heartbeat, epoch: 0 },
      { ...heartbeat, listHead: respell(heartbeat.listHead) },
      { ...binding, binding: { ...binding.binding, identityKey: respell(binding.binding.identityKey) } },
      { ...binding, binding: { ...binding.binding, certificate: 'AB' } }, // non-canonical 1-byte tail
      { ...binding, binding: { ...binding.binding, certificate: 'A'.repeat(2732) } }, // > 2048 bytes
      { ...list, entries: Array.from({ length: 33 }, () => list.entries[0]!) },
      { ...messages.find((x) => x.type === 'e2ee.ack')!, epoch: 0 },
    ];
    for (const value of bad) expect(() => validateE2eeMessage(value)).toThrow(/invalid E2EE message/);
    expect(() =>
      validateE2eeMessage({ ...binding, binding: { ...binding.binding, certificate: 'A'.repeat(2731) } }),
    ).not.toThrow(); // 2048 bytes is the limit
    expect(() =>
      validateE2eeMessage({ ...list, entries: Array.from({ length: 32 }, () => list.entries[0]!) }),
    ).not.toThrow();
  });
});

describe('meeting-bound and frame-authentication keys', () => {
  it('pairwise directional frame-auth keys: A→B send is B←A receive, and only A and B hold it', () => {
    const { m } = meeting('frame-auth');
    for (const id of ['room-a', 'room-b']) m.join(id);
    const keys = new Map(['leader', 'room-a', 'room-b'].map((id) => [id, m.lastKeys(id)!]));
    const index = (id: string) =>
      (id === 'leader' ? m.leader.state : m.participants.get(id)!.state).list.member(id)!.senderIndex;
    for (const [id, k] of keys) {
      expect(k.meetingId).toBe(m.meetingId);
      expect(k.sending).toBe(true);
      expect(k.auth.map((a) => a.peerIndex).sort()).toEqual(
        [...keys.keys()]
          .filter((x) => x !== id)
          .map(index)
          .sort(),
      );
    }
    const a = keys.get('room-a')!;
    const b = keys.get('room-b')!;
    const aToB = a.auth.find((x) => x.peerIndex === index('room-b'))!;
    const bFromA = b.auth.find((x) => x.peerIndex === index('room-a'))!;
    expect(bFromA.receive).toEqual(aToB.send);
    expect(bFromA.send).toEqual(aToB.receive);
    expect(aToB.send).not.toEqual(aToB.receive);
    // The leader's keys with a and b are all different from the a↔b pair.
    const all = [...keys.values()].flatMap((k) => k.auth.flatMap((x) => [x.send, x.receive]));
    const distinct = new Set(all.map((x) => toBase64Url(x)));
    expect(distinct.size).toBe(6); // 3 pairs × 2 directions
    // The derivation is the documented one.
    const pa = m.participants.get('room-a')!.state;
    const shared = pa.secrets.get(m.participants.get('room-b')!.state.ephemeral.publicKey);
    expect(aToB.send).toEqual(
      deriveFrameAuthKey(shared, m.meetingId, pa.list.creationNonce, index('room-a'), index('room-b')),
    );
  });

  it('the same meeting key in two meetings gives different sender keys (creation nonce)', () => {
    const make = (meetingId: string) =>
      new SimulatedMeeting({
        meetingId,
        leaderId: 'leader',
        random: seededRandom('same-seed'),
        clock: new FakeClock().read,
      });
    const one = { m: make('meeting-one') };
    const two = { m: make('meeting-two') }; // same random stream: same keys, same epoch numbers…
    const k1 = one.m.lastKeys('leader')!;
    const k2 = two.m.lastKeys('leader')!;
    expect(k1.sendKid).toBe(k2.sendKid);
    expect(one.m.leader.state.keys.key(1)).toEqual(two.m.leader.state.keys.key(1)); // …same meeting key
    expect(k1.sendKey).not.toEqual(k2.sendKey); // but another meeting id: another SFrame key
  });
});

describe('key freshness', () => {
  it('a relay that drops only the wrapped keys to B after a leave: B stops sending within the grace, asks, resumes', () => {
    const { m, clock } = meeting('stale-key');
    for (const id of ['room-a', 'room-b', 'room-c']) m.join(id);
    const b = m.participants.get('room-b')!;
    const oldEpoch = b.epoch;
    m.dropWhere((d) => d.to === 'room-b' && d.message.type === 'e2ee.key');
    m.leave('room-c');
    expect(b.state.list.member('room-c')).toBeUndefined();
    expect(b.sending).toBe(true); // within the grace
    m.events.clear();
    tickFor(m, clock, SEND_GRACE_MS);
    expect(b.sending).toBe(false);
    expect(b.epoch).toBe(oldEpoch);
    expect(ofType(m.events.get('room-b'), 'send-suspended')).toEqual([
      { type: 'send-suspended', reason: 'rekeying' },
    ]);
    expect(m.lastKeys('room-b')!.sending).toBe(false);
    const asked = m.delivered.filter((d) => d.to === 'leader' && d.message.type === 'e2ee.resync');
    expect(asked.at(-1)?.message).toMatchObject({ from: 'room-b', epoch: m.leader.epoch });
    // The others switched (the leader certified without B's ack, within the grace).
    expect(m.leader.epoch).toBe(oldEpoch + 1);
    expect(m.lastKeys('room-a')!).toMatchObject({ epoch: oldEpoch + 1, sending: true });
    // Keys held back for a long while: B never sends again under the old key.
    tickFor(m, clock, 20_000, 1_000);
    expect(b.sending).toBe(false);
    expect(m.lastKeys('room-b')!.sending).toBe(false);
    m.cancelLosses();
    tickFor(m, clock, 2_100, 1_000);
    expect(b.epoch).toBe(m.leader.epoch);
    expect(b.sending).toBe(true);
    expect(ofType(m.events.get('room-b'), 'send-resumed')).toEqual([
      { type: 'send-resumed', epoch: m.leader.epoch },
    ]);
    expect(m.lastKeys('room-b')!).toMatchObject({ epoch: m.leader.epoch, sending: true });
  });

  it('a heartbeat certifying an epoch B lacks suspends B after the grace', () => {
    const { m, clock } = meeting('lacks');
    for (const id of ['room-a', 'room-b']) m.join(id);
    const b = m.participants.get('room-b')!;
    m.dropWhere(
      (d) => d.to === 'room-b' && (d.message.type === 'e2ee.key' || d.message.type === 'e2ee.resync'),
    );
    m.rekey(); // periodic: no membership change, but the heartbeat certifies an epoch B lacks
    tickFor(m, clock, 2_000); // the leader certifies without B's ack
    expect(m.lastKeys('room-a')!.epoch).toBe(m.leader.epoch);
    tickFor(m, clock, SEND_GRACE_MS - 250);
    expect(b.sending).toBe(true);
    tickFor(m, clock, 500);
    expect(b.sending).toBe(false);
  });

  it('the leader certifies a leave-rekey within the grace even without acks, and never sends stale', () => {
    const { m, clock } = meeting('leader-grace');
    for (const id of ['room-a', 'room-b']) m.join(id);
    m.dropWhere((d) => d.message.type === 'e2ee.ack');
    const epoch = m.leader.epoch;
    m.leave('room-b');
    clock.advance(SEND_GRACE_MS - 1);
    m.tick();
    expect(m.leader.epoch).toBe(epoch);
    clock.advance(1);
    m.tick();
    expect(m.leader.epoch).toBe(epoch + 1);
    expect(m.lastKeys('leader')).toMatchObject({ epoch: epoch + 1, sending: true });
  });

  it('after a leave the leader sends no heartbeat certifying the old epoch for the new chain', () => {
    const { m } = meeting('no-stale-heartbeat');
    for (const id of ['room-a', 'room-b']) m.join(id);
    m.dropWhere((d) => d.message.type === 'e2ee.ack');
    const epoch = m.leader.epoch;
    const before = m.wire.length;
    m.leave('room-b');
    m.lock(); // would re-certify the current epoch for the new head
    const heartbeats = m.wire
      .slice(before)
      .map((t) => JSON.parse(t))
      .filter((x) => x.type === 'e2ee.heartbeat');
    expect(heartbeats.filter((h) => h.epoch === epoch)).toEqual([]);
  });

  it('leader silent for 3 heartbeat intervals: leader-silent, sending suspended (leader-lost), resumed by a newer heartbeat', () => {
    const { m, clock } = meeting('leader-lost');
    const a = m.join('room-a');
    const heartbeats: HeartbeatMessage[] = [];
    m.dropWhere((d) => {
      if (d.to === 'room-a' && d.message.type === 'e2ee.heartbeat') {
        heartbeats.push(d.message);
        return true;
      }
      return false;
    });
    tickFor(m, clock, 29_000, 1_000);
    expect(a.sending).toBe(true);
    tickFor(m, clock, 1_000, 1_000);
    expect(ofType(m.events.get('room-a'), 'leader-silent')).toHaveLength(1);
    expect(ofType(m.events.get('room-a'), 'send-suspended')).toEqual([
      { type: 'send-suspended', reason: 'leader-lost' },
    ]);
    expect(m.lastKeys('room-a')!.sending).toBe(false);
    // A replay of an accepted heartbeat is refused and does not revive anything.
    const accepted = m.delivered
      .filter((d) => d.to === 'room-a' && d.message.type === 'e2ee.heartbeat')
      .at(0)!;
    expect(a.handle(accepted.message).events).toEqual([
      expect.objectContaining({ type: 'rejected', code: 'stale-epoch' }),
    ]);
    expect(a.sending).toBe(false);
    // A newer one (held back by the relay) does.
    const out = a.handle(heartbeats.at(-1)!);
    expect(ofType(out.events, 'send-resumed')).toHaveLength(1);
    expect(a.sending).toBe(true);
  });
});

describe('heartbeats strictly advance', () => {
  it('a replayed heartbeat (same time) is refused and never resets liveness', () => {
    const { m, clock } = meeting('replay');
    const a = m.join('room-a');
    const last = m.delivered.filter((d) => d.to === 'room-a' && d.message.type === 'e2ee.heartbeat').at(-1)!;
    for (let i = 0; i < 40; i++) {
      clock.advance(1_000);
      expect(a.handle(last.message).events).toEqual([expect.objectContaining({ code: 'stale-epoch' })]);
      a.tick();
    }
    expect(a.sending).toBe(false); // lost contact after 30 s despite 40 replays
  });

  it('the leader signs strictly increasing times, within one millisecond and across a hand-over', () => {
    const { m } = meeting('times'); // the clock never moves in this test
    for (const id of ['room-a', 'room-b']) m.join(id);
    m.lock();
    m.unlock();
    m.handOver('room-a');
    m.lock();
    const times = m.wire
      .map((t) => JSON.parse(t))
      .filter((x) => x.type === 'e2ee.heartbeat')
      .map((x) => x.time as number);
    expect(times.length).toBeGreaterThan(4);
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThan(times[i - 1]!);
    for (const [id] of m.events) expect(ofType(m.events.get(id), 'rejected')).toEqual([]);
    expect(m.participants.get('leader')!.epoch).toBe(m.leader.epoch);
  });
});

describe('ahead heartbeats', () => {
  it('one from a member that is not the leader is not parked and does not block the key-wait resync', () => {
    const clock = new FakeClock();
    const m = new SimulatedMeeting({
      meetingId: 'm-ahead',
      leaderId: 'leader',
      random: seededRandom('ahead'),
      clock: clock.read,
      autoAdmit: true,
    });
    for (const id of ['room-a', 'room-b']) m.join(id);
    const b = m.participants.get('room-b')!;
    const mallory = IdentityKeyPair.generate(seededRandom('mallory'));
    const forged = (signer: IdentityKeyPair, leaderId: string, time: number): HeartbeatMessage =>
      heartbeatToWire(
        signHeartbeat(
          {
            meetingId: m.meetingId,
            leaderId,
            epoch: 99,
            listLength: 1_000,
            listHead: new Uint8Array(32),
            time,
          },
          signer,
        ),
        leaderId,
      );
    // Unsigned by the leader: refused, not parked, not superseding B's epoch.
    expect(b.handle(forged(mallory, 'leader', clock.now + 10)).events).toEqual([
      expect.objectContaining({ type: 'rejected', code: 'bad-signature' }),
    ]);
    // Signed by member room-a (its real key) while playing leader: B asks room-a, parks nothing.
    const roomA = m.participants.get('room-a')!.state.signer;
    const fromA = b.handle(forged(roomA, 'room-a', clock.now + 10));
    expect(fromA.outgoing).toEqual([expect.objectContaining({ type: 'e2ee.resync', to: 'room-a' })]);
    expect(b.sending).toBe(true);
    // Meanwhile a real certified epoch B lacks: B still asks the leader for it after 2 s.
    m.dropWhere((d) => d.to === 'room-b' && d.message.type === 'e2ee.key');
    m.rekey();
    m.cancelLosses();
    tickFor(m, clock, 5_000, 1_000);
    const asked = m.delivered
      .filter((d) => d.to === 'leader' && d.message.type === 'e2ee.resync')
      .map((d) => d.message);
    expect(asked).toContainEqual(expect.objectContaining({ from: 'room-b', epoch: m.leader.epoch }));
    expect(b.epoch).toBe(m.leader.epoch);
  });
});

describe('sessions made by hand', () => {
  it('participant keys event has meetingId, sending and auth; an empty certificate is allowed', () => {
    const clock = new FakeClock();
    const random = seededRandom('by-hand');
    const { session: leader } = LeaderSession.create({
      meetingId: 'm-h',
      participantId: 'leader',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
      autoAdmit: true,
    });
    const p = new ParticipantSession({
      meetingId: 'm-h',
      participantId: 'room-a',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
    });
    const events: SessionEvent[] = [];
    const exchange = (messages: E2eeMessage[]) => {
      for (const msg of messages) {
        if (msg.to !== undefined && msg.to !== 'room-a') continue;
        const out = p.handle(msg);
        events.push(...out.events);
        for (const reply of out.outgoing) exchange(leader.handle(reply).outgoing);
      }
    };
    exchange(leader.handle(p.start().outgoing[0]!).outgoing);
    const keys = events.filter((e): e is KeysEvent => e.type === 'keys').at(-1)!;
    expect(keys).toMatchObject({ type: 'keys', meetingId: 'm-h', sending: true, epoch: leader.epoch });
    expect(keys.auth).toHaveLength(1);
    expect(EphemeralKeyPair).toBeDefined();
  });
});
