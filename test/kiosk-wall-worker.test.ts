// The wall routes in front of a real media worker (profile test, wall on) through the WallBroker:
// the session route returns the worker's real offer (11 sendonly video m-lines, ICE on 127.0.0.1
// only), an answer posted with the token reaches the worker and real Chromium connects; a second
// answer is refused, and a worker restart ends every session.
import { afterAll, describe, expect, it } from 'vitest';
import { initialState, StateStore } from '../device/daemon/state.js';
import { WallBroker } from '../device/daemon/wall-broker.js';
import { supervisorWallPort } from '../device/daemon/wall-port.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import { createKioskToken } from '../device/kiosk/wall-token.js';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import { silentLogger } from '../src/util/log.js';
import { RoomDouble } from './kiosk-room-double.js';
import { waitFor, worker } from './media-harness.js';
import {
  candidateAddresses,
  fingerprintOf,
  launchWallBrowser,
  type WallBrowser,
  WallPage,
} from './wall-page.js';

let supervisor: MediaSupervisor | undefined;
let server: ControlServer | undefined;
let browser: WallBrowser | undefined;

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await supervisor?.stop();
});

describe('wall API with a real media worker', () => {
  it('offers loopback-only video to the token holder, connects Chromium, and forgets sessions on a restart', async () => {
    const store = new StateStore(initialState('t'));
    supervisor = worker({ wall: true, codec: 'h264' }, { state: store, backoffMs: [200] });
    await supervisor.start();
    const broker = new WallBroker({ port: supervisorWallPort(supervisor), state: store, log: silentLogger });
    const token = createKioskToken();
    server = await createControlServer({
      state: store,
      actions: new RoomDouble(store),
      log: silentLogger,
      kioskToken: token,
      wall: broker,
    });
    const url = server.url;
    const post = (path: string, body: unknown, t = token) =>
      fetch(url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    expect((await post('/api/wall/sessions', {}, createKioskToken())).status).toBe(401);
    const res = await post('/api/wall/sessions', {});
    expect(res.status).toBe(201);
    const { sessionId, sdp: offer } = (await res.json()) as { sessionId: string; sdp: string };
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{24}$/);
    // The worker's real offer: loopback host candidates only, 11 sendonly video m-lines, nothing else.
    const addresses = candidateAddresses(offer);
    expect(addresses.length).toBeGreaterThan(0);
    expect(new Set(addresses)).toEqual(new Set(['127.0.0.1']));
    expect(offer).not.toMatch(/typ (srflx|relay)/);
    expect(offer.match(/^m=video /gm)).toHaveLength(11);
    expect(offer.match(/^a=sendonly/gm)).toHaveLength(11);
    expect(offer).not.toMatch(/^m=(audio|application)/m);
    expect(fingerprintOf(offer)).toMatch(/^a=fingerprint:sha-256 /);
    // The slot map reaches the state the page reads.
    await waitFor('wall slots in the state', () => (store.get().media.wall?.slots.length ?? 0) === 11);
    expect(store.get().media.wall?.slots.filter((s) => s.kind === 'self')).toHaveLength(1);

    // A real page answers through the authenticated route and the connection comes up.
    browser = await launchWallBrowser();
    const page = await WallPage.open(browser);
    const answer = await page.answer(offer);
    expect((await post(`/api/wall/sessions/${sessionId}/answer`, { sdp: answer })).status).toBe(200);
    await waitFor('the wall connection', async () => (await page.connectionState()) === 'connected', 30_000);
    // Nobody can swap in another answer (another DTLS fingerprint) for the same session.
    expect((await post(`/api/wall/sessions/${sessionId}/answer`, { sdp: answer })).status).toBe(409);

    // The worker dies: its sessions die with it, the page must open a new one.
    const pid = supervisor.pid;
    expect(pid).toBeDefined();
    const restarted = new Promise<void>((resolve) =>
      supervisor!.on('ready', ({ restarts }) => {
        if (restarts > 0) resolve();
      }),
    );
    process.kill(pid!, 'SIGKILL');
    await waitFor('the sessions to be dropped', () => broker.sessionIds.length === 0);
    await restarted;
    const stale = await fetch(`${url}/api/wall/sessions/${sessionId}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(stale.status).toBe(404);
    const again = await post('/api/wall/sessions', {});
    expect(again.status).toBe(201);
    const second = (await again.json()) as { sessionId: string; sdp: string };
    expect(second.sessionId).not.toBe(sessionId);
    expect(new Set(candidateAddresses(second.sdp))).toEqual(new Set(['127.0.0.1']));
    await page.close();
  }, 180_000);
});
