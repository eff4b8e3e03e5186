// Two real media workers on loopback: GStreamer test sources → encoder → SFrame → werift → SFrame →
// decoder → gallery/mixer, checked by what the far end's display and speaker received.
import { afterAll, describe, expect, it } from 'vitest';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import {
  displayPixel,
  rms,
  isBlack,
  isBlue,
  isRed,
  latestStats,
  link,
  meetingKeys,
  newMeetingKey,
  speakerPcm,
  tonePower,
  waitFor,
  worker,
} from './media-harness.js';

const running: MediaSupervisor[] = [];
afterAll(async () => {
  await Promise.all(running.map((w) => w.stop()));
});

// Tile 0 of a 2×2 gallery drawn at 192×108: its centre is at (48, 27).
const TILE0 = [48, 20] as const;

describe.each(['h264', 'vp8'] as const)('two rooms exchange media (%s)', (codec) => {
  it('each decodes the other: pattern colour in the gallery tile, tone frequency in the speaker, label from the roster', async () => {
    const mk = newMeetingKey();
    const a = worker({ codec, pattern: 'red', toneHz: 440 });
    const b = worker({ codec, pattern: 'blue', toneHz: 1500 });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
    b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
    a.setRoster([{ senderIndex: 2, name: 'Room B' }]);
    b.setRoster([{ senderIndex: 1, name: 'Room A' }]);
    const statsB = latestStats(b);
    link(a, b);

    await waitFor('A’s red frames in B’s gallery', async () => isRed(await displayPixel(b, ...TILE0)));
    await waitFor('B’s blue frames in A’s gallery', async () => isBlue(await displayPixel(a, ...TILE0)));
    // Outside the tiles' picture area nothing but the black background.
    expect(isBlack(await displayPixel(b, 150, 80))).toBe(true);

    const pcmB = await waitFor('audio at B', () => speakerPcm(b));
    expect(tonePower(pcmB, 440)).toBeGreaterThan(20 * tonePower(pcmB, 1500));
    const pcmA = await waitFor('audio at A', async () => {
      const pcm = await speakerPcm(a);
      return pcm && tonePower(pcm, 1500) > 0.1 ? pcm : undefined;
    });
    expect(tonePower(pcmA, 1500)).toBeGreaterThan(20 * tonePower(pcmA, 440));

    expect((await b.probe()).labels).toEqual(['Room A']);
    // The daemon's volume reaches the speaker: at 0 the last 100 ms are silent, A's tone still arrives.
    b.setVolume(0);
    await waitFor('silence at B’s speaker', async () => {
      const pcm = await speakerPcm(b);
      const tail = pcm?.subarray(pcm.length - 9600);
      return tail && tail.length === 9600 && tonePower(tail, 440) < 1e-3 && rms(tail) < 0.001;
    });
    b.setVolume(60);
    const s = await waitFor('stats from B after decoding', () => {
      const last = statsB();
      return last && last.remotes.length > 0 ? last : undefined;
    });
    expect(s.counters.decryptFailures).toBe(0);
    expect(s.remotes).toEqual([expect.objectContaining({ senderIndex: 1, slot: 0 })]);

    // A leaves: once the roster no longer lists A, B's tile goes black instead of freezing on A.
    await a.stop();
    b.setRoster([]);
    await waitFor('A’s tile cleared at B', async () => isBlack(await displayPixel(b, ...TILE0)));
    expect((await b.probe()).labels).toEqual([]);
    await b.stop();
  }, 60_000);
});

describe('keys', () => {
  it('with a wrong or retired key nothing is decoded, keyframes are requested, and the worker keeps running', async () => {
    const mk = newMeetingKey();
    const a = worker({ codec: 'h264', pattern: 'red', toneHz: 440 });
    const b = worker({ codec: 'h264', pattern: 'blue', toneHz: 1500 });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
    // B holds keys of another meeting key for the same KIDs: every frame fails to authenticate.
    b.setKeys(meetingKeys(newMeetingKey(), 1, 2, [1, 2]));
    const statsB = latestStats(b);
    link(a, b);
    const failing = await waitFor('decrypt failures at B', () => {
      const s = statsB();
      return s && s.counters.decryptFailures > 30 && s.counters.keyframesRequested > 0 ? s : undefined;
    });
    expect(failing.counters.videoFramesDecrypted).toBe(0);
    expect(failing.counters.audioFramesDecrypted).toBe(0);
    expect(isRed(await displayPixel(b, ...TILE0))).toBe(false);

    // The right key arrives: media flows. Then A moves to epoch 2 and B only holds the retired epoch 1.
    b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
    await waitFor('A’s frames after the right key', async () => isRed(await displayPixel(b, ...TILE0)));
    a.setKeys(meetingKeys(mk, 2, 1, [1, 2]));
    const before = statsB()?.counters;
    await waitFor('failures with the retired key', () => {
      const s = statsB();
      return s && before && s.counters.decryptFailures > before.decryptFailures + 30 ? s : undefined;
    });
    const stalled = statsB()?.counters.videoFramesDecrypted;
    await new Promise((r) => setTimeout(r, 1500));
    expect(statsB()?.counters.videoFramesDecrypted).toBe(stalled);
    // Both workers are alive and answering.
    expect((await a.probe()).type).toBe('probe');
    expect((await b.probe()).type).toBe('probe');
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);
});
