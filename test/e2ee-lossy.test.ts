// Model-based test with a lossy relay: fast-check interleaves membership changes, rekeys, lock,
// leader hand-overs and the loss of the next message to a random member (a list entry, a wrapped
// key, a heartbeat, a resync answer…). After each step the meeting runs for a few seconds of
// ticks; by then every member must have recovered on its own (resync, binding re-post, certification
// timeout, periodic heartbeat) and agree with the leader on chain, code, epoch and keys.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedMeeting } from '../src/core/e2ee/index.js';
import { SFrameReceiver, SFrameSender } from '../src/core/sframe/index.js';
import { FakeClock, seededRandom } from './e2ee-helpers.js';

type Action =
  | { kind: 'join' }
  | { kind: 'leave'; pick: number }
  | { kind: 'rekey' }
  | { kind: 'lock' }
  | { kind: 'handOver'; pick: number };

/** An action, with the next 0–2 messages to one member lost while it happens. */
interface Step {
  action: Action;
  lose?: { pick: number; count: number };
}

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'join' as const }) },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ kind: 'leave' as const, pick })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'rekey' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'lock' as const }) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ kind: 'handOver' as const, pick })) },
);
const step: fc.Arbitrary<Step> = fc.record(
  { action, lose: fc.record({ pick: fc.nat(), count: fc.integer({ min: 1, max: 2 }) }) },
  { requiredKeys: ['action'] },
);

/** Losses hit the action's own messages; then the relay behaves and the meeting runs for ~17 s. */
function settle(m: SimulatedMeeting, clock: FakeClock): void {
  m.cancelLosses();
  for (let i = 0; i < 8; i++) {
    clock.advance(2_100);
    m.tick();
  }
}

function checkConverged(m: SimulatedMeeting): void {
  const leader = m.leader;
  const others = leader.members.filter((id) => id !== leader.participantId);
  for (const id of others) {
    const p = m.participants.get(id)!;
    expect(p.state.list.head, `${id} chain`).toEqual(leader.state.list.head);
    expect(p.securityCode, `${id} code`).toBe(leader.securityCode);
    expect(p.epoch, `${id} epoch`).toBe(leader.epoch);
  }
  for (const sender of leader.members) {
    const keys = m.lastKeys(sender)!;
    const frame = new SFrameSender({ kid: keys.sendKid, baseKey: keys.sendKey }).encrypt(new Uint8Array([9]));
    for (const receiver of leader.members) {
      if (receiver === sender) continue;
      const r = new SFrameReceiver();
      for (const k of m.lastKeys(receiver)!.receiveKeys) r.setKey(k.kid, k.key);
      expect(() => r.decrypt(frame), `${receiver} decrypts ${sender}`).not.toThrow();
    }
  }
}

describe('E2EE state machines over a lossy relay (model-based)', () => {
  it('every member recovers from any lost message within a few seconds of ticks', () => {
    let run = 0;
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 14 }), (steps) => {
        const clock = new FakeClock();
        const m = new SimulatedMeeting({
          meetingId: `lossy-${run}`,
          leaderId: 'leader',
          random: seededRandom(`lossy-${run++}`),
          clock: clock.read,
        });
        let next = 0;
        let locked = false;
        for (const { action: a, lose } of steps) {
          const others = m.leader.members.filter((id) => id !== m.leader.participantId);
          // The new member of a join is a candidate too: its whole chain may get lost.
          const candidates = a.kind === 'join' && !locked ? [...others, `room-${next}`] : others;
          if (lose && candidates.length > 0) {
            for (let i = 0; i < lose.count; i++)
              m.loseNextMessageTo(candidates[lose.pick % candidates.length]!);
          }
          switch (a.kind) {
            case 'join': {
              if (locked) break;
              const id = `room-${next++}`;
              m.join(id);
              m.admit([id]);
              break;
            }
            case 'leave':
              if (others.length > 0) m.leave(others[a.pick % others.length]!);
              break;
            case 'rekey':
              m.rekey();
              break;
            case 'lock':
              if (locked) m.unlock();
              else m.lock();
              locked = !locked;
              break;
            case 'handOver':
              if (others.length > 0) m.handOver(others[a.pick % others.length]!);
              break;
          }
          settle(m, clock);
          checkConverged(m);
        }
      }),
      { numRuns: 60 },
    );
  }, 120_000); // CPU-bound; generous for a loaded 2-core CI box
});
