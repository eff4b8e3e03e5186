// The relay's view of the org's certificate revocation list (an RFC 5280 X.509 CRL, src/pki/crl.ts).
// Polls GET <baseUrl>/v1/revocations (DER), verifies it with the org CA certificate, refuses a CRL
// whose number is lower than the newest one seen — also across restarts: the newest is persisted in
// <stateDir>/crl-<first 16 hex of sha256(CA DER)>.der — and answers isRevoked(serial) synchronously.
//
// Freshness: 'fresh' until nextUpdate, 'stale' until nextUpdate + grace (still used), then
// 'expired'. Failing closed (the default), acceptsNewSessions() is false while the state is 'none'
// (no CRL ever) or 'expired': the relay refuses new sessions (error 'crl-stale') and says so in
// /healthz, while existing sessions go on (they were checked against the last CRL in force).
import { createHash, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import {
  CrlRefusedError,
  compareCrl,
  DEFAULT_CRL_GRACE_MS,
  MAX_CRL_BYTES,
  revocationStatusOf,
  type VerifiedCrl,
  verifyCrl,
} from './crl.js';
import type { RevocationSource, RevocationState, RevocationStatus } from './revocation-source.js';
import { normalizeSerial } from './verify.js';

export interface RevocationFeedOptions {
  /** Base URL of the provisioning service, e.g. https://provisioning.example:8443 */
  baseUrl: string;
  /** The org CA certificate (PEM) that signs the CRL. */
  caCertPem: string;
  /** Where the newest CRL is kept across restarts (recommended: without it, a restart forgets it). */
  stateDir?: string;
  /** Poll interval (default 60 s). */
  intervalMs?: number;
  /** How long past nextUpdate the CRL stays usable (default DEFAULT_CRL_GRACE_MS, 24 h). */
  graceMs?: number;
  /** Refuse new sessions with no CRL or one expired beyond the grace (default true). */
  failClosed?: boolean;
  /** The fetch to use (e.g. createPinnedFetch(provisioningTlsCaPem)); default globalThis.fetch. */
  fetch?: typeof fetch;
  now?: () => Date;
  /** Called when a poll or the persisted CRL fails (network, bad signature, older CRL). */
  onError?: (err: Error) => void;
}

/** File name of the persisted CRL for one CA: crl-<first 16 hex of sha256(CA certificate DER)>.der */
export function crlStateFileName(caCertPem: string): string {
  const der = new X509Certificate(caCertPem).raw;
  return `crl-${createHash('sha256').update(der).digest('hex').slice(0, 16)}.der`;
}

/** Reads at most `max` bytes of a response body; larger → error (a CRL is never that big). */
async function readLimited(res: Response, max: number): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) throw new Error(`CRL of ${declared} bytes refused (at most ${max})`);
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > max) throw new Error(`CRL larger than ${max} bytes refused`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

export class RevocationFeed extends EventEmitter<{ change: [] }> implements RevocationSource {
  #crl: VerifiedCrl | undefined;
  #timer: NodeJS.Timeout | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** The CRL in force could not be persisted yet. */
  #unsaved = false;
  readonly #opts: RevocationFeedOptions;
  readonly #graceMs: number;
  readonly #failClosed: boolean;
  readonly #now: () => Date;
  readonly #file: string | undefined;

  constructor(opts: RevocationFeedOptions) {
    super();
    this.#opts = opts;
    this.#graceMs = opts.graceMs ?? DEFAULT_CRL_GRACE_MS;
    this.#failClosed = opts.failClosed ?? true;
    this.#now = opts.now ?? (() => new Date());
    this.#file = opts.stateDir ? join(opts.stateDir, crlStateFileName(opts.caCertPem)) : undefined;
  }

  /** The CRL in force, if any. */
  get crl(): VerifiedCrl | undefined {
    return this.#crl;
  }

  /** Where the newest CRL is persisted (undefined without stateDir). */
  get stateFile(): string | undefined {
    return this.#file;
  }

  isRevoked = (serial: string): boolean => this.#crl?.serials.has(normalizeSerial(serial)) ?? false;

  acceptsNewSessions(): boolean {
    return this.status().acceptingNewSessions;
  }

  status(): RevocationStatus {
    return revocationStatusOf(this.#crl, this.#now(), this.#graceMs, this.#failClosed);
  }

  /**
   * Reads the persisted CRL (if any) and puts it in force unless a newer one is already held. A file
   * that does not verify is reported (onError) and ignored; the next refresh replaces it.
   */
  async load(): Promise<void> {
    if (!this.#file) return;
    const file = this.#file;
    await this.#serial(async () => {
      let der: Buffer;
      try {
        der = await readFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      let verified: VerifiedCrl;
      try {
        verified = await verifyCrl(der, this.#opts.caCertPem);
      } catch (err) {
        this.#opts.onError?.(new Error(`ignoring the persisted CRL ${file}: ${(err as Error).message}`));
        return;
      }
      if (compareCrl(verified, this.#crl) === 'newer') {
        this.#crl = verified;
        this.emit('change');
      }
    });
  }

  /**
   * Fetches, verifies and puts in force the service's CRL. Returns true when it was newer (persisted,
   * 'change' emitted), false when it is the one held. Throws on network errors, a CRL that does not
   * verify, or one older than the one held (CrlRefusedError); the CRL in force stays.
   */
  async refresh(): Promise<boolean> {
    const fetchImpl = this.#opts.fetch ?? fetch;
    const res = await fetchImpl(new URL('/v1/revocations', this.#opts.baseUrl), {
      headers: { accept: 'application/pkix-crl' },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`revocation list: HTTP ${res.status}`);
    }
    return this.apply(await readLimited(res, MAX_CRL_BYTES));
  }

  /** Puts a CRL (PEM or DER) in force when it verifies and is newer; see refresh(). */
  async apply(input: string | Uint8Array): Promise<boolean> {
    // The service re-serves the same bytes for up to CRL_REISSUE_MS: no need to parse them again.
    if (typeof input !== 'string' && this.#crl?.der.equals(input) && !this.#unsaved) return false;
    const verified = await verifyCrl(input, this.#opts.caCertPem);
    return this.#serial(async () => {
      const order = compareCrl(verified, this.#crl);
      if (order === 'older') throw new CrlRefusedError(verified.crlNumber, this.#crl?.crlNumber ?? 0n);
      if (order === 'newer') {
        // A newer CRL is enforced even when it cannot be persisted (disk full, read-only): revoking
        // now matters more; the failure is reported and the next poll tries to persist it again.
        this.#crl = verified;
        this.#unsaved = this.#file !== undefined;
        this.emit('change');
      }
      if (this.#unsaved && this.#file) {
        try {
          await writeFileAtomic(this.#file, verified.der, 0o644);
          this.#unsaved = false;
        } catch (err) {
          this.#opts.onError?.(
            new Error(`CRL ${verified.crlNumber} in force but not persisted: ${(err as Error).message}`),
          );
        }
      }
      return order === 'newer';
    });
  }

  /** Polls now (errors reported, not thrown) and every intervalMs (default 60 s). */
  start(): void {
    if (this.#timer) return;
    const poll = () => this.refresh().catch((err: Error) => this.#opts.onError?.(err));
    void poll();
    this.#timer = setInterval(poll, this.#opts.intervalMs ?? 60_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One CRL change at a time (a refresh racing a load, two overlapping polls). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }
}

const STATE_ORDER: Record<RevocationState, number> = { fresh: 0, stale: 1, expired: 2, none: 3 };

/**
 * One RevocationSource over several (one feed per trusted CA): revoked when any says so; new
 * sessions only when every one accepts them; the status is the worst state (none > expired > stale >
 * fresh) with the counts summed. CRL number and dates are those of the worst source.
 */
export function combineRevocationSources(sources: readonly RevocationSource[]): RevocationSource {
  if (sources.length === 1 && sources[0]) return sources[0];
  return {
    isRevoked: (serial) => sources.some((s) => s.isRevoked(serial)),
    acceptsNewSessions: () => sources.every((s) => s.acceptsNewSessions()),
    status: () => {
      const all = sources.map((s) => s.status());
      let worst: RevocationStatus = all[0] ?? { state: 'none', revoked: 0, acceptingNewSessions: true };
      for (const s of all) if (STATE_ORDER[s.state] > STATE_ORDER[worst.state]) worst = s;
      return {
        ...worst,
        revoked: all.reduce((n, s) => n + s.revoked, 0),
        acceptingNewSessions: all.every((s) => s.acceptingNewSessions),
      };
    },
    on(event, listener) {
      for (const s of sources) s.on(event, listener);
      return this;
    },
    off(event, listener) {
      for (const s of sources) s.off(event, listener);
      return this;
    },
  };
}
