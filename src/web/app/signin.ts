// Sign-in: authorization code + PKCE with the organisation's OpenID Connect provider (openid-client),
// the ID token's nonce bound to this browser's key, then a person certificate from the provisioning
// service (the page's own origin). The identity provider redirects back to this page, so what the
// page must remember across the redirect (PKCE verifier, state, the join link's fragment) waits in
// IndexedDB; the key pair is there already.
import * as oidc from 'openid-client';
import { idbDelete, idbGet, idbSet } from './idb.js';
import { base64url, loadOrCreatePersonKey, type PersonKey, personKeyNonce, possessionProof } from './keys.js';
import { certificateRefusal, idpRefusal } from './refusals.js';

export interface PeopleConfig {
  issuer: string;
  clientId: string;
  redirectUri: string;
  org: string;
  relayUrl?: string;
}

export interface PersonCertificate {
  certificate: string;
  notAfter: string;
  person: { name: string; email: string; org: string };
}

export interface SignedIn extends PersonCertificate {
  key: PersonKey;
}

/** A refusal to show: the sentence and, when the service or IdP gave one, its code. */
export class SignInError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'SignInError';
  }
}

const PENDING = 'pending-sign-in';
const CERT = 'person-certificate';
/** A certificate closer than this to its end is not offered for a new meeting. */
const MIN_REMAINING_MS = 5 * 60_000;

interface Pending {
  verifier: string;
  state: string;
  nonce: string;
  issuer: string;
  /** The join link's fragment, restored after the redirect. */
  fragment: string;
  startedAt: number;
}

export async function fetchPeopleConfig(): Promise<PeopleConfig> {
  const res = await fetch('/api/people/config', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new SignInError(`Sign-in is not set up on this service (HTTP ${res.status}). Tell IT.`);
  const body = (await res.json()) as Partial<PeopleConfig>;
  if (
    typeof body.issuer !== 'string' ||
    typeof body.clientId !== 'string' ||
    typeof body.redirectUri !== 'string'
  )
    throw new SignInError('The sign-in configuration of this service is incomplete. Tell IT.');
  return body as PeopleConfig;
}

const isLoopback = (url: URL) => ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);

/** Discovery against the issuer; plain HTTP only for a loopback (development) provider. */
async function discover(cfg: PeopleConfig): Promise<oidc.Configuration> {
  const issuer = new URL(cfg.issuer);
  try {
    return await oidc.discovery(issuer, cfg.clientId, undefined, oidc.None(), {
      ...(issuer.protocol === 'http:' && isLoopback(issuer) ? { execute: [oidc.allowInsecureRequests] } : {}),
    });
  } catch (err) {
    throw new SignInError(
      `The identity provider at ${issuer.origin} could not be reached (${(err as Error).message}).`,
      'idp-unreachable',
    );
  }
}

/** Makes a new key, remembers the PKCE state and goes to the identity provider (does not return). */
export async function startSignIn(cfg: PeopleConfig): Promise<void> {
  const config = await discover(cfg);
  const key = await loadOrCreatePersonKey(true);
  await idbDelete(CERT); // the old certificate names the old key
  const nonce = await personKeyNonce(key.publicKeyRaw);
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const pending: Pending = {
    verifier,
    state,
    nonce,
    issuer: cfg.issuer,
    fragment: location.hash,
    startedAt: Date.now(),
  };
  await idbSet(PENDING, pending);
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: cfg.redirectUri,
    scope: 'openid profile email',
    response_type: 'code',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    nonce,
    state,
  });
  location.assign(url.href);
}

/** True when this page load is the identity provider's redirect back (code or error in the query). */
export function isSignInCallback(): boolean {
  const q = new URLSearchParams(location.search);
  return q.has('state') && (q.has('code') || q.has('error'));
}

/**
 * Finishes a sign-in the identity provider redirected back from: code → ID token (PKCE, state and
 * nonce checked by openid-client), then the certificate. Restores the join link either way.
 */
export async function finishSignIn(cfg: PeopleConfig): Promise<SignedIn> {
  const pending = await idbGet<Pending>(PENDING);
  const callback = new URL(cfg.redirectUri);
  callback.search = location.search;
  await idbDelete(PENDING);
  // The code is single-use: take it out of the address bar (and history) before anything else.
  history.replaceState(null, '', location.pathname + (pending?.fragment ?? ''));
  const q = callback.searchParams;
  if (q.has('error'))
    throw new SignInError(
      idpRefusal(q.get('error') ?? '', q.get('error_description')),
      q.get('error') ?? undefined,
    );
  if (!pending)
    throw new SignInError('This sign-in was not started from this page. Sign in again.', 'no-pending');
  if (pending.issuer !== cfg.issuer)
    throw new SignInError(
      'The sign-in configuration changed during sign-in. Sign in again.',
      'config-changed',
    );
  const key = await loadOrCreatePersonKey();
  if ((await personKeyNonce(key.publicKeyRaw)) !== pending.nonce)
    throw new SignInError('This browser’s key changed during sign-in. Sign in again.', 'nonce-mismatch');
  const config = await discover(cfg);
  let idToken: string | undefined;
  try {
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
    });
    idToken = tokens.id_token;
  } catch (err) {
    const e = err as { error?: string; error_description?: string; message?: string };
    if (e.error) throw new SignInError(idpRefusal(e.error, e.error_description), e.error);
    throw new SignInError(
      `The identity provider’s answer was refused: ${e.message ?? String(err)}`,
      'token-invalid',
    );
  }
  if (!idToken) throw new SignInError('The identity provider returned no ID token.', 'token-invalid');
  return { ...(await requestCertificate(key, idToken)), key };
}

/** POST /api/people/certificate with the ID token and proof of possession of the key. */
export async function requestCertificate(key: PersonKey, idToken: string): Promise<PersonCertificate> {
  const res = await fetch('/api/people/certificate', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      idToken,
      publicKey: base64url(key.publicKeyRaw),
      proof: await possessionProof(key, idToken),
    }),
  });
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const { code, message } = errorOf(body);
    throw new SignInError(certificateRefusal(code, res.status, message), code);
  }
  const cert = body as unknown as PersonCertificate;
  if (
    typeof cert.certificate !== 'string' ||
    typeof cert.notAfter !== 'string' ||
    typeof cert.person?.name !== 'string' ||
    typeof cert.person.email !== 'string'
  ) {
    throw new SignInError('The certificate service sent an incomplete answer. Tell IT.', 'bad-response');
  }
  await idbSet(CERT, { ...cert, publicKey: base64url(key.publicKeyRaw) });
  return cert;
}

/** Both shapes: `{ error: { code, message } }` and the service's `{ error: code, message }`. */
function errorOf(body: Record<string, unknown>): { code?: string; message?: string } {
  const e = body.error;
  if (e && typeof e === 'object') {
    const o = e as { code?: unknown; message?: unknown };
    return {
      code: typeof o.code === 'string' ? o.code : undefined,
      message: typeof o.message === 'string' ? o.message : undefined,
    };
  }
  return {
    code: typeof e === 'string' && /^[a-z][a-z-]*$/.test(e) ? e : undefined,
    message: typeof body.message === 'string' ? body.message : undefined,
  };
}

/** The certificate from an earlier sign-in in this browser, when it still has time left. */
export async function currentSignIn(now = Date.now()): Promise<SignedIn | undefined> {
  const stored = await idbGet<PersonCertificate & { publicKey: string }>(CERT);
  if (!stored || Date.parse(stored.notAfter) - now < MIN_REMAINING_MS) return undefined;
  const key = await loadOrCreatePersonKey();
  // The certificate must name the key we still hold (storage may have been partly cleared).
  if (base64url(key.publicKeyRaw) !== stored.publicKey) return undefined;
  const { publicKey: _, ...cert } = stored;
  return { ...cert, key };
}

export async function signOut(): Promise<void> {
  await idbDelete(CERT);
  await idbDelete(PENDING);
}
