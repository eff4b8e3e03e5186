// The relay's WebSocket wire protocol: one JSON object per text frame, both directions.
// The relay reads only the routing fields; E2EE payloads (bindings, wrapped keys, participant
// lists, heartbeats) are opaque objects it size-limits and forwards. See docs/relay.md.
import { type Static, type TProperties, type TSchema, Type } from '@sinclair/typebox';
import { compileSchema, type SchemaChecker } from '../../util/schema-check.js';

/** Largest WebSocket frame the relay accepts (a wrapped-key batch for ~100 participants fits). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Largest single E2EE payload routed through the bulletin board (a full list for ~1000 members). */
export const MAX_E2EE_PAYLOAD_BYTES = 1000 * 1024;
/** Domain-separation label of the authentication signature: label || 0x00 || nonce bytes. */
export const AUTH_LABEL = 'sealroom/relay-auth/v1';

/**
 * Every message object refuses properties it does not name (additionalProperties: false): a frame
 * carrying anything unknown is refused as a whole. E2EE payloads stay opaque records (the relay
 * checks them with isE2eeMessage of src/core/e2ee/messages.ts).
 */
const Strict = <T extends TProperties>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.:-]+$' });
const MeetingId = Type.String({ minLength: 4, maxLength: 32, pattern: '^[a-z0-9-]+$' });
const RequestId = Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 }));

/** Longest e-mail address a person certificate may name (RFC 5321 path limit). */
export const MAX_EMAIL_LENGTH = 254;
/** Longest room, person or org name on the wire (src/pki/person-profile.ts MAX_PERSON_NAME_LENGTH). */
export const MAX_NAME_LENGTH = 200;

/**
 * Who a participant is, as the relay verified it. Rooms: a device certificate. People (issue 12): a
 * short-lived person certificate; then deviceId = 'person:' + email, roomName = the person's name.
 * Hints only: devices and pages verify `certificate` themselves and show what they verified.
 * `kind` and `email` are optional on the wire so older relays (and test doubles) stay valid; this
 * relay always sends both. Absent means a room ('room', '').
 */
export const ParticipantInfo = Strict({
  participantId: Id,
  /** Rooms: the device id; people: 'person:' + email (hence up to 7 + 254 characters). */
  deviceId: Type.String({ maxLength: 7 + MAX_EMAIL_LENGTH }),
  /** Rooms: the room name; people: their name (person certificates allow 200 characters). */
  roomName: Type.String({ maxLength: MAX_NAME_LENGTH }),
  org: Type.String({ maxLength: MAX_NAME_LENGTH }),
  /** The PEM certificate the relay verified: devices check it against their org CA too. */
  certificate: Type.String({ maxLength: 8192 }),
  kind: Type.Optional(Type.Union([Type.Literal('room'), Type.Literal('person')])),
  /** The person's e-mail address; '' for rooms. */
  email: Type.Optional(Type.String({ maxLength: MAX_EMAIL_LENGTH })),
});
export type ParticipantInfo = Static<typeof ParticipantInfo>;

/** SDP or ICE for the participant's one PeerConnection with the SFU. The relay always offers. */
export const SignalPayload = Type.Union([
  Strict({
    kind: Type.Literal('description'),
    type: Type.Union([Type.Literal('offer'), Type.Literal('answer')]),
    sdp: Type.String({ maxLength: 65536 }),
  }),
  Strict({
    kind: Type.Literal('candidate'),
    candidate: Type.String({ maxLength: 1024 }),
    sdpMid: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Null()])),
    sdpMLineIndex: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 1024 }), Type.Null()])),
  }),
]);
export type SignalPayload = Static<typeof SignalPayload>;

// ---- device or page → relay ----
export const ClientMessage = Type.Union([
  Strict({
    type: Type.Literal('auth'),
    /** PEM device certificate issued by a trusted org CA. */
    certificate: Type.String({ maxLength: 8192 }),
    /** base64 Ed25519 signature of AUTH_LABEL || 0x00 || nonce with the certificate's key. */
    signature: Type.String({ maxLength: 256 }),
  }),
  /**
   * Create an E2EE meeting and lead it. meetingId: reclaim an id after a relay restart;
   * participantId: keep the same id across a reconnect, so E2EE sessions carry on. Both must be
   * bound to this device (docs/relay.md, "Ids across a relay restart"), else error 'id-bound'.
   */
  Strict({
    type: Type.Literal('create'),
    id: RequestId,
    meetingId: Type.Optional(MeetingId),
    participantId: Type.Optional(Id),
  }),
  /** participantId: only to resume, and only this device's own (else error 'id-bound'). */
  Strict({
    type: Type.Literal('join'),
    id: RequestId,
    meetingId: MeetingId,
    participantId: Type.Optional(Id),
  }),
  Strict({ type: Type.Literal('admit'), id: RequestId, participantId: Id }),
  Strict({ type: Type.Literal('deny'), id: RequestId, participantId: Id }),
  Strict({ type: Type.Literal('lock'), id: RequestId, locked: Type.Boolean() }),
  /** Leader only: hand leadership to an admitted participant (before leaving, so the meeting goes on). */
  Strict({ type: Type.Literal('handover'), id: RequestId, participantId: Id }),
  Strict({ type: Type.Literal('leave'), id: RequestId }),
  Strict({ type: Type.Literal('end'), id: RequestId }),
  /**
   * Bulletin board: an E2EE message (src/core/e2ee messages: schema-checked, `from` and `meetingId`
   * must be the sender's) to one participant, or when `to` is absent to every other participant
   * (a binding: to the leader). A participant still waiting may only post its binding.
   */
  Strict({
    type: Type.Literal('e2ee'),
    to: Type.Optional(Id),
    payload: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown()),
  }),
  /** Ask the SFU for (or give up) a media PeerConnection; the relay then sends an offer. */
  Strict({ type: Type.Literal('media'), enabled: Type.Boolean() }),
  Strict({ type: Type.Literal('signal'), payload: SignalPayload }),
  /**
   * Screen share (issue 12): start or stop forwarding this participant's content m-line (the third
   * publish m-line of a person's SFU offer) to every other participant. One sharer per meeting: a
   * new share ends the one before. Active participants with media only; rooms get 'no-content'.
   */
  Strict({ type: Type.Literal('share'), id: RequestId, enabled: Type.Boolean() }),
  Strict({ type: Type.Literal('ping') }),
]);
export type ClientMessage = Static<typeof ClientMessage>;

// ---- relay → device or page ----
export const ServerMessage = Type.Union([
  Strict({
    type: Type.Literal('challenge'),
    nonce: Type.String({ maxLength: 128 }),
    relayId: Type.String({ maxLength: 128 }),
  }),
  Strict({
    type: Type.Literal('authenticated'),
    identity: Type.Omit(ParticipantInfo, ['participantId', 'certificate']),
  }),
  /** Where this connection now stands in a meeting (after create, join, admit). */
  Strict({
    type: Type.Literal('meeting'),
    id: RequestId,
    meetingId: MeetingId,
    participantId: Id,
    role: Type.Union([Type.Literal('leader'), Type.Literal('participant')]),
    status: Type.Union([Type.Literal('waiting'), Type.Literal('active')]),
    leader: ParticipantInfo,
  }),
  /** Admitted participants; `waiting` only for the leader. */
  Strict({
    type: Type.Literal('roster'),
    meetingId: MeetingId,
    participants: Type.Array(ParticipantInfo),
    waiting: Type.Array(ParticipantInfo),
    locked: Type.Boolean(),
    /**
     * The participant id whose screen is shared (null: nobody). Relay-supplied: use it only to pick
     * which verified member's stream goes in the content slot. Always sent by this relay.
     */
    sharing: Type.Optional(Type.Union([Id, Type.Null()])),
  }),
  /**
   * Clustered relay (docs/relay.md "Several nodes"): the meeting lives on another node. Reconnect to
   * `url` (authenticating there as usual) and send the same request again with this `meetingId`
   * (a `create` without one was given a fresh id here). Clients follow it only to a URL they were
   * configured to trust (their entry list or allow-list), and only a few times in a row.
   */
  Strict({
    type: Type.Literal('redirect'),
    id: RequestId,
    url: Type.String({ maxLength: 512 }),
    meetingId: MeetingId,
  }),
  Strict({ type: Type.Literal('denied'), meetingId: MeetingId }),
  Strict({ type: Type.Literal('left'), meetingId: MeetingId, participantId: Id }),
  Strict({ type: Type.Literal('ended'), meetingId: MeetingId, reason: Type.String() }),
  Strict({ type: Type.Literal('ok'), id: RequestId }),
  Strict({ type: Type.Literal('e2ee'), from: Id, payload: Type.Record(Type.String(), Type.Unknown()) }),
  Strict({ type: Type.Literal('signal'), payload: SignalPayload }),
  Strict({ type: Type.Literal('pong') }),
  Strict({ type: Type.Literal('error'), id: RequestId, code: Type.String(), message: Type.String() }),
]);
export type ServerMessage = Static<typeof ServerMessage>;

export const clientMessageValidator = compileSchema(ClientMessage);
export const serverMessageValidator = compileSchema(ServerMessage);

export type ParseResult<T> = { ok: true; message: T } | { ok: false; error: string };

function parseWith<T>(
  raw: string | Buffer,
  check: (v: unknown) => boolean,
  errors: (v: unknown) => string,
): ParseResult<T> {
  const size = typeof raw === 'string' ? utf8Length(raw) : raw.length;
  if (size > MAX_MESSAGE_BYTES)
    return { ok: false, error: `message of ${size} bytes exceeds ${MAX_MESSAGE_BYTES}` };
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  if (!check(value)) return { ok: false, error: errors(value) };
  return { ok: true, message: value as T };
}

/** Per-type validators, so an error names the field of the message type that was meant. */
function validatorsByType(union: typeof ClientMessage | typeof ServerMessage) {
  const byType = new Map<string, SchemaChecker<TSchema>>();
  for (const variant of union.anyOf)
    byType.set(String(variant.properties.type.const), compileSchema(variant));
  return byType;
}
const clientValidators = validatorsByType(ClientMessage);
const serverValidators = validatorsByType(ServerMessage);

function firstError(validators: Map<string, SchemaChecker<TSchema>>, value: unknown): string {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const validator = typeof type === 'string' ? validators.get(type) : undefined;
  if (!validator) return `unknown message type ${JSON.stringify(type ?? null).slice(0, 40)}`;
  const first = validator.Errors(value).First();
  return first ? `invalid ${type} message at ${first.path || '/'}: ${first.message}` : 'invalid message';
}

/** Parses and validates one device → relay frame, including the E2EE payload size limit. */
export function parseClientMessage(raw: string | Buffer): ParseResult<ClientMessage> {
  const parsed = parseWith<ClientMessage>(
    raw,
    (v) => clientMessageValidator.Check(v),
    (v) => firstError(clientValidators, v),
  );
  if (parsed.ok && parsed.message.type === 'e2ee') {
    const size = Buffer.byteLength(JSON.stringify(parsed.message.payload));
    if (size > MAX_E2EE_PAYLOAD_BYTES)
      return { ok: false, error: `e2ee payload of ${size} bytes exceeds ${MAX_E2EE_PAYLOAD_BYTES}` };
  }
  return parsed;
}

export function parseServerMessage(raw: string | Buffer): ParseResult<ServerMessage> {
  return parseWith<ServerMessage>(
    raw,
    (v) => serverMessageValidator.Check(v),
    (v) => firstError(serverValidators, v),
  );
}

/** The bytes a device signs to prove possession of its certificate key. */
export function authSignedBytes(nonceBase64: string): Uint8Array {
  const label = new TextEncoder().encode(AUTH_LABEL);
  const nonce = base64Bytes(nonceBase64);
  const out = new Uint8Array(label.length + 1 + nonce.length);
  out.set(label, 0);
  out.set(nonce, label.length + 1);
  return out;
}

/** Standard base64 → bytes without Buffer (the web participant's workers have none); garbage → empty. */
function base64Bytes(text: string): Uint8Array {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}

/** UTF-8 byte length without Buffer. */
function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}
