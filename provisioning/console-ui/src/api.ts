// The console's only way to talk to the service: same-origin JSON with the session cookie, the
// anti-CSRF header on every change, and one error type pages can show as it is.

export type Role = 'admin' | 'helpdesk';

/** The signed-in console user (GET /console/api/me). */
export interface Me {
  email: string;
  name: string;
  role: Role;
  csrf: string;
  expiresAt: string;
  /** The organisation's name, shown in the header (optional: older services omit it). */
  org?: string;
}

/** A refused or failed request: `status` is the HTTP status (0 = network), `code` the service's error code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let current: Me | null | undefined;

/** The signed-in user, or null when the session is missing or expired (cached after the first call). */
export async function me(refresh = false): Promise<Me | null> {
  if (current !== undefined && !refresh) return current;
  const res = await fetch('/console/api/me', {
    credentials: 'same-origin',
    headers: { accept: 'application/json' },
  });
  if (res.status === 401) {
    current = null;
    return null;
  }
  if (!res.ok) throw await errorOf(res);
  current = (await res.json()) as Me;
  return current;
}

/** Forget the cached user (after sign-out). */
export function forgetMe(): void {
  current = undefined;
}

/** Where the sign-in page sends people back to: the console path plus the hash they were on. */
export function signInUrl(): string {
  const back = `${location.pathname}${location.search}${location.hash}`;
  const ret = back.startsWith('/console/') ? back : '/console/';
  return `/console/auth/login?return=${encodeURIComponent(ret)}`;
}

/**
 * JSON request to the service. GET needs nothing more than the cookie; anything else carries
 * `x-sealroom-csrf` (the session's token from /console/api/me). A 401 means the session ended:
 * the page goes to sign-in (unless `noRedirect`) and the promise rejects.
 */
export async function api<T>(
  path: string,
  init?: { method?: string; body?: unknown; noRedirect?: boolean },
): Promise<T> {
  const method = (init?.method ?? 'GET').toUpperCase();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') {
    const user = await me();
    if (user) headers['x-sealroom-csrf'] = user.csrf;
  }
  let body: string | undefined;
  if (init?.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body, credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, 'network', `The service could not be reached (${(err as Error).message}).`);
  }
  if (res.status === 401 && !init?.noRedirect) {
    current = null;
    location.assign(signInUrl());
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

async function errorOf(res: Response): Promise<ApiError> {
  let code = `http-${res.status}`;
  let message = res.statusText || `Request failed (${res.status}).`;
  try {
    const body = (await res.json()) as { error?: unknown; code?: unknown; message?: unknown };
    if (typeof body.code === 'string') code = body.code;
    else if (typeof body.error === 'string') code = body.error;
    if (typeof body.message === 'string' && body.message) message = body.message;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(res.status, code, message);
}

/** Query string from the set values only (undefined, null and '' are left out). */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
