// The leader's key manager: creates the meeting's participant list, admits joiners (batched),
// removes leavers, locks/unlocks, draws a fresh meeting key on every membership change and
// periodically, wraps it for each member, and certifies it with a heartbeat once every member has
// acknowledged it (or a timeout passed). The caller drives time with tick().
import { bytesEqual, toBase64Url } from './bytes.js';
import { bindingVersion, verifyBinding, type KeyBinding } from './binding.js';
import { E2eeError } from './errors.js';
import { drawMeetingKey, sealMeetingKey, WRAP_NONCE_BYTES } from './meeting-key.js';
import {
  type BindingMessage,
  bindingFromWire,
  type E2eeMessage,
  heartbeatToWire,
  type KeyMessage,
  type ListMessage,
  listEntryToWire,
  MAX_LIST_ENTRIES_PER_MESSAGE,
  validateE2eeMessage,
} from './messages.js';
import { type ListEntry, type ListEntryBody, type Member, signHeartbeat } from './participant-list.js';
import { ParticipantSession } from './participant-session.js';
import {
  pushDefined,
  rejected,
  SEND_GRACE_MS,
  type SessionEvent,
  type SessionOptions,
  type SessionOutput,
  SessionState,
} from './session-core.js';

export interface LeaderOptions {
  /** Admit every valid binding without asking, instead of emitting 'admission-request' (default false). */
  autoAdmit?: boolean;
  /**
   * With autoAdmit: collect joiners for this long and admit them together in one rekey on tick()
   * (default 0: admit each at once).
   */
  admitBatchMs?: number;
  /** Periodic rekey (default 5 minutes, as Zoom). */
  rekeyIntervalMs?: number;
  /** Periodic heartbeat (default: SessionOptions.heartbeatIntervalMs, 10 s). */
  heartbeatIntervalMs?: number;
  /**
   * Certify a new epoch even if some member has not acknowledged it after this long (default 2 s);
   * after an add or leave, after at most SEND_GRACE_MS (nobody may send longer under the old key).
   */
  certifyTimeoutMs?: number;
}

interface PendingEpoch {
  epoch: number;
  awaiting: Set<string>;
  since: number;
}

/** Keeps every list message under the payload limit (a v2 add entry with a 2 KiB certificate: ≤ 5.2 KB). */
export const LIST_ENTRIES_PER_MESSAGE = MAX_LIST_ENTRIES_PER_MESSAGE;

const DEFAULTS = {
  autoAdmit: false,
  admitBatchMs: 0,
  rekeyIntervalMs: 300_000,
  certifyTimeoutMs: 2_000,
};

export class LeaderSession {
  readonly state: SessionState;
  readonly #options: Required<LeaderOptions>;
  readonly #waiting = new Map<string, KeyBinding>();
  readonly #denied = new Set<string>(); // signatures of denied bindings: their re-posts are ignored
  #pending: PendingEpoch | undefined;
  #lastRekeyAt = 0;
  #lastHeartbeatAt = 0;
  #steppedDown = false;
  #batchOpenedAt: number | undefined; // autoAdmit batching: when the first waiting joiner arrived
  #staleSince: number | undefined; // since an add/leave made the certified epoch stale

  private constructor(state: SessionState, options: LeaderOptions) {
    this.state = state;
    this.#options = {
      ...DEFAULTS,
      heartbeatIntervalMs: state.heartbeatIntervalMs,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as Required<LeaderOptions>;
    state.resume('leader-lost', []); // a successor leads: it cannot lose itself
  }

  /** Create a meeting: the list (create + add self), epoch 1, and its heartbeat. */
  static create(options: SessionOptions & LeaderOptions): { session: LeaderSession; output: SessionOutput } {
    const session = new LeaderSession(new SessionState(options), options);
    const { state } = session;
    const now = state.clock();
    // The meeting's version, signed in its create entry: every participant checks it (downgrade).
    const create: ListEntryBody = {
      kind: 'create',
      leaderId: state.participantId,
      leaderIdentityKey: state.signer.publicKey,
      creationNonce: state.random(32),
      ...(state.protocolVersion === 2 ? { version: 2 as const } : {}),
    };
    const entries = [session.#append(create, now), session.#append(addBody(state.binding, 0), now)];
    const out: SessionOutput = { outgoing: session.#listMessages(entries), events: [] };
    session.#rekey(out);
    return { session, output: out };
  }

  /** A participant the outgoing leader named in a `leader` entry takes over, with a fresh key. */
  static takeOver(
    participant: ParticipantSession,
    options: LeaderOptions = {},
  ): { session: LeaderSession; output: SessionOutput } {
    const { state } = participant;
    if (!state.isMember || state.list.leaderId !== state.participantId) {
      throw new E2eeError('invalid-state', 'the participant list does not name this participant as leader');
    }
    state.signer; // throws for a session that cannot sign (a person never leads)
    const session = new LeaderSession(state, options);
    const out: SessionOutput = { outgoing: [], events: [] };
    state.resume('leader-lost', out.events);
    if (state.sendEpochStale) session.#staleSince = state.clock();
    session.#rekey(out);
    return { session, output: out };
  }

  get participantId(): string {
    return this.state.participantId;
  }
  /** False once leadership was handed over. */
  get active(): boolean {
    return !this.#steppedDown;
  }
  get securityCode(): string {
    return this.state.securityCode()!;
  }
  /** The certified epoch (the one everybody sends with). */
  get epoch(): number {
    return this.state.keys.sendEpoch;
  }
  get locked(): boolean {
    return this.state.list.locked;
  }
  get waiting(): string[] {
    return [...this.#waiting.keys()];
  }
  get members(): string[] {
    return this.state.list.members().map((m) => m.participantId);
  }
  /** Members that may be handed leadership (trusted, not a person), in sender-index order. */
  eligibleSuccessors(): string[] {
    return this.state.list
      .members()
      .filter((m) => m.participantId !== this.state.participantId && this.state.mayLead(m))
      .sort((a, b) => a.senderIndex - b.senderIndex)
      .map((m) => m.participantId);
  }

  /** Feed one message (bindings from joiners, acks from members). Never throws on bad input. */
  handle(message: E2eeMessage): SessionOutput {
    const out: SessionOutput = { outgoing: [], events: [] };
    try {
      validateE2eeMessage(message); // callers should have; a bad object must not reach the logic
      this.#requireLeading();
      if (message.meetingId !== this.state.meetingId) throw new E2eeError('wrong-meeting', 'another meeting');
      switch (message.type) {
        case 'e2ee.binding':
          this.#onBinding(message, out);
          break;
        case 'e2ee.ack':
          this.#onAck(message.from, message.epoch, out);
          break;
        case 'e2ee.resync':
          this.#onResync(message.from, message.fromIndex, message.epoch, out);
          break;
        default:
          throw new E2eeError('invalid-state', `the leader does not handle ${message.type}`);
      }
    } catch (error) {
      out.events.push(rejected(message, error));
    }
    return out;
  }

  /** Admit waiting participants (all in one rekey). Unknown ids are ignored. */
  admit(participantIds: string[]): SessionOutput {
    this.#requireLeading();
    if (this.state.list.locked) throw new E2eeError('locked', 'the meeting is locked');
    const now = this.state.clock();
    // Verify everything before appending anything: a binding that cannot be wrapped for must not
    // leave a half-admitted batch (or a rekey that throws later, inside a timer).
    const out: SessionOutput = { outgoing: [], events: [] };
    const admitted: KeyBinding[] = [];
    for (const id of new Set(participantIds)) {
      const binding = this.#waiting.get(id);
      if (!binding) continue;
      verifyBinding(binding, this.state.meetingId);
      this.state.secrets.get(binding.ephemeralKey); // the X25519 agreement every wrap needs
      if (this.state.list.version === 2) this.state.leaderWrap.get(binding); // its one ML-KEM encapsulation
      // Asked again: a certificate may have been revoked while the room looked at the request.
      if (!this.state.trusts(id, binding.identityKey, binding.certificate)) {
        this.#waiting.delete(id);
        out.events.push({
          type: 'identity-refused',
          participantId: id,
          reason: `identity of ${id} is not trusted`,
        });
        continue;
      }
      admitted.push(binding);
    }
    if (admitted.length === 0) return out;
    const newcomers: string[] = [];
    const entries: ListEntry[] = [];
    for (const binding of admitted) {
      this.#waiting.delete(binding.participantId);
      entries.push(this.#append(addBody(binding, this.state.list.nextSenderIndex), now));
      newcomers.push(binding.participantId);
    }
    this.#staleSince ??= now;
    const full = this.state.list.entries;
    for (const id of newcomers) out.outgoing.push(...this.#listMessages(full, id));
    out.outgoing.push(...this.#listMessages(entries));
    out.events.push(this.state.roster());
    this.#rekey(out);
    return out;
  }

  /** Refuse a waiting participant. */
  deny(participantId: string): SessionOutput {
    const binding = this.#waiting.get(participantId);
    if (binding) this.#denied.add(toBase64Url(binding.signature));
    this.#waiting.delete(participantId);
    return { outgoing: [], events: [] };
  }

  /** A member left (or was removed): record it and rekey so it cannot read what follows. */
  remove(participantIds: string | string[]): SessionOutput {
    this.#requireLeading();
    const now = this.state.clock();
    const entries: ListEntry[] = [];
    for (const id of typeof participantIds === 'string' ? [participantIds] : participantIds) {
      this.#waiting.delete(id);
      const member = this.state.list.member(id);
      if (!member || id === this.state.participantId) continue;
      entries.push(this.#append({ kind: 'leave', participantId: id }, now));
      this.state.secrets.forget(member.ephemeralKey);
      this.state.leaderWrap.forget(member.ephemeralKey);
      // Its old binding, replayed by the relay, must not bring it back: a rejoin brings a fresh key.
      this.#denied.add(toBase64Url(member.binding.signature));
    }
    const out: SessionOutput = { outgoing: [], events: [] };
    if (entries.length === 0) return out;
    this.#staleSince ??= now;
    out.outgoing.push(...this.#listMessages(entries));
    out.events.push(this.state.roster());
    this.#rekey(out);
    return out;
  }

  lock(): SessionOutput {
    return this.#setLocked(true);
  }
  unlock(): SessionOutput {
    return this.#setLocked(false);
  }

  /** Draw a fresh meeting key now (e.g. on request); tick() does this periodically. */
  rekey(): SessionOutput {
    this.#requireLeading();
    const out: SessionOutput = { outgoing: [], events: [] };
    this.#rekey(out);
    return out;
  }

  /**
   * Hand leadership to another member. Returns this participant's continuing ParticipantSession;
   * the new leader's ParticipantSession reports 'leader-changed' with isSelf and calls takeOver().
   */
  handOver(newLeaderId: string): { output: SessionOutput; participant: ParticipantSession } {
    this.#requireLeading();
    const successor = this.state.list.member(newLeaderId);
    if (!successor || newLeaderId === this.state.participantId) {
      throw new E2eeError('not-member', `${newLeaderId} is not another member`);
    }
    // Members would refuse the entry anyway (ParticipantSession): a person never leads.
    if (!this.state.mayLead(successor)) {
      throw new E2eeError('not-eligible', `${newLeaderId} may not lead (a person, or not trusted)`);
    }
    // The successor may have missed our latest wrapped key: tell it which epochs are taken.
    const minEpoch = this.state.keys.highestEpoch;
    // Above every heartbeat we signed: the successor's heartbeats (never older than this entry)
    // then strictly advance for every member.
    const time = Math.max(this.state.clock(), this.state.lastHeartbeatTime + 1);
    const entry = this.#append({ kind: 'leader', newLeaderId, minEpoch }, time);
    this.#steppedDown = true;
    this.#pending = undefined;
    const out: SessionOutput = { outgoing: this.#listMessages([entry]), events: [this.state.roster()] };
    pushDefined(out.events, this.state.codeEvent());
    out.events.push({ type: 'leader-changed', leaderId: newLeaderId, isSelf: false });
    const participant = new ParticipantSession(this.state);
    participant.watchHandOver(newLeaderId, entry.index);
    return { output: out, participant };
  }

  /** Drive time: certification timeout, periodic rekey and heartbeat, end of key overlap. */
  tick(): SessionOutput {
    const out: SessionOutput = { outgoing: [], events: [] };
    if (this.#steppedDown) return out;
    try {
      this.#tick(out);
    } catch (error) {
      out.events.push(rejected({ type: 'tick', from: this.state.participantId }, error));
    }
    return out;
  }

  #tick(out: SessionOutput): void {
    const now = this.state.clock();
    if (
      this.#batchOpenedAt !== undefined &&
      now - this.#batchOpenedAt >= this.#options.admitBatchMs &&
      !this.state.list.locked
    ) {
      this.#batchOpenedAt = undefined;
      const admitted = this.admit(this.waiting);
      out.outgoing.push(...admitted.outgoing);
      out.events.push(...admitted.events);
    }
    const membersChangedLongAgo = this.#staleSince !== undefined && now - this.#staleSince >= SEND_GRACE_MS;
    if (
      this.#pending &&
      (now - this.#pending.since >= this.#options.certifyTimeoutMs || membersChangedLongAgo)
    ) {
      this.#certify(out);
    }
    if (now - this.#lastRekeyAt >= this.#options.rekeyIntervalMs) this.#rekey(out);
    else if (now - this.#lastHeartbeatAt >= this.#options.heartbeatIntervalMs) this.#heartbeat(out);
    pushDefined(out.events, this.state.expireOverlap());
    // Only if certification could not happen (nothing pending): never send on under a stale key.
    if (
      this.state.sendEpochStale &&
      this.#staleSince !== undefined &&
      now - this.#staleSince >= SEND_GRACE_MS
    ) {
      this.state.suspend('rekeying', out.events);
    }
  }

  #onBinding(message: BindingMessage, out: SessionOutput): void {
    const binding = bindingFromWire(message.binding, this.state.meetingId);
    if (binding.participantId !== message.from)
      throw new E2eeError('malformed', 'binding of another participant');
    this.#checkBindingVersion(binding, out);
    verifyBinding(binding, this.state.meetingId);
    if (!this.state.trusts(binding.participantId, binding.identityKey, binding.certificate)) {
      const reason = `identity of ${binding.participantId} is not trusted`;
      out.events.push({ type: 'identity-refused', participantId: binding.participantId, reason });
      throw new E2eeError('untrusted-identity', reason);
    }
    const member = this.state.list.member(binding.participantId);
    if (member) {
      if (!bytesEqual(member.binding.signature, binding.signature)) {
        throw new E2eeError('invalid-state', `${binding.participantId} is already a member`);
      }
      // Admitted, but it re-posted the same binding: what we sent it was lost. Send it again.
      const epochs = [this.state.keys.sendEpoch, this.#pending?.epoch ?? 0].filter((e) => e > 0);
      this.#catchUp(member, 0, epochs, out);
      return;
    }
    const waiting = this.#waiting.get(binding.participantId);
    if (waiting && bytesEqual(waiting.signature, binding.signature)) return; // a repeat: already asked
    if (this.#denied.has(toBase64Url(binding.signature))) return; // denied: its re-posts stay quiet
    if (this.state.list.locked) throw new E2eeError('locked', 'the meeting is locked');
    this.#waiting.set(binding.participantId, binding);
    if (this.#options.autoAdmit && this.#options.admitBatchMs > 0) {
      this.#batchOpenedAt ??= this.state.clock(); // admitted together by tick()
    } else if (this.#options.autoAdmit) {
      const admitted = this.admit([binding.participantId]);
      out.outgoing.push(...admitted.outgoing);
      out.events.push(...admitted.events);
    } else {
      out.events.push({
        type: 'admission-request',
        participantId: binding.participantId,
        identityKey: toBase64Url(binding.identityKey),
        certificate: toBase64Url(binding.certificate),
      });
    }
  }

  /**
   * A binding of an older version than the meeting's (or than we accept) is a downgrade: refused,
   * and reported as a 'downgrade' event if it is genuinely signed (a v2 binding the relay stripped
   * to v1 is not: its signature fails). A newer one than the meeting's cannot join it either.
   */
  #checkBindingVersion(binding: KeyBinding, out: SessionOutput): void {
    const offered = bindingVersion(binding);
    const required = Math.max(this.state.list.version, this.state.minProtocolVersion);
    if (offered < required) {
      const reason = `${binding.participantId} offers protocol v${offered}; this meeting requires v${required}`;
      try {
        verifyBinding(binding, this.state.meetingId);
        out.events.push({
          type: 'downgrade',
          participantId: binding.participantId,
          offered,
          required,
          reason,
        });
      } catch {
        // not genuinely signed: reported as 'rejected' only
      }
      throw new E2eeError('downgrade', reason);
    }
    if (offered !== this.state.list.version) {
      throw new E2eeError('malformed', `v${offered} binding in a v${this.state.list.version} meeting`);
    }
  }

  #onAck(from: string, epoch: number, out: SessionOutput): void {
    const pending = this.#pending;
    if (!pending || pending.epoch !== epoch || !pending.awaiting.delete(from)) return; // late or duplicate
    if (pending.awaiting.size === 0) this.#certify(out);
  }

  /** A member missed messages: resend, to it alone, the entries and key it lacks and a heartbeat. */
  #onResync(from: string, fromIndex: number, epoch: number | undefined, out: SessionOutput): void {
    const member = this.state.list.member(from);
    if (!member) throw new E2eeError('not-member', `${from} is not a member`);
    if (fromIndex > this.state.list.length) throw new E2eeError('malformed', 'resync beyond the chain');
    const pending = this.#pending;
    const epochs = new Set<number>();
    if (epoch !== undefined && (epoch === this.state.keys.sendEpoch || epoch === pending?.epoch))
      epochs.add(epoch);
    // A member that never acked the pending epoch may not know it exists (its key was withheld).
    if (pending?.awaiting.has(member.participantId)) epochs.add(pending.epoch);
    this.#catchUp(
      member,
      fromIndex,
      [...epochs].sort((a, b) => a - b),
      out,
    );
  }

  #setLocked(locked: boolean): SessionOutput {
    this.#requireLeading();
    const out: SessionOutput = { outgoing: [], events: [] };
    if (this.state.list.locked === locked) return out;
    const entry = this.#append({ kind: locked ? 'lock' : 'unlock' }, this.state.clock());
    out.outgoing.push(...this.#listMessages([entry]));
    out.events.push(this.state.roster());
    this.#heartbeat(out); // re-certify the current epoch for the new chain head
    return out;
  }

  /** Fresh random key (never derived from the old one), wrapped for every other member. */
  #rekey(out: SessionOutput): void {
    const { state } = this;
    const now = state.clock();
    const epoch = Math.max(state.keys.highestEpoch, state.list.epochFloor) + 1;
    const meetingKey = drawMeetingKey(state.random);
    const awaiting = new Set<string>();
    const wrapped: KeyMessage[] = []; // all or nothing: commit only once every wrap succeeded
    for (const member of state.list.members()) {
      if (member.participantId === state.participantId) continue;
      wrapped.push(this.#wrapFor(member, epoch, meetingKey));
      awaiting.add(member.participantId);
    }
    out.outgoing.push(...wrapped);
    state.keys.add(epoch, meetingKey, now);
    this.#pending = { epoch, awaiting, since: now };
    this.#lastRekeyAt = now;
    pushDefined(out.events, state.codeEvent());
    if (awaiting.size === 0) this.#certify(out);
    else pushDefined(out.events, state.keysEvent()); // receive keys of the next epoch
  }

  #wrapFor(member: Member, epoch: number, meetingKey: Uint8Array): KeyMessage {
    const { state } = this;
    const version = state.list.version || 1;
    const context = {
      meetingId: state.meetingId,
      leaderId: state.participantId,
      recipientId: member.participantId,
      epoch,
      leaderEphemeralKey: state.ephemeral.publicKey,
      recipientEphemeralKey: member.ephemeralKey,
      version,
    };
    // v2: the hybrid secret, its ML-KEM ciphertext repeated in every key message (encapsulated once).
    const hybrid = version === 2 ? state.leaderWrap.get(member) : undefined;
    const secret = hybrid?.secret ?? state.secrets.get(member.ephemeralKey);
    const nonce = state.random(WRAP_NONCE_BYTES);
    const wrapped = sealMeetingKey(secret, context, meetingKey, nonce);
    const message: KeyMessage = {
      v: version,
      type: 'e2ee.key',
      meetingId: state.meetingId,
      from: state.participantId,
      to: member.participantId,
      epoch,
      nonce: toBase64Url(wrapped.nonce),
      ciphertext: toBase64Url(wrapped.ciphertext),
    };
    if (hybrid) message.kemCiphertext = hybrid.ciphertextText;
    return message;
  }

  /** Everything a member needs to catch up: entries from `fromIndex`, the keys it lacks, a heartbeat. */
  #catchUp(member: Member, fromIndex: number, epochs: number[], out: SessionOutput): void {
    const missing = this.state.list.entries.slice(fromIndex);
    if (missing.length > 0) out.outgoing.push(...this.#listMessages(missing, member.participantId));
    for (const epoch of epochs) {
      const key = this.state.keys.key(epoch);
      if (key) out.outgoing.push(this.#wrapFor(member, epoch, key));
    }
    this.#heartbeat(out, member.participantId);
  }

  #certify(out: SessionOutput): void {
    const pending = this.#pending;
    if (!pending) return;
    this.#pending = undefined;
    if (this.state.keys.certify(pending.epoch, this.state.clock())) {
      out.events.push({ type: 'epoch-certified', epoch: pending.epoch });
    }
    // Drawn after the last add/leave (a membership change replaces the pending epoch), so it is
    // exactly the current members' key.
    this.state.sendCertLength = this.state.list.length;
    this.#staleSince = undefined;
    this.#heartbeat(out);
    this.state.resume('rekeying', out.events);
    pushDefined(out.events, this.state.keysEvent());
  }

  #heartbeat(out: SessionOutput, to?: string): void {
    const { state } = this;
    const now = state.clock();
    // Never certify the old epoch for a chain that records an add/leave after it: members would
    // take it as fresh. The certifying heartbeat of the new epoch follows within SEND_GRACE_MS.
    if (state.sendEpochStale) return;
    const time = Math.max(now, state.list.lastTime, state.lastHeartbeatTime + 1); // strictly increasing
    state.lastHeartbeatTime = time;
    const heartbeat = signHeartbeat(
      {
        meetingId: state.meetingId,
        leaderId: state.participantId,
        epoch: state.keys.sendEpoch,
        listLength: state.list.length,
        listHead: state.list.head,
        time,
      },
      state.signer,
    );
    const message = heartbeatToWire(heartbeat, state.participantId, state.version);
    if (to !== undefined) message.to = to;
    else this.#lastHeartbeatAt = now;
    out.outgoing.push(message);
  }

  #append(body: ListEntryBody, now: number): ListEntry {
    return this.state.list.append(body, this.state.participantId, this.state.signer, now);
  }

  /** Entries as list messages of at most LIST_ENTRIES_PER_MESSAGE each (a long chain is split). */
  #listMessages(entries: readonly ListEntry[], to?: string): ListMessage[] {
    const messages: ListMessage[] = [];
    for (let i = 0; i < entries.length; i += LIST_ENTRIES_PER_MESSAGE) {
      const message: ListMessage = {
        v: this.state.version,
        type: 'e2ee.list',
        meetingId: this.state.meetingId,
        from: this.state.participantId,
        entries: entries.slice(i, i + LIST_ENTRIES_PER_MESSAGE).map(listEntryToWire),
      };
      if (to !== undefined) message.to = to;
      messages.push(message);
    }
    return messages;
  }

  #requireLeading(): void {
    if (this.#steppedDown) throw new E2eeError('invalid-state', 'this session handed leadership over');
  }
}

function addBody(binding: KeyBinding, senderIndex: number): ListEntryBody {
  return { kind: 'add', binding, senderIndex };
}

export type { SessionEvent };
