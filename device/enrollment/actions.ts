// Remote actions IT queues from the console (restart, renew-certificate, collect-logs), as they
// arrive in heartbeat replies. Each runs at most once: its id and outcome go to a ledger in the
// state dir (<stateDir>/actions.json, written atomically) BEFORE its result is reported, so a reply
// that repeats an id, or one that arrives again after a restart, re-reports the outcome instead of
// doing it again. Results the service did not take (network down) are re-sent on later heartbeats.
//
// The reply is untrusted input: at most MAX_ACTIONS_PER_REPLY entries are looked at, ids must be
// short url-safe tokens (anything else is dropped unreported), unknown kinds fail as 'unsupported'.
import { join } from 'node:path';
import type { ActionResult } from '../../provisioning/client/device-client.js';
import { ProvisioningHttpError } from '../../provisioning/client/http.js';
import { readJsonIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';
import { type Logger, silentLogger } from '../../src/util/log.js';

export const ACTIONS_FILE = 'actions.json';
export const MAX_ACTIONS_PER_REPLY = 32;
/** The ledger keeps the newest entries only: enough to recognise any id the service still sends. */
export const LEDGER_LIMIT = 256;
const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
export const ACTION_KINDS = ['restart', 'renew-certificate', 'collect-logs'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

export interface LedgerEntry {
  id: string;
  kind: string;
  status: 'in-progress' | 'done' | 'failed';
  message?: string;
  /** The service took the result (or answered that the action is no longer open). */
  reported: boolean;
  at: string;
  /** Times a report was tried without the service taking it. */
  attempts?: number;
}

interface LedgerFile {
  version: 1;
  entries: LedgerEntry[];
}

export interface DeviceActionsOptions {
  stateDir: string;
  report(actionId: string, result: ActionResult): Promise<void>;
  /** Builds the gzip log bundle (≤ 8 MiB). */
  collectLogs(): Promise<Uint8Array>;
  /** Called once the restart's 'done' is recorded (and reported, if the service was reachable). */
  restart(actionId: string): void;
  logger?: Logger;
  now?: () => number;
}

/** The valid, bounded actions of a reply, and what was refused. Pure. */
export function parseActions(raw: unknown): {
  actions: { id: string; kind: string }[];
  dropped: number;
} {
  if (!Array.isArray(raw)) return { actions: [], dropped: raw === undefined || raw === null ? 0 : 1 };
  const actions: { id: string; kind: string }[] = [];
  const seen = new Set<string>();
  let dropped = Math.max(0, raw.length - MAX_ACTIONS_PER_REPLY);
  for (const a of raw.slice(0, MAX_ACTIONS_PER_REPLY)) {
    const id = (a as { id?: unknown } | null)?.id;
    const kind = (a as { kind?: unknown } | null)?.kind;
    if (typeof id !== 'string' || !ID.test(id) || typeof kind !== 'string' || seen.has(id)) {
      dropped++;
      continue;
    }
    seen.add(id);
    actions.push({ id, kind: kind.slice(0, 64) });
  }
  return { actions, dropped };
}

export class DeviceActions {
  readonly #o: DeviceActionsOptions;
  readonly #log: Logger;
  #entries = new Map<string, LedgerEntry>();
  #loaded = false;

  constructor(opts: DeviceActionsOptions) {
    this.#o = opts;
    this.#log = opts.logger ?? silentLogger;
  }

  get entries(): LedgerEntry[] {
    return [...this.#entries.values()];
  }

  async load(): Promise<void> {
    if (this.#loaded) return;
    const saved = await readJsonIfExists<LedgerFile>(join(this.#o.stateDir, ACTIONS_FILE));
    if (saved?.version === 1 && Array.isArray(saved.entries)) {
      for (const e of saved.entries.slice(-LEDGER_LIMIT)) if (ID.test(e.id)) this.#entries.set(e.id, e);
    }
    this.#loaded = true;
  }

  /** renew-certificate actions waiting for the runner's renewal. */
  get renewPending(): boolean {
    return this.entries.some((e) => e.kind === 'renew-certificate' && e.status === 'in-progress');
  }

  /**
   * Handles a heartbeat reply's `actions`. Returns whether a renewal is wanted (the runner renews
   * through its existing path, then calls renewFinished).
   */
  async receive(raw: unknown): Promise<{ renew: boolean }> {
    await this.load();
    const { actions, dropped } = parseActions(raw);
    if (dropped > 0) this.#log.warn({ dropped }, 'ignored malformed or excess remote actions in a reply');
    let restartId: string | undefined;
    const tried = new Set<string>();
    for (const { id, kind } of actions) {
      if (this.#entries.has(id)) continue; // done (or under way) already: never twice
      switch (kind) {
        case 'restart':
          await this.#record({ id, kind, status: 'done', message: 'daemon restarting' });
          restartId = id;
          break;
        case 'renew-certificate':
          await this.#record({ id, kind, status: 'in-progress' });
          break;
        case 'collect-logs': {
          let bundle: Uint8Array | undefined;
          let message: string;
          try {
            bundle = await this.#o.collectLogs();
            message = `log bundle of ${bundle.length} bytes`;
          } catch (err) {
            message = `could not collect the logs: ${(err as Error).message}`;
          }
          // Recorded first: a crash while uploading must not make it run again unseen.
          await this.#record({ id, kind, status: bundle ? 'done' : 'failed', message });
          if (bundle) {
            await this.#send(id, { status: 'done', message, bundle });
            tried.add(id); // not collected again for the flush below: the next heartbeat retries
          }
          break;
        }
        default:
          await this.#record({ id, kind, status: 'failed', message: 'unsupported' });
      }
    }
    await this.flush(tried);
    if (restartId) this.#o.restart(restartId);
    return { renew: this.renewPending };
  }

  /** The runner's renewal ended: reports every waiting renew-certificate action. */
  async renewFinished(ok: boolean, message: string): Promise<void> {
    await this.load();
    let changed = false;
    for (const e of this.#entries.values()) {
      if (e.kind !== 'renew-certificate' || e.status !== 'in-progress') continue;
      e.status = ok ? 'done' : 'failed';
      e.message = message.slice(0, 2000);
      changed = true;
    }
    if (!changed) return;
    await this.#save();
    await this.flush();
  }

  /** Re-sends every finished, unreported result (collect-logs is collected again). */
  async flush(skip: ReadonlySet<string> = new Set()): Promise<void> {
    for (const e of [...this.#entries.values()]) {
      if (e.reported || e.status === 'in-progress' || skip.has(e.id)) continue;
      let result: ActionResult = { status: e.status, ...(e.message ? { message: e.message } : {}) };
      if (e.kind === 'collect-logs' && e.status === 'done') {
        try {
          result = { ...result, bundle: await this.#o.collectLogs() };
        } catch (err) {
          result = { status: 'failed', message: `could not collect the logs: ${(err as Error).message}` };
        }
      }
      await this.#send(e.id, result);
    }
  }

  async #send(id: string, result: ActionResult): Promise<void> {
    const e = this.#entries.get(id);
    if (!e || e.reported) return;
    try {
      await this.#o.report(id, result);
      e.reported = true;
    } catch (err) {
      // 400/404/409/410: the service refuses it or no longer waits for it (expired, unknown);
      // sending the same again cannot change that.
      if (err instanceof ProvisioningHttpError && [400, 404, 409, 410].includes(err.status)) {
        this.#log.warn({ actionId: id, status: err.status, message: err.message }, 'action result not taken');
        e.reported = true;
      } else if (err instanceof ProvisioningHttpError && err.status === 413) {
        e.reported = true;
        this.#log.warn({ actionId: id }, 'the service refused the log bundle as too large');
      } else {
        e.attempts = (e.attempts ?? 0) + 1;
        // A result the service keeps refusing is given up after a while rather than sent forever.
        if (e.attempts >= 20) e.reported = true;
        this.#log.warn({ actionId: id, err: String(err) }, 'could not report an action result; will retry');
      }
    }
    await this.#save();
  }

  async #record(e: Omit<LedgerEntry, 'reported' | 'at'>): Promise<void> {
    this.#entries.set(e.id, {
      ...e,
      reported: false,
      at: new Date((this.#o.now ?? Date.now)()).toISOString(),
    });
    this.#log.info({ actionId: e.id, kind: e.kind, status: e.status }, 'remote action');
    await this.#save();
  }

  async #save(): Promise<void> {
    const entries = [...this.#entries.values()];
    // Oldest finished entries go first; unfinished/unreported ones are kept.
    while (entries.length > LEDGER_LIMIT) {
      const i = entries.findIndex((x) => x.reported);
      entries.splice(Math.max(i, 0), 1);
    }
    this.#entries = new Map(entries.map((x) => [x.id, x]));
    await writeFileAtomic(
      join(this.#o.stateDir, ACTIONS_FILE),
      JSON.stringify({ version: 1, entries } satisfies LedgerFile),
      0o600,
    );
  }
}
