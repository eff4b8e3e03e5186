// The whole stack a person joins, in this process (test/people-meeting.test.ts, the Firefox test,
// bench:browser): an org CA; the provisioning service (buildService, plain HTTP on 127.0.0.1 — a
// secure context for the page without TLS) with its people config and the /join/ web app built into a
// temporary directory; the dev OpenID Connect provider on loopback; the relay (startRelay) that
// accepts browsers only from the provisioning origin and records everything that crosses it; and N
// room daemons (startDaemon: the real MeetingClient, real GStreamer media workers, through the SFU).
// The first room creates and leads the meeting. Every keys event a room gets is kept, so tests can
// scan the recorded relay traffic for any key the rooms hold.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Daemon, startDaemon } from '../../device/daemon/daemon.js';
import type { SettingsPatch } from '../../device/media/ipc.js';
import type { StatsMessage } from '../../device/media/supervisor.js';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import { startDevOidcProvider } from '../../provisioning/oidc/dev-provider.js';
import { buildService } from '../../provisioning/service/app.js';
import { openStore } from '../../provisioning/store/open.js';
import type { ProvisioningStore } from '../../provisioning/store/store.js';
import type { KeysEvent } from '../../src/core/e2ee/index.js';
import type { CertificateAuthority } from '../../src/pki/index.js';
import {
  createDevelopmentCa,
  type DevelopmentDevice,
  issueDevelopmentDevice,
} from '../../src/relay/dev-pki.js';
import { type RecordEntry, type Relay, startRelay } from '../../src/relay/server.js';
import { silentLogger } from '../../src/util/log.js';
import { poll } from './poll.js';

export { poll };

export const ORG = 'Example Corp';
export const ROOM_NAMES = ['Boardroom', 'Huddle Room', 'Lab', 'Lobby'];

/** Small, cheap room media: VP8 (what every browser decodes without a plugin), 320×180 at 15 fps. */
export const ROOM_MEDIA: SettingsPatch = {
  codec: 'vp8',
  width: 320,
  height: 180,
  fps: 15,
  videoKbps: 300,
  tiles: 4,
  galleryWidth: 384,
  galleryHeight: 216,
  keyframeInterval: 30,
};

export interface PeopleStackOptions {
  /** How many rooms (names from ROOM_NAMES), or their names. Default 2. */
  rooms?: number | string[];
  /**
   * Which rooms hand far video to a kiosk page (wall on) instead of the GStreamer gallery; default:
   * the first room only, so one room shows content on its wall and the other decodes in GStreamer.
   */
  wall?: (index: number) => boolean;
  /** Extra media settings for every room (e.g. 1280×720 for the benchmark). */
  media?: SettingsPatch;
  /** Per-room test pattern (videotestsrc) and tone; default smpte / colors / … */
  patterns?: string[];
  /** Start a meeting led by the first room with the other rooms admitted (default true). */
  meeting?: boolean;
  /** Person certificate validity the service issues (default its own, ≤ 12 h). */
  certValidityMs?: number;
  /** Keep every relay record in `recorded` (default true; off for the benchmark). */
  record?: boolean;
  /** Sees every relay record as it happens (with or without `record`). */
  onRecord?: (entry: RecordEntry) => void;
  /** Build the web app (default true). A prebuilt directory can be passed instead. */
  webDir?: string;
}

export interface StackRoom {
  name: string;
  device: DevelopmentDevice;
  daemon: Daemon;
  /** Every keys event this room got, in order (never trimmed, unlike MeetingClient.keyHistory). */
  keys: KeysEvent[];
  /** The media worker's latest stats. */
  stats(): StatsMessage | undefined;
  /** This room's participant id in the meeting. */
  participantId(): string;
}

export interface PeopleStack {
  ca: CertificateAuthority;
  /** http://127.0.0.1:<port> — the origin the page is served from (and the relay allows). */
  origin: string;
  service: FastifyInstance;
  store: ProvisioningStore;
  idp: Awaited<ReturnType<typeof startDevOidcProvider>>;
  relay: Relay;
  rooms: StackRoom[];
  /** The meeting the first room leads (empty without `meeting`). */
  meetingId: string;
  /** Everything that crossed the relay (WebSocket frames both ways, every publisher's RTP). */
  recorded: RecordEntry[];
  webDir: string;
  /** Where a person joins: <origin>/join/#meeting=<id>&relay=<ws url>. */
  joinUrl(meetingId?: string): string;
  /** The leader admits the person waiting with this email; resolves to its participant id. */
  admitPerson(email: string, timeoutMs?: number): Promise<string>;
  /** The leader's waiting list entry for this email, once there (undefined until then). */
  waitingPerson(email: string): string | undefined;
  close(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the service's port must be known before the IdP starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
    srv.on('error', reject);
  });
}

/** Builds the web app (scripts/build-web.mjs) into a fresh temporary directory. */
export function buildWebApp(): { dir: string; remove(): void } {
  const root = findPackageRoot();
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-web-'));
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs'), '--outdir', dir], {
    cwd: root,
    stdio: 'pipe',
  });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A second, bare provisioning service (own CA and store, no page) whose people sign-in trusts
 * `provider` — for refusals that need a service trusting another IdP (an expired token of it).
 */
export async function serviceTrusting(
  provider: { issuer: string; clientId: string },
  people: { clockToleranceSeconds?: number } = {},
): Promise<{ origin: string; close(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-people-svc-'));
  const store = await openStore({ dataDir });
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const service = await buildService({
    store,
    ca: await createDevelopmentCa(ORG),
    org: ORG,
    publicUrl: origin,
    logger: false,
    people: {
      issuer: provider.issuer,
      clientId: provider.clientId,
      redirectUri: `${origin}/join/`,
      ...people,
    },
  });
  await service.listen({ host: '127.0.0.1', port });
  return {
    origin,
    async close() {
      await service.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startPeopleStack(opts: PeopleStackOptions = {}): Promise<PeopleStack> {
  const names =
    typeof opts.rooms === 'object'
      ? opts.rooms
      : ROOM_NAMES.slice(0, typeof opts.rooms === 'number' ? opts.rooms : 2);
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  };
  try {
    const ca = await createDevelopmentCa(ORG);
    const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-people-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));

    // The page's origin must be known before the IdP (redirect URI) and the IdP's issuer before the
    // service (people config): the service's port is picked first.
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const redirectUri = `${origin}/join/`;
    const idp = await startDevOidcProvider({ host: '127.0.0.1', redirectUris: [redirectUri] });
    cleanup.push(() => idp.close());

    // SEALROOM_TEST_WEB_DIR: a prebuilt page (e.g. to try a patched build) instead of a fresh build.
    let webDir = opts.webDir ?? process.env.SEALROOM_TEST_WEB_DIR;
    if (!webDir) {
      const web = buildWebApp();
      cleanup.push(() => web.remove());
      webDir = web.dir;
    }

    const recorded: RecordEntry[] = [];
    const relay = await startRelay({
      log: silentLogger,
      trust: { caPems: [ca.certPem] },
      videoCodec: 'VP8',
      allowedOrigins: [origin],
      record: (e: RecordEntry) => {
        if (opts.record !== false) recorded.push(e);
        opts.onRecord?.(e);
      },
    });
    cleanup.push(() => relay.close());

    const store = await openStore({ dataDir });
    cleanup.push(() => store.close());
    const service = await buildService({
      store,
      ca,
      org: ORG,
      publicUrl: origin,
      logger: false,
      people: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        redirectUri,
        relayUrl: relay.url,
        ...(opts.certValidityMs ? { certValidityMs: opts.certValidityMs } : {}),
      },
      web: { dir: webDir, relayUrls: [relay.url] },
    });
    cleanup.push(() => service.close());
    await service.listen({ host: '127.0.0.1', port });

    const rooms: StackRoom[] = [];
    const patterns = opts.patterns ?? ['smpte', 'colors', 'ball', 'snow'];
    for (const [i, name] of names.entries()) {
      const device = await issueDevelopmentDevice(ca, { roomName: name, org: ORG });
      const daemon = await startDaemon({
        relayUrl: relay.url,
        certificatePem: device.certificatePem,
        identityKeyPem: device.identityKeyPem,
        trustAnchors: { orgCaPem: ca.certPem },
        log: silentLogger,
        media: 'worker',
        mediaSettings: {
          ...ROOM_MEDIA,
          pattern: patterns[i % patterns.length] ?? 'smpte',
          toneHz: 440 + 220 * i,
          wall: (opts.wall ?? ((n: number) => n === 0))(i),
          ...opts.media,
        },
        loopbackOnly: true,
        controlPort: 0,
        meetingTiming: { tickMs: 100, reconnectMinMs: 100, reconnectMaxMs: 500, connectTimeoutMs: 3000 },
      });
      cleanup.push(() => daemon.stop());
      const keys: KeysEvent[] = [];
      daemon.meeting?.on('keys', (e: KeysEvent) => keys.push(e));
      let last: StatsMessage | undefined;
      daemon.supervisor?.on('stats', (s) => {
        last = s;
      });
      rooms.push({
        name,
        device,
        daemon,
        keys,
        stats: () => last,
        participantId: () => daemon.meeting?.participantId ?? '',
      });
    }
    await poll(
      'every room at the relay',
      () => rooms.every((r) => r.daemon.state.get().relay.connected),
      30_000,
    );

    const [leader, ...others] = rooms;
    if (!leader) throw new Error('a stack needs at least one room');
    let meetingId = '';
    if (opts.meeting !== false) {
      ({ meetingId } = await leader.daemon.actions.startMeeting());
      for (const r of others) {
        await r.daemon.actions.joinMeeting(meetingId);
        const pid = await poll(`${r.name} in the waiting list`, () => r.participantId() || undefined);
        await poll(`${r.name} at the leader`, () =>
          leader.daemon.state.get().meeting?.waiting.some((w) => w.participantId === pid),
        );
        await leader.daemon.actions.admit(pid);
        await poll(`${r.name} admitted`, () => r.daemon.state.get().meeting?.securityCode, 20_000);
      }
    }

    const waitingPerson = (email: string) =>
      leader.daemon.state.get().meeting?.waiting.find((w) => w.kind === 'person' && w.email === email)
        ?.participantId;
    return {
      ca,
      origin,
      service,
      store,
      idp,
      relay,
      rooms,
      meetingId,
      recorded,
      webDir,
      joinUrl: (id = meetingId) =>
        `${origin}/join/#meeting=${encodeURIComponent(id)}&relay=${encodeURIComponent(relay.url)}`,
      waitingPerson,
      async admitPerson(email, timeoutMs = 30_000) {
        const pid = await poll(
          `${email} in the leader's waiting list`,
          () => waitingPerson(email),
          timeoutMs,
        );
        await leader.daemon.actions.admit(pid);
        return pid;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
