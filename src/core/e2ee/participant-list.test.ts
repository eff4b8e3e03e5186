import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leafPaths, mutateAt, seededRandom } from '../../../test/e2ee-helpers.js';
import { createBinding } from './binding.js';
import { E2eeError } from './errors.js';
import { EphemeralKeyPair, IdentityKeyPair } from './keys.js';
import { heartbeatFromWire, heartbeatToWire, listEntryFromWire, listEntryToWire } from './messages.js';
import {
  checkHeartbeat,
  type ListEntry,
  type ListEntryBody,
  ParticipantList,
  signHeartbeat,
} from './participant-list.js';

const random = seededRandom('participant-list');
const leaderIdentity = IdentityKeyPair.generate(random);
const people = ['room-a', 'room-b', 'room-c'].map((id) => ({
  id,
  identity: IdentityKeyPair.generate(random),
  ephemeral: EphemeralKeyPair.generate(random),
}));
const leaderEphemeral = EphemeralKeyPair.generate(random);
const T0 = 1_800_000_000_000;

/** A leader-side chain: create, add leader, add a, add b, lock, unlock, leave a, add c. */
function buildChain(meetingId = 'meeting-1'): { list: ParticipantList; entries: ListEntry[] } {
  const list = new ParticipantList(meetingId);
  const bodies: ListEntryBody[] = [
    {
      kind: 'create',
      leaderId: 'leader',
      leaderIdentityKey: leaderIdentity.publicKey,
      creationNonce: random(32),
    },
    {
      kind: 'add',
      binding: createBinding(meetingId, 'leader', leaderIdentity, leaderEphemeral),
      senderIndex: 0,
    },
    ...people.slice(0, 2).map(
      (p, i): ListEntryBody => ({
        kind: 'add',
        binding: createBinding(meetingId, p.id, p.identity, p.ephemeral),
        senderIndex: i + 1,
      }),
    ),
    { kind: 'lock' },
    { kind: 'unlock' },
    { kind: 'leave', participantId: 'room-a' },
    {
      kind: 'add',
      binding: createBinding(meetingId, 'room-c', people[2]!.identity, people[2]!.ephemeral),
      senderIndex: 3,
    },
  ];
  const entries = bodies.map((body, i) => list.append(body, 'leader', leaderIdentity, T0 + i));
  return { list, entries };
}

const expectCode = (fn: () => unknown, code: string) => {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(E2eeError);
  expect((thrown as E2eeError).code).toBe(code);
};

function replay(entries: ListEntry[], meetingId = 'meeting-1'): ParticipantList {
  const list = new ParticipantList(meetingId);
  for (const entry of entries) list.apply(entry);
  return list;
}

describe('participant list', () => {
  const { list, entries } = buildChain();

  it('replays into the same state on a verifier', () => {
    const copy = replay(entries);
    expect(copy.head).toEqual(list.head);
    expect(copy.members().map((m) => m.participantId)).toEqual(['leader', 'room-b', 'room-c']);
    expect(copy.leaderId).toBe('leader');
    expect(copy.locked).toBe(false);
    expect(copy.nextSenderIndex).toBe(4);
  });

  it('survives the wire form unchanged', () => {
    const back = entries.map((e) =>
      listEntryFromWire(JSON.parse(JSON.stringify(listEntryToWire(e))), 'meeting-1'),
    );
    expect(replay(back).head).toEqual(list.head);
  });

  it('rejects any tampered field of any entry (wire form)', () => {
    const wire = entries.map(listEntryToWire);
    const targets = wire.flatMap((w, i) => leafPaths(w).map((path) => ({ i, path })));
    fc.assert(
      fc.property(fc.constantFrom(...targets), fc.nat(1000), ({ i, path }, delta) => {
        const tampered = mutateAt(wire[i]!, path, delta);
        expect(() => {
          const all = wire.map((w, j) => listEntryFromWire(j === i ? tampered : w, 'meeting-1'));
          replay(all);
        }).toThrow(E2eeError);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects reordered, dropped or duplicated entries', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: entries.length - 2 }), (i) => {
        const swapped = [...entries];
        [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
        expect(() => replay(swapped)).toThrow(E2eeError);
        expect(() => replay(entries.filter((_, j) => j !== i))).toThrow(E2eeError);
        expect(() => replay([...entries.slice(0, i + 1), entries[i]!])).toThrow(E2eeError);
      }),
    );
  });

  it('rejects a chain replayed into another meeting', () => {
    expectCode(() => replay(entries, 'meeting-2'), 'wrong-meeting');
    const relabelled = entries.map((e) => ({ ...e, meetingId: 'meeting-2' }));
    expectCode(() => replay(relabelled, 'meeting-2'), 'bad-signature');
  });

  it('rejects an entry signed by someone other than the leader', () => {
    const mallory = IdentityKeyPair.generate(random);
    const forgedList = replay(entries);
    const unsigned = forgedList.length;
    const forger = new ParticipantList('meeting-1');
    for (const e of entries) forger.apply(e);
    // Mallory signs a valid-looking leave with her own key under the leader's name.
    expectCode(
      () => forger.append({ kind: 'leave', participantId: 'room-b' }, 'leader', mallory, T0 + 99),
      'bad-signature',
    );
    expectCode(
      () => forger.append({ kind: 'lock' }, 'room-b', people[1]!.identity, T0 + 99),
      'bad-signature',
    );
    expect(forger.length).toBe(unsigned);
  });

  it('enforces membership rules', () => {
    const fresh = replay(entries);
    const add = (id: string, senderIndex: number, p = people[0]!) =>
      fresh.append(
        { kind: 'add', binding: createBinding('meeting-1', id, p.identity, p.ephemeral), senderIndex },
        'leader',
        leaderIdentity,
        T0 + 50,
      );
    expectCode(() => add('room-b', 9), 'invalid-state'); // already a member
    expectCode(() => add('room-a', 2), 'chain-broken'); // sender index reused
    expectCode(
      () => fresh.append({ kind: 'leave', participantId: 'room-a' }, 'leader', leaderIdentity, T0 + 50),
      'not-member',
    );
    expectCode(
      () => fresh.append({ kind: 'leave', participantId: 'leader' }, 'leader', leaderIdentity, T0 + 50),
      'invalid-state',
    );
    expectCode(() => fresh.append({ kind: 'unlock' }, 'leader', leaderIdentity, T0 + 50), 'invalid-state');
    fresh.append({ kind: 'lock' }, 'leader', leaderIdentity, T0 + 50);
    expectCode(() => add('room-a', 4), 'locked');
  });

  it('a binding made for another meeting cannot be added', () => {
    const fresh = replay(entries);
    const p = people[0]!;
    const foreign = createBinding('meeting-2', 'room-a', p.identity, p.ephemeral);
    expectCode(
      () =>
        fresh.append(
          { kind: 'add', binding: { ...foreign, meetingId: 'meeting-1' }, senderIndex: 7 },
          'leader',
          leaderIdentity,
          T0 + 60,
        ),
      'bad-signature',
    );
  });

  it('hands leadership over: later entries must be signed by the new leader', () => {
    const fresh = replay(entries);
    fresh.append({ kind: 'leader', newLeaderId: 'room-b', minEpoch: 3 }, 'leader', leaderIdentity, T0 + 70);
    expect(fresh.leaderId).toBe('room-b');
    expect(fresh.epochFloor).toBe(3);
    expect(fresh.leaderIdentityKey).toEqual(people[1]!.identity.publicKey);
    expectCode(() => fresh.append({ kind: 'lock' }, 'leader', leaderIdentity, T0 + 71), 'bad-signature');
    fresh.append({ kind: 'lock' }, 'room-b', people[1]!.identity, T0 + 71);
    expect(fresh.locked).toBe(true);
  });
});

describe('heartbeat', () => {
  const { list } = buildChain();
  const heartbeat = signHeartbeat(
    {
      meetingId: 'meeting-1',
      leaderId: 'leader',
      epoch: 4,
      listLength: list.length,
      listHead: list.head,
      time: T0 + 100,
    },
    leaderIdentity,
  );

  it('certifies the current chain', () => {
    expect(checkHeartbeat(heartbeat, list)).toBe('current');
    expect(
      checkHeartbeat(
        heartbeatFromWire(JSON.parse(JSON.stringify(heartbeatToWire(heartbeat, 'leader')))),
        list,
      ),
    ).toBe('current');
  });

  it('any tampered field is rejected or at least never certifies this chain', () => {
    const wire = heartbeatToWire(heartbeat, 'leader');
    fc.assert(
      fc.property(fc.constantFrom(...leafPaths(wire, ['v', 'type'])), fc.nat(1000), (path, delta) => {
        const tampered = mutateAt(wire, path, delta);
        let verdict: string;
        try {
          verdict = checkHeartbeat(heartbeatFromWire(tampered), list);
        } catch (error) {
          expect(error).toBeInstanceOf(E2eeError);
          verdict = 'rejected';
        }
        expect(verdict).not.toBe('current');
      }),
      { numRuns: 200 },
    );
  });

  it('rejects a heartbeat from another signer, for another chain or another meeting', () => {
    const mallory = IdentityKeyPair.generate(random);
    const base = { ...heartbeat } as Omit<typeof heartbeat, 'signature'> & { signature?: Uint8Array };
    delete base.signature;
    expectCode(() => checkHeartbeat(signHeartbeat(base, mallory), list), 'bad-signature');
    expectCode(
      () => checkHeartbeat(signHeartbeat({ ...base, leaderId: 'room-b' }, people[1]!.identity), list),
      'bad-signature',
    );
    expectCode(
      () => checkHeartbeat(signHeartbeat({ ...base, listHead: random(32) }, leaderIdentity), list),
      'chain-broken',
    );
    const other = buildChain('meeting-2').list;
    expectCode(() => checkHeartbeat(heartbeat, other), 'wrong-meeting');
    expect(
      checkHeartbeat(signHeartbeat({ ...base, listLength: list.length + 1 }, leaderIdentity), list),
    ).toBe('ahead');
    expect(
      checkHeartbeat(signHeartbeat({ ...base, listLength: list.length - 1 }, leaderIdentity), list),
    ).toBe('stale');
  });
});
