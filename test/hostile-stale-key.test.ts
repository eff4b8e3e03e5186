// Attack 2 of issue 9, stale key after a leave: after C leaves and the leader draws a new epoch, the
// relay drops only the wrapped keys addressed to B while delivering list entries and heartbeats. B
// must stop sending under the old epoch (which C holds) within 2 s, ask for the key, and resume only
// once it holds the new one. And a heartbeat the relay replays must never reset B's liveness.
import { beforeAll, describe, expect, it } from 'vitest';
import type { KeysEvent } from '../src/core/e2ee/index.js';
import { e2eePayload, type Frame } from './adversary/hostile-relay.js';
import {
  currentEpoch,
  eventsOf,
  FAST,
  poll,
  type Room,
  sending,
  sleep,
  type Stage,
  meetingForFile,
} from './adversary/rooms.js';

const set = meetingForFile(['Boardroom', 'Huddle', 'Lab']);
const { watch } = set;
let stage: Stage;
let a: Room;
let b: Room;
let c: Room;
beforeAll(() => {
  stage = set.stage;
  [a, b, c] = set.rooms as [Room, Room, Room];
});

const toB = (f: Frame) => f.direction === 'to-device' && f.link === stage.hostile.link('Huddle');
const isSending = (e: KeysEvent) => e.sending;

describe('stale key after a leave (attack 2)', () => {
  it('B stops sending under the old epoch within 2 s when its wrapped key is withheld, and resumes only after resync', async () => {
    const oldEpoch = currentEpoch(b);
    expect(sending(b)).toBe(true);
    const stopDropping = stage.hostile.use((f) =>
      toB(f) && e2eePayload(f, 'e2ee.key') ? 'drop' : undefined,
    );
    const leaveListToB = () =>
      stage.hostile.seen.find(
        (f) =>
          toB(f) &&
          f.forwardedAt !== undefined &&
          (e2eePayload(f, 'e2ee.list')?.entries ?? []).some(
            (e: { body: { kind: string } }) => e.body.kind === 'leave',
          ),
      );
    await c.client.leaveMeeting();
    await poll(() => leaveListToB(), 5000, 'the leave entry delivered to B');
    const leaveAt = leaveListToB()?.forwardedAt ?? 0;
    // Within the grace (1.5 s) plus a tick, B's media engine is told to send nothing.
    await poll(() => !sending(b), 4000, 'B suspends sending');
    const suspendedAt = b.keys.findLast((k) => !isSending(k.event))?.at ?? Number.POSITIVE_INFINITY;
    expect(suspendedAt - leaveAt).toBeLessThanOrEqual(2000);
    // The leader does not keep C's epoch past the grace either (it certifies without B's ack).
    await sleep(Math.max(0, leaveAt + 2200 - Date.now()));
    const leaderOld = a.keys.filter(
      (k) => k.at > leaveAt + 2000 && k.event.epoch <= oldEpoch && isSending(k.event),
    );
    expect(leaderOld).toEqual([]);
    expect(currentEpoch(a)).toBeGreaterThan(oldEpoch);
    // While the relay keeps withholding the key, B never goes back to the old epoch; it keeps asking.
    await sleep(2500);
    expect(b.keys.filter((k) => k.at > suspendedAt && isSending(k.event))).toEqual([]);
    expect(
      stage.hostile.seen.some(
        (f) =>
          f.direction === 'to-relay' &&
          f.link === stage.hostile.link('Huddle') &&
          e2eePayload(f, 'e2ee.resync'),
      ),
    ).toBe(true);
    expect(eventsOf(b, 'send-suspended').length).toBeGreaterThan(0);
    // The relay relents: B resyncs and resumes under the leader's new epoch, never the old one.
    stopDropping();
    await poll(
      () => sending(b) && currentEpoch(b) === currentEpoch(a),
      10_000,
      'B resumes under the new epoch',
    );
    expect(currentEpoch(b)).toBeGreaterThan(oldEpoch);
    const resumed = b.keys.filter((k) => k.at > suspendedAt && isSending(k.event));
    expect(resumed.every((k) => k.event.epoch > oldEpoch)).toBe(true);
    expect(watch.errors).toEqual([]);
  });

  it('a replayed heartbeat never resets liveness: B reports the leader silent and stops sending', async () => {
    await poll(() => sending(b), 5000, 'B sending');
    const lastToB = () =>
      stage.hostile.seen.findLast(
        (f) => toB(f) && f.forwardedAt !== undefined && e2eePayload(f, 'e2ee.heartbeat'),
      );
    await poll(() => lastToB(), 5000, 'a heartbeat to B');
    const captured = lastToB() as Frame;
    const silentBefore = eventsOf(b, 'leader-silent').length;
    // From now on the relay withholds every new heartbeat to B and replays the captured one instead.
    const stopDropping = stage.hostile.use((f) =>
      toB(f) && e2eePayload(f, 'e2ee.heartbeat') ? 'drop' : undefined,
    );
    const replayer = setInterval(() => stage.hostile.replay(captured), 300);
    try {
      await poll(
        () => eventsOf(b, 'leader-silent').length > silentBefore,
        FAST.leaderSilentAfterMs + 4000,
        'leader-silent at B despite replays',
      );
      await poll(() => !sending(b), 3000, 'B stops sending (leader lost)');
      await sleep(1000);
      expect(sending(b)).toBe(false);
    } finally {
      clearInterval(replayer);
      stopDropping();
    }
    // A fresh heartbeat from the leader (strictly newer) restores sending.
    await poll(
      () => sending(b) && currentEpoch(b) === currentEpoch(a),
      10_000,
      'B resumes after a new heartbeat',
    );
    expect(watch.errors).toEqual([]);
  });
});
