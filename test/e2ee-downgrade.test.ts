// A malicious relay against protocol v2 (docs/protocol.md §12.5): it cannot make anyone run v1 or
// rest a key on X25519 alone. Stripping or rewriting v2 material from a binding, a list entry or a key
// message is refused (signature or 'downgrade'); a swapped, flipped or replayed ML-KEM ciphertext
// opens no key; and a `leader` entry naming a person is refused by every member.
import { describe, expect, it } from 'vitest';
import {
  type BindingMessage,
  type Delivery,
  type E2eeMessage,
  type KeyMessage,
  type ListMessage,
  type SessionEvent,
  SimulatedMeeting,
  type TrustIdentity,
} from '../src/core/e2ee/index.js';
import { listEntryToWire } from '../src/core/e2ee/messages.js';
import { FakeClock, seededRandom } from './e2ee-helpers.js';

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const codes = (out: { events: SessionEvent[] }) =>
  out.events.flatMap((e) => (e.type === 'rejected' ? [e.code] : []));

/** Captures (and withholds) the deliveries `match` picks, as a relay that rewrites them would. */
function capture(m: SimulatedMeeting, match: (d: Delivery) => boolean): Delivery[] {
  const held: Delivery[] = [];
  m.dropWhere((d) => {
    if (!match(d)) return false;
    held.push(d);
    return true;
  });
  return held;
}

function meeting(name: string, trustIdentity?: TrustIdentity) {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: name,
    leaderId: 'lead',
    random: seededRandom(name),
    clock: clock.read,
    ...(trustIdentity ? { trustIdentity } : {}),
  });
  return { m, clock };
}

describe('a relay stripping v2 from a binding', () => {
  it('v2 → v1 binding: refused as a downgrade, no admission request, no downgrade event (not signed so)', () => {
    for (const minProtocolVersion of [2, 1] as const) {
      const clock = new FakeClock();
      const m = new SimulatedMeeting({
        meetingId: `strip-binding-${minProtocolVersion}`,
        leaderId: 'lead',
        random: seededRandom('strip-binding'),
        clock: clock.read,
        minProtocolVersion,
      });
      const held = capture(m, (d) => d.message.type === 'e2ee.binding');
      m.join('a');
      m.cancelLosses();
      const message = clone(held[0]!.message as BindingMessage);
      expect('kemKey' in message.binding).toBe(true);
      const {
        kemKey: _k,
        versions: _v,
        ...v1
      } = message.binding as typeof message.binding & {
        kemKey: string;
        versions: number[];
      };
      const out = m.inject('lead', { ...message, v: 1, binding: v1 });
      expect(codes(out)).toEqual(['downgrade']);
      expect(out.events.some((e) => e.type === 'downgrade' || e.type === 'admission-request')).toBe(false);
      expect(m.leader.waiting).toEqual([]);
      // The genuine v2 binding still gets in.
      m.inject('lead', message);
      expect(m.leader.waiting).toEqual(['a']);
    }
  });

  it('a v1 meeting (configured) refuses the stripped binding on its signature', () => {
    const clock = new FakeClock();
    const m = new SimulatedMeeting({
      meetingId: 'strip-binding-v1-meeting',
      leaderId: 'lead',
      random: seededRandom('strip-v1'),
      clock: clock.read,
      protocolVersion: 1,
      minProtocolVersion: 1,
    });
    const held = capture(m, (d) => d.message.type === 'e2ee.binding');
    m.join('a', { protocolVersion: 2, minProtocolVersion: 1 }); // accepts v1, bound for v2
    m.cancelLosses();
    const message = clone(held[0]!.message as BindingMessage) as BindingMessage & {
      binding: { kemKey?: string; versions?: number[] };
    };
    delete message.binding.kemKey;
    delete message.binding.versions;
    expect(codes(m.inject('lead', { ...message, v: 1 }))).toEqual(['bad-signature']);
    expect(m.leader.waiting).toEqual([]);
  });

  it('rewriting the signed version set fails the signature', () => {
    const { m } = meeting('versions');
    const held = capture(m, (d) => d.message.type === 'e2ee.binding');
    m.join('a');
    m.cancelLosses();
    const message = clone(held[0]!.message as BindingMessage) as BindingMessage & {
      binding: { versions: number[] };
    };
    message.binding.versions = [1, 2];
    expect(codes(m.inject('lead', message))).toEqual(['bad-signature']);
    expect(m.leader.waiting).toEqual([]);
  });
});

describe('a relay stripping v2 from the participant list', () => {
  it('create without its version (a v1 meeting): bad signature, nothing applied', () => {
    const { m } = meeting('strip-create');
    const held = capture(m, (d) => d.to === 'a' && d.message.type === 'e2ee.list');
    const a = m.join('a');
    m.admit(['a']);
    m.cancelLosses();
    const chain = clone(held.find((d) => d.message.to === 'a')!.message as ListMessage);
    const create = chain.entries[0]!.body as { version?: number };
    expect(create.version).toBe(2);
    delete create.version;
    expect(codes(m.inject('a', { ...chain, v: 1 }))).toEqual(['bad-signature']);
    expect(a.state.list.length).toBe(0);
    expect(a.isMember).toBe(false);
  });

  it('an add entry whose binding lost its ML-KEM key: refused as a downgrade, the chain stays put', () => {
    const { m } = meeting('strip-add');
    m.join('a');
    m.admit(['a']);
    const a = m.participants.get('a')!;
    const held = capture(m, (d) => d.to === 'a' && d.message.type === 'e2ee.list');
    m.join('b');
    m.admit(['b']);
    m.cancelLosses();
    const list = clone(held[0]!.message as ListMessage);
    const binding = (list.entries[0]!.body as { binding: { kemKey?: string; versions?: number[] } }).binding;
    delete binding.kemKey;
    delete binding.versions;
    const length = a.state.list.length;
    expect(codes(m.inject('a', list))).toEqual(['downgrade']);
    expect(a.state.list.length).toBe(length);
    expect(a.state.list.member('b')).toBeUndefined();
  });
});

describe('a relay tampering with the ML-KEM ciphertext of e2ee.key', () => {
  function keyed(name: string) {
    const { m, clock } = meeting(name);
    m.join('a');
    m.join('b');
    m.admit(['a', 'b']);
    const a = m.participants.get('a')!;
    const held = capture(m, (d) => d.message.type === 'e2ee.key');
    m.rekey();
    m.cancelLosses();
    const toA = held.find((d) => d.to === 'a')!.message as KeyMessage;
    const toB = held.find((d) => d.to === 'b')!.message as KeyMessage;
    return { m, clock, a, toA: clone(toA), toB: clone(toB) };
  }

  /** The message opens no key: refused with `code`, no ack, nothing new in the key ring. */
  function refused(m: SimulatedMeeting, message: E2eeMessage, code: string) {
    const a = m.participants.get('a')!;
    const highest = a.state.keys.highestEpoch;
    const out = m.inject('a', message);
    expect(codes(out)).toEqual([code]);
    expect(out.outgoing).toEqual([]);
    expect(out.events.some((e) => e.type === 'keys')).toBe(false);
    expect(a.state.keys.highestEpoch).toBe(highest);
  }

  it('stripped: refused as a downgrade (never opened with X25519 alone)', () => {
    const { m, toA } = keyed('strip-ct');
    const { kemCiphertext: _ct, ...stripped } = toA;
    refused(m, stripped, 'downgrade');
    // The genuine message still works.
    expect(codes(m.inject('a', toA))).toEqual([]);
    expect(m.participants.get('a')!.state.keys.highestEpoch).toBe(toA.epoch);
  });

  it('swapped with another member’s, or one bit flipped: unwrap fails', () => {
    const { m, toA, toB } = keyed('swap-ct');
    expect(toA.kemCiphertext).not.toBe(toB.kemCiphertext);
    refused(m, { ...toA, kemCiphertext: toB.kemCiphertext }, 'unwrap-failed');
    const bytes = Buffer.from(toA.kemCiphertext!, 'base64url');
    for (const at of [0, 500, bytes.length - 1]) {
      const flipped = Uint8Array.from(bytes);
      flipped[at]! ^= 0x01;
      refused(m, { ...toA, kemCiphertext: Buffer.from(flipped).toString('base64url') }, 'unwrap-failed');
    }
    // A garbage ciphertext did not poison the cache: the genuine one opens.
    expect(codes(m.inject('a', toA))).toEqual([]);
  });

  it('an old key message replayed for a new epoch, or an old leader’s ciphertext after a hand-over: no key', () => {
    const { m, toA } = keyed('replay-ct');
    m.inject('a', toA);
    m.rekey(); // a newer epoch was delivered normally
    const a = m.participants.get('a')!;
    const next = a.state.keys.highestEpoch + 1;
    // The old wrapped key and ciphertext, relabelled as the next epoch.
    refused(m, { ...toA, epoch: next }, 'unwrap-failed');
    // After a hand-over to b, the relay passes the old leader's material off as b's.
    m.handOver('b');
    expect(a.leaderId).toBe('b');
    const epoch = a.state.keys.highestEpoch + 1;
    refused(m, { ...toA, from: 'b', epoch }, 'unwrap-failed');
    const fromB = m.delivered.filter((d) => d.to === 'a' && d.message.type === 'e2ee.key').at(-1)!
      .message as KeyMessage;
    expect(fromB.from).toBe('b');
    // b's fresh wrap with the old leader's ciphertext: the hybrid secret differs, nothing opens.
    refused(m, { ...fromB, epoch, kemCiphertext: toA.kemCiphertext }, 'unwrap-failed');
  });
});

describe('a leader entry naming a person', () => {
  it('every member refuses it as an invalid entry; the leader stays', () => {
    const people = new Set(['alice']);
    const trust: TrustIdentity = (id) => ({ trusted: true, kind: people.has(id) ? 'person' : 'room' });
    const { m, clock } = meeting('person-leader', trust);
    m.join('alice');
    m.join('room-b');
    m.admit(['alice', 'room-b']);
    // The leader's own session refuses; a compromised leader signs the entry anyway.
    expect(() => m.leader.handOver('alice')).toThrow(expect.objectContaining({ code: 'not-eligible' }));
    const { state } = m.leader;
    const entry = state.list.append(
      { kind: 'leader', newLeaderId: 'alice', minEpoch: state.keys.highestEpoch },
      'lead',
      state.signer,
      clock.now,
    );
    for (const id of ['room-b', 'alice']) {
      const p = m.participants.get(id)!;
      const length = p.state.list.length;
      const out = m.inject(id, {
        v: 2,
        type: 'e2ee.list',
        meetingId: m.meetingId,
        from: 'lead',
        entries: [listEntryToWire(entry)],
      });
      expect(codes(out)).toEqual(['not-eligible']);
      expect(out.events).toContainEqual(
        expect.objectContaining({ type: 'identity-refused', participantId: 'alice' }),
      );
      expect(out.events.some((e) => e.type === 'leader-changed')).toBe(false);
      expect(p.leaderId).toBe('lead');
      expect(p.state.list.length).toBe(length);
    }
  });

  it('a meeting created by a person is refused by a room', () => {
    const trust: TrustIdentity = (id) => ({ trusted: true, kind: id === 'lead' ? 'person' : 'room' });
    const { m } = meeting('person-creator');
    const b = m.join('room-b', { trustIdentity: trust });
    m.admit(['room-b']);
    expect(b.isMember).toBe(false);
    expect(m.events.get('room-b')).toContainEqual(
      expect.objectContaining({ type: 'rejected', code: 'not-eligible' }),
    );
  });
});
