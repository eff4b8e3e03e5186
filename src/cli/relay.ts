// `sealroom relay`: the oblivious meeting relay (signalling, admission, E2EE bulletin board, SFU).
// Heavy modules (fastify, werift) load only when the command runs.
import type { Command } from 'commander';

/** On SIGTERM/SIGINT, close() gets this long (after the drain) before the process exits anyway. */
export const CLOSE_DEADLINE_MS = 5000;

export interface RelayCommandOptions {
  ca?: string[];
  devCa?: string;
  host: string;
  port: string;
  videoCodec: string;
  revocations?: string;
  revocationsTlsCa?: string;
  revocationsInterval: string;
  crlGrace: string;
  crlFailOpen?: boolean;
  record?: string;
  logJson?: boolean;
  stateDir?: string;
  maxConnections?: string;
  maxConnectionsPerAddress?: string;
  allowOrigin?: string[];
  redis?: string;
  nodeId?: string;
  publicUrl?: string;
  drainTimeout: string;
}

export function registerRelayCommand(program: Command): void {
  program
    .command('relay')
    .description(
      'run the oblivious relay: device authentication, meetings, E2EE bulletin board and SFU (never holds a key)',
    )
    .option('--ca <file...>', 'PEM certificate of a trusted org CA (repeatable)')
    .option('--dev-ca <dir>', 'trust (and create if missing) a development org CA kept in <dir>')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port for HTTP/WebSocket (0 picks a free one)', '7443')
    .option('--video-codec <codec>', 'video codec negotiated with every device: H264 or VP8', 'H264')
    .option(
      '--revocations <url>',
      'provisioning service base URL: poll its X.509 CRL (GET /v1/revocations, signed by the org CA) and refuse revoked certificates; new sessions are refused while no current CRL is held (see --crl-grace)',
    )
    .option(
      '--revocations-tls-ca <file>',
      "PEM of the provisioning service's TLS CA (<dataDir>/tls/ca.pem): the CRL is fetched trusting only that CA",
    )
    .option('--revocations-interval <seconds>', 'how often the CRL is fetched', '60')
    .option(
      '--crl-grace <seconds>',
      'how long past its nextUpdate a CRL is still used before new sessions are refused',
      '86400',
    )
    .option(
      '--crl-fail-open',
      'NOT RECOMMENDED: keep accepting new sessions with no CRL or an expired one (revoked devices may then get in)',
    )
    .option(
      '--record <file>',
      'development only: append everything crossing the relay to <file> (JSON lines)',
    )
    .option(
      '--state-dir <dir>',
      'keep meeting-id reservations and the newest CRL in <dir>, so ids survive a restart bound to their devices and an older CRL is refused after one (recommended)',
    )
    .option('--max-connections <n>', 'WebSocket connections in total (default 2000)')
    .option(
      '--max-connections-per-address <n>',
      'connections from one address, IPv6 per /64 (default 20; raise it for rooms behind one NAT)',
    )
    .option(
      '--allow-origin <origin...>',
      'web origin whose join page may connect (scheme://host[:port] of the provisioning service serving /join/; repeatable). A browser from any other origin is refused (HTTP 403); devices send no Origin and are unaffected',
    )
    .option(
      '--redis <url>',
      'run as one node of a clustered relay sharing this Redis (redis://host:port[/db]): meetings are placed by load on the live nodes, and create/join for a meeting hosted elsewhere is redirected there (docs/relay.md "Several nodes")',
    )
    .option(
      '--node-id <id>',
      "this node's id in the cluster ([A-Za-z0-9._-], up to 64; default a random one per start)",
    )
    .option(
      '--public-url <ws-url>',
      'the WebSocket URL devices are redirected to for meetings hosted on this node, e.g. wss://relay-2.example:7443/v1/ws (default the listen URL); clients follow it only if its host is one they were configured with',
    )
    .option(
      '--drain-timeout <seconds>',
      'clustered: on SIGTERM stop taking new meetings, let the ones here end for up to this long, then move the rest to other nodes (their rooms reconnect, close 4012) and exit',
      '30',
    )
    .option('--log-json', 'log JSON lines instead of readable text')
    .addHelpText(
      'after',
      '\nExample:\n  sealroom relay --ca /etc/sealroom/org-ca.pem --port 7443 --state-dir /var/lib/sealroom-relay \\\n    --revocations https://provisioning.example:8443 --revocations-tls-ca /etc/sealroom/provisioning-tls-ca.pem \\\n    --allow-origin https://provisioning.example:8443\n\nThree nodes sharing one Redis (each a complete relay; devices list all three with --relay):\n  sealroom relay --dev-ca ./ca --port 7441 --redis redis://127.0.0.1:6379 --node-id r1\n  sealroom relay --dev-ca ./ca --port 7442 --redis redis://127.0.0.1:6379 --node-id r2\n  sealroom relay --dev-ca ./ca --port 7443 --redis redis://127.0.0.1:6379 --node-id r3\n\nRevocation: docs/revocation.md. People joining from a browser: docs/relay.md ("People").',
    )
    .action(async (opts: RelayCommandOptions) => {
      await runRelayCommand(opts);
    });
}

export async function runRelayCommand(opts: RelayCommandOptions): Promise<void> {
  const { readFileSync, createWriteStream } = await import('node:fs');
  const { cliLogger } = await import('../relay/readable-log.js');
  const { isRelayNodeUrl, normalizeOrigin, startRelay } = await import('../relay/server.js');
  const log = cliLogger('relay', { json: opts.logJson ?? false });
  const caPems = (opts.ca ?? []).map((f) => readFileSync(f, 'utf8'));
  if (opts.devCa) {
    const { loadOrCreateDevelopmentCa } = await import('../relay/dev-ca-store.js');
    caPems.push((await loadOrCreateDevelopmentCa(opts.devCa)).certPem);
  }
  if (caPems.length === 0) throw new Error('no trusted org CA: pass --ca <file> or --dev-ca <dir>');
  const videoCodec = opts.videoCodec.toUpperCase();
  if (videoCodec !== 'H264' && videoCodec !== 'VP8') throw new Error('--video-codec must be H264 or VP8');
  let revocation: import('../pki/revocation-source.js').RevocationSource | undefined;
  let stopFeed = () => {};
  if (opts.revocations) {
    const { RevocationFeed, combineRevocationSources } = await import('../pki/revocation-feed.js');
    const graceS = Number(opts.crlGrace);
    const intervalS = Number(opts.revocationsInterval);
    if (!Number.isFinite(graceS) || graceS < 0) throw new Error('--crl-grace must be a number of seconds');
    if (!Number.isFinite(intervalS) || intervalS <= 0)
      throw new Error('--revocations-interval must be a positive number of seconds');
    let pinnedFetch: typeof fetch | undefined;
    if (opts.revocationsTlsCa) {
      const { createPinnedFetch } = await import('../util/pinned-fetch.js');
      pinnedFetch = createPinnedFetch(readFileSync(opts.revocationsTlsCa, 'utf8'));
    } else if (opts.revocations.startsWith('https:')) {
      log.warn({}, 'no --revocations-tls-ca: the CRL is fetched trusting the system CA store');
    }
    if (!opts.stateDir)
      log.warn(
        {},
        'no --state-dir: the newest CRL is not kept across restarts (an older one would be accepted after one)',
      );
    if (opts.crlFailOpen)
      log.warn({}, '--crl-fail-open: new sessions are accepted even without a current CRL (not recommended)');
    const feeds = caPems.map(
      (caCertPem) =>
        new RevocationFeed({
          baseUrl: opts.revocations ?? '',
          caCertPem,
          intervalMs: intervalS * 1000,
          graceMs: graceS * 1000,
          failClosed: !opts.crlFailOpen,
          ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
          ...(pinnedFetch ? { fetch: pinnedFetch } : {}),
          onError: (err) => log.warn({ err: err.message }, 'revocation list (CRL) not refreshed'),
        }),
    );
    // The persisted CRL and a first fetch are in force before the relay accepts anyone; polling
    // keeps it current. Without any, new sessions are refused (fail closed) until one arrives.
    await Promise.all(
      feeds.map((f) =>
        f.load().catch((err: Error) => log.warn({ err: err.message }, 'persisted CRL unreadable')),
      ),
    );
    await Promise.all(
      feeds.map((f) =>
        f
          .refresh()
          .catch((err: Error) =>
            log.warn({ err: err.message }, 'revocation list (CRL) unavailable at start'),
          ),
      ),
    );
    for (const f of feeds) f.start();
    revocation = combineRevocationSources(feeds);
    const st = revocation.status();
    if (!st.acceptingNewSessions)
      log.error(
        { state: st.state },
        'no current certificate revocation list: new sessions are refused until one arrives',
      );
    stopFeed = () => {
      for (const f of feeds) f.stop();
    };
  } else {
    log.warn({}, 'no --revocations: revoked certificates are not refused (development only)');
  }
  const count = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number ≥ 1, not "${value}"`);
    return n;
  };
  const maxConnections = count('--max-connections', opts.maxConnections);
  const maxConnectionsPerAddress = count('--max-connections-per-address', opts.maxConnectionsPerAddress);
  const allowedOrigins = (opts.allowOrigin ?? []).map(normalizeOrigin); // fails fast on a typo
  const drainTimeoutS = Number(opts.drainTimeout);
  if (!Number.isFinite(drainTimeoutS) || drainTimeoutS < 0)
    throw new Error(`--drain-timeout must be a number of seconds, not "${opts.drainTimeout}"`);
  if (!opts.redis && (opts.nodeId !== undefined || opts.publicUrl !== undefined))
    throw new Error('--node-id and --public-url need --redis (they configure a cluster node)');
  let cluster: ((listening: { url: string }) => import('../relay/cluster/port.js').ClusterPort) | undefined;
  if (opts.redis) {
    const { RedisCluster, newNodeId } = await import('../relay/cluster/redis-cluster.js');
    const redisUrl = opts.redis;
    const nodeId = opts.nodeId ?? newNodeId();
    const publicUrl = opts.publicUrl;
    if (publicUrl !== undefined && !isRelayNodeUrl(publicUrl))
      throw new Error(`--public-url must be ws(s)://host[:port][/prefix]/v1/ws, not "${publicUrl}"`);
    // Redirects carry this URL to devices: a wildcard listen address is no place to connect to.
    if (publicUrl === undefined && ['0.0.0.0', '::', '[::]'].includes(opts.host))
      throw new Error(
        `--host ${opts.host} listens everywhere: pass --public-url (the URL devices reach this node at)`,
      );
    // Fails fast on a bad node id or URL; Redis being down is not fatal (the node registers once it answers).
    cluster = ({ url }) => new RedisCluster({ redisUrl, nodeId, url: publicUrl ?? url, log });
  }
  const recordStream = opts.record ? createWriteStream(opts.record, { flags: 'a' }) : undefined;
  const relay = await startRelay({
    log,
    trust: { caPems },
    ...(revocation ? { revocation } : {}),
    host: opts.host,
    port: Number(opts.port),
    videoCodec,
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    allowedOrigins,
    ...(cluster ? { cluster } : {}),
    limits: {
      ...(maxConnections !== undefined ? { maxConnections } : {}),
      ...(maxConnectionsPerAddress !== undefined ? { maxConnectionsPerAddress } : {}),
    },
    ...(recordStream
      ? {
          record: (e) =>
            recordStream.write(
              `${JSON.stringify(e.kind === 'rtp' ? { ...e, payload: e.payload.toString('base64') } : e)}\n`,
            ),
        }
      : {}),
  });
  // stdout carries one line other programs (the demo) can read: where the relay listens.
  console.log(
    JSON.stringify({
      relay: relay.url,
      ...(relay.cluster ? { nodeId: relay.cluster.nodeId, publicUrl: relay.cluster.url } : {}),
    }),
  );
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      // A second signal while draining: stop now (the meetings left resume elsewhere, as after a crash).
      log.warn({ signal }, 'relay stopping now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'relay stopping');
    // Clustered, SIGTERM drains first: the meetings here end or move before the node goes.
    if (signal === 'SIGTERM' && relay.cluster) {
      try {
        await relay.drain({ timeoutMs: drainTimeoutS * 1000 });
      } catch (err) {
        log.error({ err: (err as Error).message }, 'drain failed; stopping anyway');
      }
    }
    stopFeed();
    // Whatever happens in close() (a peer that never finishes its close handshake, a hung SFU or
    // Redis call), the process goes: a drained node that never exits blocks a rolling restart.
    setTimeout(() => {
      log.error({ afterMs: CLOSE_DEADLINE_MS }, 'relay did not close in time; exiting anyway');
      process.exit(1);
    }, CLOSE_DEADLINE_MS).unref();
    await relay.close();
    recordStream?.end();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
