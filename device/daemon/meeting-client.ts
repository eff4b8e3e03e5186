// The daemon's meeting client: keeps an authenticated connection to the relay (reconnecting with
// backoff), starts/joins/leaves meetings, admits and denies as leader, drives the E2EE state
// machines (src/core/e2ee) and hands their keys and the SFU's signalling to the media engine.
// It writes the `meeting` and `relay` slices of the daemon state.
//
// After a relay restart every device reconnects with the same meeting id and participant id: the
// leader re-creates the meeting, re-admits the members of its signed participant list as they come
// back, removes those who do not within `resumeGraceMs`, and rekeys — so the E2EE sessions and the
// security code carry on, and media resumes on fresh PeerConnections.
//
// Trust: every identity is checked on this device (meeting-trust.ts) against the anchors pinned at
// enrollment; names on the wall come only from those checks (meeting-view.ts). Nothing the relay
// says about who someone is (its roster's names, its waiting list, its `leader`) is shown or trusted.
// Hostile input never ends the daemon: every relay message handler and timer callback is guarded.
import { X509Certificate } from 'node:crypto';
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
import type { ServerMessage } from '../../src/core/protocol/relay.js';
import { RelayRedirect, type RelayReply, type RelayRequest } from '../../src/core/protocol/relay-requests.js';
import type { TrustStore } from '../../src/pki/trust-store.js';
import type { Logger } from '../../src/util/log.js';
import type { RoomActions } from './actions.js';
import type { MediaPort } from './media-port.js';
import { MeetingTrust } from './meeting-trust.js';
import {
  copyKeysEvent,
  galleryLabels,
  type MeetingFacts,
  meetingView,
  type NamedMember,
  nameMembers,
  type RosterMemberInfo,
} from './meeting-view.js';
import {
  type DeviceCredentials,
  type LivenessOptions,
  RelayConnection,
  RelayRequestError,
} from './relay-connection.js';
import { RelayEndpoints } from './relay-endpoints.js';
import type { MeetingView, StateStore, VerifiedIdentity } from './state.js';

export interface MeetingClientOptions {
  /** The relay (one node, or one entry of a clustered relay). */
  relayUrl?: string;
  /**
   * Entry nodes of a clustered relay (replaces relayUrl): tried in turn, a dead one skipped.
   * Redirects are followed only to an entry, an entry's host name, or `relayRedirectAllow`.
   */
  relayUrls?: string[];
  /** Further origins (ws[s]://host:port) a redirect may send this room to. */
  relayRedirectAllow?: string[];
  credentials: DeviceCredentials;
  /** The trust anchors pinned at enrollment: every participant's certificate is checked against them. */
  trust: TrustStore;
  state: StateStore;
  log: Logger;
  media?: MediaPort;
  /** Backoff between reconnection attempts (ms). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long a leader waits after a relay restart for members to come back. */
  resumeGraceMs?: number;
  /** E2EE tick (heartbeats, rekey timers, key freshness; default 250 ms so a 1.5 s grace stops within 2 s). */
  tickMs?: number;
  /** Leader: rekey interval (default 5 minutes, as Zoom). */
  rekeyIntervalMs?: number;
  /** Leader: signed heartbeat interval (default 10 s, the E2EE core's). */
  heartbeatIntervalMs?: number;
  /** Participant: 'leader-silent' after this long without a valid heartbeat (default: the core's). */
  leaderSilentAfterMs?: number;
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
  /** Leader: joiners whose binding and certificate verified here ('admission-request'), by id. */
  requests: Map<string, VerifiedIdentity>;
  /** Leader: ids the relay lists as waiting (used only to re-admit returning members, never shown). */
  relayWaiting: string[];
  /** Ids the relay lists at all: a verified request of someone who left the relay is not shown. */
  relayPresent: Set<string>;
  /** Leader after a relay restart: members expected back, and when we stop waiting. */
  resuming?: { expected: Set<string>; timer: NodeJS.Timeout };
  admittedAtRelay: boolean;
  /** The security code of the signed list; shown only while its leader's certificate verified here. */
  securityCode?: string;
  /** Admitted participants connected to the relay (from its last roster). */
  relayActive: Set<string>;
  /** Whose screen the relay forwards (its roster's `sharing`): only picks the wall's content sender. */
  sharing: string | null;
  /** The signed list's members as the last E2EE roster event gave them (for relabelling). */
  members?: readonly RosterMemberInfo[];
}

const KEY_EVENTS_KEPT = 64;
const DEFAULT_TICK_MS = 250;
/** Close code of a session the relay ended because the certificate was revoked (docs/relay.md). */
const RELAY_CLOSE_REVOKED = 4403;
const CERTIFICATE_REVOKED_ALERT = "This room's certificate was revoked: contact IT";

/** The wall's words for a relay refusal caused by this room's credentials or the relay's CRL. */
function refusalAlert(code: string): string | undefined {
  if (code === 'certificate-revoked') return CERTIFICATE_REVOKED_ALERT;
  if (code === 'certificate-expired')
    return "This room's certificate has expired: it renews with provisioning";
  if (code === 'crl-stale') return 'The relay has no current revocation list: it refuses new sessions';
  if (code.startsWith('certificate-')) return `The relay refused this room's certificate (${code})`;
  return undefined;
}

/** Relay codes that mean "that id is someone else's": retried until the deadline, then an alert. */
const ID_TAKEN = new Set(['meeting-exists', 'participant-exists']);
/**
 * Resume codes retried until the deadline: the meeting is not back yet (its leader re-creates it),
 * or a clustered relay cannot place it right now (Redis unreachable, no live node).
 */
const RESUME_RETRY = new Set(['no-meeting', 'cluster-unavailable', 'no-node', ...ID_TAKEN]);
/** Close code of a clustered relay node that no longer hosts the meeting (CLOSE.moved). */
const RELAY_CLOSE_MOVED = 4012;
/** Fixed words: nothing a redirect says (its URL, its meeting) is ever shown on the wall. */
const REDIRECT_REFUSED_ALERT = 'The relay tried to send this room to a server it does not trust';

/** A redirect this room did not follow (the reason is for the log). */
export class RedirectRefused extends Error {
  readonly code = 'redirect-refused';
  constructor(readonly reason: string) {
    super(`refused a relay redirect: ${reason}`);
  }
}
const RESUME_DEADLINE_MS = 30_000;
/** A relay's `rate-limited` answer to a resume: asked again after 1 s, then 2 s, 4 s, at most 5 s. */
const RATE_LIMITED = 'rate-limited';
const RATE_LIMITED_MIN_MS = 1_000;
const RATE_LIMITED_MAX_MS = 5_000;

export class MeetingClient
  extends EventEmitter<{ keys: [KeysEvent]; e2ee: [SessionEvent]; relay: [ServerMessage] }>
  implements MeetingActions
{
  readonly #opts: MeetingClientOptions;
  readonly #identity: IdentityKeyPair;
  /** This device's certificate (DER), sent in every E2EE binding. */
  readonly #certificate: Uint8Array;
  readonly #trust: MeetingTrust;
  #connection: RelayConnection | undefined;
  readonly #endpoints: RelayEndpoints;
  /** Resolved with the next connection (a create/join following a redirect waits for it). */
  #connectionWaiters: ((c: RelayConnection) => void)[] = [];
  /** The current connection is being closed on purpose to follow a redirect. */
  #moving = false;
  #meeting: ActiveMeeting | undefined;
  #stopped = false;
  #tick: NodeJS.Timeout | undefined;
  #rekeyDebounce: NodeJS.Timeout | undefined;
  #connectedOnce: { resolve: () => void; promise: Promise<void> };
  /**
   * The relay instance (node) where this room last entered its meeting: back on the same one, it was
   * dropped (rejoin as a new participant); another one (a restart, another node) → resume.
   */
  #meetingRelayId: string | undefined;
  /** Nesting depth of #holdingMessages: relay messages wait while it is above zero. */
  #holding = 0;
  #held: ServerMessage[] = [];
  /** Every keys event this device received (tests: what a departed room could still decrypt). */
  readonly keyHistory: KeysEvent[] = [];

  constructor(opts: MeetingClientOptions) {
    super();
    this.#opts = opts;
    const entries = opts.relayUrls?.length ? opts.relayUrls : opts.relayUrl ? [opts.relayUrl] : [];
    this.#endpoints = new RelayEndpoints(entries, opts.relayRedirectAllow ?? []);
    this.#identity = IdentityKeyPair.fromKeyObject(opts.credentials.identityKey);
    this.#certificate = new Uint8Array(new X509Certificate(opts.credentials.certificatePem).raw);
    this.#trust = new MeetingTrust(opts.trust, opts.log);
    let resolve = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#connectedOnce = { resolve, promise };
    opts.media?.onSignal((payload) =>
      this.#guard('media signal', () => this.#connection?.send({ type: 'signal', payload })),
    );
    opts.media?.onReset?.(() => this.#guard('media reset', () => this.#restartMedia()));
  }

  /** Starts the connection loop; resolves once connected the first time (or keeps trying). */
  start(): Promise<void> {
    void this.#connectLoop();
    this.#tick = setInterval(
      () => this.#guard('E2EE tick', () => this.#onTick()),
      this.#opts.tickMs ?? DEFAULT_TICK_MS,
    );
    return this.#connectedOnce.promise;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#tick) clearInterval(this.#tick);
    if (this.#rekeyDebounce) clearTimeout(this.#rekeyDebounce);
    if (this.#meeting?.resuming) clearTimeout(this.#meeting.resuming.timer);
    this.#opts.media?.endMeeting?.(); // the meeting's keys never outlive it
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

  /** The code on the wall: undefined while the leader's certificate has not verified here. */
  get securityCode(): string | undefined {
    return this.#meeting ? this.#opts.state.get().meeting?.securityCode : undefined;
  }

  async startMeeting(): Promise<{ meetingId: string }> {
    return this.#holdingMessages(() => this.#startMeeting());
  }

  async joinMeeting(meetingId: string): Promise<void> {
    return this.#holdingMessages(() => this.#joinMeeting(meetingId));
  }

  /**
   * Runs a request and what its reply sets up while relay messages wait: ws hands every frame of a
   * TCP chunk over synchronously, so a reply's continuation (after `await`) would otherwise run after
   * the messages that followed the reply in the same chunk (an instant admit, a roster).
   */
  async #holdingMessages<T>(action: () => Promise<T>): Promise<T> {
    this.#holding++;
    try {
      return await action();
    } finally {
      this.#holding--;
      if (this.#holding === 0) this.#flushHeld();
    }
  }

  #flushHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const m of held) this.#guard('relay message', () => this.#onRelayMessage(m));
  }

  async #startMeeting(): Promise<{ meetingId: string }> {
    if (this.#meeting) throw new Error('already in a meeting: leave it first');
    const { reply, connection } = await this.#requestFollowing({ type: 'create' });
    if (reply.type !== 'meeting') throw new Error('the relay did not create a meeting');
    if (this.#meeting) throw new Error('already in a meeting: leave it first');
    this.#meetingRelayId = connection.relayId;
    this.#trust.forget();
    this.#checkOwnCertificate(reply.participantId);
    const { session, output } = LeaderSession.create({
      ...this.#sessionOptions(reply.meetingId, reply.participantId),
      ...this.#leaderOptions(),
    });
    this.#meeting = {
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      role: 'leader',
      session,
      requests: new Map(),
      relayWaiting: [],
      relayPresent: new Set([reply.participantId]),
      admittedAtRelay: true,
      relayActive: new Set([reply.participantId]),
      sharing: null,
    };
    this.#writeMeeting({ status: 'active', rekeying: false });
    this.#route(output);
    this.#startMedia();
    this.#opts.log.info({ meetingId: reply.meetingId }, 'meeting started; this room leads');
    return { meetingId: reply.meetingId };
  }

  async #joinMeeting(meetingId: string): Promise<void> {
    if (this.#meeting) throw new Error('already in a meeting: leave it first');
    const id = meetingId.trim().toLowerCase();
    const { reply, connection } = await this.#requestFollowing({ type: 'join', meetingId: id }, id);
    if (reply.type !== 'meeting') throw new Error('the relay did not accept the join');
    if (this.#meeting) throw new Error('already in a meeting: leave it first');
    this.#meetingRelayId = connection.relayId;
    this.#trust.forget();
    this.#checkOwnCertificate(reply.participantId);
    const session = new ParticipantSession(this.#sessionOptions(reply.meetingId, reply.participantId));
    this.#meeting = {
      meetingId: reply.meetingId,
      participantId: reply.participantId,
      role: 'participant',
      session,
      requests: new Map(),
      relayWaiting: [],
      relayPresent: new Set(),
      admittedAtRelay: reply.status === 'active',
      relayActive: new Set(),
      sharing: null,
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

  /**
   * The first eligible other member (lowest sender index) still connected to the relay whose
   * certificate verified here as a room's: people never lead (issue 12), so a meeting of one room and
   * people ends.
   */
  #successor(meeting: ActiveMeeting): string | undefined {
    const session = meeting.session;
    if (!(session instanceof LeaderSession)) return undefined;
    const rooms = new Set(
      this.#named(meeting)
        .filter((n) => n.identity?.kind === 'room')
        .map((n) => n.member.participantId),
    );
    // The core's own list of who may lead (trusted, not a person), checked against ours as well.
    return session
      .eligibleSuccessors()
      .find((id) => id !== meeting.participantId && meeting.relayActive.has(id) && rooms.has(id));
  }

  /** Admits only a joiner whose signed binding and certificate verified on this device. */
  async admit(participantId: string): Promise<void> {
    const { meeting, session } = this.#requireLeader();
    if (!meeting.requests.has(participantId) || !session.waiting.includes(participantId))
      throw new Error('no verified join request from this participant');
    await this.#requireConnection().request({ type: 'admit', participantId });
    if (this.#meeting !== meeting || !session.waiting.includes(participantId)) return;
    this.#route(session.admit([participantId]));
    meeting.requests.delete(participantId);
    this.#writeMeeting({});
  }

  async deny(participantId: string): Promise<void> {
    const { meeting, session } = this.#requireLeader();
    await this.#requireConnection().request({ type: 'deny', participantId });
    meeting.requests.delete(participantId);
    this.#route(session.deny(participantId));
    this.#writeMeeting({});
  }

  async lockMeeting(locked: boolean): Promise<void> {
    const { session } = this.#requireLeader();
    await this.#requireConnection().request({ type: 'lock', locked });
    this.#route(locked ? session.lock() : session.unlock());
    this.#writeMeeting({});
  }

  /**
   * Asks the relay to forward (or stop forwarding) this participant's content m-line to the others.
   * Only a participant whose SFU offer has one can share — people (the browser, or a test standing in
   * for it); the relay refuses a room ('no-content').
   */
  async shareScreen(enabled: boolean): Promise<void> {
    if (!this.#meeting) throw new Error('not in a meeting');
    await this.#requireConnection().request({ type: 'share', enabled });
  }

  async acknowledgeLeaderChange(): Promise<void> {
    this.#writeMeeting({ leaderChanged: false });
  }

  // ---- redirects (clustered relay) ----

  /**
   * A create or join that follows the relay's redirects: each is checked (relay-endpoints.ts), its
   * target pinned, and the request sent again there with the redirect's meeting id — which, once
   * known (a join's, or the first redirect's of a create), may not change along the way.
   */
  async #requestFollowing(
    request: Extract<RelayRequest, { type: 'create' | 'join' }>,
    expectedMeetingId?: string,
  ): Promise<{ reply: RelayReply; connection: RelayConnection }> {
    let connection = this.#requireConnection();
    let expected = expectedMeetingId;
    for (let hops = 0; ; hops++) {
      try {
        const reply = await connection.request(request);
        this.#endpoints.settled();
        return { reply, connection };
      } catch (err) {
        if (!(err instanceof RelayRedirect)) throw err;
        // Our own count too: a pinned node that fails resets the endpoints' count.
        if (hops >= this.#endpoints.maxRedirects) this.#refuseRedirect(err, 'too many redirects in a row');
        this.#followOrRefuse(err, expected);
        expected = err.meetingId;
        request = { ...request, meetingId: err.meetingId };
        connection = await this.#reconnectForRedirect(connection);
      }
    }
  }

  /** Pins the redirect's target if it may be followed; else refuses it (alert, log) and throws. */
  #followOrRefuse(redirect: RelayRedirect, expectedMeetingId?: string): void {
    const verdict = this.#endpoints.redirect(redirect.url, redirect.meetingId, expectedMeetingId);
    if (!verdict.ok) this.#refuseRedirect(redirect, verdict.reason);
    this.#opts.log.info(
      { url: this.#endpoints.pinned, meetingId: redirect.meetingId, hops: this.#endpoints.hops },
      'following a relay redirect to the node hosting the meeting',
    );
  }

  #refuseRedirect(redirect: RelayRedirect, reason: string): never {
    this.#reportRefusedRedirect(redirect, reason);
    throw new RedirectRefused(reason);
  }

  #reportRefusedRedirect(redirect: RelayRedirect, reason: string): void {
    this.#endpoints.unpin();
    this.#opts.state.raiseAlert('relay', 'error', REDIRECT_REFUSED_ALERT);
    // The log keeps what the relay said (truncated); the wall shows fixed words only.
    this.#opts.log.warn(
      { reason, url: redirect.url.slice(0, 200), meetingId: redirect.meetingId },
      'refused a relay redirect',
    );
  }

  /** Closes `old` so the connection loop connects to the pinned node; resolves with that connection. */
  #reconnectForRedirect(old: RelayConnection): Promise<RelayConnection> {
    const timeoutMs = 2 * (this.#opts.connectTimeoutMs ?? 10_000);
    return new Promise<RelayConnection>((resolve, reject) => {
      const waiter = (c: RelayConnection) => {
        clearTimeout(timer);
        resolve(c);
      };
      const timer = setTimeout(() => {
        this.#connectionWaiters = this.#connectionWaiters.filter((w) => w !== waiter);
        reject(new Error('the relay node hosting the meeting is unreachable right now'));
      }, timeoutMs);
      this.#connectionWaiters.push(waiter);
      this.#dropForRedirect(old);
    });
  }

  #dropForRedirect(old: RelayConnection): void {
    if (!old.open) return; // already gone: the loop reconnects, to the pinned node
    this.#moving = true;
    old.close();
    // A node that never answers the close handshake does not hold the room back.
    setTimeout(() => old.terminate(), 500).unref();
  }

  // ---- connection ----

  async #connectLoop(): Promise<void> {
    const minDelay = this.#opts.reconnectMinMs ?? 200;
    let delay = minDelay;
    while (!this.#stopped) {
      let connection: RelayConnection;
      const url = this.#endpoints.next();
      try {
        connection = await RelayConnection.connect(
          url,
          this.#opts.credentials,
          this.#opts.connectTimeoutMs,
          this.#opts.liveness,
        );
      } catch (err) {
        const refusal = err instanceof RelayRequestError ? refusalAlert(err.code) : undefined;
        // A pinned node that cannot be reached sends us back to the entries; a dead entry makes way
        // for the next one at once; only a whole round of failures backs off.
        const failed = this.#endpoints.failed(url);
        // Refused for what this room holds (revoked, expired, the relay's CRL stale): no point in
        // hammering the relay; say why on the wall and retry slowly.
        if (refusal) delay = this.#opts.reconnectMaxMs ?? 5000;
        this.#opts.state.raiseAlert(
          'relay',
          refusal ? 'error' : 'warning',
          refusal ?? 'Relay unreachable: reconnecting',
        );
        const wait = refusal || failed === 'round' ? delay : failed === 'pinned' ? minDelay : 0;
        this.#opts.log.warn(
          { err: (err as Error).message, url: this.#endpoints.display(url), failed, retryInMs: wait },
          'relay connection failed',
        );
        if (wait > 0) await sleep(wait);
        if (refusal || failed === 'round') delay = Math.min(delay * 2, this.#opts.reconnectMaxMs ?? 5000);
        continue;
      }
      delay = minDelay;
      this.#endpoints.connected(url);
      if (this.#stopped) {
        connection.close();
        return;
      }
      this.#connection = connection;
      connection.on('message', (m) => this.#guard('relay message', () => this.#onRelayMessage(m)));
      let closeCode = 0;
      const closed = new Promise<void>((resolve) =>
        connection.once('close', (code) => {
          closeCode = code;
          resolve();
        }),
      );
      // Shown on screens: an entry as configured, a redirect target by its origin only.
      const shown = this.#endpoints.display(url);
      this.#opts.state.update((s) => {
        s.relay = { connected: true, url: shown };
      });
      this.#opts.state.clearAlert('relay');
      this.#opts.log.info({ url: shown }, 'connected to the relay');
      this.#connectedOnce.resolve();
      for (const waiter of this.#connectionWaiters.splice(0)) waiter(connection);
      if (this.#meeting)
        void this.#resume(connection, this.#meetingRelayId === connection.relayId).catch((err: Error) =>
          this.#opts.log.error({ err: err.message }, 'resuming the meeting failed'),
        );
      await closed;
      this.#connection = undefined;
      if (this.#stopped) return;
      this.#opts.state.update((s) => {
        s.relay = { connected: false, url: shown };
      });
      const moving = this.#moving;
      this.#moving = false;
      if (moving) {
        // Closed on purpose to follow a redirect: straight on to the pinned node, no alert.
        this.#opts.log.info('reconnecting to the node a redirect named');
      } else if (closeCode === RELAY_CLOSE_MOVED) {
        // This node no longer hosts the meeting (drained, or placed elsewhere): through the entries
        // again; the meeting's new node is where they redirect us.
        this.#endpoints.unpin();
        this.#opts.state.raiseAlert('relay', 'warning', 'Relay unreachable: reconnecting');
        this.#opts.log.warn('the relay node moved our meeting away; reconnecting through the entries');
      } else if (closeCode === RELAY_CLOSE_REVOKED) {
        this.#opts.state.raiseAlert('relay', 'error', CERTIFICATE_REVOKED_ALERT);
        this.#opts.log.error("the relay ended our session: this room's certificate is revoked");
        delay = this.#opts.reconnectMaxMs ?? 5000;
      } else {
        this.#opts.state.raiseAlert('relay', 'warning', 'Relay unreachable: reconnecting');
        this.#opts.log.warn('lost the relay connection; reconnecting');
      }
      if (this.#meeting && !moving) {
        this.#opts.media?.disconnect();
        this.#writeMeeting({ status: 'connecting' });
      }
      if (closeCode === RELAY_CLOSE_REVOKED) await sleep(delay);
    }
  }

  /** Back into the same meeting with the same participant id after the relay connection dropped. */
  async #resume(connection: RelayConnection, sameRelay: boolean): Promise<void> {
    const meeting = this.#meeting;
    if (!meeting) return;
    const deadline = Date.now() + RESUME_DEADLINE_MS;
    let lastCode = '';
    let rateLimitedWait = RATE_LIMITED_MIN_MS;
    // A relay that keeps saying 'rate-limited' is asked again, slowly, past the deadline: a busy relay
    // is no reason to end a meeting (and asking once every few seconds costs it nothing).
    while (
      this.#meeting === meeting &&
      connection.open &&
      (Date.now() < deadline || lastCode === RATE_LIMITED)
    ) {
      try {
        // Messages after the reply (a roster naming members already back, an instant admit) are
        // handled after what the reply sets up (`resuming`, `admittedAtRelay`), never before.
        await this.#holdingMessages(() => this.#resumeOnce(connection, meeting, sameRelay));
        this.#endpoints.settled();
        if (this.#meeting === meeting) this.#meetingRelayId = connection.relayId;
        this.#opts.log.info(
          { meetingId: meeting.meetingId, role: meeting.role },
          'resumed the meeting after reconnecting',
        );
        return;
      } catch (err) {
        if (err instanceof RelayRedirect) {
          // Another node hosts it now: follow (the loop resumes there), but only to a trusted node
          // and never into another meeting — else the meeting ends here, with an alert.
          const verdict = this.#endpoints.redirect(err.url, err.meetingId, meeting.meetingId);
          if (!verdict.ok) {
            this.#reportRefusedRedirect(err, verdict.reason);
            this.#resumeRefused(meeting, 'redirect-refused');
            return;
          }
          this.#opts.log.info(
            { url: this.#endpoints.pinned, meetingId: err.meetingId, hops: this.#endpoints.hops },
            'following a relay redirect to resume the meeting',
          );
          this.#dropForRedirect(connection);
          return;
        }
        // The connection closed under the request (a draining node, a cut): that is no answer. The
        // next connection resumes.
        if (!connection.open) {
          this.#opts.log.info(
            { err: (err as Error).message },
            'the relay connection closed while resuming; the next one resumes',
          );
          return;
        }
        const code = err instanceof RelayRequestError ? err.code : '';
        lastCode = code;
        if (code === RATE_LIMITED) {
          this.#opts.log.info({ retryInMs: rateLimitedWait }, 'the relay rate-limited our resume; retrying');
          await sleep(rateLimitedWait);
          rateLimitedWait = Math.min(rateLimitedWait * 2, RATE_LIMITED_MAX_MS);
          continue;
        }
        // Only the relay's explicit refusal ends the meeting; a failure without a code (a reply we
        // could not use) is retried like 'no-meeting' until the deadline.
        if (code !== '' && !RESUME_RETRY.has(code)) {
          this.#opts.log.warn({ err: (err as Error).message, code }, 'could not resume the meeting');
          this.#resumeRefused(meeting, code);
          return;
        }
        await sleep(250);
      }
    }
    // Out of time while the relay still said the id is taken (or the meeting is gone): say so.
    if (this.#meeting === meeting && connection.open) {
      this.#opts.log.warn({ code: lastCode }, 'gave up resuming the meeting');
      this.#resumeRefused(meeting, lastCode);
    }
  }

  /** One resume request and what its reply sets up (run while relay messages are held). */
  async #resumeOnce(connection: RelayConnection, meeting: ActiveMeeting, sameRelay: boolean): Promise<void> {
    if (meeting.role === 'leader') {
      await connection.request({
        type: 'create',
        meetingId: meeting.meetingId,
        participantId: meeting.participantId,
      });
      if (this.#meeting !== meeting) return;
      const expected = new Set(
        (meeting.session as LeaderSession).members.filter((id) => id !== meeting.participantId),
      );
      if (meeting.resuming) clearTimeout(meeting.resuming.timer);
      meeting.resuming = {
        expected,
        timer: setTimeout(
          () => this.#guard('resume grace', () => this.#finishResume(meeting)),
          this.#opts.resumeGraceMs ?? 10_000,
        ),
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
      if (this.#meeting !== meeting) return;
      meeting.admittedAtRelay = reply.type === 'meeting' && reply.status === 'active';
      this.#writeMeeting({ status: meeting.admittedAtRelay ? 'active' : 'waiting' });
      // A joiner never admitted before posts its binding again (the old one died with the relay).
      if (!(meeting.session as ParticipantSession).isMember)
        this.#route((meeting.session as ParticipantSession).start());
    }
  }

  /** A resume the relay refused is never silent: an alert on the screen, then the meeting ends here. */
  #resumeRefused(meeting: ActiveMeeting, code: string): void {
    const taken = code === 'id-bound' || ID_TAKEN.has(code);
    this.#opts.state.raiseAlert(
      'resume',
      'error',
      taken
        ? 'Could not rejoin the meeting: its id is held by another device'
        : 'Could not rejoin the meeting after the connection dropped',
    );
    if (this.#meeting === meeting) this.#endLocally('ended');
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
    this.#checkOwnCertificate(reply.participantId);
    const session = new ParticipantSession(this.#sessionOptions(reply.meetingId, reply.participantId));
    meeting.participantId = reply.participantId;
    meeting.session = session;
    meeting.admittedAtRelay = reply.status === 'active';
    meeting.requests.clear();
    meeting.relayWaiting = [];
    meeting.members = undefined;
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
    if (this.#holding > 0) {
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
        // Its `leader` field is the relay's word: the leader shown comes from the verified E2EE list.
        if (!meeting || message.meetingId !== meeting.meetingId) return;
        if (message.status === 'active' && !meeting.admittedAtRelay) {
          meeting.admittedAtRelay = true;
          this.#writeMeeting({ status: 'active' });
          this.#startMedia();
        }
        return;
      case 'roster':
        // The relay's names are never shown; its ids only steer relay-level admission and presence.
        if (!meeting || message.meetingId !== meeting.meetingId) return;
        meeting.relayWaiting = message.waiting.map((w) => w.participantId);
        meeting.relayPresent = new Set([
          ...meeting.relayWaiting,
          ...message.participants.map((p) => p.participantId),
        ]);
        meeting.relayActive = new Set(message.participants.map((p) => p.participantId));
        if ((message.sharing ?? null) !== meeting.sharing) {
          meeting.sharing = message.sharing ?? null;
          this.#labelMedia(meeting);
        }
        if (meeting.role === 'leader') this.#readmitReturning(meeting);
        this.#writeMeeting({ locked: message.locked });
        return;
      case 'left':
        if (meeting?.session instanceof LeaderSession && message.meetingId === meeting.meetingId) {
          meeting.resuming?.expected.delete(message.participantId);
          meeting.requests.delete(message.participantId);
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
    for (const id of meeting.relayWaiting) {
      if (!members.has(id)) continue;
      meeting.resuming?.expected.delete(id);
      void this.#connection
        ?.request({ type: 'admit', participantId: id })
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
    this.#rekeyDebounce = setTimeout(
      () =>
        this.#guard('rekey', () => {
          const session = this.#meeting?.session;
          if (session instanceof LeaderSession) {
            this.#writeMeeting({ rekeying: true });
            this.#route(session.rekey());
          }
        }),
      150,
    );
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
    const e = event;
    switch (e.type) {
      case 'keys':
        this.#onKeys(e);
        return;
      case 'security-code': {
        if (!meeting) return;
        const previous = meeting.securityCode;
        const leaderChanged = previous !== undefined && previous !== e.code;
        meeting.securityCode = e.code;
        this.#writeMeeting(leaderChanged ? { leaderChanged: true } : {});
        return;
      }
      case 'roster': {
        this.#writeMeeting({});
        if (meeting) {
          meeting.members = e.members;
          this.#labelMedia(meeting);
        }
        return;
      }
      case 'leader-changed':
        if (e.isSelf && meeting && meeting.session instanceof ParticipantSession) {
          // The outgoing leader named this room: take over the list and draw a fresh meeting key.
          const { session, output } = LeaderSession.takeOver(meeting.session, this.#leaderOptions());
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
        this.#leaderLost();
        return;
      case 'epoch-certified':
        this.#writeMeeting({ keyEpoch: e.epoch, rekeying: false });
        return;
      case 'send-suspended':
        if (e.reason === 'leader-lost') this.#leaderLost();
        else this.#writeMeeting({ rekeying: true });
        return;
      case 'send-resumed':
        this.#opts.state.clearAlert(LEADER_LOST_ALERT);
        this.#writeMeeting({ rekeying: false, leaderLost: false, keyEpoch: e.epoch });
        return;
      case 'identity-refused':
        this.#opts.log.warn(
          {
            participantId: e.participantId,
            reason: e.reason,
            certificate: this.#trust.refusalReason(e.participantId),
          },
          'refused an unverified participant',
        );
        this.#opts.state.raiseAlert('identity-refused', 'warning', 'An unverified participant was refused');
        return;
      case 'admission-request': {
        // Only a joiner whose binding verified through trustIdentity reaches here; its name comes
        // from the certificate checked then (or the one the event carries).
        if (!(meeting?.session instanceof LeaderSession)) return;
        const request = e;
        const identity = this.#trust.identityOf(
          request.participantId,
          request.identityKey,
          request.certificate,
        );
        if (!identity) {
          this.#opts.log.warn(
            { participantId: request.participantId },
            'admission request without a verified certificate',
          );
          return;
        }
        meeting.requests.set(request.participantId, identity);
        this.#writeMeeting({});
        return;
      }
      case 'removed':
        this.#endLocally('ended');
        return;
      case 'rejected':
        this.#opts.log.warn(
          { from: e.from, type: e.messageType, code: e.code, reason: e.reason },
          'E2EE message rejected',
        );
        return;
      default:
        return;
    }
  }

  /** Hands keys to the media engine as they are: `sending: false` makes it send nothing. */
  #onKeys(event: KeysEvent): void {
    this.keyHistory.push(copyKeysEvent(event));
    if (this.keyHistory.length > KEY_EVENTS_KEPT) this.keyHistory.shift();
    this.#opts.media?.keys(event);
    this.emit('keys', event);
    this.#writeMeeting({ keyEpoch: event.epoch });
  }

  #leaderLost(): void {
    this.#opts.state.raiseAlert(LEADER_LOST_ALERT, 'warning', 'Lost contact with the meeting leader');
    this.#writeMeeting({ leaderLost: true });
  }

  #onTick(): void {
    const meeting = this.#meeting;
    if (!meeting || !this.#connection?.open) return;
    this.#route(meeting.session.tick());
  }

  // ---- identity ----

  #leaderOptions() {
    return {
      ...(this.#opts.rekeyIntervalMs ? { rekeyIntervalMs: this.#opts.rekeyIntervalMs } : {}),
      ...(this.#opts.heartbeatIntervalMs ? { heartbeatIntervalMs: this.#opts.heartbeatIntervalMs } : {}),
    };
  }

  #sessionOptions(meetingId: string, participantId: string) {
    return {
      meetingId,
      participantId,
      identity: this.#identity,
      certificate: this.#certificate,
      ...(this.#opts.leaderSilentAfterMs ? { leaderSilentAfterMs: this.#opts.leaderSilentAfterMs } : {}),
      // The verdict names rooms and people: the core never hands leadership to a person.
      trustIdentity: (id: string, key: Uint8Array, certificate?: Uint8Array) =>
        this.#trust.verdict(id, key, certificate),
    };
  }

  /** Our own certificate must verify under our own anchors, or other rooms will refuse us too. */
  #checkOwnCertificate(participantId: string): void {
    if (this.#trust.trustIdentity(participantId, this.#identity.publicKey, this.#certificate)) {
      this.#opts.state.clearAlert('own-certificate');
      return;
    }
    this.#opts.state.raiseAlert(
      'own-certificate',
      'error',
      "This room's certificate does not verify against its trust anchors",
    );
  }

  /** Runs a callback of a timer or an event source: a throw is logged, never ends the daemon. */
  #guard(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.#opts.log.error({ err: (err as Error).message, what }, 'handler failed; carrying on');
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
    this.#endpoints.unpin(); // the next reconnect goes through the entries
    this.#trust.forget();
    this.#opts.state.clearAlert(LEADER_LOST_ALERT);
    this.#opts.media?.endMeeting?.(); // drop every key of this meeting in the worker (attack 3)
    this.#opts.media?.disconnect();
    this.#opts.state.update((s) => {
      if (s.meeting) s.meeting = { ...s.meeting, status, rekeying: false, leaderLost: false, waiting: [] };
      s.phase = 'idle';
    });
  }

  /** Tile labels, and whose verified screen the wall may show, to the media engine. */
  #labelMedia(meeting: ActiveMeeting): void {
    this.#opts.media?.labels(galleryLabels(this.#named(meeting, meeting.members), meeting.sharing));
  }

  /** The signed list's members, named from certificates verified on this device. */
  #named(meeting: ActiveMeeting, members?: readonly RosterMemberInfo[]): NamedMember[] {
    const roster =
      members ?? (meeting.session.state.roster() as { members?: RosterMemberInfo[] }).members ?? [];
    return nameMembers(this.#trust, roster);
  }

  #writeMeeting(patch: Partial<MeetingView>): void {
    const meeting = this.#meeting;
    if (!meeting) return;
    const session = meeting.session;
    const facts: MeetingFacts = {
      meetingId: meeting.meetingId,
      role: meeting.role,
      participantId: meeting.participantId,
      leaderId: session instanceof LeaderSession ? meeting.participantId : session.leaderId,
      named: this.#named(meeting),
      requests: meeting.requests,
      stillWaiting: session instanceof LeaderSession ? session.waiting : [],
      relayPresent: meeting.relayPresent,
      ...(meeting.securityCode ? { securityCode: meeting.securityCode } : {}),
    };
    this.#opts.state.update((s) => {
      const previous = s.meeting?.meetingId === meeting.meetingId ? s.meeting : undefined;
      s.meeting = meetingView(facts, previous, patch);
      s.phase = 'in-meeting';
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

const LEADER_LOST_ALERT = 'leader-lost';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
