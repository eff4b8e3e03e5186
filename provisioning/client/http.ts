// Shared by the device and admin clients: JSON over fetch with a clear error for non-2xx replies.
// Devices pass a pinned fetch (src/util/pinned-fetch.ts: trusts only the service TLS CA they pinned).
export class ProvisioningHttpError extends Error {
  override readonly name = 'ProvisioningHttpError';
  constructor(
    readonly status: number,
    message: string,
    /** The reply's `error` field (e.g. 'device-revoked'), when it had one. */
    readonly code?: string,
    /** The parsed reply body (e.g. a revocation reply's `crl`), untrusted. */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export async function requestJson<T>(
  url: string,
  init: {
    method: string;
    headers?: Record<string, string>;
    body?: string;
    timeoutMs?: number;
    signal?: AbortSignal;
    /** Defaults to the global fetch (system trust store). */
    fetch?: typeof fetch;
  },
): Promise<{ status: number; body: T }> {
  const doFetch = init.fetch ?? fetch;
  const res = await doFetch(url, {
    method: init.method,
    headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
    body: init.body,
    signal: init.signal
      ? AbortSignal.any([init.signal, AbortSignal.timeout(init.timeoutMs ?? 10_000)])
      : AbortSignal.timeout(init.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if (!res.ok) {
    const b = body as { message?: unknown; error?: unknown } | undefined;
    const message = typeof b?.message === 'string' ? b.message : `HTTP ${res.status}`;
    const code = typeof b?.error === 'string' ? b.error : undefined;
    throw new ProvisioningHttpError(res.status, message, code, body);
  }
  return { status: res.status, body: body as T };
}
