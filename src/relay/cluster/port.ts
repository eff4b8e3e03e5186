// What a relay node needs from the cluster (docs/relay.md "Several nodes"): where a meeting lives,
// placing a new one by load, and the shared meeting-id reservations. The relay server talks only to
// this interface; ./redis-cluster.ts implements it on Redis (the registry and bus), shared by all nodes.
import type { EventEmitter } from 'node:events';

export interface ClusterNodeInfo {
  id: string;
  /** Public WebSocket URL devices connect to (ws(s)://host:port/v1/ws). */
  url: string;
  /** Meetings hosted or placed there and not yet created (the placement load). */
  meetings: number;
  draining: boolean;
}

/** Where a `create` or `join` for a meeting must be served. */
export type Placement =
  /** On this node: go on with the local registry (which may still say 'no-meeting'). */
  | { kind: 'here'; meetingId: string }
  /** On another live node: answer `redirect`. */
  | { kind: 'elsewhere'; meetingId: string; nodeId: string; url: string }
  /** Not placed: answer `error` with this code (the client's resume loop retries the retriable ones). */
  | { kind: 'refused'; code: ClusterRefusal; message: string };

/**
 * - id-bound: the meeting id is reserved for another device (the cluster-wide reservation).
 * - cluster-unavailable: Redis unreachable (no placement possible; meetings already here go on).
 * - no-node: no live node accepts new meetings (all draining).
 */
export type ClusterRefusal = 'id-bound' | 'cluster-unavailable' | 'no-node';

/** A meeting this node hosts, as the periodic reconciliation publishes it. */
export interface HostedMeeting {
  meetingId: string;
  /** The device the meeting id is reserved for (its leader's). */
  leaderDeviceId: string;
}

export interface ClusterStatus {
  nodeId: string;
  url: string;
  /** Connected to Redis right now. */
  connected: boolean;
  draining: boolean;
  /** Live nodes as last read (this one included). */
  nodes: ClusterNodeInfo[];
}

export interface ClusterEvents {
  /**
   * The meeting is mapped to another live node although it is hosted here (this node was
   * unreachable long enough to be declared dead and the meeting was re-placed). The relay ends its
   * local copy: members' sockets close with CLOSE.moved and they resume on the new host.
   */
  lost: [meetingId: string];
  /** Connected (again) to Redis and re-published everything this node holds. */
  resynced: [];
}

export interface ClusterPort extends EventEmitter<ClusterEvents> {
  readonly nodeId: string;
  readonly url: string;
  /**
   * Registers the node and starts the refresh loop: every refreshMs it re-publishes its liveness
   * (TTL nodeTtlMs), and reconciles the meeting map with `hostedMeetings()` (re-asserting entries
   * after a Redis restart, dropping those it no longer hosts, emitting 'lost' for re-placed ones).
   */
  start(hostedMeetings: () => HostedMeeting[]): Promise<void>;
  /**
   * A `create`: where meeting `meetingId` (reserved for `deviceId`) lives, placing it by load on a
   * live non-draining node when it lives nowhere alive. Without a meeting id a fresh one is drawn
   * with `drawId` (never one bound or placed). Atomic across nodes (one Lua script).
   */
  placeCreate(meetingId: string | undefined, deviceId: string, drawId: () => string): Promise<Placement>;
  /** A `join`: where the meeting lives; 'here' when it lives nowhere alive (the registry then says 'no-meeting'). */
  locate(meetingId: string): Promise<Placement>;
  /** This node now hosts the meeting (after the local create succeeded): publish at once. */
  hosted(meeting: HostedMeeting): Promise<void>;
  /** The meeting ended here; `freeId` also drops its reservation (the leader ended it or left). */
  released(meetingId: string, freeId: boolean): Promise<void>;
  /** Stop taking new meetings (SIGTERM): placement skips this node from now on. */
  setDraining(): Promise<void>;
  status(): ClusterStatus;
  /** Stops refreshing; `deregister` removes the node at once (a graceful exit) instead of letting it expire. */
  stop(deregister: boolean): Promise<void>;
}
