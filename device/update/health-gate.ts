// The health gate a new version must pass before it is committed: an injectable list of checks run
// together, each retried until it passes or the gate's time is up. Today's checks are wired as
// functions: the crypto known-answer self-test (device/daemon/boot-selftest.ts), the kiosk control
// server answering, the kiosk page served, and the relay connection (the daemon's own state, read
// through the control server). A media pipeline check is to be added once it exists as a function.

export interface HealthCheck {
  name: string;
  /** Resolves (optionally with a detail) when healthy; throws with the reason otherwise. */
  run(signal: AbortSignal): Promise<string | undefined>;
}

/** Thrown by a check that can no longer pass (e.g. the process it watches exited): no more retries. */
export class FatalCheckError extends Error {
  override readonly name = 'FatalCheckError';
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  ms: number;
  tries: number;
}

export interface GateResult {
  ok: boolean;
  ms: number;
  checks: CheckResult[];
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Every check must pass within timeoutMs; a failing one is retried every retryMs meanwhile. */
export async function runHealthGate(
  checks: HealthCheck[],
  o: { timeoutMs: number; retryMs?: number },
): Promise<GateResult> {
  const started = performance.now();
  const retryMs = o.retryMs ?? 500;
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error('health gate deadline')), o.timeoutMs);
  try {
    const results = await Promise.all(
      checks.map(async (c): Promise<CheckResult> => {
        const t0 = performance.now();
        let tries = 0;
        let last = 'not run before the deadline';
        while (!ac.signal.aborted) {
          tries++;
          try {
            const detail = await Promise.race([
              c.run(ac.signal),
              new Promise<never>((_, reject) => {
                if (ac.signal.aborted) reject(new Error('deadline'));
                ac.signal.addEventListener('abort', () => reject(new Error('deadline')), { once: true });
              }),
            ]);
            return { name: c.name, ok: true, detail: detail || 'ok', ms: performance.now() - t0, tries };
          } catch (err) {
            last = (err as Error).message;
            if (err instanceof FatalCheckError) {
              ac.abort(err);
              break;
            }
          }
          await sleep(retryMs, ac.signal);
        }
        return { name: c.name, ok: false, detail: last, ms: performance.now() - t0, tries };
      }),
    );
    return { ok: results.every((r) => r.ok), ms: performance.now() - started, checks: results };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Today's checks.

/** The crypto known-answer self-test the daemon runs at boot. */
export function selfTestCheck(): HealthCheck {
  return {
    name: 'crypto self-test',
    async run() {
      const { runBootSelfTest } = await import('../daemon/boot-selftest.js');
      return runBootSelfTest().detail;
    },
  };
}

async function getLocal(url: string, signal: AbortSignal): Promise<Response> {
  const res = await fetch(url, { signal, redirect: 'error' });
  if (!res.ok) throw new Error(`${new URL(url).pathname}: HTTP ${res.status}`);
  return res;
}

/** The kiosk control server (device/kiosk/control-server.ts) answers /healthz. */
export function kioskControlCheck(controlUrl: string): HealthCheck {
  return {
    name: 'kiosk control server',
    async run(signal) {
      const body = (await (await getLocal(new URL('/healthz', controlUrl).href, signal)).json()) as {
        ok?: boolean;
      };
      if (body.ok !== true) throw new Error('/healthz did not say ok');
      return `revision ${(body as { revision?: number }).revision ?? '?'}`;
    },
  };
}

/** The room screen's page is served (what the kiosk browser loads). */
export function kioskPageCheck(controlUrl: string): HealthCheck {
  return {
    name: 'kiosk page',
    async run(signal) {
      const res = await getLocal(new URL('/', controlUrl).href, signal);
      const type = res.headers.get('content-type') ?? '';
      const text = await res.text();
      if (!type.includes('text/html') || !/<html/i.test(text)) throw new Error(`/ is not a page (${type})`);
      return `${text.length} bytes`;
    },
  };
}

/** The daemon is connected and authenticated to its relay (its state, through the control server). */
export function relayConnectedCheck(source: string | (() => boolean | Promise<boolean>)): HealthCheck {
  return {
    name: 'relay connection',
    async run(signal) {
      const connected =
        typeof source === 'function'
          ? await source()
          : (
              (await (await getLocal(new URL('/api/state', source).href, signal)).json()) as {
                relay?: { connected?: boolean };
              }
            ).relay?.connected === true;
      if (!connected) throw new Error('not connected to the relay');
      return 'connected';
    },
  };
}

/** Today's gate for a daemon whose control server listens on controlUrl. */
export function deviceHealthChecks(controlUrl: string, o: { relay?: boolean } = {}): HealthCheck[] {
  return [
    selfTestCheck(),
    kioskControlCheck(controlUrl),
    kioskPageCheck(controlUrl),
    ...(o.relay === false ? [] : [relayConnectedCheck(controlUrl)]),
  ];
}
