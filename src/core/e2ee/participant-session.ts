// A participant's key manager: posts its binding, verifies the leader's participant list, unwraps
// meeting keys, acknowledges them, and switches its send key when a heartbeat certifies the epoch.
import { bytesEqual } from './bytes.js';
import { E2eeError } from './errors.js';
import { PROTOCOL_VERSION } from './labels.js';
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
import { checkHeartbeat, type Heartbeat } from './participant-list.js';
import {
  pushDefined,
  rejected,
  type SessionEvent,
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
  #pendingHeartbeat: Heartbeat | undefined;
  #lastHeartbeatTime = 0; // leader's clock, from the last valid heartbeat
  #lastHeartbeatAt: number; // local clock when a valid heartbeat (or the join) was last seen
  #silentReported = false;
  #joined = false;
  #pendingSince = 0; // local clock when the pending (ahead) heartbeat arrived
  #resyncAt = Number.NEGATIVE_INFINITY; // when we last asked the leader to resend (one per RESYNC_AFTER_MS)
  #keyWaitEpoch = 0; // a heartbeat certified this epoch but its key has not come…
  #keyWaitSince = 0; // …since
  #uncertifiedSince = 0; // we hold a newer key that no heartbeat certified, since…
  #bindingSentAt: number | undefined; // joiner: when the binding was last posted
  #handOver: { to: string; fromIndex: number; at: number } | undefined; // outgoing leader, until relieved

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
      v: PROTOCOL_VERSION,
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
    return out;
  }

  /**
   * Drive time: drops the previous epoch's receive keys once the overlap has passed, and reports
   * once if the leader has been silent too long (relay cut off, leader gone: show it, rejoin).
   */
  tick(): SessionOutput {
    const events: SessionEvent[] = [];
    const outgoing: E2eeMessage[] = [];
    pushDefined(events, this.state.expireOverlap());
    const now = this.state.clock();
    this.#recoverLostMessages(now, { outgoing, events });
    this.#remindSuccessor(now, outgoing);
    if (
      this.#joined &&
      !this.state.removed &&
      !this.#silentReported &&
      now - this.#lastHeartbeatAt >= this.state.leaderSilentAfterMs
    ) {
      this.#silentReported = true;
      events.push({
        type: 'leader-silent',
        leaderId: this.state.list.leaderId,
        lastHeartbeatAt: this.#lastHeartbeatAt,
      });
    }
    return { outgoing, events };
  }

  /**
   * The relay may lose messages (e.g. across its restart). Each loss leaves a trace we can see and
   * repair by asking the leader: a heartbeat waiting for entries, a certified epoch without its key,
   * a newer key never certified, or — before admission — no chain at all.
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
    const { keys } = this.state;
    if (this.#pendingHeartbeat && now - this.#pendingSince >= RESYNC_AFTER_MS) {
      this.#requestResync(out, undefined, this.#pendingHeartbeat.leaderId); // it may be a new leader
    } else if (keys.awaitingEpoch && now - this.#keyWaitSince >= RESYNC_AFTER_MS) {
      this.#requestResync(out, keys.awaitingEpoch);
    } else if (keys.highestEpoch > keys.sendEpoch && now - this.#uncertifiedSince >= UNCERTIFIED_RESYNC_MS) {
      this.#requestResync(out);
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
      v: PROTOCOL_VERSION,
      type: 'e2ee.list',
      meetingId: this.state.meetingId,
      from: this.state.participantId,
      to: handOver.to,
      entries: this.state.list.entries
        .slice(handOver.fromIndex, handOver.fromIndex + 128)
        .map(listEntryToWire),
    });
  }

  #requestResync(out: SessionOutput, epoch?: number, leaderId = this.state.list.leaderId): void {
    const now = this.state.clock();
    if (!this.#joined || now - this.#resyncAt < RESYNC_AFTER_MS) return; // the answer may be on its way
    this.#resyncAt = now;
    const request: ResyncMessage = {
      v: PROTOCOL_VERSION,
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
    const entry = listEntryFromWire(wire, this.state.meetingId);
    if (entry.index > list.length) this.#requestResync(out, undefined, from); // missed entries: ask, refuse this
    if (entry.index < list.length) {
      // Already applied (a newcomer gets both the full chain and the broadcast): must be identical.
      if (!bytesEqual(list.entries[entry.index]!.signature, entry.signature)) {
        throw new E2eeError('chain-broken', `entry ${entry.index} differs from the one already verified`);
      }
      return 'skipped';
    }
    const body = entry.body;
    if (body.kind === 'create' && !this.state.trustIdentity(body.leaderId, body.leaderIdentityKey)) {
      throw new E2eeError('untrusted-identity', `leader ${body.leaderId} is not trusted`);
    }
    if (body.kind === 'leader') {
      const next = list.member(body.newLeaderId);
      if (next && !this.state.trustIdentity(next.participantId, next.identityKey)) {
        throw new E2eeError('untrusted-identity', `new leader ${body.newLeaderId} is not trusted`);
      }
    }
    list.apply(entry);
    if (body.kind === 'leave' && body.participantId === this.state.participantId) {
      this.state.removed = true;
      this.state.keys.clear();
      out.events.push(this.state.roster(), { type: 'removed' });
      return 'removed';
    }
    return 'applied';
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
    if (message.epoch <= this.state.keys.highestEpoch) {
      throw new E2eeError(
        'stale-epoch',
        `key epoch ${message.epoch} does not exceed ${this.state.keys.highestEpoch}`,
      );
    }
    const context = {
      meetingId: this.state.meetingId,
      leaderId: leader.participantId,
      recipientId: this.state.participantId,
      epoch: message.epoch,
      leaderEphemeralKey: leader.ephemeralKey,
      recipientEphemeralKey: this.state.ephemeral.publicKey,
    };
    const meetingKey = openMeetingKey(this.state.secrets.get(leader.ephemeralKey), context, {
      epoch: message.epoch,
      nonce: fromBase64Url(message.nonce, 24),
      ciphertext: fromBase64Url(message.ciphertext, 48),
    });
    const sendBefore = this.state.keys.sendEpoch;
    this.state.keys.add(message.epoch, meetingKey, this.state.clock());
    this.#uncertifiedSince = this.state.clock();
    const ack: AckMessage = {
      v: PROTOCOL_VERSION,
      type: 'e2ee.ack',
      meetingId: this.state.meetingId,
      from: this.state.participantId,
      to: leader.participantId,
      epoch: message.epoch,
    };
    out.outgoing.push(ack);
    if (this.state.keys.sendEpoch !== sendBefore) {
      out.events.push({ type: 'epoch-certified', epoch: this.state.keys.sendEpoch });
    }
    pushDefined(out.events, this.state.keysEvent());
  }

  #onHeartbeat(heartbeat: Heartbeat, out: SessionOutput): void {
    const check = checkHeartbeat(heartbeat, this.state.list);
    if (check === 'ahead') {
      if (!this.#pendingHeartbeat) this.#pendingSince = this.state.clock();
      this.#pendingHeartbeat = heartbeat; // entries still on their way
      return;
    }
    if (check === 'stale') return; // certified an older chain; a newer heartbeat follows
    if (heartbeat.time < this.#lastHeartbeatTime)
      throw new E2eeError('stale-epoch', 'heartbeat older than the last');
    if (heartbeat.epoch < this.state.keys.sendEpoch) {
      throw new E2eeError('stale-epoch', `heartbeat certifies old epoch ${heartbeat.epoch}`);
    }
    this.#lastHeartbeatTime = heartbeat.time;
    if (this.#handOver?.to === heartbeat.leaderId) this.#handOver = undefined; // the successor leads
    this.#lastHeartbeatAt = this.state.clock();
    this.#silentReported = false;
    if (this.state.keys.certify(heartbeat.epoch, this.state.clock())) {
      out.events.push({ type: 'epoch-certified', epoch: heartbeat.epoch });
      pushDefined(out.events, this.state.keysEvent());
    } else if (this.state.keys.awaitingEpoch === heartbeat.epoch && this.#keyWaitEpoch !== heartbeat.epoch) {
      this.#keyWaitEpoch = heartbeat.epoch; // certified, but its key has not come (yet)
      this.#keyWaitSince = this.state.clock();
    }
  }
}
