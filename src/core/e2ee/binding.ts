// A key binding: a participant's identity key signs its per-meeting keys, the meeting id and its
// participant id, so nobody (the relay included) can substitute a key.
//   v1: the X25519 ephemeral key.
//   v2: the X25519 ephemeral key, the ML-KEM-768 encapsulation key and the protocol versions the
//       participant accepts (a signed bit mask: the relay cannot make it look like a v1-only
//       participant, docs/protocol.md §12).
// The device or person certificate rides along unsigned: it is self-authenticating (the daemon or
// page checks its chain and that its key is `identityKey`), so the signature need not cover it.
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import { isValidKemPublicKey, type KemKeyPair } from './kem.js';
import {
  type EphemeralKeyPair,
  type IdentityKeyPair,
  isUsableX25519PublicKey,
  verifyEd25519,
} from './keys.js';
import { LABELS, LABELS_V2, type ProtocolVersion, SUPPORTED_VERSIONS, versionMask } from './labels.js';

/** Largest certificate DER a binding may carry (the wire schema allows its base64url). */
export const MAX_CERTIFICATE_BYTES = 2048;

export interface KeyBinding {
  meetingId: string;
  participantId: string;
  identityKey: Uint8Array; // Ed25519 public key, 32 bytes
  ephemeralKey: Uint8Array; // X25519 public key, 32 bytes
  /** v2 only: ML-KEM-768 encapsulation key (1184 bytes). Absent: a v1 binding. */
  kemKey?: Uint8Array;
  /** v2 only: the protocol versions this participant accepts, ascending (signed). */
  versions?: readonly ProtocolVersion[];
  signature: Uint8Array; // Ed25519 over bindingStatement(...)
  certificate: Uint8Array; // X.509 DER of the device or person (empty allowed by the core; not signed)
}

/** The per-meeting private keys behind a binding (the X25519 key; the ML-KEM key in v2). */
export interface BindingKeys {
  ephemeral: EphemeralKeyPair;
  kem?: KemKeyPair;
}

export function bindingVersion(b: Pick<KeyBinding, 'kemKey'>): ProtocolVersion {
  return b.kemKey === undefined ? 1 : 2;
}

export function bindingStatement(
  b: Pick<KeyBinding, 'meetingId' | 'participantId' | 'identityKey' | 'ephemeralKey' | 'kemKey' | 'versions'>,
): Uint8Array {
  if (b.kemKey === undefined) {
    return encodeCanonical(LABELS.binding, b.meetingId, b.participantId, b.identityKey, b.ephemeralKey);
  }
  return encodeCanonical(
    LABELS_V2.binding,
    b.meetingId,
    b.participantId,
    b.identityKey,
    b.ephemeralKey,
    b.kemKey,
    versionMask(b.versions ?? []),
  );
}

/** The versions a participant with this minimum accepts (those it supports, from `min` up). */
export function acceptedVersions(minProtocolVersion: ProtocolVersion): ProtocolVersion[] {
  return SUPPORTED_VERSIONS.filter((v) => v >= minProtocolVersion);
}

function unsignedBinding(
  meetingId: string,
  participantId: string,
  identityKey: Uint8Array,
  keys: BindingKeys,
  minProtocolVersion: ProtocolVersion,
): Omit<KeyBinding, 'signature' | 'certificate'> {
  const base = { meetingId, participantId, identityKey, ephemeralKey: keys.ephemeral.publicKey };
  if (!keys.kem) return base; // v1
  return { ...base, kemKey: keys.kem.publicKey, versions: acceptedVersions(minProtocolVersion) };
}

/** A binding signed by a local identity key: v2 if `keys.kem` is given, else v1. */
export function createBinding(
  meetingId: string,
  participantId: string,
  identity: IdentityKeyPair,
  keys: EphemeralKeyPair | BindingKeys,
  certificate: Uint8Array = new Uint8Array(0),
  minProtocolVersion: ProtocolVersion = 2,
): KeyBinding {
  const bindingKeys = 'ephemeral' in keys ? keys : { ephemeral: keys };
  const unsigned = unsignedBinding(
    meetingId,
    participantId,
    identity.publicKey,
    bindingKeys,
    minProtocolVersion,
  );
  return { ...unsigned, signature: identity.sign(bindingStatement(unsigned)), certificate };
}

export interface AsyncBindingRequest {
  meetingId: string;
  participantId: string;
  /** The raw 32-byte Ed25519 public key of the signer (e.g. exported from a WebCrypto CryptoKey). */
  identityKey: Uint8Array;
  /** Signs the statement with the identity key, e.g. crypto.subtle.sign('Ed25519', privateKey, s). */
  sign: (statement: Uint8Array) => Promise<Uint8Array>;
  keys: BindingKeys;
  certificate?: Uint8Array;
  minProtocolVersion?: ProtocolVersion;
}

/**
 * A binding signed by a key the core cannot hold (a person's non-extractable WebCrypto key). Pass it
 * with its `keys` as `SessionOptions.prepared`; a participant signs nothing else (people never lead).
 * The signature is checked here, so a signer that signed something else fails now, not at the leader.
 */
export async function createBindingAsync(request: AsyncBindingRequest): Promise<KeyBinding> {
  const unsigned = unsignedBinding(
    request.meetingId,
    request.participantId,
    request.identityKey,
    request.keys,
    request.minProtocolVersion ?? 2,
  );
  const signature = new Uint8Array(await request.sign(bindingStatement(unsigned)));
  const binding = { ...unsigned, signature, certificate: request.certificate ?? new Uint8Array(0) };
  verifyBinding(binding, request.meetingId);
  return binding;
}

/**
 * Throws unless the binding is for this meeting, signed by the identity key it names, carries a
 * certificate of at most MAX_CERTIFICATE_BYTES, an X25519 key that can be agreed with (not invalid,
 * not of low order: such a key would make every later wrap for it fail) and, in v2, a valid ML-KEM
 * encapsulation key and a version set that contains v2 and only known versions.
 */
export function verifyBinding(binding: KeyBinding, meetingId: string): void {
  if (binding.meetingId !== meetingId) throw new E2eeError('wrong-meeting', 'binding is for another meeting');
  if (binding.certificate.length > MAX_CERTIFICATE_BYTES) {
    throw new E2eeError('malformed', `certificate of ${binding.participantId} is too large`);
  }
  if (binding.kemKey !== undefined) {
    const versions = binding.versions ?? [];
    const sorted = versions.every(
      (v, i) => SUPPORTED_VERSIONS.includes(v) && (i === 0 || v > versions[i - 1]!),
    );
    if (!sorted || !versions.includes(2)) {
      throw new E2eeError('malformed', `binding of ${binding.participantId} has an invalid version set`);
    }
  } else if (binding.versions !== undefined) {
    throw new E2eeError('malformed', 'a v1 binding carries no version set');
  }
  if (!verifyEd25519(binding.identityKey, bindingStatement(binding), binding.signature)) {
    throw new E2eeError('bad-signature', `binding of ${binding.participantId} does not verify`);
  }
  if (!isUsableX25519PublicKey(binding.ephemeralKey)) {
    throw new E2eeError('malformed', `ephemeral key of ${binding.participantId} is invalid or of low order`);
  }
  if (binding.kemKey !== undefined && !isValidKemPublicKey(binding.kemKey)) {
    throw new E2eeError('malformed', `ML-KEM key of ${binding.participantId} is invalid`);
  }
}
