// Clients of a clustered relay (docs/relay.md "Several nodes"): the room's MeetingClient and the
// browser's WebMeeting follow `redirect` replies — safely. Real relays (src/relay/server.ts, one per
// "node") behind scripted loopback proxies that play the cluster: an entry node answers create/join
// with a redirect of the test's choosing (as a clustered node would, or as a hostile one might),
// a hosting node can close every device with 4012 (moved) or vanish.
//
// Followed: a redirect to a trusted node (an entry's host name), for create, join and resume; the
// meeting starts/joins/resumes there. Refused, with an alert and never a word of the redirect on
// the wall: a foreign host, a bad scheme, credentials in the URL, a loop (more than 3 in a row), a
// join or resume sent into another meeting. A dead entry is skipped; an unreachable pinned node sends
// the client back to its entries; 4012 reconnects through the entries and resumes.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeetingClient, RedirectRefused } from '../device/daemon/meeting-client.js';
import { MAX_REDIRECTS, RelayEndpoints, redirectAllowed } from '../device/daemon/relay-endpoints.js';
import { type DeviceState, initialState, StateStore } from '../device/daemon/state.js';
import { type CertificateAuthority, TrustStore } from '../src/pki/index.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { poll } from './adversary/rooms.js';
import { type DeviceRule, type Json, ScriptedRelayProxy } from './scripted-relay-proxy.js';
import { anchors, joinWeb, type WebParticipant, webIdentity } from './web-e2ee-helpers.js';

const REFUSED_ALERT = 'The relay tried to send this room to a server it does not trust';
const WEB_REFUSED_TEXT = 'The relay tried to send you to a server this organisation does not use';

type Redirect = { url: string; meetingId: string };

/**
 * One "node" of the scripted cluster: a proxy to a real relay that may answer create/join itself
 * with a redirect, close every device with 4012 (`moveAll`), or go away (`close`).
 */
class Node extends ScriptedRelayProxy {
  /** Decides create/join: a redirect to send back, or undefined to pass it on to the relay. */
  redirect: ((request: Json) => Redirect | undefined) | undefined;
  redirectsSent = 0;

  override onDevice: DeviceRule = (m) => {
    if ((m?.type === 'create' || m?.type === 'join') && this.redirect) {
      const r = this.redirect(m);
      if (r) {
        this.redirectsSent++;
        return { reply: { type: 'redirect', id: m.id, url: r.url, meetingId: r.meetingId } };
      }
    }
    return 'pass';
  };
}

interface Room {
  name: string;
  state: StateStore;
  client: MeetingClient;
  states: DeviceState[];
}

let ca: CertificateAuthority;
const relays: Relay[] = [];
const nodes: Node[] = [];
const rooms: Room[] = [];
let relayA: Relay;
let relayB: Relay;
let relayC: Relay;

async function relay(): Promise<Relay> {
  const r = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] } });
  relays.push(r);
  return r;
}

async function node(upstream: Relay): Promise<Node> {
  const n = await Node.start(upstream.url);
  nodes.push(n);
  return n;
}

async function room(name: string, entries: string[], opts: { wait?: boolean } = {}): Promise<Room> {
  const device = await issueDevelopmentDevice(ca, { roomName: name });
  const state = new StateStore(initialState('test'));
  const client = new MeetingClient({
    relayUrls: entries,
    credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
    trust: new TrustStore({ orgCaPem: ca.certPem }),
    state,
    log: silentLogger,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    resumeGraceMs: 10_000,
    tickMs: 100,
    connectTimeoutMs: 3000,
  });
  const r: Room = { name, state, client, states: [] };
  state.on('change', (s: DeviceState) => r.states.push(structuredClone(s)));
  rooms.push(r);
  const started = client.start();
  if (opts.wait !== false) await started;
  return r;
}

/** Everything the wall was ever given, as text (nothing a redirect says may be in it). */
const wall = (r: Room) => JSON.stringify(r.states);
const alertsOf = (r: Room) => r.state.get().alerts.map((a) => ({ id: a.id, message: a.message }));

async function admitted(leader: Room, joiner: Room): Promise<void> {
  const pid = joiner.client.participantId ?? '';
  await poll(
    () => leader.state.get().meeting?.waiting.some((w) => w.participantId === pid),
    10_000,
    'waiting',
  );
  await leader.client.admit(pid);
  await poll(
    () =>
      joiner.state.get().meeting?.status === 'active' &&
      joiner.client.securityCode !== undefined &&
      joiner.client.securityCode === leader.client.securityCode,
    10_000,
    'the joiner in the meeting with the same security code',
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  ca = await createDevelopmentCa();
  [relayA, relayB, relayC] = await Promise.all([relay(), relay(), relay()]);
}, 30_000);

afterAll(async () => {
  for (const r of rooms) await r.client.stop();
  for (const n of nodes) await n.close().catch(() => undefined);
  for (const r of relays) await r.close();
});

describe('the redirect rules (relay-endpoints.ts, pure)', () => {
  const entries = ['wss://relay.example.org/v1/ws', 'ws://10.0.0.5:7443/v1/ws'];

  it('follows only to an entry, an entry host name or an allow-listed origin', () => {
    expect(redirectAllowed('wss://relay.example.org:8443/v1/ws', entries)).toEqual({
      ok: true,
      url: 'wss://relay.example.org:8443/v1/ws',
    });
    expect(redirectAllowed('ws://10.0.0.5:7444/v1/ws', entries).ok).toBe(true);
    expect(redirectAllowed('wss://node7.example.org/v1/ws', entries).ok).toBe(false);
    expect(redirectAllowed('wss://node7.example.org/v1/ws', entries, ['wss://node7.example.org']).ok).toBe(
      true,
    );
    // An allow-listed origin is exact: scheme and port included.
    expect(redirectAllowed('ws://node7.example.org/v1/ws', entries, ['wss://node7.example.org']).ok).toBe(
      false,
    );
    expect(redirectAllowed('wss://relay.example.org.evil.test/v1/ws', entries).ok).toBe(false);
  });

  it('refuses bad schemes, credentials and a downgrade from TLS', () => {
    for (const url of [
      'https://relay.example.org/v1/ws',
      'javascript:alert(1)',
      'file:///etc/passwd',
      'not a url',
      'wss://user:pw@relay.example.org/v1/ws',
      'ws://relay.example.org/v1/ws', // the entry on that host is wss://
    ])
      expect(redirectAllowed(url, entries).ok, url).toBe(false);
  });

  it('pins, counts hops, refuses another meeting, and falls back to the entries', () => {
    const e = new RelayEndpoints(['ws://a.test/v1/ws', 'ws://b.test/v1/ws']);
    expect(e.next()).toBe('ws://a.test/v1/ws');
    expect(e.failed('ws://a.test/v1/ws')).toBe('entry');
    expect(e.next()).toBe('ws://b.test/v1/ws');
    expect(e.failed('ws://b.test/v1/ws')).toBe('round');
    expect(e.next()).toBe('ws://a.test/v1/ws');
    e.connected('ws://a.test/v1/ws');
    expect(e.redirect('ws://a.test:2/v1/ws', 'm-1', 'm-2')).toMatchObject({ ok: false });
    for (let i = 0; i < MAX_REDIRECTS; i++)
      expect(e.redirect(`ws://a.test:${i + 2}/v1/ws`, 'm-1').ok).toBe(true);
    expect(e.redirect('ws://a.test:9/v1/ws', 'm-1')).toMatchObject({ ok: false });
    expect(e.pinned).toBe('ws://a.test:4/v1/ws');
    expect(e.next()).toBe('ws://a.test:4/v1/ws');
    expect(e.failed('ws://a.test:4/v1/ws')).toBe('pinned');
    expect(e.next()).toBe('ws://a.test/v1/ws');
    expect(e.hops).toBe(0);
    expect(() => new RelayEndpoints(['http://a.test/'])).toThrow();
    expect(e.display('ws://a.test:4/some/words-a-relay-chose')).toBe('ws://a.test:4');
  });
});

describe('a room on a clustered relay', () => {
  let entry: Node;
  let hostB: Node;
  let hostC: Node;
  let alpha: Room;
  let beta: Room;
  const meetingId = 'clus-aaaa-0001';

  beforeAll(async () => {
    [entry, hostB, hostC] = await Promise.all([node(relayA), node(relayB), node(relayC)]);
  });

  it('follows a create and a join redirect to the hosting node; the meeting starts there', async () => {
    entry.redirect = (m) => ({ url: hostB.url, meetingId: m.meetingId ?? meetingId });
    alpha = await room('Alpha', [entry.url]);
    beta = await room('Beta', [entry.url]);
    const started = await alpha.client.startMeeting();
    expect(started.meetingId).toBe(meetingId);
    expect(relayB.registry.has(meetingId)).toBe(true);
    expect(relayA.registry.has(meetingId)).toBe(false);
    // The wall shows the node by its origin only.
    expect(alpha.state.get().relay.url).toBe(new URL(hostB.url).origin);
    await beta.client.joinMeeting(meetingId);
    await admitted(alpha, beta);
    expect(entry.redirectsSent).toBe(2);
    expect(alertsOf(alpha).filter((a) => a.id === 'relay')).toEqual([]);
  }, 30_000);

  it('a node closing with 4012 (moved): both rooms go back through the entry and resume on the new node', async () => {
    const betaId = beta.client.participantId;
    const epoch = beta.state.get().meeting?.keyEpoch ?? 0;
    const code = alpha.client.securityCode;
    entry.redirect = (m) => ({ url: hostC.url, meetingId: m.meetingId ?? meetingId });
    hostB.moveAll();
    await poll(() => relayC.registry.has(meetingId), 15_000, 'the meeting re-created on node C');
    await poll(
      () =>
        beta.state.get().meeting?.status === 'active' &&
        (beta.state.get().meeting?.keyEpoch ?? 0) > epoch &&
        alpha.state.get().meeting?.status === 'active',
      20_000,
      'both rooms back in the meeting with a fresh key',
    );
    expect(beta.client.participantId).toBe(betaId);
    expect(alpha.client.securityCode).toBe(code);
    expect(beta.client.securityCode).toBe(code);
    expect(alpha.state.get().relay.url).toBe(new URL(hostC.url).origin);
  }, 40_000);

  it('a pinned node gone → back to the entry; a resume redirect into another meeting is refused', async () => {
    const other = 'clus-zzzz-other';
    entry.redirect = () => ({ url: hostB.url, meetingId: other });
    await hostC.close();
    for (const r of [alpha, beta])
      await poll(() => r.state.get().meeting?.status === 'ended', 20_000, `${r.name} refused the resume`);
    for (const r of [alpha, beta]) {
      expect(alertsOf(r)).toContainEqual({ id: 'relay', message: REFUSED_ALERT });
      expect(wall(r)).not.toContain(other);
      expect(r.client.meetingId).toBeUndefined();
    }
    expect(relayB.registry.has(other)).toBe(false);
  }, 40_000);
});

describe('redirects a room refuses', () => {
  let entry: Node;
  let hostB: Node;

  beforeAll(async () => {
    [entry, hostB] = await Promise.all([node(relayA), node(relayB)]);
  });

  it('a foreign host, a bad scheme or credentials: refused with an alert, nothing of it on the wall', async () => {
    const gamma = await room('Gamma', [entry.url]);
    const port = new URL(hostB.url).port;
    for (const url of [
      `ws://localhost:${port}/v1/ws`, // another host name for the same box: not an entry's
      'wss://relay.evil.test/v1/ws',
      `http://127.0.0.1:${port}/v1/ws`,
      `ws://admin:hunter2@127.0.0.1:${port}/v1/ws`,
    ]) {
      entry.redirect = () => ({ url, meetingId: 'clus-evil-0001' });
      await expect(gamma.client.startMeeting()).rejects.toBeInstanceOf(RedirectRefused);
      expect(alertsOf(gamma)).toContainEqual({ id: 'relay', message: REFUSED_ALERT });
      expect(wall(gamma)).not.toContain('evil');
      expect(wall(gamma)).not.toContain('hunter2');
      expect(wall(gamma)).not.toContain('localhost');
      expect(gamma.client.meetingId).toBeUndefined();
    }
    // Never left the entry for any of them.
    expect(entry.connections).toBe(1);
    expect(hostB.connections).toBe(0);
    expect(gamma.client.connected).toBe(true);
  }, 30_000);

  it('a join redirected into another meeting is refused', async () => {
    const delta = await room('Delta', [entry.url]);
    entry.redirect = () => ({ url: hostB.url, meetingId: 'clus-not-mine' });
    await expect(delta.client.joinMeeting('clus-wanted')).rejects.toBeInstanceOf(RedirectRefused);
    expect(alertsOf(delta)).toContainEqual({ id: 'relay', message: REFUSED_ALERT });
    expect(hostB.connections).toBe(0);
  }, 30_000);

  it('a redirect nobody asked for (replayed, or forged out of the blue) moves nothing', async () => {
    const hotel = await room('Hotel', [entry.url]);
    entry.redirect = undefined;
    const { meetingId } = await hotel.client.startMeeting();
    const connections = entry.connections;
    for (const id of [1, 999])
      entry.inject({ type: 'redirect', id, url: hostB.url, meetingId: 'clus-hijack-01' });
    await new Promise((r) => setTimeout(r, 500));
    expect(hotel.client.meetingId).toBe(meetingId);
    expect(hotel.client.connected).toBe(true);
    expect(entry.connections).toBe(connections);
    expect(hostB.connections).toBe(0);
    expect(wall(hotel)).not.toContain('hijack');
  }, 30_000);

  it('a redirect loop stops after 3 redirects in a row', async () => {
    const [one, two] = await Promise.all([node(relayA), node(relayA)]);
    one.redirect = (m) => ({ url: two.url, meetingId: m.meetingId ?? 'clus-loop-0001' });
    two.redirect = (m) => ({ url: one.url, meetingId: m.meetingId ?? 'clus-loop-0001' });
    const echo = await room('Echo', [one.url]);
    await expect(echo.client.startMeeting()).rejects.toBeInstanceOf(RedirectRefused);
    expect(one.redirectsSent + two.redirectsSent).toBe(MAX_REDIRECTS + 1);
    expect(alertsOf(echo)).toContainEqual({ id: 'relay', message: REFUSED_ALERT });
  }, 30_000);

  it('a dead entry is skipped', async () => {
    const dead = `ws://127.0.0.1:${await freePort()}/v1/ws`;
    entry.redirect = undefined;
    const t0 = Date.now();
    const fox = await room('Foxtrot', [dead, entry.url]);
    expect(Date.now() - t0).toBeLessThan(3000);
    const { meetingId } = await fox.client.startMeeting();
    expect(relayA.registry.has(meetingId)).toBe(true);
    expect(fox.state.get().relay).toEqual({ connected: true, url: entry.url });
  }, 30_000);
});

describe('the browser on a clustered relay', () => {
  let entry: Node;
  let hostB: Node;
  let hostC: Node;
  let golf: Room;
  const webs: WebParticipant[] = [];

  beforeAll(async () => {
    [entry, hostB, hostC] = await Promise.all([node(relayA), node(relayB), node(relayC)]);
  });

  afterAll(async () => {
    for (const w of webs) await w.meeting.leave();
  });

  it('follows a join redirect to the hosting node and is admitted there', async () => {
    const id = 'clus-web-0001';
    entry.redirect = (m) => ({ url: hostB.url, meetingId: m.meetingId ?? id });
    golf = await room('Golf', [entry.url]);
    await golf.client.startMeeting();
    const person = await webIdentity(ca, 'Hana Hill');
    const web = await joinWeb(entry.url, id, person, anchors(ca.certPem));
    webs.push(web);
    expect(web.status()).toBe('waiting');
    const pid = web.meeting.participantId;
    await poll(
      () => golf.state.get().meeting?.waiting.some((w) => w.participantId === pid),
      10_000,
      'waiting',
    );
    await golf.client.admit(pid);
    await poll(() => web.status() === 'admitted', 10_000, 'the person admitted');
    await poll(() => web.view()?.securityCode === golf.client.securityCode, 10_000, 'the same security code');
  }, 30_000);

  it('closed with 4012 (moved): back through the link relay, resumed on the new node with the same id', async () => {
    const web = webs[0] as WebParticipant;
    const pid = web.meeting.participantId;
    const epoch = web.view()?.epoch ?? 0;
    entry.redirect = (m) => ({ url: hostC.url, meetingId: m.meetingId ?? 'clus-web-0001' });
    hostB.moveAll();
    await poll(
      () => web.status() === 'admitted' && (web.view()?.epoch ?? 0) > epoch,
      20_000,
      'the person back in the meeting with a fresh key',
    );
    expect(web.meeting.participantId).toBe(pid);
    expect(relayC.registry.has('clus-web-0001')).toBe(true);
    expect(web.view()?.securityCode).toBe(golf.client.securityCode);
  }, 40_000);

  it('refuses a redirect to a foreign host: a fixed text on the page, nothing of the redirect', async () => {
    entry.redirect = () => ({ url: 'wss://relay.evil.test/v1/ws', meetingId: 'clus-web-0002' });
    const person = await webIdentity(ca, 'Ivan Ink');
    const web = await joinWeb(entry.url, 'clus-web-0002', person, anchors(ca.certPem));
    expect(web.status()).toBe('refused');
    const text = JSON.stringify(web.page);
    expect(text).toContain(WEB_REFUSED_TEXT);
    expect(text).not.toContain('evil');
  }, 30_000);

  it('stops a redirect loop after 3 redirects in a row', async () => {
    const [one, two] = await Promise.all([node(relayA), node(relayA)]);
    one.redirect = (m) => ({ url: two.url, meetingId: m.meetingId });
    two.redirect = (m) => ({ url: one.url, meetingId: m.meetingId });
    const person = await webIdentity(ca, 'Jon Jade');
    const web = await joinWeb(one.url, 'clus-web-loop', person, anchors(ca.certPem));
    expect(web.status()).toBe('refused');
    expect(JSON.stringify(web.page)).toContain(WEB_REFUSED_TEXT);
    expect(one.redirectsSent + two.redirectsSent).toBe(MAX_REDIRECTS + 1);
  }, 30_000);
});
