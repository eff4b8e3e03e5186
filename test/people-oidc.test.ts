// People sign-in end to end against a real OpenID Connect provider on loopback (oidc-provider,
// provisioning/oidc/dev-provider.ts) and the provisioning service's /api/people routes, on SQLite
// and PostgreSQL: a good sign-in gets a certificate naming the person; everything else is refused
// with a clear code — another issuer, a forged signature, another audience, an expired token (a real
// one: a provider whose ID tokens live 1 s), a replayed token (also after a restart), a nonce for
// another key, a bad proof, an unverified email or another domain, and no token at all.
import { generateKeyPairSync, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { generateKeyPair, SignJWT } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  signInHeadless,
  startDevOidcProvider,
  type DevOidcProvider,
} from '../provisioning/oidc/dev-provider.js';
import { buildService, type PeopleOptions } from '../provisioning/service/app.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  PERSON_CERT_MAX_MS,
  personCertRequestBytes,
  personKeyNonce,
  rawPublicKey,
  TrustStore,
  verifyPersonCertificate,
} from '../src/pki/index.js';
import { base64url } from '../src/pki/person-profile.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';

const REDIRECT = 'http://127.0.0.1:8080/join/';
let ca: CertificateAuthority;
let idp: DevOidcProvider;
let otherIdp: DevOidcProvider;
let shortIdp: DevOidcProvider;
const cluster = new PostgresCluster();

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'Example CA', org: 'Example Corp', validityDays: 30 });
  [idp, otherIdp, shortIdp] = await Promise.all([
    startDevOidcProvider({ host: '127.0.0.1', redirectUris: [REDIRECT] }),
    startDevOidcProvider({ host: '127.0.0.1', redirectUris: [REDIRECT] }),
    startDevOidcProvider({ host: '127.0.0.1', redirectUris: [REDIRECT], idTokenTtlSeconds: 1 }),
    cluster.start(),
  ]);
}, 90_000);
afterAll(async () => {
  await Promise.all([idp?.close(), otherIdp?.close(), shortIdp?.close()]);
  await cluster.stop();
});

interface PersonKey {
  privateKey: KeyObject;
  raw: Uint8Array;
  nonce: string;
}
function personKey(): PersonKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return { privateKey, raw, nonce: personKeyNonce(raw) };
}

/** The request body a page sends: the token, its key, and the proof over both. */
function body(idToken: string, key: PersonKey, signer: PersonKey = key, signedToken = idToken) {
  return {
    idToken,
    publicKey: base64url(key.raw),
    proof: base64url(sign(null, personCertRequestBytes(signedToken, key.raw), signer.privateKey)),
  };
}

const signIn = (provider: DevOidcProvider, user: string, nonce: string) =>
  signInHeadless({
    issuer: provider.issuer,
    clientId: provider.clientId,
    redirectUri: REDIRECT,
    user,
    nonce,
  });

async function service(store: ProvisioningStore, people: Partial<PeopleOptions> = {}, log?: Writable) {
  return buildService({
    store,
    ca,
    org: 'Example Corp',
    publicUrl: 'http://127.0.0.1:8080',
    logger: log ? (pino({ level: 'info' }, log) as never) : false,
    people: { issuer: idp.issuer, clientId: idp.clientId, redirectUri: REDIRECT, ...people },
  });
}

async function post(app: FastifyInstance, payload: unknown) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/people/certificate',
    payload: payload as object,
  });
  return { status: res.statusCode, json: res.json() as Record<string, unknown> };
}

function refusal(code: string, status = 401) {
  return {
    status,
    json: expect.objectContaining({ statusCode: status, error: code, message: expect.any(String) }),
  };
}

describe.each(backends)('people sign-in on %s', (backend: BackendName) => {
  it('a good sign-in gets a certificate naming the person, logged without the token', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    const lines: string[] = [];
    const log = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const app = await service(store, {}, log);
    try {
      const config = await app.inject({ method: 'GET', url: '/api/people/config' });
      expect(config.json()).toEqual({
        issuer: idp.issuer,
        clientId: idp.clientId,
        redirectUri: REDIRECT,
        org: 'Example Corp',
      });
      const key = personKey();
      const idToken = await signIn(idp, 'alice', key.nonce);
      const res = await post(app, body(idToken, key));
      expect(res.status).toBe(200);
      expect(res.json.person).toEqual({
        name: 'Alice Smith',
        email: 'alice@example.org',
        org: 'Example Corp',
      });
      const cert = String(res.json.certificate);
      const verified = await verifyPersonCertificate(cert, ca.certPem);
      expect(verified).toMatchObject({
        name: 'Alice Smith',
        email: 'alice@example.org',
        org: 'Example Corp',
      });
      expect(Buffer.from(verified.publicKeyRaw).equals(Buffer.from(key.raw))).toBe(true);
      expect(verified.notAfter.toISOString()).toBe(res.json.notAfter);
      expect(verified.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(PERSON_CERT_MAX_MS);
      // What the page's TrustStore gets from /api/people/trust verifies it too.
      const trust = (await app.inject({ method: 'GET', url: '/api/people/trust' })).json();
      expect(trust).toEqual({ orgCaPems: [ca.certPem], partnerCaPems: [], revokedSerials: [] });
      const der = new Uint8Array(new X509Certificate(cert).raw);
      expect(new TrustStore({ orgCaPem: trust.orgCaPems[0] }).verify(der, key.raw)).toMatchObject({
        ok: true,
        identity: { kind: 'person', person: { name: 'Alice Smith', email: 'alice@example.org' } },
      });
      const issuedLog = lines.find((l) => l.includes('person certificate issued'));
      expect(issuedLog).toContain('alice@example.org');
      expect(issuedLog).toContain(verified.serial);
      expect(lines.join('')).not.toContain(idToken);
      expect(lines.join('')).not.toContain(idToken.split('.')[2]);
      const audit = await store.listAudit({});
      expect(
        audit.some((a) => a.action === 'person-certificate' && JSON.stringify(a).includes(verified.serial)),
      ).toBe(true);
    } finally {
      await app.close();
      await cleanup();
    }
  });

  it('refuses another issuer, a forged signature, another audience, no token, and says why', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    const app = await service(store);
    const strangers = await service(store, { clientId: 'another-app' });
    try {
      const key = personKey();
      // A real token from another provider (its own keys), bound to this key, with a good proof.
      const foreign = await signIn(otherIdp, 'alice', key.nonce);
      const r1 = await post(app, body(foreign, key));
      expect(r1).toMatchObject(refusal('wrong-issuer'));
      expect(r1.json.message).toContain(otherIdp.issuer);
      // A token claiming to be from our issuer, signed with a key that is not the IdP's.
      const { privateKey } = await generateKeyPair('RS256');
      const forged = await new SignJWT({
        email: 'alice@example.org',
        email_verified: true,
        name: 'Alice Smith',
        nonce: key.nonce,
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'forged' })
        .setIssuer(idp.issuer)
        .setAudience(idp.clientId)
        .setSubject('alice')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
      expect(await post(app, body(forged, key))).toMatchObject(refusal('token-invalid'));
      // alg none / garbage.
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
        JSON.stringify({ iss: idp.issuer, aud: idp.clientId, nonce: key.nonce, exp: 9e9, iat: 1, sub: 'a' }),
      ).toString('base64url')}.`;
      expect(await post(app, body(none, key))).toMatchObject(refusal('token-invalid'));
      expect(await post(app, body('not-a-token', key))).toMatchObject(refusal('token-invalid'));
      // A good token of our IdP for our client, presented to a service configured for another client.
      const good = await signIn(idp, 'alice', key.nonce);
      const r2 = await post(strangers, body(good, key));
      expect(r2).toMatchObject(refusal('token-invalid'));
      expect(r2.json.message).toMatch(/not for this application/);
      // No sign-in at all.
      expect(await post(app, {})).toMatchObject(refusal('sign-in-required'));
      expect(await post(app, { publicKey: base64url(key.raw) })).toMatchObject(refusal('sign-in-required'));
      const bare = await app.inject({ method: 'POST', url: '/api/people/certificate' });
      expect(bare.statusCode).toBe(401);
      expect(bare.json()).toMatchObject({ error: 'sign-in-required' });
      // The refused attempts did not burn the good token (it went to the wrong service only).
      expect((await post(app, body(good, key))).status).toBe(200);
    } finally {
      await app.close();
      await strangers.close();
      await cleanup();
    }
  });

  it('refuses an expired token (a real one: 1 s lifetime)', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    const app = await service(store, {
      issuer: shortIdp.issuer,
      clientId: shortIdp.clientId,
      clockToleranceSeconds: 0,
    });
    try {
      const key = personKey();
      const idToken = await signIn(shortIdp, 'alice', key.nonce);
      const exp = JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString()).exp as number;
      await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 1100));
      const res = await post(app, body(idToken, key));
      expect(res).toMatchObject(refusal('token-expired'));
      expect(res.json.message).toMatch(/expired: sign in again/);
    } finally {
      await app.close();
      await cleanup();
    }
  });

  it('accepts a token once: a replay is refused, also after the service restarts', async () => {
    const opened = await freshStore(backend, cluster);
    let store = opened.store;
    let app = await service(store);
    try {
      const key = personKey();
      const idToken = await signIn(idp, 'bob', key.nonce);
      expect((await post(app, body(idToken, key))).status).toBe(200);
      const again = await post(app, body(idToken, key));
      expect(again).toMatchObject(refusal('token-replayed'));
      expect(again.json.message).toMatch(/already used/);
      // Concurrent replays: exactly one could ever win (here: none, it is spent).
      const key2 = personKey();
      const fresh = await signIn(idp, 'bob', key2.nonce);
      const race = await Promise.all([1, 2, 3].map(() => post(app, body(fresh, key2))));
      expect(race.filter((r) => r.status === 200)).toHaveLength(1);
      expect(race.filter((r) => r.json.error === 'token-replayed')).toHaveLength(2);
      // Restart: a new store handle on the same database, a new service.
      await app.close();
      await store.close();
      store = await openStore({ dataDir: opened.dataDir, databaseUrl: opened.databaseUrl });
      app = await service(store);
      expect(await post(app, body(idToken, key))).toMatchObject(refusal('token-replayed'));
      // Expired rows are pruned (the token's exp is minutes away: a clock an hour ahead prunes it).
      expect(await store.purgeUsedIdTokens(new Date(Date.now() + 3600_000).toISOString())).toBe(2);
    } finally {
      await app.close();
      await store.close();
      await opened.cleanup();
    }
  });

  it('refuses a token whose nonce is for another key, and a bad proof of possession', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    const app = await service(store);
    try {
      const mine = personKey();
      const thief = personKey();
      const idToken = await signIn(idp, 'alice', mine.nonce);
      // Someone who saw the token presents it with their own key and a valid proof by that key.
      const stolen = await post(app, body(idToken, thief));
      expect(stolen).toMatchObject(refusal('nonce-mismatch'));
      expect(stolen.json.message).toMatch(/another key/);
      // The right key, but the proof is by another key / over another token / garbage.
      expect(await post(app, body(idToken, mine, thief))).toMatchObject(refusal('bad-proof'));
      expect(await post(app, body(idToken, mine, mine, `${idToken}x`))).toMatchObject(refusal('bad-proof'));
      expect(await post(app, { ...body(idToken, mine), proof: base64url(new Uint8Array(64)) })).toMatchObject(
        refusal('bad-proof'),
      );
      expect(await post(app, { ...body(idToken, mine), proof: 'AAAA' })).toMatchObject(
        refusal('bad-proof', 400),
      );
      expect(await post(app, { ...body(idToken, mine), publicKey: 'AAAA' })).toMatchObject(
        refusal('bad-proof', 400),
      );
      // None of that spent the token: the owner still gets a certificate.
      expect((await post(app, body(idToken, mine))).status).toBe(200);
    } finally {
      await app.close();
      await cleanup();
    }
  });

  it('refuses an unverified email, and an email outside the allowed domains', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    const app = await service(store);
    const corp = await service(store, { allowedEmailDomains: ['corp.example'] });
    try {
      const key = personKey();
      const eve = await signIn(idp, 'eve', key.nonce);
      expect(await post(app, body(eve, key))).toMatchObject(refusal('email-not-verified', 403));
      const alice = await signIn(idp, 'alice', key.nonce);
      const res = await post(corp, body(alice, key));
      expect(res).toMatchObject(refusal('email-domain', 403));
      expect(res.json.message).toContain('example.org');
    } finally {
      await app.close();
      await corp.close();
      await cleanup();
    }
  });
});

describe('people sign-in limits', () => {
  it('rate-limits certificate requests per client address', async () => {
    const { store, cleanup } = await freshStore('sqlite', undefined);
    const app = await buildService({
      store,
      ca,
      org: 'Example Corp',
      publicUrl: 'http://127.0.0.1:8080',
      logger: false,
      rateLimits: { peopleCertificatesPerMinute: 2 },
      people: { issuer: idp.issuer, clientId: idp.clientId, redirectUri: REDIRECT },
    });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await post(app, {})).status);
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await app.close();
      await cleanup();
    }
  });

  it('refuses an issuer that is not https (except on loopback) at start-up', async () => {
    const { store, cleanup } = await freshStore('sqlite', undefined);
    try {
      await expect(service(store, { issuer: 'http://idp.example.org' })).rejects.toThrow(/must be https/);
    } finally {
      await cleanup();
    }
  });
});

describe('dev OIDC provider', () => {
  it('refuses a wrong password and an unknown user at its login form', async () => {
    const nonce = personKey().nonce;
    await expect(
      signInHeadless({
        issuer: idp.issuer,
        clientId: idp.clientId,
        redirectUri: REDIRECT,
        user: 'alice',
        password: 'nope',
        nonce,
      }),
    ).rejects.toThrow(/wrong password/);
    await expect(signIn(idp, 'mallory', nonce)).rejects.toThrow(/unknown user/);
  });

  it('requires PKCE, and lets only the page origin call the token endpoint from a browser', async () => {
    const auth = new URL('/auth', idp.issuer);
    for (const [k, v] of Object.entries({
      client_id: idp.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'openid',
      nonce: 'n',
    }))
      auth.searchParams.set(k, v);
    const res = await fetch(auth, { redirect: 'manual' });
    const location = new URL(res.headers.get('location') ?? '', idp.issuer);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toMatch(/PKCE/);
    const post = (origin: string) =>
      fetch(new URL('/token', idp.issuer), {
        method: 'POST',
        headers: { origin, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', client_id: idp.clientId }),
      });
    expect((await post('http://127.0.0.1:8080')).headers.get('access-control-allow-origin')).toBe(
      'http://127.0.0.1:8080',
    );
    expect((await post('http://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });
});
