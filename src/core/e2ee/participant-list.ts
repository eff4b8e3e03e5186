// The leader participant list: a hash chain of entries, each signed by the leader of the moment,
// and heartbeats that certify (key epoch, chain length, chain head). A participant that verified the
// chain knows exactly who holds the meeting key: the members are the ones the screen shows.
//
//   statement(e) = encode(list-entry label, meetingId, index, prev, time, signer, kind, …body fields)
//   hash(e)      = SHA-256(encode(list-hash label, statement(e), signature(e)))
//   entry 0 is `create` (self-signed by the first leader); prev(0) = 32 zero bytes,
//   prev(i) = hash(entry i-1).
import { backend } from './crypto/backend.js';
import { type KeyBinding, verifyBinding } from './binding.js';
import { bytesEqual } from './bytes.js';
import { encodeCanonical, type Field } from './canonical.js';
import { E2eeError } from './errors.js';
import { type IdentityKeyPair, verifyEd25519 } from './keys.js';
import { type KeyBinding as Binding, bindingVersion } from './binding.js';
import { LABELS, LABELS_V2, type ProtocolVersion, versionMask } from './labels.js';
import { MAX_EPOCH, MAX_SENDER_INDEX } from './sender-keys.js';

export type ListEntryBody =
  // version: the meeting's protocol version, signed by its creator (absent: 1; v2 statements only).
  | {
      kind: 'create';
      leaderId: string;
      leaderIdentityKey: Uint8Array;
      creationNonce: Uint8Array;
      version?: ProtocolVersion;
    }
  | { kind: 'add'; binding: KeyBinding; senderIndex: number }
  | { kind: 'leave'; participantId: string }
  | { kind: 'lock' }
  | { kind: 'unlock' }
  // minEpoch: the highest epoch the outgoing leader drew; the successor's first epoch exceeds it.
  | { kind: 'leader'; newLeaderId: string; minEpoch: number };

export interface ListEntry {
  meetingId: string;
  index: number;
  prev: Uint8Array; // 32 bytes
  time: number; // ms since 1970, from the leader's clock; non-decreasing along the chain
  signer: string; // participant id of the leader that signed
  body: ListEntryBody;
  signature: Uint8Array; // Ed25519, 64 bytes
  /** The meeting's protocol version (default 1): picks the statement's label and fields. */
  version?: ProtocolVersion;
}

export interface Member {
  participantId: string;
  identityKey: Uint8Array;
  ephemeralKey: Uint8Array;
  kemKey?: Uint8Array | undefined; // v2: ML-KEM-768 encapsulation key from its binding
  senderIndex: number;
  certificate: Uint8Array; // X.509 DER from its binding (may be empty in tests)
  binding: KeyBinding;
  addedAt: number; // chain index of its add entry
}

export const GENESIS_PREV = new Uint8Array(32);

function bindingFields(b: Binding): Field[] {
  return [b.participantId, b.identityKey, b.ephemeralKey, b.kemKey!, versionMask(b.versions ?? [])];
}

function bodyFields(body: ListEntryBody, version: ProtocolVersion): Field[] {
  switch (body.kind) {
    case 'create':
      return version === 2
        ? [body.leaderId, body.leaderIdentityKey, body.creationNonce, body.version ?? 1]
        : [body.leaderId, body.leaderIdentityKey, body.creationNonce];
    case 'add':
      if (version === 2) {
        return [
          ...bindingFields(body.binding),
          body.binding.signature,
          body.binding.certificate,
          body.senderIndex,
        ];
      }
      return [
        body.binding.participantId,
        body.binding.identityKey,
        body.binding.ephemeralKey,
        body.binding.signature,
        body.binding.certificate,
        body.senderIndex,
      ];
    case 'leave':
      return [body.participantId];
    case 'leader':
      return [body.newLeaderId, body.minEpoch];
    case 'lock':
    case 'unlock':
      return [];
    default:
      throw new E2eeError('malformed', `unknown list entry kind ${(body as { kind: unknown }).kind}`);
  }
}

export function listEntryStatement(e: Omit<ListEntry, 'signature'>): Uint8Array {
  const version = e.version ?? 1;
  if (version === 2 && e.body.kind === 'add' && e.body.binding.kemKey === undefined) {
    throw new E2eeError('downgrade', 'v1 binding in a v2 list entry');
  }
  return encodeCanonical(
    version === 2 ? LABELS_V2.listEntry : LABELS.listEntry,
    e.meetingId,
    e.index,
    e.prev,
    e.time,
    e.signer,
    e.body.kind,
    ...bodyFields(e.body, version),
  );
}

export function listEntryHash(e: ListEntry): Uint8Array {
  const input = encodeCanonical(LABELS.listHash, listEntryStatement(e), e.signature);
  return backend.sha256(input);
}

/** The verified state of one meeting's participant list. `apply` is the only way to change it. */
export class ParticipantList {
  readonly meetingId: string;
  readonly #entries: ListEntry[] = [];
  readonly #members = new Map<string, Member>();
  #head: Uint8Array = GENESIS_PREV;
  #leaderId = '';
  #leaderIdentityKey: Uint8Array = new Uint8Array(0);
  #creationNonce: Uint8Array = new Uint8Array(0);
  #locked = false;
  #nextSenderIndex = 0;
  #epochFloor = 0;
  #lastMembershipChange = -1;
  #version: ProtocolVersion | 0 = 0; // from the create entry (0: none yet)

  constructor(meetingId: string) {
    this.meetingId = meetingId;
  }

  get length(): number {
    return this.#entries.length;
  }
  /** The meeting's protocol version from its create entry (0 before it). */
  get version(): ProtocolVersion | 0 {
    return this.#version;
  }
  get head(): Uint8Array {
    return this.#head;
  }
  get leaderId(): string {
    return this.#leaderId;
  }
  get leaderIdentityKey(): Uint8Array {
    return this.#leaderIdentityKey;
  }
  get creationNonce(): Uint8Array {
    return this.#creationNonce;
  }
  get locked(): boolean {
    return this.#locked;
  }
  get nextSenderIndex(): number {
    return this.#nextSenderIndex;
  }
  /** The last hand-over's minEpoch: a new leader's epochs must exceed it. */
  get epochFloor(): number {
    return this.#epochFloor;
  }
  /** Index of the last `add` or `leave` entry (-1: none): who holds a key certified before it may differ. */
  get lastMembershipChange(): number {
    return this.#lastMembershipChange;
  }
  get entries(): readonly ListEntry[] {
    return this.#entries;
  }
  get lastTime(): number {
    return this.#entries.at(-1)?.time ?? 0;
  }
  members(): Member[] {
    return [...this.#members.values()];
  }
  member(participantId: string): Member | undefined {
    return this.#members.get(participantId);
  }
  leader(): Member | undefined {
    return this.#members.get(this.#leaderId);
  }

  /** Leader side: build, sign and apply the next entry. */
  append(body: ListEntryBody, signerId: string, identity: IdentityKeyPair, time: number): ListEntry {
    const unsigned = {
      meetingId: this.meetingId,
      index: this.#entries.length,
      prev: this.#head,
      time: Math.max(time, this.lastTime),
      signer: signerId,
      body,
      version: this.#entryVersion(body),
    };
    const entry: ListEntry = { ...unsigned, signature: identity.sign(listEntryStatement(unsigned)) };
    this.apply(entry);
    return entry;
  }

  /**
   * Verifies the next entry against the chain and applies it; throws (leaving state unchanged) if
   * invalid. `accept`, if given, sees the fully verified entry last and may still refuse it by throwing
   * (the caller's trust policy: it must only ever be asked about genuinely signed entries).
   */
  apply(wireEntry: ListEntry, accept?: (entry: ListEntry) => void): void {
    // The version is the meeting's (from its create entry), never the sender's say.
    const version = this.#entryVersion(wireEntry.body);
    const entry = (wireEntry.version ?? 1) === version ? wireEntry : { ...wireEntry, version };
    if (entry.meetingId !== this.meetingId)
      throw new E2eeError('wrong-meeting', 'list entry is for another meeting');
    if (entry.index !== this.#entries.length || !bytesEqual(entry.prev, this.#head)) {
      throw new E2eeError(
        'chain-broken',
        `list entry ${entry.index} does not follow entry ${this.length - 1}`,
      );
    }
    if (entry.time < this.lastTime) throw new E2eeError('chain-broken', 'list entry time goes backwards');
    const body = entry.body;
    const creating = body.kind === 'create';
    if (creating !== (entry.index === 0))
      throw new E2eeError('chain-broken', 'create must be entry 0 and only 0');
    const signerKey = creating ? body.leaderIdentityKey : this.#leaderIdentityKey;
    const expectedSigner = creating ? body.leaderId : this.#leaderId;
    if (entry.signer !== expectedSigner)
      throw new E2eeError('bad-signature', 'list entry not signed by the leader');
    if (!verifyEd25519(signerKey, listEntryStatement(entry), entry.signature)) {
      throw new E2eeError('bad-signature', `list entry ${entry.index} does not verify`);
    }
    this.#check(body);
    accept?.(entry);
    this.#commit(body, entry);
  }

  #entryVersion(body: ListEntryBody): ProtocolVersion {
    if (body.kind === 'create') return body.version ?? 1;
    return this.#version === 0 ? 1 : this.#version;
  }

  #check(body: ListEntryBody): void {
    switch (body.kind) {
      case 'create':
        if (body.leaderIdentityKey.length !== 32 || body.creationNonce.length !== 32) {
          throw new E2eeError('malformed', 'create entry key or nonce has the wrong size');
        }
        return;
      case 'add': {
        verifyBinding(body.binding, this.meetingId);
        if (bindingVersion(body.binding) !== this.#version) {
          throw new E2eeError(
            bindingVersion(body.binding) < this.#version ? 'downgrade' : 'malformed',
            `v${bindingVersion(body.binding)} binding in a v${this.#version} meeting`,
          );
        }
        const isFirstLeaderAdd = this.#entries.length === 1 && body.binding.participantId === this.#leaderId;
        if (this.#entries.length === 1 && !isFirstLeaderAdd) {
          throw new E2eeError('chain-broken', 'entry 1 must add the leader');
        }
        if (isFirstLeaderAdd && !bytesEqual(body.binding.identityKey, this.#leaderIdentityKey)) {
          throw new E2eeError('bad-signature', 'leader binding uses another identity key');
        }
        if (this.#locked) throw new E2eeError('locked', 'add entry while the meeting is locked');
        if (this.#members.has(body.binding.participantId)) {
          throw new E2eeError('invalid-state', `${body.binding.participantId} is already a member`);
        }
        if (
          !Number.isInteger(body.senderIndex) ||
          body.senderIndex < this.#nextSenderIndex ||
          body.senderIndex > MAX_SENDER_INDEX
        ) {
          throw new E2eeError('chain-broken', 'sender index reused or out of range');
        }
        return;
      }
      case 'leave':
        if (!this.#members.has(body.participantId))
          throw new E2eeError('not-member', 'leave of a non-member');
        if (body.participantId === this.#leaderId)
          throw new E2eeError('invalid-state', 'the leader cannot leave');
        return;
      case 'lock':
      case 'unlock':
        if (this.#locked === (body.kind === 'lock'))
          throw new E2eeError('invalid-state', `already ${body.kind}ed`);
        return;
      case 'leader':
        if (!this.#members.has(body.newLeaderId) || body.newLeaderId === this.#leaderId) {
          throw new E2eeError('not-member', 'new leader must be another member');
        }
        if (
          !Number.isSafeInteger(body.minEpoch) ||
          body.minEpoch < Math.max(1, this.#epochFloor) ||
          body.minEpoch > MAX_EPOCH
        ) {
          throw new E2eeError('chain-broken', 'hand-over epoch floor goes backwards or out of range');
        }
        return;
    }
  }

  #commit(body: ListEntryBody, entry: ListEntry): void {
    switch (body.kind) {
      case 'create':
        this.#leaderId = body.leaderId;
        this.#leaderIdentityKey = body.leaderIdentityKey;
        this.#creationNonce = body.creationNonce;
        this.#version = body.version ?? 1;
        break;
      case 'add':
        this.#members.set(body.binding.participantId, {
          participantId: body.binding.participantId,
          identityKey: body.binding.identityKey,
          ephemeralKey: body.binding.ephemeralKey,
          kemKey: body.binding.kemKey,
          senderIndex: body.senderIndex,
          certificate: body.binding.certificate,
          binding: body.binding,
          addedAt: entry.index,
        });
        this.#nextSenderIndex = body.senderIndex + 1;
        this.#lastMembershipChange = entry.index;
        break;
      case 'leave':
        this.#members.delete(body.participantId);
        this.#lastMembershipChange = entry.index;
        break;
      case 'lock':
      case 'unlock':
        this.#locked = body.kind === 'lock';
        break;
      case 'leader': {
        const next = this.#members.get(body.newLeaderId)!;
        this.#leaderId = next.participantId;
        this.#leaderIdentityKey = next.identityKey;
        this.#epochFloor = body.minEpoch;
        break;
      }
    }
    this.#entries.push(entry);
    this.#head = listEntryHash(entry);
  }
}

// ---- heartbeat ----

export interface Heartbeat {
  meetingId: string;
  leaderId: string;
  epoch: number; // the key epoch participants may now send with
  listLength: number;
  listHead: Uint8Array; // hash of entry listLength-1
  time: number;
  signature: Uint8Array;
}

export function heartbeatStatement(h: Omit<Heartbeat, 'signature'>): Uint8Array {
  return encodeCanonical(
    LABELS.heartbeat,
    h.meetingId,
    h.leaderId,
    h.epoch,
    h.listLength,
    h.listHead,
    h.time,
  );
}

export function signHeartbeat(h: Omit<Heartbeat, 'signature'>, identity: IdentityKeyPair): Heartbeat {
  return { ...h, signature: identity.sign(heartbeatStatement(h)) };
}

export type HeartbeatCheck = 'current' | 'ahead' | 'stale';

/**
 * Verifies a heartbeat against the local chain. 'current': signed by the current leader for exactly
 * this chain; 'ahead': it names a longer chain (entries still to come) and is signed by the current
 * leader or by `successor` (named in a `leader` entry not yet applied): keep it and retry;
 * 'stale': an older chain (ignore). Throws if forged, for another meeting, or an unverifiable
 * 'ahead' (anyone could send those, and a parked heartbeat must be one the leader really signed).
 */
export function checkHeartbeat(
  h: Heartbeat,
  list: ParticipantList,
  successor?: { participantId: string; identityKey: Uint8Array },
): HeartbeatCheck {
  if (h.meetingId !== list.meetingId)
    throw new E2eeError('wrong-meeting', 'heartbeat is for another meeting');
  if (h.listLength < list.length) return 'stale';
  if (h.listLength > list.length) {
    const key =
      h.leaderId === list.leaderId
        ? list.leaderIdentityKey
        : h.leaderId === successor?.participantId
          ? successor.identityKey
          : undefined;
    if (!key || !verifyEd25519(key, heartbeatStatement(h), h.signature)) {
      throw new E2eeError(
        'bad-signature',
        'heartbeat ahead of the chain not signed by the leader or its successor',
      );
    }
    return 'ahead';
  }
  if (h.leaderId !== list.leaderId)
    throw new E2eeError('bad-signature', 'heartbeat not from the current leader');
  if (!bytesEqual(h.listHead, list.head))
    throw new E2eeError('chain-broken', 'heartbeat certifies another chain');
  if (!verifyEd25519(list.leaderIdentityKey, heartbeatStatement(h), h.signature)) {
    throw new E2eeError('bad-signature', 'heartbeat does not verify');
  }
  return 'current';
}
