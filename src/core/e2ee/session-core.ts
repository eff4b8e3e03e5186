// State and behaviour shared by the leader's and a participant's key-manager state machines:
// the verified participant list, this participant's ephemeral key, the meeting keys it holds and
// the events the daemon consumes. Pure: time comes from an injected clock, randomness from an
// injected source.
import {
  type BindingKeys,
  bindingVersion,
  createBinding,
  type KeyBinding,
  verifyBinding,
} from './binding.js';
import { bytesEqual, toBase64Url } from './bytes.js';
import { E2eeError } from './errors.js';
import { deriveFrameAuthKey, type FrameAuthKey } from './frame-auth.js';
import { LeaderWrapSecrets, MemberWrapSecrets } from './hybrid-wrap.js';
import { KemKeyPair } from './kem.js';
import { EphemeralKeyPair, type IdentityKeyPair, type RandomSource, secureRandom } from './keys.js';
import { DEFAULT_MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, type ProtocolVersion } from './labels.js';
import { type KeysEvent, KeyRing } from './key-ring.js';
import { SharedSecretCache } from './meeting-key.js';
import type { E2eeMessage } from './messages.js';
import { ParticipantList } from './participant-list.js';
import { securityCode } from './security-code.js';

export interface RosterMember {
  participantId: string;
  identityKey: string; // base64url Ed25519 public key (match it against the certificate's key)
  certificate: string; // base64url X.509 DER from its binding (may be "")
  senderIndex: number;
  leader: boolean;
}

/** Why a member stopped sending: a membership change or newer epoch it lacks the key of; no heartbeats. */
export type SuspendReason = 'rekeying' | 'leader-lost';

export type SessionEvent =
  | KeysEvent
  | { type: 'security-code'; code: string; leaderId: string; leaderIdentityKey: string }
  | { type: 'roster'; leaderId: string; locked: boolean; listLength: number; members: RosterMember[] }
  | { type: 'epoch-certified'; epoch: number }
  | { type: 'admission-request'; participantId: string; identityKey: string; certificate: string }
  | { type: 'identity-refused'; participantId: string; reason: string }
  /** A genuinely signed meeting (`create`) or binding of an older protocol version than we accept. */
  | { type: 'downgrade'; participantId: string; offered: number; required: number; reason: string }
  | { type: 'send-suspended'; reason: SuspendReason }
  | { type: 'send-resumed'; epoch: number }
  | { type: 'joined'; senderIndex: number }
  | { type: 'removed' }
  | { type: 'leader-changed'; leaderId: string; isSelf: boolean }
  | { type: 'leader-silent'; leaderId: string; lastHeartbeatAt: number }
  | { type: 'rejected'; messageType: string; from: string; code: string; reason: string };

export interface SessionOutput {
  outgoing: E2eeMessage[];
  events: SessionEvent[];
}

export interface SessionOptions {
  meetingId: string;
  participantId: string;
  /** The identity key the core signs with (devices). Omit it only with `prepared` (people). */
  identity?: IdentityKeyPair;
  /**
   * A binding signed elsewhere (createBindingAsync: a person's non-extractable WebCrypto key) with
   * its per-meeting keys. Such a session is a participant that signs nothing else: it can never
   * create a meeting or take leadership.
   */
  prepared?: { binding: KeyBinding; keys: BindingKeys };
  /** With `prepared`: the identity key it must be signed by (checked). */
  identityKey?: Uint8Array;
  /** The version this session runs: the leader creates meetings of it, a joiner binds for it (default 2). */
  protocolVersion?: ProtocolVersion;
  /** Meetings and bindings older than this are refused with a 'downgrade' event (default 2). */
  minProtocolVersion?: ProtocolVersion;
  /** Source of random bytes (default: node:crypto). */
  random?: RandomSource;
  /** Milliseconds since 1970 (default: Date.now); the caller drives time, the core has no timers. */
  clock?: () => number;
  /** This device's X.509 certificate (DER), carried in its binding (default: empty). */
  certificate?: Uint8Array;
  /**
   * Identity check, e.g. "this certificate chains to a trusted CA and certifies this key" (default:
   * accept). Called for every binding the leader receives and every `add` entry a member applies.
   */
  trustIdentity?: TrustIdentity;
  /** How long receive keys of the previous epoch stay after a switch (default 5 s). */
  overlapMs?: number;
  /** The leader's heartbeat period (default 10 s); members expect one at least this often. */
  heartbeatIntervalMs?: number;
  /** Participant: 'leader-silent' and sending suspended after this long without a valid heartbeat (default 3 heartbeat intervals). */
  leaderSilentAfterMs?: number;
}

/**
 * What the trust policy says about an identity: trusted or not, and what it is. A `person` (a
 * verified person certificate) is never handed leadership and a chain naming one as leader is
 * refused; `room` or no kind may lead. A plain boolean means { trusted: it } with no kind.
 */
export interface TrustVerdict {
  trusted: boolean;
  kind?: 'room' | 'person';
}

export type TrustIdentity = (
  participantId: string,
  identityKey: Uint8Array,
  certificate: Uint8Array,
) => boolean | TrustVerdict;

export const DEFAULT_OVERLAP_MS = 5_000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;
export const LEADER_SILENT_HEARTBEATS = 3;
export const DEFAULT_LEADER_SILENT_AFTER_MS = LEADER_SILENT_HEARTBEATS * DEFAULT_HEARTBEAT_INTERVAL_MS;
/**
 * The longest a member (leader included) keeps sending under an epoch after learning that it may no
 * longer be exactly the current members' key (a membership change after its certification, or a
 * certified epoch it lacks). Then it sends nothing until a fresh epoch is certified.
 */
export const SEND_GRACE_MS = 1_500;

/** Everything one participant knows; handed over intact when a participant becomes the leader. */
export class SessionState {
  readonly meetingId: string;
  readonly participantId: string;
  /** Undefined for a session with a prepared binding: it cannot sign (a person). */
  readonly identity: IdentityKeyPair | undefined;
  readonly identityKey: Uint8Array;
  readonly protocolVersion: ProtocolVersion;
  readonly minProtocolVersion: ProtocolVersion;
  readonly random: RandomSource;
  readonly clock: () => number;
  readonly trustIdentity: TrustIdentity;
  readonly overlapMs: number;
  readonly heartbeatIntervalMs: number;
  readonly leaderSilentAfterMs: number;
  readonly ephemeral: EphemeralKeyPair;
  readonly kem: KemKeyPair | undefined;
  readonly binding: KeyBinding;
  readonly secrets: SharedSecretCache;
  #leaderWrap: LeaderWrapSecrets | undefined;
  #memberWrap: MemberWrapSecrets | undefined;
  readonly keys: KeyRing;
  list: ParticipantList;
  removed = false;
  /** Leader's clock of the last heartbeat accepted (participant) or signed (leader): times only go up. */
  lastHeartbeatTime = 0;
  /** Chain length at which the send epoch was certified: a later add/leave makes it stale. */
  sendCertLength = 0;
  /** Why sending is suspended (empty: sending). */
  readonly suspended = new Set<SuspendReason>();
  readonly #frameAuth = new Map<number, FrameAuthKey & { ephemeralKey: string }>();
  #lastKeysSignature = '';
  #lastCodeLeader = '';

  constructor(options: SessionOptions) {
    this.meetingId = options.meetingId;
    this.participantId = options.participantId;
    this.identity = options.identity;
    this.random = options.random ?? secureRandom;
    this.clock = options.clock ?? Date.now;
    this.trustIdentity = options.trustIdentity ?? (() => true);
    this.overlapMs = options.overlapMs ?? DEFAULT_OVERLAP_MS;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.leaderSilentAfterMs =
      options.leaderSilentAfterMs ?? LEADER_SILENT_HEARTBEATS * this.heartbeatIntervalMs;
    this.minProtocolVersion = options.minProtocolVersion ?? DEFAULT_MIN_PROTOCOL_VERSION;
    if (options.prepared) {
      const { binding, keys } = options.prepared;
      checkPrepared(options, binding, keys);
      this.protocolVersion = bindingVersion(binding);
      this.ephemeral = keys.ephemeral;
      this.kem = keys.kem;
      this.binding = binding;
      this.identityKey = binding.identityKey;
    } else {
      if (!options.identity)
        throw new E2eeError('invalid-state', 'a session needs an identity or a prepared binding');
      this.protocolVersion = options.protocolVersion ?? PROTOCOL_VERSION;
      this.ephemeral = EphemeralKeyPair.generate(this.random);
      this.kem = this.protocolVersion === 2 ? KemKeyPair.generate(this.random) : undefined;
      this.binding = createBinding(
        this.meetingId,
        this.participantId,
        options.identity,
        { ephemeral: this.ephemeral, ...(this.kem ? { kem: this.kem } : {}) },
        options.certificate ?? new Uint8Array(0),
        this.minProtocolVersion,
      );
      this.identityKey = options.identity.publicKey;
    }
    if (this.protocolVersion < this.minProtocolVersion) {
      throw new E2eeError(
        'invalid-state',
        `protocol version ${this.protocolVersion} is below minProtocolVersion ${this.minProtocolVersion}`,
      );
    }
    this.secrets = new SharedSecretCache(this.ephemeral);
    this.list = new ParticipantList(this.meetingId);
    this.keys = new KeyRing(() => ({ meetingId: this.meetingId, creationNonce: this.list.creationNonce }));
  }

  get sending(): boolean {
    return this.suspended.size === 0;
  }

  /** The key that signs list entries and heartbeats; only a session with a local identity has one. */
  get signer(): IdentityKeyPair {
    if (!this.identity) {
      throw new E2eeError('not-eligible', 'this participant signs nothing but its binding (it cannot lead)');
    }
    return this.identity;
  }

  /** The meeting's version once its create entry is known, else the one this session runs. */
  get version(): ProtocolVersion {
    return this.list.version || this.protocolVersion;
  }

  /** Leader: the hybrid wrap secrets of the current members (one ML-KEM encapsulation each, cached). */
  get leaderWrap(): LeaderWrapSecrets {
    this.#leaderWrap ??= new LeaderWrapSecrets(this.secrets, this.ephemeral.publicKey, this.random);
    return this.#leaderWrap;
  }

  /** Member: hybrid wrap secrets for the leaders' ciphertexts (one decapsulation each). */
  get memberWrap(): MemberWrapSecrets {
    if (!this.kem) throw new E2eeError('downgrade', 'this session has no ML-KEM key (a v1 binding)');
    this.#memberWrap ??= new MemberWrapSecrets(this.kem, this.secrets, this.ephemeral.publicKey);
    return this.#memberWrap;
  }

  /** The send epoch no longer matches the members: someone was added or left after its certification. */
  get sendEpochStale(): boolean {
    return this.keys.sendEpoch > 0 && this.list.lastMembershipChange >= this.sendCertLength;
  }

  /** The trust callback, never throwing: a callback error counts as a refusal. */
  trusts(participantId: string, identityKey: Uint8Array, certificate: Uint8Array): boolean {
    return this.verdict(participantId, identityKey, certificate).trusted;
  }

  verdict(participantId: string, identityKey: Uint8Array, certificate: Uint8Array): TrustVerdict {
    try {
      const answer = this.trustIdentity(participantId, identityKey, certificate);
      if (typeof answer === 'boolean') return { trusted: answer };
      if (typeof answer !== 'object' || answer === null || answer.trusted !== true) return { trusted: false };
      return answer.kind === undefined ? { trusted: true } : { trusted: true, kind: answer.kind };
    } catch {
      return { trusted: false };
    }
  }

  /** May this member lead? Trusted, and not a person (people never lead, SPEC "E2EE core v2"). */
  mayLead(member: { participantId: string; identityKey: Uint8Array; certificate: Uint8Array }): boolean {
    const verdict = this.verdict(member.participantId, member.identityKey, member.certificate);
    return verdict.trusted && verdict.kind !== 'person';
  }

  get isMember(): boolean {
    return !this.removed && this.list.member(this.participantId) !== undefined;
  }

  securityCode(): string | undefined {
    // No code before the creator's own add entry (index 1) passed the trust policy: a `create`
    // alone names a leader nobody has verified yet.
    if (this.list.length < 2) return undefined;
    return securityCode({
      meetingId: this.meetingId,
      leaderIdentityKey: this.list.leaderIdentityKey,
      creationNonce: this.list.creationNonce,
    });
  }

  roster(): SessionEvent {
    return {
      type: 'roster',
      leaderId: this.list.leaderId,
      locked: this.list.locked,
      listLength: this.list.length,
      members: this.list
        .members()
        .sort((a, b) => a.senderIndex - b.senderIndex)
        .map((m) => ({
          participantId: m.participantId,
          identityKey: toBase64Url(m.identityKey),
          certificate: toBase64Url(m.certificate),
          senderIndex: m.senderIndex,
          leader: m.participantId === this.list.leaderId,
        })),
    };
  }

  /** The keys event, only if it differs from the last one emitted. */
  keysEvent(force = false): KeysEvent | undefined {
    const self = this.list.member(this.participantId);
    if (!self || this.removed) return undefined;
    const members = this.list.members();
    const snapshot = this.keys.snapshot(
      self.senderIndex,
      members.map((m) => m.senderIndex),
    );
    if (!snapshot) return undefined;
    const auth = this.#frameAuthKeys(self.senderIndex);
    // KIDs name (epoch, sender) and each epoch's keys never change, so KIDs + peers + sending cover
    // every change of key bytes, member set or sending state.
    const signature = [
      this.sending,
      snapshot.sendKid,
      snapshot.receiveKeys.map((k) => k.kid).join(','),
      auth.map((a) => a.peerIndex).join(','),
    ].join('|');
    if (!force && signature === this.#lastKeysSignature) return undefined;
    this.#lastKeysSignature = signature;
    return { type: 'keys', meetingId: this.meetingId, ...snapshot, sending: this.sending, auth };
  }

  /** Frame-authentication keys with every other member, cached per peer (one X25519 each). */
  #frameAuthKeys(ownIndex: number): FrameAuthKey[] {
    const out: FrameAuthKey[] = [];
    const current = new Set<number>();
    for (const member of this.list.members().sort((a, b) => a.senderIndex - b.senderIndex)) {
      if (member.participantId === this.participantId) continue;
      current.add(member.senderIndex);
      const ephemeralKey = toBase64Url(member.ephemeralKey);
      let cached = this.#frameAuth.get(member.senderIndex);
      if (!cached || cached.ephemeralKey !== ephemeralKey) {
        // Bindings were verified (valid, not low-order) before the member was added: agree() succeeds.
        const shared = this.secrets.get(member.ephemeralKey);
        const { meetingId } = this;
        const nonce = this.list.creationNonce;
        cached = {
          peerIndex: member.senderIndex,
          ephemeralKey,
          send: deriveFrameAuthKey(shared, meetingId, nonce, ownIndex, member.senderIndex),
          receive: deriveFrameAuthKey(shared, meetingId, nonce, member.senderIndex, ownIndex),
        };
        this.#frameAuth.set(member.senderIndex, cached);
      }
      out.push({
        peerIndex: cached.peerIndex,
        send: Uint8Array.from(cached.send),
        receive: Uint8Array.from(cached.receive),
      });
    }
    for (const [index, cached] of this.#frameAuth) {
      if (current.has(index)) continue;
      cached.send.fill(0);
      cached.receive.fill(0);
      this.#frameAuth.delete(index);
    }
    return out;
  }

  /** Removed or meeting over: wipe every key. */
  wipe(): void {
    this.keys.clear();
    this.kem?.wipe();
    for (const cached of this.#frameAuth.values()) {
      cached.send.fill(0);
      cached.receive.fill(0);
    }
    this.#frameAuth.clear();
  }

  /** Suspends sending for `reason`: the send-suspended event and a keys event with sending: false. */
  suspend(reason: SuspendReason, events: SessionEvent[]): void {
    if (this.suspended.has(reason)) return;
    this.suspended.add(reason);
    events.push({ type: 'send-suspended', reason });
    pushDefined(events, this.keysEvent());
  }

  /** Lifts `reason`; if nothing else holds sending back, send-resumed and a keys event. */
  resume(reason: SuspendReason, events: SessionEvent[]): void {
    if (!this.suspended.delete(reason) || this.suspended.size > 0) return;
    events.push({ type: 'send-resumed', epoch: this.keys.sendEpoch });
    pushDefined(events, this.keysEvent());
  }

  /** A security-code event when the leader (hence the code) changed since the last one. */
  codeEvent(): SessionEvent | undefined {
    const code = this.securityCode();
    const leaderKey = toBase64Url(this.list.leaderIdentityKey);
    if (!code || leaderKey === this.#lastCodeLeader) return undefined;
    this.#lastCodeLeader = leaderKey;
    return { type: 'security-code', code, leaderId: this.list.leaderId, leaderIdentityKey: leaderKey };
  }

  expireOverlap(): KeysEvent | undefined {
    return this.keys.expire(this.clock(), this.overlapMs) ? this.keysEvent() : undefined;
  }

  requireMember(): void {
    if (!this.isMember) throw new E2eeError('invalid-state', 'not a member of the meeting');
  }
}

function checkPrepared(options: SessionOptions, binding: KeyBinding, keys: BindingKeys): void {
  verifyBinding(binding, options.meetingId);
  const matches =
    binding.participantId === options.participantId &&
    bytesEqual(binding.ephemeralKey, keys.ephemeral.publicKey) &&
    (binding.kemKey === undefined) === (keys.kem === undefined) &&
    (binding.kemKey === undefined || bytesEqual(binding.kemKey, keys.kem!.publicKey)) &&
    (options.identityKey === undefined || bytesEqual(options.identityKey, binding.identityKey)) &&
    (options.identity === undefined || bytesEqual(options.identity.publicKey, binding.identityKey));
  if (!matches)
    throw new E2eeError('invalid-state', 'the prepared binding does not match its keys or options');
}

/**
 * The report of a refused message. Hostile input must never end the daemon, so even an unexpected
 * error becomes a report (code 'internal': a bug to fix, which the fuzz tests look for).
 */
export function rejected(message: unknown, error: unknown): SessionEvent {
  // `message` may be anything a caller passed in unvalidated: read it defensively.
  const fields = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
  const text = (value: unknown, max: number) => (typeof value === 'string' ? value.slice(0, max) : '?');
  return {
    type: 'rejected',
    messageType: text(fields.type, 64),
    from: text(fields.from, 128),
    code: error instanceof E2eeError ? error.code : 'internal',
    reason: error instanceof Error ? error.message : String(error),
  };
}

export function pushDefined<T>(list: T[], ...items: (T | undefined)[]): void {
  for (const item of items) if (item !== undefined) list.push(item);
}
