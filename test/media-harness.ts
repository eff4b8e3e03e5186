// Shared by the media tests: two (or more) real media workers on loopback, signalling piped directly,
// keys derived as the E2EE core does, and readers for what their display and speaker received.
import { createHash, randomBytes } from 'node:crypto';
import { deriveFrameAuthKey } from '../src/core/e2ee/frame-auth.js';
import { type MeetingIdentity, deriveSenderBaseKey, makeKid } from '../src/core/e2ee/sender-keys.js';
import {
  type MediaKeys,
  MediaSupervisor,
  type MediaSupervisorOptions,
  type StatsMessage,
} from '../device/media/supervisor.js';
import type { SettingsPatch } from '../device/media/ipc.js';
import { Sfu } from '../src/relay/sfu.js';
import { silentLogger } from '../src/util/log.js';

export const SMALL: SettingsPatch = {
  profile: 'test',
  width: 320,
  height: 240,
  fps: 30,
  videoKbps: 400,
  tiles: 4,
  galleryWidth: 384,
  galleryHeight: 216,
  probeWidth: 192,
  probeHeight: 108,
  keyframeInterval: 60,
};

/** The meeting the tests' keys belong to (sender keys are bound to it). */
export const TEST_MEETING: MeetingIdentity = {
  meetingId: 'm-test',
  creationNonce: new Uint8Array(32).fill(9),
};

/**
 * Pairwise frame-authentication keys of `self` with every other member, derived as the E2EE core
 * does; the X25519 shared secret of two members is stood in for by a hash of the meeting key and
 * their two indexes (the same value on both ends, as the real agreement gives).
 */
export function authKeys(
  meetingKey: Uint8Array,
  self: number,
  members: number[],
  meeting: MeetingIdentity = TEST_MEETING,
): { peerIndex: number; send: Uint8Array; receive: Uint8Array }[] {
  const shared = (a: number, b: number) =>
    new Uint8Array(
      createHash('sha256')
        .update(meetingKey)
        .update(`${Math.min(a, b)}/${Math.max(a, b)}`)
        .digest(),
    );
  const key = (s: number, r: number) =>
    deriveFrameAuthKey(shared(s, r), meeting.meetingId, meeting.creationNonce, s, r);
  return members
    .filter((p) => p !== self)
    .map((p) => ({ peerIndex: p, send: key(self, p), receive: key(p, self) }));
}

export function meetingKeys(
  meetingKey: Uint8Array,
  epoch: number,
  self: number,
  senders: number[],
  meeting: MeetingIdentity = TEST_MEETING,
): MediaKeys {
  return {
    epoch,
    meetingId: meeting.meetingId,
    sendKid: makeKid(epoch, self),
    sendKey: deriveSenderBaseKey(meetingKey, epoch, self, meeting),
    receiveKeys: senders.map((s) => ({
      kid: makeKid(epoch, s),
      key: deriveSenderBaseKey(meetingKey, epoch, s, meeting),
    })),
    sending: true,
    auth: authKeys(meetingKey, self, [self, ...senders], meeting),
  };
}

export const newMeetingKey = () => new Uint8Array(randomBytes(32));

export function worker(settings: SettingsPatch, opts: MediaSupervisorOptions = {}): MediaSupervisor {
  return new MediaSupervisor({
    loopbackOnly: true,
    settings: { ...SMALL, ...settings },
    pingIntervalMs: 1000,
    ...opts,
  });
}

/** Pipes signalling both ways and negotiates (a offers). Call again after a worker restart. */
export function link(a: MediaSupervisor, b: MediaSupervisor): () => void {
  const ab = (p: Parameters<MediaSupervisor['signal']>[0]) => b.signal(p);
  const ba = (p: Parameters<MediaSupervisor['signal']>[0]) => a.signal(p);
  a.on('signal', ab);
  b.on('signal', ba);
  b.connect('answer');
  a.connect('offer');
  return () => {
    a.off('signal', ab);
    b.off('signal', ba);
  };
}

export function latestStats(s: MediaSupervisor): () => StatsMessage | undefined {
  let last: StatsMessage | undefined;
  s.on('stats', (m) => {
    last = m;
  });
  return () => last;
}

export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

/** RGB of the display probe at (x, y), or undefined before the first frame. */
export async function displayPixel(
  s: MediaSupervisor,
  x: number,
  y: number,
): Promise<[number, number, number] | undefined> {
  const p = await s.probe();
  if (!p.display) return undefined;
  const rgb = Buffer.from(p.display.rgb, 'base64');
  const at = (y * p.display.width + x) * 3;
  return [rgb[at] ?? 0, rgb[at + 1] ?? 0, rgb[at + 2] ?? 0];
}

export const isRed = (c: readonly [number, number, number] | undefined) =>
  !!c && c[0] > 200 && c[1] < 60 && c[2] < 60;
export const isBlue = (c: readonly [number, number, number] | undefined) =>
  !!c && c[2] > 200 && c[0] < 60 && c[1] < 60;
export const isBlack = (c: readonly [number, number, number] | undefined) =>
  !!c && c[0] < 30 && c[1] < 30 && c[2] < 30;

/** Goertzel power of `freq` in mono S16LE samples at 48 kHz, normalised by the signal energy. */
export function tonePower(pcm: Buffer, freq: number): number {
  const n = Math.floor(pcm.length / 2);
  const w = (2 * Math.PI * freq) / 48000;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (let i = 0; i < n; i++) {
    const x = pcm.readInt16LE(i * 2) / 32768;
    energy += x * x;
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return energy > 0 ? power / (energy * n) : 0;
}

export async function speakerPcm(s: MediaSupervisor): Promise<Buffer | undefined> {
  const p = await s.probe();
  return p.speaker ? Buffer.from(p.speaker, 'base64') : undefined;
}

/** RMS of mono S16LE samples, 0..1. */
export function rms(pcm: Buffer): number {
  const n = Math.floor(pcm.length / 2);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (pcm.readInt16LE(i * 2) / 32768) ** 2;
  return n > 0 ? Math.sqrt(sum / n) : 0;
}

// ---- wall (kiosk page connection) helpers ----

/** A random wall session id as the daemon makes them (base64url, 128 bits). */
export const wallSessionId = () => randomBytes(16).toString('base64url');

/** The latest wall-slots report of a worker. */
export function latestWallSlots(
  s: MediaSupervisor,
): () =>
  | { slots: { mid: string; kind: string; senderIndex?: number }[]; activeSpeaker?: number }
  | undefined {
  let last:
    | { slots: { mid: string; kind: string; senderIndex?: number }[]; activeSpeaker?: number }
    | undefined;
  s.on('wall-slots', (m) => {
    last = m;
  });
  return () => last;
}

/** Every wall-error a worker reports, in order. */
export function wallErrors(s: MediaSupervisor): { sessionId: string; message: string }[] {
  const out: { sessionId: string; message: string }[] = [];
  s.on('wall-error', (e) => out.push(e));
  return out;
}

/**
 * A meeting of several workers through the relay's SFU (src/relay/sfu.ts) on 127.0.0.1: the SFU
 * offers to each, every worker answers and receives everyone else's media.
 */
export function sfuMeeting(
  rooms: MediaSupervisor[],
  codec: 'h264' | 'vp8' = 'h264',
): { close(): Promise<void> } {
  const byConnection = new Map<string, MediaSupervisor>();
  const sfu = new Sfu({
    log: silentLogger,
    videoCodec: codec === 'h264' ? 'H264' : 'VP8',
    mediaAddress: '127.0.0.1',
    sendSignal: (connection, payload) => byConnection.get(connection)?.signal(payload),
  });
  const unlink: (() => void)[] = [];
  rooms.forEach((room, i) => {
    const connection = `room-${i}`;
    byConnection.set(connection, room);
    const forward = (p: Parameters<MediaSupervisor['signal']>[0]) => void sfu.handleSignal(connection, p);
    room.on('signal', forward);
    unlink.push(() => room.off('signal', forward));
    sfu.add(connection, TEST_MEETING.meetingId, `participant-${i}`);
  });
  return {
    async close() {
      for (const u of unlink) u();
      await sfu.close();
    },
  };
}
