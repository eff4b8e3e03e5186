// The cluster registry on Redis (docs/relay.md "Several nodes"): which nodes are alive, which node
// hosts which meeting, the cluster-wide meeting-id reservations, and placement by load.
//
// Redis holds only routing state; no signalling rides on it. So every call fails fast during an
// outage (no offline queue, short command timeout) and the relay answers 'cluster-unavailable' for
// NEW placements while the meetings it already hosts go on untouched. The node's own view (what it
// hosts) is the truth it re-publishes every refreshMs and on every reconnect, so a Redis restarted
// empty is whole again within one refresh.
//
// Keys (prefix default `sealroom:relay:`):
//   node:<id>       HASH {url, draining, meetings}, PEXPIRE nodeTtlMs — alive iff it exists
//   nodes           SET of node ids seen (pruned of expired ones during placement)
//   meeting:<mid>   node id, PEXPIRE meetingTtlMs, refreshed by the host
//   resv:<mid>      leader device id, PEXPIRE reservationTtlMs, refreshed by the host
//   pending:<id>    ZSET meeting id → placement time: placed there, not created yet (counts as load)
//   epoch           boot marker: written once per life of the Redis data (absent = Redis came back empty)
//   resync          PEXPIRE resyncGraceMs after Redis came back empty: explicit ids are not placed anew
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from '../../util/log.js';
import { DEFAULT_RESERVATION_TTL_MS } from '../id-binding.js';
import type {
  ClusterEvents,
  ClusterNodeInfo,
  ClusterPort,
  ClusterStatus,
  HostedMeeting,
  Placement,
} from './port.js';
import {
  DEREGISTER_SCRIPT,
  LOCATE_SCRIPT,
  PLACE_SCRIPT,
  RECONCILE_SCRIPT,
  RELEASE_SCRIPT,
} from './scripts.js';

export { DEFAULT_RESERVATION_TTL_MS };
export const DEFAULT_PREFIX = 'sealroom:relay:';
/** A node that has not refreshed for this long is dead: its meetings are re-placed on demand. */
export const DEFAULT_NODE_TTL_MS = 2000;
/** Liveness refresh and reconciliation period (several refreshes per TTL survive a slow tick). */
export const DEFAULT_REFRESH_MS = 500;
/** A meeting entry outlives its (dead) host this long at most; alive hosts refresh it. */
export const DEFAULT_MEETING_TTL_MS = 30_000;
/** A placement not yet created on its node counts as load for this long (clients follow redirects fast). */
export const PENDING_PLACEMENT_MS = 15_000;
/** Every Redis command fails after this: a relay never waits on Redis longer than this per request. */
export const COMMAND_TIMEOUT_MS = 1000;
/** Reconnect period while Redis is unreachable. */
export const RECONNECT_MS = 300;
/** How often the live node list (status(), /healthz) is re-read: it costs O(nodes) per read. */
export const NODE_LIST_REFRESH_MS = 2000;
/**
 * After Redis came back empty, how long (beyond nodeTtlMs + 2 × refreshMs, the time every live host
 * needs to reconnect and re-publish) a meeting id asked for explicitly is not placed anew.
 */
export function resyncGraceMs(nodeTtlMs: number, refreshMs: number): number {
  return nodeTtlMs + 2 * refreshMs + RECONNECT_MS;
}
/** Fresh meeting ids drawn per placement attempt (all of them taken is astronomically unlikely). */
const FRESH_CANDIDATES = 8;

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
// Same rule as validurl() in scripts.ts: ws(s)://host[:port][/path], nothing that could smuggle
// credentials, a query, or odd characters into a redirect.
const NODE_URL = /^wss?:\/\/[A-Za-z0-9.\-[\]:]+(\/[A-Za-z0-9\-._~%/]*)?$/;

/** True for a URL a redirect may point at: what Redis says about a node is checked before use. */
export function isNodeUrl(url: unknown): url is string {
  if (typeof url !== 'string' || url.length > 512 || !NODE_URL.test(url)) return false;
  try {
    const u = new URL(url);
    return (u.protocol === 'ws:' || u.protocol === 'wss:') && u.hostname !== '' && !u.username && !u.password;
  } catch {
    return false;
  }
}

/** A random node id for `sealroom relay` without --node-id. */
export function newNodeId(): string {
  return `node-${randomBytes(4).toString('hex')}`;
}

export interface RedisClusterOptions {
  redisUrl: string;
  nodeId: string;
  /** Public WebSocket URL of this node (what redirects point at). */
  url: string;
  log: Logger;
  prefix?: string;
  nodeTtlMs?: number;
  refreshMs?: number;
  meetingTtlMs?: number;
  reservationTtlMs?: number;
}

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
type Scripts = Record<'srPlace' | 'srLocate' | 'srReconcile' | 'srRelease' | 'srDeregister', ScriptFn>;

const UNAVAILABLE: Placement = {
  kind: 'refused',
  code: 'cluster-unavailable',
  message: 'the cluster registry is unreachable; retry shortly',
};
// Retriable like an outage: the clients' resume loop asks again until the grace is over.
const RESYNCING: Placement = {
  kind: 'refused',
  code: 'cluster-unavailable',
  message: 'the cluster registry is resynchronising after a Redis restart; retry shortly',
};

export class RedisCluster extends EventEmitter<ClusterEvents> implements ClusterPort {
  readonly nodeId: string;
  readonly url: string;
  readonly #redisUrl: string;
  readonly #log: Logger;
  readonly #prefix: string;
  readonly #nodeTtlMs: number;
  readonly #refreshMs: number;
  readonly #meetingTtlMs: number;
  readonly #reservationTtlMs: number;
  #redis: Redis | undefined;
  #hostedMeetings: () => HostedMeeting[] = () => [];
  #timer: NodeJS.Timeout | undefined;
  #draining = false;
  #stopped = false;
  #connected = false;
  #nodes: ClusterNodeInfo[] = [];
  /** What this node published (meeting → leader): entries to remove once no longer hosted. */
  #published = new Map<string, string>();
  /** Meetings 'lost' was emitted for (once each, until they stop being hosted here). */
  #lost = new Set<string>();
  /** Reconciliations run one at a time; a reconnect queues a fresh one behind a running one. */
  #chain: Promise<void> = Promise.resolve();
  #inFlight = false;
  #lastNodeList = 0;
  /** The boot marker last seen in Redis ('' = none yet): a different or missing one = Redis lost its data. */
  #epoch = '';

  constructor(opts: RedisClusterOptions) {
    super();
    if (!NODE_ID.test(opts.nodeId))
      throw new Error(`invalid cluster node id: ${JSON.stringify(opts.nodeId)}`);
    if (!isNodeUrl(opts.url)) throw new Error(`invalid public node URL (ws:// or wss://): ${opts.url}`);
    this.nodeId = opts.nodeId;
    this.url = opts.url;
    this.#redisUrl = opts.redisUrl;
    this.#log = opts.log;
    this.#prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.#nodeTtlMs = opts.nodeTtlMs ?? DEFAULT_NODE_TTL_MS;
    this.#refreshMs = opts.refreshMs ?? DEFAULT_REFRESH_MS;
    this.#meetingTtlMs = opts.meetingTtlMs ?? DEFAULT_MEETING_TTL_MS;
    this.#reservationTtlMs = opts.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
    if (this.#refreshMs * 2 > this.#nodeTtlMs) {
      throw new Error(
        'cluster refreshMs must be at most half of nodeTtlMs (one missed refresh must not kill a node)',
      );
    }
  }

  /**
   * Never rejects because Redis is down: the node serves its own meetings and answers
   * 'cluster-unavailable' to placements until Redis answers, then registers ('resynced').
   * Resolves after the first registration, or after about one command timeout without Redis.
   */
  async start(hostedMeetings: () => HostedMeeting[]): Promise<void> {
    if (this.#redis) throw new Error('RedisCluster already started');
    this.#hostedMeetings = hostedMeetings;
    const redis = new Redis(this.#redisUrl, {
      // Fail fast instead of queueing: a create waits at most COMMAND_TIMEOUT_MS on Redis.
      enableOfflineQueue: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: () => RECONNECT_MS,
    });
    this.#redis = redis;
    redis.defineCommand('srPlace', { numberOfKeys: 0, lua: PLACE_SCRIPT });
    redis.defineCommand('srLocate', { numberOfKeys: 0, lua: LOCATE_SCRIPT });
    redis.defineCommand('srReconcile', { numberOfKeys: 0, lua: RECONCILE_SCRIPT });
    redis.defineCommand('srRelease', { numberOfKeys: 0, lua: RELEASE_SCRIPT });
    redis.defineCommand('srDeregister', { numberOfKeys: 0, lua: DEREGISTER_SCRIPT });
    // Without an 'error' listener ioredis prints every failed reconnect to the console.
    redis.on('error', (err: Error) => this.#log.debug({ err: err.message }, 'cluster: redis error'));
    redis.on('close', () => {
      if (this.#connected) this.#log.warn({ nodeId: this.nodeId }, 'cluster: lost the connection to redis');
      this.#connected = false;
    });
    const firstSync = new Promise<void>((resolve) => {
      redis.on('ready', () => {
        this.#connected = true;
        this.#lastNodeList = 0;
        this.#log.info({ nodeId: this.nodeId }, 'cluster: connected to redis, resynchronising');
        // After a (re)connect Redis may have restarted empty: republish everything at once.
        void this.#reconcileQueued().then((ok) => {
          if (ok) this.emit('resynced');
          resolve();
        });
      });
    });
    this.#timer = setInterval(() => this.#tick(), this.#refreshMs);
    this.#timer.unref();
    const timeout = new Promise<void>((r) => setTimeout(r, COMMAND_TIMEOUT_MS + 500).unref());
    await Promise.race([firstSync, timeout]);
    if (!this.#connected)
      this.#log.warn({ nodeId: this.nodeId }, 'cluster: redis unreachable at start; retrying');
  }

  async placeCreate(
    meetingId: string | undefined,
    deviceId: string,
    drawId: () => string,
  ): Promise<Placement> {
    const fresh = meetingId === undefined;
    // Fresh ids: the script takes the first candidate that is neither placed nor reserved.
    for (let attempt = 0; attempt < 3; attempt++) {
      const candidates = fresh ? [...new Set(Array.from({ length: FRESH_CANDIDATES }, drawId))] : [meetingId];
      const res = await this.#call('srPlace', [
        this.nodeId,
        deviceId,
        this.#meetingTtlMs,
        this.#reservationTtlMs,
        PENDING_PLACEMENT_MS,
        fresh ? '1' : '0',
        ...candidates,
      ]);
      if (res === undefined) return UNAVAILABLE;
      if (!Array.isArray(res)) break;
      if (res[0] === 'retry') continue;
      if (res[0] === 'refused') {
        if (res[1] === 'resyncing') {
          this.#log.info({ meetingId, nodeId: this.nodeId }, 'cluster: resynchronising; id not placed yet');
          return RESYNCING;
        }
        if (res[1] === 'id-bound')
          return {
            kind: 'refused',
            code: 'id-bound',
            message: 'this meeting id is reserved for another device',
          };
        return { kind: 'refused', code: 'no-node', message: 'no relay node accepts new meetings right now' };
      }
      if (res[0] === 'at' && typeof res[1] === 'string') return this.#placement(res[1], res[2], res[3]);
      break;
    }
    this.#log.warn({ nodeId: this.nodeId }, 'cluster: placement gave no usable answer');
    return UNAVAILABLE;
  }

  async locate(meetingId: string): Promise<Placement> {
    const res = await this.#call('srLocate', [meetingId]);
    if (res === undefined) return UNAVAILABLE;
    if (Array.isArray(res) && res[0] === 'at') return this.#placement(meetingId, res[1], res[2]);
    // Lives nowhere alive: here, where the local registry answers 'no-meeting' (the client retries).
    return { kind: 'here', meetingId };
  }

  async hosted(meeting: HostedMeeting): Promise<void> {
    this.#published.set(meeting.meetingId, meeting.leaderDeviceId);
    this.#lost.delete(meeting.meetingId);
    // Same script as the periodic pass, for this one meeting: visible to other nodes at once.
    let count = 1;
    try {
      count = Math.max(1, this.#hostedMeetings().length);
    } catch {
      // the periodic pass logs it; the count is only the load hint
    }
    await this.#reconcileOnce([meeting], [], count, false);
  }

  async released(meetingId: string, freeId: boolean): Promise<void> {
    const leader = this.#published.get(meetingId) ?? '';
    this.#published.delete(meetingId);
    this.#lost.delete(meetingId);
    const res = await this.#call('srRelease', [this.nodeId, meetingId, freeId ? '1' : '0', leader]);
    // Redis unreachable: the next reconciliation drops the entry as no longer hosted (a freed
    // reservation then just expires: it names the leader, who may still re-create).
    if (res === undefined && leader !== '') this.#published.set(meetingId, leader);
  }

  async setDraining(): Promise<void> {
    this.#draining = true;
    this.#lastNodeList = 0;
    await this.#reconcileQueued();
  }

  status(): ClusterStatus {
    return {
      nodeId: this.nodeId,
      url: this.url,
      connected: this.#connected,
      draining: this.#draining,
      nodes: this.#nodes.map((n) => ({ ...n })),
    };
  }

  async stop(deregister: boolean): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    const redis = this.#redis;
    if (!redis) return;
    await this.#chain;
    if (deregister) await this.#call('srDeregister', [this.nodeId, ...this.#published.keys()], true);
    redis.disconnect();
    this.#connected = false;
  }

  /** A placement answer from Redis, checked: a garbage URL is never redirected to. */
  #placement(meetingId: string, nodeId: unknown, url: unknown): Placement {
    if (nodeId === this.nodeId) return { kind: 'here', meetingId };
    if (typeof nodeId !== 'string' || !isNodeUrl(url)) {
      this.#log.warn({ meetingId }, 'cluster: refusing a placement on a node with an invalid URL');
      return { kind: 'refused', code: 'no-node', message: 'no usable relay node for this meeting' };
    }
    return { kind: 'elsewhere', meetingId, nodeId, url };
  }

  #tick(): void {
    // A slow Redis must not pile up passes; the next tick catches up.
    if (this.#inFlight || this.#stopped || this.#redis?.status !== 'ready') return;
    void this.#reconcileQueued();
  }

  /** One full reconciliation pass after any running one; true when it reached Redis. */
  #reconcileQueued(): Promise<boolean> {
    const run = this.#chain.then(() => this.#reconcile());
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #reconcile(): Promise<boolean> {
    if (this.#stopped) return false;
    this.#inFlight = true;
    try {
      let hosted: HostedMeeting[];
      try {
        hosted = this.#hostedMeetings();
      } catch (err) {
        this.#log.error({ err }, 'cluster: hostedMeetings() threw');
        return false;
      }
      const now = new Set(hosted.map((m) => m.meetingId));
      const gone = [...this.#published.keys()].filter((id) => !now.has(id));
      for (const id of this.#lost) if (!now.has(id)) this.#lost.delete(id);
      // A meeting already reported lost is not re-asserted: the other node's copy wins.
      const live = hosted.filter((m) => !this.#lost.has(m.meetingId));
      const withNodes = Date.now() - this.#lastNodeList >= NODE_LIST_REFRESH_MS || this.#nodes.length === 0;
      const ok = await this.#reconcileOnce(live, gone, live.length, withNodes);
      if (ok) {
        for (const id of gone) this.#published.delete(id);
      }
      return ok;
    } finally {
      this.#inFlight = false;
    }
  }

  async #reconcileOnce(
    hosted: HostedMeeting[],
    gone: string[],
    count: number,
    withNodes: boolean,
  ): Promise<boolean> {
    const args: (string | number)[] = [
      this.nodeId,
      this.url,
      this.#draining ? '1' : '0',
      count,
      this.#nodeTtlMs,
      this.#meetingTtlMs,
      this.#reservationTtlMs,
      PENDING_PLACEMENT_MS,
      hosted.length,
      withNodes ? '1' : '0',
      this.#epoch,
      randomBytes(6).toString('hex'),
      resyncGraceMs(this.#nodeTtlMs, this.#refreshMs),
    ];
    for (const m of hosted) args.push(m.meetingId, m.leaderDeviceId);
    args.push(...gone);
    const res = await this.#call('srReconcile', args);
    if (!Array.isArray(res)) return false;
    const [lost, flat, , epoch] = res as [unknown, unknown, unknown, unknown];
    if (typeof epoch === 'string' && epoch !== this.#epoch) {
      if (this.#epoch !== '')
        this.#log.warn({ nodeId: this.nodeId }, 'cluster: redis came back empty; resynchronising');
      this.#epoch = epoch;
    }
    for (const m of hosted)
      if (!(Array.isArray(lost) && lost.includes(m.meetingId)))
        this.#published.set(m.meetingId, m.leaderDeviceId);
    if (withNodes && Array.isArray(flat)) {
      this.#nodes = parseNodes(flat);
      this.#lastNodeList = Date.now();
    }
    if (Array.isArray(lost)) {
      for (const id of lost) {
        if (typeof id !== 'string' || this.#lost.has(id)) continue;
        this.#lost.add(id);
        this.#published.delete(id);
        this.#log.warn(
          { meetingId: id, nodeId: this.nodeId },
          'cluster: meeting re-placed on another node; ending it here',
        );
        this.emit('lost', id);
      }
    }
    return true;
  }

  /** Runs a script; undefined when Redis is unreachable or the call failed (logged, never thrown). */
  async #call(name: keyof Scripts, args: (string | number)[], quiet = false): Promise<unknown> {
    const redis = this.#redis;
    if (!redis || (this.#stopped && name !== 'srDeregister')) return undefined;
    try {
      const res = await (redis as unknown as Scripts)[name](this.#prefix, ...args);
      this.#connected = true;
      return res;
    } catch (err) {
      const message = (err as Error).message;
      // A hung Redis keeps the socket open: a timeout is the only sign it is not there.
      if (/timed out/i.test(message)) this.#connected = false;
      if (!quiet) this.#log.debug({ err: message, call: name }, 'cluster: redis call failed');
      return undefined;
    }
  }
}

function parseNodes(flat: unknown[]): ClusterNodeInfo[] {
  const nodes: ClusterNodeInfo[] = [];
  for (let i = 0; i + 3 < flat.length; i += 4) {
    const [id, url, draining, load] = flat.slice(i, i + 4);
    if (typeof id !== 'string' || !isNodeUrl(url)) continue;
    nodes.push({ id, url, draining: draining === '1', meetings: Number(load) || 0 });
  }
  return nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
