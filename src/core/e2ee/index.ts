// Sealroom E2EE core: meeting keys, the leader participant list and the security code.
// Pure (no sockets, disk, timers or process); randomness and time are injectable. Spec: docs/protocol.md.
//
// How the daemon uses it (one session per meeting; every method returns { outgoing, events }):
//
//   const identity = IdentityKeyPair.fromKeyObject(deviceEd25519PrivateKey);
//   // a person (browser, non-extractable WebCrypto key): no identity, a binding signed beforehand:
//   //   const keys = { ephemeral: EphemeralKeyPair.generate(), kem: KemKeyPair.generate(secureRandom) };
//   //   const binding = await createBindingAsync({ meetingId, participantId, identityKey, sign, keys });
//   //   new ParticipantSession({ meetingId, participantId, prepared: { binding, keys }, trustIdentity });
//   // trustIdentity may answer { trusted, kind: 'room' | 'person' }: a person is never made leader.
//   // host:
//   const { session: leader, output } = LeaderSession.create({ meetingId, participantId, identity });
//   // joiner:
//   const participant = new ParticipantSession({ meetingId, participantId, identity });
//   send(participant.start().outgoing);                 // its signed binding → relay → leader
//   // everywhere: feed every E2EE message from the relay, send what comes out, act on the events
//   const { outgoing, events } = session.handle(validateE2eeMessage(JSON.parse(text)));
//   // leader only: leader.admit([ids]) / leader.deny(id) on 'admission-request' (or the options
//   // autoAdmit + admitBatchMs: joiners are admitted together on tick()), leader.remove(id)
//   // when the relay reports a leave, leader.lock()/unlock(); leader.handOver(id) returns
//   // { output, participant }: carry on with (and keep ticking) that participant session.
//   // Call session.tick() every second or so (heartbeats, rekeys, certification timeout, overlap
//   // end, lost-message recovery). A participant whose 'leader-changed' event has isSelf calls
//   // LeaderSession.takeOver(participant) and carries on with the returned leader session.
//
// Lost messages repair themselves through tick(): members ask the leader ('e2ee.resync'), joiners
// re-post their binding, an outgoing leader re-sends the hand-over entry (docs/protocol.md §8).
// Outgoing messages are plain JSON-ready objects (E2eeMessage); route them by `to` (absent = every
// member of the meeting; for 'e2ee.binding' absent = the leader). Events (SessionEvent):
//   keys              { meetingId, epoch, sendKid, sendKey, receiveKeys[{kid, epoch, senderIndex, key}],
//                       sending (false: send NOTHING), auth[{peerIndex, send, receive}] } → media worker
//   security-code     { code: "12345 67890 …" (8×5 digits), leaderId, leaderIdentityKey } → kiosk
//   roster            { leaderId, locked, listLength,
//                       members[{participantId, identityKey, certificate, senderIndex, leader}] }
//   epoch-certified   { epoch }    admission-request { participantId, identityKey, certificate } (leader)
//   identity-refused  { participantId, reason }  (trustIdentity said no: binding or add entry refused;
//                       or a `leader` entry / the creator names a person: people never lead)
//   downgrade         { participantId, offered, required, reason } (a signed create/binding of an older
//                       protocol version than minProtocolVersion or the meeting's: refused)
//   send-suspended    { reason: 'rekeying' | 'leader-lost' }   send-resumed { epoch }
//   joined { senderIndex }  removed  leader-changed { leaderId, isSelf }
//   leader-silent     { leaderId, lastHeartbeatAt } (participant: no valid heartbeat for 3 intervals)
//   rejected          { messageType, from, code, reason }  (bad input is reported, never thrown)
// The relay validates messages with `parseE2eeMessage(text)` / `validateE2eeMessage(value)` or the
// exported TypeBox schemas, and routes by the fields v, type, meetingId, from, to only.

export {
  acceptedVersions,
  type AsyncBindingRequest,
  type BindingKeys,
  bindingStatement,
  bindingVersion,
  createBinding,
  createBindingAsync,
  type KeyBinding,
  MAX_CERTIFICATE_BYTES,
  verifyBinding,
} from './binding.js';
export { combineWrapSecret, type HybridInput, LeaderWrapSecrets, MemberWrapSecrets } from './hybrid-wrap.js';
export {
  isValidKemPublicKey,
  KEM_CIPHERTEXT_BYTES,
  KEM_PUBLIC_KEY_BYTES,
  KEM_SEED_BYTES,
  kemEncapsulate,
  KemKeyPair,
} from './kem.js';
export { toBase64Url, fromBase64Url } from './bytes.js';
export { backend as cryptoBackend, type CryptoBackend } from './crypto/backend.js';
export { encodeCanonical, type Field } from './canonical.js';
export { E2eeError, type E2eeErrorCode } from './errors.js';
export { deriveFrameAuthKey, FRAME_AUTH_KEY_BYTES, type FrameAuthKey } from './frame-auth.js';
export { type KeysEvent, KeyRing, type SenderKey } from './key-ring.js';
export {
  EphemeralKeyPair,
  IdentityKeyPair,
  isUsableX25519PublicKey,
  type RandomSource,
  secureRandom,
  verifyEd25519,
} from './keys.js';
export {
  DEFAULT_MIN_PROTOCOL_VERSION,
  LABELS,
  LABELS_V2,
  PROTOCOL_VERSION,
  type ProtocolVersion,
  SUPPORTED_VERSIONS,
} from './labels.js';
export { LeaderSession, type LeaderOptions, LIST_ENTRIES_PER_MESSAGE } from './leader-session.js';
export {
  deriveWrapKey,
  drawMeetingKey,
  MEETING_KEY_BYTES,
  openMeetingKey,
  sealMeetingKey,
  SharedSecretCache,
  type WrapContext,
  type WrappedKey,
  wrapAad,
} from './meeting-key.js';
export * from './messages.js';
export {
  checkHeartbeat,
  type Heartbeat,
  heartbeatStatement,
  type ListEntry,
  type ListEntryBody,
  listEntryHash,
  listEntryStatement,
  type Member,
  ParticipantList,
  signHeartbeat,
} from './participant-list.js';
export {
  ParticipantSession,
  REPOST_BINDING_MS,
  RESYNC_AFTER_MS,
  UNCERTIFIED_RESYNC_MS,
} from './participant-session.js';
export {
  formatSecurityCode,
  SECURITY_CODE_DIGITS,
  securityCode,
  securityCodeDigits,
  type SecurityCodeInput,
} from './security-code.js';
export {
  deriveSenderBaseKey,
  makeKid,
  MAX_EPOCH,
  MAX_SENDER_INDEX,
  type MeetingIdentity,
  parseKid,
} from './sender-keys.js';
export {
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_LEADER_SILENT_AFTER_MS,
  DEFAULT_OVERLAP_MS,
  LEADER_SILENT_HEARTBEATS,
  type RosterMember,
  SEND_GRACE_MS,
  type SuspendReason,
  type TrustIdentity,
  type TrustVerdict,
  type SessionEvent,
  type SessionOptions,
  type SessionOutput,
  SessionState,
} from './session-core.js';
export {
  type Delivery,
  type JoinOptions,
  SimulatedMeeting,
  type SimulatedMeetingOptions,
} from './simulated-meeting.js';
