// State and behaviour shared by the leader's and a participant's key-manager state machines:
// the verified participant list, this participant's ephemeral key, the meeting keys it holds and
// the events the daemon consumes. Pure: time comes from an injected clock, randomness from an
// injected source.
import { type KeyBinding, createBinding } from './binding.js';
import { toBase64Url } from './bytes.js';
import { E2eeError } from './errors.js';
import { deriveFrameAuthKey, type FrameAuthKey } from './frame-auth.js';
import { EphemeralKeyPair, type IdentityKeyPair, type RandomSource, secureRandom } from './keys.js';
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
  identity: IdentityKeyPair;
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

export type TrustIdentity = (
  participantId: string,
  identityKey: Uint8Array,
  certificate: Uint8Array,
) => boolean;

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
  readonly identity: IdentityKeyPair;
  readonly random: RandomSource;
  readonly clock: () => number;
  readonly trustIdentity: TrustIdentity;
  readonly overlapMs: number;
  readonly heartbeatIntervalMs: number;
  readonly leaderSilentAfterMs: number;
  readonly ephemeral: EphemeralKeyPair;
  readonly binding: KeyBinding;
  readonly secrets: SharedSecretCache;
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
    this.ephemeral = EphemeralKeyPair.generate(this.random);
    this.binding = createBinding(
      this.meetingId,
      this.participantId,
      this.identity,
      this.ephemeral,
      options.certificate ?? new Uint8Array(0),
    );
    this.secrets = new SharedSecretCache(this.ephemeral);
    this.list = new ParticipantList(this.meetingId);
    this.keys = new KeyRing(() => ({ meetingId: this.meetingId, creationNonce: this.list.creationNonce }));
  }

  get sending(): boolean {
    return this.suspended.size === 0;
  }

  /** The send epoch no longer matches the members: someone was added or left after its certification. */
  get sendEpochStale(): boolean {
    return this.keys.sendEpoch > 0 && this.list.lastMembershipChange >= this.sendCertLength;
  }

  /** The trust callback, never throwing: a callback error counts as a refusal. */
  trusts(participantId: string, identityKey: Uint8Array, certificate: Uint8Array): boolean {
    try {
      return this.trustIdentity(participantId, identityKey, certificate) === true;
    } catch {
      return false;
    }
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
