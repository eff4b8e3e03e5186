// Supervision with real workers: kill -9 mid-stream (restart with backoff, state and alerts, media
// resumes after renegotiation), an injected camera pipeline error (slate, then recovery), mute.
import { afterAll, describe, expect, it } from 'vitest';
import { StateStore, initialState } from '../device/daemon/state.js';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import {
  displayPixel,
  isBlack,
  isRed,
  latestStats,
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
const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('media supervisor', () => {
  it('restarts a worker killed with SIGKILL, re-sends settings and keys, and media resumes', async () => {
    const mk = newMeetingKey();
    const state = new StateStore(initialState('test'));
    const a = worker({ pattern: 'red' }, { state, backoffMs: [300] });
    const b = worker({ pattern: 'blue' });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    expect(state.get().media.worker).toBe('running');
    a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
    b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
    a.setMicMuted(true);
    let unlink = link(a, b);
    await waitFor('A’s frames at B', async () => isRed(await displayPixel(b, ...TILE0)));

    const oldPid = a.pid as number;
    const seen: string[] = [];
    state.on('change', (s) => seen.push(s.media.worker));
    const restarted = new Promise<{ restarts: number }>((r) => a.once('ready', r));
    process.kill(oldPid, 'SIGKILL');
    expect((await restarted).restarts).toBe(1);
    expect(seen).toContain('restarting');
    expect(state.get().media.worker).toBe('running');
    expect(state.get().alerts.some((al) => al.id === 'media.worker')).toBe(false);
    expect(a.pid).not.toBe(oldPid);
    expect(isAlive(oldPid)).toBe(false);

    // The new worker has a fresh PeerConnection: negotiate again; keys and mute came back by themselves.
    unlink();
    const statsA = latestStats(a);
    unlink = link(a, b);
    const statsB = latestStats(b);
    const base = await waitFor('B stats', () => statsB());
    await waitFor('video from the restarted worker at B', () => {
      const s = statsB();
      return s && s.counters.videoFramesDecrypted > base.counters.videoFramesDecrypted + 20 ? s : undefined;
    });
    const sa = await waitFor('A stats', () => statsA());
    expect(sa.counters.videoFramesSent).toBeGreaterThan(0);
    // Mute survived the restart: the new worker sends no audio at all.
    expect(sa.counters.audioFramesSent).toBe(0);
    expect(state.get().media.micMuted).toBe(true);
    unlink();
    await Promise.all([a.stop(), b.stop()]);
    expect(state.get().media.worker).toBe('stopped');
  }, 60_000);

  it('kills and restarts a worker that stops answering pings (SIGSTOP)', async () => {
    const state = new StateStore(initialState('test'));
    const a = worker(
      { pattern: 'red' },
      { state, pingIntervalMs: 500, pingTimeoutMs: 2500, backoffMs: [200] },
    );
    running.push(a);
    await a.start();
    const hung = a.pid as number;
    const exits: (string | null)[] = [];
    a.on('exit', (e) => exits.push(e.signal));
    const restarted = new Promise<{ restarts: number }>((r) => a.once('ready', r));
    process.kill(hung, 'SIGSTOP');
    expect((await restarted).restarts).toBe(1);
    expect(exits).toEqual(['SIGKILL']);
    expect(isAlive(hung)).toBe(false);
    expect(state.get().media.worker).toBe('running');
    await a.stop();
  }, 60_000);

  it('an injected camera error shows the slate and raises an alert, then the camera pipeline recovers', async () => {
    const mk = newMeetingKey();
    const state = new StateStore(initialState('test'));
    const a = worker({ pattern: 'red' }, { state });
    const b = worker({ pattern: 'blue' });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
    b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
    link(a, b);
    await waitFor('A’s frames at B', async () => isRed(await displayPixel(b, ...TILE0)));

    const errors: string[] = [];
    a.on('error', (e) => errors.push(`${e.pipeline}:${e.element}`));
    a.injectCameraFault();
    await waitFor('camera alert', () => state.get().alerts.find((al) => al.id === 'media.camera'));
    expect(errors.some((e) => e.startsWith('videoSend:videotestsrc'))).toBe(true);
    expect(state.get().media.camera).not.toBe('ok');
    // The slate (colour bars with a caption) replaces the red picture at B, and stays decodable.
    await waitFor('slate at B', async () => {
      const px = await displayPixel(b, ...TILE0);
      return px && !isRed(px) && !isBlack(px);
    });
    await waitFor('camera back', () => state.get().media.camera === 'ok');
    expect(state.get().alerts.some((al) => al.id === 'media.camera')).toBe(false);
    await waitFor('red again at B', async () => isRed(await displayPixel(b, ...TILE0)));
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it('camera off sends the “Camera off” slate and releases the camera pipeline', async () => {
    const mk = newMeetingKey();
    const state = new StateStore(initialState('test'));
    const a = worker({ pattern: 'red' }, { state });
    const b = worker({ pattern: 'blue' });
    running.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.setKeys(meetingKeys(mk, 1, 1, [1, 2]));
    b.setKeys(meetingKeys(mk, 1, 2, [1, 2]));
    link(a, b);
    await waitFor('A’s frames at B', async () => isRed(await displayPixel(b, ...TILE0)));
    a.setCameraOff(true);
    expect(state.get().media.cameraOff).toBe(true);
    await waitFor('slate at B', async () => {
      const px = await displayPixel(b, ...TILE0);
      return px && !isRed(px) && !isBlack(px);
    });
    a.setCameraOff(false);
    await waitFor('camera picture again', async () => isRed(await displayPixel(b, ...TILE0)));
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);
});
