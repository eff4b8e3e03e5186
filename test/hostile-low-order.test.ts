// Attack 5 of issue 9, one bad key ends the daemon: a member (a valid org certificate) posts key
// bindings, correctly signed, whose X25519 key is of low order or not a key at all. The leader must
// refuse each binding when it verifies it — before any admission request — and go on leading: admit
// others, rekey, keep its heartbeats, with no exception escaping anywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { e2eePayload } from './adversary/hostile-relay.js';
import { LOW_ORDER_X25519_KEYS, RawDevice } from './adversary/identities.js';
import {
  currentEpoch,
  eventsOf,
  poll,
  type Room,
  sending,
  sleep,
  Stage,
  watchProcess,
} from './adversary/rooms.js';

let stage: Stage;
let a: Room;
let b: Room;
const watch = watchProcess();

beforeAll(async () => {
  stage = await new Stage().start();
  a = await stage.room('Boardroom');
  b = await stage.room('Huddle');
});

afterAll(async () => {
  watch.stop();
  await stage.close();
});

describe('low-order X25519 key in a binding (attack 5)', () => {
  it('is refused at verification, never requested for admission, and the leader keeps running', async () => {
    const { meetingId } = await a.client.startMeeting();
    const hostile = await RawDevice.connect(
      stage.hostile.url,
      await issueDevelopmentDevice(stage.ca, { roomName: 'Mallory' }),
    );
    const mId = await hostile.joinWithEphemeralKey(meetingId, LOW_ORDER_X25519_KEYS[0] as Uint8Array);
    for (const key of LOW_ORDER_X25519_KEYS.slice(1)) hostile.postBinding(key);
    // Every one of them is refused by the leader's E2EE session, with a reason, not a throw.
    await poll(
      () =>
        [...eventsOf(a, 'rejected'), ...eventsOf(a, 'identity-refused')].filter((e) =>
          JSON.stringify(e.event).includes(mId),
        ).length >= LOW_ORDER_X25519_KEYS.length,
      8000,
      'each low-order binding refused',
    );
    expect(eventsOf(a, 'admission-request').filter((e) => JSON.stringify(e.event).includes(mId))).toEqual([]);
    for (const s of a.states)
      expect(s.meeting?.waiting.some((w) => w.participantId === mId) ?? false).toBe(false);
    // Someone taps Admit anyway (the relay lists Mallory as waiting): nothing is wrapped for it.
    await a.client.admit(mId).catch(() => undefined);
    // The leader goes on: an honest room joins and is keyed, then leaves, and the leader rekeys.
    await b.client.joinMeeting(meetingId);
    const bId = b.client.participantId ?? '';
    await poll(() => a.state.get().meeting?.waiting.some((w) => w.participantId === bId), 8000, 'B waiting');
    await a.client.admit(bId);
    await poll(() => sending(b) && currentEpoch(b) === currentEpoch(a), 8000, 'B keyed');
    // Mallory posts another low-order binding now that it is "admitted" at the relay.
    hostile.postBinding(LOW_ORDER_X25519_KEYS[2] as Uint8Array);
    const epoch = currentEpoch(a);
    await b.client.leaveMeeting();
    await poll(() => currentEpoch(a) > epoch, 8000, 'leader rekeys after the leave');
    const heartbeatsBefore = stage.hostile.seen.filter(
      (f) => f.direction === 'to-relay' && e2eePayload(f, 'e2ee.heartbeat'),
    ).length;
    await sleep(2500);
    expect(
      stage.hostile.seen.filter((f) => f.direction === 'to-relay' && e2eePayload(f, 'e2ee.heartbeat')).length,
    ).toBeGreaterThan(heartbeatsBefore);
    // No key was ever wrapped for Mallory, and nothing escaped as an exception.
    expect(
      stage.hostile.seen.filter((f) => f.direction === 'to-relay' && e2eePayload(f, 'e2ee.key')?.to === mId),
    ).toEqual([]);
    expect(a.state.get().meeting?.status).toBe('active');
    expect(watch.errors).toEqual([]);
    hostile.close();
  });
});
