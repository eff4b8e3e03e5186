// `sealroom relay --revocations <provisioning URL>` as a real process against a stand-in for the
// provisioning service's GET /v1/revocations (an X.509 CRL signed by the org CA, over HTTPS pinned
// with --revocations-tls-ca): a revoked device is refused; a CRL not signed by the org CA is not
// taken, so the relay holds none and fails closed for new sessions (and /healthz says so); after a
// restart the persisted newest CRL is in force and an older one is refused; a device revoked while
// connected is disconnected; --crl-fail-open keeps serving without a CRL.
import { execFileSync, type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import type { RevocationStatus } from '../src/pki/index.js';
import { type CertificateAuthority, crlStateFileName, issueCrl } from '../src/pki/index.js';
import { loadOrCreateDevelopmentCa } from '../src/relay/dev-ca-store.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';

const HOUR = 3600_000;
let dir: string;
let ca: CertificateAuthority;
let tlsCaFile: string;
const services: Server[] = [];
const relays: ChildProcess[] = [];
let good: DevelopmentDevice;
let revoked: DevelopmentDevice;

async function crl(devices: DevelopmentDevice[], crlNumber: bigint, authority: CertificateAuthority = ca) {
  const thisUpdate = new Date();
  return (
    await issueCrl(authority, {
      entries: devices.map((d) => ({ serial: d.serial, revokedAt: thisUpdate })),
      crlNumber,
      thisUpdate,
      nextUpdate: new Date(thisUpdate.getTime() + 24 * HOUR),
    })
  ).der;
}

async function startRelay(
  serviceUrl: string,
  extra: string[],
  o: { stateDir?: string; tlsCa?: string } = {},
): Promise<{ url: string; http: string; proc: ChildProcess }> {
  const args = [
    '--import',
    'tsx',
    'src/cli/sealroom.ts',
    'relay',
    '--dev-ca',
    join(dir, 'ca'),
    '--port',
    '0',
    '--revocations',
    serviceUrl,
    '--revocations-tls-ca',
    o.tlsCa ?? tlsCaFile,
    ...(o.stateDir ? ['--state-dir', o.stateDir] : []),
    ...extra,
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'ignore'],
    env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn' },
  });
  relays.push(child);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0] ?? '') as { relay: string }).relay);
    });
    child.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
  const http = new URL(url.replace(/^ws/, 'http')).origin;
  return { url, http, proc: child };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

async function health(
  http: string,
): Promise<{ status: number; body: { ok: boolean; revocation?: RevocationStatus } }> {
  const r = await fetch(`${http}/healthz`);
  return { status: r.status, body: (await r.json()) as { ok: boolean; revocation?: RevocationStatus } };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealroom-revocation-'));
  ca = await loadOrCreateDevelopmentCa(join(dir, 'ca'));
  good = await issueDevelopmentDevice(ca, { roomName: 'Good' });
  revoked = await issueDevelopmentDevice(ca, { roomName: 'Stolen' });
  // The provisioning service's own TLS CA and server certificate (as `provisioning serve` makes).
  tlsCaFile = join(dir, 'tls-ca.pem');
  const sh = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  sh(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'tls-ca.key',
    ].concat(['-out', 'tls-ca.pem', '-days', '2', '-subj', '/CN=Test provisioning TLS CA']),
  );
  sh([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'tls.key',
    '-out',
    'tls.csr',
    '-subj',
    '/CN=127.0.0.1',
  ]);
  writeFileSync(join(dir, 'tls.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n');
  sh(
    [
      'x509',
      '-req',
      '-in',
      'tls.csr',
      '-CA',
      'tls-ca.pem',
      '-CAkey',
      'tls-ca.key',
      '-CAcreateserial',
      '-out',
      'tls.pem',
      '-days',
      '2',
    ].concat(['-extfile', 'tls.ext']),
  );
}, 60_000);

afterAll(async () => {
  for (const relay of relays) await stop(relay);
  for (const s of services) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const connect = (url: string, d: DevelopmentDevice) =>
  RelayConnection.connect(url, { certificatePem: d.certificatePem, identityKey: d.identityKey });

/** A stand-in provisioning service (HTTPS, certificate from the pinned TLS CA) answering `served`. */
async function crlService(served: { status: number; der: Buffer }): Promise<string> {
  const server = createServer(
    { key: readFileSync(join(dir, 'tls.key')), cert: readFileSync(join(dir, 'tls.pem')) },
    (req, res) => {
      if (req.url !== '/v1/revocations') return void res.writeHead(404).end();
      res.writeHead(served.status, { 'content-type': 'application/pkix-crl' }).end(served.der);
    },
  );
  services.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `https://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('relay and the provisioning CRL', () => {
  it('refuses a revoked device, admits the others, and keeps the newest CRL across a restart', async () => {
    const served = { status: 200, der: await crl([revoked], 5n) };
    const service = await crlService(served);
    const stateDir = join(dir, 'relay-state');
    const first = await startRelay(service, [], { stateDir });
    await expect(connect(first.url, revoked)).rejects.toMatchObject({ code: 'certificate-revoked' });
    const c = await connect(first.url, good);
    expect(c.identity?.roomName).toBe('Good');
    c.close();
    const h = await health(first.http);
    expect(h.status).toBe(200);
    expect(h.body.revocation).toMatchObject({
      state: 'fresh',
      crlNumber: '5',
      revoked: 1,
      acceptingNewSessions: true,
    });
    expect(readFileSync(join(stateDir, crlStateFileName(ca.certPem))).equals(served.der)).toBe(true);
    await stop(first.proc);

    // An attacker replays an older CRL (#4, before the revocation) to the restarted relay.
    served.der = await crl([], 4n);
    const second = await startRelay(service, [], { stateDir });
    await expect(connect(second.url, revoked)).rejects.toMatchObject({ code: 'certificate-revoked' });
    expect((await health(second.http)).body.revocation).toMatchObject({
      crlNumber: '5',
      acceptingNewSessions: true,
    });
    await stop(second.proc);
  }, 90_000);

  it('fails closed without a CRL from the org CA (forged, unreachable, wrong TLS CA), then takes a new one live', async () => {
    // Three relays at once: (1) the service serves a CRL signed by another CA, then real ones;
    // (2) the service is down but the relay runs --crl-fail-open; (3) the service is fine but the
    // relay pins a TLS CA that did not certify it.
    const forged = { status: 200, der: await crl([good, revoked], 9n, await createDevelopmentCa('Mallory')) };
    const down = { status: 503, der: Buffer.alloc(0) };
    const fine = { status: 200, der: await crl([], 1n) };
    const otherTls = join(dir, 'other-tls-ca.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout'].concat([
        join(dir, 'other-tls-ca.key'),
        '-out',
        otherTls,
        '-days',
        '2',
        '-subj',
        '/CN=Other TLS CA',
      ]),
      { stdio: 'ignore' },
    );
    const [live, open, mispinned] = await Promise.all([
      crlService(forged).then((u) => startRelay(u, ['--revocations-interval', '0.3'])),
      crlService(down).then((u) => startRelay(u, ['--crl-fail-open'])),
      crlService(fine).then((u) => startRelay(u, [], { tlsCa: otherTls })),
    ]);

    // (1) The forged CRL is not taken: no CRL, new sessions refused, /healthz 503.
    for (const d of [good, revoked])
      await expect(connect(live.url, d)).rejects.toMatchObject({ code: 'crl-stale' });
    const h = await health(live.http);
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ ok: false, revocation: { state: 'none', acceptingNewSessions: false } });
    // (3) Same with the TLS CA mismatch: the CRL is never fetched.
    await expect(connect(mispinned.url, good)).rejects.toMatchObject({ code: 'crl-stale' });
    expect((await health(mispinned.http)).body.revocation?.state).toBe('none');
    // (2) Fail open: serves without a CRL, and says which state it is in.
    const c = await connect(open.url, good);
    expect(c.identity?.roomName).toBe('Good');
    c.close();
    const ho = await health(open.http);
    expect(ho.status).toBe(200);
    expect(ho.body.revocation).toMatchObject({ state: 'none', acceptingNewSessions: true });

    // (1) A real CRL arrives: the relay serves again; a device revoked while connected is cut off.
    forged.der = await crl([], 1n);
    await expect
      .poll(async () => (await health(live.http)).status, { timeout: 20_000, interval: 200 })
      .toBe(200);
    const session = await connect(live.url, good);
    const closed = new Promise<number>((r) => session.once('close', (code) => r(code)));
    forged.der = await crl([good], 2n);
    expect(await closed).toBe(4403);
    await expect(connect(live.url, good)).rejects.toMatchObject({ code: 'certificate-revoked' });
    for (const r of [live, open, mispinned]) await stop(r.proc);
  }, 120_000);
});
