// The wall from the media worker's side, with real parts: two real media workers on loopback (far
// room A sends, room B shows), B forwarding A's decrypted, still encoded frames over a loopback
// WebRTC connection to real Debian Chromium, which decodes and paints them. Checked on the page:
// colours and motion per m-line, self-view, keyframe requests; and that nothing reaches a page that
// did not do the signalling.
import { afterAll, describe, expect, it } from 'vitest';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import {
  latestStats,
  speakerPcm,
  tonePower,
  latestWallSlots,
  link,
  meetingKeys,
  newMeetingKey,
  sfuMeeting,
  waitFor,
  wallErrors,
  wallSessionId,
  worker,
} from './media-harness.js';
import {
  type WallBrowser,
  WallPage,
  candidateAddresses,
  fingerprintOf,
  launchWallBrowser,
  near,
} from './wall-page.js';

const running: MediaSupervisor[] = [];
let browser: WallBrowser | undefined;
afterAll(async () => {
  await browser?.close();
  await Promise.all(running.map((w) => w.stop()));
});

const RED = [255, 0, 0];
const BLUE = [0, 0, 255];
const LONG = 180_000;

/** Two rooms in a meeting: A (sender 1) sends `patternA`; B (sender 2) has the wall on. */
async function twoRooms(
  codec: 'h264' | 'vp8',
  patternA: string,
  patternB: string,
  extra: Parameters<typeof worker>[0] = {},
) {
  const mk = newMeetingKey();
  const a = worker({ codec, pattern: patternA, toneHz: 440, ...extra });
  const b = worker({ codec, pattern: patternB, toneHz: 1500, wall: true, tiles: 9, ...extra });
  running.push(a, b);
  await Promise.all([a.start(), b.start()]);
  a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
  b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
  const slots = latestWallSlots(b);
  const stats = latestStats(b);
  link(a, b);
  return { a, b, slots, stats };
}

/** Waits until far sender `senderIndex` holds one of B's remote wall m-lines; returns that slot. */
function remoteSlot(slots: ReturnType<typeof latestWallSlots>, senderIndex = 1) {
  return waitFor(
    `sender ${senderIndex} in a remote slot`,
    () => slots()?.slots.find((s) => s.kind === 'remote' && s.senderIndex === senderIndex),
    60_000,
  );
}

describe('the wall: media worker → kiosk page (real Chromium)', () => {
  it(
    'shows the far room’s picture in its m-line and the own camera in self (h264)',
    async () => {
      browser ??= await launchWallBrowser();
      const { a, b, slots, stats } = await twoRooms('h264', 'red', 'blue');
      const id = wallSessionId();
      const { sdp: offer } = await b.openWall(id);
      // Loopback only, video only: 9 remote + self + content, all sendonly.
      expect(candidateAddresses(offer).length).toBeGreaterThan(0);
      expect(new Set(candidateAddresses(offer))).toEqual(new Set(['127.0.0.1']));
      expect(offer).not.toMatch(/^m=(audio|application)/m);
      expect(offer.match(/^m=video /gm)).toHaveLength(11);
      expect(offer.match(/^a=sendonly/gm)).toHaveLength(11);
      const page = await WallPage.open(browser);
      b.answerWall(id, await page.answer(offer));

      const remote = await remoteSlot(slots);
      const self = slots()?.slots.find((s) => s.kind === 'self');
      expect(self).toBeDefined();
      await waitFor(
        'A’s red in its tile',
        async () => near((await page.report()).get(remote.mid)?.avg, RED),
        60_000,
      );
      await waitFor(
        'B’s own blue in the self tile',
        async () => near((await page.report()).get(self?.mid ?? '')?.avg, BLUE),
        60_000,
      );
      const r = await page.report();
      expect(r.get(remote.mid)?.painted).toBeGreaterThan(0);
      expect(r.get(remote.mid)?.width).toBe(320);
      await waitFor('forwarded frames counted', () => (stats()?.counters.wallFramesForwarded ?? 0) > 0);
      // A second session (another kiosk page) shares the slots and gets the same picture.
      const id2 = wallSessionId();
      const { sdp: offer2 } = await b.openWall(id2);
      const page2 = await WallPage.open(browser);
      b.answerWall(id2, await page2.answer(offer2));
      await waitFor(
        'A’s red at the second page too',
        async () => near((await page2.report()).get(remote.mid)?.avg, RED),
        60_000,
      );
      await page2.close();
      b.closeWall(id2);
      // A solid colour does not move (the motion check below can fail).
      expect(await page.moving(remote.mid)).toBe(false);

      // wall=true: no GStreamer gallery (no display probe at all), yet A's voice plays at B, and A,
      // the only one talking, becomes the active speaker after the hold time.
      expect((await b.probe()).display).toBeUndefined();
      const pcm = await waitFor('A’s tone at B’s speaker', async () => {
        const p = await speakerPcm(b);
        return p && tonePower(p, 440) > 0.1 ? p : undefined;
      });
      expect(tonePower(pcm, 440)).toBeGreaterThan(20 * tonePower(pcm, 1500));
      await waitFor('A is the active speaker', () => slots()?.activeSpeaker === 1, 30_000);
      await page.close();
      b.closeWall(id);
      await Promise.all([a.stop(), b.stop()]);
    },
    LONG,
  );

  it(
    'carries a moving picture and answers the page’s keyframe requests (vp8)',
    async () => {
      browser ??= await launchWallBrowser();
      // Keyframes only on request, so each one counted below answers a request.
      const { a, b, slots } = await twoRooms('vp8', 'ball', 'smpte', { keyframeInterval: 3000 });
      const id = wallSessionId();
      const { sdp: offer } = await b.openWall(id);
      expect(offer).toMatch(/^a=rtpmap:96 VP8\/90000/m);
      const page = await WallPage.open(browser);
      b.answerWall(id, await page.answer(offer));
      const remote = await remoteSlot(slots);
      const selfMid = slots()?.slots.find((s) => s.kind === 'self')?.mid ?? '';
      await waitFor(
        'A’s frames painted',
        async () => ((await page.report()).get(remote.mid)?.painted ?? 0) > 10,
        60_000,
      );
      expect(await page.moving(remote.mid)).toBe(true);
      // Self-view: B's SMPTE bars, not A's dark ball picture.
      await waitFor(
        'self-view painted',
        async () => ((await page.report()).get(selfMid)?.painted ?? 0) > 5,
        60_000,
      );
      const selfThumb = await page.thumbnail(selfMid);
      expect(selfThumb && Math.max(...selfThumb.grey) - Math.min(...selfThumb.grey)).toBeGreaterThan(100);
      expect(near(selfThumb?.avg, [0, 0, 0], 40)).toBe(false);

      for (const mid of [remote.mid, selfMid]) {
        const before = (await page.report()).get(mid);
        expect(await page.requestKeyframe(mid)).toBe(true);
        const after = await waitFor(
          `a keyframe on mid ${mid} after the page's PLI`,
          async () => {
            const r = (await page.report()).get(mid);
            return r && r.keyFrames > (before?.keyFrames ?? 0) ? r : undefined;
          },
          30_000,
        );
        expect(after.pliCount).toBeGreaterThan(before?.pliCount ?? 0);
      }
      await page.close();
      b.closeWall(id);
      await Promise.all([a.stop(), b.stop()]);
    },
    // One retry: in one loaded clean-clone run (2026-12-05) B never decrypted a frame of A within
    // 60 s (no remote slot); the run before and every targeted run passed. Open observation in
    // docs/media.md; a wall that never shows A fails both attempts.
    { timeout: LONG, retry: 1 },
  );

  it(
    'sends nothing to a page that did not do the signalling',
    async () => {
      browser ??= await launchWallBrowser();
      const { a, b, slots } = await twoRooms('h264', 'red', 'blue');
      const errors = wallErrors(b);
      // The legitimate page: opens, answers, gets A's picture (the positive control).
      const id = wallSessionId();
      const { sdp: offer } = await b.openWall(id);
      const page = await WallPage.open(browser);
      const legit = await page.answer(offer);
      b.answerWall(id, legit);
      const remote = await remoteSlot(slots);
      await waitFor(
        'A’s red at the legitimate page',
        async () => near((await page.report()).get(remote.mid)?.avg, RED),
        60_000,
      );

      // The attacker: another page that got hold of the same offer answers it with its own
      // certificate. The worker refuses a second answer for the session, and nothing reaches it.
      const attacker = await WallPage.open(browser);
      const forged = await attacker.answer(offer);
      expect(fingerprintOf(forged)).not.toEqual(fingerprintOf(legit));
      b.answerWall(id, forged);
      await waitFor('second answer refused', () =>
        errors.find((e) => e.sessionId === id && /already answered/.test(e.message)),
      );
      // An answer for a session nobody opened is refused too.
      const unknown = wallSessionId();
      b.answerWall(unknown, forged);
      await waitFor('unknown session refused', () =>
        errors.find((e) => e.sessionId === unknown && /unknown/.test(e.message)),
      );

      // A session whose answer carries another peer's DTLS fingerprint: ICE may complete, DTLS does
      // not (werift checks the certificate against the answer), so the page that answered gets nothing.
      const id2 = wallSessionId();
      const { sdp: offer2 } = await b.openWall(id2);
      const victim = await WallPage.open(browser);
      const answer2 = await victim.answer(offer2);
      b.answerWall(id2, answer2.replace(/^a=fingerprint:.*$/gm, fingerprintOf(legit) ?? ''));
      // A session that is never answered gets nothing either.
      const id3 = wallSessionId();
      const { sdp: offer3 } = await b.openWall(id3);
      const silent = await WallPage.open(browser);
      await silent.answer(offer3);

      // Meanwhile the legitimate page keeps painting: frames flow, just not to them.
      const painted0 = (await page.report()).get(remote.mid)?.painted ?? 0;
      await waitFor(
        'legitimate page still painting',
        async () => ((await page.report()).get(remote.mid)?.painted ?? 0) > painted0 + 30,
        60_000,
      );
      // No frame, not even one undecodable one, reached any of them. (Their own connection state
      // proves nothing: werift checks the peer's certificate against the answer only after the DTLS
      // handshake, then closes without starting SRTP, so Chromium may show 'connected' for a moment.)
      for (const p of [attacker, victim, silent]) {
        const r = await p.report();
        const painted = [...r.values()].reduce((n, t) => n + t.painted + t.keyFrames + t.deltaFrames, 0);
        expect(painted).toBe(0);
      }
      for (const p of [page, attacker, victim, silent]) await p.close();
      await Promise.all([a.stop(), b.stop()]);
    },
    LONG,
  );

  it(
    'openWall fails without a running worker; a worker restart drops the sessions',
    async () => {
      const idle = worker({ wall: true });
      await expect(idle.openWall(wallSessionId())).rejects.toThrow(/not running/);
      const b = worker({ wall: true }, { backoffMs: [300] });
      running.push(b);
      await b.start();
      const id = wallSessionId();
      const { sdp } = await b.openWall(id);
      expect(sdp).toMatch(/^m=video /m);
      // An open pending while the worker dies is rejected, not left hanging.
      process.kill(b.pid as number, 'SIGKILL');
      const pending = b.openWall(wallSessionId());
      await expect(pending).rejects.toThrow(/exited|not running/);
      await new Promise<void>((r) => b.once('ready', () => r()));
      // The restarted worker knows nothing of the old session.
      const errors = wallErrors(b);
      b.answerWall(id, sdp);
      await waitFor('old session unknown after restart', () => errors.find((e) => e.sessionId === id));
      await b.stop();
    },
    LONG,
  );

  it(
    'three rooms through the SFU: each far room on its own m-line, the active speaker follows the voice',
    async () => {
      browser ??= await launchWallBrowser();
      const mk = newMeetingKey();
      const a = worker({ pattern: 'red', toneHz: 440 });
      const c = worker({ pattern: 'blue', toneHz: 1000 });
      const b = worker({ pattern: 'green', toneHz: 1500, wall: true, tiles: 9 });
      running.push(a, b, c);
      await Promise.all([a.start(), b.start(), c.start()]);
      a.setKeys(meetingKeys(mk, 1, 1, [1, 2, 3]));
      b.setKeys(meetingKeys(mk, 1, 2, [1, 2, 3]));
      c.setKeys(meetingKeys(mk, 1, 3, [1, 2, 3]));
      c.setMicMuted(true); // only A talks at first
      const slots = latestWallSlots(b);
      const meeting = sfuMeeting([a, b, c]);
      const id = wallSessionId();
      const { sdp: offer } = await b.openWall(id);
      const page = await WallPage.open(browser);
      b.answerWall(id, await page.answer(offer));
      const [slotA, slotC] = await waitFor(
        'A and C in remote slots',
        () => {
          const s = slots()?.slots ?? [];
          const sa = s.find((x) => x.kind === 'remote' && x.senderIndex === 1);
          const sc = s.find((x) => x.kind === 'remote' && x.senderIndex === 3);
          return sa && sc ? ([sa, sc] as const) : undefined;
        },
        60_000,
      );
      expect(slotA.mid).not.toBe(slotC.mid);
      await waitFor(
        'A’s red and C’s blue, each in its own tile',
        async () => {
          const r = await page.report();
          return near(r.get(slotA.mid)?.avg, RED) && near(r.get(slotC.mid)?.avg, BLUE);
        },
        60_000,
      );
      await waitFor('A is the active speaker', () => slots()?.activeSpeaker === 1, 30_000);
      // A falls silent, C talks: C takes over, but only after it has dominated for 1.5 s.
      a.setMicMuted(true);
      c.setMicMuted(false);
      const switchedFrom = Date.now();
      await waitFor('C is the active speaker', () => slots()?.activeSpeaker === 3, 30_000);
      expect(Date.now() - switchedFrom).toBeGreaterThanOrEqual(1400);
      // The tiles did not move (2 senders, 9 m-lines: nobody is displaced).
      const now = slots()?.slots ?? [];
      expect(now.find((x) => x.senderIndex === 1)?.mid).toBe(slotA.mid);
      expect(now.find((x) => x.senderIndex === 3)?.mid).toBe(slotC.mid);
      await page.close();
      await meeting.close();
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    },
    LONG,
  );
});
