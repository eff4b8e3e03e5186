// The device ↔ provisioning link under attack. The real service (HTTPS with its own TLS CA) behind a
// TCP hop the attacker controls (`net.target`): the test switches the device's traffic to attacker
// servers and checks what the device believes.
// - Another TLS CA after pinning: refused at the handshake (the attacker never sees a request).
// - A configured fingerprint that does not match: the first enrollment is refused.
// - An attacker past TLS (it holds the service's TLS key: a stolen key or a rogue service) injecting
//   403 'device-revoked' without proof, with a CRL from another CA, with a genuine CRL that does not
//   list the device, or garbage: ignored, the device keeps working. With a CRL the org CA signed that
//   lists the device: believed.
// - The same attacker presenting a certificate from another org CA: refused; a rollover signed by the
//   wrong CA: refused; a rollover signed by the pinned CA: the new CA is pinned.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Server,
  type Socket,
  connect,
} from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initialState, StateStore } from '../device/daemon/state.js';
import { EnrollmentRunner } from '../device/enrollment/runner.js';
import { requestJson } from '../provisioning/client/http.js';
import {
  certificateSha256,
  PROVISIONING_CA_FILE,
  pinServiceCa,
  TlsPinError,
} from '../provisioning/client/tls-pin.js';
import {
  loadOrCreateServiceTls,
  type RunningService,
  startProvisioningService,
  TLS_RENEW_BEFORE_DAYS,
  TLS_SERVER_VALIDITY_DAYS,
} from '../provisioning/service/serve.js';
import { sameCertificate, signCaRollover, verifyCaRollover } from '../src/pki/ca-rollover.js';
import { issueCrl } from '../src/pki/crl.js';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueDeviceCertificateDetailed,
  verifyDeviceCertificate,
} from '../src/pki/index.js';
import { createPinnedFetch } from '../src/util/pinned-fetch.js';

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The network between device and service: a TCP hop whose destination the attacker picks. */
class Network {
  target = 0;
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  constructor() {
    this.server = createTcpServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
  }
  async listen(): Promise<number> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }
  /** Reroutes: open connections are cut so the next request goes to the new target. */
  route(port: number): void {
    this.target = port;
    for (const s of this.sockets) s.destroy();
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

type Handler = (method: string, path: string, body: string) => Promise<{ status: number; body: unknown }>;

/** An HTTPS server with the given TLS identity answering through `handler` (swappable). */
async function attacker(tls: { cert: string; key: string }, handler: Handler) {
  const seen: string[] = [];
  const state = { handler };
  const server: HttpsServer = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      void state
        .handler(req.method ?? '', req.url ?? '', body)
        .catch((err: Error) => ({ status: 500, body: { error: 'oops', message: err.message } }))
        .then((r) => {
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(r.body));
        });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    state,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

function capture() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { lines, logger, count: (msg: string) => lines.filter((l) => l.msg === msg).length };
}

const revokedReply = (crl?: string) => ({
  status: 403,
  body: {
    statusCode: 403,
    error: 'device-revoked',
    message: 'this device is revoked',
    ...(crl !== undefined ? { crl } : {}),
  },
});

describe('device ↔ provisioning over pinned HTTPS', () => {
  let dir: string;
  let svc: RunningService;
  let svcPort: number;
  let net: Network;
  let deviceUrl: string;
  let adminFetch: typeof fetch;
  let token: string;
  const runners: EnrollmentRunner[] = [];
  let n = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-tls-'));
    svc = await startProvisioningService({
      dataDir: join(dir, 'svc'),
      port: 0,
      org: 'Acme',
      logger: false,
      rateLimits: { enrollmentsPerMinute: 1000, claimsPerMinute: 1000 },
    });
    svcPort = Number(new URL(svc.url).port);
    net = new Network();
    deviceUrl = `https://127.0.0.1:${await net.listen()}`;
    net.route(svcPort);
    adminFetch = createPinnedFetch(svc.tls.caPem!);
    token = readFileSync(join(dir, 'svc', 'admin-token'), 'utf8').trim();
  }, 60_000);

  afterEach(async () => {
    for (const r of runners.splice(0)) await r.stop();
  });

  afterAll(async () => {
    for (const r of runners) await r.stop();
    await net?.close();
    await svc?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function device(opts: { provisioningCaSha256?: string; stateDir?: string } = {}) {
    const stateDir = opts.stateDir ?? join(dir, `device-${n++}`);
    const log = capture();
    const state = new StateStore(initialState('1.0.0'));
    const r = new EnrollmentRunner({
      stateDir,
      serviceUrl: deviceUrl,
      softwareVersion: '1.0.0',
      state,
      logger: log.logger,
      pollIntervalMs: 150,
      heartbeatIntervalMs: 250,
      backoff: { baseMs: 50, maxMs: 250 },
      collectHealth: async () => ({ loadPercent: 1 }),
      collectInventory: async () => ({ model: 'test-box' }),
      ...(opts.provisioningCaSha256 ? { provisioningCaSha256: opts.provisioningCaSha256 } : {}),
    });
    runners.push(r);
    return { r, state, stateDir, log };
  }

  async function enrolledDevice() {
    const d = device();
    const heartbeats = { n: 0 };
    d.r.on('change', (st) => {
      if (st.phase === 'enrolled') heartbeats.n++;
    });
    await d.r.start();
    await until(() => d.state.get().enrollment?.status === 'awaiting-claim', 'activation code');
    await requestJson(`${svc.url}/v1/claims`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({
        activationCode: d.state.get().enrollment!.activationCode,
        roomName: `Room ${n}`,
        site: 'HQ',
      }),
      fetch: adminFetch,
    });
    await until(() => d.r.current?.phase === 'enrolled', 'enrollment');
    const st = d.r.current as Extract<NonNullable<typeof d.r.current>, { phase: 'enrolled' }>;
    return { ...d, heartbeats, serial: st.certificate.serial, deviceId: st.deviceId };
  }

  it('serves HTTPS with its own P-256 TLS CA; the device pins it at first use', async () => {
    expect(svc.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const tlsDir = join(dir, 'svc', 'tls');
    // The real openssl agrees: a P-256 CA, the server certificate verifies for 127.0.0.1 and the keys are 0600.
    expect(
      execFileSync('openssl', [
        'verify',
        '-CAfile',
        join(tlsDir, 'ca.pem'),
        '-verify_ip',
        '127.0.0.1',
        '-purpose',
        'sslserver',
        join(tlsDir, 'server.pem'),
      ]).toString(),
    ).toMatch(/: OK/);
    expect(
      execFileSync('openssl', ['x509', '-noout', '-text', '-in', join(tlsDir, 'ca.pem')]).toString(),
    ).toMatch(/prime256v1|P-256/);
    for (const key of ['ca-key.pem', 'server-key.pem'])
      expect(statSync(join(tlsDir, key)).mode & 0o777).toBe(0o600);
    // Plain global fetch (system trust store) does not accept it.
    await expect(fetch(`${svc.url}/healthz`)).rejects.toThrow();
    const d = await enrolledDevice();
    const pinned = readFileSync(join(d.stateDir, PROVISIONING_CA_FILE), 'utf8');
    expect(certificateSha256(pinned)).toBe(svc.tls.caSha256);
    // http:// is refused before anything is sent.
    await expect(
      pinServiceCa({ stateDir: join(dir, 'x'), url: `http://127.0.0.1:${svcPort}` }),
    ).rejects.toThrow(TlsPinError);
  }, 40_000);

  it('keeps its TLS CA; re-issues the server certificate near expiry or when the names change', async () => {
    const dataDir = join(dir, 'tls-renewal');
    const first = await loadOrCreateServiceTls({ dataDir, org: 'Acme' });
    expect((await loadOrCreateServiceTls({ dataDir, org: 'Acme' })).cert).toBe(first.cert);
    const renamed = await loadOrCreateServiceTls({
      dataDir,
      org: 'Acme',
      publicUrl: 'https://prov.acme.test:8443',
    });
    expect(renamed.cert).not.toBe(first.cert);
    expect(renamed.caSha256).toBe(first.caSha256);
    expect(new X509Certificate(renamed.cert).checkHost('prov.acme.test')).toBe('prov.acme.test');
    const later = new Date(Date.now() + (TLS_SERVER_VALIDITY_DAYS - TLS_RENEW_BEFORE_DAYS + 1) * 86_400_000);
    const renewed = await loadOrCreateServiceTls({
      dataDir,
      org: 'Acme',
      publicUrl: 'https://prov.acme.test:8443',
      now: later,
    });
    expect(renewed.cert).not.toBe(renamed.cert);
    expect(renewed.caSha256).toBe(first.caSha256);
    expect(Date.parse(new X509Certificate(renewed.cert).validTo)).toBeGreaterThan(later.getTime());
    // A lost CA key is never papered over with a new CA (devices pinned the old one).
    rmSync(join(dataDir, 'tls', 'ca-key.pem'));
    await expect(loadOrCreateServiceTls({ dataDir, org: 'Acme' })).rejects.toThrow(/lock them out/);
  });

  it('swaps a re-issued server certificate in while running; devices keep trusting it', async () => {
    const dataDir = join(dir, 'tls-hot');
    const live = await startProvisioningService({
      dataDir,
      port: 0,
      org: 'Acme',
      logger: false,
      tlsCheckIntervalMs: 100,
    });
    try {
      const presented = () =>
        new Promise<string>((resolve, reject) => {
          const u = new URL(live.url);
          const sock = tlsConnect({ host: u.hostname, port: Number(u.port), ca: live.tls.caPem! }, () => {
            resolve(sock.getPeerCertificate().serialNumber);
            sock.end();
          });
          sock.once('error', reject);
        });
      const before = await presented();
      rmSync(join(dataDir, 'tls', 'server.pem')); // as if it had expired
      await until(async () => (await presented()) !== before, 'the re-issued certificate in use');
      const pinned = createPinnedFetch(live.tls.caPem!);
      expect((await pinned(`${live.url}/healthz`)).status).toBe(200);
    } finally {
      await live.close();
    }
  }, 30_000);

  it('after pinning, refuses a server with another TLS CA (valid for the host name) — it never sees a request', async () => {
    const d = await enrolledDevice();
    const otherTls = await loadOrCreateServiceTls({ dataDir: join(dir, 'attacker-tls'), org: 'Acme' });
    const evil = await attacker(otherTls, async () => revokedReply());
    try {
      const failedBefore = d.log.count('enrollment step failed');
      net.route(evil.port);
      await until(() => d.log.count('enrollment step failed') >= failedBefore + 3, 'three refused attempts');
      expect(evil.seen).toEqual([]);
      expect(d.r.current?.phase).toBe('enrolled');
      expect(d.state.get().enrollment).toMatchObject({
        status: 'enrolled',
        message: expect.stringMatching(/TLS certificate this device does not trust/),
      });
      // The pinned CA was not replaced.
      expect(certificateSha256(readFileSync(join(d.stateDir, PROVISIONING_CA_FILE), 'utf8'))).toBe(
        svc.tls.caSha256,
      );
      // The real service back: heartbeats resume.
      net.route(svcPort);
      const hb = d.heartbeats.n;
      await until(() => d.heartbeats.n >= hb + 2, 'heartbeats after the attacker left');
    } finally {
      net.route(svcPort);
      await evil.close();
    }
  }, 40_000);

  it('refuses the first enrollment when the CA does not match the configured fingerprint; enrolls when it does', async () => {
    const otherTls = await loadOrCreateServiceTls({ dataDir: join(dir, 'attacker-tls'), org: 'Acme' });
    const evil = await attacker(otherTls, async () => ({ status: 500, body: {} }));
    const stateDir = join(dir, 'device-fp');
    try {
      // An attacker on the path at first boot, the integrator's fingerprint set: refused.
      net.route(evil.port);
      const a = device({ stateDir, provisioningCaSha256: svc.tls.caSha256! });
      await a.r.start();
      await until(
        () => /not the configured/.test(a.state.get().enrollment?.message ?? ''),
        'the fingerprint refusal on the room screen',
      );
      expect(evil.seen).toEqual([]);
      await a.r.stop();
      // The real service, but the configured fingerprint is another one: refused too.
      net.route(svcPort);
      const b = device({ stateDir, provisioningCaSha256: 'ab'.repeat(32) });
      await b.r.start();
      await until(() => b.log.count('enrollment step failed') >= 2, 'refusals');
      expect(b.r.current?.phase).toBe('unregistered');
      expect(existsSync(join(stateDir, PROVISIONING_CA_FILE))).toBe(false);
      await b.r.stop();
      // The right fingerprint (colon form, upper case, as openssl prints it): enrolls.
      const colon = svc.tls.caSha256!.toUpperCase().match(/../g)!.join(':');
      const c = device({ stateDir, provisioningCaSha256: colon });
      await c.r.start();
      await until(() => c.state.get().enrollment?.status === 'awaiting-claim', 'activation code');
      expect(certificateSha256(readFileSync(join(stateDir, PROVISIONING_CA_FILE), 'utf8'))).toBe(
        svc.tls.caSha256,
      );
      await c.r.stop();
    } finally {
      net.route(svcPort);
      await evil.close();
    }
  }, 40_000);

  it('ignores an injected 403 revoked without proof, with a CRL from another CA, or one not listing it; believes a signed CRL that lists it', async () => {
    const d = await enrolledDevice();
    const revokedEvents: string[] = [];
    d.r.on('revoked', (m) => revokedEvents.push(m));
    // Same subject name as the org CA, another key.
    const impostor = await createCertificateAuthority({
      commonName: 'Acme Sealroom device CA',
      org: 'Acme',
      validityDays: 365,
    });
    const now = new Date();
    const window = { thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000) };
    const entry = { serial: d.serial, revokedAt: now };
    const otherSerial = { serial: '4a'.repeat(16), revokedAt: now };
    const forged = (await issueCrl(impostor, { entries: [entry], crlNumber: 99n, ...window })).pem;
    const notListing = (await issueCrl(svc.ca, { entries: [otherSerial], crlNumber: 98n, ...window })).pem;
    const genuine = (await issueCrl(svc.ca, { entries: [entry, otherSerial], crlNumber: 100n, ...window }))
      .pem;
    // The attacker got past TLS (it holds the service's TLS key).
    const evil = await attacker(svc.tls, async () => revokedReply());
    try {
      net.route(evil.port);
      for (const [what, reply] of [
        ['no proof', revokedReply()],
        ['a CRL from another CA', revokedReply(forged)],
        ['a genuine CRL not listing the device', revokedReply(notListing)],
        ['garbage', revokedReply('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')],
        ['a certificate instead of a CRL', revokedReply(svc.ca.certPem)],
      ] as const) {
        evil.state.handler = async () => reply;
        const ignored = d.log.count('unproven revocation reply ignored');
        await until(
          () => d.log.count('unproven revocation reply ignored') >= ignored + 2,
          `the device to ignore ${what}`,
        );
        expect(d.r.current?.phase, what).toBe('enrolled');
      }
      expect(revokedEvents).toEqual([]);
      // The kiosk says why it is retrying, without claiming the device was revoked.
      expect(d.state.get().enrollment?.message).toMatch(/without proof/);
      // Back to the real service: the device still works.
      net.route(svcPort);
      const hb = d.heartbeats.n;
      await until(() => d.heartbeats.n >= hb + 2, 'heartbeats after the injections');
      expect(d.state.get().enrollment?.status).toBe('enrolled');

      // The org CA's CRL listing this device: believed, and final.
      evil.state.handler = async () => revokedReply(genuine);
      net.route(evil.port);
      await until(() => d.r.current?.phase === 'revoked', 'the proven revocation');
      expect(revokedEvents).toHaveLength(1);
      // The proof is kept: the device's CRL is now the one that revoked it.
      expect(existsSync(join(d.stateDir, 'crl.der'))).toBe(true);
      expect(d.state.get().enrollment).toMatchObject({
        status: 'error',
        message: expect.stringMatching(/revoked/),
      });
    } finally {
      net.route(svcPort);
      await evil.close();
    }
  }, 60_000);

  it('a genuine revocation through the service carries its CRL and is believed', async () => {
    const d = await enrolledDevice();
    await requestJson(`${svc.url}/v1/devices/${d.deviceId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ reason: 'stolen' }),
      fetch: adminFetch,
    });
    await until(() => d.r.current?.phase === 'revoked', 'revocation');
    expect(d.log.count('unproven revocation reply ignored')).toBe(0);
  }, 40_000);

  it('refuses a certificate from another org CA without a rollover; a rollover signed by the pinned CA moves it', async () => {
    const d = await enrolledDevice();
    const caPath = join(d.stateDir, 'ca.pem');
    const devicePemBefore = readFileSync(join(d.stateDir, 'device.pem'), 'utf8');
    expect(sameCertificate(readFileSync(caPath, 'utf8'), svc.ca.certPem)).toBe(true);
    const newCa: CertificateAuthority = await createCertificateAuthority({
      commonName: 'Acme Sealroom device CA 2027',
      org: 'Acme',
      validityDays: 3650,
    });
    const rollovers: string[] = [];
    d.r.on('ca-rollover', (pem) => rollovers.push(pem));
    let config: Record<string, unknown> | undefined;
    let configVersion = 1000;
    let renewals = 0;
    // A service (or an attacker past TLS) that renews the device from newCa.
    const evil = await attacker(svc.tls, async (method, path, body) => {
      if (method === 'POST' && path.endsWith('/heartbeat'))
        return {
          status: 200,
          body: {
            status: 'active',
            configVersion,
            ...(config ? { config } : {}),
            renewCertificate: true,
            serverTime: new Date().toISOString(),
          },
        };
      if (method === 'POST' && path.endsWith('/certificate/renewal')) {
        renewals++;
        const issued = await issueDeviceCertificateDetailed({
          ca: newCa,
          csrPem: (JSON.parse(body) as { csr: string }).csr,
          deviceId: d.deviceId,
          roomName: 'Room',
          org: 'Acme',
          site: 'HQ',
          validityDays: 30,
        });
        return {
          status: 200,
          body: {
            status: 'active',
            deviceId: d.deviceId,
            certPem: issued.certPem,
            caCertPem: newCa.certPem,
            serial: issued.serial,
            notAfter: issued.notAfter.toISOString(),
            roomName: 'Room',
            site: 'HQ',
            org: 'Acme',
            ...(config ? { config } : {}),
            configVersion,
          },
        };
      }
      return { status: 404, body: { statusCode: 404, error: 'Not Found', message: 'no' } };
    });
    try {
      net.route(evil.port);
      await until(() => renewals >= 3, 'renewal attempts');
      await until(() => d.log.lines.some((l) => /different org CA/.test(String(l.err ?? ''))), 'the refusal');
      expect(sameCertificate(readFileSync(caPath, 'utf8'), svc.ca.certPem)).toBe(true);
      expect(readFileSync(join(d.stateDir, 'device.pem'), 'utf8')).toBe(devicePemBefore);

      // A rollover signed by the new CA itself (not the pinned one): refused.
      config = { caRollover: await signCaRollover(newCa, newCa.certPem) };
      configVersion++;
      await until(() => d.log.count('refused a CA rollover that does not verify') >= 2, 'rollover refusal');
      const r0 = renewals;
      await until(() => renewals >= r0 + 2, 'more renewals');
      expect(sameCertificate(readFileSync(caPath, 'utf8'), svc.ca.certPem)).toBe(true);
      expect(rollovers).toEqual([]);

      // Signed by the pinned org CA: the new CA is pinned, and the renewal from it accepted.
      const doc = await signCaRollover(svc.ca, newCa.certPem);
      expect(verifyCaRollover(doc, svc.ca.certPem)).toBe(newCa.certPem);
      expect(() => verifyCaRollover({ ...doc, newCaPem: svc.ca.certPem }, svc.ca.certPem)).toThrow();
      config = { caRollover: doc };
      configVersion++;
      await until(() => rollovers.length === 1, 'the rollover');
      await until(
        () => readFileSync(join(d.stateDir, 'device.pem'), 'utf8') !== devicePemBefore,
        'the certificate from the new CA',
      );
      expect(sameCertificate(readFileSync(caPath, 'utf8'), newCa.certPem)).toBe(true);
      await verifyDeviceCertificate(readFileSync(join(d.stateDir, 'device.pem'), 'utf8'), newCa.certPem);
      // The old org CA cannot take it back with a replay of anything it signs.
      expect(() => verifyCaRollover(doc, newCa.certPem)).toThrow();
    } finally {
      net.route(svcPort);
      await evil.close();
    }
  }, 60_000);
});
