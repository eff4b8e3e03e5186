// Per-sender SFrame base keys and the KID layout. Every participant derives every sender's base key
// from the meeting key of an epoch; the KID names (epoch, sender) so a receiver finds the key by
// lookup, never by trial decryption. The meeting's id and creation nonce are in the info, so the
// same KID in another meeting (even with a reused meeting key) names another key.
//   baseKey(epoch, sender) = HKDF-SHA256(ikm = meetingKey, salt = "", info = encode(
//                            "sealroom/v1/sender-key", meetingId, creationNonce, epoch, sender), 32)
//   KID = epoch << 16 | senderIndex       (epoch < 2^47 keeps KID < 2^63)
import { backend } from './crypto/backend.js';
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import { LABELS } from './labels.js';

export const SENDER_KEY_BYTES = 32;
export const MAX_SENDER_INDEX = 0xffff;
export const MAX_EPOCH = 2 ** 47 - 1;

/** What names one meeting: its id and the creation nonce of its `create` entry. */
export interface MeetingIdentity {
  meetingId: string;
  creationNonce: Uint8Array;
}

export function deriveSenderBaseKey(
  meetingKey: Uint8Array,
  epoch: number,
  senderIndex: number,
  meeting: MeetingIdentity,
): Uint8Array {
  checkEpoch(epoch);
  checkSenderIndex(senderIndex);
  if (meeting.creationNonce.length !== 32)
    throw new E2eeError('malformed', 'creation nonce must be 32 bytes');
  const info = encodeCanonical(
    LABELS.senderKey,
    meeting.meetingId,
    meeting.creationNonce,
    epoch,
    senderIndex,
  );
  return backend.hkdfSha256(meetingKey, new Uint8Array(0), info, SENDER_KEY_BYTES);
}

export function makeKid(epoch: number, senderIndex: number): bigint {
  checkEpoch(epoch);
  checkSenderIndex(senderIndex);
  return (BigInt(epoch) << 16n) | BigInt(senderIndex);
}

export function parseKid(kid: bigint): { epoch: number; senderIndex: number } {
  if (kid < 0n || kid > (BigInt(MAX_EPOCH) << 16n) + BigInt(MAX_SENDER_INDEX)) {
    throw new E2eeError('malformed', `KID out of range: ${kid}`);
  }
  return { epoch: Number(kid >> 16n), senderIndex: Number(kid & 0xffffn) };
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new E2eeError('malformed', `epoch out of range: ${epoch}`);
  }
}

export function checkSenderIndex(senderIndex: number): void {
  if (!Number.isInteger(senderIndex) || senderIndex < 0 || senderIndex > MAX_SENDER_INDEX) {
    throw new E2eeError('malformed', `sender index out of range: ${senderIndex}`);
  }
}
