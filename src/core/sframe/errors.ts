// Typed SFrame failures. Every rejection of untrusted input surfaces as an SFrameError with a stable
// code, so callers (media worker, tests, selftest) can count and react without parsing messages.

export type SFrameErrorCode =
  | 'MALFORMED_HEADER'
  | 'TRUNCATED'
  | 'TOO_LARGE'
  | 'UNKNOWN_KEY'
  | 'AUTH_FAILED'
  | 'REPLAY'
  | 'TOO_OLD'
  | 'IMPLAUSIBLE_COUNTER'
  | 'UNSUPPORTED_SUITE'
  | 'COUNTER_EXHAUSTED'
  | 'INVALID_KEY';

export class SFrameError extends Error {
  readonly code: SFrameErrorCode;

  constructor(code: SFrameErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'SFrameError';
    this.code = code;
  }
}

export function isSFrameError(err: unknown, code?: SFrameErrorCode): err is SFrameError {
  return err instanceof SFrameError && (code === undefined || err.code === code);
}
