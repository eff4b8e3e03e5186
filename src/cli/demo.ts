// `sealroom demo` (what `npm start` runs): the complete local deployment on loopback with embedded
// defaults — a development org CA, a relay, the provisioning service when it is built, and two
// simulated room devices (test sources) that meet in an E2EE meeting. Every part is a real process
// started from this same CLI. The two rooms' test cameras show distinct moving patterns and their test
// microphones distinct tones, and their media workers hand the far room's video to the kiosk page
// (the wall), so a kiosk URL opened in any browser shows the other room's live video beside the
// security code. Prints each room's kiosk URL (with the wall token in its fragment) and both security
// codes; stops cleanly on Ctrl-C / SIGTERM, or after --duration seconds. Provisioning is HTTPS end to
// end, as in the field: the service makes its TLS CA (<provDir>/tls/ca.pem), the rooms pin it at
// enrollment (the demo passes its SHA-256, like an integrator setting SEALROOM_PROVISIONING_CA_SHA256),
// and the relay fetches the signed CRL over HTTPS trusting only that CA.
// People (issue 12): with the provisioning service, the demo also runs a development OpenID Connect
// provider (provisioning/oidc/dev-provider.ts, inside this process, on loopback) with demo users, lets
// the service issue person certificates to whoever signs in there and serve the web participant at
// /join/, and lets the relay accept browsers from that origin only. It prints `join from a browser:
// <URL>` for the running meeting and the demo users' sign-in. The service's and the relay's ports are
// chosen before either starts (each needs the other's address: the page's allowed relay, the relay's
// allowed origin, the provider's redirect URI).
// Several relay nodes (issue 15): `--relays 3` starts a private redis-server (LocalRedis, loopback, no
// persistence) and three `sealroom relay --redis` nodes sharing it (docs/relay.md "Several nodes");
// each room gets every node as an entry (in a different order, so a join usually arrives at a node
// that does not host the meeting and is redirected), the join page may use any node, and the demo
// prints every node and which one hosts the meeting. `--relays 1` (the default) is the single relay
// without Redis, exactly as before.
import type { ChildProcess } from 'node:child_process';
import type { Command } from 'commander';
import type { DevOidcProvider } from '../../provisioning/oidc/dev-provider.js';

export interface DemoOptions {
  media: string;
  provisioning?: boolean;
  duration?: string;
  keep?: boolean;
  size: string;
  fps: string;
  /** h264 (default) or vp8 (e.g. for Firefox without its OpenH264 plugin). */
  codec?: string;
  /** Relay nodes: 1 (default) is the single relay without Redis; more share a private Redis. */
  relays?: string;
}

/** Most relay nodes the demo starts (each is a process with its own SFU; a laptop has its limits). */
const MAX_DEMO_RELAYS = 9;

interface StateLike {
  meeting?: {
    meetingId: string;
    status: string;
    securityCode?: string;
    keyEpoch?: number;
    waiting: { participantId: string; roomName: string }[];
    roster: unknown[];
  };
  media?: { worker: string };
}

/**
 * The two demo rooms and what their test camera and microphone make: distinct, moving, colourful
 * patterns and distinct tones, so each kiosk plainly shows (and plays) the other room.
 */
export const DEMO_ROOMS = [
  {
    name: 'Boardroom',
    pattern: 'smpte',
    patternSpeed: 4,
    toneHz: 440,
    looks: 'drifting SMPTE colour bars',
  },
  {
    name: 'Huddle Room',
    pattern: 'colors',
    patternSpeed: -3,
    toneHz: 660,
    looks: 'a drifting rainbow grid',
  },
] as const;

const DEMO_HELP = `
What you get: the provisioning service, a relay and two room boxes (Boardroom,
Huddle Room) on 127.0.0.1 in an end-to-end encrypted meeting, and a development
sign-in provider so people can join from a browser (the printed "join from a
browser" URL; demo users alice and bob, password "demo"). Their test
cameras show moving patterns (Boardroom: SMPTE colour bars; Huddle Room: a
rainbow grid); their test microphones play tones (440 Hz and 660 Hz), and each
room plays the other's tone on this computer's speaker (quietly).

Open a printed kiosk URL in a browser: the wall screen shows the other room's
live video beside the security code, and the room's own camera as a small
self-view. The #wall=… part of the URL is the kiosk token that lets that page
receive the video; without it the page shows the code and the controls only.

Several relay nodes: npm start -- --relays 3 also starts a private redis-server
(loopback, no persistence) and three relay nodes sharing it. Each room can
enter through any node; the meeting lives on one (placed by load) and the other
nodes redirect to it. The demo prints every node and the one hosting the
meeting; docs/relay.md ("Several nodes (Redis)") describes the design.
`;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('the complete local deployment on loopback: relay + two simulated rooms in an E2EE meeting')
    .addHelpText('after', DEMO_HELP)
    .option('--media <engine>', 'worker (GStreamer test sources) or synthetic (no GStreamer)', 'worker')
    .option('--size <WxH>', 'test camera resolution', '640x360')
    .option('--fps <n>', 'test camera frame rate', '15')
    .option(
      '--codec <codec>',
      'video codec of the meeting: h264 (default) or vp8 (Firefox without its OpenH264 plugin decodes only VP8)',
    )
    .option('--duration <seconds>', 'stop by itself after this many seconds')
    .option(
      '--no-provisioning',
      'skip the provisioning service: rooms get certificates from a development CA',
    )
    .option('--keep', 'keep the temporary directory (CA, device keys, logs) after stopping')
    .option(
      '--relays <n>',
      `relay nodes: 1 is one relay without Redis; 2–${MAX_DEMO_RELAYS} run that many nodes sharing a private redis-server (Debian's redis-server; docs/relay.md "Several nodes (Redis)")`,
      '1',
    )
    .action(async (opts: DemoOptions) => {
      process.exitCode = await runDemo(opts);
    });
}

/** Spawns `sealroom <args>` (the same entry this process runs) and resolves its first JSON stdout line. */
function spawnPart(
  name: string,
  args: string[],
  logFile: string,
  parts: ChildProcess[],
  /** Parts that announce themselves on stderr instead (the provisioning service): capture group 1. */
  stderrReady?: RegExp,
  /** Extra environment (secrets stay out of the process list). */
  env: NodeJS.ProcessEnv = {},
): Promise<Record<string, string>> {
  return import('node:child_process').then(async ({ spawn }) => {
    const { createWriteStream } = await import('node:fs');
    const entry = process.argv[1] ?? '';
    const child = spawn(process.execPath, [...process.execArgv, entry, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    parts.push(child);
    const log = createWriteStream(logFile, { flags: 'a' });
    child.stderr?.pipe(log);
    return new Promise<Record<string, string>>((resolve, reject) => {
      let buffered = '';
      let errText = '';
      if (stderrReady) {
        child.stderr?.on('data', (chunk: Buffer) => {
          errText += chunk.toString();
          const m = stderrReady.exec(errText);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve({ url: m[1] });
          }
        });
      }
      const timer = setTimeout(
        () => reject(new Error(`${name} did not start within 60 s (see ${logFile})`)),
        60_000,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        if (stderrReady) return; // its stdout is a log, not the ready line
        buffered += chunk.toString();
        const nl = buffered.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buffered.slice(0, nl)) as Record<string, string>);
        } catch {
          reject(new Error(`${name} printed something unexpected: ${buffered.slice(0, nl)}`));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited with ${code} before it was ready (see ${logFile})`));
      });
    });
  });
}

async function api(control: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(new URL(path, control), {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(`${path}: ${json.error ?? res.status}`);
  return json;
}

/** The daemon arguments that give a room its test pattern, tone and the wall. */
function mediaArgs(room: (typeof DEMO_ROOMS)[number]): string[] {
  return [
    // Test sources even on a box with a camera (the patterns tell the rooms apart), and a speaker
    // you can hear (pipelines/demo.json: the test profile with autoaudiosink).
    '--profile',
    'demo',
    '--pattern',
    room.pattern,
    '--pattern-speed',
    String(room.patternSpeed),
    '--tone-hz',
    String(room.toneHz),
    '--wall',
  ];
}

/** The kiosk URL with the wall token the daemon wrote before it said ready (in the fragment: never sent). */
async function kioskUrl(control: string, dataDir: string): Promise<string> {
  const { join } = await import('node:path');
  const { readKioskToken, wallUrl } = await import('../../device/kiosk/wall-token.js');
  return wallUrl(new URL('/', control).href, await readKioskToken(join(dataDir, 'kiosk-token')));
}

/** A free TCP port on 127.0.0.1 (for parts that must know each other's address before they start). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no free port'))));
    });
    srv.on('error', reject);
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { loadOrCreateDevelopmentCa } = await import('../relay/dev-ca-store.js');
  const relayCount = Number(opts.relays ?? '1');
  if (!Number.isInteger(relayCount) || relayCount < 1 || relayCount > MAX_DEMO_RELAYS) {
    console.error(`sealroom demo: --relays must be a whole number from 1 to ${MAX_DEMO_RELAYS}`);
    return 2;
  }
  /** Several nodes share a private Redis; one node is the plain relay of before. */
  const clustered = relayCount > 1;
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-demo-'));
  const parts: ChildProcess[] = [];
  /** In-process parts (the sign-in provider), closed after the processes. */
  const closers: (() => Promise<void>)[] = [];
  const say = (line = '') => console.log(line);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await Promise.all(
        parts.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null || p.signalCode !== null) return resolve();
              const kill = setTimeout(() => p.kill('SIGKILL'), 8000);
              p.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              p.kill('SIGTERM');
            }),
        ),
      );
      for (const close of closers) await close().catch(() => undefined);
      if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  let interrupted: ((signal: string) => void) | undefined;
  const interruption = new Promise<string>((resolve) => {
    interrupted = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => interrupted?.(signal);
  process.on('SIGINT', onSignal); // 'on': a second Ctrl-C while stopping must not kill us halfway
  process.on('SIGTERM', onSignal);

  try {
    say('Sealroom — local deployment on loopback');
    // Trust: the provisioning service's org CA (rooms enroll with activation codes, as in the field),
    // or without it a development CA that issues the rooms' certificates directly.
    let provisioningUrl: string | undefined;
    let adminToken = '';
    let serviceFetch: typeof fetch = fetch;
    let serviceCaSha256 = '';
    const provDir = join(dir, 'provisioning');
    const serviceCa = join(provDir, 'tls', 'ca.pem');
    // People: the service's and the relay's ports first, then the sign-in provider (its redirect URI
    // is the service's /join/), the service (trusts the provider, lets its page reach the relay), the
    // relay (accepts browsers from the service's origin).
    // The relay nodes' ports are fixed before anything starts whenever others must know them: the
    // page's relay list and, with several nodes, each node's public URL (what redirects point at).
    const relayPorts: number[] = [];
    const relayWsUrl = (port: number) => `ws://127.0.0.1:${port}/v1/ws`;
    if (clustered)
      while (relayPorts.length < relayCount) {
        const port = await freePort();
        if (!relayPorts.includes(port)) relayPorts.push(port);
      }
    let people: { origin: string; idp: DevOidcProvider } | undefined;
    if (opts.provisioning !== false) {
      try {
        const servicePort = await freePort();
        if (relayPorts.length === 0) relayPorts.push(await freePort());
        const origin = `https://127.0.0.1:${servicePort}`;
        const { startDevOidcProvider } = await import('../../provisioning/oidc/dev-provider.js');
        const idp = await startDevOidcProvider({ host: '127.0.0.1', redirectUris: [`${origin}/join/`] });
        people = { origin, idp };
        closers.push(() => idp.close());
      } catch (err) {
        say(`  people sign-in     not started (${(err as Error).message})`);
      }
    }
    if (opts.provisioning !== false) {
      try {
        const peopleArgs = people
          ? [
              '--oidc-issuer',
              people.idp.issuer,
              '--oidc-client-id',
              people.idp.clientId,
              // Every node: the page may enter through any and follow a redirect to any other.
              ...relayPorts.flatMap((port) => ['--web-relay', relayWsUrl(port)]),
              // The IT console signs in with the same provider (its confidential client).
              '--console-client-id',
              people.idp.consoleClient.id,
            ]
          : [];
        const prov = await spawnPart(
          'provisioning',
          [
            'provisioning',
            'serve',
            '--data-dir',
            provDir,
            '--port',
            people ? new URL(people.origin).port : '0',
            '--org',
            'Sealroom Demo Org',
            ...peopleArgs,
          ],
          join(dir, 'provisioning.log'),
          parts,
          /provisioning service on (\S+)/,
          people ? { SEALROOM_CONSOLE_CLIENT_SECRET: people.idp.consoleClient.secret } : {},
        );
        provisioningUrl = prov.url;
        if (!provisioningUrl?.startsWith('https://'))
          throw new Error(`the provisioning service is not on https (${provisioningUrl})`);
        adminToken = readFileSync(join(provDir, 'admin-token'), 'utf8').trim();
        const caPem = readFileSync(serviceCa, 'utf8');
        const { createPinnedFetch } = await import('../util/pinned-fetch.js');
        const { certificateSha256 } = await import('../../provisioning/client/tls-pin.js');
        serviceFetch = createPinnedFetch(caPem);
        serviceCaSha256 = certificateSha256(caPem);
        say(`  provisioning       ${provisioningUrl}   (admin token in ${join(provDir, 'admin-token')})`);
        say(`  provisioning TLS   CA ${serviceCa}   (SHA-256 ${serviceCaSha256})`);
        if (people)
          say(
            `  IT console         ${provisioningUrl}/console/   (sign in as ivy (admin) or hal (helpdesk), password "demo")`,
          );
      } catch (err) {
        say(`  provisioning       not started (${(err as Error).message}); using a development CA`);
        provisioningUrl = undefined;
      }
    }
    // Without the service nobody issues person certificates: no people.
    if (!provisioningUrl && people) {
      await people.idp.close();
      people = undefined;
    }
    const caDir = join(dir, 'org-ca');
    // Each node keeps its own CRL (every node runs the same CRL feed: docs/relay.md "Several nodes").
    const trust = (stateDir: string) =>
      provisioningUrl
        ? [
            '--ca',
            join(provDir, 'ca.pem'),
            '--revocations',
            provisioningUrl,
            '--revocations-tls-ca',
            serviceCa,
            '--state-dir',
            join(dir, stateDir),
          ]
        : ['--dev-ca', caDir];
    if (!provisioningUrl) await loadOrCreateDevelopmentCa(caDir, 'Sealroom Demo Org');
    let redisUrl: string | undefined;
    if (clustered) {
      // A private redis-server on loopback (no persistence), stopped after the nodes (they deregister).
      const { LocalRedis } = await import('../relay/cluster/local-redis.js');
      const redis = await LocalRedis.start();
      closers.push(() => redis.stop());
      redisUrl = redis.url;
      say(`  redis              ${redisUrl}   (private redis-server: the nodes' shared registry)`);
    }
    const nodes = await Promise.all(
      Array.from({ length: relayCount }, async (_, i) => {
        const nodeId = `relay-${i + 1}`;
        const port = relayPorts[i] ?? 0;
        const logFile = join(dir, clustered ? `${nodeId}.log` : 'relay.log');
        const part = await spawnPart(
          clustered ? nodeId : 'relay',
          [
            'relay',
            ...trust(clustered ? `${nodeId}-state` : 'relay-state'),
            '--port',
            String(port),
            ...(people ? ['--allow-origin', people.origin] : []),
            ...(opts.codec ? ['--video-codec', opts.codec.toUpperCase()] : []),
            ...(clustered
              ? [
                  '--redis',
                  redisUrl ?? '',
                  '--node-id',
                  nodeId,
                  '--public-url',
                  relayWsUrl(port),
                  // Ctrl-C: the rooms stop too, so a node need not wait long for its meetings.
                  '--drain-timeout',
                  '3',
                ]
              : []),
          ],
          logFile,
          parts,
        );
        return { nodeId, url: part.relay ?? '', logFile };
      }),
    );
    const relayUrl = nodes[0]?.url ?? '';
    const healthUrl = (url: string) => url.replace(/^ws/, 'http').replace(/\/v1\/ws$/, '/healthz');
    for (const node of nodes)
      say(`  ${(clustered ? node.nodeId : 'relay').padEnd(18)} ${node.url}   (log ${node.logFile})`);
    if (clustered) {
      // Every node sees the others alive in Redis (the registry its placements read).
      const seen = await until('every relay node alive in Redis', async () => {
        const h = (await (await fetch(healthUrl(relayUrl))).json()) as {
          cluster?: { nodes?: { id: string }[] };
        };
        const ids = (h.cluster?.nodes ?? []).map((n) => n.id).sort();
        return ids.length >= relayCount ? ids : undefined;
      }).catch(() => undefined);
      say(
        seen
          ? `  cluster            ${seen.length} nodes alive in Redis: ${seen.join(', ')}`
          : '  cluster            the nodes do not all see each other in Redis yet (see the relay logs)',
      );
    }
    const rooms = DEMO_ROOMS.map((r) => r.name);
    const daemons = await Promise.all(
      DEMO_ROOMS.map((room, i) =>
        spawnPart(
          room.name,
          [
            'daemon',
            // Every node is an entry; each room starts from a different one, so one of them usually
            // enters at a node that does not host the meeting and follows its redirect.
            ...nodes
              .map((_, k) => nodes[(k + i) % nodes.length]?.url ?? '')
              .flatMap((url) => ['--relay', url]),
            ...(provisioningUrl
              ? ['--provisioning', provisioningUrl, '--provisioning-ca-sha256', serviceCaSha256]
              : ['--dev-ca', caDir, '--room', room.name]),
            '--data-dir',
            join(dir, `room-${i}`),
            '--control-port',
            '0',
            '--media',
            opts.media,
            '--size',
            opts.size,
            '--fps',
            opts.fps,
            ...(opts.codec ? ['--codec', opts.codec.toLowerCase()] : []),
            ...(opts.media === 'worker' ? mediaArgs(room) : []),
            '--loopback-only',
          ],
          join(dir, `room-${i}.log`),
          parts,
        ),
      ),
    );
    const [a, b] = daemons.map((d) => d.control ?? '') as [string, string];
    const kiosks = await Promise.all([a, b].map((control, i) => kioskUrl(control, join(dir, `room-${i}`))));
    for (const [i, room] of DEMO_ROOMS.entries()) {
      say(`  ${`${room.name} kiosk`.padEnd(18)} ${kiosks[i]}   (log ${join(dir, `room-${i}.log`)})`);
      if (opts.media === 'worker')
        say(`  ${''.padEnd(18)} camera: ${room.looks} · microphone: ${room.toneHz} Hz tone`);
    }
    if (provisioningUrl) {
      // IT's part: read the activation code off each room's screen and claim it.
      for (const [i, control] of [a, b].entries()) {
        const code = await until(`${rooms[i]}'s activation code`, async () => {
          const s = (await api(control, 'GET', '/api/state')) as { enrollment?: { activationCode?: string } };
          return s.enrollment?.activationCode;
        });
        const res = await serviceFetch(new URL('/v1/claims', provisioningUrl), {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
          body: JSON.stringify({ activationCode: code, roomName: rooms[i], site: 'Loopback HQ' }),
        });
        if (!res.ok)
          throw new Error(
            `claiming ${rooms[i]}: ${(await res.json().catch(() => ({}))).error ?? res.status}`,
          );
        say(`  enrolled           ${rooms[i]} with activation code ${code}`);
      }
    }
    await until('both rooms to reach the relay', async () => {
      const states = (await Promise.all([a, b].map((c) => api(c, 'GET', '/api/state')))) as {
        relay: { connected: boolean };
      }[];
      return states.every((s) => s.relay.connected) ? true : undefined;
    });
    const { meetingId } = (await api(a, 'POST', '/api/meeting/start', {})) as { meetingId: string };
    await api(b, 'POST', '/api/meeting/join', { meetingId });
    const waiting = await until('the join request at the leader', async () => {
      const s = (await api(a, 'GET', '/api/state')) as StateLike;
      return s.meeting?.waiting[0];
    });
    await api(a, 'POST', '/api/meeting/admit', { participantId: waiting.participantId });
    const codes = await until('both rooms to hold the certified meeting key', async () => {
      const states = (await Promise.all([a, b].map((c) => api(c, 'GET', '/api/state')))) as StateLike[];
      const list = states.map((s) => (s.meeting?.status === 'active' ? s.meeting.securityCode : undefined));
      return list.every((c) => c !== undefined) ? (list as string[]) : undefined;
    });
    say(`  meeting            ${meetingId}  (end-to-end encrypted, led by ${rooms[0]})`);
    // The node hosting the meeting (the only one with a meeting: the others redirected to it).
    const host = clustered
      ? await until('the node hosting the meeting', async () => {
          const counts = await Promise.all(
            nodes.map(
              async (n) => ((await (await fetch(healthUrl(n.url))).json()) as { meetings: number }).meetings,
            ),
          );
          const at = counts.findIndex((c) => c > 0);
          return at >= 0 ? nodes[at] : undefined;
        }).catch(() => undefined)
      : nodes[0];
    if (clustered)
      say(
        host
          ? `  meeting host       ${host.nodeId} (${host.url}); the other nodes redirect to it`
          : '  meeting host       not found on any node (see the relay logs)',
      );
    if (clustered) {
      // Where each room is connected now, against the node it entered at (its first entry).
      const nodeOf = (shown: string | undefined) =>
        nodes.find((n) => shown !== undefined && (n.url === shown || new URL(n.url).origin === shown))
          ?.nodeId;
      const where = await Promise.all(
        [a, b].map(async (control, i) => {
          const s = (await api(control, 'GET', '/api/state').catch(() => ({}))) as {
            relay?: { url?: string };
          };
          const on = nodeOf(s.relay?.url) ?? 'an unknown node';
          const entered = nodes[i % nodes.length]?.nodeId;
          return `${rooms[i]} on ${on}${entered && entered !== on ? ` (entered at ${entered}: redirected)` : ''}`;
        }),
      );
      say(`  rooms              ${where.join('; ')}`);
    }
    const hostUrl = host?.url ?? relayUrl;
    say(`  security code      ${rooms[0]}:   ${codes[0]}`);
    say(`                     ${rooms[1]}: ${codes[1]}`);
    say(
      codes[0] === codes[1]
        ? '  ✓ both rooms show the same code: read it aloud to check no one is in the middle'
        : '  ✗ THE CODES DIFFER',
    );
    // Media is flowing when the relay forwards packets (SFrame ciphertext it cannot read).
    const health = healthUrl(hostUrl);
    const forwarded = await until('media through the relay', async () => {
      const h = (await (await fetch(health)).json()) as { packetsForwarded: number; mediaPeers: number };
      return h.mediaPeers >= 2 && h.packetsForwarded > 100 ? h.packetsForwarded : undefined;
    }).catch(() => undefined);
    say(
      forwarded !== undefined
        ? `  media              flowing: ${clustered ? `node ${host?.nodeId ?? '?'}` : 'the relay'} has forwarded ${forwarded} encrypted RTP packets so far`
        : '  media              not flowing yet (see the room logs)',
    );
    if (opts.media === 'worker' && kiosks.every((k) => k.includes('#wall='))) {
      say("  the wall           open a kiosk URL in a browser: the other room's live video beside the code");
      say(
        `                     (${rooms[0]}'s shows ${DEMO_ROOMS[1].looks}; ${rooms[1]}'s, ${DEMO_ROOMS[0].looks})`,
      );
    } else say('  the wall           open a kiosk URL in a browser: the code, the roster and the controls');
    if (people) {
      // The page is static files the service serves from dist/web (scripts/setup.sh builds them).
      const page = await serviceFetch(new URL('/join/', people.origin)).catch(() => undefined);
      if (page?.status !== 200)
        say(`  (the join page is not built yet: node scripts/build-web.mjs, then reload it)`);
      const joinUrl = `${people.origin}/join/#meeting=${encodeURIComponent(meetingId)}&relay=${encodeURIComponent(hostUrl)}`;
      say(`  join from a browser: ${joinUrl}`);
      say(
        `                     sign in as alice (Alice Smith) or bob (Bob Jones), password "demo", at ${people.idp.issuer}`,
      );
      say(
        `                     ${rooms[0]} admits you (sealroom room admit --control ${a} <participant>, or its kiosk)`,
      );
      say(
        `                     the page is HTTPS with the service's own CA: accept the warning, or trust ${serviceCa}`,
      );
      if (opts.codec?.toLowerCase() !== 'vp8')
        say('                     (Firefox without its OpenH264 plugin: start with --codec vp8)');
    }
    say(`  the room from a terminal: sealroom room status --control ${a}`);
    if (provisioningUrl)
      say(
        `  the fleet as IT sees it: sealroom admin list --url ${provisioningUrl} --tls-ca ${serviceCa} --token-file ${join(provDir, 'admin-token')}`,
      );
    const duration = opts.duration !== undefined ? Number(opts.duration) * 1000 : undefined;
    say(
      duration !== undefined
        ? `Running for ${opts.duration} s (Ctrl-C stops earlier).`
        : 'Press Ctrl-C to stop.',
    );
    const waits: Promise<unknown>[] = [interruption];
    if (duration !== undefined) waits.push(new Promise((r) => setTimeout(r, duration).unref()));
    else if (!process.stdin.isTTY) say('(stdin is not a terminal: stop with SIGTERM, or pass --duration)');
    await Promise.race(waits);
    say('Stopping…');
    await stop();
    say('Stopped.');
    return codes[0] === codes[1] ? 0 : 1;
  } catch (err) {
    console.error(`sealroom demo: ${(err as Error).message}`);
    console.error(`logs kept in ${dir}`);
    opts.keep = true;
    await stop();
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
