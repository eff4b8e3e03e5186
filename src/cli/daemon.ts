// `sealroom daemon`: the room device daemon (meeting client, media worker, kiosk control server).
import type { Command } from 'commander';

export interface DaemonCommandOptions {
  /** One URL (callers of runDaemonCommand) or several (the variadic --relay). */
  relay: string | string[];
  relayRedirectAllow?: string[];
  cert?: string;
  key?: string;
  ca?: string;
  partnerCa?: string[];
  devCa?: string;
  provisioning?: string;
  provisioningCaSha256?: string;
  room?: string;
  dataDir: string;
  controlPort: string;
  media: string;
  profile?: string;
  codec?: string;
  size?: string;
  fps?: string;
  pattern?: string;
  patternSpeed?: string;
  toneHz?: string;
  wall?: boolean;
  kioskTokenFile?: string;
  kioskTokenMode?: string;
  loopbackOnly?: boolean;
  logJson?: boolean;
  /** false with --no-updates. */
  updates?: boolean;
  updateRoot?: string;
  updateConfig?: string;
}

export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description(
      'run the room device daemon: meeting client, media worker and the kiosk control server on loopback',
    )
    .requiredOption(
      '--relay <url...>',
      'relay WebSocket URL, e.g. ws://relay.example:7443/v1/ws; several for a clustered relay ' +
        '(entry nodes, tried in turn; redirects are followed only to their host names)',
    )
    .option(
      '--relay-redirect-allow <origin...>',
      'clustered relay: further origins (ws[s]://host:port) a redirect may send this room to',
    )
    .option('--cert <file>', "this device's X.509 certificate (PEM)")
    .option('--key <file>', "this device's Ed25519 identity key (PEM, mode 0600)")
    .option(
      '--ca <file>',
      'with --cert: the org CA to pin (PEM); only rooms it (or a partner CA) certifies are trusted',
    )
    .option(
      '--partner-ca <file>',
      'with --cert: a partner-org CA to trust for cross-organisation meetings (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--provisioning <url>',
      'enroll with this provisioning service (https://) when the device has no certificate yet',
    )
    .option(
      '--provisioning-ca-sha256 <hex>',
      "SHA-256 of the provisioning service's TLS CA to require at first enrollment (default: " +
        '$SEALROOM_PROVISIONING_CA_SHA256, else trust on first use); the CA is pinned either way',
    )
    .option('--dev-ca <dir>', 'development: issue this device a certificate from the development CA in <dir>')
    .option('--room <name>', 'development: room name for a --dev-ca certificate', 'Demo Room')
    .option('--data-dir <dir>', 'where the daemon keeps its key and certificate', '/var/lib/sealroom')
    .option('--control-port <n>', 'local control API and kiosk UI port on 127.0.0.1 (0 picks one)', '7480')
    .option('--media <engine>', 'worker (GStreamer), synthetic (no camera; test frames) or none', 'worker')
    .option('--profile <name>', 'pipeline profile under pipelines/ (test, v4l2, …)')
    .option('--codec <codec>', 'video codec: h264 or vp8')
    .option('--size <WxH>', 'camera resolution, e.g. 1280x720')
    .option('--fps <n>', 'camera frame rate')
    .option('--pattern <name>', 'test profiles: videotestsrc pattern (e.g. smpte, pinwheel)')
    .option('--pattern-speed <n>', 'test profiles: pattern motion in pixels per frame (-100..100)')
    .option('--tone-hz <n>', 'test profiles: the microphone test tone (Hz)')
    .option('--wall', 'far rooms’ video on the room screen (the kiosk page’s wall connection; default)')
    .option('--no-wall', 'far rooms’ video in the GStreamer gallery on the profile’s display instead')
    .option(
      '--kiosk-token-file <file>',
      'where to write this start’s kiosk token for `sealroom kiosk` (default: <data-dir>/kiosk-token)',
    )
    .option(
      '--kiosk-token-mode <octal>',
      'mode of the kiosk token file (0600; 0640 for a group-readable dir)',
      '0600',
    )
    .option('--loopback-only', 'ICE on 127.0.0.1 only (single-machine demos and tests)')
    .option(
      '--update-root <dir>',
      'over-the-air updates: the A/B update root (default: the one this program runs from, if any)',
    )
    .option(
      '--update-config <file>',
      'over-the-air updates: settings (JSON: trustedRoot, metadataUrl, targetsUrl, cacheDir)',
      '/etc/sealroom/update.json',
    )
    .option('--no-updates', 'no over-the-air update agent in this daemon')
    .option('--log-json', 'log JSON lines instead of readable text')
    .action(async (opts: DaemonCommandOptions) => {
      await runDaemonCommand(opts);
    });
}

export async function runDaemonCommand(opts: DaemonCommandOptions): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { cliLogger } = await import('../relay/readable-log.js');
  const log = cliLogger('daemon', { json: opts.logJson ?? false });
  // `--relay a b` or `--relay a,b` (one shell word in service files) or repeated: all entries.
  const relayUrls = (Array.isArray(opts.relay) ? opts.relay : [opts.relay])
    .flatMap((r) => r.split(','))
    .map((r) => r.trim())
    .filter((r) => r.length > 0);
  if (relayUrls.length === 0) throw new Error('--relay needs at least one ws:// or wss:// URL');
  const { parseRelayUrl } = await import('../../device/daemon/relay-endpoints.js');
  for (const url of [...relayUrls, ...(opts.relayRedirectAllow ?? [])])
    if (!parseRelayUrl(url)) throw new Error(`not a relay URL (ws:// or wss://, no credentials): ${url}`);
  let credentials:
    | {
        certificatePem: string;
        identityKeyPem: string;
        trustAnchors: { orgCaPem: string; partnerCaPems: string[] };
      }
    | undefined;
  const partnerCaPems = (opts.partnerCa ?? []).map((f) => readFileSync(f, 'utf8'));
  if (opts.cert && opts.key) {
    if (!opts.ca) throw new Error('--cert needs --ca: the org CA this device pins as its trust anchor');
    credentials = {
      certificatePem: readFileSync(opts.cert, 'utf8'),
      identityKeyPem: readFileSync(opts.key, 'utf8'),
      trustAnchors: { orgCaPem: readFileSync(opts.ca, 'utf8'), partnerCaPems },
    };
  } else if (opts.devCa) {
    const { loadOrIssueDevelopmentDevice } = await import('../relay/dev-ca-store.js');
    const files = await loadOrIssueDevelopmentDevice(opts.devCa, join(opts.dataDir, 'identity'), {
      roomName: opts.room ?? 'Demo Room',
    });
    credentials = {
      ...files,
      trustAnchors: { orgCaPem: readFileSync(join(opts.devCa, 'ca.pem'), 'utf8'), partnerCaPems },
    };
  } else if (!opts.provisioning) {
    throw new Error(
      'no device certificate: pass --provisioning <url> to enroll, --cert and --key, or --dev-ca <dir> for development',
    );
  }
  if (opts.provisioningCaSha256) {
    const { normalizeSha256, PROVISIONING_CA_SHA256_ENV } = await import(
      '../../provisioning/client/tls-pin.js'
    );
    // The enrollment runner reads it from the environment (where /etc/default/sealroom puts it).
    process.env[PROVISIONING_CA_SHA256_ENV] = normalizeSha256(opts.provisioningCaSha256);
  }
  const media = opts.media;
  if (media !== 'worker' && media !== 'synthetic' && media !== 'none')
    throw new Error('--media must be worker, synthetic or none');
  const settings: Record<string, unknown> = {};
  if (opts.profile) settings.profile = opts.profile;
  if (opts.codec) settings.codec = opts.codec.toLowerCase();
  if (opts.size) {
    const [w, h] = opts.size.split('x').map(Number);
    settings.width = w;
    settings.height = h;
  }
  if (opts.fps) settings.fps = Number(opts.fps);
  if (opts.pattern) settings.pattern = opts.pattern;
  if (opts.patternSpeed !== undefined) settings.patternSpeed = Number(opts.patternSpeed);
  if (opts.toneHz !== undefined) settings.toneHz = Number(opts.toneHz);
  if (opts.wall !== undefined) settings.wall = opts.wall;
  const tokenMode = Number.parseInt(opts.kioskTokenMode ?? '0600', 8);
  if (!(tokenMode === 0o600 || tokenMode === 0o640 || tokenMode === 0o400 || tokenMode === 0o440)) {
    throw new Error('--kiosk-token-mode must be 0600, 0640, 0400 or 0440 (never readable by everyone)');
  }
  const { startDaemon, createRestarter, restartMode } = await import('../../device/daemon/daemon.js');
  const { LogRing } = await import('../../device/enrollment/log-bundle.js');
  // Room controls (USB HID speakerphones) and systemd readiness/watchdog (device/hid, device/system).
  const { HidManager } = await import('../../device/hid/discovery.js');
  const sd = await import('../../device/system/sd-notify.js');
  // The newest log lines this process printed, for IT's collect-logs bundle (the journal may be unreadable).
  const ring = new LogRing();
  ring.capture(process.stderr);
  let stopping = false;
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  let hid: InstanceType<typeof HidManager> | undefined;
  const boot = async (controlPort: number) => {
    const d = await startDaemon({
      relayUrl: relayUrls[0] as string,
      ...(relayUrls.length > 1 ? { relayUrls } : {}),
      ...(opts.relayRedirectAllow?.length ? { relayRedirectAllow: opts.relayRedirectAllow } : {}),
      ...(credentials ?? { provisioningUrl: opts.provisioning, stateDir: opts.dataDir }),
      log,
      media,
      mediaSettings: settings,
      loopbackOnly: opts.loopbackOnly ?? false,
      controlPort,
      // Written before the ready line below: `sealroom kiosk` (and the demo) read it from there.
      kioskTokenFile: opts.kioskTokenFile ?? join(opts.dataDir, 'kiosk-token'),
      kioskTokenMode: tokenMode,
      logText: () => ring.text(),
      onRestartRequested: () => void restart(),
      ...(update ? { version: update.version, update: update.options } : {}),
    });
    const h = new HidManager({ state: d.state, actions: d.actions, log: log.child({ part: 'hid' }) });
    daemon = d;
    hid = h;
    await h.start();
    d.hidNames = () =>
      h
        .devices()
        .filter((x) => x.status === 'active')
        .map((x) => x.product);
    const { device } = d.state.get();
    console.log(
      JSON.stringify({ control: d.controlUrl, deviceId: device.deviceId, roomName: device.roomName }),
    );
  };
  const update = await updateAgentOptions(opts, log, () => restart());
  let watchdog: { stop(): void } | undefined;
  const shutdown = async (signal: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'daemon stopping');
    const force = setTimeout(() => process.exit(1), 8000);
    force.unref();
    watchdog?.stop();
    await sd.notifyStopping('stopping').catch(() => undefined);
    await hid?.stop();
    await daemon?.stop();
    process.exit(code);
  };
  // IT's restart action: exit 75 for systemd, or stop and start every part again in this process.
  // Made before the first boot: a queued restart may arrive with the very first heartbeat.
  const restart = createRestarter({
    mode: restartMode(),
    current: () => ({
      controlUrl: daemon?.controlUrl ?? '',
      stop: async () => {
        await hid?.stop();
        await daemon?.stop();
      },
    }),
    boot,
    exit: (code) => shutdown('restart requested by IT', code),
    log,
  });
  await boot(Number(opts.controlPort));
  // The event loop answering the timer is the health signal: a wedged daemon stops pinging.
  watchdog = sd.startWatchdog(() => true, {
    onError: (err) => log.warn({ err }, 'watchdog ping failed'),
  });
  await sd
    .notifyReady(`room screen on ${daemon!.controlUrl}`)
    .catch((err: Error) => log.warn({ err }, 'sd_notify failed'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

/**
 * The update agent's settings: on when this program runs from A/B slots (or --update-root), under
 * systemd (a restart must start the new `current`), with the release repository's root.json.
 */
async function updateAgentOptions(
  opts: DaemonCommandOptions,
  log: import('../util/log.js').Logger,
  restart: () => Promise<void>,
): Promise<
  { version: string; options: import('../../device/daemon/daemon.js').DaemonUpdateOptions } | undefined
> {
  if (opts.updates === false) return undefined;
  const { readFile } = await import('node:fs/promises');
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { findPackageRoot } = await import('../../device/kiosk/ui-dir.js');
  const { runningVersion, updateRootOf } = await import('../../device/update/boot-check.js');
  const { restartMode } = await import('../../device/daemon/restart.js');
  const packageRoot = findPackageRoot();
  const root = opts.updateRoot ?? updateRootOf(packageRoot);
  if (!root || !existsSync(join(root, 'update-state.json'))) {
    log.info('over-the-air updates off: this program does not run from A/B slots');
    return undefined;
  }
  let settings: { trustedRoot?: string; metadataUrl?: string; targetsUrl?: string; cacheDir?: string } = {};
  try {
    settings = JSON.parse(await readFile(opts.updateConfig ?? '/etc/sealroom/update.json', 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`${opts.updateConfig}: ${(err as Error).message}`);
  }
  const trustedRootFile = settings.trustedRoot ?? '/etc/sealroom/update-root.json';
  let trustedRootJson: Buffer;
  try {
    trustedRootJson = await readFile(trustedRootFile);
  } catch {
    log.warn({ file: trustedRootFile }, 'over-the-air updates off: no release repository root.json');
    return undefined;
  }
  if (restartMode() !== 'exit') {
    log.warn('over-the-air updates off: a new version needs the service manager to start it (systemd)');
    return undefined;
  }
  const version = runningVersion(packageRoot) ?? '0.0.0';
  return {
    version,
    options: {
      root,
      trustedRootJson,
      ...(settings.metadataUrl ? { metadataUrl: settings.metadataUrl } : {}),
      ...(settings.targetsUrl ? { targetsUrl: settings.targetsUrl } : {}),
      ...(settings.cacheDir ? { cacheDir: settings.cacheDir } : {}),
      restart,
    },
  };
}
