// People sign in with the org's OpenID Connect provider and exchange the ID token for a short-lived
// person certificate (like Sigstore's Fulcio): the page made an Ed25519 key, asked the IdP for a
// token whose nonce is personKeyNonce(key), and proves it holds the key. We check the token (jose:
// issuer, signature, audience, expiry), the nonce, the proof, the email, and that the token was
// never used before (durably, by SHA-256, until its exp), then issue with the org CA.
//   GET  /api/people/config       what the page needs to start code + PKCE against the IdP
//   POST /api/people/certificate  { idToken, publicKey, proof } → { certificate, notAfter, person }
//   GET  /api/people/trust        the anchors the page's TrustStore uses
// Refusals: { statusCode, error: <code>, message } with the codes of PeopleRefusalCode.
import { createHash, createPublicKey, verify } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { PkiError } from '../../src/pki/errors.js';
import { ed25519Spki, issuePersonCertificate } from '../../src/pki/person.js';
import {
  fromBase64url,
  isPlausibleEmail,
  MAX_PERSON_NAME_LENGTH,
  PERSON_CERT_MAX_MS,
  personCertRequestBytes,
  personKeyNonce,
} from '../../src/pki/person-profile.js';
import { createIdTokenVerifier, PeopleRefusal } from '../oidc/id-token.js';
import { httpError, type ResolvedOptions } from './app.js';
import {
  ErrorReply,
  PeopleConfigReply,
  PeopleTrustReply,
  PersonCertificateReply,
  PersonCertificateRequest,
} from './schemas.js';

export interface PeopleOptions {
  /** The org's OIDC issuer (exactly as in its discovery document). */
  issuer: string;
  /** Our public client at the IdP (the ID token's audience). */
  clientId: string;
  /** Where the IdP sends the page back (the /join/ page). */
  redirectUri: string;
  /** Only these email domains may sign in (lowercase); all when absent. */
  allowedEmailDomains?: string[];
  /** Person certificate lifetime, at most 12 h (the default). */
  certValidityMs?: number;
  /** Relay WebSocket URL the page connects to (told to the page in /api/people/config). */
  relayUrl?: string;
  /** Partner-org CAs the page trusts for cross-organisation meetings (PEM). */
  partnerCaPems?: string[];
  /** Clock tolerance with the IdP for exp/iat (default 30 s). */
  clockToleranceSeconds?: number;
}

const errors = { 400: ErrorReply, 401: ErrorReply, 403: ErrorReply, 429: ErrorReply, 503: ErrorReply };

function refuse(r: PeopleRefusal): Error {
  return Object.assign(httpError(r.statusCode, r.message), { code: r.code });
}

/** A display name fit for a certificate and the wall: no control characters, bounded. */
function displayName(name: unknown, email: string): string {
  const text = typeof name === 'string' ? name.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').trim() : '';
  const chars = Array.from(text || email.split('@')[0] || email);
  return chars.slice(0, MAX_PERSON_NAME_LENGTH).join('');
}

/** https, or http on loopback only (the dev IdP): tokens and keys must not cross a network in clear. */
export function checkIssuerUrl(issuer: string): void {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new Error(`people.issuer is not a URL: ${issuer}`);
  }
  const loopback = ['[::1]', 'localhost'].includes(url.hostname) || /^127\./.test(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new Error(`people.issuer must be https (http only on loopback): ${issuer}`);
}

export function registerPeopleRoutes(
  app: FastifyInstance,
  opts: ResolvedOptions,
  people: PeopleOptions,
): void {
  checkIssuerUrl(people.issuer);
  const validityMs = Math.min(PERSON_CERT_MAX_MS, people.certValidityMs ?? PERSON_CERT_MAX_MS);
  const domains = people.allowedEmailDomains?.map((d) => d.toLowerCase());
  const verifyIdToken = createIdTokenVerifier({
    issuer: people.issuer,
    clientId: people.clientId,
    now: opts.now,
    ...(people.clockToleranceSeconds !== undefined
      ? { clockToleranceSeconds: people.clockToleranceSeconds }
      : {}),
  });
  const limit = { rateLimit: { max: opts.rateLimits.peopleCertificatesPerMinute, timeWindow: 60_000 } };

  app.get(
    '/api/people/config',
    {
      schema: {
        summary: 'How the web page signs people in',
        tags: ['people'],
        response: { 200: PeopleConfigReply },
      },
    },
    async () => ({
      issuer: people.issuer,
      clientId: people.clientId,
      redirectUri: people.redirectUri,
      org: opts.org,
      ...(people.relayUrl ? { relayUrl: people.relayUrl } : {}),
    }),
  );

  app.get(
    '/api/people/trust',
    {
      schema: {
        summary: "The trust anchors of the page's TrustStore",
        tags: ['people'],
        response: { 200: PeopleTrustReply, ...errors },
      },
      config: limit,
    },
    async () => ({
      orgCaPems: [opts.ca.certPem],
      partnerCaPems: people.partnerCaPems ?? [],
      revokedSerials: (await opts.store.listRevoked()).map((r) => r.serial),
    }),
  );

  app.post<{ Body: PersonCertificateRequest | undefined }>(
    '/api/people/certificate',
    {
      // The body carries an ID token: never log it (Fastify does not log bodies; keep it that way).
      schema: {
        summary:
          'Exchange an ID token (nonce bound to the key) and a proof of possession for a person certificate',
        tags: ['people'],
        body: PersonCertificateRequest,
        response: { 200: PersonCertificateReply, ...errors },
      },
      config: limit,
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => {
      const { idToken, publicKey, proof } = req.body ?? {};
      try {
        if (!idToken)
          throw new PeopleRefusal(
            'sign-in-required',
            "sign in with the organisation's identity provider first (no ID token)",
          );
        const raw = publicKey === undefined ? undefined : fromBase64url(publicKey);
        const sig = proof === undefined ? undefined : fromBase64url(proof);
        if (raw?.length !== 32)
          throw new PeopleRefusal('bad-proof', 'publicKey must be a 32-byte Ed25519 key in base64url', 400);
        if (sig?.length !== 64)
          throw new PeopleRefusal('bad-proof', 'proof must be a 64-byte Ed25519 signature in base64url', 400);
        const claims = await verifyIdToken(idToken);
        if (claims.nonce !== personKeyNonce(raw))
          throw new PeopleRefusal(
            'nonce-mismatch',
            'the ID token was issued for another key (its nonce is not this key’s): sign in again with this key',
          );
        const key = createPublicKey({ key: Buffer.from(ed25519Spki(raw)), format: 'der', type: 'spki' });
        let proven = false;
        try {
          proven = verify(null, personCertRequestBytes(idToken, raw), key, sig);
        } catch {
          proven = false;
        }
        if (!proven)
          throw new PeopleRefusal('bad-proof', 'the proof of possession does not verify with this key');
        const email = typeof claims.email === 'string' ? claims.email : '';
        if (!isPlausibleEmail(email))
          throw new PeopleRefusal('token-invalid', 'the ID token carries no usable email address');
        if (claims.email_verified !== true)
          throw new PeopleRefusal(
            'email-not-verified',
            `the identity provider has not verified ${email}`,
            403,
          );
        const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
        if (domains && !domains.includes(domain))
          throw new PeopleRefusal(
            'email-domain',
            `${domain} addresses may not join meetings of ${opts.org}`,
            403,
          );
        // Last, once everything else holds: a refused request does not burn the token.
        const now = opts.now();
        const tokenHash = createHash('sha256').update(idToken).digest('hex');
        const exp = new Date((claims.exp ?? 0) * 1000).toISOString();
        if (!(await opts.store.useIdToken(tokenHash, exp, now.toISOString())))
          throw new PeopleRefusal('token-replayed', 'this ID token was already used: sign in again');
        const person = { name: displayName(claims.name, email), email, org: opts.org };
        const issued = await issuePersonCertificate({
          ca: opts.ca,
          publicKeyRaw: raw,
          person,
          validityMs,
          now,
        });
        const notAfter = issued.notAfter.toISOString();
        await opts.store.recordPersonCertificate({
          email,
          serial: issued.serial,
          notAfter,
          now: now.toISOString(),
        });
        req.log.info({ email, serial: issued.serial, notAfter }, 'person certificate issued');
        return { certificate: issued.certPem, notAfter, person };
      } catch (err) {
        if (err instanceof PeopleRefusal) {
          req.log.info({ refused: err.code }, 'person certificate refused');
          throw refuse(err);
        }
        if (err instanceof PkiError)
          throw Object.assign(httpError(400, err.message), { code: 'token-invalid' });
        throw err;
      }
    },
  );
}
