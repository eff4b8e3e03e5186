// An in-process meeting: routes E2EE messages between sessions the way the relay does (by `to`,
// else to every member; bindings to the leader), serialising each through JSON and the schema check
// like the wire would. Used by `sealroom simulate`, the rekey benchmark and the tests.
import { IdentityKeyPair, type RandomSource } from './keys.js';
import { LeaderSession, type LeaderOptions } from './leader-session.js';
import { type E2eeMessage, parseE2eeMessage } from './messages.js';
import { ParticipantSession } from './participant-session.js';
import type { ProtocolVersion } from './labels.js';
import type { SessionEvent, SessionOutput, TrustIdentity } from './session-core.js';

export interface SimulatedMeetingOptions extends LeaderOptions {
  meetingId: string;
  leaderId: string;
  random?: RandomSource;
  clock?: () => number;
  /** Every session's trust policy (default: accept). */
  trustIdentity?: TrustIdentity;
  /** The leader's certificate DER (default: empty). */
  certificate?: Uint8Array;
  /** Every session's protocol version and minimum (default 2 and 2; v1 only when both say 1). */
  protocolVersion?: ProtocolVersion;
  minProtocolVersion?: ProtocolVersion;
}

export interface JoinOptions {
  random?: RandomSource;
  certificate?: Uint8Array;
  trustIdentity?: TrustIdentity;
  protocolVersion?: ProtocolVersion;
  minProtocolVersion?: ProtocolVersion;
}

export interface Delivery {
  to: string;
  message: E2eeMessage;
}

export class SimulatedMeeting {
  readonly meetingId: string;
  leader: LeaderSession;
  readonly participants = new Map<string, ParticipantSession>();
  /** Every event any session emitted, by participant id, in order. */
  readonly events = new Map<string, SessionEvent[]>();
  /** Every message that crossed the "relay" (as JSON text), for inspection. */
  readonly wire: string[] = [];
  /** Every delivery, in order: which participant received which message. */
  readonly delivered: Delivery[] = [];
  readonly #options: SimulatedMeetingOptions;
  readonly #lose = new Map<string, number>(); // participants whose next incoming messages get lost
  #waitingAtHandOver: string[] = [];
  #drop: ((delivery: Delivery) => boolean) | undefined;

  constructor(options: SimulatedMeetingOptions) {
    this.#options = options;
    this.meetingId = options.meetingId;
    const created = LeaderSession.create({
      ...options,
      participantId: options.leaderId,
      identity: IdentityKeyPair.generate(options.random),
    });
    this.leader = created.session;
    this.#route(options.leaderId, created.output);
  }

  /**
   * A new participant posts its binding (it waits until the leader admits it). `random` overrides
   * the meeting's source for this participant (its first 32 bytes become its ephemeral key).
   */
  join(participantId: string, options: JoinOptions = {}): ParticipantSession {
    const random = options.random ?? this.#options.random;
    const trustIdentity = options.trustIdentity ?? this.#options.trustIdentity;
    const { clock, heartbeatIntervalMs } = this.#options;
    const protocolVersion = options.protocolVersion ?? this.#options.protocolVersion;
    const minProtocolVersion = options.minProtocolVersion ?? this.#options.minProtocolVersion;
    const session = new ParticipantSession({
      meetingId: this.meetingId,
      participantId,
      identity: IdentityKeyPair.generate(this.#options.random),
      ...(random ? { random } : {}),
      ...(clock ? { clock } : {}),
      ...(trustIdentity ? { trustIdentity } : {}),
      ...(options.certificate ? { certificate: options.certificate } : {}),
      ...(heartbeatIntervalMs ? { heartbeatIntervalMs } : {}),
      ...(protocolVersion ? { protocolVersion } : {}),
      ...(minProtocolVersion ? { minProtocolVersion } : {}),
    });
    this.participants.set(participantId, session);
    this.#route(participantId, session.start());
    return session;
  }

  admit(ids: string[]): void {
    this.#route(this.leader.participantId, this.leader.admit(ids));
  }

  leave(id: string): void {
    this.#route(this.leader.participantId, this.leader.remove(id));
    this.participants.delete(id);
  }

  lock(): void {
    this.#route(this.leader.participantId, this.leader.lock());
  }

  unlock(): void {
    this.#route(this.leader.participantId, this.leader.unlock());
  }

  rekey(): void {
    this.#route(this.leader.participantId, this.leader.rekey());
  }

  tick(): void {
    this.#route(this.leader.participantId, this.leader.tick());
    for (const [id, p] of this.participants) this.#route(id, p.tick());
  }

  /**
   * Hand leadership to a member. It takes over (and rekeys) as soon as the `leader` entry reaches
   * it — at once, or after the outgoing leader re-sends it if it was lost.
   */
  handOver(newLeaderId: string): void {
    if (!this.participants.has(newLeaderId)) throw new Error(`${newLeaderId} is not simulated here`);
    const oldId = this.leader.participantId;
    this.#waitingAtHandOver = this.leader.waiting;
    const { output, participant } = this.leader.handOver(newLeaderId);
    this.participants.set(oldId, participant);
    this.#route(oldId, output);
  }

  /** What the daemon does on 'leader-changed' with isSelf: that participant becomes the leader. */
  #promote(id: string, queue: { from: string; output: SessionOutput }[]): void {
    const successor = this.participants.get(id);
    if (!successor) return;
    const taken = LeaderSession.takeOver(successor, this.#options);
    this.participants.delete(id);
    this.leader = taken.session;
    queue.push({ from: id, output: taken.output });
    // As the relay does: joiners still waiting post their bindings again, now to the new leader.
    for (const waitingId of this.#waitingAtHandOver) {
      const joiner = this.participants.get(waitingId);
      if (joiner)
        queue.push({ from: waitingId, output: { outgoing: [joiner.bindingMessage()], events: [] } });
    }
    this.#waitingAtHandOver = [];
  }

  /** Security code of every session, leader included. */
  securityCodes(): Map<string, string | undefined> {
    const codes = new Map<string, string | undefined>([
      [this.leader.participantId, this.leader.securityCode],
    ]);
    for (const [id, p] of this.participants) codes.set(id, p.securityCode);
    return codes;
  }

  /** Last 'keys' event of a session. */
  lastKeys(id: string): Extract<SessionEvent, { type: 'keys' }> | undefined {
    const list = this.events.get(id) ?? [];
    for (let i = list.length - 1; i >= 0; i--) {
      const event = list[i]!;
      if (event.type === 'keys') return event;
    }
    return undefined;
  }

  /** Fault injection: the next message routed to `participantId` is lost (as a relay might). */
  loseNextMessageTo(participantId: string): void {
    this.#lose.set(participantId, (this.#lose.get(participantId) ?? 0) + 1);
  }

  /** Adds an already built participant session (e.g. one with a prepared binding) and posts its binding. */
  add(session: ParticipantSession): void {
    this.participants.set(session.participantId, session);
    this.#route(session.participantId, session.start());
  }

  /** Delivers one message as the relay would (after the JSON and schema round trip), e.g. a forged one. */
  inject(to: string, message: E2eeMessage): SessionOutput {
    const session =
      to === this.leader.participantId && this.leader.active ? this.leader : this.participants.get(to);
    if (!session) throw new Error(`${to} is not simulated here`);
    const output = session.handle(parseE2eeMessage(JSON.stringify(message)));
    this.#route(to, output);
    return output;
  }

  /** Fault injection: every delivery matching `drop` is lost (as a hostile relay might) until cleared. */
  dropWhere(drop: ((delivery: Delivery) => boolean) | undefined): void {
    this.#drop = drop;
  }

  /** Ends fault injection: messages not yet lost will be delivered. */
  cancelLosses(): void {
    this.#lose.clear();
    this.#drop = undefined;
  }

  #loses(to: string): boolean {
    const count = this.#lose.get(to) ?? 0;
    if (count === 0) return false;
    if (count === 1) this.#lose.delete(to);
    else this.#lose.set(to, count - 1);
    return true;
  }

  #route(from: string, output: SessionOutput): void {
    const queue: { from: string; output: SessionOutput }[] = [{ from, output }];
    while (queue.length > 0) {
      const { from: sender, output: next } = queue.shift()!;
      this.#record(sender, next.events);
      if (next.events.some((e) => e.type === 'leader-changed' && e.isSelf)) this.#promote(sender, queue);
      for (const message of next.outgoing) {
        const text = JSON.stringify(message);
        this.wire.push(text);
        for (const to of this.#recipients(sender, message)) {
          const session =
            to === this.leader.participantId && this.leader.active ? this.leader : this.participants.get(to);
          if (!session) continue;
          if (this.#loses(to)) continue;
          const delivered = parseE2eeMessage(text);
          if (this.#drop?.({ to, message: delivered })) continue;
          this.delivered.push({ to, message: delivered });
          queue.push({ from: to, output: session.handle(delivered) });
        }
      }
    }
  }

  #recipients(sender: string, message: E2eeMessage): string[] {
    if (message.to !== undefined) return [message.to];
    if (message.type === 'e2ee.binding') return [this.leader.participantId];
    return this.leader.members.filter((id) => id !== sender);
  }

  #record(id: string, events: SessionEvent[]): void {
    if (events.length === 0) return;
    let list = this.events.get(id);
    if (!list) {
      list = [];
      this.events.set(id, list);
    }
    list.push(...events);
  }
}
