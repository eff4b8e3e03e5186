// Prometheus metrics of the relay (GET /metrics): counts and gauges only — never ids, keys or
// anything from a payload.
import { Counter, Gauge, Registry } from 'prom-client';
import type { RevocationStatus } from '../pki/revocation-source.js';
import type { ClusterStatus } from './cluster/port.js';

/** Why the relay refused a connection, a frame or a session (label of sealroom_relay_refusals_total). */
export const REFUSAL_REASONS = [
  'auth-timeout',
  'pre-auth-too-large',
  'too-many-connections',
  'too-many-from-address',
  'rate-limited',
  'bad-message',
  'revoked',
  'expired',
  'crl-stale',
  'bad-origin',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const CRL_STATES = ['none', 'fresh', 'stale', 'expired'] as const;

export function createRelayMetrics(
  sample: () => {
    connections: number;
    meetings: number;
    mediaPeers: number;
    packetsReceived: number;
    packetsForwarded: number;
  },
  revocation?: () => RevocationStatus | undefined,
  /** Clustered relay: the node's view of the cluster (undefined until it has joined). */
  clusterStatus?: () => ClusterStatus | undefined,
) {
  const registry = new Registry();
  const authentications = new Counter({
    name: 'sealroom_relay_authentications_total',
    help: 'Device authentication attempts by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'sealroom_relay_refusals_total',
    help: 'Connections, frames and sessions the relay refused or ended, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  // Every reason is exported from the start (0), so a rate() over it works before the first refusal.
  for (const reason of REFUSAL_REASONS) refusals.inc({ reason }, 0);
  const gauge = (name: string, help: string, read: (s: ReturnType<typeof sample>) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(sample()));
      },
    });
  gauge('sealroom_relay_connections', 'Open WebSocket connections', (s) => s.connections);
  gauge('sealroom_relay_meetings', 'Meetings in progress', (s) => s.meetings);
  gauge('sealroom_relay_media_peers', 'Media PeerConnections at the SFU', (s) => s.mediaPeers);
  gauge(
    'sealroom_relay_rtp_received_packets',
    'RTP packets received from publishers (current peers)',
    (s) => s.packetsReceived,
  );
  gauge(
    'sealroom_relay_rtp_forwarded_packets',
    'RTP packet copies forwarded to subscribers (current peers)',
    (s) => s.packetsForwarded,
  );
  if (revocation) {
    new Gauge({
      name: 'sealroom_relay_crl_state',
      help: 'Freshness of the CRL in force: 1 for the current state, 0 for the others',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        const state = revocation()?.state ?? 'none';
        for (const s of CRL_STATES) this.set({ state: s }, s === state ? 1 : 0);
      },
    });
    new Gauge({
      name: 'sealroom_relay_crl_next_update_seconds',
      help: 'nextUpdate of the CRL in force, as Unix time in seconds (0 when there is none)',
      registers: [registry],
      collect() {
        const next = revocation()?.nextUpdate;
        this.set(next ? Date.parse(next) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'sealroom_relay_crl_revoked_certificates',
      help: 'Revoked certificate serials in the CRL in force',
      registers: [registry],
      collect() {
        this.set(revocation()?.revoked ?? 0);
      },
    });
    new Gauge({
      name: 'sealroom_relay_accepting_new_sessions',
      help: '1 when new device sessions are accepted, 0 when failing closed (no fresh-enough CRL)',
      registers: [registry],
      collect() {
        this.set(revocation()?.acceptingNewSessions === false ? 0 : 1);
      },
    });
  }
  let cluster: ReturnType<typeof clusterMetrics> | undefined;
  if (clusterStatus) cluster = clusterMetrics(registry, clusterStatus);
  return {
    registry,
    authentications,
    refuse: (reason: RefusalReason) => refusals.inc({ reason }),
    refusals,
    cluster,
  };
}

const CLUSTER_REFUSALS = ['id-bound', 'cluster-unavailable', 'no-node'] as const;

/** A clustered node's gauges (its own view of the cluster) and what placement did for its clients. */
function clusterMetrics(registry: Registry, status: () => ClusterStatus | undefined) {
  const gauge = (name: string, help: string, read: (s: ClusterStatus) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const s = status();
        this.set(s ? read(s) : 0);
      },
    });
  gauge(
    'sealroom_relay_cluster_connected',
    '1 while this node is connected to the cluster registry (Redis)',
    (s) => (s.connected ? 1 : 0),
  );
  gauge(
    'sealroom_relay_cluster_draining',
    '1 once this node is draining (no new meetings placed here)',
    (s) => (s.draining ? 1 : 0),
  );
  gauge(
    'sealroom_relay_cluster_nodes',
    'Live relay nodes in the cluster, as last read',
    (s) => s.nodes.length,
  );
  gauge(
    'sealroom_relay_cluster_node_meetings',
    "This node's placement load as the cluster sees it (meetings hosted and placed), as last read",
    (s) => s.nodes.find((n) => n.id === s.nodeId)?.meetings ?? 0,
  );
  gauge('sealroom_relay_cluster_meetings', 'Placement load summed over the live nodes, as last read', (s) =>
    s.nodes.reduce((n, node) => n + node.meetings, 0),
  );
  const redirects = new Counter({
    name: 'sealroom_relay_redirects_total',
    help: 'create/join requests answered with a redirect to the hosting node',
    labelNames: ['request'] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'sealroom_relay_cluster_refusals_total',
    help: 'create/join requests the cluster placement refused, by code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  for (const code of CLUSTER_REFUSALS) refusals.inc({ code }, 0);
  const moved = new Counter({
    name: 'sealroom_relay_meetings_moved_total',
    help: 'Meetings moved off this node (drain, or re-placed elsewhere while it was unreachable: lost)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of ['drain', 'lost']) moved.inc({ reason }, 0);
  for (const request of ['create', 'join']) redirects.inc({ request }, 0);
  return { redirects, refusals, moved };
}
