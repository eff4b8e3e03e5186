// Wire messages of the E2EE key exchange: JSON with a version field, bytes as unpadded base64url.
// The relay reads only the routing fields (v, type, meetingId, from, to) and checks the size and the
// schema with `validateE2eeMessage`; everything else is opaque to it. Spec: docs/protocol.md §6.
import { FormatRegistry, type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type KeyBinding, MAX_CERTIFICATE_BYTES } from './binding.js';
import { fromBase64Url, toBase64Url } from './bytes.js';
import { E2eeError } from './errors.js';
import { PROTOCOL_VERSION } from './labels.js';
import type { Heartbeat, ListEntry, ListEntryBody } from './participant-list.js';
import { MAX_EPOCH, MAX_SENDER_INDEX } from './sender-keys.js';

/** Largest serialised E2EE message (the relay's bulletin-board limit); leaders split long lists. */
export const MAX_E2EE_MESSAGE_BYTES = 128 * 1024;
/** A list message carries 1 to 32 entries (32 add entries with 2 KiB certificates stay < 128 KiB). */
export const MAX_LIST_ENTRIES_PER_MESSAGE = 32;

// Canonical unpadded base64url: re-encoding the decoded bytes must give the same text, so one byte
// string has one wire form (a signature or key cannot be re-spelled to dodge a comparison).
const CANONICAL_B64 = 'sealroom-base64url';
FormatRegistry.Set(
  CANONICAL_B64,
  (text) =>
    /^[A-Za-z0-9_-]*$/.test(text) &&
    text.length % 4 !== 1 &&
    Buffer.from(text, 'base64url').toString('base64url') === text,
);

// base64url of exactly n bytes (no padding): ceil(4n/3) characters.
const b64 = (bytes: number) =>
  Type.String({
    pattern: '^[A-Za-z0-9_-]*$',
    format: CANONICAL_B64,
    minLength: Math.ceil((4 * bytes) / 3),
    maxLength: Math.ceil((4 * bytes) / 3),
  });
const Key32 = b64(32);
const Signature = b64(64);
/** Certificate DER, 0 to MAX_CERTIFICATE_BYTES bytes. */
const Certificate = Type.String({
  pattern: '^[A-Za-z0-9_-]*$',
  format: CANONICAL_B64,
  maxLength: Math.ceil((4 * MAX_CERTIFICATE_BYTES) / 3),
});
export const Id = Type.String({ pattern: '^[A-Za-z0-9._:@-]+$', minLength: 1, maxLength: 128 });
const Epoch = Type.Integer({ minimum: 1, maximum: MAX_EPOCH });
const Time = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

const envelope = {
  v: Type.Literal(PROTOCOL_VERSION),
  meetingId: Id,
  from: Id,
};
const closed = { additionalProperties: false };

export const WireBindingSchema = Type.Object(
  {
    participantId: Id,
    identityKey: Key32,
    ephemeralKey: Key32,
    signature: Signature,
    certificate: Certificate,
  },
  closed,
);

export const WireListEntryBodySchema = Type.Union([
  Type.Object(
    { kind: Type.Literal('create'), leaderId: Id, leaderIdentityKey: Key32, creationNonce: Key32 },
    closed,
  ),
  Type.Object(
    {
      kind: Type.Literal('add'),
      binding: WireBindingSchema,
      senderIndex: Type.Integer({ minimum: 0, maximum: MAX_SENDER_INDEX }),
    },
    closed,
  ),
  Type.Object({ kind: Type.Literal('leave'), participantId: Id }, closed),
  Type.Object({ kind: Type.Literal('lock') }, closed),
  Type.Object({ kind: Type.Literal('unlock') }, closed),
  Type.Object({ kind: Type.Literal('leader'), newLeaderId: Id, minEpoch: Epoch }, closed),
]);

export const WireListEntrySchema = Type.Object(
  { index: Count, prev: Key32, time: Time, signer: Id, body: WireListEntryBodySchema, signature: Signature },
  closed,
);

/** A participant posts its signed key binding; the relay routes it to the leader. */
export const BindingMessageSchema = Type.Object(
  { ...envelope, type: Type.Literal('e2ee.binding'), to: Type.Optional(Id), binding: WireBindingSchema },
  closed,
);

/** Leader → all members (new entries) or → one newcomer (the whole chain from entry 0). */
export const ListMessageSchema = Type.Object(
  {
    ...envelope,
    type: Type.Literal('e2ee.list'),
    to: Type.Optional(Id),
    entries: Type.Array(WireListEntrySchema, { minItems: 1, maxItems: MAX_LIST_ENTRIES_PER_MESSAGE }),
  },
  closed,
);

/** Leader → one member: the meeting key of `epoch`, wrapped for it. */
export const KeyMessageSchema = Type.Object(
  { ...envelope, type: Type.Literal('e2ee.key'), to: Id, epoch: Epoch, nonce: b64(24), ciphertext: b64(48) },
  closed,
);

/** Leader → all members: certifies the key epoch to send with and the chain head. */
export const HeartbeatMessageSchema = Type.Object(
  {
    ...envelope,
    type: Type.Literal('e2ee.heartbeat'),
    to: Type.Optional(Id),
    epoch: Epoch,
    listLength: Count,
    listHead: Key32,
    time: Time,
    signature: Signature,
  },
  closed,
);

/** Member → leader: "I hold the key of `epoch`" (lets the leader certify it early). */
export const AckMessageSchema = Type.Object(
  { ...envelope, type: Type.Literal('e2ee.ack'), to: Id, epoch: Epoch },
  closed,
);

/**
 * Member → leader, after a lost message: "my chain stops at `fromIndex`; send me the entries from
 * there, a heartbeat, and (if given) the key of certified `epoch` that I lack".
 */
export const ResyncMessageSchema = Type.Object(
  { ...envelope, type: Type.Literal('e2ee.resync'), to: Id, fromIndex: Count, epoch: Type.Optional(Epoch) },
  closed,
);

export const E2eeMessageSchema = Type.Union([
  BindingMessageSchema,
  ListMessageSchema,
  KeyMessageSchema,
  HeartbeatMessageSchema,
  AckMessageSchema,
  ResyncMessageSchema,
]);

export type BindingMessage = Static<typeof BindingMessageSchema>;
export type ListMessage = Static<typeof ListMessageSchema>;
export type KeyMessage = Static<typeof KeyMessageSchema>;
export type HeartbeatMessage = Static<typeof HeartbeatMessageSchema>;
export type AckMessage = Static<typeof AckMessageSchema>;
export type ResyncMessage = Static<typeof ResyncMessageSchema>;
export type E2eeMessage = Static<typeof E2eeMessageSchema>;
export type WireBinding = Static<typeof WireBindingSchema>;
export type WireListEntry = Static<typeof WireListEntrySchema>;
export const E2EE_MESSAGE_TYPES = [
  'e2ee.binding',
  'e2ee.list',
  'e2ee.key',
  'e2ee.heartbeat',
  'e2ee.ack',
  'e2ee.resync',
] as const;

const compiled = TypeCompiler.Compile(E2eeMessageSchema);

/** Schema check of a decoded JSON value (no signature checks: those need session state). */
export function isE2eeMessage(value: unknown): value is E2eeMessage {
  return compiled.Check(value);
}

/** Size + JSON + schema check of a raw message, as the relay does before routing it. */
export function parseE2eeMessage(text: string): E2eeMessage {
  if (Buffer.byteLength(text, 'utf8') > MAX_E2EE_MESSAGE_BYTES)
    throw new E2eeError('malformed', 'message too large');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new E2eeError('malformed', 'message is not JSON');
  }
  return validateE2eeMessage(value);
}

export function validateE2eeMessage(value: unknown): E2eeMessage {
  if (compiled.Check(value)) return value;
  const first = compiled.Errors(value).First();
  throw new E2eeError(
    'malformed',
    `invalid E2EE message${first ? ` at ${first.path}: ${first.message}` : ''}`,
  );
}

// ---- conversions between wire and internal forms ----

export function bindingToWire(b: KeyBinding): WireBinding {
  return {
    participantId: b.participantId,
    identityKey: toBase64Url(b.identityKey),
    ephemeralKey: toBase64Url(b.ephemeralKey),
    signature: toBase64Url(b.signature),
    certificate: toBase64Url(b.certificate),
  };
}

export function bindingFromWire(w: WireBinding, meetingId: string): KeyBinding {
  return {
    meetingId,
    participantId: w.participantId,
    identityKey: fromBase64Url(w.identityKey, 32),
    ephemeralKey: fromBase64Url(w.ephemeralKey, 32),
    signature: fromBase64Url(w.signature, 64),
    certificate: fromBase64Url(w.certificate),
  };
}

export function listEntryToWire(e: ListEntry): WireListEntry {
  const b = e.body;
  let body: WireListEntry['body'];
  switch (b.kind) {
    case 'create':
      body = {
        kind: 'create',
        leaderId: b.leaderId,
        leaderIdentityKey: toBase64Url(b.leaderIdentityKey),
        creationNonce: toBase64Url(b.creationNonce),
      };
      break;
    case 'add':
      body = { kind: 'add', binding: bindingToWire(b.binding), senderIndex: b.senderIndex };
      break;
    default:
      body = b;
  }
  return {
    index: e.index,
    prev: toBase64Url(e.prev),
    time: e.time,
    signer: e.signer,
    body,
    signature: toBase64Url(e.signature),
  };
}

export function listEntryFromWire(w: WireListEntry, meetingId: string): ListEntry {
  const b = w.body;
  let body: ListEntryBody;
  switch (b.kind) {
    case 'create':
      body = {
        kind: 'create',
        leaderId: b.leaderId,
        leaderIdentityKey: fromBase64Url(b.leaderIdentityKey, 32),
        creationNonce: fromBase64Url(b.creationNonce, 32),
      };
      break;
    case 'add':
      body = { kind: 'add', binding: bindingFromWire(b.binding, meetingId), senderIndex: b.senderIndex };
      break;
    default:
      body = { ...b };
  }
  return {
    meetingId,
    index: w.index,
    prev: fromBase64Url(w.prev, 32),
    time: w.time,
    signer: w.signer,
    body,
    signature: fromBase64Url(w.signature, 64),
  };
}

export function heartbeatToWire(h: Heartbeat, from: string): HeartbeatMessage {
  return {
    v: PROTOCOL_VERSION,
    type: 'e2ee.heartbeat',
    meetingId: h.meetingId,
    from,
    epoch: h.epoch,
    listLength: h.listLength,
    listHead: toBase64Url(h.listHead),
    time: h.time,
    signature: toBase64Url(h.signature),
  };
}

export function heartbeatFromWire(m: HeartbeatMessage): Heartbeat {
  return {
    meetingId: m.meetingId,
    leaderId: m.from,
    epoch: m.epoch,
    listLength: m.listLength,
    listHead: fromBase64Url(m.listHead, 32),
    time: m.time,
    signature: fromBase64Url(m.signature, 64),
  };
}
