// Shared by the device and admin clients: JSON over fetch with a clear error for non-2xx replies.
export class ProvisioningHttpError extends Error {
  override readonly name = 'ProvisioningHttpError';
  constructor(
    readonly status: number,
    message: string,
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
  },
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
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
    const message = (body as { message?: string } | undefined)?.message ?? `HTTP ${res.status}`;
    throw new ProvisioningHttpError(res.status, message);
  }
  return { status: res.status, body: body as T };
}
