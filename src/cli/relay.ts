// `sealroom relay`: the oblivious meeting relay (signalling, admission, E2EE bulletin board, SFU).
// Heavy modules (fastify, werift) load only when the command runs.
import type { Command } from 'commander';

export interface RelayCommandOptions {
  ca?: string[];
  devCa?: string;
  host: string;
  port: string;
  videoCodec: string;
  revocations?: string;
  record?: string;
  logJson?: boolean;
  stateDir?: string;
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
      'provisioning service base URL: refuse certificates on its signed revocation list',
    )
    .option(
      '--record <file>',
      'development only: append everything crossing the relay to <file> (JSON lines)',
    )
    .option(
      '--state-dir <dir>',
      'keep meeting-id reservations in <dir> so ids survive a restart bound to their devices (recommended)',
    )
    .option('--log-json', 'log JSON lines instead of readable text')
    .addHelpText(
      'after',
      '\nExample:\n  sealroom relay --ca /etc/sealroom/org-ca.pem --port 7443 --revocations https://provisioning.example',
    )
    .action(async (opts: RelayCommandOptions) => {
      await runRelayCommand(opts);
    });
}

export async function runRelayCommand(opts: RelayCommandOptions): Promise<void> {
  const { readFileSync, createWriteStream } = await import('node:fs');
  const { cliLogger } = await import('../relay/readable-log.js');
  const { startRelay } = await import('../relay/server.js');
  const log = cliLogger('relay', { json: opts.logJson ?? false });
  const caPems = (opts.ca ?? []).map((f) => readFileSync(f, 'utf8'));
  if (opts.devCa) {
    const { loadOrCreateDevelopmentCa } = await import('../relay/dev-ca-store.js');
    caPems.push((await loadOrCreateDevelopmentCa(opts.devCa)).certPem);
  }
  if (caPems.length === 0) throw new Error('no trusted org CA: pass --ca <file> or --dev-ca <dir>');
  const videoCodec = opts.videoCodec.toUpperCase();
  if (videoCodec !== 'H264' && videoCodec !== 'VP8') throw new Error('--video-codec must be H264 or VP8');
  let isRevoked: ((serial: string) => boolean) | undefined;
  let stopFeed = () => {};
  if (opts.revocations) {
    const { RevocationFeed } = await import('../pki/index.js');
    const feeds = caPems.map(
      (caCertPem) =>
        new RevocationFeed({
          baseUrl: opts.revocations ?? '',
          caCertPem,
          onError: (err) => log.warn({ err: err.message }, 'revocation list not refreshed'),
        }),
    );
    // The first list is in force before the relay accepts anyone; polling keeps it current.
    await Promise.all(
      feeds.map((f) =>
        f
          .refresh()
          .catch((err: Error) => log.warn({ err: err.message }, 'revocation list unavailable at start')),
      ),
    );
    for (const f of feeds) f.start();
    isRevoked = (serial) => feeds.some((f) => f.isRevoked(serial));
    stopFeed = () => {
      for (const f of feeds) f.stop();
    };
  }
  const recordStream = opts.record ? createWriteStream(opts.record, { flags: 'a' }) : undefined;
  const relay = await startRelay({
    log,
    trust: { caPems, ...(isRevoked ? { isRevoked } : {}) },
    host: opts.host,
    port: Number(opts.port),
    videoCodec,
    ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
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
  console.log(JSON.stringify({ relay: relay.url }));
  const shutdown = async (signal: string) => {
    log.info({ signal }, 'relay stopping');
    stopFeed();
    await relay.close();
    recordStream?.end();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}
