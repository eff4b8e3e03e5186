// Pairwise, directional frame-authentication keys: the media layer tags every frame for each
// receiver with a key only the sender and that receiver can compute, so a member holding the group
// key (or the relay) cannot pass its frames off as another member's. Spec: docs/protocol.md.
//   frameAuthKey(S→R) = HKDF-SHA256(ikm = X25519(ephemeral S, ephemeral R), salt = "",
//       info = encode("sealroom/v1/frame-auth", meetingId, creationNonce, senderIndexS, senderIndexR), 32)
import { backend } from './crypto/backend.js';
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import { LABELS } from './labels.js';
import { checkSenderIndex } from './sender-keys.js';

export const FRAME_AUTH_KEY_BYTES = 32;

/** Keys shared with one other current member: send = key(self→peer), receive = key(peer→self). */
export interface FrameAuthKey {
  peerIndex: number;
  send: Uint8Array;
  receive: Uint8Array;
}

export function deriveFrameAuthKey(
  shared: Uint8Array,
  meetingId: string,
  creationNonce: Uint8Array,
  senderIndex: number,
  receiverIndex: number,
): Uint8Array {
  checkSenderIndex(senderIndex);
  checkSenderIndex(receiverIndex);
  if (shared.length !== 32) throw new E2eeError('malformed', 'X25519 shared secret must be 32 bytes');
  const info = encodeCanonical(LABELS.frameAuth, meetingId, creationNonce, senderIndex, receiverIndex);
  return backend.hkdfSha256(shared, new Uint8Array(0), info, FRAME_AUTH_KEY_BYTES);
}
