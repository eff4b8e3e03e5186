// The health gate a new version must pass before it is committed: an injectable list of checks run
// together, each retried until it passes or the gate's time is up. Today's checks are wired as
// functions: the crypto known-answer self-test (device/daemon/boot-selftest.ts), the kiosk control
// server answering, the kiosk page served, the relay connection (the daemon's own state, read
// through the control server), and the media pipeline (the supervised media worker running, its
// pipelines playing, camera and microphone capturing, and the worker answering right now).

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
          let onAbort: (() => void) | undefined;
          try {
            const detail = await Promise.race([
              c.run(ac.signal),
              new Promise<never>((_, reject) => {
                onAbort = () => reject(new Error('deadline'));
                if (ac.signal.aborted) onAbort();
                else ac.signal.addEventListener('abort', onAbort, { once: true });
              }),
            ]);
            return { name: c.name, ok: true, detail: detail || 'ok', ms: performance.now() - t0, tries };
          } catch (err) {
            last = (err as Error).message;
            if (err instanceof FatalCheckError) {
              ac.abort(err);
              break;
            }
          } finally {
            // One listener per try would pile up over a long gate (MaxListenersExceededWarning).
            if (onAbort) ac.signal.removeEventListener('abort', onAbort);
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

/** state.media.worker (device/daemon/state.ts). */
export type MediaWorkerState = 'stopped' | 'starting' | 'running' | 'restarting';

/** What the media check needs of the media worker's supervisor (device/media/supervisor.ts). */
export interface MediaWorkerLike {
  /** The running worker's latest status message; undefined before it reported or after it exited. */
  readonly lastStatus:
    | { pipelines: 'stopped' | 'playing'; camera: string; microphone: string; transport?: string }
    | undefined;
  /** A round trip through the worker's IPC; rejects when it does not answer in time. */
  probe(timeoutMs?: number): Promise<unknown>;
}

/**
 * The media pipeline: the supervised worker is running (state.media.worker), it reported its
 * pipelines playing with camera and microphone capturing ('ok', not 'restarting' or 'missing'), and it
 * answers a probe now. A worker that cannot start, crash-loops, or whose pipelines fail never passes.
 */
export function mediaPipelineCheck(
  media: MediaWorkerLike,
  worker: () => MediaWorkerState,
  o: { probeTimeoutMs?: number } = {},
): HealthCheck {
  return {
    name: 'media pipeline',
    async run() {
      const w = worker();
      if (w !== 'running') throw new Error(`media worker ${w}`);
      const s = media.lastStatus;
      if (!s) throw new Error('the media worker has not reported its pipelines');
      if (s.pipelines !== 'playing') throw new Error(`media pipelines ${s.pipelines}`);
      if (s.camera !== 'ok') throw new Error(`camera capture ${s.camera}`);
      if (s.microphone !== 'ok') throw new Error(`microphone capture ${s.microphone}`);
      await media.probe(o.probeTimeoutMs ?? 2000);
      return 'worker running, pipelines playing, camera and microphone capturing';
    },
  };
}

/** Today's gate for a daemon whose control server listens on controlUrl (media: its in-process worker). */
export function deviceHealthChecks(
  controlUrl: string,
  o: { relay?: boolean; media?: { supervisor: MediaWorkerLike; worker: () => MediaWorkerState } } = {},
): HealthCheck[] {
  return [
    selfTestCheck(),
    kioskControlCheck(controlUrl),
    kioskPageCheck(controlUrl),
    ...(o.relay === false ? [] : [relayConnectedCheck(controlUrl)]),
    ...(o.media ? [mediaPipelineCheck(o.media.supervisor, o.media.worker)] : []),
  ];
}
