// Who may talk to the local control API. It listens on loopback, but any web page open in a browser on
// the box can still send requests to 127.0.0.1; these checks stop DNS rebinding (Host header) and
// cross-origin form posts (Origin + JSON content type, which forces a CORS preflight we never grant).
// Pure: no I/O.

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Splits "host:port" / "[::1]:port" into the host part. */
export function hostOfHeader(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(1, hostHeader.indexOf(']'));
  const colon = hostHeader.lastIndexOf(':');
  return colon === -1 ? hostHeader : hostHeader.slice(0, colon);
}

export interface GuardInput {
  method: string;
  hostHeader: string | undefined;
  origin: string | undefined;
  contentType: string | undefined;
}

/** Returns a readable reason to refuse the request, or undefined when it may proceed. */
export function refusalReason(req: GuardInput): { status: number; error: string } | undefined {
  if (!req.hostHeader || !isLoopbackHost(hostOfHeader(req.hostHeader))) {
    return { status: 403, error: 'the control API only answers requests addressed to a loopback host' };
  }
  if (req.origin !== undefined && req.origin !== 'null') {
    let originHost: string;
    try {
      originHost = new URL(req.origin).hostname.replace(/^\[|\]$/g, '');
    } catch {
      return { status: 403, error: 'malformed Origin header' };
    }
    if (!isLoopbackHost(originHost)) {
      return { status: 403, error: 'requests from other origins are refused' };
    }
  }
  if (req.method === 'POST' && !(req.contentType ?? '').toLowerCase().startsWith('application/json')) {
    return { status: 415, error: 'send a JSON body with Content-Type: application/json' };
  }
  return undefined;
}
