// The daemon's meeting client: keeps an authenticated connection to the relay (reconnecting with
// backoff), starts/joins/leaves meetings, admits and denies as leader, drives the E2EE state
// machines (src/core/e2ee) and hands their keys and the SFU's signalling to the media engine.
// It writes the `meeting` and `relay` slices of the daemon state.
//
// After a relay restart every device reconnects with the same meeting id and participant id: the
// leader re-creates the meeting, re-admits the members of its signed participant list as they come
// back, removes those who do not within `resumeGraceMs`, and rekeys — so the E2EE sessions and the
// security code carry on, and media resumes on fresh PeerConnections.
import { EventEmitter } from 'node:events';
import {
  type E2eeMessage,
  IdentityKeyPair,
  type KeysEvent,
  LeaderSession,
  ParticipantSession,
  type SessionEvent,
  type SessionOutput,
  validateE2eeMessage,
} from '../../src/core/e2ee/index.js';
import type { ParticipantInfo, ServerMessage } from '../../src/core/protocol/relay.js';
import { x509 } from '../../src/pki/provider.js';
import type { Logger } from '../../src/util/log.js';
import type { RoomActions } from './actions.js';
import type { MediaPort } from './media-port.js';
import { type DeviceCredentials, type LivenessOptions, RelayConnection } from './relay-connection.js';
import type { MeetingView, RosterEntry, StateStore } from './state.js';

export interface MeetingClientOptions {
  relayUrl: string;
  credentials: DeviceCredentials;
  state: StateStore;
  log: Logger;
  media?: MediaPort;
  /** Backoff between reconnection attempts (ms). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long a leader waits after a relay restart for members to come back. */
  resumeGraceMs?: number;
  /** E2EE tick (heartbeats, rekey timers). */
  tickMs?: number;
  /** Leader: rekey interval (default 5 minutes, as Zoom). */
  rekeyIntervalMs?: number;
  /** How long a connection attempt may take until authenticated (default 10 s). */
  connectTimeoutMs?: number;
  /** Ping/pong liveness of the relay connection (default DEFAULT_LIVENESS): notices silent cuts. */
  liveness?: LivenessOptions;
}

type MeetingActions = Pick<
  RoomActions,
  | 'startMeeting'
  | 'joinMeeting'
  | 'leaveMeeting'
  | 'admit'
  | 'deny'
  | 'lockMeeting'
  | 'acknowledgeLeaderChange'
>;

interface ActiveMeeting {
  meetingId: string;
  participantId: string;
  role: 'leader' | 'participant';
  session: LeaderSession | ParticipantSession;
  /** Verified identities from the relay, by participant id (certificates included). */
  known: Map<string, ParticipantInfo>;
  waiting: ParticipantInfo[];
  /** Leader: admitted at the relay, waiting for the binding to add them to the E2EE list. */
  pendingAdmits: Set<string>;
  /** Leader after a relay restart: members expected back, and when we stop waiting. */
  resuming?: { expected: Set<string>; timer: NodeJS.Timeout };
  admittedAtRelay: boolean;
  /** The signed participant list's members (from the last E2EE roster event). */
  e2eeMembers: string[];
  /** Admitted participants connected to the relay (from its last roster). */
  relayActive: Set<string>;
}

const KEY_EVENTS_KEPT = 64;

export class MeetingClient
  extends EventEmitter<{ keys: [KeysEvent]; e2ee: [SessionEvent]; relay: [ServerMessage] }>
  implements MeetingActions
{
  readonly #opts: MeetingClientOptions;
  readonly #identity: IdentityKeyPair;
  #connection: RelayConnection | undefined;
  #meeting: ActiveMeeting | undefined;
  #stopped = false;
  #tick: NodeJS.Timeout | undefined;
  #rekeyDebounce: NodeJS.Timeout | undefined;
  #connectedOnce: { resolve: () => void; promise: Promise<void> };
  /** The relay instance of the previous connection: tells a relay restart from being dropped by it. */
  #relayId: string | undefined;
  #holding = false;
  #held: ServerMessage[] = [];
  /** Every keys event this device received (tests: what a departed room could still decrypt). */
  readonly keyHistory: KeysEvent[] = [];

  constructor(opts: MeetingClientOptions) {
    super();
    this.#opts = opts;
    this.#identity = IdentityKeyPair.fromKeyObject(opts.credentials.identityKey);
    let resolve = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#connectedOnce = { resolve, promise };
    opts.media?.onSignal((payload) => this.#connection?.send({ type: 'signal', payload }));
    opts.media?.onReset?.(() => this.#restartMedia());
  }

  /** Starts the connection loop; resolves once connected the first time (or keeps trying). */
  start(): Promise<void> {
    void this.#connectLoop();
    this.#tick = setInterval(() => this.#onTick(), this.#opts.tickMs ?? 1000);
    return this.#connectedOnce.promise;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#tick) clearInterval(this.#tick);
    if (this.#rekeyDebounce) clearTimeout(this.#rekeyDebounce);
    if (this.#meeting?.resuming) clearTimeout(this.#meeting.resuming.timer);
    this.#opts.media?.disconnect();
    this.#connection?.close();
  }

  get connected(): boolean {
    return this.#connection?.open ?? false;
  }

  get meetingId(): string | undefined {
    return this.#meeting?.meetingId;
  }

  get participantId(): string | undefined {
    return this.#meeting?.participantId;
  }

  get securityCode(): string | undefined {
    return this.#meeting?.session.securityCode;
  }

  async startMeeting(): Promise<{ meetingId: string }> {
    return this.#holdingMessages(() => this.#startMeeting());
  }

  async joinMeeting(meetingId: string): Promise<void> {
    return this.#holdingMessages(() => this.#joinMeeting(meetingId));
  }

  async #holdingMessages<T>(action: () => Promise<T>): Promise<T> {
    this.#holding = true;
    try {
      return await action();
    } finally {
      this.#holding = false;
      const held = this.#held;
      this.#held = [];
      for (const m of held) this.#onRelayMessage(m);
    }
  }

  async #startMeeting(): Promise<{ meetingId: string }> {
    const connection = this.#requireConnection();
    if (this.#meeting) throw new Error('already in a meeting: leave it first');
    const reply = await connection.request({ type: 'create' });
    if (reply.type !== 'meeting') throw new Error('the relay did not create a meeting');
    const { session, output } = LeaderSession.create({
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      identity: this.#identity,
      trustIdentity: (id, key) => this.#trustIdentity(id, key),
      ...(this.#opts.rekeyIntervalMs ? { rekeyIntervalMs: this.#opts.rekeyIntervalMs } : {}),
    });
    this.#meeting = {
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      role: 'leader',
      session,
      known: new Map([[reply.participantId, reply.leader]]),
      waiting: [],
      pendingAdmits: new Set(),
      admittedAtRelay: true,
      e2eeMembers: [reply.participantId],
      relayActive: new Set([reply.participantId]),
    };
    this.#writeMeeting({ status: 'active', rekeying: false });
    this.#route(output);
    this.#startMedia();
    this.#opts.log.info({ meetingId: reply.meetingId }, 'meeting started; this room leads');
    return { meetingId: reply.meetingId };
  }

  async #joinMeeting(meetingId: string): Promise<void> {
    const connection = this.#requireConnection();
    if (this.#meeting) throw new Error('already in a meeting: leave it first');
    const reply = await connection.request({ type: 'join', meetingId: meetingId.trim().toLowerCase() });
    if (reply.type !== 'meeting') throw new Error('the relay did not accept the join');
    const session = new ParticipantSession({
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      identity: this.#identity,
      trustIdentity: (id, key) => this.#trustIdentity(id, key),
    });
    this.#meeting = {
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      role: 'participant',
      session,
      known: new Map([[reply.leader.participantId, reply.leader]]),
      waiting: [],
      pendingAdmits: new Set(),
      admittedAtRelay: reply.status === 'active',
      e2eeMembers: [],
      relayActive: new Set(),
    };
    this.#writeMeeting({ status: reply.status === 'active' ? 'active' : 'waiting', rekeying: false });
    // The signed binding goes to the leader now, so it can admit us as soon as someone taps admit.
    this.#route(session.start());
    this.#opts.log.info({ meetingId: reply.meetingId }, 'asked to join; waiting for the leader');
  }

  async leaveMeeting(): Promise<void> {
    const meeting = this.#meeting;
    if (!meeting) return;
    // A leading room that leaves hands the meeting to another room first, so it goes on (with a new
    // leader, a new security code, and a prompt on every screen to compare it again).
    const successor = meeting.session instanceof LeaderSession ? this.#successor(meeting) : undefined;
    if (successor && meeting.session instanceof LeaderSession && this.#connection?.open) {
      try {
        await this.#connection.request({ type: 'handover', participantId: successor });
        this.#route(meeting.session.handOver(successor).output);
        this.#opts.log.info(
          { meetingId: meeting.meetingId, successor },
          'handed the meeting over before leaving',
        );
      } catch (err) {
        this.#opts.log.warn({ err: (err as Error).message }, 'could not hand the meeting over; it ends');
      }
    }
    this.#endLocally('ended');
    if (this.#connection?.open) await this.#connection.request({ type: 'leave' }).catch(() => undefined);
  }

  /** The longest-standing other member that is still connected to the relay. */
  #successor(meeting: ActiveMeeting): string | undefined {
    const session = meeting.session;
    if (!(session instanceof LeaderSession)) return undefined;
    return session.members.find((id) => id !== meeting.participantId && meeting.relayActive.has(id));
  }

  async admit(participantId: string): Promise<void> {
    const { meeting, session } = this.#requireLeader();
    await this.#requireConnection().request({ type: 'admit', participantId });
    if (session.waiting.includes(participantId)) this.#route(session.admit([participantId]));
    else meeting.pendingAdmits.add(participantId);
    this.#writeMeeting({});
  }

  async deny(participantId: string): Promise<void> {
    const { meeting, session } = this.#requireLeader();
    await this.#requireConnection().request({ type: 'deny', participantId });
    meeting.pendingAdmits.delete(participantId);
    this.#route(session.deny(participantId));
  }

  async lockMeeting(locked: boolean): Promise<void> {
    const { session } = this.#requireLeader();
    await this.#requireConnection().request({ type: 'lock', locked });
    this.#route(locked ? session.lock() : session.unlock());
    this.#writeMeeting({});
  }

  async acknowledgeLeaderChange(): Promise<void> {
    this.#writeMeeting({ leaderChanged: false });
  }

  // ---- connection ----

  async #connectLoop(): Promise<void> {
    let delay = this.#opts.reconnectMinMs ?? 200;
    while (!this.#stopped) {
      let connection: RelayConnection;
      try {
        connection = await RelayConnection.connect(
          this.#opts.relayUrl,
          this.#opts.credentials,
          this.#opts.connectTimeoutMs,
          this.#opts.liveness,
        );
      } catch (err) {
        this.#opts.state.raiseAlert('relay', 'warning', 'Relay unreachable: reconnecting');
        this.#opts.log.warn({ err: (err as Error).message, retryInMs: delay }, 'relay connection failed');
        await sleep(delay);
        delay = Math.min(delay * 2, this.#opts.reconnectMaxMs ?? 5000);
        continue;
      }
      delay = this.#opts.reconnectMinMs ?? 200;
      if (this.#stopped) {
        connection.close();
        return;
      }
      this.#connection = connection;
      connection.on('message', (m) => this.#onRelayMessage(m));
      const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
      this.#opts.state.update((s) => {
        s.relay = { connected: true, url: this.#opts.relayUrl };
      });
      this.#opts.state.clearAlert('relay');
      this.#opts.log.info({ url: this.#opts.relayUrl }, 'connected to the relay');
      this.#connectedOnce.resolve();
      const previousRelayId = this.#relayId;
      this.#relayId = connection.relayId;
      if (this.#meeting) void this.#resume(connection, previousRelayId === connection.relayId);
      await closed;
      this.#connection = undefined;
      if (this.#stopped) return;
      this.#opts.state.update((s) => {
        s.relay = { connected: false, url: this.#opts.relayUrl };
      });
      this.#opts.state.raiseAlert('relay', 'warning', 'Relay unreachable: reconnecting');
      this.#opts.log.warn('lost the relay connection; reconnecting');
      if (this.#meeting) {
        this.#opts.media?.disconnect();
        this.#writeMeeting({ status: 'connecting' });
      }
    }
  }

  /** Back into the same meeting with the same participant id after the relay connection dropped. */
  async #resume(connection: RelayConnection, sameRelay: boolean): Promise<void> {
    const meeting = this.#meeting;
    if (!meeting) return;
    const deadline = Date.now() + 30_000;
    while (this.#meeting === meeting && connection.open && Date.now() < deadline) {
      try {
        if (meeting.role === 'leader') {
          await connection.request({
            type: 'create',
            meetingId: meeting.meetingId,
            participantId: meeting.participantId,
          });
          const expected = new Set(
            (meeting.session as LeaderSession).members.filter((id) => id !== meeting.participantId),
          );
          if (meeting.resuming) clearTimeout(meeting.resuming.timer);
          meeting.resuming = {
            expected,
            timer: setTimeout(() => this.#finishResume(meeting), this.#opts.resumeGraceMs ?? 10_000),
          };
          this.#writeMeeting({ status: 'active' });
          this.#startMedia();
          this.#scheduleRekey();
        } else if (sameRelay) {
          await this.#rejoinAfresh(connection, meeting);
        } else {
          const reply = await connection.request({
            type: 'join',
            meetingId: meeting.meetingId,
            participantId: meeting.participantId,
          });
          meeting.admittedAtRelay = reply.type === 'meeting' && reply.status === 'active';
          this.#writeMeeting({ status: meeting.admittedAtRelay ? 'active' : 'waiting' });
          // A joiner never admitted before posts its binding again (the old one died with the relay).
          if (!(meeting.session as ParticipantSession).isMember)
            this.#route((meeting.session as ParticipantSession).start());
        }
        this.#opts.log.info(
          { meetingId: meeting.meetingId, role: meeting.role },
          'resumed the meeting after reconnecting',
        );
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'no-meeting' && code !== 'meeting-exists' && code !== 'participant-exists') {
          this.#opts.log.warn({ err: (err as Error).message }, 'could not resume the meeting');
          this.#endLocally('ended');
          return;
        }
        await sleep(250);
      }
    }
  }

  /**
   * Back at the same relay (not a restart): it dropped our old connection (a cut it noticed through
   * its liveness check, or will soon), and the leader removes us from the key when it does. That old
   * E2EE identity cannot be re-added — every member's copy of the signed list removes it — so we
   * ask to join again as a new participant with a new binding, and the leader admits us as usual.
   */
  async #rejoinAfresh(connection: RelayConnection, meeting: ActiveMeeting): Promise<void> {
    const reply = await connection.request({ type: 'join', meetingId: meeting.meetingId });
    if (reply.type !== 'meeting' || this.#meeting !== meeting) return;
    const session = new ParticipantSession({
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      identity: this.#identity,
      trustIdentity: (id, key) => this.#trustIdentity(id, key),
    });
    meeting.participantId = reply.participantId;
    meeting.session = session;
    meeting.known.set(reply.leader.participantId, reply.leader);
    meeting.admittedAtRelay = reply.status === 'active';
    meeting.e2eeMembers = [];
    meeting.waiting = [];
    this.#writeMeeting({ status: meeting.admittedAtRelay ? 'active' : 'waiting', rekeying: false });
    this.#route(session.start());
    this.#opts.log.info({ participantId: reply.participantId }, 'rejoining the meeting as a new participant');
  }

  #finishResume(meeting: ActiveMeeting): void {
    if (this.#meeting !== meeting || !meeting.resuming) return;
    const missing = [...meeting.resuming.expected];
    meeting.resuming = undefined;
    if (missing.length > 0 && meeting.session instanceof LeaderSession) {
      this.#opts.log.info({ missing }, 'members did not come back after the relay restart; removing them');
      this.#route(meeting.session.remove(missing));
    }
  }

  // ---- relay messages ----

  #onRelayMessage(message: ServerMessage): void {
    // While a create/join reply is being turned into #meeting, later frames (an instant admit, the
    // first E2EE messages) wait, so none is dropped for arriving before the meeting exists.
    if (this.#holding) {
      this.#held.push(message);
      return;
    }
    this.emit('relay', message);
    const meeting = this.#meeting;
    switch (message.type) {
      case 'signal':
        this.#opts.media?.signal(message.payload);
        return;
      case 'e2ee': {
        if (!meeting) return;
        let e2ee: E2eeMessage;
        try {
          e2ee = validateE2eeMessage(message.payload);
        } catch (err) {
          this.#opts.log.warn(
            { err: (err as Error).message, from: message.from },
            'dropped an invalid E2EE message',
          );
          return;
        }
        this.#route(meeting.session.handle(e2ee));
        return;
      }
      case 'meeting':
        if (!meeting || message.meetingId !== meeting.meetingId) return;
        meeting.known.set(message.leader.participantId, message.leader);
        if (message.status === 'active' && !meeting.admittedAtRelay) {
          meeting.admittedAtRelay = true;
          this.#writeMeeting({ status: 'active' });
          this.#startMedia();
        }
        return;
      case 'roster':
        if (!meeting || message.meetingId !== meeting.meetingId) return;
        for (const p of [...message.participants, ...message.waiting]) meeting.known.set(p.participantId, p);
        meeting.waiting = message.waiting;
        meeting.relayActive = new Set(message.participants.map((p) => p.participantId));
        if (meeting.role === 'leader') this.#readmitReturning(meeting);
        this.#writeMeeting({ locked: message.locked });
        return;
      case 'left':
        if (meeting?.session instanceof LeaderSession && message.meetingId === meeting.meetingId) {
          meeting.resuming?.expected.delete(message.participantId);
          this.#writeMeeting({ rekeying: true });
          this.#route(meeting.session.remove(message.participantId));
        }
        return;
      case 'denied':
        if (meeting && message.meetingId === meeting.meetingId) this.#endLocally('denied');
        return;
      case 'ended':
        if (meeting && message.meetingId === meeting.meetingId) this.#endLocally('ended');
        return;
      default:
        return;
    }
  }

  /** Leader after a relay restart: members of our signed list coming back are admitted again. */
  #readmitReturning(meeting: ActiveMeeting): void {
    const session = meeting.session as LeaderSession;
    const members = new Set(session.members);
    for (const w of meeting.waiting) {
      if (!members.has(w.participantId)) continue;
      meeting.resuming?.expected.delete(w.participantId);
      void this.#connection
        ?.request({ type: 'admit', participantId: w.participantId })
        .then(() => this.#scheduleRekey())
        .catch(() => undefined);
    }
    if (meeting.resuming && meeting.resuming.expected.size === 0) {
      clearTimeout(meeting.resuming.timer);
      meeting.resuming = undefined;
    }
  }

  /** One rekey for a burst of returning members. */
  #scheduleRekey(): void {
    if (this.#rekeyDebounce) clearTimeout(this.#rekeyDebounce);
    this.#rekeyDebounce = setTimeout(() => {
      const session = this.#meeting?.session;
      if (session instanceof LeaderSession) {
        this.#writeMeeting({ rekeying: true });
        this.#route(session.rekey());
      }
    }, 150);
  }

  // ---- E2EE outputs ----

  #route(output: SessionOutput): void {
    const connection = this.#connection;
    for (const message of output.outgoing) {
      connection?.send({
        type: 'e2ee',
        ...(message.to !== undefined ? { to: message.to } : {}),
        payload: message as unknown as Record<string, unknown>,
      });
    }
    for (const event of output.events) this.#onE2eeEvent(event);
  }

  #onE2eeEvent(event: SessionEvent): void {
    const meeting = this.#meeting;
    this.emit('e2ee', event);
    switch (event.type) {
      case 'keys':
        // A copy: the E2EE core wipes retired key buffers in place.
        this.keyHistory.push({
          ...event,
          sendKey: Uint8Array.from(event.sendKey),
          receiveKeys: event.receiveKeys.map((k) => ({ ...k, key: Uint8Array.from(k.key) })),
        });
        if (this.keyHistory.length > KEY_EVENTS_KEPT) this.keyHistory.shift();
        this.#opts.media?.keys(event);
        this.emit('keys', event);
        this.#writeMeeting({ keyEpoch: event.epoch });
        return;
      case 'security-code': {
        const previous = this.#opts.state.get().meeting?.securityCode;
        const leaderChanged = previous !== undefined && previous !== event.code;
        this.#writeMeeting({ securityCode: event.code, ...(leaderChanged ? { leaderChanged: true } : {}) });
        return;
      }
      case 'roster':
        if (meeting) meeting.e2eeMembers = event.members.map((m) => m.participantId);
        this.#writeMeeting({});
        this.#opts.media?.labels(
          event.members.map((m) => ({
            senderIndex: m.senderIndex,
            name: meeting?.known.get(m.participantId)?.roomName ?? m.participantId,
          })),
        );
        return;
      case 'leader-changed':
        if (event.isSelf && meeting && meeting.session instanceof ParticipantSession) {
          // The outgoing leader named this room: take over the list and draw a fresh meeting key.
          const { session, output } = LeaderSession.takeOver(meeting.session, {
            ...(this.#opts.rekeyIntervalMs ? { rekeyIntervalMs: this.#opts.rekeyIntervalMs } : {}),
          });
          meeting.session = session;
          meeting.role = 'leader';
          this.#opts.log.info({ meetingId: meeting.meetingId }, 'this room now leads the meeting');
          this.#writeMeeting({ role: 'leader', leaderChanged: true });
          this.#route(output);
        } else {
          this.#writeMeeting({ leaderChanged: true });
        }
        return;
      case 'leader-silent':
        this.#opts.state.raiseAlert(
          'leader-silent',
          'warning',
          'No signed heartbeat from the leading room: the key list may be stale',
        );
        return;
      case 'epoch-certified':
        this.#opts.state.clearAlert('leader-silent');
        this.#writeMeeting({ keyEpoch: event.epoch, rekeying: false });
        return;
      case 'admission-request':
        if (meeting?.session instanceof LeaderSession && meeting.pendingAdmits.delete(event.participantId)) {
          this.#route(meeting.session.admit([event.participantId]));
        }
        return;
      case 'removed':
        this.#endLocally('ended');
        return;
      case 'rejected':
        this.#opts.log.warn(
          { from: event.from, type: event.messageType, code: event.code, reason: event.reason },
          'E2EE message rejected',
        );
        return;
      default:
        return;
    }
  }

  #onTick(): void {
    const meeting = this.#meeting;
    if (!meeting || !this.#connection?.open) return;
    this.#route(meeting.session.tick());
  }

  // ---- identity ----

  /** A binding's identity key must be the key of the certificate the relay verified for that id. */
  #trustIdentity(participantId: string, identityKey: Uint8Array): boolean {
    const meeting = this.#meeting;
    const info = meeting?.known.get(participantId);
    // Someone the relay does not list any more (a leader who handed over and left, in the history a
    // newcomer replays): its entries stand on the signatures of the leaders who signed the list.
    // Everyone present must match the certificate the relay verified.
    if (!info)
      return (
        meeting !== undefined &&
        !meeting.relayActive.has(participantId) &&
        !meeting.waiting.some((w) => w.participantId === participantId)
      );
    try {
      const spki = Buffer.from(new x509.X509Certificate(info.certificate).publicKey.rawData);
      return Buffer.compare(spki.subarray(spki.length - 32), Buffer.from(identityKey)) === 0;
    } catch {
      return false;
    }
  }

  // ---- state ----

  #startMedia(): void {
    if (!this.#opts.media || !this.#connection) return;
    this.#opts.media.connect();
    this.#connection.send({ type: 'media', enabled: true });
  }

  /** A fresh PeerConnection on both ends: the SFU drops the old one and offers again. */
  #restartMedia(): void {
    const meeting = this.#meeting;
    if (!meeting?.admittedAtRelay || !this.#connection?.open) return;
    this.#connection.send({ type: 'media', enabled: false });
    this.#startMedia();
  }

  #endLocally(status: 'ended' | 'denied'): void {
    const meeting = this.#meeting;
    if (!meeting) return;
    if (meeting.resuming) clearTimeout(meeting.resuming.timer);
    this.#meeting = undefined;
    this.#opts.state.clearAlert('leader-silent');
    this.#opts.media?.disconnect();
    this.#opts.state.update((s) => {
      if (s.meeting) s.meeting = { ...s.meeting, status, rekeying: false, waiting: [] };
      s.phase = 'idle';
    });
  }

  #writeMeeting(patch: Partial<MeetingView>): void {
    const meeting = this.#meeting;
    if (!meeting) return;
    const session = meeting.session;
    this.#opts.state.update((s) => {
      const previous = s.meeting?.meetingId === meeting.meetingId ? s.meeting : undefined;
      const leaderId =
        session instanceof LeaderSession
          ? meeting.participantId
          : session.leaderId || previous?.leader?.participantId;
      const leaderInfo = leaderId ? meeting.known.get(leaderId) : undefined;
      const roster = this.#roster(meeting);
      const view: MeetingView = {
        meetingId: meeting.meetingId,
        role: meeting.role,
        status: previous?.status ?? 'connecting',
        roster,
        waiting:
          meeting.role === 'leader'
            ? meeting.waiting
                .filter((w) => !roster.some((r) => r.participantId === w.participantId))
                .map(verified)
            : [],
        locked: previous?.locked ?? false,
        rekeying: previous?.rekeying ?? false,
        leaderChanged: previous?.leaderChanged ?? false,
        ...(leaderInfo ? { leader: verified(leaderInfo) } : {}),
        ...(previous?.securityCode ? { securityCode: previous.securityCode } : {}),
        ...(previous?.keyEpoch !== undefined ? { keyEpoch: previous.keyEpoch } : {}),
        ...patch,
      };
      s.meeting = view;
      s.phase = 'in-meeting';
    });
  }

  /** Who holds the key: the E2EE participant list, labelled with the relay-verified certificates. */
  #roster(meeting: ActiveMeeting): RosterEntry[] {
    const session = meeting.session;
    const ids = session instanceof LeaderSession ? session.members : meeting.e2eeMembers;
    const leaderId = session instanceof LeaderSession ? meeting.participantId : session.leaderId;
    return ids.map((id) => {
      const info = meeting.known.get(id);
      return {
        participantId: id,
        deviceId: info?.deviceId ?? '',
        roomName: info?.roomName ?? 'unknown room',
        org: info?.org ?? '',
        isLeader: id === leaderId,
        isSelf: id === meeting.participantId,
      };
    });
  }

  #requireConnection(): RelayConnection {
    const connection = this.#connection;
    if (!connection?.open) throw new Error('the relay is unreachable right now');
    return connection;
  }

  #requireLeader(): { meeting: ActiveMeeting; session: LeaderSession } {
    const meeting = this.#meeting;
    if (!meeting || !(meeting.session instanceof LeaderSession))
      throw new Error('only the leading room can do this');
    return { meeting, session: meeting.session };
  }
}

function verified(p: ParticipantInfo) {
  return { participantId: p.participantId, deviceId: p.deviceId, roomName: p.roomName, org: p.org };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
