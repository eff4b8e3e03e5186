// Prometheus metrics of the relay (GET /metrics): counts and gauges only — never ids, keys or
// anything from a payload.
import { Counter, Gauge, Registry } from 'prom-client';

export function createRelayMetrics(
  sample: () => {
    connections: number;
    meetings: number;
    mediaPeers: number;
    packetsReceived: number;
    packetsForwarded: number;
  },
) {
  const registry = new Registry();
  const authentications = new Counter({
    name: 'sealroom_relay_authentications_total',
    help: 'Device authentication attempts by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
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
  return { registry, authentications };
}
