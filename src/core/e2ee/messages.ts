// Wire messages of the E2EE key exchange: JSON with a version field, bytes as unpadded base64url.
// The relay reads only the routing fields (v, type, meetingId, from, to) and checks the size and the
// schema with `validateE2eeMessage`; everything else is opaque to it. Spec: docs/protocol.md §6.
import { FormatRegistry, type Static, Type } from '@sinclair/typebox';
import { compileSchema } from '../../util/schema-check.js';
import { type KeyBinding, MAX_CERTIFICATE_BYTES } from './binding.js';
import { fromBase64Url, isCanonicalBase64Url, toBase64Url } from './bytes.js';
import { E2eeError } from './errors.js';
import { KEM_CIPHERTEXT_BYTES, KEM_PUBLIC_KEY_BYTES } from './kem.js';
import { type ProtocolVersion, SUPPORTED_VERSIONS } from './labels.js';
import type { Heartbeat, ListEntry, ListEntryBody } from './participant-list.js';
import { MAX_EPOCH, MAX_SENDER_INDEX } from './sender-keys.js';

/**
 * Largest serialised E2EE message; leaders split long lists. (The relay's own limit,
 * MAX_E2EE_PAYLOAD_BYTES in src/core/protocol/relay.ts, is larger: 1000 KiB.)
 */
export const MAX_E2EE_MESSAGE_BYTES = 256 * 1024;
/**
 * A list message carries 1 to 32 entries: 32 v2 add entries (1184-byte ML-KEM key, 2 KiB
 * certificate, 128-character ids: ≤ 5.2 KB each on the wire) stay < 256 KiB.
 */
export const MAX_LIST_ENTRIES_PER_MESSAGE = 32;

// Canonical unpadded base64url: re-encoding the decoded bytes must give the same text, so one byte
// string has one wire form (a signature or key cannot be re-spelled to dodge a comparison).
const CANONICAL_B64 = 'sealroom-base64url';
FormatRegistry.Set(CANONICAL_B64, isCanonicalBase64Url);

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

/** The envelope's version: the sender's session version (informational; statements carry the signed one). */
const Version = Type.Union(SUPPORTED_VERSIONS.map((v) => Type.Literal(v)));
const envelope = {
  v: Version,
  meetingId: Id,
  from: Id,
};
const closed = { additionalProperties: false };

export const WireBindingV1Schema = Type.Object(
  {
    participantId: Id,
    identityKey: Key32,
    ephemeralKey: Key32,
    signature: Signature,
    certificate: Certificate,
  },
  closed,
);

/** v2: adds the ML-KEM-768 encapsulation key and the accepted versions (both signed). */
export const WireBindingV2Schema = Type.Object(
  {
    participantId: Id,
    identityKey: Key32,
    ephemeralKey: Key32,
    kemKey: b64(KEM_PUBLIC_KEY_BYTES),
    versions: Type.Array(Version, { minItems: 1, maxItems: SUPPORTED_VERSIONS.length }),
    signature: Signature,
    certificate: Certificate,
  },
  closed,
);

export const WireBindingSchema = Type.Union([WireBindingV1Schema, WireBindingV2Schema]);

export const WireListEntryBodySchema = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('create'),
      leaderId: Id,
      leaderIdentityKey: Key32,
      creationNonce: Key32,
      version: Type.Optional(Type.Literal(2)), // absent: a v1 meeting
    },
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

/** Leader → one member: the meeting key of `epoch`, wrapped for it (v2: with the ML-KEM ciphertext). */
export const KeyMessageSchema = Type.Object(
  {
    ...envelope,
    type: Type.Literal('e2ee.key'),
    to: Id,
    epoch: Epoch,
    nonce: b64(24),
    ciphertext: b64(48),
    kemCiphertext: Type.Optional(b64(KEM_CIPHERTEXT_BYTES)),
  },
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

// CSP-safe (the web participant's worker has no 'unsafe-eval'): see src/util/schema-check.ts.
const compiled = compileSchema(E2eeMessageSchema);

/** Schema check of a decoded JSON value (no signature checks: those need session state). */
export function isE2eeMessage(value: unknown): value is E2eeMessage {
  return compiled.Check(value);
}

const utf8 = new TextEncoder();
const utf8Length = (text: string): number =>
  text.length * 3 <= MAX_E2EE_MESSAGE_BYTES ? text.length * 3 : utf8.encode(text).length; // cheap bound first

/** Size + JSON + schema check of a raw message, as the relay does before routing it. */
export function parseE2eeMessage(text: string): E2eeMessage {
  if (utf8Length(text) > MAX_E2EE_MESSAGE_BYTES) throw new E2eeError('malformed', 'message too large');
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
  const keys = {
    participantId: b.participantId,
    identityKey: toBase64Url(b.identityKey),
    ephemeralKey: toBase64Url(b.ephemeralKey),
  };
  const signed = { signature: toBase64Url(b.signature), certificate: toBase64Url(b.certificate) };
  if (b.kemKey === undefined) return { ...keys, ...signed };
  return { ...keys, kemKey: toBase64Url(b.kemKey), versions: [...(b.versions ?? [])], ...signed };
}

export function bindingFromWire(w: WireBinding, meetingId: string): KeyBinding {
  const binding: KeyBinding = {
    meetingId,
    participantId: w.participantId,
    identityKey: fromBase64Url(w.identityKey, 32),
    ephemeralKey: fromBase64Url(w.ephemeralKey, 32),
    signature: fromBase64Url(w.signature, 64),
    certificate: fromBase64Url(w.certificate),
  };
  if ('kemKey' in w) {
    binding.kemKey = fromBase64Url(w.kemKey, KEM_PUBLIC_KEY_BYTES);
    binding.versions = [...w.versions];
  }
  return binding;
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
        ...(b.version === 2 ? { version: 2 as const } : {}),
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

/** `version`: the meeting's (from its create entry; a create entry brings its own). */
export function listEntryFromWire(
  w: WireListEntry,
  meetingId: string,
  version: ProtocolVersion | 0 = 1,
): ListEntry {
  const b = w.body;
  let body: ListEntryBody;
  switch (b.kind) {
    case 'create':
      body = {
        kind: 'create',
        leaderId: b.leaderId,
        leaderIdentityKey: fromBase64Url(b.leaderIdentityKey, 32),
        creationNonce: fromBase64Url(b.creationNonce, 32),
        ...(b.version === 2 ? { version: 2 as const } : {}),
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
    version: body.kind === 'create' ? (body.version ?? 1) : version === 0 ? 1 : version,
  };
}

export function heartbeatToWire(h: Heartbeat, from: string, v: ProtocolVersion = 2): HeartbeatMessage {
  return {
    v,
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
