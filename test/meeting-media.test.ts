// Two room daemons with real media workers (GStreamer test sources, SFrame in the worker, werift to
// the relay's SFU): both show the same security code and each decrypts and decodes the other's audio
// and video, with no decryption failure.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import type { StatsMessage } from '../device/media/supervisor.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

let relay: Relay;
let caPem = '';
const daemons: Daemon[] = [];
const lastStats = new Map<Daemon, StatsMessage>();

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  caPem = ca.certPem;
  relay = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] } });
  for (const roomName of ['Boardroom', 'Huddle']) {
    const device = await issueDevelopmentDevice(ca, { roomName });
    const daemon = await startDaemon({
      relayUrl: relay.url,
      certificatePem: device.certificatePem,
      identityKeyPem: device.identityKeyPem,
      trustAnchors: { orgCaPem: ca.certPem },
      log: silentLogger,
      media: 'worker',
      mediaSettings: { width: 320, height: 180, fps: 15, tiles: 4, galleryWidth: 640, galleryHeight: 360 },
      loopbackOnly: true,
      controlPort: 0,
    });
    daemon.supervisor?.on('stats', (s) => lastStats.set(daemon, s));
    daemons.push(daemon);
  }
}, 60_000);

afterAll(async () => {
  for (const d of daemons) await d.stop();
  await relay?.close();
});

const decrypted = (d: Daemon | undefined) => {
  const c = d ? lastStats.get(d)?.counters : undefined;
  return {
    video: c?.videoFramesDecrypted ?? 0,
    audio: c?.audioFramesDecrypted ?? 0,
    failures: c?.decryptFailures ?? 0,
  };
};

describe('two rooms with real media workers', () => {
  it('meet with one security code and decode each other both ways', async () => {
    const [a, b] = daemons as [Daemon, Daemon];
    await expect
      .poll(() => a.state.get().relay.connected && b.state.get().relay.connected, { timeout: 15_000 })
      .toBe(true);
    const { meetingId } = await a.actions.startMeeting();
    await b.actions.joinMeeting(meetingId);
    await expect.poll(() => a.state.get().meeting?.waiting.length, { timeout: 10_000 }).toBe(1);
    await a.actions.admit(a.state.get().meeting?.waiting[0]?.participantId ?? '');
    await expect.poll(() => b.state.get().meeting?.securityCode, { timeout: 10_000 }).toBeDefined();
    expect(b.state.get().meeting?.securityCode).toBe(a.state.get().meeting?.securityCode);
    await expect
      .poll(
        () =>
          decrypted(a).video > 15 &&
          decrypted(b).video > 15 &&
          decrypted(a).audio > 30 &&
          decrypted(b).audio > 30,
        { timeout: 40_000 },
      )
      .toBe(true);
    // Decoded, not just decrypted: the remote sender shows up with frames in each gallery.
    for (const d of [a, b]) expect(lastStats.get(d)?.remotes.some((r) => r.videoFrames > 0)).toBe(true);
    expect(decrypted(a).failures + decrypted(b).failures).toBe(0);
  });

  it('after a relay restart both rooms reconnect, rekey and decode each other again', async () => {
    const [a, b] = daemons as [Daemon, Daemon];
    const epoch = b.state.get().meeting?.keyEpoch ?? 0;
    const port = relay.port;
    await relay.close();
    await expect
      .poll(() => a.state.get().relay.connected || b.state.get().relay.connected, { timeout: 10_000 })
      .toBe(false);
    relay = await startRelay({ log: silentLogger, trust: { caPems: [caPem] }, port });
    await expect
      .poll(
        () => (b.state.get().meeting?.keyEpoch ?? 0) > epoch && b.state.get().meeting?.status === 'active',
        { timeout: 30_000 },
      )
      .toBe(true);
    const before = { a: decrypted(a).video, b: decrypted(b).video };
    await expect
      .poll(() => decrypted(a).video > before.a + 15 && decrypted(b).video > before.b + 15, {
        timeout: 40_000,
      })
      .toBe(true);
    expect(b.state.get().meeting?.securityCode).toBe(a.state.get().meeting?.securityCode);
  });
});
