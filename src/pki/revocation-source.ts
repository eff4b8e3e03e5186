// What the relay (and anyone else enforcing revocation) needs from a revocation feed: a synchronous
// "is this serial revoked?", whether new sessions may start (fail closed when the CRL is stale), a
// status for /healthz and metrics, and a change event to end sessions of newly revoked certificates.

/** Freshness of the CRL in force: none yet; fresh (before nextUpdate); stale (past nextUpdate,
 * within the grace); expired (past nextUpdate + grace: new sessions refused when failing closed). */
export type RevocationState = 'none' | 'fresh' | 'stale' | 'expired';

export interface RevocationStatus {
  state: RevocationState;
  /** Decimal CRL number of the CRL in force. */
  crlNumber?: string;
  thisUpdate?: string;
  nextUpdate?: string;
  /** Number of revoked serials in force. */
  revoked: number;
  /** False when failing closed: new sessions are refused until a fresh CRL arrives. */
  acceptingNewSessions: boolean;
}

export interface RevocationSource {
  /** Lowercase hex serial (any case accepted) → true when revoked by the CRL in force. */
  isRevoked(serial: string): boolean;
  /** False when new sessions must be refused (no CRL, or expired beyond the grace, and failing closed). */
  acceptsNewSessions(): boolean;
  status(): RevocationStatus;
  /** 'change' fires after a newer CRL was verified and put in force. */
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}
