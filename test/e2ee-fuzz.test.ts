// A hostile relay fuzzes a live meeting: thousands of random, mutated, replayed and re-addressed
// messages (and arbitrary JSON) go to the leader and to participants. No handler may throw or hit an
// unexpected error, nothing may change what the members agreed on, and the meeting must carry on.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bindingStatement,
  type E2eeMessage,
  IdentityKeyPair,
  type SessionOutput,
  SimulatedMeeting,
} from '../src/core/e2ee/index.js';
import { bindingToWire } from '../src/core/e2ee/messages.js';
import { FakeClock, leafPaths, mutateAt, seededRandom } from './e2ee-helpers.js';

const IDS = ['leader', 'room-a', 'room-b', 'room-c', 'room-z', 'stranger'];

/** A meeting with some history: joins, lock/unlock, a leave, rekeys; its traffic is the corpus. */
function liveMeeting(seed: string) {
  const clock = new FakeClock();
  const m = new SimulatedMeeting({
    meetingId: `fuzz-${seed}`,
    leaderId: 'leader',
    random: seededRandom(seed),
    clock: clock.read,
    autoAdmit: true,
  });
  for (const id of ['room-a', 'room-b', 'room-c', 'room-d']) m.join(id);
  m.lock();
  m.unlock();
  m.leave('room-d');
  m.rekey();
  clock.advance(10_000);
  m.tick();
  const corpus = m.wire.map((t) => JSON.parse(t) as E2eeMessage);
  // A validly signed binding with a low-order key, the classic daemon killer.
  const evil = IdentityKeyPair.generate(seededRandom(`${seed}-evil`));
  const unsigned = {
    meetingId: m.meetingId,
    participantId: 'room-z',
    identityKey: evil.publicKey,
    ephemeralKey: new Uint8Array(32),
  };
  corpus.push({
    v: 1,
    type: 'e2ee.binding',
    meetingId: m.meetingId,
    from: 'room-z',
    binding: bindingToWire({
      ...unsigned,
      signature: evil.sign(bindingStatement(unsigned)),
      certificate: new Uint8Array(0),
    }),
  });
  return { m, clock, corpus };
}

type Hostile =
  | { kind: 'mutate'; pick: number; leaf: number; delta: number }
  | { kind: 'replay'; pick: number; from: number; to: number }
  | { kind: 'numbers'; pick: number; value: number }
  | { kind: 'json'; value: unknown };

const hostile: fc.Arbitrary<Hostile> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('mutate' as const),
      pick: fc.nat(),
      leaf: fc.nat(),
      delta: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('replay' as const),
      pick: fc.nat(),
      from: fc.nat(),
      to: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('numbers' as const),
      pick: fc.nat(),
      value: fc.oneof(
        fc.integer(),
        fc.constantFrom(0, 1, 2 ** 47 - 1, 2 ** 47, Number.MAX_SAFE_INTEGER, -1, 0.5),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue() }) },
);

function build(h: Hostile, corpus: E2eeMessage[]): unknown {
  if (h.kind === 'json') return h.value;
  const base = corpus[h.pick % corpus.length]!;
  switch (h.kind) {
    case 'mutate': {
      const paths = leafPaths(base as never);
      return mutateAt(base, paths[h.leaf % paths.length]!, h.delta);
    }
    case 'replay': {
      const copy = structuredClone(base) as Record<string, unknown>;
      copy.from = IDS[h.from % IDS.length];
      if (h.to % 3 !== 0) copy.to = IDS[h.to % IDS.length];
      return copy;
    }
    case 'numbers': {
      const copy = structuredClone(base) as Record<string, unknown>;
      for (const key of ['epoch', 'time', 'listLength', 'fromIndex']) if (key in copy) copy[key] = h.value;
      return copy;
    }
  }
}

describe('hostile relay fuzzing a live meeting', () => {
  it('no handler throws, nothing agreed changes, and the meeting carries on', () => {
    let run = 0;
    let delivered = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(hostile, fc.nat()), { minLength: 60, maxLength: 150 }), (attacks) => {
        const { m, clock, corpus } = liveMeeting(`run-${run++}`);
        const members = [...m.leader.members].sort();
        const head = m.leader.state.list.head;
        const epoch = m.leader.epoch;
        const sessions = () => [m.leader, ...m.participants.values()];
        for (const [attack, target] of attacks) {
          const message = build(attack, corpus);
          const session = sessions()[target % sessions().length]!;
          let out: SessionOutput | undefined;
          expect(() => {
            out = session.handle(message as E2eeMessage);
          }).not.toThrow();
          delivered++;
          for (const event of out!.events)
            if (event.type === 'rejected') expect(event.code).not.toBe('internal');
          clock.advance(attack.kind === 'json' ? 0 : 37);
        }
        // Nothing the relay sent (replays, forgeries) changed the chain or the members.
        expect([...m.leader.members].sort()).toEqual(members);
        expect(m.leader.waiting).toEqual([]); // the low-order binding never became a request
        for (const p of m.participants.values()) {
          expect(p.state.list.head).toEqual(head);
          expect(p.epoch).toBeGreaterThanOrEqual(epoch);
        }
        // The meeting carries on: a rekey and a join converge, everyone sends under the new epoch.
        m.rekey();
        m.join('room-e');
        for (let i = 0; i < 6; i++) {
          clock.advance(2_000);
          m.tick();
        }
        for (const id of m.leader.members) {
          const keys = m.lastKeys(id)!;
          expect(keys.epoch, id).toBe(m.leader.epoch);
          expect(keys.sending, id).toBe(true);
        }
        for (const events of m.events.values())
          for (const e of events) if (e.type === 'rejected') expect(e.code).not.toBe('internal');
      }),
      { numRuns: 40 },
    );
    expect(delivered).toBeGreaterThan(2_000);
  }, 120_000);
});
