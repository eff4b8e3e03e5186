// One error type for everything that can be wrong with a certificate or request, with a code the
// callers (service, relay) can map to a status or a message without parsing text.
export type PkiErrorCode =
  | 'malformed'
  | 'bad-signature'
  | 'bad-chain'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'wrong-key-type'
  | 'bad-subject'
  /** A person certificate where a room certificate is required, or the reverse. */
  | 'wrong-kind'
  /** A person certificate valid for longer than PERSON_CERT_MAX_MS. */
  | 'bad-lifetime';

export class PkiError extends Error {
  override readonly name = 'PkiError';
  constructor(
    readonly code: PkiErrorCode,
    message: string,
  ) {
    super(message);
  }
}
