// Verifying an OpenID Connect ID token from the org's identity provider with jose: the issuer's
// discovery document (its `issuer` must be exactly the configured one) gives the JWKS URI; the
// signature (asymmetric algorithms only), `iss`, `aud` = our client id and `exp` (small clock
// tolerance) are checked by jose. Every refusal is a PeopleRefusal with a code the page can show.
import { createRemoteJWKSet, decodeJwt, errors, type JWTPayload, jwtVerify } from 'jose';

export type PeopleRefusalCode =
  | 'sign-in-required'
  | 'wrong-issuer'
  | 'token-expired'
  | 'token-invalid'
  | 'token-replayed'
  | 'nonce-mismatch'
  | 'bad-proof'
  | 'email-not-verified'
  | 'email-domain'
  | 'idp-unavailable';

export class PeopleRefusal extends Error {
  override readonly name = 'PeopleRefusal';
  constructor(
    readonly code: PeopleRefusalCode,
    message: string,
    readonly statusCode = 401,
  ) {
    super(message);
  }
}

export interface IdTokenVerifierOptions {
  issuer: string;
  clientId: string;
  /** Allowed clock difference with the IdP for exp/iat/nbf (default 30 s). */
  clockToleranceSeconds?: number;
  now?: () => Date;
}

/** Asymmetric JWS algorithms only: no HS* (the client has no secret), never 'none'. */
const ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
];

export type IdTokenVerifier = (idToken: string) => Promise<JWTPayload>;

export function createIdTokenVerifier(o: IdTokenVerifierOptions): IdTokenVerifier {
  const now = o.now ?? (() => new Date());
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const keys = () => {
    jwks ??= (async () => {
      const url = `${o.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`discovery ${url}: HTTP ${res.status}`);
      const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      // OIDC Discovery §4.3: the document must name exactly the issuer we asked.
      if (doc.issuer !== o.issuer)
        throw new Error(`discovery names issuer ${String(doc.issuer)}, not ${o.issuer}`);
      if (typeof doc.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri');
      return createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: 5000 });
    })();
    jwks.catch(() => {
      jwks = undefined; // try again at the next request
    });
    return jwks;
  };

  return async (idToken) => {
    let claimed: JWTPayload;
    try {
      claimed = decodeJwt(idToken);
    } catch {
      throw new PeopleRefusal('token-invalid', 'the ID token is not a JWT');
    }
    // Read before the signature only to say clearly why: a token of another issuer would fail the
    // signature check anyway (its keys are not the org IdP's).
    if (claimed.iss !== o.issuer)
      throw new PeopleRefusal(
        'wrong-issuer',
        `the ID token was issued by "${String(claimed.iss).slice(0, 200)}", not by the organisation's sign-in (${o.issuer})`,
      );
    let getKey: ReturnType<typeof createRemoteJWKSet>;
    try {
      getKey = await keys();
    } catch (err) {
      throw new PeopleRefusal(
        'idp-unavailable',
        `cannot reach the organisation's sign-in to check the token: ${(err as Error).message}`,
        503,
      );
    }
    try {
      const { payload } = await jwtVerify(idToken, getKey, {
        issuer: o.issuer,
        audience: o.clientId,
        algorithms: ALGORITHMS,
        clockTolerance: o.clockToleranceSeconds ?? 30,
        currentDate: now(),
        requiredClaims: ['exp', 'iat', 'sub'],
      });
      return payload;
    } catch (err) {
      throw refusalOf(err);
    }
  };
}

function refusalOf(err: unknown): PeopleRefusal {
  if (err instanceof errors.JWTExpired)
    return new PeopleRefusal('token-expired', 'the ID token has expired: sign in again');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud')
      return new PeopleRefusal('token-invalid', 'the ID token is not for this application');
    return new PeopleRefusal(
      'token-invalid',
      `the ID token's "${err.claim}" claim is not acceptable: ${err.reason}`,
    );
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWSSignatureVerificationFailed)
    return new PeopleRefusal('token-invalid', "the ID token's signature is not the organisation's sign-in's");
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new PeopleRefusal(
      'token-invalid',
      'the ID token is signed with an algorithm that is not accepted',
    );
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid)
    return new PeopleRefusal('idp-unavailable', "cannot fetch the organisation's sign-in keys", 503);
  if (err instanceof errors.JOSEError)
    return new PeopleRefusal('token-invalid', `the ID token is invalid (${err.code})`);
  return new PeopleRefusal('token-invalid', 'the ID token is invalid');
}
