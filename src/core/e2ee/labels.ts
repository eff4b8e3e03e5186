// Domain-separation labels: every signature, hash, KDF and AEAD input starts with one of these, so a
// value made for one purpose can never be accepted for another. Listed in docs/protocol.md §3.
export const LABELS = {
  binding: 'sealroom/v1/binding',
  listEntry: 'sealroom/v1/list-entry',
  listHash: 'sealroom/v1/list-hash',
  heartbeat: 'sealroom/v1/heartbeat',
  wrapKey: 'sealroom/v1/wrap-key',
  wrapAad: 'sealroom/v1/wrap-aad',
  senderKey: 'sealroom/v1/sender-key',
  frameAuth: 'sealroom/v1/frame-auth',
  securityCode: 'sealroom/v1/security-code',
} as const;

export const PROTOCOL_VERSION = 1;
