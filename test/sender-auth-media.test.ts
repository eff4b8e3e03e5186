// Attacks 3 and 4 against real media workers (GStreamer test sources, SFrame + sender
// authentication in the worker, werift on loopback):
//  - forged media: a member holding the group key sends under another member's KID with that
//    member's SFrame key; the receiver drops every frame (counted as sender-authentication failures)
//    before any window moves, and the victim's genuine frames — the very same KID and counters —
//    then decode;
//  - forged media on the wall: the same forgery never puts the forger's picture under the victim's
//    tile (the kiosk page's wall only ever sees frames that passed sender authentication);
//  - last meeting's key: two meetings in a row with the same KIDs but different keys; after the
//    first ends (clear-keys) the worker sends nothing, and in the second its frames are under the
//    second meeting's key (a receiver holding only those decodes them, with no failure).
import { afterAll, describe, expect, it } from 'vitest';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import { deriveSenderBaseKey, makeKid } from '../src/core/e2ee/sender-keys.js';
import {
  TEST_MEETING,
  authKeys,
  displayPixel,
  isRed,
  latestStats,
  latestWallSlots,
  link,
  meetingKeys,
  newMeetingKey,
  waitFor,
  worker,
} from './media-harness.js';

const running: MediaSupervisor[] = [];
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop()));
});
const TILE0 = [48, 20] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const VICTIM = 1;
const RX = 2;
const FORGER = 3;

/**
 * Three real workers: RX (extra settings), the victim (red) and a forger (green) holding the group
 * key. The forger is a member: it derives the victim's SFrame key and sends under the victim's KID,
 * tagging with the pairwise keys it really holds (its own, as member 3). Nobody is linked yet.
 */
async function forgeryMeeting(rxSettings: Parameters<typeof worker>[0]) {
  const mk = newMeetingKey();
  const members = [VICTIM, RX, FORGER];
  const rx = worker({ codec: 'h264', pattern: 'blue', ...rxSettings });
  const forger = worker({ codec: 'h264', pattern: 'green' });
  const victim = worker({ codec: 'h264', pattern: 'red' });
  running.push(rx, forger, victim);
  await Promise.all([rx.start(), forger.start(), victim.start()]);
  rx.setKeys(meetingKeys(mk, 1, RX, members));
  forger.setKeys({
    ...meetingKeys(mk, 1, FORGER, members),
    sendKid: makeKid(1, VICTIM),
    sendKey: deriveSenderBaseKey(mk, 1, VICTIM, TEST_MEETING),
    auth: authKeys(mk, FORGER, members),
  });
  return { mk, members, rx, forger, victim };
}

describe('forged media (attack 4)', () => {
  it('a member sending under the victim’s KID is dropped and counted; the victim then decodes', async () => {
    const { mk, members, rx, forger, victim } = await forgeryMeeting({});
    const stats = latestStats(rx);
    const unlink = link(forger, rx);
    await waitFor('forged frames refused', () => (stats()?.counters.authFailures ?? 0) > 60);
    const forgedPhase = stats();
    expect(forgedPhase?.counters.videoFramesDecrypted).toBe(0);
    expect(forgedPhase?.counters.audioFramesDecrypted).toBe(0);
    expect(forgedPhase?.counters.authFailures).toBe(forgedPhase?.counters.decryptFailures);
    unlink();
    await forger.stop();
    rx.disconnect();

    // The genuine victim, same KID, its counters starting at 0 like the forged ones did.
    victim.setKeys(meetingKeys(mk, 1, VICTIM, members));
    const others = () => {
      const c = stats()?.counters;
      return c ? c.decryptFailures - c.authFailures : 0;
    };
    const othersBefore = others();
    link(victim, rx);
    await waitFor('the victim’s red frames at RX', async () => isRed(await displayPixel(rx, ...TILE0)));
    await waitFor('victim audio', () => (stats()?.counters.audioFramesDecrypted ?? 0) > 20);
    // Nothing of the victim's was refused: no REPLAY/TOO_OLD from a window the forgery moved.
    expect(others() - othersBefore).toBe(0);
    expect(stats()?.counters.implausibleCounters).toBe(0);
  }, 90_000);
});

describe('forged media on the wall (attack 4, kiosk path)', () => {
  it('frames forged under the victim’s KID never give the victim a wall tile; the victim’s own do', async () => {
    const { mk, members, rx, forger, victim } = await forgeryMeeting({ wall: true });
    const stats = latestStats(rx);
    const slots = latestWallSlots(rx);
    const named: number[] = [];
    rx.on('wall-slots', (m) => {
      for (const slot of m.slots) if (slot.senderIndex !== undefined) named.push(slot.senderIndex);
    });
    const unlink = link(forger, rx);
    await waitFor('forged frames refused', () => (stats()?.counters.authFailures ?? 0) > 60);
    expect(stats()?.counters.videoFramesDecrypted).toBe(0);
    // Not a tile, not an active speaker: the forgery reached nothing the page would show.
    expect(named).toEqual([]);
    expect(slots()?.activeSpeaker).toBeUndefined();
    unlink();
    await forger.stop();
    rx.disconnect();

    victim.setKeys(meetingKeys(mk, 1, VICTIM, members));
    link(victim, rx);
    await waitFor('the victim on a wall m-line', () =>
      (slots()?.slots ?? []).some((s) => s.kind === 'remote' && s.senderIndex === VICTIM),
    );
  }, 90_000);
});

describe('last meeting’s key (attack 3)', () => {
  it('same KIDs, new keys: the worker sends nothing between meetings and then only under the new key', async () => {
    const first = newMeetingKey();
    const second = newMeetingKey();
    const a = worker({ codec: 'vp8', pattern: 'red' });
    const b = worker({ codec: 'vp8', pattern: 'blue' });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.setKeys(meetingKeys(first, 1, 1, [1, 2]));
    b.setKeys(meetingKeys(first, 1, 2, [1, 2]));
    const statsA = latestStats(a);
    const statsB = latestStats(b);
    link(a, b);
    await waitFor('meeting 1 media at B', () => (statsB()?.counters.videoFramesDecrypted ?? 0) > 30);

    // Meeting 1 ends: every key is dropped; A sends nothing at all.
    a.clearKeys();
    b.clearKeys();
    await sleep(1500);
    const sentAfterEnd = statsA()?.counters.videoFramesSent ?? 0;
    await sleep(1500);
    expect(statsA()?.counters.videoFramesSent).toBe(sentAfterEnd);

    // Meeting 2, same sender indexes and epoch (so the same KIDs), another meeting key and id.
    const meeting2 = { meetingId: 'm-second', creationNonce: new Uint8Array(32).fill(3) };
    b.setKeys(meetingKeys(second, 1, 2, [1, 2], meeting2));
    const failuresBefore = statsB()?.counters.decryptFailures ?? 0;
    const decryptedBefore = statsB()?.counters.videoFramesDecrypted ?? 0;
    a.setKeys(meetingKeys(second, 1, 1, [1, 2], meeting2));
    await waitFor(
      'meeting 2 media at B',
      () => (statsB()?.counters.videoFramesDecrypted ?? 0) > decryptedBefore + 30,
    );
    expect((statsB()?.counters.decryptFailures ?? 0) - failuresBefore).toBe(0);

    // sending=false (rekeying): A stops sending, B's keys untouched.
    a.setKeys({ ...meetingKeys(second, 1, 1, [1, 2], meeting2), sending: false });
    await sleep(1500);
    const paused = statsA()?.counters.videoFramesSent ?? 0;
    await sleep(1500);
    expect(statsA()?.counters.videoFramesSent).toBe(paused);
  }, 90_000);
});
