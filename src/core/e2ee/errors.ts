// One typed error for everything the E2EE core refuses, so callers can log the code and drop the message.
export type E2eeErrorCode =
  | 'malformed' // does not match the schema or an encoding rule
  | 'bad-signature' // a signed statement does not verify
  | 'wrong-meeting' // signed for another meeting
  | 'wrong-recipient' // addressed to someone else
  | 'unwrap-failed' // AEAD authentication of a wrapped key failed
  | 'stale-epoch' // a key sequence number that does not increase
  | 'chain-broken' // participant-list entry out of order or with a wrong previous hash
  | 'not-member' // sender or subject is not (or no longer) in the participant list
  | 'locked' // the meeting is locked
  | 'untrusted-identity' // the injected identity check refused the key
  | 'downgrade' // an older protocol version than this session accepts, or v2 material stripped
  | 'not-eligible' // leadership for a participant that may not lead (a person)
  | 'invalid-state'; // the operation is not allowed in the session's current state

export class E2eeError extends Error {
  readonly code: E2eeErrorCode;
  constructor(code: E2eeErrorCode, message: string) {
    super(message);
    this.name = 'E2eeError';
    this.code = code;
  }
}
