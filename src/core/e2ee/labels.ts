// Domain-separation labels: every signature, hash, KDF and AEAD input starts with one of these, so a
// value made for one purpose can never be accepted for another. Listed in docs/protocol.md §3.
// A v2 label exists only where protocol v2 changed a statement (§12); the others serve both versions.
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

/** Protocol v2 (hybrid X25519 + ML-KEM-768 key wrap): the statements it changed or added. */
export const LABELS_V2 = {
  binding: 'sealroom/v2/binding',
  listEntry: 'sealroom/v2/list-entry',
  wrapSecret: 'sealroom/v2/wrap-secret',
  wrapKey: 'sealroom/v2/wrap-key',
  wrapAad: 'sealroom/v2/wrap-aad',
} as const;

export type ProtocolVersion = 1 | 2;
/** The highest version this code speaks, and what sessions run unless configured otherwise. */
export const PROTOCOL_VERSION = 2;
export const SUPPORTED_VERSIONS: readonly ProtocolVersion[] = [1, 2];
/** Sessions refuse anything older than this unless `minProtocolVersion` says otherwise. */
export const DEFAULT_MIN_PROTOCOL_VERSION: ProtocolVersion = 2;

/** The versions a binding accepts, as the u64 bit mask its statement signs (bit v = version v). */
export function versionMask(versions: readonly number[]): number {
  let mask = 0;
  for (const v of versions) mask |= 1 << v;
  return mask;
}
