// What the page says when the provisioning service refuses a sign-in (codes: docs/people.md) or the
// identity provider sends an error back: plain sentences a person can act on; the code is shown too,
// for IT. (Meeting refusals are worded by the E2EE worker, which knows the relay's codes.)

const CERTIFICATE: Record<string, string> = {
  'wrong-issuer':
    'That sign-in came from an identity provider this organisation does not accept. Sign in again with your organisation’s account.',
  'token-expired': 'Your sign-in expired before it reached the certificate service. Sign in again.',
  'token-invalid':
    'The identity provider’s answer could not be verified. Sign in again; if it keeps happening, tell IT.',
  'token-replayed': 'That sign-in was already used once and cannot be used again. Sign in again.',
  'nonce-mismatch':
    'That sign-in was made for a different key than this browser’s. Sign in again from this page.',
  'bad-proof': 'This browser could not prove it holds its key. Reload the page and sign in again.',
  'email-not-verified':
    'Your identity provider has not verified your email address, so no certificate can name it. Ask IT.',
  'email-domain':
    'Your email address is not in a domain this organisation accepts. Sign in with your work account.',
  'sign-in-required':
    'Sign in first: people join meetings under their organisation account, never anonymously.',
};

export function certificateRefusal(code: string | undefined, status: number, message?: string): string {
  const known = code ? CERTIFICATE[code] : undefined;
  if (known) return known;
  if (status === 429) return 'Too many sign-in attempts from here. Wait a minute and try again.';
  if (status >= 500)
    return 'The certificate service failed. Try again in a moment; if it keeps failing, tell IT.';
  return `The certificate service refused the sign-in${message ? `: ${message}` : '.'}`;
}

/** OAuth error codes the identity provider may redirect back with (RFC 6749 §4.1.2.1, OIDC). */
const IDP: Record<string, string> = {
  access_denied: 'Sign-in was cancelled or refused at the identity provider.',
  login_required: 'The identity provider needs you to sign in.',
  consent_required: 'The identity provider needs your consent before it can name you to this service.',
  interaction_required: 'The identity provider needs you to finish signing in.',
  invalid_request: 'The identity provider refused the sign-in request.',
  unauthorized_client: 'This page is not registered with the identity provider. Tell IT.',
  server_error: 'The identity provider failed. Try again in a moment.',
  temporarily_unavailable: 'The identity provider is busy. Try again in a moment.',
};

export function idpRefusal(error: string, description?: string | null): string {
  const base = IDP[error] ?? `The identity provider refused the sign-in (${error}).`;
  return description ? `${base} (${description})` : base;
}
