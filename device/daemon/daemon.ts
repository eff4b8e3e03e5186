// The device daemon composer: one StateStore, the enrollment runner (when the device has no
// certificate yet), the meeting client connected to the relay, a media engine (the supervised
// GStreamer worker, or the synthetic engine on hosts without cameras) and the kiosk's local control
// server on loopback. `sealroom daemon` and `sealroom demo` start it. With the worker engine the
// far rooms' video goes to the kiosk page over the wall connection (WallBroker), opened with the
// kiosk token this start makes and writes for the kiosk launcher.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { x509 } from '../../src/pki/provider.js';
import { singleField } from '../../src/pki/subject.js';
import { type TrustAnchors, TrustStore } from '../../src/pki/trust-store.js';
import type { Logger } from '../../src/util/log.js';
import {
  collectHealth,
  DeviceTrustAnchors,
  EnrollmentRunner,
  type EnrollmentRunnerOptions,
} from '../enrollment/index.js';
import type { PeripheralKind } from '../enrollment/health.js';
import { runBootSelfTest } from './boot-selftest.js';
import { createControlServer } from '../kiosk/control-server.js';
import { createKioskToken, readKioskToken, writeKioskToken } from '../kiosk/wall-token.js';
import type { SettingsPatch } from '../media/ipc.js';
import { MediaSupervisor } from '../media/supervisor.js';
import type { RoomActions } from './actions.js';
import type { MediaPort } from './media-port.js';
import { MeetingClient, type MeetingClientOptions } from './meeting-client.js';
import { createRoomActions } from './room-actions.js';
import { initialState, StateStore } from './state.js';
import { SyntheticMedia } from './synthetic-media.js';
import { WallBroker } from './wall-broker.js';
import { supervisorWallPort } from './wall-port.js';
import { WorkerMedia } from './worker-media.js';
import {
  provisioningUpdateReporter,
  UpdateAgent,
  type UpdateAgentOptions,
  type UpdateClientLike,
} from '../update/agent.js';
import {
  type HealthCheck,
  kioskControlCheck,
  kioskPageCheck,
  mediaPipelineCheck,
  relayConnectedCheck,
  selfTestCheck,
} from '../update/health-gate.js';
import { Updater } from '../update/updater.js';

/** Speaker delay that puts audio in step with video painted by the kiosk page (bench:wall). */
export const WALL_AUDIO_DELAY_MS = 50;

export { createRestarter, RESTART_EXIT_CODE, restartMode } from './restart.js';

export type MediaEngine = 'worker' | 'synthetic' | 'none';

/** Over-the-air updates (device/update/agent.ts): on when the box runs from A/B slots. */
export interface DaemonUpdateOptions {
  /** The update root: slots/a, slots/b, current, update-state.json. */
  root: string;
  /** The release repository's root.json shipped with the box (used when nothing is cached). */
  trustedRootJson: string | Buffer;
  /** Default: the provisioning service's /updates/metadata/ and /updates/targets/ (pinned TLS). */
  metadataUrl?: string;
  targetsUrl?: string;
  /** TUF metadata cache and downloads (default <stateDir>/update-cache). */
  cacheDir?: string;
  /** Restarts the service on the new `current` (under systemd: exit for Restart=always). */
  restart(): void | Promise<void>;
  /** The `update` config when the device has no provisioning service (else from heartbeat replies). */
  settings?: unknown;
  /** Tests: another client, other health checks, other timing. */
  client?: UpdateClientLike;
  healthChecks?: (controlUrl: string, state: StateStore) => HealthCheck[];
  timing?: Partial<
    Pick<
      UpdateAgentOptions,
      | 'checkIntervalMs'
      | 'checkJitterMs'
      | 'firstCheckMs'
      | 'gateTimeoutMs'
      | 'gateRetryMs'
      | 'checkTimeoutMs'
      | 'downloadTimeoutMs'
      | 'pollMs'
      | 'retryMs'
      | 'reportRetry'
    >
  >;
}

export interface DaemonOptions {
  relayUrl: string;
  /** A clustered relay's entry nodes (relayUrl first among them when both are given). */
  relayUrls?: string[];
  /** Further origins a clustered relay's redirect may send this room to (besides the entries' hosts). */
  relayRedirectAllow?: string[];
  /** A certificate and identity key the device already has (development CA, or installed by IT)… */
  certificatePem?: string;
  identityKeyPem?: string;
  /**
   * With certificatePem: the trust anchors to pin — the org CA (required) and partner-org CAs.
   * Enrolled devices pin <stateDir>/ca.pem, partner CAs from signed config and the org's revocation list.
   */
  trustAnchors?: TrustAnchors;
  /** How often an enrolled device fetches the signed revocation list (default 60 s). */
  revocationPollMs?: number;
  /** …or enrollment with the provisioning service, keeping key and certificate in stateDir. */
  provisioningUrl?: string;
  /** SHA-256 of the provisioning service's TLS CA to require at first enrollment (else trust on first use). */
  provisioningCaSha256?: string;
  stateDir?: string;
  log: Logger;
  media?: MediaEngine;
  mediaSettings?: SettingsPatch;
  /** ICE on 127.0.0.1 only (demo, tests). */
  loopbackOnly?: boolean;
  controlHost?: string;
  /** 0 picks a free port. */
  controlPort?: number;
  uiDir?: string;
  version?: string;
  /**
   * Where to write this start's kiosk token for the kiosk launcher (default <stateDir>/kiosk-token;
   * without either the token stays in memory: `Daemon.kioskToken`).
   */
  kioskTokenFile?: string;
  /** The token file's mode (default 0600; the deployed unit uses 0640 in a group-readable runtime dir). */
  kioskTokenMode?: number;
  /** Meeting-client timing (tests: short liveness and reconnect timeouts). */
  /** The process's recent log text (sealroom daemon's stderr ring) for collect-logs bundles. */
  logText?: () => string;
  /**
   * IT asked for a restart (remote action, already reported done). `sealroom daemon` exits with
   * RESTART_EXIT_CODE under systemd or restarts in-process otherwise; without a handler it is logged.
   */
  onRestartRequested?: (actionId: string) => void;
  /** Enrollment timing (tests: short heartbeat and poll intervals). */
  enrollmentTiming?: Pick<EnrollmentRunnerOptions, 'heartbeatIntervalMs' | 'pollIntervalMs' | 'backoff'>;
  meetingTiming?: Pick<
    MeetingClientOptions,
    'connectTimeoutMs' | 'liveness' | 'reconnectMinMs' | 'reconnectMaxMs' | 'resumeGraceMs' | 'tickMs'
  >;
  /** The update agent (absent: no over-the-air updates from this daemon). */
  update?: DaemonUpdateOptions;
}

export interface Daemon {
  state: StateStore;
  actions: RoomActions;
  /** Present once the device has a certificate. */
  meeting?: MeetingClient;
  enrollment?: EnrollmentRunner;
  media?: MediaPort;
  supervisor?: MediaSupervisor;
  /** The kiosk UI and local control API. */
  controlUrl: string;
  /** This start's kiosk token (the bearer token of the wall routes). */
  kioskToken: string;
  /** Where the token was written, if anywhere. */
  kioskTokenFile?: string;
  /** The kiosk page's wall sessions (worker engine with `wall` on). */
  wall?: WallBroker;
  /** The update agent (with `update` options). */
  update?: UpdateAgent;
  /** Names of the room controls in use (set by `sealroom daemon` once its HID manager runs). */
  hidNames?: () => string[];
  stop(): Promise<void>;
}

export function deviceFromCertificate(certificatePem: string) {
  const cert = new x509.X509Certificate(certificatePem);
  return {
    deviceId: singleField(cert.subjectName, 'CN') ?? '',
    org: singleField(cert.subjectName, 'O') ?? '',
    roomName: singleField(cert.subjectName, 'OU') ?? '',
    site: singleField(cert.subjectName, 'L') ?? '',
  };
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const log = opts.log;
  const version = opts.version ?? '0.1.0';
  // Before any key is touched: the crypto must reproduce its known answers, or the daemon stops here.
  const selfTest = runBootSelfTest();
  log.info({ detail: selfTest.detail }, 'crypto self-test passed');
  const state = new StateStore(initialState(version));
  if (!(opts.certificatePem && opts.identityKeyPem) && !(opts.provisioningUrl && opts.stateDir)) {
    throw new Error(
      'the daemon needs a certificate and key, or a provisioning service URL and a state directory',
    );
  }
  if (opts.certificatePem && !opts.trustAnchors?.orgCaPem) {
    throw new Error('the daemon needs the org CA to pin (trustAnchors.orgCaPem) with a certificate');
  }

  // A fresh kiosk token every start: a page or process that learnt an old one gets nowhere.
  const kioskToken = createKioskToken();
  const kioskTokenFile =
    opts.kioskTokenFile ?? (opts.stateDir ? join(opts.stateDir, 'kiosk-token') : undefined);
  if (kioskTokenFile) {
    try {
      await writeKioskToken(kioskTokenFile, kioskToken, opts.kioskTokenMode ?? 0o600);
    } catch (err) {
      // The room screen still works; it just cannot show the far rooms' video.
      log.error({ file: kioskTokenFile, err: (err as Error).message }, 'cannot write the kiosk token');
      state.raiseAlert('wall', 'warning', `The screen cannot show video: ${(err as Error).message}`);
    }
  }

  let supervisor: MediaSupervisor | undefined;
  let media: MediaPort | undefined;
  let wall: WallBroker | undefined;
  const engine = opts.media ?? 'worker';
  if (engine === 'worker') {
    // The kiosk page shows the video (the wall connection); the GStreamer gallery is not built.
    // Lip sync: the kiosk page paints far video 25-95 ms after the speaker plays its audio (bench:wall,
    // docs/media.md "Lip sync"): 50 ms of speaker delay keeps both ends of that range within ±80 ms.
    const settings: SettingsPatch = { wall: true, ...opts.mediaSettings };
    if (settings.wall && settings.audioDelayMs === undefined) settings.audioDelayMs = WALL_AUDIO_DELAY_MS;
    supervisor = new MediaSupervisor({
      state,
      log: log.child({ part: 'media' }),
      settings,
      ...(opts.loopbackOnly ? { loopbackOnly: true } : {}),
    });
    media = new WorkerMedia(supervisor);
    if (settings.wall) {
      wall = new WallBroker({
        port: supervisorWallPort(supervisor),
        state,
        log: log.child({ part: 'wall' }),
      });
    }
    // A readable pulse of the media in the log every 30 s: what was sent, decrypted, and from whom.
    let lastStatsLog = 0;
    supervisor.on('stats', ({ counters: c, remotes }) => {
      if (Date.now() - lastStatsLog < 30_000) return;
      lastStatsLog = Date.now();
      log.info(
        {
          videoSent: c.videoFramesSent,
          videoDecrypted: c.videoFramesDecrypted,
          audioDecrypted: c.audioFramesDecrypted,
          decryptFailures: c.decryptFailures,
          remotes: remotes.length,
        },
        'media',
      );
    });
    // Worker errors are reported (and the supervisor restarts what failed); they never end the daemon.
    supervisor.on('error', (e) =>
      log.warn(
        { code: e.code, pipeline: e.pipeline, element: e.element, message: e.message },
        'media worker error',
      ),
    );
  } else if (engine === 'synthetic') {
    media = new SyntheticMedia({ roomName: 'this room' });
  }

  const daemon: Daemon = {
    state,
    actions: createRoomActions({
      meeting: () => daemon.meeting,
      state,
      ...(supervisor ? { supervisor } : {}),
    }),
    ...(media ? { media } : {}),
    ...(supervisor ? { supervisor } : {}),
    ...(wall ? { wall } : {}),
    controlUrl: '',
    kioskToken,
    ...(kioskTokenFile ? { kioskTokenFile } : {}),
    stop: async () => {},
  };

  const control = await createControlServer({
    state,
    actions: daemon.actions,
    log,
    host: opts.controlHost ?? '127.0.0.1',
    port: opts.controlPort ?? 0,
    ...(opts.uiDir ? { uiDir: opts.uiDir } : {}),
    kioskToken,
    ...(wall ? { wall } : {}),
  });
  daemon.controlUrl = control.url;

  if (opts.update) {
    // Updates are never a reason for the room not to start.
    try {
      daemon.update = createUpdateAgent(opts, opts.update, daemon, control.url, log);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'over-the-air updates off');
    }
  }

  const diagnostics: { name: string; ok: boolean; detail: string }[] = [selfTest];
  if (supervisor) {
    try {
      await supervisor.start();
      diagnostics.push({ name: 'media worker', ok: true, detail: `pid ${supervisor.pid ?? '?'}` });
    } catch (err) {
      diagnostics.push({ name: 'media worker', ok: false, detail: (err as Error).message });
      state.raiseAlert('media', 'error', `Media worker failed to start: ${(err as Error).message}`);
    }
  } else {
    diagnostics.push({
      name: 'media',
      ok: true,
      detail: engine === 'synthetic' ? 'synthetic test media' : 'no media',
    });
  }

  /** With a certificate in hand: the meeting client connects to the relay. */
  const startMeetingClient = (certificatePem: string, identityKey: KeyObject, trust: TrustStore): void => {
    if (daemon.meeting) return;
    const device = deviceFromCertificate(certificatePem);
    if (media instanceof SyntheticMedia) media.roomName = device.roomName;
    state.update((s) => {
      s.device = { ...s.device, ...device };
      s.diagnostics = [
        ...s.diagnostics.filter((d) => d.name !== 'certificate'),
        { name: 'certificate', ok: true, detail: `${device.roomName} (${device.org})` },
      ];
      if (s.phase === 'starting' || s.phase === 'enrolling') s.phase = 'idle';
    });
    daemon.meeting = new MeetingClient({
      relayUrl: opts.relayUrl,
      ...(opts.relayUrls?.length ? { relayUrls: opts.relayUrls } : {}),
      ...(opts.relayRedirectAllow?.length ? { relayRedirectAllow: opts.relayRedirectAllow } : {}),
      credentials: { certificatePem, identityKey },
      trust,
      state,
      log: log.child({ part: 'meeting' }),
      ...(media ? { media } : {}),
      ...opts.meetingTiming,
    });
    void daemon.meeting.start();
    log.info(
      { relay: opts.relayUrls?.length ? opts.relayUrls : opts.relayUrl, room: device.roomName },
      'meeting client started',
    );
  };

  state.update((s) => {
    s.diagnostics = diagnostics;
    // Reported with every heartbeat (IT's "self-test failed at boot" alert).
    s.selfTest = {
      ok: diagnostics.every((d) => d.ok),
      failed: diagnostics.filter((d) => !d.ok).map((d) => `${d.name}: ${d.detail}`),
      at: new Date().toISOString(),
    };
  });
  let anchors: DeviceTrustAnchors | undefined;
  if (opts.certificatePem && opts.identityKeyPem && opts.trustAnchors) {
    startMeetingClient(
      opts.certificatePem,
      createPrivateKey(opts.identityKeyPem),
      new TrustStore(opts.trustAnchors),
    );
  } else {
    // Peripherals seen since this start: one gone later is reported missing.
    const seen = new Set<PeripheralKind>();
    const runner = new EnrollmentRunner({
      stateDir: opts.stateDir ?? '',
      serviceUrl: opts.provisioningUrl ?? '',
      softwareVersion: version,
      state,
      logger: log.child({ part: 'enrollment' }),
      ...(opts.provisioningCaSha256 ? { provisioningCaSha256: opts.provisioningCaSha256 } : {}),
      collectHealth: (s) => collectHealth(s, { seen, ...(daemon.hidNames ? { hid: daemon.hidNames } : {}) }),
      ...(opts.logText ? { logText: opts.logText } : {}),
      secrets: () => [kioskToken],
      ...opts.enrollmentTiming,
    });
    runner.on('restart', (actionId) => {
      log.info({ actionId }, 'restart requested by IT');
      if (opts.onRestartRequested) opts.onRestartRequested(actionId);
      else log.warn({ actionId }, 'nothing restarts this daemon in this setup: restart ignored');
    });
    daemon.enrollment = runner;
    let trustStore: TrustStore | undefined;
    // The anchors are read once ca.pem exists (enrolled); config may arrive before they are loaded.
    let anchorsLoaded: Promise<DeviceTrustAnchors> | undefined;
    const loadAnchors = () => {
      anchorsLoaded ??= DeviceTrustAnchors.load(opts.stateDir ?? '', log.child({ part: 'trust' })).then(
        (a) => {
          anchors = a;
          // Looked up per poll: the pinned fetch exists once the TLS CA is pinned (never the system store).
          const pinned: typeof fetch = (input, init) => {
            const f = runner.fetch;
            if (!f) return Promise.reject(new Error('the provisioning TLS CA is not pinned yet'));
            return f(input, init);
          };
          a.pollRevocations(opts.provisioningUrl ?? '', opts.revocationPollMs ?? 60_000, pinned);
          return a;
        },
      );
      return anchorsLoaded;
    };
    const useCertificate = (certPem: string) => {
      const key = runner.identity?.key.privateKey;
      if (!key) return;
      loadAnchors()
        .then((a) => {
          const trust = new TrustStore(a.anchors());
          trustStore = trust;
          a.on('change', (next) => trust.setAnchors(next));
          startMeetingClient(certPem, key, trust);
        })
        .catch((err: Error) => {
          log.error({ err: err.message }, 'cannot read the pinned trust anchors');
          state.raiseAlert('trust', 'error', `Trust anchors unreadable: ${err.message}`);
        });
    };
    runner.on('enrolled', (cert) => useCertificate(cert.certPem));
    runner.on('config', (config) => {
      daemon.update?.setSettings(config.update);
      if (config.partnerCas === undefined) return;
      void loadAnchors()
        .then((a) => a.applyPartnerCas(config.partnerCas))
        .catch((err: Error) => log.warn({ err: err.message }, 'refused the partner CAs in the config'));
    });
    // A signed rollover replaced ca.pem: read the anchors again so the TrustStore pins the new org CA.
    runner.on('ca-rollover', () => {
      anchors?.stop();
      anchorsLoaded = undefined;
      void loadAnchors()
        .then((a) => {
          if (!trustStore) return;
          const trust = trustStore;
          trust.setAnchors(a.anchors());
          a.on('change', (next) => trust.setAnchors(next));
        })
        .catch((err: Error) =>
          log.error({ err: err.message }, 'cannot read the anchors after a CA rollover'),
        );
    });
    runner.on('revoked', (message) => {
      state.raiseAlert('revoked', 'error', `This device was revoked by IT: ${message}`);
      void daemon.meeting?.stop();
    });
    await runner.start();
    const current = runner.current;
    if (current?.phase === 'enrolled') {
      daemon.update?.setSettings(current.config.update);
      useCertificate(current.certificate.certPem);
    }
  }
  // After the enrollment state is read (the channel and window in its config): a version on trial
  // runs its health gate now, then the periodic checks begin. Never awaited: updates wait for nothing.
  void daemon.update?.start();
  log.info(
    { control: control.url, relay: opts.relayUrls?.length ? opts.relayUrls : opts.relayUrl },
    'daemon running',
  );

  daemon.stop = async () => {
    await daemon.update?.stop();
    await daemon.meeting?.leaveMeeting().catch(() => undefined);
    await daemon.meeting?.stop();
    await daemon.enrollment?.stop();
    anchors?.stop();
    await control.close();
    wall?.shutdown();
    await media?.close();
    // A stale token opens nothing, but the file need not outlive this start (unless a newer start wrote it).
    if (kioskTokenFile && (await readKioskToken(kioskTokenFile).catch(() => undefined)) === kioskToken) {
      await rm(kioskTokenFile, { force: true }).catch(() => undefined);
    }
  };
  return daemon;
}

/** The update agent of this daemon: the A/B updater, the TUF client, reports to provisioning. */
function createUpdateAgent(
  opts: DaemonOptions,
  u: DaemonUpdateOptions,
  daemon: Daemon,
  controlUrl: string,
  log: Logger,
): UpdateAgent {
  const base = opts.provisioningUrl?.replace(/\/$/, '');
  // The enrollment runner's fetch, pinned to the provisioning TLS CA (looked up per request).
  const pinned = (): typeof fetch | undefined => daemon.enrollment?.fetch;
  const pinnedFetch: typeof fetch = (input, init) => {
    const f = pinned();
    if (!f) return Promise.reject(new Error('the provisioning TLS CA is not pinned yet'));
    return f(input, init);
  };
  const metadataUrl = u.metadataUrl ?? (base ? `${base}/updates/metadata/` : undefined);
  const targetsUrl = u.targetsUrl ?? (base ? `${base}/updates/targets/` : undefined);
  const cacheDir = u.cacheDir ?? join(opts.stateDir ?? u.root, 'update-cache');
  let client = u.client;
  if (!client) {
    if (!metadataUrl || !targetsUrl)
      throw new Error('updates need the release repository URLs (or a provisioning service)');
    const viaProvisioning = !u.metadataUrl && base !== undefined;
    let made: Promise<UpdateClientLike> | undefined;
    // Loaded when first used: tuf-js stays out of the start of the daemon.
    const get = () =>
      (made ??= import('../../src/update/tuf-client.js').then(
        ({ UpdateClient }) =>
          new UpdateClient({
            metadataUrl,
            targetsUrl,
            cacheDir: join(cacheDir, 'tuf'),
            trustedRootJson: u.trustedRootJson,
            ...(viaProvisioning ? { fetch: pinnedFetch } : {}),
          }),
      ));
    client = {
      check: async (o) => (await get()).check(o),
      download: async (t, f, o) => (await get()).download(t, f, o),
    };
  }
  const state = daemon.state;
  const supervisor = daemon.supervisor;
  const checks =
    u.healthChecks ??
    ((url: string) => [
      selfTestCheck(),
      kioskControlCheck(url),
      kioskPageCheck(url),
      relayConnectedCheck(() => state.get().relay.connected),
      // The media worker engine only (synthetic or no media has no pipelines to check).
      ...(supervisor ? [mediaPipelineCheck(supervisor, () => state.get().media.worker)] : []),
    ]);
  return new UpdateAgent({
    state,
    updater: new Updater({ root: u.root, updateDeadlineMs: 6 * 3600_000 }),
    client,
    downloadDir: join(cacheDir, 'downloads'),
    version: opts.version ?? '0.1.0',
    log: log.child({ part: 'update' }),
    restart: u.restart,
    healthChecks: () => checks(controlUrl, state),
    ...(u.settings !== undefined ? { settings: u.settings } : {}),
    ...(base
      ? {
          report: provisioningUpdateReporter({
            baseUrl: base,
            identity: () => {
              const r = daemon.enrollment;
              const id = r?.identity;
              return id && r.current?.phase === 'enrolled'
                ? { deviceId: id.deviceId, privateKey: id.key.privateKey }
                : undefined;
            },
            fetch: pinned,
          }),
        }
      : {}),
    ...u.timing,
  });
}
