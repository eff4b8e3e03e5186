// State and behaviour shared by the leader's and a participant's key-manager state machines:
// the verified participant list, this participant's ephemeral key, the meeting keys it holds and
// the events the daemon consumes. Pure: time comes from an injected clock, randomness from an
// injected source.
import { type KeyBinding, createBinding } from './binding.js';
import { toBase64Url } from './bytes.js';
import { E2eeError } from './errors.js';
import { EphemeralKeyPair, type IdentityKeyPair, type RandomSource, secureRandom } from './keys.js';
import { type KeysEvent, KeyRing } from './key-ring.js';
import { SharedSecretCache } from './meeting-key.js';
import type { E2eeMessage } from './messages.js';
import { ParticipantList } from './participant-list.js';
import { securityCode } from './security-code.js';

export interface RosterMember {
  participantId: string;
  identityKey: string; // base64url Ed25519 public key (match it against the certificate's key)
  senderIndex: number;
  leader: boolean;
}

export type SessionEvent =
  | KeysEvent
  | { type: 'security-code'; code: string; leaderId: string; leaderIdentityKey: string }
  | { type: 'roster'; leaderId: string; locked: boolean; listLength: number; members: RosterMember[] }
  | { type: 'epoch-certified'; epoch: number }
  | { type: 'admission-request'; participantId: string; identityKey: string }
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
  /** Extra identity check, e.g. "this key is in a valid certificate of our org" (default: accept). */
  trustIdentity?: (participantId: string, identityKey: Uint8Array) => boolean;
  /** How long receive keys of the previous epoch stay after a switch (default 5 s). */
  overlapMs?: number;
  /** Participant: report 'leader-silent' after this long without a valid heartbeat (default 35 s). */
  leaderSilentAfterMs?: number;
}

export const DEFAULT_OVERLAP_MS = 5_000;
export const DEFAULT_LEADER_SILENT_AFTER_MS = 35_000;

/** Everything one participant knows; handed over intact when a participant becomes the leader. */
export class SessionState {
  readonly meetingId: string;
  readonly participantId: string;
  readonly identity: IdentityKeyPair;
  readonly random: RandomSource;
  readonly clock: () => number;
  readonly trustIdentity: (participantId: string, identityKey: Uint8Array) => boolean;
  readonly overlapMs: number;
  readonly leaderSilentAfterMs: number;
  readonly ephemeral: EphemeralKeyPair;
  readonly binding: KeyBinding;
  readonly secrets: SharedSecretCache;
  readonly keys = new KeyRing();
  list: ParticipantList;
  removed = false;
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
    this.leaderSilentAfterMs = options.leaderSilentAfterMs ?? DEFAULT_LEADER_SILENT_AFTER_MS;
    this.ephemeral = EphemeralKeyPair.generate(this.random);
    this.binding = createBinding(this.meetingId, this.participantId, this.identity, this.ephemeral);
    this.secrets = new SharedSecretCache(this.ephemeral);
    this.list = new ParticipantList(this.meetingId);
  }

  get isMember(): boolean {
    return !this.removed && this.list.member(this.participantId) !== undefined;
  }

  securityCode(): string | undefined {
    if (this.list.length === 0) return undefined;
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
          senderIndex: m.senderIndex,
          leader: m.participantId === this.list.leaderId,
        })),
    };
  }

  /** The keys event, only if it differs from the last one emitted. */
  keysEvent(force = false): KeysEvent | undefined {
    const self = this.list.member(this.participantId);
    if (!self || this.removed) return undefined;
    const event = this.keys.snapshot(
      self.senderIndex,
      this.list.members().map((m) => m.senderIndex),
    );
    if (!event) return undefined;
    const signature = `${event.sendKid}|${event.receiveKeys.map((k) => k.kid).join(',')}`;
    if (!force && signature === this.#lastKeysSignature) return undefined;
    this.#lastKeysSignature = signature;
    return event;
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

export function rejected(message: { type: string; from: string }, error: unknown): SessionEvent {
  if (error instanceof E2eeError) {
    // `message` may be anything a caller passed in unvalidated: read it defensively.
    const fields = (typeof message === 'object' && message !== null ? message : {}) as Record<
      string,
      unknown
    >;
    return {
      type: 'rejected',
      messageType: String(fields.type ?? '?').slice(0, 64),
      from: String(fields.from ?? '?').slice(0, 128),
      code: error.code,
      reason: error.message,
    };
  }
  throw error; // a bug, not bad input
}

export function pushDefined<T>(list: T[], ...items: (T | undefined)[]): void {
  for (const item of items) if (item !== undefined) list.push(item);
}
