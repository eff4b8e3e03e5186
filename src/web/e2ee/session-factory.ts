// A ParticipantSession for a person, whose identity key is a non-extractable WebCrypto key that
// signs asynchronously. The core signs exactly one thing for a participant — its key binding — so
// the binding is made here with the core's createBindingAsync (per-meeting X25519 + ML-KEM-768 keys,
// the statement signed by WebCrypto, the signature checked) and handed to the session as `prepared`.
// Such a session signs nothing else: it can never create a meeting or take leadership (people never lead).
import { createBindingAsync } from '../../core/e2ee/binding.js';
import { KemKeyPair } from '../../core/e2ee/kem.js';
import { EphemeralKeyPair, type RandomSource, secureRandom } from '../../core/e2ee/keys.js';
import { ParticipantSession } from '../../core/e2ee/participant-session.js';
import type { SessionOptions } from '../../core/e2ee/session-core.js';
import type { AsyncSigner } from './relay-client.js';

export type AsyncSessionOptions = Omit<SessionOptions, 'identity' | 'prepared' | 'identityKey'> & {
  signer: AsyncSigner;
};

export async function createParticipantSession(opts: AsyncSessionOptions): Promise<ParticipantSession> {
  const { signer, ...rest } = opts;
  const random: RandomSource = rest.random ?? secureRandom;
  const keys = { ephemeral: EphemeralKeyPair.generate(random), kem: KemKeyPair.generate(random) };
  const binding = await createBindingAsync({
    meetingId: rest.meetingId,
    participantId: rest.participantId,
    identityKey: signer.publicKey,
    sign: (statement) => signer.sign(statement),
    keys,
    ...(rest.certificate ? { certificate: rest.certificate } : {}),
    ...(rest.minProtocolVersion ? { minProtocolVersion: rest.minProtocolVersion } : {}),
  });
  return new ParticipantSession({ ...rest, identityKey: signer.publicKey, prepared: { binding, keys } });
}
