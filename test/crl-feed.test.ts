// RevocationFeed (src/pki/revocation-feed.ts), the relay's RevocationSource: fetches the org CRL,
// refuses an older one (also after a restart: the newest is persisted), fails closed for new
// sessions with no CRL or one past nextUpdate + grace, and ignores tampered or foreign CRLs.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  CrlRefusedError,
  combineRevocationSources,
  createCertificateAuthority,
  crlStateFileName,
  issueCrl,
  PkiError,
  RevocationFeed,
  type RevocationFeedOptions,
} from '../src/pki/index.js';

const HOUR = 3600_000;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: Server;
let baseUrl: string;
/** What the stand-in provisioning service answers at GET /v1/revocations. */
let served: { status: number; body: Buffer } = { status: 404, body: Buffer.alloc(0) };
let requests = 0;
const dirs: string[] = [];
const t0 = new Date('2026-05-01T12:00:00Z');

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
  otherCa = await createCertificateAuthority({
    commonName: 'Mallory CA',
    org: 'Mallory',
    validityDays: 3650,
  });
  server = createServer((req, res) => {
    requests++;
    if (req.url !== '/v1/revocations') return void res.writeHead(404).end();
    res.writeHead(served.status, { 'content-type': 'application/pkix-crl' }).end(served.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}, 30_000);
afterAll(async () => {
  await new Promise((r) => server.close(r));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'sealroom-crl-feed-'));
  dirs.push(d);
  return d;
}

async function serve(
  serials: string[],
  crlNumber: bigint,
  opts: { authority?: CertificateAuthority; thisUpdate?: Date } = {},
) {
  const thisUpdate = opts.thisUpdate ?? t0;
  const { der } = await issueCrl(opts.authority ?? ca, {
    entries: serials.map((serial) => ({ serial, revokedAt: thisUpdate })),
    crlNumber,
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 24 * HOUR),
  });
  served = { status: 200, body: der };
  return der;
}

function feed(o: Partial<RevocationFeedOptions> & { clock?: { now: Date } } = {}): RevocationFeed {
  const { clock, ...rest } = o;
  return new RevocationFeed({ baseUrl, caCertPem: ca.certPem, now: () => clock?.now ?? t0, ...rest });
}

describe('RevocationFeed', () => {
  it('fetches, verifies and applies the CRL; emits change only for a newer one', async () => {
    await serve(['aa01'], 1n);
    const f = feed();
    let changes = 0;
    f.on('change', () => changes++);
    expect(f.status()).toMatchObject({ state: 'none', revoked: 0, acceptingNewSessions: false });
    expect(f.acceptsNewSessions()).toBe(false);
    expect(await f.refresh()).toBe(true);
    expect(f.isRevoked('AA01')).toBe(true);
    expect(f.isRevoked('bb02')).toBe(false);
    expect(f.status()).toMatchObject({
      state: 'fresh',
      crlNumber: '1',
      revoked: 1,
      acceptingNewSessions: true,
    });
    expect(await f.refresh()).toBe(false); // the same CRL again
    await serve(['aa01', 'bb02'], 2n);
    expect(await f.refresh()).toBe(true);
    expect(f.isRevoked('bb02')).toBe(true);
    expect(changes).toBe(2);
  });

  it('refuses an older CRL, also after a restart (persisted newest), and a same-number different CRL', async () => {
    const stateDir = tmp();
    const errors: string[] = [];
    const first = feed({ stateDir, onError: (e) => errors.push(e.message) });
    await first.load();
    await serve(['aa01'], 5n);
    expect(await first.refresh()).toBe(true);
    const older = await serve([], 4n); // a replay of CRL #4 that did not list aa01
    await expect(first.refresh()).rejects.toBeInstanceOf(CrlRefusedError);
    expect(first.isRevoked('aa01')).toBe(true);
    expect(readdirSync(stateDir)).toEqual([crlStateFileName(ca.certPem)]);
    expect(crlStateFileName(ca.certPem)).toMatch(/^crl-[0-9a-f]{16}\.der$/);

    // Restart: a new feed loads CRL #5 from disk before any fetch, and still refuses #4.
    const second = feed({ stateDir });
    expect(second.status().state).toBe('none');
    await second.load();
    expect(second.status()).toMatchObject({ state: 'fresh', crlNumber: '5', acceptingNewSessions: true });
    expect(second.isRevoked('aa01')).toBe(true);
    await expect(second.apply(older)).rejects.toThrow(/CRL number 4 refused/);
    await expect(second.refresh()).rejects.toBeInstanceOf(CrlRefusedError);
    // A different CRL with the held number is refused too (one CA never signs two of them).
    await serve(['cc03'], 5n);
    await expect(second.refresh()).rejects.toBeInstanceOf(CrlRefusedError);
    expect(second.isRevoked('cc03')).toBe(false);
    expect(errors).toEqual([]);
  });

  it('without a CRL it fails closed for new sessions; --crl-fail-open accepts (not recommended)', async () => {
    served = { status: 503, body: Buffer.alloc(0) };
    const closed = feed();
    await expect(closed.refresh()).rejects.toThrow(/HTTP 503/);
    expect(closed.status()).toEqual({ state: 'none', revoked: 0, acceptingNewSessions: false });
    const open = feed({ failClosed: false });
    expect(open.acceptsNewSessions()).toBe(true);
    expect(open.status()).toMatchObject({ state: 'none', acceptingNewSessions: true });
  });

  it('grace: fresh until nextUpdate, then stale (still accepting) for the grace, then expired (refusing)', async () => {
    await serve(['aa01'], 10n);
    const clock = { now: t0 };
    const f = feed({ clock, graceMs: 2 * HOUR });
    await f.refresh();
    const at = (ms: number) => {
      clock.now = new Date(t0.getTime() + ms);
      return f.status();
    };
    expect(at(24 * HOUR)).toMatchObject({ state: 'fresh', acceptingNewSessions: true });
    expect(at(25 * HOUR)).toMatchObject({ state: 'stale', acceptingNewSessions: true });
    expect(at(26 * HOUR + 1)).toMatchObject({ state: 'expired', acceptingNewSessions: false });
    expect(f.isRevoked('aa01')).toBe(true); // the expired CRL still revokes
    expect(f.acceptsNewSessions()).toBe(false);
    // A fresh CRL puts things right.
    await serve(['aa01'], 11n, { thisUpdate: clock.now });
    expect(await f.refresh()).toBe(true);
    expect(f.status()).toMatchObject({ state: 'fresh', crlNumber: '11', acceptingNewSessions: true });
    // Fail open keeps accepting when expired, and says the state.
    const open = feed({ clock, graceMs: 0, failClosed: false });
    await open.apply(served.body);
    clock.now = new Date(clock.now.getTime() + 25 * HOUR);
    expect(open.status()).toMatchObject({ state: 'expired', acceptingNewSessions: true });
  });

  it('refuses a tampered CRL, one from another CA, and garbage; keeps the CRL in force', async () => {
    const good = await serve(['aa01'], 20n);
    const f = feed();
    await f.refresh();
    const tampered = Buffer.from(good);
    tampered[tampered.length - 5] = (tampered[tampered.length - 5] ?? 0) ^ 1;
    served = { status: 200, body: tampered };
    await expect(f.refresh()).rejects.toMatchObject({ code: 'bad-signature' });
    await serve([], 21n, { authority: otherCa });
    await expect(f.refresh()).rejects.toMatchObject({ code: 'bad-chain' });
    served = { status: 200, body: Buffer.from('{"issuedAt":"2030-01-01","revoked":[],"signature":""}') };
    await expect(f.refresh()).rejects.toBeInstanceOf(PkiError);
    expect(f.status()).toMatchObject({ crlNumber: '20', acceptingNewSessions: true });
    expect(f.isRevoked('aa01')).toBe(true);
  });

  it('ignores a tampered persisted CRL (reported), then takes the service one', async () => {
    const stateDir = tmp();
    await serve(['aa01'], 30n);
    const f = feed({ stateDir });
    await f.refresh();
    const file = join(stateDir, crlStateFileName(ca.certPem));
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    writeFileSync(file, bytes);
    const errors: string[] = [];
    const g = feed({ stateDir, onError: (e) => errors.push(e.message) });
    await g.load();
    expect(g.status().state).toBe('none');
    expect(errors.join()).toMatch(/ignoring the persisted CRL/);
    expect(await g.refresh()).toBe(true);
    expect(readFileSync(file).equals(served.body)).toBe(true);
  });

  it('enforces a newer CRL even when it cannot be persisted, and reports it', async () => {
    const notADir = join(tmp(), 'file');
    writeFileSync(notADir, 'x'); // stateDir is a file: every write fails
    const errors: string[] = [];
    const f = feed({ stateDir: notADir, onError: (e) => errors.push(e.message) });
    await serve(['aa01'], 50n);
    expect(await f.refresh()).toBe(true);
    expect(f.isRevoked('aa01')).toBe(true);
    expect(errors.join()).toMatch(/CRL 50 in force but not persisted/);
    expect(await f.refresh()).toBe(false); // tries again, reports again
    expect(errors.length).toBe(2);
  });

  it('polls with start()/stop(); combines one feed per CA into one source', async () => {
    await serve(['aa01'], 40n);
    const f = feed({ intervalMs: 50 });
    const before = requests;
    f.start();
    await expect.poll(() => requests - before, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    f.stop();
    expect(f.status().crlNumber).toBe('40');

    const other = new RevocationFeed({ baseUrl, caCertPem: otherCa.certPem, now: () => t0 });
    const both = combineRevocationSources([f, other]);
    expect(both.isRevoked('aa01')).toBe(true);
    expect(both.acceptsNewSessions()).toBe(false); // the other CA has no CRL yet: fail closed
    expect(both.status()).toMatchObject({ state: 'none', revoked: 1, acceptingNewSessions: false });
    let changes = 0;
    const listener = () => changes++;
    both.on('change', listener);
    await serve(['bb02'], 1n, { authority: otherCa });
    await other.refresh();
    expect(changes).toBe(1);
    expect(both.isRevoked('bb02')).toBe(true);
    expect(both.status()).toMatchObject({ state: 'fresh', revoked: 2, acceptingNewSessions: true });
    both.off('change', listener);
    await serve(['bb02', 'cc03'], 2n, { authority: otherCa });
    await other.refresh();
    expect(changes).toBe(1);
  });
});
