// Alerts end to end on SQLite and on a real PostgreSQL: rules open, acknowledge and resolve
// incidents (two engines on one database open each only once); events reach a real webhook receiver
// on loopback that checks the HMAC signature and refuses old timestamps; a flaky receiver gets the
// event after retries, a broken one sends it to the dead-letter list, from which the retry route
// brings it back; a redirect is refused; an e-mail reaches a local SMTP sink (smtp-server); through
// the real service, a signed heartbeat with a missing camera opens an incident that is pollable with
// the cursor and acknowledged by admin (a read token gets 403); garbage health never stops the engine.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import fc from 'fast-check';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AlertEngineCore, createAlertEngine } from '../provisioning/alerts/engine.js';
import type { FlushedHeartbeat } from '../provisioning/service/heartbeats.js';
import {
  acknowledgeIncident,
  createTarget,
  type Delivery,
  type Incident,
  listDeliveries,
} from '../provisioning/store/alerts-store.js';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { type CertificateAuthority, createCertificateAuthority } from '../src/pki/index.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';
import {
  enrollAndClaim,
  seedToken,
  signedRequest,
  type TestDevice,
  testService,
} from './provisioning-helpers.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'Alerts CA', org: 'Acme', validityDays: 3650 });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const iso = (t: number) => new Date(t).toISOString();
const NEVER = 3_600_000;

// ── a webhook receiver, written the way docs/alerts.md tells a receiver to check signatures ──

type Mode = 'ok' | 'fail' | { failFirst: number } | 'redirect' | 'hang';
interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  verdict: 'ok' | 'bad-signature' | 'old';
}

class Receiver {
  readonly received: Received[] = [];
  secret = '';
  mode: Mode = 'ok';
  #calls = 0;
  #server: Server;
  url = '';
  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const verdict = this.verify(String(req.headers['x-sealroom-signature'] ?? ''), body);
        this.received.push({ path: req.url ?? '', headers: req.headers, body, verdict });
        this.#calls++;
        if (verdict !== 'ok') return res.writeHead(400).end(verdict);
        const m = this.mode;
        if (m === 'hang') return; // never answers: the sender's timeout must end it
        if (m === 'redirect') return res.writeHead(302, { location: `${this.url}/elsewhere` }).end();
        if (m === 'fail' || (typeof m === 'object' && this.#calls <= m.failFirst))
          return res.writeHead(500).end(`boom ${'x'.repeat(10_000)}`);
        res.writeHead(204).end();
      });
    });
  }
  verify(header: string, body: string): Received['verdict'] {
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    if (!m) return 'bad-signature';
    const mac = createHmac('sha256', this.secret).update(`${m[1]}.${body}`).digest();
    if (!timingSafeEqual(mac, Buffer.from(m[2]!, 'hex'))) return 'bad-signature';
    return Math.abs(Date.now() / 1000 - Number(m[1])) > 300 ? 'old' : 'ok';
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
    return this;
  }
  events(): { id: string; event: string; incident: Incident }[] {
    return this.received.filter((r) => r.verdict === 'ok').map((r) => JSON.parse(r.body));
  }
  close() {
    this.#server.closeAllConnections();
    return new Promise<void>((r) => this.#server.close(() => r()));
  }
}

// ── a local SMTP sink ──

async function smtpSink() {
  const mails: { to: string[]; raw: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        done();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.server.address() as AddressInfo).port;
  return {
    mails,
    url: `smtp://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const who = { actor: 'test-admin', tokenId: null };

describe.each(backends)('alerts on %s', (backend: BackendName) => {
  let store: ProvisioningStore;
  let cleanup: () => Promise<void>;
  const engines: AlertEngineCore[] = [];
  const receivers: Receiver[] = [];
  let seq = 0;

  beforeAll(async () => {
    ({ store, cleanup } = await freshStore(backend, cluster));
  }, 60_000);
  afterAll(() => cleanup());

  const engine = (extra: Partial<Parameters<typeof createAlertEngine>[0]> = {}) => {
    const e = createAlertEngine({
      db: store.db,
      now: () => new Date(),
      publicUrl: 'https://it.example.org',
      timers: false,
      retryBackoffMs: [30, 30, 30],
      deliveryTimeoutMs: 1000,
      ...extra,
    });
    engines.push(e);
    return e;
  };
  const receiver = async () => {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  };
  const webhook = async (r: Receiver, name = `hook-${++seq}`) => {
    const { target, secret } = await createTarget(
      store.db,
      { kind: 'webhook', name, url: r.url },
      iso(Date.now()),
      who,
    );
    r.secret = secret!;
    return target;
  };
  /** An active device with a room, as a claim leaves it. */
  const device = async (
    over: { lastSeenAt?: string | null; certNotAfter?: string; status?: string } = {},
  ) => {
    const id = `sr-${String(++seq)
      .padStart(20, 'a')
      .replace(/[0189]/g, 'b')}`;
    await store.db.run(
      `INSERT INTO devices (id, status, public_key, csr_pem, inventory, software_version, room_name, site, config,
         config_version, cert_not_after, created_at, last_seen_at)
       VALUES (?, ?, '', '', '{}', '1', ?, 'Oslo', '{}', 1, ?, ?, ?)`,
      [
        id,
        over.status ?? 'active',
        `Room ${seq}`,
        over.certNotAfter ?? iso(Date.now() + 300 * 86_400_000),
        iso(Date.now()),
        over.lastSeenAt === undefined ? iso(Date.now()) : over.lastSeenAt,
      ],
    );
    return id;
  };
  const incidents = (deviceId: string) =>
    store.db.all<{ id: string; rule_id: string; status: string; summary: string }>(
      'SELECT id, rule_id, status, summary FROM incidents WHERE device_id = ? ORDER BY opened_at, id',
      [deviceId],
    );
  const hb = (deviceId: string, health: unknown): FlushedHeartbeat =>
    ({
      deviceId,
      signedAt: iso(Date.now()),
      health,
      softwareVersion: '1',
      reportedConfigVersion: 1,
    }) as FlushedHeartbeat;
  /** Delivery rounds until nothing is pending (or time is up). */
  const drain = async (e: AlertEngineCore, ms = 4000) => {
    const end = Date.now() + ms;
    for (;;) {
      await e.deliverNow();
      if ((await listDeliveries(store.db, { status: 'pending', limit: 1 })).length === 0) return;
      if (Date.now() > end) throw new Error('deliveries still pending');
      await sleep(20);
    }
  };

  describe('the engine over the store', () => {
    afterEach(async () => {
      for (const e of engines.splice(0)) await e.close();
      for (const r of receivers.splice(0)) await r.close();
      // Each test starts without targets, incidents or deliveries of the one before.
      for (const t of ['alert_deliveries', 'alert_targets', 'incidents'])
        await store.db.run(`DELETE FROM ${t}`);
    });
    // The service below starts its own engine: these devices (no key) must not alert there.
    afterAll(async () => {
      await store.db.run("DELETE FROM devices WHERE public_key = ''");
    });

    it('offline and certificate rules: open once across two instances, resolve when cleared, reopen as a new incident', async () => {
      const r = await receiver();
      await webhook(r);
      const [a, b] = [engine(), engine()];
      const old = iso(Date.now() - 20 * 60_000);
      const dark = await device({ lastSeenAt: old });
      const never = await device({ lastSeenAt: null });
      const revoked = await device({ lastSeenAt: old, status: 'revoked' });
      const expiring = await device({ certNotAfter: iso(Date.now() + 3 * 86_400_000) });

      await Promise.all([a.evaluateNow(), b.evaluateNow(), a.evaluateNow()]);
      const first = await incidents(dark);
      expect(first).toMatchObject([{ rule_id: 'offline', status: 'open' }]);
      expect(first[0]!.summary).toMatch(/^Room \d+ \(Oslo\) offline for 20 min$/);
      expect(await incidents(never)).toEqual([]);
      expect(await incidents(revoked)).toEqual([]);
      expect(await incidents(expiring)).toMatchObject([{ rule_id: 'certificate-expiring', status: 'open' }]);
      // One "opened" outbox row per incident (one target), although three rounds ran.
      const opened = await store.db.all(
        "SELECT incident_id FROM alert_deliveries WHERE event = 'incident.opened'",
      );
      expect(opened).toHaveLength(2);

      await store.db.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', [iso(Date.now()), dark]);
      await store.db.run('UPDATE devices SET cert_not_after = ? WHERE id = ?', [
        iso(Date.now() + 365 * 86_400_000),
        expiring,
      ]);
      await Promise.all([b.evaluateNow(), a.evaluateNow()]);
      expect(await incidents(dark)).toMatchObject([{ id: first[0]!.id, status: 'resolved' }]);
      expect(await incidents(expiring)).toMatchObject([{ status: 'resolved' }]);
      expect(
        await store.db.all("SELECT 1 FROM alert_deliveries WHERE event = 'incident.resolved'"),
      ).toHaveLength(2);

      await store.db.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', [old, dark]);
      await a.evaluateNow();
      const again = await incidents(dark);
      expect(again).toHaveLength(2);
      expect(again[1]).toMatchObject({ rule_id: 'offline', status: 'open' });
      expect(again[1]!.id).not.toBe(first[0]!.id);
      // A heartbeat ends "offline" at once (without waiting for the timer).
      await a.onHeartbeats([hb(dark, {})]);
      expect((await incidents(dark)).map((i) => i.status)).toEqual(['resolved', 'resolved']);

      await drain(a);
      expect(
        r
          .events()
          .map((e) => e.event)
          .sort(),
      ).toEqual([
        'incident.opened',
        'incident.opened',
        'incident.opened',
        'incident.resolved',
        'incident.resolved',
        'incident.resolved',
      ]);
    });

    it('health rules from heartbeats: open, acknowledge (stays open), resolve when cleared; garbage never throws', async () => {
      const e = engine();
      const id = await device();
      await e.onHeartbeats([
        hb(id, { peripherals: { present: ['display'], missing: ['camera'] }, temperatureC: 95 }),
      ]);
      const opened = await incidents(id);
      expect(opened.map((i) => i.rule_id).sort()).toEqual(['peripheral-missing', 'temperature']);
      const cam = opened.find((i) => i.rule_id === 'peripheral-missing')!;
      expect(cam.summary).toMatch(/^Room \d+ \(Oslo\): camera missing$/);
      expect((await acknowledgeIncident(store.db, cam.id, iso(Date.now()), who)).result).toBe('acknowledged');
      // Still missing: nothing new; a report without peripherals says nothing either.
      await e.onHeartbeats([hb(id, { peripherals: { present: [], missing: ['camera'] } }), hb(id, {})]);
      expect((await incidents(id)).find((i) => i.id === cam.id)!.status).toBe('acknowledged');

      const garbage: unknown[] = [
        { temperatureC: 1e308, peripherals: { missing: 'camera' }, selfTest: { ok: 'no', failed: 7 } },
        { temperatureC: '95', loadPercent: -1, memory: { usedBytes: 2 ** 80 } },
        { peripherals: { missing: [{}, [], null, 1e9, 'c'.repeat(100_000)] } },
        'health',
        null,
        [1, 2, 3],
        { selfTest: null, peripherals: null, temperatureC: { valueOf: 99 } },
      ];
      await e.onHeartbeats(garbage.map((g) => hb(id, g)));
      await e.onHeartbeats([null, { deviceId: 42 }, { deviceId: id }] as unknown as FlushedHeartbeat[]);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.anything(), { maxLength: 5 }), async (hs) => {
          await e.onHeartbeats(hs.map((g) => hb(id, g)));
        }),
        { numRuns: 50 },
      );
      expect((await incidents(id)).filter((i) => i.status !== 'resolved').length).toBe(2);

      await e.onHeartbeats([hb(id, { peripherals: { present: ['camera'], missing: [] }, temperatureC: 40 })]);
      expect((await incidents(id)).map((i) => i.status)).toEqual(['resolved', 'resolved']);
      await e.onHeartbeats([hb(id, { selfTest: { ok: false, failed: ['tpm'], at: iso(Date.now()) } })]);
      expect((await incidents(id)).at(-1)).toMatchObject({ rule_id: 'selftest-failed', status: 'open' });
      // Revoked: the device will not report again, so nothing of it stays open.
      await store.db.run("UPDATE devices SET status = 'revoked' WHERE id = ?", [id]);
      await e.evaluateNow();
      expect((await incidents(id)).map((i) => i.status)).toEqual(['resolved', 'resolved', 'resolved']);
    });

    it('webhooks: signed, retried after failures, dead after the last retry, redirects refused, timeouts bounded', async () => {
      const [ok, flaky, broken, redirect, hang] = (await Promise.all(
        [1, 2, 3, 4, 5].map(() => receiver()),
      )) as [Receiver, Receiver, Receiver, Receiver, Receiver];
      flaky.mode = { failFirst: 2 };
      broken.mode = 'fail';
      redirect.mode = 'redirect';
      hang.mode = 'hang';
      const targets = {
        ok: await webhook(ok),
        flaky: await webhook(flaky),
        broken: await webhook(broken),
        redirect: await webhook(redirect),
        hang: await webhook(hang),
      };
      const e = engine({ deliveryTimeoutMs: 300 });
      const id = await device();
      await e.onHeartbeats([hb(id, { temperatureC: 99 })]);
      await drain(e);

      const byTarget = new Map<string, Delivery>(
        (await listDeliveries(store.db, { limit: 50 })).map((d) => [d.targetId, d]),
      );
      expect(byTarget.get(targets.ok.id)).toMatchObject({
        status: 'delivered',
        attempts: 1,
        lastError: null,
      });
      expect(byTarget.get(targets.flaky.id)).toMatchObject({ status: 'delivered', attempts: 3 });
      const dead = byTarget.get(targets.broken.id)!;
      expect(dead).toMatchObject({ status: 'dead', attempts: 4 });
      expect(dead.lastError).toMatch(/^HTTP 500: boom x+$/);
      expect(dead.lastError!.length).toBeLessThanOrEqual(300);
      expect(byTarget.get(targets.redirect.id)).toMatchObject({
        status: 'dead',
        lastError: expect.stringMatching(/redirect/),
      });
      // Never followed: four attempts, all to the configured path.
      expect(redirect.received.map((x) => x.path)).toEqual(['/hook', '/hook', '/hook', '/hook']);
      expect(byTarget.get(targets.hang.id)).toMatchObject({
        status: 'dead',
        lastError: 'timed out after 300 ms',
      });

      const [event] = ok.events();
      expect(ok.received[0]!.headers['content-type']).toBe('application/json');
      expect(ok.received[0]!.headers['x-sealroom-delivery']).toBe(event!.id);
      expect(event).toMatchObject({
        event: 'incident.opened',
        incident: { rule: 'temperature', deviceId: id, site: 'Oslo', status: 'open' },
      });
      expect(flaky.received.map((x) => x.verdict)).toEqual(['ok', 'ok', 'ok']);

      // The receiver refuses a correctly signed body whose timestamp is old (a captured delivery replayed).
      const body = ok.received[0]!.body;
      const t = Math.floor(Date.now() / 1000) - 600;
      const mac = createHmac('sha256', ok.secret).update(`${t}.${body}`).digest('hex');
      const replay = await fetch(ok.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sealroom-signature': `t=${t},v1=${mac}` },
        body,
      });
      expect(replay.status).toBe(400);
      expect(await replay.text()).toBe('old');
    });

    it('e-mail: reaches the SMTP sink with the subject and the console link', async () => {
      const sink = await smtpSink();
      try {
        const e = engine({ smtpUrl: sink.url, mailFrom: 'Sealroom <alerts@example.org>' });
        await createTarget(
          store.db,
          { kind: 'email', name: 'IT on call', email: 'oncall@example.org' },
          iso(Date.now()),
          who,
        );
        const id = await device();
        await e.onHeartbeats([hb(id, { peripherals: { present: [], missing: ['camera', 'microphone'] } })]);
        await drain(e);
        expect(sink.mails).toHaveLength(1);
        const mail = sink.mails[0]!;
        expect(mail.to).toEqual(['oncall@example.org']);
        const unfolded = mail.raw.replace(/\r\n[ \t]+/g, ' ');
        expect(unfolded).toMatch(
          /^Subject: \[Sealroom\] OPENED: Room \d+ \(Oslo\): camera, microphone missing\r$/m,
        );
        expect(unfolded).toMatch(/^From: Sealroom <alerts@example\.org>\r$/m);
        expect(mail.raw).toContain('Console: https://it.example.org/console/#/incidents');
        expect(mail.raw).toMatch(/Rule: +peripheral-missing/);
      } finally {
        await sink.close();
      }
    });

    it('without an SMTP server e-mail deliveries stay pending (not dead)', async () => {
      const e = engine();
      await createTarget(
        store.db,
        { kind: 'email', name: 'IT', email: 'it@example.org' },
        iso(Date.now()),
        who,
      );
      await e.onHeartbeats([hb(await device(), { temperatureC: 120 })]);
      await e.deliverNow();
      expect(await listDeliveries(store.db, { limit: 10 })).toMatchObject([
        { status: 'pending', attempts: 0 },
      ]);
    });
  });

  describe('through the service', () => {
    let app: FastifyInstance;
    let adminToken: string;
    let readToken: string;
    let hook: Receiver;
    let clock = Date.now();
    let dev: TestDevice;
    let deviceId: string;

    beforeAll(async () => {
      ({ token: adminToken } = await seedToken(store, { name: 'al-admin', scope: 'admin', now: Date.now() }));
      ({ token: readToken } = await seedToken(store, { name: 'al-read', scope: 'read', now: Date.now() }));
      app = await testService({
        store,
        ca,
        publicUrl: 'https://it.example.org',
        heartbeats: { flushIntervalMs: NEVER },
        alerts: {
          retryBackoffMs: [20, 20],
          deliveryTimeoutMs: 2000,
          evaluateIntervalMs: NEVER,
          deliveryIntervalMs: NEVER,
        },
      });
      dev = await enrollAndClaim(app, adminToken, { roomName: 'Boardroom', site: 'Bergen' });
      deviceId = dev.deviceId;
    });
    afterAll(async () => {
      await app?.close();
      await hook?.close();
    });

    function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, token: string, payload?: unknown) {
      return app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${token}` },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
    }
    async function heartbeat(health: unknown) {
      clock = Math.max(clock + 1, Date.now());
      const res = await signedRequest(app, dev, clock, 'POST', `/v1/devices/${deviceId}/heartbeat`, {
        softwareVersion: '2.0.0',
        configVersion: 1,
        health,
      });
      await app.heartbeats.flush();
      return res;
    }

    it('targets: webhook secret once, never listed or audited; URLs and addresses validated; read token refused', async () => {
      hook = await new Receiver().start();
      const created = await call('POST', '/v1/alerts/targets', adminToken, {
        kind: 'webhook',
        name: 'ops',
        url: hook.url,
      });
      expect(created.statusCode).toBe(201);
      const secret = created.json().secret as string;
      expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      hook.secret = secret;
      const listed = await call('GET', '/v1/alerts/targets', readToken);
      expect(listed.statusCode).toBe(200);
      expect(listed.json().items).toMatchObject([{ kind: 'webhook', name: 'ops', url: hook.url }]);
      expect(listed.body).not.toContain(secret);
      expect(JSON.stringify(await store.listAudit({ action: 'alert.target.create' }))).not.toContain(secret);
      expect((await store.listAudit({ action: 'alert.target.create' }))[0]).toMatchObject({
        actor: 'al-admin',
      });

      for (const url of [
        'ftp://example.org/x',
        'http://user:pw@example.org/h',
        'javascript:alert(1)',
        'not a url',
        'https://exa mple.org/',
      ]) {
        const res = await call('POST', '/v1/alerts/targets', adminToken, {
          kind: 'webhook',
          name: 'bad',
          url,
        });
        expect(res.statusCode, url).toBe(400);
      }
      for (const email of [
        'a@b.c, evil@example.org',
        'Evil <e@x.org>',
        'no-at-sign',
        'a@b.c\r\nBcc: x@y.z',
      ]) {
        const res = await call('POST', '/v1/alerts/targets', adminToken, {
          kind: 'email',
          name: 'bad',
          email,
        });
        expect(res.statusCode, email).toBe(400);
      }
      expect(
        (await call('POST', '/v1/alerts/targets', adminToken, { kind: 'sms', name: 'x', phone: '1' }))
          .statusCode,
      ).toBe(400);
      expect(
        (
          await call('POST', '/v1/alerts/targets', readToken, {
            kind: 'email',
            name: 'x',
            email: 'x@example.org',
          })
        ).statusCode,
      ).toBe(403);
      expect((await app.inject({ method: 'GET', url: '/v1/alerts/targets' })).statusCode).toBe(401);
      const mail = await call('POST', '/v1/alerts/targets', adminToken, {
        kind: 'email',
        name: 'x',
        email: 'x@example.org',
      });
      expect(mail.json().secret).toBeUndefined();
      expect((await call('DELETE', `/v1/alerts/targets/${mail.json().id}`, readToken)).statusCode).toBe(403);
      expect((await call('DELETE', `/v1/alerts/targets/${mail.json().id}`, adminToken)).statusCode).toBe(204);
      expect((await call('DELETE', `/v1/alerts/targets/${mail.json().id}`, adminToken)).statusCode).toBe(404);
    });

    it('rules: five defaults; params validated; changes audited; read token refused', async () => {
      const rules = await call('GET', '/v1/alerts/rules', readToken);
      expect(rules.json().items.map((r: { id: string; params: unknown }) => [r.id, r.params])).toEqual([
        ['certificate-expiring', { days: 14 }],
        ['offline', { minutes: 10 }],
        ['peripheral-missing', {}],
        ['selftest-failed', {}],
        ['temperature', { celsius: 80 }],
      ]);
      expect(
        (await call('PUT', '/v1/alerts/rules/temperature', readToken, { enabled: false })).statusCode,
      ).toBe(403);
      const bad = await call('PUT', '/v1/alerts/rules/temperature', adminToken, {
        params: { celsius: 1000 },
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error).toBe('invalid-params');
      expect((await call('PUT', '/v1/alerts/rules/nope', adminToken, { enabled: false })).statusCode).toBe(
        404,
      );
      expect(
        (await call('PUT', '/v1/alerts/rules/offline', adminToken, { enabled: 'maybe' })).statusCode,
      ).toBe(400);
      const ok = await call('PUT', '/v1/alerts/rules/temperature', adminToken, { params: { celsius: 70 } });
      expect(ok.json()).toMatchObject({ id: 'temperature', enabled: true, params: { celsius: 70 } });
      expect((await store.listAudit({ action: 'alert.rule' }))[0]).toMatchObject({
        actor: 'al-admin',
        details: { rule: 'temperature', params: { celsius: 70 } },
      });
    });

    it('a heartbeat with a missing camera opens an incident: polled with the cursor, acknowledged by admin only, resolved when back', async () => {
      expect(
        (await heartbeat({ peripherals: { present: ['display'], missing: ['camera'] }, temperatureC: 75 }))
          .statusCode,
      ).toBe(200);
      // Two incidents from one heartbeat (camera, 75 °C > 70 °C); limit=1 pages through them with the cursor.
      const page1 = await call('GET', `/v1/incidents?deviceId=${deviceId}&limit=1`, readToken);
      expect(page1.statusCode).toBe(200);
      expect(page1.json().items).toHaveLength(1);
      const page2 = await call(
        'GET',
        `/v1/incidents?deviceId=${deviceId}&limit=1&since=${page1.json().cursor}`,
        readToken,
      );
      expect(page2.json().items).toHaveLength(1);
      expect(page2.json().items[0].id).not.toBe(page1.json().items[0].id);
      const all = [...page1.json().items, ...page2.json().items] as Incident[];
      const cam = all.find((i) => i.rule === 'peripheral-missing')!;
      expect(cam).toMatchObject({
        deviceId,
        roomName: 'Boardroom',
        site: 'Bergen',
        status: 'open',
        summary: 'Boardroom (Bergen): camera missing',
        acknowledgedAt: null,
      });
      const cursor = page2.json().cursor as string;

      expect((await call('POST', `/v1/incidents/${cam.id}/acknowledge`, readToken)).statusCode).toBe(403);
      const acked = await call('POST', `/v1/incidents/${cam.id}/acknowledge`, adminToken);
      expect(acked.statusCode).toBe(200);
      expect(acked.json()).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'al-admin' });
      expect((await call('POST', `/v1/incidents/${cam.id}/acknowledge`, adminToken)).statusCode).toBe(200);
      expect((await store.listAudit({ action: 'incident.acknowledge' }))[0]).toMatchObject({
        actor: 'al-admin',
        deviceId,
      });
      // The poller sees the acknowledgement after its cursor.
      const changed = await call('GET', `/v1/incidents?since=${cursor}`, readToken);
      expect(changed.json().items.find((i: Incident) => i.id === cam.id)).toMatchObject({
        status: 'acknowledged',
      });
      expect((await call('GET', '/v1/incidents?since=not-a-cursor!', readToken)).statusCode).toBe(400);
      expect((await call('GET', '/v1/incidents?since=Zm9v', readToken)).json().error).toBe('bad-cursor');

      // Camera back, temperature down: both resolve (ack did not resolve).
      await heartbeat({ peripherals: { present: ['display', 'camera'], missing: [] }, temperatureC: 40 });
      const resolved = await call('GET', `/v1/incidents?status=resolved&deviceId=${deviceId}`, readToken);
      expect(
        resolved
          .json()
          .items.map((i: Incident) => i.rule)
          .sort(),
      ).toEqual(['peripheral-missing', 'temperature']);
      expect((await call('POST', `/v1/incidents/${cam.id}/acknowledge`, adminToken)).json().error).toBe(
        'incident-resolved',
      );

      await app.alertEngine.deliverNow();
      const events = hook
        .events()
        .filter((e) => e.incident.id === cam.id)
        .map((e) => e.event);
      expect(events).toEqual(['incident.opened', 'incident.acknowledged', 'incident.resolved']);
    });

    it('dead letters: listed, retried by admin (read token 403), then delivered', async () => {
      hook.mode = 'fail';
      await heartbeat({ selfTest: { ok: false, failed: ['camera'], at: iso(Date.now()) } });
      const end = Date.now() + 4000;
      let dead: Delivery[] = [];
      while (dead.length === 0 && Date.now() < end) {
        await app.alertEngine.deliverNow();
        await sleep(25);
        dead = (await call('GET', '/v1/alerts/deliveries?status=dead', readToken)).json().items;
      }
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({
        event: 'incident.opened',
        attempts: 3,
        lastError: expect.stringMatching(/^HTTP 500/),
      });
      hook.mode = 'ok';
      expect((await call('POST', `/v1/alerts/deliveries/${dead[0]!.id}/retry`, readToken)).statusCode).toBe(
        403,
      );
      const retried = await call('POST', `/v1/alerts/deliveries/${dead[0]!.id}/retry`, adminToken);
      expect(retried.json()).toMatchObject({ status: 'pending' });
      await app.alertEngine.deliverNow();
      const after = (await call('GET', '/v1/alerts/deliveries?status=delivered&limit=500', readToken)).json()
        .items;
      expect(after.find((d: Delivery) => d.id === dead[0]!.id)).toMatchObject({
        status: 'delivered',
        attempts: 4,
      });
      const again = await call('POST', `/v1/alerts/deliveries/${dead[0]!.id}/retry`, adminToken);
      expect(again.statusCode).toBe(409);
      expect((await store.listAudit({ action: 'alert.delivery.retry' }))[0]).toMatchObject({
        actor: 'al-admin',
      });
    });

    it('hostile heartbeats: schema-invalid ones are refused, odd valid ones never stop the engine', async () => {
      for (const health of [
        { temperatureC: 'hot' },
        { temperatureC: 1e300 },
        { peripherals: { present: [], missing: [{}] } },
        { selfTest: { ok: 'no', failed: [], at: 'x' } },
        { memory: { usedBytes: -1, totalBytes: 1 } },
        { extra: true },
      ])
        expect((await heartbeat(health)).statusCode, JSON.stringify(health)).toBe(400);
      for (const health of [
        { temperatureC: 300, loadPercent: 100_000, memory: { usedBytes: 2 ** 53, totalBytes: 2 ** 53 } },
        { temperatureC: '-100' },
        {
          peripherals: { present: ['x'.repeat(200)], missing: Array.from({ length: 64 }, (_, i) => `p${i}`) },
        },
        {
          selfTest: {
            ok: false,
            failed: Array.from({ length: 64 }, () => '\u202e'.repeat(200)),
            at: iso(Date.now()),
          },
        },
      ])
        expect((await heartbeat(health)).statusCode, JSON.stringify(health)).toBe(200);
      // The engine is still alive: a real condition still opens an incident.
      await heartbeat({ peripherals: { present: [], missing: ['speaker'] } });
      const open = await call('GET', `/v1/incidents?deviceId=${deviceId}&status=open`, readToken);
      expect(open.json().items.map((i: Incident) => i.summary)).toContain(
        'Boardroom (Bergen): speaker missing',
      );
      // Disabling the rule resolves its incidents (nobody watches that condition any more).
      const speaker = (open.json().items as Incident[]).find((i) => i.rule === 'peripheral-missing')!;
      expect(
        (await call('PUT', '/v1/alerts/rules/peripheral-missing', adminToken, { enabled: false })).statusCode,
      ).toBe(200);
      expect((await call('GET', `/v1/incidents/${speaker.id}`, readToken)).json()).toMatchObject({
        status: 'resolved',
      });
      await heartbeat({ peripherals: { present: [], missing: ['speaker'] } });
      const none = await call('GET', `/v1/incidents?deviceId=${deviceId}&status=open`, readToken);
      expect(none.json().items.filter((i: Incident) => i.rule === 'peripheral-missing')).toEqual([]);
      // Enabled again: the very next report opens a new one.
      await call('PUT', '/v1/alerts/rules/peripheral-missing', adminToken, { enabled: true });
      await heartbeat({ peripherals: { present: [], missing: ['speaker'] } });
      const back = await call('GET', `/v1/incidents?deviceId=${deviceId}&status=open`, readToken);
      const reopened = (back.json().items as Incident[]).filter((i) => i.rule === 'peripheral-missing');
      expect(reopened).toHaveLength(1);
      expect(reopened[0]!.id).not.toBe(speaker.id);
    });
  });
});
