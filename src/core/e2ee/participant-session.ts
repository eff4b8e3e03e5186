// A participant's key manager: posts its binding, verifies the leader's participant list, unwraps
// meeting keys, acknowledges them, and switches its send key when a heartbeat certifies the epoch.
// Key freshness: it stops sending (keys event `sending: false`) within SEND_GRACE_MS once its send
// epoch may no longer be exactly the members' key — a member was added or left after the epoch was
// certified, or a heartbeat certified a newer epoch it lacks — and when the leader falls silent; it
// resumes only under a freshly certified epoch it holds.
import { bytesEqual } from './bytes.js';
import { E2eeError } from './errors.js';
import { bindingVersion } from './binding.js';
import { KEM_CIPHERTEXT_BYTES } from './kem.js';
import { openMeetingKey } from './meeting-key.js';
import {
  type AckMessage,
  type BindingMessage,
  bindingToWire,
  type E2eeMessage,
  type HeartbeatMessage,
  heartbeatFromWire,
  type KeyMessage,
  type ListMessage,
  listEntryFromWire,
  listEntryToWire,
  type ResyncMessage,
  validateE2eeMessage,
} from './messages.js';
import { fromBase64Url } from './bytes.js';
import { verifyEd25519 } from './keys.js';
import { MAX_LIST_ENTRIES_PER_MESSAGE } from './messages.js';
import {
  checkHeartbeat,
  type Heartbeat,
  heartbeatStatement,
  type ListEntry,
  listEntryHash,
  listEntryStatement,
} from './participant-list.js';
import {
  pushDefined,
  rejected,
  SEND_GRACE_MS,
  type SessionOptions,
  type SessionOutput,
  SessionState,
} from './session-core.js';

/** How long a heartbeat may wait for its list entries, or a certified epoch for its key, before we ask. */
export const RESYNC_AFTER_MS = 2_000;
/** How long we may hold a newer key that no heartbeat certifies before we ask (a lost heartbeat). */
export const UNCERTIFIED_RESYNC_MS = 5_000;
/** How often a joiner that was never admitted posts its binding again (a lost binding or chain). */
export const REPOST_BINDING_MS = 10_000;

export class ParticipantSession {
  readonly state: SessionState;
  #pendingHeartbeat: Heartbeat | undefined; // verified, ahead of our chain: entries still to come
  #pendingSince = 0; // local clock when the pending (ahead) heartbeat arrived
  #lastHeartbeatAt: number; // local clock when a valid heartbeat (or the join) was last seen
  #silentReported = false;
  #joined = false;
  readonly #resyncAt = new Map<string, number>(); // per leader asked: one request per RESYNC_AFTER_MS
  #keyWaitEpoch = 0; // a heartbeat certified this epoch but its key has not come…
  #keyWaitSince = 0; // …since
  #uncertifiedSince = 0; // we hold a newer key that no heartbeat certified, since…
  #bindingSentAt: number | undefined; // joiner: when the binding was last posted
  #handOver: { to: string; fromIndex: number; at: number } | undefined; // outgoing leader, until relieved
  readonly #certLengths = new Map<number, number>(); // epoch → chain length of its first certification
  #certifiedAbove = 0; // highest epoch a verified heartbeat certified (ahead ones included)
  #staleSince: number | undefined; // local clock since the send epoch is stale
  #successor: { participantId: string; identityKey: Uint8Array } | undefined; // named in an unapplied `leader` entry

  constructor(options: SessionOptions | SessionState) {
    this.state = options instanceof SessionState ? options : new SessionState(options);
    this.#joined = this.state.isMember;
    this.#lastHeartbeatAt = this.state.clock();
  }

  get participantId(): string {
    return this.state.participantId;
  }
  get securityCode(): string | undefined {
    return this.state.securityCode();
  }
  get epoch(): number {
    return this.state.keys.sendEpoch;
  }
  get leaderId(): string {
    return this.state.list.leaderId;
  }
  get isMember(): boolean {
    return this.state.isMember;
  }
  /** False while the media engine must send nothing (see SEND_GRACE_MS). */
  get sending(): boolean {
    return this.state.sending;
  }

  /**
   * Called on the outgoing leader's new participant session: until a heartbeat of `successorId`
   * shows it leads, tick() re-sends it the `leader` entry (and what follows) in case it was lost.
   */
  watchHandOver(successorId: string, entryIndex: number): void {
    this.#handOver = { to: successorId, fromIndex: entryIndex, at: this.state.clock() };
  }

  /** Join: the signed binding to post (post it again if the relay lost it). */
  start(): SessionOutput {
    this.#bindingSentAt = this.state.clock();
    return { outgoing: [this.bindingMessage()], events: [] };
  }

  bindingMessage(): BindingMessage {
    return {
      v: this.state.version,
      type: 'e2ee.binding',
      meetingId: this.state.meetingId,
      from: this.state.participantId,
      binding: bindingToWire(this.state.binding),
    };
  }

  /** Feed one message from the relay. Never throws on bad input: it reports a 'rejected' event. */
  handle(message: E2eeMessage): SessionOutput {
    const out: SessionOutput = { outgoing: [], events: [] };
    try {
      validateE2eeMessage(message); // callers should have; a bad object must not reach the logic
      if (message.meetingId !== this.state.meetingId) {
        throw new E2eeError('wrong-meeting', 'message for another meeting');
      }
      if (this.state.removed) throw new E2eeError('not-member', 'removed from the meeting');
      switch (message.type) {
        case 'e2ee.list':
          this.#onList(message, out);
          break;
        case 'e2ee.key':
          this.#onKey(message, out);
          break;
        case 'e2ee.heartbeat':
          this.#onHeartbeat(heartbeatFromWire(message as HeartbeatMessage), out);
          break;
        default:
          throw new E2eeError('invalid-state', `a participant does not handle ${message.type}`);
      }
    } catch (error) {
      out.events.push(rejected(message, error));
    }
    this.#guard(out, () => this.#checkFreshness(this.state.clock(), out));
    return out;
  }

  /**
   * Drive time: drops the previous epoch's receive keys once the overlap has passed, repairs lost
   * messages, suspends sending when the send epoch went stale or the leader fell silent.
   */
  tick(): SessionOutput {
    const out: SessionOutput = { outgoing: [], events: [] };
    this.#guard(out, () => {
      pushDefined(out.events, this.state.expireOverlap());
      const now = this.state.clock();
      this.#recoverLostMessages(now, out);
      this.#remindSuccessor(now, out.outgoing);
      if (
        this.#joined &&
        !this.state.removed &&
        !this.#silentReported &&
        now - this.#lastHeartbeatAt >= this.state.leaderSilentAfterMs
      ) {
        this.#silentReported = true;
        out.events.push({
          type: 'leader-silent',
          leaderId: this.state.list.leaderId,
          lastHeartbeatAt: this.#lastHeartbeatAt,
        });
        this.state.suspend('leader-lost', out.events);
      }
      this.#checkFreshness(now, out);
    });
    return out;
  }

  #guard(out: SessionOutput, run: () => void): void {
    try {
      run();
    } catch (error) {
      out.events.push(rejected({ type: 'tick', from: this.state.participantId }, error));
    }
  }

  /**
   * The send epoch is stale when the chain records an add or leave after the length at which it was
   * certified (a removed member may hold it, a new one lacks it) or a verified heartbeat certified a
   * newer epoch. After SEND_GRACE_MS of that: suspend and ask the leader; resume once fresh.
   */
  #checkFreshness(now: number, out: SessionOutput): void {
    const { state } = this;
    if (!this.#joined || state.removed || state.keys.sendEpoch === 0) return;
    const stale = state.sendEpochStale || this.#certifiedAbove > state.keys.sendEpoch;
    if (!stale) {
      this.#staleSince = undefined;
      state.resume('rekeying', out.events);
      return;
    }
    this.#staleSince ??= now;
    if (now - this.#staleSince >= SEND_GRACE_MS && !state.suspended.has('rekeying')) {
      state.suspend('rekeying', out.events);
      this.#requestResync(out, state.keys.awaitingEpoch || undefined);
    }
  }

  /**
   * The relay may lose (or withhold) messages. Each loss leaves a trace we can see and repair by
   * asking the leader: a heartbeat waiting for entries, a certified epoch without its key, a newer
   * key never certified, a stale send epoch, or — before admission — no chain at all. The traces are
   * checked independently: one (e.g. a parked heartbeat) never keeps the others from asking.
   */
  #recoverLostMessages(now: number, out: SessionOutput): void {
    if (this.state.removed) return;
    if (!this.#joined) {
      if (this.#bindingSentAt !== undefined && now - this.#bindingSentAt >= REPOST_BINDING_MS) {
        this.#bindingSentAt = now;
        out.outgoing.push(this.bindingMessage());
      }
      return;
    }
    const { keys, list } = this.state;
    const parked = this.#pendingHeartbeat;
    const parkedDue = parked !== undefined && now - this.#pendingSince >= RESYNC_AFTER_MS;
    if (parkedDue && parked.leaderId !== list.leaderId) this.#requestResync(out, undefined, parked.leaderId);
    const awaiting = keys.awaitingEpoch;
    if (
      (parkedDue && parked.leaderId === list.leaderId) ||
      (awaiting && now - this.#keyWaitSince >= RESYNC_AFTER_MS) ||
      (keys.highestEpoch > keys.sendEpoch && now - this.#uncertifiedSince >= UNCERTIFIED_RESYNC_MS) ||
      this.state.suspended.has('rekeying')
    ) {
      this.#requestResync(out, awaiting || undefined);
    }
  }

  #remindSuccessor(now: number, outgoing: E2eeMessage[]): void {
    const handOver = this.#handOver;
    if (!handOver || now - handOver.at < RESYNC_AFTER_MS) return;
    if (this.state.removed || !this.state.list.member(handOver.to)) {
      this.#handOver = undefined; // it left: nothing to remind
      return;
    }
    handOver.at = now;
    outgoing.push({
      v: this.state.version,
      type: 'e2ee.list',
      meetingId: this.state.meetingId,
      from: this.state.participantId,
      to: handOver.to,
      entries: this.state.list.entries
        .slice(handOver.fromIndex, handOver.fromIndex + MAX_LIST_ENTRIES_PER_MESSAGE)
        .map(listEntryToWire),
    });
  }

  #requestResync(out: SessionOutput, epoch?: number, leaderId = this.state.list.leaderId): void {
    const now = this.state.clock();
    if (!this.#joined || now - (this.#resyncAt.get(leaderId) ?? Number.NEGATIVE_INFINITY) < RESYNC_AFTER_MS) {
      return; // the answer may be on its way
    }
    if (this.#resyncAt.size > 16) this.#resyncAt.clear(); // bounded: ids come from the relay
    this.#resyncAt.set(leaderId, now);
    const request: ResyncMessage = {
      v: this.state.version,
      type: 'e2ee.resync',
      meetingId: this.state.meetingId,
      from: this.state.participantId,
      to: leaderId,
      fromIndex: this.state.list.length,
    };
    if (epoch !== undefined) request.epoch = epoch;
    out.outgoing.push(request);
  }

  #onList(message: ListMessage, out: SessionOutput): void {
    const { list } = this.state;
    const leaderBefore = list.leaderId;
    const lengthBefore = list.length;
    let failure: unknown;
    try {
      for (const wire of message.entries) {
        if (this.#applyEntry(wire, message.from, out) === 'removed') return;
      }
    } catch (error) {
      failure = error; // entries before the bad one were verified and stay: report them, then it
    }
    if (list.length > lengthBefore) this.#afterListChange(leaderBefore, out);
    if (failure !== undefined) throw failure;
  }

  #applyEntry(
    wire: ListMessage['entries'][number],
    from: string,
    out: SessionOutput,
  ): 'applied' | 'skipped' | 'removed' {
    const { list } = this.state;
    const entry = listEntryFromWire(wire, this.state.meetingId, list.version);
    if (entry.index > list.length) {
      this.#noteSuccessor(entry);
      this.#requestResync(out, undefined, from); // missed entries: ask, refuse this
    }
    if (entry.index < list.length) {
      // Already applied (a newcomer gets both the full chain and the broadcast): must be identical,
      // i.e. the same statement and signature (the same entry hash), whatever the JSON spelling.
      if (!bytesEqual(listEntryHash(list.entries[entry.index]!), listEntryHash(entry))) {
        throw new E2eeError('chain-broken', `entry ${entry.index} differs from the one already verified`);
      }
      return 'skipped';
    }
    list.apply(entry, (verified) => this.#trustEntry(verified, out));
    const body = entry.body;
    if (body.kind === 'leave' && body.participantId === this.state.participantId) {
      this.state.removed = true;
      this.state.wipe();
      out.events.push(this.state.roster(), { type: 'removed' });
      return 'removed';
    }
    return 'applied';
  }

  /**
   * Policy on a genuinely signed entry, before it applies: the meeting's version (create) is not a
   * downgrade; every `add` (the creator's at index 1 included) passes the trust policy; the leader —
   * the creator, or whom a `leader` entry names — is never a person.
   */
  #trustEntry(entry: ListEntry, out: SessionOutput): void {
    const { body } = entry;
    if (body.kind === 'create') {
      this.#checkMeetingVersion(body.leaderId, body.version ?? 1, out);
      return;
    }
    if (body.kind === 'leader') {
      const next = this.state.list.member(body.newLeaderId);
      if (next && !this.state.mayLead(next)) {
        const reason = `leader entry names ${body.newLeaderId}, who may not lead (a person, or not trusted)`;
        out.events.push({ type: 'identity-refused', participantId: body.newLeaderId, reason });
        throw new E2eeError('not-eligible', reason);
      }
      return;
    }
    if (body.kind !== 'add') return;
    const { participantId, identityKey, certificate } = body.binding;
    const verdict = this.state.verdict(participantId, identityKey, certificate);
    if (!verdict.trusted) {
      const reason = `identity of ${participantId} is not trusted`;
      out.events.push({ type: 'identity-refused', participantId, reason });
      throw new E2eeError('untrusted-identity', reason);
    }
    if (entry.index === 1 && verdict.kind === 'person') {
      const reason = `meeting created by ${participantId}, a person (people never lead)`;
      out.events.push({ type: 'identity-refused', participantId, reason });
      throw new E2eeError('not-eligible', reason);
    }
  }

  /** The creator signed the meeting's version; below what we accept or bound for, it is a downgrade. */
  #checkMeetingVersion(leaderId: string, offered: number, out: SessionOutput): void {
    const required = Math.max(this.state.minProtocolVersion, bindingVersion(this.state.binding));
    if (offered < required) {
      const reason = `meeting runs protocol v${offered}; this participant requires v${required}`;
      out.events.push({ type: 'downgrade', participantId: leaderId, offered, required, reason });
      throw new E2eeError('downgrade', reason);
    }
    if (offered !== bindingVersion(this.state.binding)) {
      throw new E2eeError(
        'malformed',
        `v${offered} meeting, but this participant bound for v${bindingVersion(this.state.binding)}`,
      );
    }
  }

  /**
   * A `leader` entry beyond our chain, signed by the current leader, names a successor whose
   * heartbeats may be parked as 'ahead' until the entries in between arrive.
   */
  #noteSuccessor(entry: ListEntry): void {
    const { list } = this.state;
    if (entry.body.kind !== 'leader' || entry.signer !== list.leaderId) return;
    const next = list.member(entry.body.newLeaderId);
    // A person is never a successor: its heartbeats are not parked (the entry will be refused).
    if (
      next &&
      this.state.mayLead(next) &&
      verifyEd25519(list.leaderIdentityKey, listEntryStatement(entry), entry.signature)
    ) {
      this.#successor = { participantId: next.participantId, identityKey: next.identityKey };
    }
  }

  #afterListChange(leaderBefore: string, out: SessionOutput): void {
    const { list } = this.state;
    const self = list.member(this.state.participantId);
    if (!this.#joined && self && bytesEqual(self.ephemeralKey, this.state.ephemeral.publicKey)) {
      this.#joined = true;
      this.#lastHeartbeatAt = this.state.clock();
      out.events.push({ type: 'joined', senderIndex: self.senderIndex });
    }
    out.events.push(this.state.roster());
    pushDefined(out.events, this.state.codeEvent());
    if (list.leaderId !== leaderBefore && leaderBefore !== '') {
      if (this.#successor?.participantId === list.leaderId) this.#successor = undefined;
      out.events.push({
        type: 'leader-changed',
        leaderId: list.leaderId,
        isSelf: list.leaderId === this.state.participantId,
      });
    }
    const pending = this.#pendingHeartbeat;
    if (pending && pending.listLength <= list.length) {
      this.#pendingHeartbeat = undefined;
      try {
        this.#onHeartbeat(pending, out);
      } catch (error) {
        out.events.push(rejected({ type: 'e2ee.heartbeat', from: pending.leaderId }, error));
      }
    }
    pushDefined(out.events, this.state.keysEvent());
  }

  #onKey(message: KeyMessage, out: SessionOutput): void {
    const { list } = this.state;
    if (message.to !== this.state.participantId)
      throw new E2eeError('wrong-recipient', 'key for someone else');
    if (!this.#joined) throw new E2eeError('not-member', 'key before the participant list admitted us');
    const leader = list.leader();
    if (!leader || message.from !== list.leaderId)
      throw new E2eeError('not-member', 'key not from the leader');
    if (message.epoch <= this.state.keys.highestEpoch && message.epoch !== this.state.keys.awaitingEpoch) {
      throw new E2eeError(
        'stale-epoch',
        `key epoch ${message.epoch} does not exceed ${this.state.keys.highestEpoch}`,
      );
    }
    const version = list.version || 1;
    const context = {
      meetingId: this.state.meetingId,
      leaderId: leader.participantId,
      recipientId: this.state.participantId,
      epoch: message.epoch,
      leaderEphemeralKey: leader.ephemeralKey,
      recipientEphemeralKey: this.state.ephemeral.publicKey,
      version,
    };
    const wrapped = {
      epoch: message.epoch,
      nonce: fromBase64Url(message.nonce, 24),
      ciphertext: fromBase64Url(message.ciphertext, 48),
    };
    let meetingKey: Uint8Array;
    if (version === 2) {
      // Without its ML-KEM ciphertext the key would rest on X25519 alone: refused, never opened.
      if (message.kemCiphertext === undefined) {
        throw new E2eeError('downgrade', 'e2ee.key without its ML-KEM ciphertext in a v2 meeting');
      }
      const kemCiphertext = fromBase64Url(message.kemCiphertext, KEM_CIPHERTEXT_BYTES);
      const secret = this.state.memberWrap.get(leader.ephemeralKey, kemCiphertext);
      meetingKey = openMeetingKey(secret, context, wrapped);
      this.state.memberWrap.confirm(leader.ephemeralKey, kemCiphertext, secret);
    } else {
      if (message.kemCiphertext !== undefined)
        throw new E2eeError('malformed', 'ML-KEM ciphertext in a v1 meeting');
      meetingKey = openMeetingKey(this.state.secrets.get(leader.ephemeralKey), context, wrapped);
    }
    const sendBefore = this.state.keys.sendEpoch;
    this.state.keys.add(message.epoch, meetingKey, this.state.clock());
    this.#uncertifiedSince = this.state.clock();
    const ack: AckMessage = {
      v: this.state.version,
      type: 'e2ee.ack',
      meetingId: this.state.meetingId,
      from: this.state.participantId,
      to: leader.participantId,
      epoch: message.epoch,
    };
    out.outgoing.push(ack);
    if (this.state.keys.sendEpoch !== sendBefore) this.#switched(out); // certified before its key came
    pushDefined(out.events, this.state.keysEvent());
  }

  #onHeartbeat(heartbeat: Heartbeat, out: SessionOutput): void {
    const { state } = this;
    if (this.#fromUnknownLeader(heartbeat, out)) return;
    const check = checkHeartbeat(heartbeat, state.list, this.#successor);
    if (check === 'stale') return; // certified an older chain; a newer heartbeat follows
    // Times strictly advance (across hand-overs too): a replayed or stale heartbeat changes nothing.
    if (heartbeat.time <= state.lastHeartbeatTime) {
      throw new E2eeError('stale-epoch', 'heartbeat not newer than the last accepted one');
    }
    if (check === 'ahead') {
      // Genuinely signed, entries still on their way: keep the newest; a newer epoch than ours
      // means ours is superseded (freshness), but liveness waits until it verifies against the chain.
      if (!this.#pendingHeartbeat) this.#pendingSince = state.clock();
      if (!this.#pendingHeartbeat || this.#pendingHeartbeat.time < heartbeat.time) {
        this.#pendingHeartbeat = heartbeat;
      }
      this.#certifiedAbove = Math.max(this.#certifiedAbove, heartbeat.epoch);
      return;
    }
    if (heartbeat.epoch < state.keys.sendEpoch) {
      throw new E2eeError('stale-epoch', `heartbeat certifies old epoch ${heartbeat.epoch}`);
    }
    state.lastHeartbeatTime = heartbeat.time;
    if (this.#handOver?.to === heartbeat.leaderId) this.#handOver = undefined; // the successor leads
    this.#lastHeartbeatAt = state.clock();
    this.#silentReported = false;
    state.resume('leader-lost', out.events);
    if (!this.#certLengths.has(heartbeat.epoch)) this.#certLengths.set(heartbeat.epoch, heartbeat.listLength);
    this.#certifiedAbove = Math.max(this.#certifiedAbove, heartbeat.epoch);
    if (state.keys.certify(heartbeat.epoch, state.clock())) {
      this.#switched(out);
      pushDefined(out.events, state.keysEvent());
    } else if (state.keys.awaitingEpoch === heartbeat.epoch && this.#keyWaitEpoch !== heartbeat.epoch) {
      this.#keyWaitEpoch = heartbeat.epoch; // certified, but its key has not come (yet)
      this.#keyWaitSince = state.clock();
    }
  }

  /**
   * A heartbeat ahead of our chain, genuinely signed by another member that our chain does not (yet)
   * name as leader: we missed the `leader` entry. Not parked (it may be a member playing leader), but
   * we ask that member for the entries — on its own rate limit, so it never delays asking the leader.
   */
  #fromUnknownLeader(heartbeat: Heartbeat, out: SessionOutput): boolean {
    const { list } = this.state;
    if (heartbeat.meetingId !== list.meetingId || heartbeat.listLength <= list.length) return false;
    if (heartbeat.leaderId === list.leaderId || heartbeat.leaderId === this.#successor?.participantId) {
      return false;
    }
    const member = list.member(heartbeat.leaderId);
    if (!member || heartbeat.time <= this.state.lastHeartbeatTime) return false; // refused as usual
    if (!verifyEd25519(member.identityKey, heartbeatStatement(heartbeat), heartbeat.signature)) return false;
    this.#requestResync(out, undefined, member.participantId);
    return true;
  }

  /** The send epoch changed: remember where it was certified, so later adds/leaves make it stale. */
  #switched(out: SessionOutput): void {
    const epoch = this.state.keys.sendEpoch;
    this.state.sendCertLength = this.#certLengths.get(epoch) ?? this.state.list.length;
    for (const e of this.#certLengths.keys()) if (e < epoch) this.#certLengths.delete(e);
    out.events.push({ type: 'epoch-certified', epoch });
  }
}
