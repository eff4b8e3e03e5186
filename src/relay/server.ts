// The relay process: fastify with one WebSocket route for signalling, admission and the E2EE bulletin
// board, plus the werift SFU. It authenticates devices by certificate + challenge, and never holds a
// key: bulletin-board payloads are forwarded as opaque objects, media as RTP it does not decrypt.
// It faces the network before anyone authenticated: an authentication deadline, a small pre-auth
// frame limit, connection caps and per-connection rate limits (./limits.ts) bound what a peer can
// cost, every refusal is counted in /metrics, and sessions of certificates revoked (RevocationSource
// 'change') or expired since they authenticated are ended live (docs/relay.md).
// Rooms authenticate with device certificates, people (issue 12, from a browser page) with
// short-lived person certificates; a WebSocket upgrade from a browser must come from an allowed Origin.
// Clustered (issue 15, `cluster`): every node is a complete relay for the meetings it hosts; a create
// or join for a meeting hosted elsewhere is answered with a redirect to that node's registered URL
// (docs/relay.md "Several nodes"). Meetings hosted here are served without asking Redis at all.
import { randomBytes } from 'node:crypto';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import {
  type ClientMessage,
  MAX_EMAIL_LENGTH,
  MAX_MESSAGE_BYTES,
  MAX_NAME_LENGTH,
  parseClientMessage,
  type ServerMessage,
} from '../core/protocol/relay.js';
import { isE2eeMessage } from '../core/e2ee/messages.js';
import { PkiError } from '../pki/errors.js';
import type { RevocationSource } from '../pki/revocation-source.js';
import type { Logger } from '../util/log.js';
import {
  newChallenge,
  type TrustOptions,
  type VerifiedParticipant,
  verifyChallengeSignature,
  verifyParticipantCertificatePem,
} from './authenticate.js';
import type { ClusterPort, ClusterStatus, Placement } from './cluster/port.js';
import { MeetingReservations, participantIdBoundTo } from './id-binding.js';
import {
  type ConnectionId,
  type Identity,
  MeetingError,
  MeetingRegistry,
  newMeetingId,
  type Result,
} from './meetings.js';
import {
  AddressCounter,
  addressKey,
  CLOSE,
  COSTLY_E2EE_BURST,
  COSTLY_E2EE_PER_SECOND,
  COSTLY_E2EE_TYPES,
  PRE_AUTH_MAX_MESSAGES,
  RATE_LIMIT_CLOSE_AFTER,
  type RelayLimits,
  resolveLimits,
  LEADER_ALLOWANCE_PER_MEMBER,
  SHARE_BURST,
  SHARE_PER_SECOND,
  TokenBucket,
} from './limits.js';
import { createRelayMetrics, type RefusalReason } from './metrics.js';
import { type MediaKind, Sfu } from './sfu.js';

/** One thing that crossed the relay, for tests that prove no plaintext or key ever does. */
export type RecordEntry =
  | { kind: 'ws-in' | 'ws-out'; connection: ConnectionId; data: string }
  | {
      kind: 'rtp';
      meetingId: string;
      participantId: string;
      media: MediaKind;
      timestamp: number;
      payload: Buffer;
    };

export interface RelayOptions {
  log: Logger;
  trust: TrustOptions;
  host?: string;
  port?: number;
  videoCodec?: 'VP8' | 'H264';
  record?: (entry: RecordEntry) => void;
  /**
   * Liveness: every interval each connection is pinged, and one that answered nothing (no pong, no
   * message) since the previous round is terminated, which leaves its meeting like a close would.
   * Without it a silent cut (no FIN/RST) keeps a dead participant in the meeting and its keys.
   * Default 10 s: a dead connection is dropped within 10–20 s.
   */
  livenessIntervalMs?: number;
  /**
   * Directory for state that must survive a restart: the meeting id → leader device bindings
   * (meeting-ids.json, written atomically). Without it ids are bound only for this process's life.
   */
  stateDir?: string;
  /** How long a meeting id stays bound after its meeting was last seen alive (default 10 min). */
  reservationTtlMs?: number;
  /**
   * The certificate revocation list in force (e.g. src/pki/revocation-feed.ts). Checked at every
   * authentication (besides `trust.isRevoked`, which keeps working); on each 'change' the sessions
   * of certificates it now revokes are ended (close 4403); while `acceptsNewSessions()` is false new
   * authentications are refused (`crl-stale`) and /healthz answers 503. Without one the relay
   * enforces only `trust.isRevoked` (development).
   */
  revocation?: RevocationSource;
  /** Connection, frame and rate limits (src/relay/limits.ts; defaults in DEFAULT_RELAY_LIMITS). */
  limits?: Partial<RelayLimits>;
  /** How often every session's certificate is re-checked (expiry, revocation); default 5 s. */
  sessionCheckIntervalMs?: number;
  /**
   * Web origins whose pages may open a WebSocket here (e.g. the provisioning service that serves
   * the join page: 'https://provisioning.example:8443'). An upgrade request carrying an Origin not
   * in the list is refused with HTTP 403 before any message; one with no Origin (devices, not a
   * browser) is served. Default: none, so no browser page can connect.
   */
  allowedOrigins?: string[];
  /**
   * Run as one node of a clustered relay (src/relay/cluster/port.ts, e.g. RedisCluster). A function
   * is given the listen URL (known only once listening when port is 0) and returns the port. The
   * relay starts it once listening (registering the node) and stops it on close (deregistering).
   */
  cluster?: ClusterPort | ((listening: { url: string; port: number }) => ClusterPort);
}

/**
 * Redirects per connection: a client follows a redirect to another node, so it needs about one per
 * connection. Checked before the Redis lookup, spent only when the answer is a redirect.
 */
export const PLACEMENTS_PER_SECOND = 1;
export const PLACEMENT_BURST = 5;
/**
 * Create/join lookups in Redis per connection (those not served locally), whatever the answer. A
 * member resuming asks `join` every 250 ms on the same connection until its leader re-created the
 * meeting (`no-meeting`, `cluster-unavailable` meanwhile), for up to 30 s: 4/s sustained must pass.
 */
export const LOOKUPS_PER_SECOND = 5;
export const LOOKUP_BURST = 10;

/** A token bucket checked first (`ready`) and paid only for some outcomes (`spend`). */
class Budget {
  #tokens: number;
  #last = performance.now();

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
  }

  #refill(): void {
    const t = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#last) / 1000) * this.ratePerSecond);
    this.#last = t;
  }

  ready(): boolean {
    this.#refill();
    return this.#tokens >= 1;
  }

  spend(): void {
    this.#refill();
    this.#tokens = Math.max(0, this.#tokens - 1);
  }
}

/**
 * A URL a redirect may carry: a node's registered relay URL, ws(s)://host[:port][/prefix]/v1/ws (a
 * prefix for a reverse proxy) and nothing else (no credentials, query or fragment). A registration
 * that is not one is never sent to a client.
 */
export function isRelayNodeUrl(url: string): boolean {
  if (url.length > 512) return false;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return false;
  }
  return (
    (u.protocol === 'ws:' || u.protocol === 'wss:') &&
    u.pathname.endsWith(RELAY_WS_PATH) &&
    !u.search &&
    !u.hash &&
    !u.username &&
    !u.password
  );
}

/** Serialized origin (scheme://host[:port]) of a configured entry; throws on anything else. */
export function normalizeOrigin(origin: string): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new Error(`allowed origin "${origin}" is not a URL (expected e.g. https://host:8443)`);
  }
  const bare = url.pathname === '/' && !url.search && !url.hash && !url.username && !url.password;
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !bare)
    throw new Error(`allowed origin "${origin}" must be scheme://host[:port] only, like ${url.origin}`);
  return url.origin;
}

/** What the relay's registry and peers see of a verified participant (rooms and people alike). */
function identityOf(v: VerifiedParticipant, certificate: string): Identity {
  return v.kind === 'person'
    ? { kind: 'person', deviceId: v.personId, roomName: v.name, org: v.org, email: v.email, certificate }
    : { kind: 'room', deviceId: v.deviceId, roomName: v.roomName, org: v.org, email: '', certificate };
}

/** How often the relay re-checks every session's certificate (expiry, revocation). */
export const SESSION_CHECK_INTERVAL_MS = 5000;

export interface Relay {
  /** ws://host:port/v1/ws */
  url: string;
  port: number;
  app: FastifyInstance;
  registry: MeetingRegistry;
  sfu: Sfu;
  /** Clustered: the cluster port this node runs (its id is `cluster.nodeId`). */
  cluster?: ClusterPort;
  /**
   * Clustered: stop taking new meetings (placement skips this node; it still accepts connections and
   * redirects them), serve the meetings it hosts until they end or `timeoutMs` (default 30 s) passes,
   * then move the rest: release their placement and close their members' sockets with CLOSE.moved
   * (4012) so they resume on other nodes. Call close() afterwards (it deregisters the node).
   */
  drain(opts?: { timeoutMs?: number }): Promise<{ ended: number; moved: number }>;
  close(): Promise<void>;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

interface Session {
  id: ConnectionId;
  socket: WebSocket;
  /** Remote address (IPv4-mapped IPv6 folded to IPv4), for the per-address cap. */
  address: string;
  /** Heard from since the last liveness round. */
  alive: boolean;
  nonce: string;
  identity?: VerifiedParticipant;
  /** What the meeting registry knows of it (from `identity` and its certificate PEM). */
  participant?: Identity;
  /** Closes the socket (4408) unless it authenticated first. */
  authTimer?: NodeJS.Timeout;
  /** Frames received before authentication completed. */
  preAuthMessages: number;
  bucket: TokenBucket;
  /** Bindings and resync requests (COSTLY_E2EE_TYPES), on top of `bucket`. */
  costly: TokenBucket;
  /** `share` requests, on top of `bucket`: each sends a roster to every member. */
  shares: TokenBucket;
  /** Clustered: redirects sent (a client needs about one per connection), on top of `bucket`. */
  placements: Budget;
  /** Clustered: create/join that needed a placement lookup (Redis), on top of `bucket`. */
  lookups: TokenBucket;
  /** Refusals it may still earn before it is cut (refilled at the sustained message rate). */
  refusalAllowance: TokenBucket;
  lastRateError: number;
  /** Being closed by the relay: nothing it sends is handled any more. */
  ending: boolean;
}

/** The WebSocket's frame receiver (ws internals): its payload limit checks each frame's header. */
function setFrameLimit(socket: WebSocket, bytes: number): void {
  const receiver = (socket as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
}

export const RELAY_WS_PATH = '/v1/ws';

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const log = opts.log;
  const relayId = randomBytes(8).toString('hex');
  const sessions = new Map<ConnectionId, Session>();
  const reservations = new MeetingReservations({
    ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
    ...(opts.reservationTtlMs !== undefined ? { ttlMs: opts.reservationTtlMs } : {}),
  });
  const registry = new MeetingRegistry({ reservations });
  const record = opts.record;
  const limits = resolveLimits(opts.limits);
  const perAddress = new AddressCounter();
  const revocation = opts.revocation;
  const now = () => opts.trust.now?.() ?? new Date();
  const isRevoked = (serial: string): boolean =>
    (revocation?.isRevoked(serial) ?? false) || (opts.trust.isRevoked?.(serial) ?? false);
  const trust = { ...opts.trust, isRevoked };
  const allowedOrigins = new Set((opts.allowedOrigins ?? []).map(normalizeOrigin));

  const send = (connection: ConnectionId, message: ServerMessage): void => {
    const session = sessions.get(connection);
    if (!session || session.socket.readyState !== session.socket.OPEN) return;
    const data = JSON.stringify(message);
    if (record) record({ kind: 'ws-out', connection, data });
    session.socket.send(data);
  };

  const sfu = new Sfu({
    log,
    sendSignal: (connection, payload) => send(connection, { type: 'signal', payload }),
    ...((opts.host ?? '127.0.0.1').startsWith('127.') ? { mediaAddress: opts.host ?? '127.0.0.1' } : {}),
    ...(opts.videoCodec ? { videoCodec: opts.videoCodec } : {}),
    ...(record
      ? {
          onPublisherRtp: (meetingId, participantId, media, packet) =>
            record({
              kind: 'rtp',
              meetingId,
              participantId,
              media,
              timestamp: packet.header.timestamp,
              payload: packet.payload,
            }),
        }
      : {}),
  });

  // Clustered: set once listening (a request before that is refused, never served unplaced).
  const clustered = opts.cluster !== undefined;
  let cluster: ClusterPort | undefined;
  /** After a drain's deadline: nothing more is created here, even for a placement that says so. */
  let movingOut = false;
  /** close() began: a socket upgraded from now on is cut at once (close() must not wait for it). */
  let closing = false;
  /** Best effort: the reconciliation (every refresh) publishes it anyway if Redis is down now. */
  const publish = (what: string, p: Promise<void>): void => {
    p.catch((err: Error) => log.warn({ err: err.message }, `cluster: could not publish ${what}`));
  };

  const apply = (result: Result): void => {
    for (const o of result.outgoing) send(o.to, o.message);
    for (const m of result.media) {
      if (m.kind === 'share') sfu.setSharer(m.meetingId, m.sharer);
      else void sfu.remove(m.connection);
    }
    if (!cluster) return;
    // A meeting ends here when its members are told so; its id is freed cluster-wide iff the
    // registry freed it locally (the leader ended it or left on purpose, not a dropped connection).
    const ended = new Set<string>();
    for (const o of result.outgoing) if (o.message.type === 'ended') ended.add(o.message.meetingId);
    for (const meetingId of ended) {
      if (registry.has(meetingId)) continue;
      const freeId = registry.reservations.holder(meetingId) === undefined;
      publish('an ended meeting', cluster.released(meetingId, freeId));
    }
  };

  const drawMeetingId = (): string => {
    let id: string;
    do id = newMeetingId();
    while (registry.has(id) || registry.reservations.holder(id) !== undefined);
    return id;
  };

  /**
   * Clustered create/join for a meeting not hosted here: asks the cluster where it lives. Returns
   * the meeting id to serve here, or undefined when it was answered with a redirect (or the asker
   * went away meanwhile); throws the refusal.
   */
  const place = async (
    session: Session,
    identity: Identity,
    message: Extract<ClientMessage, { type: 'create' | 'join' }>,
  ): Promise<string | undefined> => {
    // What the local registry would refuse anyway is refused before anything is written to Redis (a
    // person must not reserve a meeting id cluster-wide, nor squat one with someone's participant id).
    if (registry.meetingOf(session.id) !== undefined)
      throw new MeetingError('already-in-meeting', 'leave the current meeting first');
    if (message.type === 'create' && identity.kind !== 'room')
      throw new MeetingError('rooms-only', 'only rooms create and lead meetings; people join them');
    if (message.participantId !== undefined && !participantIdBoundTo(message.participantId, identity))
      throw new MeetingError(
        'id-bound',
        `participant id ${message.participantId} is bound to another device`,
      );
    // Each lookup is a Redis round trip (a create may also write a placement). Two budgets: one
    // sized for a resume loop (answers 'no-meeting' or a retriable refusal several times a second),
    // and a tight one for redirects, which a client follows to another node and so needs about once
    // per connection: a prober asking again and again for a meeting hosted elsewhere is cut early,
    // without a Redis lookup.
    if (!session.placements.ready() || !session.lookups.take()) {
      metrics.refuse('rate-limited');
      throw new MeetingError('rate-limited', 'too many create/join requests on this connection');
    }
    if (!cluster) throw new MeetingError('cluster-unavailable', 'the relay node is starting');
    let placement: Placement;
    try {
      placement =
        message.type === 'create'
          ? await cluster.placeCreate(message.meetingId, identity.deviceId, drawMeetingId)
          : await cluster.locate(message.meetingId);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cluster: placement failed');
      placement = {
        kind: 'refused',
        code: 'cluster-unavailable',
        message: 'the cluster registry is unreachable',
      };
    }
    if (session.ending || !sessions.has(session.id)) {
      // Gone while Redis answered: a placement made for it here is withdrawn (it expires anyway).
      if (placement.kind === 'here' && message.type === 'create' && !registry.has(placement.meetingId))
        publish('a withdrawn placement', cluster.released(placement.meetingId, false));
      return undefined;
    }
    if (
      placement.kind !== 'refused' &&
      message.meetingId !== undefined &&
      placement.meetingId !== message.meetingId
    ) {
      log.error(
        { asked: message.meetingId, placed: placement.meetingId },
        'cluster: placement for another id',
      );
      placement = { kind: 'refused', code: 'cluster-unavailable', message: 'inconsistent placement' };
    }
    switch (placement.kind) {
      case 'here':
        if (movingOut) throw new MeetingError('no-node', 'this relay node is shutting down; try again');
        return placement.meetingId;
      case 'refused':
        clusterMetrics?.refusals.inc({ code: placement.code });
        throw new MeetingError(placement.code, placement.message);
      case 'elsewhere': {
        // Only a live node's registered URL, and never ourselves (a loop): otherwise refuse (retriable).
        if (
          !isRelayNodeUrl(placement.url) ||
          placement.nodeId === cluster.nodeId ||
          placement.url === cluster.url
        ) {
          log.error(
            { nodeId: placement.nodeId, url: placement.url.slice(0, 200) },
            'cluster: unusable node URL',
          );
          clusterMetrics?.refusals.inc({ code: 'cluster-unavailable' });
          throw new MeetingError('cluster-unavailable', 'the meeting lives on a node with no usable URL');
        }
        session.placements.spend();
        clusterMetrics?.redirects.inc({ request: message.type });
        log.info(
          { meetingId: placement.meetingId, deviceId: identity.deviceId, node: placement.nodeId },
          `${message.type}: redirected to the hosting node`,
        );
        send(session.id, {
          type: 'redirect',
          id: message.id,
          url: placement.url,
          meetingId: placement.meetingId,
        });
        return undefined;
      }
    }
  };

  /** The meeting continues on another node: dropped here, its members' sockets closed with 4012. */
  const moveAway = (meetingId: string, reason: 'lost' | 'drain'): void => {
    const { connections, media } = registry.evict(meetingId);
    for (const m of media) if (m.kind === 'remove') void sfu.remove(m.connection);
    const text = reason === 'lost' ? 'meeting moved to another relay node' : 'relay node draining';
    for (const c of connections) {
      const session = sessions.get(c);
      if (session) endSocket(session, CLOSE.moved, text);
    }
    clusterMetrics?.moved.inc({ reason });
    log.warn({ meetingId, members: connections.length, reason }, 'meeting moved to another node');
  };

  const handle = async (session: Session, message: ClientMessage): Promise<void> => {
    if (message.type === 'ping') return send(session.id, { type: 'pong' });
    if (!session.identity) {
      if (message.type !== 'auth') throw new MeetingError('unauthenticated', 'authenticate first');
      if (revocation && !revocation.acceptsNewSessions()) {
        metrics.refuse('crl-stale');
        throw new MeetingError(
          'crl-stale',
          'the relay holds no current certificate revocation list; new sessions are refused until it does',
        );
      }
      const identity = await verifyParticipantCertificatePem(message.certificate, trust);
      if (!verifyChallengeSignature(identity, session.nonce, message.signature)) {
        throw new MeetingError('bad-signature', 'challenge signature does not match the certificate key');
      }
      if (session.ending) return; // timed out (or refused) while the certificate was being verified
      // A CRL that arrived during the (asynchronous) verification counts too.
      if (isRevoked(identity.serial))
        throw new PkiError('revoked', `certificate ${identity.serial} is revoked`);
      const participant = identityOf(identity, message.certificate);
      // Everything the relay sends about it must pass the wire schema every member checks.
      if (
        participant.roomName.length > MAX_NAME_LENGTH ||
        participant.org.length > MAX_NAME_LENGTH ||
        participant.email.length > MAX_EMAIL_LENGTH
      )
        throw new PkiError('bad-subject', 'the certificate names a name, org or e-mail address too long');
      session.identity = identity;
      session.participant = participant;
      clearTimeout(session.authTimer);
      setFrameLimit(session.socket, MAX_MESSAGE_BYTES);
      metrics.authentications.inc({ result: 'ok' });
      log.info(
        {
          connection: session.id,
          kind: participant.kind,
          deviceId: participant.deviceId,
          roomName: participant.roomName,
          org: participant.org,
        },
        participant.kind === 'person' ? 'person authenticated' : 'device authenticated',
      );
      const { kind, deviceId, roomName, org, email } = participant;
      return send(session.id, { type: 'authenticated', identity: { kind, deviceId, roomName, org, email } });
    }
    // Belt and braces besides the 'change' event and the periodic check: a revoked or expired
    // certificate's session does nothing more, create and join least of all.
    if (isRevoked(session.identity.serial)) return endSession(session, 'revoked');
    if (now() > session.identity.notAfter) return endSession(session, 'expired');
    const identity = session.participant;
    if (!identity) throw new MeetingError('internal', 'authenticated without an identity');
    const { deviceId } = identity;
    switch (message.type) {
      case 'auth':
        throw new MeetingError('already-authenticated', 'already authenticated');
      case 'create': {
        let meetingId = message.meetingId;
        // Clustered: a meeting live here is answered here (Redis not asked); otherwise placed.
        const placed = clustered && !(meetingId !== undefined && registry.has(meetingId));
        if (placed) {
          meetingId = await place(session, identity, message);
          if (meetingId === undefined) return;
          // The cluster's reservation (just checked for this device) is authoritative over a
          // local one left from an earlier life of the meeting here.
          const holder = registry.reservations.holder(meetingId);
          if (holder !== undefined && holder !== deviceId && !registry.has(meetingId))
            registry.reservations.release(meetingId);
        }
        let result: Result;
        try {
          result = registry.create(session.id, identity, message.id, meetingId, message.participantId);
        } catch (err) {
          if (placed && cluster && meetingId !== undefined && !registry.has(meetingId))
            publish('a withdrawn placement', cluster.released(meetingId, false));
          throw err;
        }
        const created = registry.meetingOf(session.id);
        log.info({ meetingId: created, deviceId }, 'meeting created');
        apply(result);
        if (cluster && created !== undefined)
          publish('a new meeting', cluster.hosted({ meetingId: created, leaderDeviceId: deviceId }));
        return;
      }
      case 'join': {
        log.info({ meetingId: message.meetingId, deviceId }, 'join request');
        if (clustered && !registry.has(message.meetingId)) {
          const here = await place(session, identity, message);
          if (here === undefined) return;
        }
        return apply(
          registry.join(session.id, identity, message.id, message.meetingId, message.participantId),
        );
      }
      case 'admit':
        return apply(registry.admit(session.id, message.id, message.participantId));
      case 'deny':
        return apply(registry.deny(session.id, message.id, message.participantId));
      case 'lock':
        return apply(registry.lock(session.id, message.id, message.locked));
      case 'handover':
        log.info(
          { meetingId: registry.meetingOf(session.id), to: message.participantId },
          'leadership handed over',
        );
        apply(registry.handover(session.id, message.id, message.participantId));
        {
          // The cluster-wide reservation follows the new leader at once, as the local one did.
          const meetingId = registry.meetingOf(session.id);
          const leaderDeviceId = meetingId && registry.reservations.holder(meetingId);
          if (cluster && meetingId && leaderDeviceId)
            publish('a handover', cluster.hosted({ meetingId, leaderDeviceId }));
        }
        return;
      case 'leave':
        return apply(registry.leave(session.id, message.id));
      case 'end':
        return apply(registry.end(session.id, message.id));
      case 'e2ee':
        return routeE2ee(session, message.to, message.payload);
      case 'media': {
        const meetingId = registry.meetingOf(session.id);
        const participant = registry.activeParticipant(session.id);
        if (!message.enabled) {
          // Without media there is nothing to share: its share (if any) ends with it.
          if (registry.sharerOf(session.id) === session.id)
            apply(registry.share(session.id, undefined, false));
          return void (await sfu.remove(session.id));
        }
        if (!meetingId || !participant)
          throw new MeetingError('not-admitted', 'media only for admitted participants');
        sfu.add(session.id, meetingId, participant.participantId, { content: identity.kind === 'person' });
        return;
      }
      case 'share': {
        // Each change sends every member a roster: a budget of its own, tighter than messages'.
        if (!session.shares.take()) return rateLimited(session);
        if (!registry.activeParticipant(session.id))
          throw new MeetingError('not-admitted', 'only admitted participants share');
        if (message.enabled && !sfu.canShare(session.id))
          throw new MeetingError(
            identity.kind === 'person' ? 'no-media' : 'no-content',
            identity.kind === 'person'
              ? 'ask for media first: the content m-line is part of its offer'
              : 'rooms have no content m-line; only people share a screen',
          );
        log.info({ meetingId: registry.meetingOf(session.id), enabled: message.enabled }, 'share');
        return apply(registry.share(session.id, message.id, message.enabled));
      }
      case 'signal':
        return sfu.handleSignal(session.id, message.payload);
    }
  };

  /** Bulletin board: schema-checked E2EE messages, routed by their routing fields only. */
  const routeE2ee = (session: Session, to: string | undefined, payload: Record<string, unknown>): void => {
    const meetingId = registry.meetingOf(session.id);
    const member = registry.member(session.id);
    if (!meetingId || !member) throw new MeetingError('not-in-meeting', 'join a meeting first');
    if (!isE2eeMessage(payload)) throw new MeetingError('bad-e2ee', 'not a valid E2EE message');
    if (payload.from !== member.info.participantId || payload.meetingId !== meetingId) {
      throw new MeetingError('bad-e2ee', 'E2EE message from or meetingId does not match the sender');
    }
    // Costly for the leader (verification, or an amplified answer): their own, tighter budget.
    if (COSTLY_E2EE_TYPES.has(payload.type) && !session.costly.take()) {
      rateLimited(session);
      return;
    }
    const isBinding = payload.type === 'e2ee.binding';
    if (member.status !== 'active' && !isBinding)
      throw new MeetingError('not-admitted', 'a waiting participant may only post its key binding');
    const message: ServerMessage = { type: 'e2ee', from: member.info.participantId, payload };
    if (isBinding && to === undefined) {
      send(member.leader, message);
      return;
    }
    if (to !== undefined) {
      const target = registry.connectionOfParticipant(meetingId, to);
      if (!target || member.status !== 'active')
        throw new MeetingError('no-participant', `${to} is not in this meeting`);
      send(target, message);
      return;
    }
    for (const target of registry.activeConnections(meetingId))
      if (target !== session.id) send(target, message);
  };

  /** Closes the socket with a code; one that ignores the close handshake is cut a little later. */
  const endSocket = (session: Session, code: number, reason: string): void => {
    if (session.ending) return;
    session.ending = true;
    clearTimeout(session.authTimer);
    session.socket.close(code, reason);
    setTimeout(() => session.socket.terminate(), 2000).unref();
  };

  /**
   * Ends the session of a certificate revoked or expired since it authenticated: told why, it
   * leaves its meeting as a deliberate leave (a leader's meeting ends and its id is freed; the
   * others are told it left, so the leader removes it and rekeys), then the socket closes (4403).
   */
  const endSession = (session: Session, reason: 'revoked' | 'expired'): void => {
    if (session.ending || !session.identity) return;
    metrics.refuse(reason);
    const text = reason === 'revoked' ? 'certificate revoked' : 'certificate expired';
    log.warn(
      { connection: session.id, deviceId: session.participant?.deviceId, serial: session.identity.serial },
      `${text}: ending the session`,
    );
    send(session.id, { type: 'error', code: `certificate-${reason}`, message: `${text}; session ended` });
    apply(registry.leave(session.id));
    void sfu.remove(session.id);
    endSocket(session, reason === 'revoked' ? CLOSE.revoked : CLOSE.expired, text);
  };

  const checkSessions = (revokedOnly: boolean): void => {
    const t = now();
    for (const session of sessions.values()) {
      if (!session.identity || session.ending) continue;
      if (isRevoked(session.identity.serial)) endSession(session, 'revoked');
      else if (!revokedOnly && t > session.identity.notAfter) endSession(session, 'expired');
    }
  };
  const onRevocationChange = () => checkSessions(true);
  revocation?.on('change', onRevocationChange);

  const refuseConnection = (socket: WebSocket, reason: RefusalReason, text: string): void => {
    metrics.refuse(reason);
    socket.on('error', () => undefined);
    socket.close(CLOSE.tryAgainLater, text);
    setTimeout(() => socket.terminate(), 2000).unref();
  };

  /** The meeting's leader fans out to every member: its allowance grows with the meeting. */
  const allowanceScale = (session: Session): number => {
    const member = registry.member(session.id);
    if (!member || member.leader !== session.id) return 1;
    const meetingId = registry.meetingOf(session.id);
    return 1 + (meetingId ? registry.size(meetingId) : 0) * LEADER_ALLOWANCE_PER_MEMBER;
  };

  const rateLimited = (session: Session): void => {
    metrics.refuse('rate-limited');
    if (!session.refusalAllowance.take()) {
      log.warn({ connection: session.id }, 'message flood continues after refusals; closing');
      endSocket(session, CLOSE.rateLimited, 'message rate exceeded');
      return;
    }
    const t = performance.now();
    if (t - session.lastRateError < 1000) return;
    session.lastRateError = t;
    send(session.id, {
      type: 'error',
      code: 'rate-limited',
      message: `more than ${limits.messagesPerSecond} messages/s (burst ${limits.messageBurst}): messages dropped`,
    });
  };

  // forceCloseConnections: close() also cuts keep-alive HTTP connections (a /healthz poller), so
  // nothing a peer holds open keeps a stopping node alive.
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, forceCloseConnections: true });
  // The frame limit is per socket: preAuthMaxBytes until it authenticates, then MAX_MESSAGE_BYTES.
  await app.register(websocket, { options: { maxPayload: MAX_MESSAGE_BYTES } });
  const sample = () => {
    const media = sfu.stats();
    return {
      connections: sessions.size,
      meetings: registry.meetingCount(),
      mediaPeers: media.length,
      // Totals of the current peers: RTP packets received from publishers, copies forwarded.
      packetsReceived: media.reduce((n, p) => n + p.received, 0),
      packetsForwarded: media.reduce((n, p) => n + p.forwarded, 0),
    };
  };
  const clusterStatus = (): ClusterStatus | undefined => cluster?.status();
  const metrics = createRelayMetrics(
    sample,
    revocation ? () => revocation.status() : undefined,
    clustered ? clusterStatus : undefined,
  );
  const clusterMetrics = metrics.cluster;
  app.get('/healthz', async (_req, reply) => {
    // Failing closed (no CRL fresh enough) makes the relay unhealthy: it serves no new session.
    const accepting = revocation ? revocation.acceptsNewSessions() : true;
    if (!accepting) reply.code(503);
    const status = clusterStatus();
    return {
      ok: accepting,
      relayId,
      ...sample(),
      ...(revocation ? { revocation: revocation.status() } : {}),
      // A draining node stays healthy: it still accepts connections and redirects them.
      ...(status ? { cluster: status } : {}),
    };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  // A browser page may open a WebSocket from any site its user visits: only allowed origins' pages
  // get one. Refused before the upgrade (HTTP 403), so such a page cannot even read a challenge.
  const checkOrigin = async (
    req: { headers: Record<string, string | string[] | undefined> },
    reply: { code(n: number): { send(body: unknown): unknown } },
  ) => {
    const origin = req.headers.origin;
    if (origin === undefined) return; // devices (not a browser) send none
    if (typeof origin === 'string' && allowedOrigins.has(origin)) return;
    metrics.refuse('bad-origin');
    log.warn({ origin: String(origin).slice(0, 200) }, 'WebSocket from an origin not allowed; refused');
    return reply.code(403).send({ error: { code: 'origin-not-allowed', message: 'origin not allowed' } });
  };
  app.get(RELAY_WS_PATH, { websocket: true, preValidation: checkOrigin }, (socket, req) => {
    // A device reconnecting through its entry list may reach a node that is closing (drained): cut
    // it at once so it tries another entry, and so that close() never waits for its socket.
    if (closing) {
      socket.on('error', () => undefined);
      socket.terminate();
      return;
    }
    const address = addressKey(req.socket.remoteAddress);
    if (perAddress.count(address) >= limits.maxConnectionsPerAddress)
      return refuseConnection(socket, 'too-many-from-address', 'too many connections from this address');
    if (sessions.size >= limits.maxConnections) {
      // Full. Sockets that never authenticate must not lock new devices out for good: the oldest
      // connection still unauthenticated makes room (a device authenticates in milliseconds, so a
      // flood would have to replace the whole table that fast to keep it out). All authenticated:
      // the newcomer is refused.
      const oldest = [...sessions.values()].find((s) => !s.identity);
      if (!oldest) return refuseConnection(socket, 'too-many-connections', 'too many connections');
      metrics.refuse('too-many-connections');
      sessions.delete(oldest.id);
      perAddress.remove(oldest.address);
      endSocket(oldest, CLOSE.tryAgainLater, 'too many connections');
    }
    // Before authentication a frame larger than an auth message is refused from its header alone.
    setFrameLimit(socket, limits.preAuthMaxBytes);
    const session: Session = {
      id: `c-${randomBytes(6).toString('hex')}`,
      socket,
      address,
      alive: true,
      nonce: newChallenge(),
      preAuthMessages: 0,
      bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst),
      costly: new TokenBucket(COSTLY_E2EE_PER_SECOND, COSTLY_E2EE_BURST),
      shares: new TokenBucket(SHARE_PER_SECOND, SHARE_BURST),
      placements: new Budget(PLACEMENTS_PER_SECOND, PLACEMENT_BURST),
      lookups: new TokenBucket(LOOKUPS_PER_SECOND, LOOKUP_BURST),
      refusalAllowance: new TokenBucket(limits.messagesPerSecond, RATE_LIMIT_CLOSE_AFTER),
      lastRateError: Number.NEGATIVE_INFINITY,
      ending: false,
    };
    sessions.set(session.id, session);
    perAddress.add(address);
    session.authTimer = setTimeout(() => {
      if (session.identity || session.ending) return;
      metrics.refuse('auth-timeout');
      endSocket(session, CLOSE.authTimeout, 'authentication timeout');
    }, limits.authTimeoutMs);
    session.authTimer.unref();
    socket.on('pong', () => {
      session.alive = true;
    });
    socket.on('error', (err: Error & { code?: string }) => {
      // ws closes the socket itself (1009) after a frame over the limit.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        metrics.refuse(session.identity ? 'bad-message' : 'pre-auth-too-large');
        if (!session.ending) {
          session.ending = true;
          setTimeout(() => socket.terminate(), 2000).unref();
        }
      }
      log.debug({ err, connection: session.id }, 'websocket error');
    });
    // Handle messages in order per connection: a join must not overtake the auth before it.
    let queue = Promise.resolve();
    socket.on('message', (raw: Buffer, isBinary: boolean) => {
      session.alive = true;
      if (session.ending) return;
      if (!session.identity) {
        if (raw.length > limits.preAuthMaxBytes) {
          metrics.refuse('pre-auth-too-large');
          return endSocket(session, CLOSE.tooLarge, 'frame too large before authentication');
        }
        if (++session.preAuthMessages > PRE_AUTH_MAX_MESSAGES) {
          metrics.refuse('rate-limited');
          return endSocket(session, CLOSE.authenticationFailed, 'too many messages before authentication');
        }
      } else if (!session.bucket.take(allowanceScale(session))) {
        return rateLimited(session);
      }
      queue = queue.then(async () => {
        if (session.ending) return;
        if (isBinary) {
          metrics.refuse('bad-message');
          return send(session.id, { type: 'error', code: 'bad-message', message: 'text frames only' });
        }
        if (record) record({ kind: 'ws-in', connection: session.id, data: raw.toString('utf8') });
        const parsed = parseClientMessage(raw);
        if (!parsed.ok) {
          metrics.refuse('bad-message');
          return send(session.id, { type: 'error', code: 'bad-message', message: parsed.error });
        }
        try {
          await handle(session, parsed.message);
        } catch (err) {
          const id = 'id' in parsed.message ? parsed.message.id : undefined;
          if (err instanceof MeetingError || err instanceof PkiError) {
            send(session.id, {
              type: 'error',
              id,
              code: err instanceof PkiError ? `certificate-${err.code}` : err.code,
              message: err.message,
            });
            if (!session.identity) {
              metrics.authentications.inc({ result: 'refused' });
              if (err instanceof PkiError && (err.code === 'revoked' || err.code === 'expired'))
                metrics.refuse(err.code);
              endSocket(session, CLOSE.authenticationFailed, 'authentication failed');
            }
          } else {
            log.error({ err, connection: session.id }, 'request failed');
            send(session.id, { type: 'error', id, code: 'internal', message: 'internal error' });
          }
        }
      });
    });
    socket.on('close', () => {
      clearTimeout(session.authTimer);
      session.ending = true;
      if (sessions.delete(session.id)) perAddress.remove(session.address);
      apply(registry.leave(session.id, undefined, { closed: true }));
      void sfu.remove(session.id);
      if (session.participant)
        log.info({ connection: session.id, deviceId: session.participant.deviceId }, 'disconnected');
    });
    send(session.id, { type: 'challenge', nonce: session.nonce, relayId });
  });

  const liveness = setInterval(() => {
    for (const session of sessions.values()) {
      if (!session.alive) {
        log.info({ connection: session.id }, 'connection silent for a liveness round; dropping it');
        session.socket.terminate(); // 'close' follows: the participant leaves its meeting
        continue;
      }
      session.alive = false;
      if (session.socket.readyState === session.socket.OPEN) session.socket.ping();
    }
  }, opts.livenessIntervalMs ?? 10_000);
  liveness.unref();
  // Certificates expire (and revocation may change without an event): re-check every session.
  const sessionCheck = setInterval(
    () => checkSessions(false),
    opts.sessionCheckIntervalMs ?? SESSION_CHECK_INTERVAL_MS,
  );
  sessionCheck.unref();
  // Live meetings' ids stay bound on disk for a ttl after the last refresh (a crash, then a resume).
  const refresh = setInterval(
    () => {
      try {
        reservations.refresh();
      } catch (err) {
        log.error({ err }, 'could not save the meeting id bindings');
      }
    },
    Math.max(1000, reservations.ttlMs / 3),
  );
  refresh.unref();

  const address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  const port = Number(new URL(address).port);
  const url = `ws://${opts.host ?? '127.0.0.1'}:${port}${RELAY_WS_PATH}`;
  const onLost = (meetingId: string): void => {
    // Re-placed on another live node while this one was unreachable: that copy is the meeting now.
    if (registry.has(meetingId)) moveAway(meetingId, 'lost');
  };
  let clusterStopped = false;
  const stopCluster = async (): Promise<void> => {
    if (!cluster || clusterStopped) return;
    clusterStopped = true;
    cluster.off('lost', onLost);
    await cluster
      .stop(true)
      .catch((err: Error) => log.warn({ err: err.message }, 'cluster: could not deregister the node'));
  };
  if (opts.cluster) {
    const abort = async (err: unknown): Promise<never> => {
      clearInterval(liveness);
      clearInterval(refresh);
      clearInterval(sessionCheck);
      revocation?.off('change', onRevocationChange);
      await sfu.close();
      await app.close();
      throw err;
    };
    const node = typeof opts.cluster === 'function' ? opts.cluster({ url, port }) : opts.cluster;
    if (!isRelayNodeUrl(node.url))
      await abort(new Error(`cluster node URL "${node.url}" is not ws(s)://host[:port]${RELAY_WS_PATH}`));
    node.on('lost', onLost);
    node.on('resynced', () => log.info({ nodeId: node.nodeId }, 'cluster: registry resynchronised'));
    try {
      await node.start(() => registry.hosted());
    } catch (err) {
      node.off('lost', onLost);
      await abort(err);
    }
    // Registered only once listening: no redirect ever points at a node that cannot answer yet.
    cluster = node;
  }
  log.info(
    { url, relayId, ...(cluster ? { nodeId: cluster.nodeId, publicUrl: cluster.url } : {}) },
    'relay listening',
  );

  const drain = async ({ timeoutMs = DEFAULT_DRAIN_TIMEOUT_MS }: { timeoutMs?: number } = {}) => {
    if (!cluster) throw new Error('drain: this relay is not part of a cluster');
    const c = cluster;
    const before = registry.meetingCount();
    log.info({ meetings: before, timeoutMs }, 'draining: no new meetings here');
    await c
      .setDraining()
      .catch((err: Error) => log.warn({ err: err.message }, 'cluster: could not mark the node draining'));
    // Meetings hosted here go on (joins included) until they end or the deadline.
    const deadline = performance.now() + timeoutMs;
    while (registry.meetingCount() > 0 && performance.now() < deadline)
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - performance.now()))));
    movingOut = true;
    const rest = registry.hosted().map((m) => m.meetingId);
    // Released before the members are told: their resume must be placed on another node, not here.
    const evicted = rest.map((meetingId) => ({ meetingId, ...registry.evict(meetingId) }));
    await Promise.all(
      rest.map((meetingId) =>
        c
          .released(meetingId, false)
          .catch((err: Error) =>
            log.warn({ err: err.message, meetingId }, 'cluster: could not release a moved meeting'),
          ),
      ),
    );
    for (const { meetingId, connections, media } of evicted) {
      for (const m of media) if (m.kind === 'remove') void sfu.remove(m.connection);
      for (const conn of connections) {
        const session = sessions.get(conn);
        if (session) endSocket(session, CLOSE.moved, 'relay node draining');
      }
      clusterMetrics?.moved.inc({ reason: 'drain' });
      log.info({ meetingId, members: connections.length }, 'draining: meeting moved');
    }
    // The close frames must leave before close() terminates whatever is left: wait a little for them.
    const closing = evicted.flatMap((e) => e.connections);
    const until = performance.now() + 1000;
    while (closing.some((conn) => sessions.has(conn)) && performance.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    const moved = rest.length;
    log.info({ ended: before - moved, moved }, 'drained');
    return { ended: Math.max(0, before - moved), moved };
  };

  return {
    url,
    port,
    app,
    registry,
    sfu,
    ...(cluster ? { cluster } : {}),
    drain,
    close: async () => {
      closing = true;
      clearInterval(liveness);
      clearInterval(refresh);
      clearInterval(sessionCheck);
      revocation?.off('change', onRevocationChange);
      await stopCluster();
      // Live meetings stay bound on disk for a ttl; the closing sockets below change nothing there.
      reservations.refresh();
      reservations.freeze();
      for (const s of sessions.values()) s.socket.terminate();
      await sfu.close();
      // Again right before the server closes: a socket that got through the upgrade meanwhile (or a
      // refused one still in its close handshake) would hold app.close() until its peer answers.
      for (const s of sessions.values()) s.socket.terminate();
      for (const client of app.websocketServer.clients) client.terminate();
      await app.close();
    },
  };
}
