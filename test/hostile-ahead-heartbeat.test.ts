// Attack 6 of issue 9, recovery jammed: one "ahead" heartbeat (certifying an epoch B does not hold)
// that is unsigned, or signed by a mere member, used to be parked and to block B's other recovery
// paths until the next periodic rekey (5 minutes). Here the relay injects both kinds into B, then
// withholds B's wrapped key of the next epoch once: B must still recover through resync at once.
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { IdentityKeyPair, toBase64Url } from '../src/core/e2ee/index.js';
import { heartbeatToWire } from '../src/core/e2ee/messages.js';
import { signHeartbeat } from '../src/core/e2ee/participant-list.js';
import { e2eePayload, type Frame, type Json } from './adversary/hostile-relay.js';
import { currentEpoch, poll, type Room, meetingForFile, sending, type Stage } from './adversary/rooms.js';

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

const linkB = () => stage.hostile.link('Huddle');
const toB = (f: Frame) => f.direction === 'to-device' && f.link === linkB();

/** Ahead heartbeats for B: one from the leader's id with a garbage signature, one signed by member C. */
function aheadHeartbeats(): Json[] {
  const real = stage.hostile.seen.findLast((f) => toB(f) && e2eePayload(f, 'e2ee.heartbeat'));
  const hb = e2eePayload(real as Frame, 'e2ee.heartbeat');
  const unsigned = {
    ...hb,
    epoch: hb.epoch + 3,
    listLength: hb.listLength + 1000,
    time: hb.time + 60_000,
    signature: toBase64Url(randomBytes(64)),
  };
  const cId = c.client.participantId ?? '';
  const memberSigned = heartbeatToWire(
    signHeartbeat(
      {
        meetingId: hb.meetingId,
        leaderId: cId,
        epoch: hb.epoch + 4,
        listLength: hb.listLength + 1000,
        listHead: randomBytes(32),
        time: hb.time + 60_000,
      },
      IdentityKeyPair.fromKeyObject(c.device.identityKey),
    ),
    cId,
  );
  return [
    { type: 'e2ee', from: hb.from, payload: unsigned },
    { type: 'e2ee', from: cId, payload: memberSigned },
  ];
}

describe('an unsigned or member-signed "ahead" heartbeat (attack 6)', () => {
  it('does not jam recovery: B still resyncs the key the relay withheld, within seconds', async () => {
    await poll(
      () => stage.hostile.seen.some((f) => toB(f) && e2eePayload(f, 'e2ee.heartbeat')),
      5000,
      'a heartbeat',
    );
    for (const m of aheadHeartbeats()) linkB()?.toDevice(m);
    // The relay withholds the first wrapped key to B of the next epoch (B must ask for it).
    let withheld = 0;
    const stop = stage.hostile.use((f) =>
      toB(f) && e2eePayload(f, 'e2ee.key') && withheld++ === 0 ? 'drop' : undefined,
    );
    onTestFinished(stop);
    const oldEpoch = currentEpoch(b);
    await c.client.leaveMeeting();
    // Parked junk at the moment B needs to recover, too.
    for (const m of aheadHeartbeats()) linkB()?.toDevice(m);
    await poll(() => currentEpoch(a) > oldEpoch, 5000, 'the leader rekeys');
    await poll(() => withheld > 0, 5000, 'the key to B withheld');
    // Recovered through resync, well before any periodic rekey could rescue it.
    await poll(() => sending(b) && currentEpoch(b) === currentEpoch(a), 8000, 'B recovers the new epoch');
    expect(currentEpoch(b)).toBeGreaterThan(oldEpoch);
    expect(
      stage.hostile.seen.some(
        (f) => f.direction === 'to-relay' && f.link === linkB() && e2eePayload(f, 'e2ee.resync'),
      ),
    ).toBe(true);
    // The injected epochs were never taken for keys B holds or sends with.
    expect(b.keys.every((k) => k.event.epoch <= currentEpoch(a))).toBe(true);
    expect(b.state.get().meeting?.securityCode).toBe(a.state.get().meeting?.securityCode);
    expect(watch.errors).toEqual([]);
  });
});
