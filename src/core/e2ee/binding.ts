// A key binding: a participant's identity key signs its per-meeting X25519 key, the meeting id and
// its participant id, so nobody (the relay included) can substitute an ephemeral key. The device
// certificate rides along unsigned: it is self-authenticating (the daemon checks its chain and that
// its key is `identityKey`), so the signature does not need to cover it.
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import {
  type EphemeralKeyPair,
  type IdentityKeyPair,
  isUsableX25519PublicKey,
  verifyEd25519,
} from './keys.js';
import { LABELS } from './labels.js';

/** Largest certificate DER a binding may carry (the wire schema allows its base64url). */
export const MAX_CERTIFICATE_BYTES = 2048;

export interface KeyBinding {
  meetingId: string;
  participantId: string;
  identityKey: Uint8Array; // Ed25519 public key, 32 bytes
  ephemeralKey: Uint8Array; // X25519 public key, 32 bytes
  signature: Uint8Array; // Ed25519 over bindingStatement(...)
  certificate: Uint8Array; // X.509 DER of the device (empty allowed by the core; not signed)
}

export function bindingStatement(
  b: Pick<KeyBinding, 'meetingId' | 'participantId' | 'identityKey' | 'ephemeralKey'>,
): Uint8Array {
  return encodeCanonical(LABELS.binding, b.meetingId, b.participantId, b.identityKey, b.ephemeralKey);
}

export function createBinding(
  meetingId: string,
  participantId: string,
  identity: IdentityKeyPair,
  ephemeral: EphemeralKeyPair,
  certificate: Uint8Array = new Uint8Array(0),
): KeyBinding {
  const unsigned = {
    meetingId,
    participantId,
    identityKey: identity.publicKey,
    ephemeralKey: ephemeral.publicKey,
  };
  return { ...unsigned, signature: identity.sign(bindingStatement(unsigned)), certificate };
}

/**
 * Throws unless the binding is for this meeting, signed by the identity key it names, carries a
 * certificate of at most MAX_CERTIFICATE_BYTES and an X25519 key that can be agreed with (not
 * invalid, not of low order: such a key would make every later wrap for it fail).
 */
export function verifyBinding(binding: KeyBinding, meetingId: string): void {
  if (binding.meetingId !== meetingId) throw new E2eeError('wrong-meeting', 'binding is for another meeting');
  if (binding.certificate.length > MAX_CERTIFICATE_BYTES) {
    throw new E2eeError('malformed', `certificate of ${binding.participantId} is too large`);
  }
  if (!verifyEd25519(binding.identityKey, bindingStatement(binding), binding.signature)) {
    throw new E2eeError('bad-signature', `binding of ${binding.participantId} does not verify`);
  }
  if (!isUsableX25519PublicKey(binding.ephemeralKey)) {
    throw new E2eeError('malformed', `ephemeral key of ${binding.participantId} is invalid or of low order`);
  }
}
