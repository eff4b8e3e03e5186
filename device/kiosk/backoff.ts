// When to restart the screen after Chromium (or cage) exits: quickly after a one-off crash, slower
// and slower while it keeps dying at start-up, back to quick once it has stayed up a while. Pure.
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** A run at least this long counts as healthy and resets the delay. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000, stableMs: 60_000 };

export interface BackoffState {
  /** Consecutive short runs. */
  failures: number;
}

/** Delay before the next start, given how long the last run lasted; returns the new state too. */
export function nextRestart(
  policy: BackoffPolicy,
  state: BackoffState,
  ranForMs: number,
): { delayMs: number; state: BackoffState } {
  const failures = ranForMs >= policy.stableMs ? 0 : state.failures + 1;
  const delayMs =
    failures === 0 ? policy.initialMs : Math.min(policy.maxMs, policy.initialMs * 2 ** (failures - 1));
  return { delayMs, state: { failures } };
}
