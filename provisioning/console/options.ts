// How the IT console signs people in (docs/console.md "Sign-in"): the organisation's OpenID Connect
// provider, a confidential client (authorization code + PKCE, the code exchanged server-side), and
// two groups from the ID token that make a user admin or helpdesk (read-only).
export interface ConsoleOptions {
  /** The organisation's OpenID Connect issuer URL. */
  issuer: string;
  clientId: string;
  /** Confidential client (the service exchanges the code server-side). */
  clientSecret?: string;
  /** ID-token claim listing the user's groups (default "groups"). */
  groupsClaim?: string;
  /** Group that makes a user an admin (default "sealroom-admins"). */
  adminGroup?: string;
  /** Group that makes a user helpdesk, read-only (default "sealroom-helpdesk"). */
  helpdeskGroup?: string;
  /** Session lifetime in hours (default 8). */
  sessionHours?: number;
  /** Built console files (default dist/console). */
  staticDir?: string;
  /** Scopes asked for (default "openid email profile groups"). */
  scopes?: string;
  /** The redirect URI registered at the IdP (default <publicUrl>/console/auth/callback). */
  redirectUri?: string;
  /** How long a started sign-in may take at the IdP (default 600 s). */
  loginTtlSeconds?: number;
}

export const CONSOLE_DEFAULTS = {
  groupsClaim: 'groups',
  adminGroup: 'sealroom-admins',
  helpdeskGroup: 'sealroom-helpdesk',
  sessionHours: 8,
  scopes: 'openid email profile groups',
  loginTtlSeconds: 600,
} as const;

export type ResolvedConsoleOptions = Required<Omit<ConsoleOptions, 'clientSecret' | 'staticDir'>> &
  Pick<ConsoleOptions, 'clientSecret'> & { staticDir: string; secureCookies: boolean };

/** The options with defaults filled in, for a service reachable at `publicUrl`. */
export function resolveConsoleOptions(
  o: ConsoleOptions,
  publicUrl: string,
  defaultStaticDir: () => string,
): ResolvedConsoleOptions {
  const base = publicUrl.replace(/\/$/, '');
  const sessionHours = o.sessionHours ?? CONSOLE_DEFAULTS.sessionHours;
  if (!(sessionHours > 0 && sessionHours <= 24 * 30))
    throw new Error(`console sessionHours must be in (0, 720], not ${sessionHours}`);
  const issuer = new URL(o.issuer);
  // The ID token and the code travel between the service and the IdP: plain http only on loopback
  // (the dev IdP of the demo and the tests).
  if (issuer.protocol !== 'https:' && !isLoopback(issuer.hostname))
    throw new Error(`console issuer ${o.issuer}: https is required (http only for a loopback IdP)`);
  return {
    issuer: o.issuer,
    clientId: o.clientId,
    ...(o.clientSecret ? { clientSecret: o.clientSecret } : {}),
    groupsClaim: o.groupsClaim ?? CONSOLE_DEFAULTS.groupsClaim,
    adminGroup: o.adminGroup ?? CONSOLE_DEFAULTS.adminGroup,
    helpdeskGroup: o.helpdeskGroup ?? CONSOLE_DEFAULTS.helpdeskGroup,
    sessionHours,
    staticDir: o.staticDir ?? defaultStaticDir(),
    scopes: o.scopes ?? CONSOLE_DEFAULTS.scopes,
    redirectUri: o.redirectUri ?? `${base}/console/auth/callback`,
    loginTtlSeconds: o.loginTtlSeconds ?? CONSOLE_DEFAULTS.loginTtlSeconds,
    secureCookies: base.startsWith('https:'),
  };
}

export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The session cookie: `__Host-` (no Domain, Path=/, Secure) when the service is reached over https. */
export const sessionCookieName = (secure: boolean) =>
  secure ? '__Host-sealroom-console' : 'sealroom-console';
/** Binds a started sign-in to the browser that started it (no login CSRF). */
export const loginCookieName = (secure: boolean) =>
  secure ? '__Host-sealroom-console-login' : 'sealroom-console-login';
