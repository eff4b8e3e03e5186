// The trust anchors this device pinned at enrollment, kept in its state directory:
//   ca.pem             the org CA (written by the enrollment runner with the first certificate)
//   partner-cas.json   partner-org CAs from signed config (`partnerCas`, signed by the org CA key)
//   revocations.json   the newest signed revocation list seen (GET /v1/revocations, signed by the org CA)
// Each file is verified against ca.pem when read and before it is written (atomically); an older
// partner bundle or revocation list than the one held is refused, so a replay cannot undo a
// revocation. `anchors()` is what the daemon's TrustStore checks every participant against.
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type PartnerCaBundle, verifyPartnerCas } from '../../src/pki/partner-cas.js';
import { type RevocationList, verifyRevocationList } from '../../src/pki/revocations.js';
import type { TrustAnchors } from '../../src/pki/trust-store.js';
import { normalizeSerial } from '../../src/pki/verify.js';
import { readJsonIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';
import { type Logger, silentLogger } from '../../src/util/log.js';

export const CA_FILE = 'ca.pem';
export const PARTNER_CAS_FILE = 'partner-cas.json';
export const REVOCATIONS_FILE = 'revocations.json';

export interface DeviceTrustAnchorsOptions {
  stateDir: string;
  orgCaPem: string;
  logger?: Logger;
}

export class DeviceTrustAnchors extends EventEmitter<{ change: [TrustAnchors] }> {
  readonly #stateDir: string;
  readonly #orgCaPem: string;
  readonly #log: Logger;
  #partners: PartnerCaBundle | undefined;
  #revocations: { issuedAt: string; serials: Set<string> } | undefined;
  #timer: NodeJS.Timeout | undefined;

  private constructor(opts: DeviceTrustAnchorsOptions) {
    super();
    this.#stateDir = opts.stateDir;
    this.#orgCaPem = opts.orgCaPem;
    this.#log = opts.logger ?? silentLogger;
  }

  /** Loads ca.pem and what was saved beside it; a saved file that does not verify is ignored (logged). */
  static async load(stateDir: string, logger?: Logger): Promise<DeviceTrustAnchors> {
    const orgCaPem = await readFile(join(stateDir, CA_FILE), 'utf8');
    const anchors = new DeviceTrustAnchors({ stateDir, orgCaPem, ...(logger ? { logger } : {}) });
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
    const list = await readJsonIfExists<RevocationList>(join(stateDir, REVOCATIONS_FILE)).catch(
      () => undefined,
    );
    if (list !== undefined) {
      try {
        anchors.#revocations = { issuedAt: list.issuedAt, serials: verifiedSerials(list, orgCaPem) };
      } catch (err) {
        anchors.#log.warn(
          { err: (err as Error).message },
          'ignoring a saved revocation list that does not verify',
        );
      }
    }
    return anchors;
  }

  anchors(): TrustAnchors {
    return {
      orgCaPem: this.#orgCaPem,
      partnerCaPems: this.#partners?.caPems ?? [],
      revokedSerials: this.#revocations?.serials ?? new Set(),
    };
  }

  get revocationsIssuedAt(): string | undefined {
    return this.#revocations?.issuedAt;
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

  /** A signed revocation list: verified with the org CA, refused when older than the one held. */
  async applyRevocations(list: RevocationList): Promise<boolean> {
    const serials = verifiedSerials(list, this.#orgCaPem);
    const held = this.#revocations?.issuedAt;
    if (held !== undefined && Date.parse(list.issuedAt) < Date.parse(held))
      throw new Error('revocation list older than the one in use');
    if (held !== undefined && Date.parse(list.issuedAt) === Date.parse(held)) return false;
    await writeFileAtomic(join(this.#stateDir, REVOCATIONS_FILE), JSON.stringify(list), 0o644);
    this.#revocations = { issuedAt: list.issuedAt, serials };
    this.#log.info({ revoked: serials.size, issuedAt: list.issuedAt }, 'revocation list updated');
    this.emit('change', this.anchors());
    return true;
  }

  /** Fetches GET <serviceUrl>/v1/revocations once. */
  async refreshRevocations(serviceUrl: string): Promise<boolean> {
    const res = await fetch(new URL('/v1/revocations', serviceUrl), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`revocation list: HTTP ${res.status}`);
    return this.applyRevocations((await res.json()) as RevocationList);
  }

  /** Polls the revocation list (first poll now); failures keep the list in force and are logged. */
  pollRevocations(serviceUrl: string, intervalMs = 60_000): void {
    if (this.#timer) return;
    const poll = () =>
      this.refreshRevocations(serviceUrl).catch((err: Error) =>
        this.#log.warn({ err: err.message }, 'could not refresh the revocation list; keeping the one held'),
      );
    void poll();
    this.#timer = setInterval(poll, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function verifiedSerials(list: RevocationList, orgCaPem: string): Set<string> {
  if (
    !list ||
    typeof list.issuedAt !== 'string' ||
    Number.isNaN(Date.parse(list.issuedAt)) ||
    !Array.isArray(list.revoked) ||
    typeof list.signature !== 'string' ||
    !list.revoked.every((r) => r && typeof r.serial === 'string')
  )
    throw new Error('not a revocation list');
  return new Set([...verifyRevocationList(list, orgCaPem)].map(normalizeSerial));
}
