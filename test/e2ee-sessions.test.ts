// The key-manager state machines driven through an in-process relay (every message goes through
// JSON and the schema check), with real SFrame encryption of a frame per sender per epoch.
import { describe, expect, it } from 'vitest';
import {
  type E2eeMessage,
  IdentityKeyPair,
  type KeyMessage,
  LeaderSession,
  openMeetingKey,
  ParticipantSession,
  type SessionEvent,
  SimulatedMeeting,
  validateE2eeMessage,
} from '../src/core/e2ee/index.js';
import { fromBase64Url } from '../src/core/e2ee/bytes.js';
import { SFrameError, SFrameReceiver, SFrameSender } from '../src/core/sframe/index.js';
import { FakeClock, leafPaths, mutateAt, seededRandom } from './e2ee-helpers.js';

type KeysEvent = Extract<SessionEvent, { type: 'keys' }>;

function meeting(seed: string, options: { autoAdmit?: boolean } = {}) {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: `meeting-${seed}`,
    leaderId: 'leader',
    random: seededRandom(seed),
    clock: clock.read,
    ...options,
  });
  return { m, clock };
}

/** Every current member encrypts a frame with its send key; every other member decrypts it. */
function expectMediaFlows(m: SimulatedMeeting): void {
  const ids = m.leader.members;
  const keys = new Map(ids.map((id) => [id, m.lastKeys(id)!]));
  for (const sender of ids) {
    const own = keys.get(sender)!;
    expect(own.epoch).toBe(m.leader.epoch);
    const frame = new TextEncoder().encode(`frame from ${sender} at epoch ${own.epoch}`);
    const sframe = new SFrameSender({ kid: own.sendKid, baseKey: own.sendKey }).encrypt(frame);
    for (const receiver of ids) {
      if (receiver === sender) continue;
      expect(decryptWith(keys.get(receiver)!, sframe)).toEqual(frame);
    }
  }
}

function decryptWith(keys: KeysEvent, sframe: Uint8Array): Uint8Array {
  const receiver = new SFrameReceiver();
  for (const k of keys.receiveKeys) receiver.setKey(k.kid, k.key);
  return new Uint8Array(receiver.decrypt(sframe).plaintext);
}

function eventsOf(m: SimulatedMeeting, id: string, type: SessionEvent['type']): SessionEvent[] {
  return (m.events.get(id) ?? []).filter((e) => e.type === type);
}

describe('E2EE meeting sessions', () => {
  it('admits a batch of joiners with one rekey; everyone agrees on code, epoch and keys', () => {
    const { m } = meeting('batch');
    for (const id of ['room-a', 'room-b', 'room-c']) m.join(id);
    expect(eventsOf(m, 'leader', 'admission-request')).toHaveLength(3);
    expect(m.leader.waiting).toEqual(['room-a', 'room-b', 'room-c']);
    m.admit(['room-a', 'room-b', 'room-c']);
    expect(m.leader.epoch).toBe(2); // epoch 1 at creation, one rekey for the whole batch
    const codes = new Set(m.securityCodes().values());
    expect(codes.size).toBe(1);
    expect([...codes][0]).toMatch(/^\d{5}( \d{5}){7}$/);
    for (const id of ['room-a', 'room-b', 'room-c']) {
      expect(m.participants.get(id)!.epoch).toBe(2);
      expect(eventsOf(m, id, 'joined')).toHaveLength(1);
    }
    expect(eventsOf(m, 'leader', 'rejected')).toEqual([]);
    expectMediaFlows(m);
  });

  it('auto-admits joiners in batches: several joins, one rekey on the next tick', () => {
    const clock = new FakeClock();
    const m = new SimulatedMeeting({
      meetingId: 'meeting-batched',
      leaderId: 'leader',
      random: seededRandom('batched'),
      clock: clock.read,
      autoAdmit: true,
      admitBatchMs: 500,
    });
    const epoch = m.leader.epoch;
    for (const id of ['room-a', 'room-b', 'room-c']) m.join(id);
    expect(m.leader.members).toEqual(['leader']);
    clock.advance(499);
    m.tick();
    expect(m.leader.members).toEqual(['leader']);
    clock.advance(1);
    m.tick();
    expect(m.leader.members.sort()).toEqual(['leader', 'room-a', 'room-b', 'room-c']);
    expect(m.leader.epoch).toBe(epoch + 1);
    expectMediaFlows(m);
  });

  it('rekeys on leave; the departed participant cannot decrypt what follows', () => {
    const { m } = meeting('leave', { autoAdmit: true });
    for (const id of ['room-a', 'room-b', 'room-c']) m.join(id);
    const departed = m.participants.get('room-b')!;
    const departedKeys = m.lastKeys('room-b')!;
    const epochBefore = m.leader.epoch;
    const wireBefore = m.wire.length;
    m.leave('room-b');
    expect(m.leader.epoch).toBe(epochBefore + 1);
    expect(m.leader.members).not.toContain('room-b');
    expectMediaFlows(m);

    // A frame sent after the leave is not decryptable with anything room-b held.
    const sender = m.lastKeys('room-a')!;
    const sframe = new SFrameSender({ kid: sender.sendKid, baseKey: sender.sendKey }).encrypt(
      new Uint8Array(10),
    );
    expect(() => decryptWith(departedKeys, sframe)).toThrow(SFrameError);

    // Nor can room-b open any wrapped key sent after its leave, even addressed to itself by a
    // hostile relay, with the ephemeral key and leader secret it holds.
    const later = m.wire
      .slice(wireBefore)
      .map((t) => JSON.parse(t) as E2eeMessage)
      .filter((msg): msg is KeyMessage => msg.type === 'e2ee.key');
    expect(later.length).toBeGreaterThan(0);
    const leaderEph = departed.state.list.leader()!.ephemeralKey;
    const shared = departed.state.secrets.get(leaderEph);
    for (const msg of later) {
      for (const recipientId of [msg.to, 'room-b']) {
        const context = {
          meetingId: m.meetingId,
          leaderId: 'leader',
          recipientId,
          epoch: msg.epoch,
          leaderEphemeralKey: leaderEph,
          recipientEphemeralKey: departed.state.ephemeral.publicKey,
        };
        expect(() =>
          openMeetingKey(shared, context, {
            epoch: msg.epoch,
            nonce: fromBase64Url(msg.nonce),
            ciphertext: fromBase64Url(msg.ciphertext),
          }),
        ).toThrow();
      }
      const readdressed = departed.handle(validateE2eeMessage({ ...msg, to: 'room-b' }));
      expect(readdressed.events.map((e) => e.type)).toEqual(['rejected']);
    }
  });

  it('a participant refuses a non-increasing key sequence', () => {
    const { m } = meeting('sequence', { autoAdmit: true });
    m.join('room-a');
    const keyMessages = () =>
      m.wire.map((t) => JSON.parse(t) as E2eeMessage).filter((x): x is KeyMessage => x.type === 'e2ee.key');
    m.rekey();
    const participant = m.participants.get('room-a')!;
    const epoch = participant.epoch;
    expect(epoch).toBe(m.leader.epoch);
    const replayed = participant.handle(keyMessages().at(-1)!);
    expect(replayed.events).toEqual([expect.objectContaining({ type: 'rejected', code: 'stale-epoch' })]);
    expect(participant.epoch).toBe(epoch);
  });

  it('rejects tampered wrapped keys and heartbeats without changing state', () => {
    const clock = new FakeClock();
    const random = seededRandom('tamper');
    const { session: leader, output } = LeaderSession.create({
      meetingId: 'm-t',
      participantId: 'leader',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
      autoAdmit: true,
    });
    void output;
    const participant = new ParticipantSession({
      meetingId: 'm-t',
      participantId: 'room-a',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
    });
    const admitted = leader.handle(participant.start().outgoing[0]!);
    const byType = (msgs: E2eeMessage[], type: E2eeMessage['type']) => msgs.filter((x) => x.type === type);
    for (const msg of byType(admitted.outgoing, 'e2ee.list')) participant.handle(msg);
    const keyMsg = byType(admitted.outgoing, 'e2ee.key')[0]!;
    // Tamper each leaf of the key message; none may be accepted.
    for (const path of leafPaths(keyMsg as never, ['v', 'type'])) {
      const tampered = mutateAt(keyMsg, path, 7);
      const result = participant.handle(tampered);
      expect(result.events.map((e) => e.type)).toEqual(['rejected']);
      expect(participant.state.keys.highestEpoch).toBe(0);
    }
    const acked = participant.handle(keyMsg);
    expect(acked.outgoing.map((x) => x.type)).toEqual(['e2ee.ack']);
    const certified = leader.handle(acked.outgoing[0]!);
    const heartbeat = byType(certified.outgoing, 'e2ee.heartbeat')[0]!;
    for (const path of leafPaths(heartbeat as never, ['v', 'type', 'to'])) {
      const tampered = mutateAt(heartbeat, path, 5);
      participant.handle(tampered);
      expect(participant.epoch).toBe(0);
    }
    participant.handle(heartbeat);
    expect(participant.epoch).toBe(leader.epoch);
    expect(participant.securityCode).toBe(leader.securityCode);
  });

  it('refuses a list from another meeting, a forged leader and out-of-order entries', () => {
    const a = meeting('one', { autoAdmit: true });
    const b = meeting('two', { autoAdmit: true });
    a.m.join('room-a');
    b.m.join('room-a');
    const listOf = (m: SimulatedMeeting) =>
      m.wire
        .map((t) => JSON.parse(t) as E2eeMessage)
        .find((x) => x.type === 'e2ee.list' && x.to === 'room-a')!;
    const fromB = listOf(b.m);
    const participantA = a.m.participants.get('room-a')!;
    const lengthBefore = participantA.state.list.length;
    // Replayed from another meeting, whether or not the relay relabels it.
    expect(participantA.handle(fromB).events[0]).toMatchObject({ type: 'rejected', code: 'wrong-meeting' });
    expect(participantA.handle({ ...fromB, meetingId: a.m.meetingId }).events[0]).toMatchObject({
      type: 'rejected',
    });
    expect(participantA.state.list.length).toBe(lengthBefore);

    // A fresh joiner given the chain with two entries swapped refuses it.
    const joiner = new ParticipantSession({
      meetingId: a.m.meetingId,
      participantId: 'room-z',
      identity: IdentityKeyPair.generate(seededRandom('z')),
    });
    const full = listOf(a.m);
    if (full.type !== 'e2ee.list') throw new Error('not a list');
    const swapped = [...full.entries];
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    const result = joiner.handle({ ...full, entries: swapped });
    expect(result.events.at(-1)).toMatchObject({ type: 'rejected', code: 'chain-broken' });
    expect(joiner.state.list.length).toBe(1); // only the create entry before the swap verified
    expect(joiner.isMember).toBe(false);
  });

  it('a list message with a bad entry keeps (and reports) the valid entries before it', () => {
    const { m } = meeting('partial', { autoAdmit: true });
    m.join('room-a');
    const p = m.participants.get('room-a')!;
    const before = p.state.list.length;
    const lock = m.leader.lock().outgoing.find((x) => x.type === 'e2ee.list')!;
    const unlock = m.leader.unlock().outgoing.find((x) => x.type === 'e2ee.list')!;
    if (lock.type !== 'e2ee.list' || unlock.type !== 'e2ee.list') throw new Error('no list');
    const badUnlock = { ...unlock.entries[0]!, signature: lock.entries[0]!.signature };
    const out = p.handle({ ...lock, entries: [lock.entries[0]!, badUnlock] });
    expect(p.state.list.length).toBe(before + 1);
    expect(out.events.map((e) => e.type)).toEqual(['roster', 'rejected']);
    expect(out.events[0]).toMatchObject({ locked: true });
    expect(p.handle(unlock).events.map((e) => e.type)).toEqual(['roster']);
  });

  it('a member that missed list entries asks for them and catches up', () => {
    const clock = new FakeClock();
    const random = seededRandom('resync');
    const { session: leader } = LeaderSession.create({
      meetingId: 'm-s',
      participantId: 'leader',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
      autoAdmit: true,
    });
    const p = new ParticipantSession({
      meetingId: 'm-s',
      participantId: 'room-a',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
    });
    const exchange = (messages: E2eeMessage[]) => {
      for (const msg of messages) {
        for (const reply of p.handle(msg).outgoing) exchange(leader.handle(reply).outgoing);
      }
    };
    exchange(leader.handle(p.start().outgoing[0]!).outgoing);
    expect(p.epoch).toBe(leader.epoch);

    // The lock entry and its heartbeat are lost; the unlock entry arrives: a gap.
    leader.lock();
    const unlocked = leader.unlock().outgoing;
    const unlockList = unlocked.find((x) => x.type === 'e2ee.list')!;
    const gap = p.handle(unlockList);
    expect(gap.events.at(-1)).toMatchObject({ type: 'rejected', code: 'chain-broken' });
    expect(gap.outgoing).toEqual([
      expect.objectContaining({ type: 'e2ee.resync', to: 'leader', fromIndex: 3 }),
    ]);
    exchange(leader.handle(gap.outgoing[0]!).outgoing);
    expect(p.state.list.head).toEqual(leader.state.list.head);
    expect(p.state.list.locked).toBe(false);

    // A heartbeat naming entries that never come: after a while the participant asks on tick().
    const rekeyed = leader.lock().outgoing.filter((x) => x.type === 'e2ee.heartbeat');
    expect(p.handle(rekeyed[0]!).events).toEqual([]);
    expect(p.tick().outgoing).toEqual([]);
    clock.advance(2_000);
    const asked = p.tick().outgoing;
    expect(asked).toEqual([expect.objectContaining({ type: 'e2ee.resync', fromIndex: 5 })]);
    exchange(leader.handle(asked[0]!).outgoing);
    expect(p.state.list.locked).toBe(true);
    expect(p.state.list.head).toEqual(leader.state.list.head);

    // Only members may ask.
    const stranger = { ...asked[0]!, from: 'room-z' } as E2eeMessage;
    expect(leader.handle(stranger).events).toEqual([expect.objectContaining({ code: 'not-member' })]);
  });

  it('a locked meeting takes nobody new until unlocked', () => {
    const { m } = meeting('lock');
    m.join('room-a');
    m.admit(['room-a']);
    m.lock();
    m.join('room-b');
    expect(eventsOf(m, 'leader', 'rejected')).toEqual([expect.objectContaining({ code: 'locked' })]);
    expect(() => m.leader.admit(['room-b'])).toThrow();
    expect(m.participants.get('room-a')!.state.list.locked).toBe(true);
    m.unlock();
    m.join('room-b'); // posts its binding again
    m.admit(['room-b']);
    expect(m.leader.members).toContain('room-b');
    expectMediaFlows(m);
  });

  it('splits a long participant list into several messages that a newcomer verifies in order', () => {
    const { m } = meeting('long', { autoAdmit: true });
    m.join('room-a');
    for (let i = 0; i < 70; i++) {
      m.lock();
      m.unlock();
    }
    const before = m.wire.length;
    m.join('room-b');
    const toNewcomer = m.wire
      .slice(before)
      .map((t) => JSON.parse(t) as E2eeMessage)
      .filter((x) => x.type === 'e2ee.list' && x.to === 'room-b');
    expect(toNewcomer.length).toBe(5); // 144 entries, 32 per message
    expect(Math.max(...m.wire.map((t) => Buffer.byteLength(t)))).toBeLessThan(128 * 1024);
    expect(m.participants.get('room-b')!.isMember).toBe(true);
    expect(m.participants.get('room-b')!.securityCode).toBe(m.leader.securityCode);
    expectMediaFlows(m);
  });

  it('switches only on a certified epoch, keeps the previous keys for the overlap, then drops them', () => {
    const { m, clock } = meeting('overlap', { autoAdmit: true });
    m.join('room-a');
    m.join('room-b');
    const epoch = m.leader.epoch;
    m.rekey();
    const keys = m.lastKeys('room-a')!;
    expect(keys.epoch).toBe(epoch + 1);
    const epochs = new Set(keys.receiveKeys.map((k) => k.epoch));
    expect(epochs).toEqual(new Set([epoch, epoch + 1]));
    clock.advance(6_000);
    m.tick();
    expect(new Set(m.lastKeys('room-a')!.receiveKeys.map((k) => k.epoch))).toEqual(new Set([epoch + 1]));
  });

  it('rekeys periodically and heartbeats in between, driven by tick()', () => {
    const { m, clock } = meeting('periodic', { autoAdmit: true });
    m.join('room-a');
    const epoch = m.leader.epoch;
    const heartbeats = () => m.wire.filter((t) => t.includes('"e2ee.heartbeat"')).length;
    const before = heartbeats();
    clock.advance(10_000);
    m.tick();
    expect(heartbeats()).toBe(before + 1);
    expect(m.leader.epoch).toBe(epoch);
    clock.advance(300_000);
    m.tick();
    expect(m.leader.epoch).toBe(epoch + 1);
    expect(m.participants.get('room-a')!.epoch).toBe(epoch + 1);
  });

  it('reports a silent leader once, and again after heartbeats resumed and stopped', () => {
    const { m, clock } = meeting('silent', { autoAdmit: true });
    const p = m.join('room-a');
    const silent = () => p.tick().events.filter((e) => e.type === 'leader-silent');
    clock.advance(29_999); // 3 heartbeat intervals
    expect(silent()).toEqual([]);
    clock.advance(1);
    expect(silent()).toEqual([expect.objectContaining({ leaderId: 'leader' })]);
    expect(silent()).toEqual([]);
    m.tick(); // the leader's periodic heartbeat reaches room-a
    clock.advance(20_000);
    expect(silent()).toEqual([]);
    clock.advance(20_000);
    expect(silent()).toHaveLength(1);
  });

  it('keys events are owned by the caller: retiring an epoch does not wipe them', () => {
    const { m, clock } = meeting('owned', { autoAdmit: true });
    m.join('room-a');
    const old = m.lastKeys('room-a')!;
    const snapshot = Uint8Array.from(old.sendKey);
    m.rekey();
    m.rekey();
    clock.advance(10_000);
    m.tick();
    expect(old.sendKey).toEqual(snapshot);
    expect(old.receiveKeys.every((k) => k.key.some((b) => b !== 0))).toBe(true);
  });

  it('copes with reordering: a heartbeat ahead of its list entries, a certification ahead of its key', () => {
    const clock = new FakeClock();
    const random = seededRandom('reorder');
    const { session: leader } = LeaderSession.create({
      meetingId: 'm-r',
      participantId: 'leader',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
      autoAdmit: true,
    });
    const p = new ParticipantSession({
      meetingId: 'm-r',
      participantId: 'room-a',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
    });
    const deliver = (messages: E2eeMessage[]) => {
      const acks: E2eeMessage[] = [];
      for (const msg of messages) acks.push(...p.handle(msg).outgoing);
      return acks;
    };
    for (const ack of deliver(leader.handle(p.start().outgoing[0]!).outgoing))
      deliver(leader.handle(ack).outgoing);
    expect(p.epoch).toBe(leader.epoch);

    // lock → [list entry, heartbeat for the new head]; the heartbeat arrives first.
    const locked = leader.lock().outgoing;
    const [list, heartbeat] = [
      locked.find((x) => x.type === 'e2ee.list')!,
      locked.find((x) => x.type === 'e2ee.heartbeat')!,
    ];
    expect(p.handle(heartbeat).events).toEqual([]); // kept: entries still on their way
    expect(p.handle(list).events.some((e) => e.type === 'rejected')).toBe(false);
    expect(p.state.list.locked).toBe(true);

    // A rekey certified by timeout; the heartbeat overtakes the wrapped key.
    const epoch = leader.epoch;
    const wrapped = leader.rekey().outgoing.find((x) => x.type === 'e2ee.key')!;
    clock.advance(2_500);
    const certifying = leader.tick().outgoing.find((x) => x.type === 'e2ee.heartbeat')!;
    expect(leader.epoch).toBe(epoch + 1);
    expect(p.handle(certifying).events).toEqual([]);
    expect(p.epoch).toBe(epoch);
    const got = p.handle(wrapped);
    expect(got.events).toContainEqual({ type: 'epoch-certified', epoch: epoch + 1 });
    expect(p.epoch).toBe(epoch + 1);
  });

  it('certifies after a timeout when a member does not acknowledge', () => {
    const clock = new FakeClock();
    const random = seededRandom('timeout');
    const { session: leader } = LeaderSession.create({
      meetingId: 'm-x',
      participantId: 'leader',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
      autoAdmit: true,
    });
    const p = new ParticipantSession({
      meetingId: 'm-x',
      participantId: 'room-a',
      identity: IdentityKeyPair.generate(random),
      random,
      clock: clock.read,
    });
    const out = leader.handle(p.start().outgoing[0]!);
    expect(out.outgoing.some((x) => x.type === 'e2ee.heartbeat')).toBe(false); // waiting for the ack
    const epoch = leader.epoch;
    clock.advance(2_500);
    const ticked = leader.tick();
    expect(leader.epoch).toBe(epoch + 1);
    expect(ticked.outgoing.map((x) => x.type)).toContain('e2ee.heartbeat');
  });

  it('leader hand-over: new code for everyone, new leader rekeys, old leader stays a member', () => {
    const { m } = meeting('handover', { autoAdmit: true });
    for (const id of ['room-a', 'room-b']) m.join(id);
    const oldCode = m.leader.securityCode;
    const epoch = m.leader.epoch;
    m.handOver('room-a');
    expect(m.leader.participantId).toBe('room-a');
    const codes = new Set(m.securityCodes().values());
    expect(codes.size).toBe(1);
    expect([...codes][0]).not.toBe(oldCode);
    expect(m.leader.epoch).toBe(epoch + 1);
    expect(m.participants.get('leader')!.epoch).toBe(epoch + 1);
    expect(eventsOf(m, 'room-a', 'leader-changed')).toEqual([
      expect.objectContaining({ leaderId: 'room-a', isSelf: true }),
    ]);
    expectMediaFlows(m);
    m.leave('leader');
    expectMediaFlows(m);
    for (const [id] of m.events) expect(eventsOf(m, id, 'rejected')).toEqual([]);
  });

  it('a successor that missed the latest wrapped key still takes over with an unused epoch', () => {
    const { m, clock } = meeting('floor', { autoAdmit: true });
    for (const id of ['room-a', 'room-b']) m.join(id);
    m.loseNextMessageTo('room-a'); // the wrapped key of the next epoch
    m.rekey();
    const drawn = m.leader.state.keys.highestEpoch;
    expect(m.participants.get('room-a')!.state.keys.highestEpoch).toBe(drawn - 1);
    m.handOver('room-a');
    expect(m.leader.participantId).toBe('room-a');
    expect(m.leader.state.keys.highestEpoch).toBe(drawn + 1); // not `drawn`: that one is room-b's key
    for (let i = 0; i < 4; i++) {
      clock.advance(2_100);
      m.tick();
    }
    expectMediaFlows(m);
    for (const [id] of m.events) {
      expect(
        eventsOf(m, id, 'rejected').filter((e) => e.type === 'rejected' && e.code !== 'stale-epoch'),
      ).toEqual([]);
    }
  });

  it('an untrusted leader identity is refused by the participant', () => {
    const { m } = meeting('trust');
    const p = new ParticipantSession({
      meetingId: m.meetingId,
      participantId: 'room-a',
      identity: IdentityKeyPair.generate(seededRandom('t')),
      trustIdentity: () => false,
    });
    const out = m.leader.handle(p.start().outgoing[0]!);
    expect(out.events).toEqual([expect.objectContaining({ type: 'admission-request' })]);
    const admitted = m.leader.admit(['room-a']);
    const list = admitted.outgoing.find((x) => x.type === 'e2ee.list' && x.to === 'room-a')!;
    const events = p.handle(list).events;
    // The creator's add at index 1 is the first entry the policy sees: it is refused, nothing applies.
    expect(events.filter((e) => e.type === 'identity-refused')).toEqual([
      { type: 'identity-refused', participantId: 'leader', reason: expect.any(String) },
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'rejected', code: 'untrusted-identity' });
    expect(p.state.list.length).toBe(1);
    expect(p.isMember).toBe(false);
  });
});
