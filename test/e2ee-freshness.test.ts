// Key freshness against an adversarial relay (model-based): fast-check schedules joins, leaves and
// rekeys while the relay drops, delays, duplicates and reorders messages, and at times withholds
// only the wrapped keys addressed to one member. After every delivery and tick, for every member
// (the leader included) whose last keys event says `sending: true` under epoch E:
//   its roster must equal the set E was wrapped for (its drawer + every recipient of an e2ee.key
//   for E), except for at most SEND_GRACE_MS plus one tick after the two first differ.
// So nobody sends for longer than the grace under a key a removed member holds (its roster no
// longer lists that member, E's recipients do), nor under a key a listed member lacks.
// Finally the relay turns honest and everyone converges and sends again.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type E2eeMessage,
  IdentityKeyPair,
  type KeysEvent,
  LeaderSession,
  ParticipantSession,
  parseE2eeMessage,
  SEND_GRACE_MS,
  type SessionOutput,
} from '../src/core/e2ee/index.js';
import { FakeClock, seededRandom } from './e2ee-helpers.js';

const MAX_TICK_MS = 500;

type Fate =
  | { kind: 'deliver' }
  | { kind: 'drop' }
  | { kind: 'delay'; ms: number }
  | { kind: 'duplicate'; ms: number };
type Step =
  | { kind: 'join' }
  | { kind: 'leave'; pick: number }
  | { kind: 'rekey' }
  | { kind: 'tick'; ms: number }
  | { kind: 'withholdKeys'; pick: number; ms: number };

const fate: fc.Arbitrary<Fate> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'deliver' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'drop' as const }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4_000 }).map((ms) => ({ kind: 'delay' as const, ms })) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 4_000 }).map((ms) => ({ kind: 'duplicate' as const, ms })),
  },
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'join' as const }) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ kind: 'leave' as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'rekey' as const }) },
  {
    weight: 8,
    arbitrary: fc.integer({ min: 50, max: MAX_TICK_MS }).map((ms) => ({ kind: 'tick' as const, ms })),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ pick: fc.nat(), ms: fc.integer({ min: 1_000, max: 20_000 }) })
      .map((x) => ({ kind: 'withholdKeys' as const, ...x })),
  },
);

class AdversarialMeeting {
  readonly clock = new FakeClock();
  readonly leader: LeaderSession;
  readonly participants = new Map<string, ParticipantSession>();
  readonly keys = new Map<string, KeysEvent>(); // last keys event per session
  readonly wrappedFor = new Map<number, Set<string>>(); // epoch → drawer + recipients
  readonly departed = new Set<string>();
  readonly mismatchSince = new Map<string, number>();
  honest = false;
  withhold: { to: string; until: number } | undefined;
  #queue: { at: number; to: string; text: string }[] = [];
  #next = 0;
  #fateIndex = 0;
  #order: number;

  constructor(
    readonly seed: string,
    readonly fates: Fate[],
    order: number,
  ) {
    this.#order = order;
    const created = LeaderSession.create({
      meetingId: `fresh-${seed}`,
      participantId: 'leader',
      identity: IdentityKeyPair.generate(seededRandom(`${seed}-leader`)),
      random: seededRandom(seed),
      clock: this.clock.read,
      autoAdmit: true,
    });
    this.leader = created.session;
    this.#output('leader', created.output);
  }

  join(): void {
    const id = `room-${this.#next++}`;
    const p = new ParticipantSession({
      meetingId: this.leader.state.meetingId,
      participantId: id,
      identity: IdentityKeyPair.generate(seededRandom(`${this.seed}-${id}`)),
      random: seededRandom(`${this.seed}-${id}-r`),
      clock: this.clock.read,
    });
    this.participants.set(id, p);
    this.#output(id, p.start());
  }

  leave(pick: number): void {
    const others = this.leader.members.filter((id) => id !== 'leader');
    if (others.length === 0) return;
    const id = others[pick % others.length]!;
    this.departed.add(id);
    this.#output('leader', this.leader.remove(id));
    this.participants.delete(id); // it may still hold keys; it receives nothing more
  }

  rekey(): void {
    this.#output('leader', this.leader.rekey());
  }

  tick(ms: number): void {
    this.clock.advance(ms);
    this.#flush();
    this.#output('leader', this.leader.tick());
    for (const [id, p] of [...this.participants]) this.#output(id, p.tick());
    this.#flush();
  }

  #session(id: string): LeaderSession | ParticipantSession | undefined {
    return id === 'leader' ? this.leader : this.participants.get(id);
  }

  #fate(): Fate {
    if (this.honest || this.fates.length === 0) return { kind: 'deliver' };
    return this.fates[this.#fateIndex++ % this.fates.length]!;
  }

  #output(from: string, out: SessionOutput): void {
    for (const e of out.events) if (e.type === 'keys') this.keys.set(from, e);
    for (const message of out.outgoing) {
      if (message.type === 'e2ee.key') {
        const set = this.wrappedFor.get(message.epoch) ?? new Set([message.from]);
        this.wrappedFor.set(message.epoch, set);
        set.add(message.to);
      }
      const text = JSON.stringify(message);
      const recipients =
        message.to !== undefined
          ? [message.to]
          : message.type === 'e2ee.binding'
            ? ['leader']
            : this.leader.members.filter((id) => id !== from);
      for (const to of recipients) this.#send(to, message, text);
    }
    this.check();
  }

  #send(to: string, message: E2eeMessage, text: string): void {
    const now = this.clock.now;
    if (!this.honest && message.type === 'e2ee.key' && this.withhold?.to === to && now < this.withhold.until)
      return;
    const f = this.#fate();
    if (f.kind === 'drop') return;
    this.#queue.push({ at: now + (f.kind === 'delay' ? f.ms : 0), to, text });
    if (f.kind === 'duplicate') this.#queue.push({ at: now + f.ms, to, text });
  }

  /** Deliver what is due, in a scrambled order (reordering), including what that produces. */
  #flush(): void {
    for (let round = 0; round < 50; round++) {
      const due = this.#queue.filter((d) => d.at <= this.clock.now);
      if (due.length === 0) return;
      this.#queue = this.#queue.filter((d) => d.at > this.clock.now);
      for (let i = due.length - 1; i > 0; i--) {
        this.#order = (this.#order * 1_103_515_245 + 12_345) % 2 ** 31;
        const j = this.#order % (i + 1);
        [due[i], due[j]] = [due[j]!, due[i]!];
      }
      for (const d of due) {
        const session = this.#session(d.to);
        if (!session) continue;
        this.#output(d.to, session.handle(parseE2eeMessage(d.text)));
      }
    }
  }

  /** The property: sending ⇒ roster = holders of the epoch, but for the grace plus one tick. */
  check(): void {
    const now = this.clock.now;
    for (const [id, keys] of this.keys) {
      const session = this.#session(id);
      if (!session || this.departed.has(id) || !session.state.isMember) continue;
      const roster = session.state.list
        .members()
        .map((m) => m.participantId)
        .sort();
      const holders = [...(this.wrappedFor.get(keys.epoch) ?? new Set(['leader']))].sort();
      if (!keys.sending || JSON.stringify(roster) === JSON.stringify(holders)) {
        this.mismatchSince.delete(id);
        continue;
      }
      const since = this.mismatchSince.get(id) ?? now;
      this.mismatchSince.set(id, since);
      expect(
        now - since,
        `${id} sends under epoch ${keys.epoch} (held by ${holders}) while listing ${roster}`,
      ).toBeLessThanOrEqual(SEND_GRACE_MS + MAX_TICK_MS);
    }
  }
}

describe('key freshness under an adversarial relay (model-based)', () => {
  it('nobody sends beyond the grace under a key whose holders differ from its roster; all recover', () => {
    let run = 0;
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 5, maxLength: 60 }),
        fc.array(fate, { minLength: 1, maxLength: 50 }),
        fc.nat(),
        (steps, fates, order) => {
          const m = new AdversarialMeeting(`run-${run++}`, fates, order);
          for (const s of steps) {
            switch (s.kind) {
              case 'join':
                if (m.participants.size < 6) m.join();
                break;
              case 'leave':
                m.leave(s.pick);
                break;
              case 'rekey':
                m.rekey();
                break;
              case 'tick':
                m.tick(s.ms);
                break;
              case 'withholdKeys': {
                const ids = [...m.participants.keys()];
                if (ids.length > 0) m.withhold = { to: ids[s.pick % ids.length]!, until: m.clock.now + s.ms };
                break;
              }
            }
          }
          // The relay turns honest: within a while every member holds, lists and sends the same.
          m.honest = true;
          for (let i = 0; i < 60; i++) m.tick(MAX_TICK_MS);
          for (const id of m.leader.members) {
            const keys = m.keys.get(id);
            expect(keys?.epoch, `${id} epoch`).toBe(m.leader.epoch);
            expect(keys?.sending, `${id} sending`).toBe(true);
          }
        },
      ),
      { numRuns: 120 },
    );
  }, 180_000);
});
