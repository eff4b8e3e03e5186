// A key binding: a participant's identity key signs its per-meeting X25519 key, the meeting id and
// its participant id, so nobody (the relay included) can substitute an ephemeral key.
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import { type EphemeralKeyPair, type IdentityKeyPair, verifyEd25519 } from './keys.js';
import { LABELS } from './labels.js';

export interface KeyBinding {
  meetingId: string;
  participantId: string;
  identityKey: Uint8Array; // Ed25519 public key, 32 bytes
  ephemeralKey: Uint8Array; // X25519 public key, 32 bytes
  signature: Uint8Array; // Ed25519 over bindingStatement(...)
}

export function bindingStatement(b: Omit<KeyBinding, 'signature'>): Uint8Array {
  return encodeCanonical(LABELS.binding, b.meetingId, b.participantId, b.identityKey, b.ephemeralKey);
}

export function createBinding(
  meetingId: string,
  participantId: string,
  identity: IdentityKeyPair,
  ephemeral: EphemeralKeyPair,
): KeyBinding {
  const unsigned = {
    meetingId,
    participantId,
    identityKey: identity.publicKey,
    ephemeralKey: ephemeral.publicKey,
  };
  return { ...unsigned, signature: identity.sign(bindingStatement(unsigned)) };
}

/** Throws unless the binding is for this meeting and signed by the identity key it names. */
export function verifyBinding(binding: KeyBinding, meetingId: string): void {
  if (binding.meetingId !== meetingId) throw new E2eeError('wrong-meeting', 'binding is for another meeting');
  if (!verifyEd25519(binding.identityKey, bindingStatement(binding), binding.signature)) {
    throw new E2eeError('bad-signature', `binding of ${binding.participantId} does not verify`);
  }
}
