// The wall routes of the local control API over real HTTP, with a stand-in worker behind the
// WallBroker: only the holder of this daemon start's kiosk token opens, answers and closes wall
// sessions; every other caller (no token, a wrong one, another daemon's, a foreign origin, a
// rebinding host name, a form post, a web page on another loopback port in real Chromium) is
// refused before the worker hears of it. The token file's mode and contents, and the token's
// absence from logs and from the state the page reads.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { initialState, StateStore } from '../device/daemon/state.js';
import { WallBroker, type WallPort, type WallSlots } from '../device/daemon/wall-broker.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import {
  bearerToken,
  createKioskToken,
  readKioskToken,
  TOKEN_PATTERN,
  tokenMatches,
  writeKioskToken,
} from '../device/kiosk/wall-token.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { silentLogger } from '../src/util/log.js';
import { launchChromium } from './kiosk-browser.js';
import { RoomDouble } from './kiosk-room-double.js';

/** The media worker as the broker sees it: records every call, answers with a recognisable offer. */
class FakeWallPort implements WallPort {
  opened: string[] = [];
  answers: { sessionId: string; sdp: string }[] = [];
  closed: string[] = [];
  failNext: string | undefined;
  readonly #slots = new Set<(s: WallSlots) => void>();
  readonly #gone = new Set<() => void>();

  async openWall(sessionId: string): Promise<{ sdp: string }> {
    this.opened.push(sessionId);
    if (this.failNext) {
      const message = this.failNext;
      this.failNext = undefined;
      throw new Error(message);
    }
    return { sdp: `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=${sessionId}\r\na=ice-pwd:fake\r\n` };
  }
  answerWall(sessionId: string, sdp: string): void {
    this.answers.push({ sessionId, sdp });
  }
  closeWall(sessionId: string): void {
    this.closed.push(sessionId);
  }
  onWallSlots(listener: (s: WallSlots) => void): () => void {
    this.#slots.add(listener);
    return () => this.#slots.delete(listener);
  }
  onWorkerGone(listener: () => void): () => void {
    this.#gone.add(listener);
    return () => this.#gone.delete(listener);
  }
  emitSlots(s: WallSlots): void {
    for (const l of this.#slots) l(s);
  }
  workerGone(): void {
    for (const l of this.#gone) l();
  }
  get calls(): number {
    return this.opened.length + this.answers.length + this.closed.length;
  }
}

let store: StateStore;
let port: FakeWallPort;
let broker: WallBroker;
let server: ControlServer;
let token: string;
/** Everything the server logged (a plain pino at trace level: no redaction of its own). */
let logLines: string[];
const secrets: string[] = [];

beforeEach(async () => {
  store = new StateStore(initialState('0.1.0-test'));
  store.update((s) => {
    s.phase = 'idle';
  });
  port = new FakeWallPort();
  logLines = [];
  const log = pino({ level: 'trace' }, { write: (line: string) => logLines.push(line) });
  broker = new WallBroker({ port, state: store, log });
  token = createKioskToken();
  secrets.push(token);
  server = await createControlServer({
    state: store,
    actions: new RoomDouble(store),
    log,
    kioskToken: token,
    wall: broker,
  });
});

afterEach(async () => {
  await server.close();
  // Whatever the test did, neither this token nor any other one it used reached the log.
  const logged = logLines.join('');
  for (const secret of secrets) expect(logged).not.toContain(secret);
  secrets.length = 0;
});

function call(
  method: string,
  path: string,
  o: { token?: string; body?: unknown; headers?: Record<string, string>; base?: string } = {},
) {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  if (o.body !== undefined) headers['content-type'] ??= 'application/json';
  return fetch((o.base ?? server.url) + path, {
    method,
    headers,
    ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
  });
}

async function openSession(t = token): Promise<{ sessionId: string; sdp: string }> {
  const res = await call('POST', '/api/wall/sessions', { token: t, body: {} });
  expect(res.status).toBe(201);
  return (await res.json()) as { sessionId: string; sdp: string };
}

/** A raw request with a forged Host header, as a DNS-rebinding page's browser would send it. */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<number> {
  const url = new URL(server.url);
  return new Promise<number>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('wall session routes', () => {
  it('open, answer and close with the token: the worker gets each, once, with an unguessable id', async () => {
    const { sessionId, sdp } = await openSession();
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(port.opened).toEqual([sessionId]);
    expect(sdp).toContain(`s=${sessionId}`);
    const second = await openSession();
    expect(second.sessionId).not.toBe(sessionId);

    const answer = await call('POST', `/api/wall/sessions/${sessionId}/answer`, {
      token,
      body: { sdp: 'v=0\r\na=fingerprint:sha-256 AA:BB\r\n' },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('cache-control')).toBe('no-store');
    expect(await answer.json()).toEqual({ ok: true });
    expect(port.answers).toEqual([{ sessionId, sdp: 'v=0\r\na=fingerprint:sha-256 AA:BB\r\n' }]);

    const del = await call('DELETE', `/api/wall/sessions/${sessionId}`, { token });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ ok: true });
    expect(port.closed).toEqual([sessionId]);
    expect(broker.sessionIds).toEqual([second.sessionId]);
  });

  it('refuses a missing, wrong or other daemon’s token with 401, before the worker hears of it', async () => {
    const other = createKioskToken();
    secrets.push(other);
    const otherStore = new StateStore(initialState('t'));
    const otherPort = new FakeWallPort();
    const otherServer = await createControlServer({
      state: otherStore,
      actions: new RoomDouble(otherStore),
      log: silentLogger,
      kioskToken: other,
      wall: new WallBroker({ port: otherPort, state: otherStore, log: silentLogger }),
    });
    try {
      const { sessionId } = await openSession();
      port.opened = [];
      const wrongs: { token?: string; headers?: Record<string, string> }[] = [
        {},
        { token: '' },
        { token: other }, // the other daemon's real token
        { token: `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` }, // one character off
        { token: `${token}x` },
        { token: token.slice(0, 20) },
        { headers: { authorization: token } }, // no scheme
        { headers: { authorization: `Basic ${Buffer.from(`kiosk:${token}`).toString('base64')}` } },
        { headers: { authorization: `Bearer ${token}, Bearer ${token}` } },
      ];
      for (const w of wrongs) {
        const opts = { ...w, body: {} };
        const open = await call('POST', '/api/wall/sessions', opts);
        expect(open.status, JSON.stringify(w)).toBe(401);
        expect(open.headers.get('www-authenticate')).toBe('Bearer');
        expect(await open.json()).toEqual({ error: 'the wall needs the kiosk token' });
        const answer = await call('POST', `/api/wall/sessions/${sessionId}/answer`, {
          ...w,
          body: { sdp: 'v=0' },
        });
        expect(answer.status).toBe(401);
        const del = await call('DELETE', `/api/wall/sessions/${sessionId}`, w);
        expect(del.status).toBe(401);
      }
      // Each daemon's token opens its own wall only.
      expect(
        (await call('POST', '/api/wall/sessions', { token, body: {}, base: otherServer.url })).status,
      ).toBe(401);
      expect(
        (await call('POST', '/api/wall/sessions', { token: other, body: {}, base: otherServer.url })).status,
      ).toBe(201);
      expect(port.calls).toBe(0);
      expect(otherPort.opened).toHaveLength(1);
      expect(broker.sessionIds).toEqual([sessionId]);
      // The refusals were logged (so the log was watched), never with the header.
      expect(logLines.filter((l) => l.includes('wall request refused')).length).toBe(wrongs.length * 3);
      expect(logLines.join('')).not.toMatch(/Bearer|Basic /);
    } finally {
      await otherServer.close();
    }
  });

  it('keeps the Host, Origin and content-type guards in front of the token', async () => {
    const foreign = await call('POST', '/api/wall/sessions', {
      token,
      body: {},
      headers: { origin: 'http://evil.example' },
    });
    expect(foreign.status).toBe(403);
    const rebinding = await rawRequest(
      'POST',
      '/api/wall/sessions',
      {
        host: `evil.example:${new URL(server.url).port}`,
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
      },
      '{}',
    );
    expect(rebinding).toBe(403);
    const rebindingDelete = await rawRequest('DELETE', '/api/wall/sessions/x', {
      host: 'attacker.example',
      authorization: `Bearer ${token}`,
    });
    expect(rebindingDelete).toBe(403);
    // What a cross-origin <form> or a no-preflight fetch could send.
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ]) {
      const res = await call('POST', '/api/wall/sessions', {
        token,
        body: '{}',
        headers: { 'content-type': type },
      });
      expect(res.status, type).toBe(415);
    }
    // A CORS preflight is never granted, so a page elsewhere cannot send the Authorization header.
    const preflight = await call('OPTIONS', '/api/wall/sessions', {
      headers: {
        origin: 'http://127.0.0.1:1',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.ok).toBe(false);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
    expect(port.calls).toBe(0);
  });

  it('answers a guessed or closed session id with 404, and a second answer with 409', async () => {
    const { sessionId } = await openSession();
    for (const guess of [
      createKioskToken().slice(0, 24), // well-formed, random
      `${sessionId.slice(0, -1)}${sessionId.endsWith('A') ? 'B' : 'A'}`,
      'session',
      '..%2F..%2Fetc',
    ]) {
      const answer = await call('POST', `/api/wall/sessions/${guess}/answer`, {
        token,
        body: { sdp: 'v=0' },
      });
      expect(answer.status, guess).toBe(404);
      expect(((await answer.json()) as { error: string }).error).toMatch(
        /no such wall session|no such endpoint/,
      );
      expect((await call('DELETE', `/api/wall/sessions/${guess}`, { token })).status).toBe(404);
    }
    expect(port.answers).toEqual([]);
    expect(port.closed).toEqual([]);

    const first = await call('POST', `/api/wall/sessions/${sessionId}/answer`, {
      token,
      body: { sdp: 'v=0 one' },
    });
    expect(first.status).toBe(200);
    // Someone who learnt the id (another tab, a replay) cannot swap in their own answer.
    const again = await call('POST', `/api/wall/sessions/${sessionId}/answer`, {
      token,
      body: { sdp: 'v=0 two' },
    });
    expect(again.status).toBe(409);
    expect(port.answers).toEqual([{ sessionId, sdp: 'v=0 one' }]);

    expect((await call('DELETE', `/api/wall/sessions/${sessionId}`, { token })).status).toBe(200);
    expect((await call('DELETE', `/api/wall/sessions/${sessionId}`, { token })).status).toBe(404);
    const late = await call('POST', `/api/wall/sessions/${sessionId}/answer`, {
      token,
      body: { sdp: 'v=0' },
    });
    expect(late.status).toBe(404);
    expect(port.closed).toEqual([sessionId]);
  });

  it('keeps four sessions: a fifth closes the oldest', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await openSession()).sessionId);
    expect(port.opened).toEqual(ids);
    expect(port.closed).toEqual([ids[0]]);
    expect(broker.sessionIds).toEqual(ids.slice(1));
    const stale = await call('POST', `/api/wall/sessions/${ids[0]}/answer`, { token, body: { sdp: 'v=0' } });
    expect(stale.status).toBe(404);
    for (const id of ids.slice(1)) {
      expect(
        (await call('POST', `/api/wall/sessions/${id}/answer`, { token, body: { sdp: 'v=0' } })).status,
      ).toBe(200);
    }
    ids.push((await openSession()).sessionId);
    expect(port.closed).toEqual([ids[0], ids[1]]);
    expect(broker.sessionIds).toEqual(ids.slice(2));
  });

  it('refuses bad bodies with 400', async () => {
    const { sessionId } = await openSession();
    const path = `/api/wall/sessions/${sessionId}/answer`;
    for (const body of [
      {},
      { sdp: '' },
      { sdp: 5 },
      { sdp: 'v=0', extra: true },
      { sdp: 'x'.repeat(65537) },
    ]) {
      const res = await call('POST', path, { token, body });
      expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(/^invalid request: body/);
    }
    expect((await call('POST', path, { token, body: 'x'.repeat(200 * 1024) })).status).toBe(413);
    expect((await call('POST', '/api/wall/sessions', { token, body: { please: 1 } })).status).toBe(400);
    expect(port.answers).toEqual([]);
    // 64 KiB of SDP with its line breaks (escaped in JSON) still fits.
    const big = `${'a=x-filler:0123456789abcdef\r\n'.repeat(2259)}`.slice(0, 65536);
    const ok = await call('POST', path, { token, body: { sdp: big } });
    expect(ok.status).toBe(200);
    expect(port.answers[0]?.sdp).toBe(big);
  });

  it('answers 503 without a wall or when the worker cannot open one; 401 still comes first', async () => {
    port.failNext = 'the media worker is not running';
    const failed = await call('POST', '/api/wall/sessions', { token, body: {} });
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as { error: string }).error).toMatch(
      /not available: the media worker is not running/,
    );
    expect(broker.sessionIds).toEqual([]);

    const bare = new StateStore(initialState('t'));
    const noWall = await createControlServer({
      state: bare,
      actions: new RoomDouble(bare),
      log: silentLogger,
      kioskToken: token,
    });
    const noToken = await createControlServer({
      state: bare,
      actions: new RoomDouble(bare),
      log: silentLogger,
    });
    try {
      const res = await call('POST', '/api/wall/sessions', { token, body: {}, base: noWall.url });
      expect(res.status).toBe(503);
      expect((await call('DELETE', '/api/wall/sessions/abc', { token, base: noWall.url })).status).toBe(503);
      expect(
        (await call('POST', '/api/wall/sessions', { token: 'x', body: {}, base: noWall.url })).status,
      ).toBe(401);
      // A server given no token authorises nobody.
      expect((await call('POST', '/api/wall/sessions', { token, body: {}, base: noToken.url })).status).toBe(
        401,
      );
    } finally {
      await noWall.close();
      await noToken.close();
    }
  });

  it('drops every session when the worker goes away, and mirrors the slots into the state', async () => {
    const { sessionId } = await openSession();
    const slots: WallSlots = {
      slots: [
        { mid: '0', kind: 'remote', senderIndex: 3 },
        { mid: '9', kind: 'self' },
        { mid: '10', kind: 'content' },
      ],
      activeSpeaker: 3,
    };
    port.emitSlots(slots);
    const rev = store.get().revision;
    port.emitSlots(structuredClone(slots)); // unchanged: no new revision
    expect(store.get().revision).toBe(rev);
    const state = (await (await fetch(`${server.url}/api/state`)).json()) as ReturnType<StateStore['get']>;
    expect(state.media.wall).toEqual(slots);

    port.workerGone();
    expect(broker.sessionIds).toEqual([]);
    expect(store.get().media.wall).toBeUndefined();
    const answer = await call('POST', `/api/wall/sessions/${sessionId}/answer`, {
      token,
      body: { sdp: 'v=0' },
    });
    expect(answer.status).toBe(404);
    // Nothing to close in a worker that is gone.
    expect(port.closed).toEqual([]);
  });

  it('never shows the token in the state, the event stream, health or errors', async () => {
    const { sessionId } = await openSession();
    port.emitSlots({ slots: [{ mid: '0', kind: 'remote', senderIndex: 1 }] });
    const texts = [
      await (await fetch(`${server.url}/api/state`)).text(),
      await (await fetch(`${server.url}/healthz`)).text(),
      await (await call('POST', '/api/wall/sessions', { token: 'nope', body: {} })).text(),
      await (await call('POST', `/api/wall/sessions/zz/answer`, { token, body: { sdp: 'v=0' } })).text(),
      await (await call('GET', `/api/nothing`, { token })).text(),
    ];
    const controller = new AbortController();
    const events = await fetch(`${server.url}/api/events`, { signal: controller.signal });
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    let stream = '';
    while (!stream.includes('event: state')) stream += (await reader.read()).value ?? '';
    controller.abort();
    texts.push(stream);
    for (const text of texts) {
      expect(text).not.toContain(token);
      // Session ids are the page's own business too.
      expect(text).not.toContain(sessionId);
    }
    expect(texts[0]).toContain('"wall"');
  });
});

describe('kiosk token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-kiosk-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is 32 random bytes, compared in constant time, read from a 0600 file', async () => {
    const t = createKioskToken();
    expect(t).toMatch(TOKEN_PATTERN);
    expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    expect(createKioskToken()).not.toBe(t);
    expect(tokenMatches(t, t)).toBe(true);
    expect(tokenMatches(undefined, t)).toBe(false);
    expect(tokenMatches(`${t}=`, t)).toBe(false);
    expect(bearerToken(`Bearer ${t}`)).toBe(t);
    expect(bearerToken(`bearer ${t}`)).toBe(t);
    expect(bearerToken(t)).toBeUndefined();

    const file = join(dir, 'sub', 'kiosk-token');
    await writeKioskToken(file, t);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`${t}\n`);
    expect(await readKioskToken(file)).toBe(t);
    // Replaced atomically with a new one; junk reads as no token.
    const next = createKioskToken();
    await writeKioskToken(file, next);
    expect(await readKioskToken(file)).toBe(next);
    writeFileSync(file, 'not a token\n');
    expect(await readKioskToken(file)).toBeUndefined();
    expect(await readKioskToken(join(dir, 'missing'))).toBeUndefined();
  });

  it('gets the group-readable mode the deployed unit asks for despite a 0077 umask', async () => {
    const old = process.umask(0o077);
    try {
      const file = join(dir, 'run', 'kiosk-token');
      await writeKioskToken(file, createKioskToken(), 0o640);
      expect(statSync(file).mode & 0o777).toBe(0o640);
    } finally {
      process.umask(old);
    }
  });

  it('a real daemon writes a fresh one per start, opens nothing without a wall, removes it on stop', async () => {
    const ca = await createDevelopmentCa('Example Corp');
    const device = await issueDevelopmentDevice(ca, { roomName: 'Boardroom', org: 'Example Corp' });
    const file = join(dir, 'daemon', 'kiosk-token');
    const tokens: string[] = [];
    for (let start = 0; start < 2; start++) {
      const logged: string[] = [];
      const daemon: Daemon = await startDaemon({
        relayUrl: 'ws://127.0.0.1:9/v1/ws',
        certificatePem: device.certificatePem,
        identityKeyPem: device.identityKeyPem,
        trustAnchors: { orgCaPem: ca.certPem },
        log: pino({ level: 'trace' }, { write: (l: string) => logged.push(l) }),
        media: 'none',
        controlPort: 0,
        kioskTokenFile: file,
      });
      try {
        expect(daemon.kioskToken).toMatch(TOKEN_PATTERN);
        expect(daemon.wall).toBeUndefined();
        expect(statSync(file).mode & 0o777).toBe(0o600);
        expect(await readKioskToken(file)).toBe(daemon.kioskToken);
        tokens.push(daemon.kioskToken);
        const base = daemon.controlUrl;
        expect(
          (await call('POST', '/api/wall/sessions', { token: daemon.kioskToken, body: {}, base })).status,
        ).toBe(503);
        expect((await call('POST', '/api/wall/sessions', { body: {}, base })).status).toBe(401);
        const state = await (await fetch(`${base}/api/state`)).text();
        expect(state).not.toContain(daemon.kioskToken);
      } finally {
        await daemon.stop();
      }
      expect(await readKioskToken(file)).toBeUndefined();
      expect(logged.join('')).not.toContain(tokens.at(-1));
    }
    expect(tokens[0]).not.toBe(tokens[1]);
  });
});

describe('in real Chromium', () => {
  let browser: Browser;
  let page: Server;
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => page?.close(r));
  });

  it('a web page on another loopback port cannot open a session, even knowing the token', async () => {
    browser = await launchChromium();
    // Another local process serving a page (or a page the kiosk was sent to) on 127.0.0.1:<other>.
    page = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
    const elsewhere = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
    const tab = await browser.newPage();
    await tab.goto(elsewhere);
    const outcome = await tab.evaluate(
      async ({ url, t }) => {
        const tries: Record<string, string> = {};
        const attempt = async (name: string, init: RequestInit) => {
          try {
            const res = await fetch(`${url}/api/wall/sessions`, init);
            tries[name] = `status ${res.status}`;
          } catch (err) {
            tries[name] = `blocked: ${(err as Error).name}`;
          }
        };
        // With the token: needs a preflight (Authorization, JSON) that the server never grants.
        await attempt('bearer', {
          method: 'POST',
          headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
          body: '{}',
        });
        // Without a preflight (a "simple" request): not JSON, so 415; no token header either.
        await attempt('simple', { method: 'POST', mode: 'no-cors', body: '{}' });
        return tries;
      },
      { url: server.url, t: token },
    );
    expect(outcome.bearer).toBe('blocked: TypeError');
    // An opaque response: the page learns nothing, and the request was refused anyway.
    expect(outcome.simple).toBe('status 0');
    expect(port.calls).toBe(0);
    // The same request from the room screen's own origin goes through.
    await tab.goto(`${server.url}/healthz`);
    const own = await tab.evaluate(async (t) => {
      const res = await fetch('/api/wall/sessions', {
        method: 'POST',
        headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' },
        body: '{}',
      });
      return res.status;
    }, token);
    expect(own).toBe(201);
    expect(port.opened).toHaveLength(1);
  }, 60_000);
});
