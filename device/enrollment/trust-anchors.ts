// The trust anchors this device pinned at enrollment, kept in its state directory:
//   ca.pem             the org CA (written by the enrollment runner with the first certificate)
//   partner-cas.json   partner-org CAs from signed config (`partnerCas`, signed by the org CA key)
//   crl.der            the newest X.509 CRL seen (GET /v1/revocations, signed by the org CA; RFC 5280)
// Each file is verified against ca.pem when read and before it is written (atomically); an older
// partner bundle or a CRL with a lower number than the one held is refused, so a replay cannot undo
// a revocation — also after a restart, since the newest CRL is what is on disk.
// `anchors()` is what the daemon's TrustStore checks every participant against. Fail closed: once
// revocation polling is configured, a CRL past nextUpdate + grace (or none within the grace since
// polling started) sets `revocationStale`, and the TrustStore refuses org certificates
// ('revocation-stale') until a current CRL arrives.
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CrlRefusedError,
  compareCrl,
  crlFreshness,
  DEFAULT_CRL_GRACE_MS,
  MAX_CRL_BYTES,
  revocationStatusOf,
  type VerifiedCrl,
  verifyCrl,
} from '../../src/pki/crl.js';
import { type PartnerCaBundle, verifyPartnerCas } from '../../src/pki/partner-cas.js';
import type { RevocationStatus } from '../../src/pki/revocation-source.js';
import type { TrustAnchors } from '../../src/pki/trust-store.js';
import { normalizeSerial } from '../../src/pki/verify.js';
import { readJsonIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';
import { type Logger, silentLogger } from '../../src/util/log.js';

export const CA_FILE = 'ca.pem';
export const PARTNER_CAS_FILE = 'partner-cas.json';
export const CRL_FILE = 'crl.der';
/** @deprecated the signed JSON list is gone; the revocation state file is now the CRL (crl.der). */
export const REVOCATIONS_FILE = CRL_FILE;

export interface DeviceTrustAnchorsOptions {
  stateDir: string;
  orgCaPem: string;
  logger?: Logger;
  /** How long past nextUpdate the CRL is still used (default DEFAULT_CRL_GRACE_MS, 24 h). */
  graceMs?: number;
  now?: () => Date;
  /** Default fetch for refreshRevocations/pollRevocations (e.g. one pinned to the service's TLS CA). */
  fetch?: typeof fetch;
}

export type DeviceTrustAnchorsLoadOptions = Omit<
  DeviceTrustAnchorsOptions,
  'stateDir' | 'orgCaPem' | 'logger'
>;

export class DeviceTrustAnchors extends EventEmitter<{ change: [TrustAnchors] }> {
  readonly #stateDir: string;
  readonly #orgCaPem: string;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #now: () => Date;
  readonly #fetch: typeof fetch | undefined;
  #partners: PartnerCaBundle | undefined;
  #crl: VerifiedCrl | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** When revocation polling started (undefined: not configured, never stale). */
  #pollingSince: Date | undefined;
  #lastStale = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(opts: DeviceTrustAnchorsOptions) {
    super();
    this.#stateDir = opts.stateDir;
    this.#orgCaPem = opts.orgCaPem;
    this.#log = opts.logger ?? silentLogger;
    this.#graceMs = opts.graceMs ?? DEFAULT_CRL_GRACE_MS;
    this.#now = opts.now ?? (() => new Date());
    this.#fetch = opts.fetch;
  }

  /** Loads ca.pem and what was saved beside it; a saved file that does not verify is ignored (logged). */
  static async load(
    stateDir: string,
    logger?: Logger,
    opts: DeviceTrustAnchorsLoadOptions = {},
  ): Promise<DeviceTrustAnchors> {
    const orgCaPem = await readFile(join(stateDir, CA_FILE), 'utf8');
    const anchors = new DeviceTrustAnchors({ stateDir, orgCaPem, ...(logger ? { logger } : {}), ...opts });
    const partners = await readJsonIfExists<unknown>(join(stateDir, PARTNER_CAS_FILE)).catch(() => undefined);
    if (partners !== undefined) {
      try {
        anchors.#partners = verifyPartnerCas(partners, orgCaPem);
      } catch (err) {
        anchors.#log.warn(
          { err: (err as Error).message },
          'ignoring a saved partner CA bundle that does not verify',
        );
      }
    }
    anchors.#crl = await anchors.#readSavedCrl();
    return anchors;
  }

  anchors(): TrustAnchors {
    return {
      orgCaPem: this.#orgCaPem,
      partnerCaPems: this.#partners?.caPems ?? [],
      revokedSerials: this.#crl?.serials ?? new Set(),
      revocationStale: this.revocationStale,
    };
  }

  /** The CRL in force, if any. */
  get crl(): VerifiedCrl | undefined {
    return this.#crl;
  }

  isRevoked(serial: string): boolean {
    return this.#crl?.serials.has(normalizeSerial(serial)) ?? false;
  }

  /**
   * True when revocation polling is configured and the device cannot vouch for org certificates:
   * the CRL in force is past nextUpdate + grace, or none has arrived within the grace since polling
   * started.
   */
  get revocationStale(): boolean {
    if (!this.#pollingSince) return false;
    const now = this.#now();
    if (this.#crl) return crlFreshness(this.#crl, now, this.#graceMs) === 'expired';
    return now.getTime() > this.#pollingSince.getTime() + this.#graceMs;
  }

  crlStatus(): RevocationStatus {
    return {
      ...revocationStatusOf(this.#crl, this.#now(), this.#graceMs, true),
      acceptingNewSessions: !this.revocationStale,
    };
  }

  /** A `partnerCas` bundle from config: verified, newer than the one held, then saved. */
  async applyPartnerCas(bundle: unknown): Promise<boolean> {
    const verified = verifyPartnerCas(bundle, this.#orgCaPem);
    if (this.#partners && Date.parse(verified.issuedAt) <= Date.parse(this.#partners.issuedAt)) return false;
    await writeFileAtomic(join(this.#stateDir, PARTNER_CAS_FILE), JSON.stringify(verified), 0o644);
    this.#partners = verified;
    this.#log.info({ partners: verified.caPems.length, issuedAt: verified.issuedAt }, 'partner CAs updated');
    this.emit('change', this.anchors());
    return true;
  }

  /**
   * A CRL (PEM or DER): verified with the org CA; true when it was newer and is now in force (saved
   * atomically as crl.der, 'change' emitted), false when it is the one held. A lower CRL number than
   * the newest held — in memory or on disk, so also after a restart or from another instance — is
   * refused (CrlRefusedError); a CRL that does not verify throws PkiError.
   */
  async applyCrl(input: string | Uint8Array): Promise<boolean> {
    // The service re-serves the same bytes for up to CRL_REISSUE_MS: no need to parse them again.
    if (typeof input !== 'string' && this.#crl?.der.equals(input)) return false;
    const verified = await verifyCrl(input, this.#orgCaPem);
    return this.#serial(async () => {
      // Another instance (the enrollment runner, given a CRL as proof of revocation) may have
      // saved a newer one: adopt it first, so nothing goes backwards and the daemon learns of it.
      const saved = await this.#readSavedCrl();
      const adopted = saved !== undefined && compareCrl(saved, this.#crl) === 'newer';
      if (adopted) {
        this.#crl = saved;
        this.#changed();
      }
      const order = compareCrl(verified, this.#crl);
      if (order === 'same') return adopted;
      if (order === 'older') throw new CrlRefusedError(verified.crlNumber, this.#crl?.crlNumber ?? 0n);
      // Enforced even when it cannot be saved (revoking now matters more); the failure is logged.
      this.#crl = verified;
      await writeFileAtomic(join(this.#stateDir, CRL_FILE), verified.der, 0o644).catch((err: Error) =>
        this.#log.error({ err: err.message }, 'CRL in force but not saved'),
      );
      this.#changed();
      return true;
    });
  }

  /** Fetches GET <serviceUrl>/v1/revocations (DER CRL) once and applies it. */
  async refreshRevocations(serviceUrl: string, fetchImpl?: typeof fetch): Promise<boolean> {
    const f = fetchImpl ?? this.#fetch ?? fetch;
    const res = await f(new URL('/v1/revocations', serviceUrl), {
      headers: { accept: 'application/pkix-crl' },
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`revocation list: HTTP ${res.status}`);
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > MAX_CRL_BYTES) throw new Error('revocation list too large');
    return this.applyCrl(body);
  }

  /**
   * Polls the CRL (first poll now) every intervalMs (default 60 s); failures keep the CRL in force
   * and are logged. From now on the device fails closed when the CRL goes out of date (see
   * revocationStale); a change of that state emits 'change'.
   */
  pollRevocations(serviceUrl: string, intervalMs = 60_000, fetchImpl?: typeof fetch): void {
    if (this.#timer) return;
    this.#pollingSince = this.#now();
    this.#lastStale = this.revocationStale;
    const poll = () =>
      this.refreshRevocations(serviceUrl, fetchImpl)
        .catch((err: Error) =>
          this.#log.warn({ err: err.message }, 'could not refresh the revocation list; keeping the one held'),
        )
        .finally(() => this.#checkStale());
    void poll();
    this.#timer = setInterval(poll, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #changed(): void {
    const crl = this.#crl;
    this.#lastStale = this.revocationStale;
    this.#log.info(
      {
        crlNumber: crl?.crlNumber.toString(),
        revoked: crl?.serials.size,
        nextUpdate: crl?.nextUpdate.toISOString(),
      },
      'revocation list (CRL) updated',
    );
    this.emit('change', this.anchors());
  }

  /** Emits 'change' when revocationStale flipped (the TrustStore then refuses or accepts again). */
  #checkStale(): void {
    const stale = this.revocationStale;
    if (stale === this.#lastStale) return;
    this.#lastStale = stale;
    if (stale)
      this.#log.error(
        { crlNumber: this.#crl?.crlNumber.toString(), nextUpdate: this.#crl?.nextUpdate.toISOString() },
        'revocation list out of date (past nextUpdate + grace): org certificates refused until a current one arrives',
      );
    else this.#log.info({}, 'revocation list current again');
    this.emit('change', this.anchors());
  }

  async #readSavedCrl(): Promise<VerifiedCrl | undefined> {
    let der: Buffer;
    try {
      der = await readFile(join(this.#stateDir, CRL_FILE));
    } catch {
      return undefined;
    }
    try {
      return await verifyCrl(der, this.#orgCaPem);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'ignoring a saved CRL that does not verify');
      return undefined;
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }
}
