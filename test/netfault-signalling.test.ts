// Network faults between a room and the relay: two room daemons and a relay on loopback, in an E2EE
// meeting, once with synthetic media (SFrame frames over real werift PeerConnections through the
// SFU) and once with the real media worker (GStreamer test sources, decoded). The joining room
// reaches the relay through a fault-injecting TCP proxy (test/fault-proxy.ts); the leading room
// connects directly. Liveness timeouts are short so each fault resolves in seconds.
//
// What is observed is what the room shows: its local control API (GET /api/state).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, type MediaEngine, startDaemon } from '../device/daemon/daemon.js';
import { framesFrom as framesFromStats } from './frames-from.js';
import type { DeviceState } from '../device/daemon/state.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, RELAY_WS_PATH, startRelay } from '../src/relay/server.js';
import type { StatsMessage } from '../device/media/supervisor.js';
import { silentLogger } from '../src/util/log.js';
import { TcpFaultProxy } from './fault-proxy.js';

/** Relay: a connection silent for one round is dropped, so a cut room leaves within 0.6–1.2 s. */
const RELAY_LIVENESS_MS = 600;
/** Room: ping every 250 ms, give up on the connection after 1.5 s of silence. */
const ROOM_LIVENESS = { intervalMs: 250, timeoutMs: 1_500 };

/** What the room's screen is driven by: its local control API. */
async function stateOf(daemon: Daemon): Promise<DeviceState> {
  const response = await fetch(`${daemon.controlUrl}/api/state`);
  return (await response.json()) as DeviceState;
}

const poll = <T>(f: () => T | Promise<T>, timeout = 15_000) => expect.poll(f, { timeout, interval: 100 });

/**
 * One relay, a leading room connected directly and a joining room behind the fault proxy. With a
 * relay faster than the room (the default here) the relay drops a cut room first; with a slower one
 * the room notices first and is back before the relay has let go of its old connection.
 */
function faultSuite(
  engine: Extract<MediaEngine, 'synthetic' | 'worker'>,
  relayLivenessMs = RELAY_LIVENESS_MS,
): void {
  let ca: Awaited<ReturnType<typeof createDevelopmentCa>>;
  let relay: Relay;
  let proxy: TcpFaultProxy;
  let leader: Daemon;
  let joiner: Daemon;
  const daemons: Daemon[] = [];
  const lastStats = new Map<Daemon, StatsMessage>();

  async function room(roomName: string, relayUrl: string): Promise<Daemon> {
    const device = await issueDevelopmentDevice(ca, { roomName });
    const daemon = await startDaemon({
      relayUrl,
      certificatePem: device.certificatePem,
      identityKeyPem: device.identityKeyPem,
      trustAnchors: { orgCaPem: ca.certPem },
      log: silentLogger,
      media: engine,
      mediaSettings: { width: 320, height: 180, fps: 15, tiles: 4, galleryWidth: 640, galleryHeight: 360 },
      loopbackOnly: true,
      controlPort: 0,
      meetingTiming: {
        liveness: ROOM_LIVENESS,
        connectTimeoutMs: 2_000,
        reconnectMinMs: 100,
        reconnectMaxMs: 500,
        tickMs: 250,
      },
    });
    daemon.supervisor?.on('stats', (st) => lastStats.set(daemon, st));
    daemons.push(daemon);
    return daemon;
  }

  const framesFrom = (receiver: Daemon, sender: Daemon): number =>
    framesFromStats(receiver, sender, lastStats);

  /**
   * After the link is back: the cut room reconnects, asks to join again (the relay dropped it, so the
   * leader decides, as for any joiner), is admitted, holds the current key with the same security
   * code, and media flows both ways again.
   */
  async function rejoinsWithTheSameCode(code: string | undefined): Promise<void> {
    await poll(async () => (await stateOf(joiner)).relay.connected).toBe(true);
    // Back in the meeting by its rules: a room that dropped out waits for the leader again.
    await poll(async () => (await stateOf(leader)).meeting?.waiting.length).toBe(1);
    await leader.actions.admit((await stateOf(leader)).meeting?.waiting[0]?.participantId ?? '');
    await poll(async () => {
      const [l, j] = [await stateOf(leader), await stateOf(joiner)];
      return (
        j.meeting?.status === 'active' &&
        l.meeting?.roster.length === 2 &&
        j.meeting?.keyEpoch === l.meeting?.keyEpoch &&
        j.meeting?.securityCode === l.meeting?.securityCode
      );
    }).toBe(true);
    expect((await stateOf(joiner)).meeting?.securityCode).toBe(code);
    expect((await stateOf(joiner)).alerts.some((a) => a.id === 'relay')).toBe(false);
    const fromLeader = framesFrom(joiner, leader);
    const fromJoiner = framesFrom(leader, joiner);
    await poll(
      () => framesFrom(joiner, leader) > fromLeader + 10 && framesFrom(leader, joiner) > fromJoiner + 10,
    ).toBe(true);
  }

  beforeAll(async () => {
    ca = await createDevelopmentCa();
    relay = await startRelay({
      log: silentLogger,
      trust: { caPems: [ca.certPem] },
      livenessIntervalMs: relayLivenessMs,
    });
    proxy = await TcpFaultProxy.start({ port: relay.port });
    leader = await room('Boardroom', relay.url);
    joiner = await room('Huddle', `ws://127.0.0.1:${proxy.port}${RELAY_WS_PATH}`);
  }, 60_000);

  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await proxy?.close();
    await relay?.close();
  });

  describe(`a room behind a faulty link (${engine} media, relay liveness ${relayLivenessMs} ms)`, () => {
    it('meets through the proxy: admitted, same security code, media both ways', async () => {
      await poll(
        async () => (await stateOf(leader)).relay.connected && (await stateOf(joiner)).relay.connected,
      ).toBe(true);
      const { meetingId } = await leader.actions.startMeeting();
      await joiner.actions.joinMeeting(meetingId);
      await poll(async () => (await stateOf(leader)).meeting?.waiting.length).toBe(1);
      await leader.actions.admit((await stateOf(leader)).meeting?.waiting[0]?.participantId ?? '');
      await poll(async () => (await stateOf(joiner)).meeting?.securityCode).toBeDefined();
      expect((await stateOf(joiner)).meeting?.securityCode).toBe(
        (await stateOf(leader)).meeting?.securityCode,
      );
      await poll(() => framesFrom(leader, joiner) > 5 && framesFrom(joiner, leader) > 5).toBe(true);
    });

    if (relayLivenessMs > ROOM_LIVENESS.timeoutMs) {
      it('short cut: the room is back before the relay drops its old self; admitted, the old one goes', async () => {
        const code = (await stateOf(leader)).meeting?.securityCode;
        proxy.setMode('blackhole');
        await poll(async () => (await stateOf(joiner)).relay.connected).toBe(false);
        proxy.setMode('pass');
        // Back and asking to join while the relay still holds the old connection in the meeting.
        await poll(async () => (await stateOf(leader)).meeting?.waiting.length).toBe(1);
        expect((await stateOf(leader)).meeting?.roster).toHaveLength(2);
        await leader.actions.admit((await stateOf(leader)).meeting?.waiting[0]?.participantId ?? '');
        // Then the relay's liveness drops the old connection; the leader removes it and rekeys.
        await poll(async () => {
          const [l, j] = [await stateOf(leader), await stateOf(joiner)];
          return (
            j.meeting?.status === 'active' &&
            l.meeting?.roster.length === 2 &&
            j.meeting?.roster.length === 2 &&
            j.meeting?.keyEpoch === l.meeting?.keyEpoch &&
            j.meeting?.securityCode === code
          );
        }).toBe(true);
        const fromLeader = framesFrom(joiner, leader);
        const fromJoiner = framesFrom(leader, joiner);
        await poll(
          () => framesFrom(joiner, leader) > fromLeader + 10 && framesFrom(leader, joiner) > fromJoiner + 10,
        ).toBe(true);
      });
      return;
    }

    it('silent cut: the room notices, the relay drops it, the other room rekeys; restored, it rejoins', async () => {
      const before = await stateOf(leader);
      const code = before.meeting?.securityCode;
      const epochBefore = before.meeting?.keyEpoch ?? 0;
      expect(before.meeting?.roster).toHaveLength(2);

      proxy.setMode('blackhole');
      // The room: its liveness check gives up on the silent connection and says so on screen.
      await poll(async () => {
        const s = await stateOf(joiner);
        return !s.relay.connected && s.alerts.some((a) => a.id === 'relay' && /unreachable/i.test(a.message));
      }).toBe(true);
      // The relay: the silent participant is dropped, the leader removes it from the key and rekeys.
      await poll(async () => {
        const s = await stateOf(leader);
        return s.meeting?.roster.length === 1 && (s.meeting?.keyEpoch ?? 0) > epochBefore;
      }).toBe(true);
      expect(proxy.droppedBytes).toBeGreaterThan(0);
      // Still cut: the room keeps trying (connections that never complete) and stays disconnected.
      expect((await stateOf(joiner)).relay.connected).toBe(false);

      proxy.setMode('pass');
      await rejoinsWithTheSameCode(code);
    });

    it('reset (RST): the room sees the close at once, the relay drops it at once; it rejoins', async () => {
      const before = await stateOf(leader);
      const code = before.meeting?.securityCode;
      const epochBefore = before.meeting?.keyEpoch ?? 0;
      proxy.setMode('close');
      await poll(async () => {
        const [l, j] = [await stateOf(leader), await stateOf(joiner)];
        return (
          !j.relay.connected &&
          j.alerts.some((a) => a.id === 'relay') &&
          l.meeting?.roster.length === 1 &&
          (l.meeting?.keyEpoch ?? 0) > epochBefore
        );
      }).toBe(true);
      proxy.setMode('pass');
      await rejoinsWithTheSameCode(code);
    });
  });
}

faultSuite('synthetic');
faultSuite('worker');
faultSuite('synthetic', 4_000);
