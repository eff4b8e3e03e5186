// Client for the provisioning service's signed revocation list, for the relay (or anyone holding the
// org CA certificate). Polls GET <baseUrl>/v1/revocations, verifies the CA signature, refuses lists
// older than the one it already has, and answers isRevoked(serial) synchronously from memory.
import { PkiError } from './errors.js';
import { type RevocationList, verifyRevocationList } from './revocations.js';
import { normalizeSerial } from './verify.js';

export interface RevocationFeedOptions {
  /** Base URL of the provisioning service, e.g. http://127.0.0.1:8443 */
  baseUrl: string;
  caCertPem: string;
  intervalMs?: number;
  /** Called when a poll fails (network, bad signature); the previous list stays in force. */
  onError?: (err: Error) => void;
}

export class RevocationFeed {
  #revoked = new Set<string>();
  #issuedAt = '';
  #timer: NodeJS.Timeout | undefined;
  readonly #opts: RevocationFeedOptions;

  constructor(opts: RevocationFeedOptions) {
    this.#opts = opts;
  }

  isRevoked = (serial: string): boolean => this.#revoked.has(normalizeSerial(serial));

  /** When the list in use was issued (ISO), or '' before the first successful poll. */
  get issuedAt(): string {
    return this.#issuedAt;
  }

  async refresh(): Promise<void> {
    const res = await fetch(new URL('/v1/revocations', this.#opts.baseUrl), {
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`revocation list: HTTP ${res.status}`);
    const list = (await res.json()) as RevocationList;
    const serials = verifyRevocationList(list, this.#opts.caCertPem);
    if (list.issuedAt < this.#issuedAt)
      throw new PkiError('bad-signature', 'revocation list older than the one in use');
    this.#revoked = new Set([...serials].map(normalizeSerial));
    this.#issuedAt = list.issuedAt;
  }

  /** First refresh (errors reported, not thrown), then polling every intervalMs (default 10 s). */
  start(): void {
    if (this.#timer) return;
    const poll = () => this.refresh().catch((err: Error) => this.#opts.onError?.(err));
    void poll();
    this.#timer = setInterval(poll, this.#opts.intervalMs ?? 10_000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
