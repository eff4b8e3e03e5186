// `sealroom provisioning …` (run the service, mint a token offline, run a device enrollment) and
// `sealroom admin …` (IT's client: claim, list, show, revoke, decommission, config, audit, token
// create|list|revoke), over HTTPS trusting only the service's CA when given --tls-ca.
// Heavy modules (fastify, stores, pki) load only inside actions.
import type { Command } from 'commander';

/** Left-aligned text table with a header rule. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].join('\n');
}

const dash = (v: unknown) => (v === null || v === undefined || v === '' ? '–' : String(v));
const ago = (iso: unknown) => {
  if (typeof iso !== 'string') return 'never';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};

function print(json: boolean | undefined, value: unknown, readable: () => string): void {
  console.log(json ? JSON.stringify(value, null, 2) : readable());
}

/** The device's update card in one line: assigned channel/window/pause, then what it reported. */
function updateLine(u: unknown): string {
  if (!u || typeof u !== 'object') return '–';
  const v = u as {
    channel: string;
    window: { start: string; end: string } | null;
    paused: boolean;
    channelPending: boolean;
    reported: {
      state: string;
      current: string;
      target: string | null;
      progress: number | null;
      error: string | null;
      at: string;
    } | null;
  };
  const assigned = `channel ${v.channel}${v.window ? `, window ${v.window.start}-${v.window.end}` : ''}${v.paused ? ', PAUSED' : ''}`;
  const r = v.reported;
  if (!r) return `${assigned}; never reported`;
  const progress = r.progress !== null ? ` ${Math.round(r.progress * 100)} %` : '';
  return `${assigned}${v.channelPending ? ' (not applied yet)' : ''}; ${r.state}${progress} on ${r.current}${r.target ? ` → ${r.target}` : ''}${r.error ? ` (${r.error})` : ''}, ${ago(r.at)}`;
}

function deviceDetail(d: Record<string, unknown>): string {
  const h = (d.health ?? {}) as Record<string, unknown>;
  const per = (h.peripherals ?? {}) as { present?: string[]; missing?: string[] };
  const mem = h.memory as { usedBytes: number; totalBytes: number } | undefined;
  const disk = h.disk as { usedBytes: number; totalBytes: number } | undefined;
  const pct = (x?: { usedBytes: number; totalBytes: number }) =>
    x?.totalBytes ? `${Math.round((100 * x.usedBytes) / x.totalBytes)} %` : '–';
  const rows: [string, string][] = [
    ['device', dash(d.id)],
    ['status', dash(d.status)],
    ['room', dash(d.roomName)],
    ['site', dash(d.site)],
    ['policy', dash(d.policy)],
    ['software', dash(d.softwareVersion)],
    ['certificate', `${dash(d.certSerial)} (until ${dash(d.certNotAfter)})`],
    ['claimed', `${dash(d.claimedAt)} by ${dash(d.claimedBy)}`],
    ['last seen', ago(d.lastSeenAt)],
    ['load', h.loadPercent === undefined ? '–' : `${h.loadPercent} %`],
    ['temperature', h.temperatureC === null || h.temperatureC === undefined ? '–' : `${h.temperatureC} °C`],
    ['memory', pct(mem)],
    ['disk', pct(disk)],
    [
      'peripherals',
      `present: ${(per.present ?? []).join(', ') || '–'}; missing: ${(per.missing ?? []).join(', ') || '–'}`,
    ],
    ['meeting', dash(h.meetingState)],
    ['update', updateLine(d.update)],
    ['config', `v${dash(d.configVersion)} ${JSON.stringify(d.config ?? {})}`],
    ['inventory', JSON.stringify(d.inventory ?? {})],
  ];
  if (d.revokedAt) rows.push(['revoked', String(d.revokedAt)]);
  return rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n');
}

/** What `sealroom admin update-channel` asks the service to change, or an error for the person. */
export function updateChannelRequest(o: {
  site?: string;
  device?: string;
  channel?: string;
  window?: string;
  pause?: boolean;
  resume?: boolean;
}):
  | {
      target: { site: string } | { deviceId: string };
      change: { channel?: string; window?: { start: string; end: string } | null; paused?: boolean };
    }
  | string {
  if ((o.site === undefined) === (o.device === undefined)) return 'give either --site or --device';
  if (o.pause && o.resume) return '--pause and --resume exclude each other';
  const change: { channel?: string; window?: { start: string; end: string } | null; paused?: boolean } = {};
  if (o.channel !== undefined) {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(o.channel))
      return '--channel: lower-case letters, digits and "-", at most 32 (e.g. stable, canary)';
    change.channel = o.channel;
  }
  if (o.window !== undefined) {
    if (o.window === 'any') change.window = null;
    else {
      const m = /^(([01][0-9]|2[0-3]):[0-5][0-9])-(([01][0-9]|2[0-3]):[0-5][0-9])$/.exec(o.window);
      if (!m || m[1] === m[3])
        return '--window: HH:MM-HH:MM in the device\'s local time (e.g. 22:00-05:00), or "any"';
      change.window = { start: m[1]!, end: m[3]! };
    }
  }
  if (o.pause) change.paused = true;
  if (o.resume) change.paused = false;
  if (Object.keys(change).length === 0)
    return 'nothing to change: give --channel, --window, --pause or --resume';
  return { target: o.site !== undefined ? { site: o.site } : { deviceId: o.device! }, change };
}

/** The console options from `provisioning serve` flags (undefined: no console). */
export function consoleFromFlags(
  o: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): import('./console/options.js').ConsoleOptions | undefined {
  const given = ['consoleIssuer', 'consoleClientSecret'].filter((k) => o[k] !== undefined);
  if (!o.consoleClientId) {
    if (given.length)
      throw new Error('--console-issuer and --console-client-secret need --console-client-id');
    return undefined;
  }
  const issuer = o.consoleIssuer ?? o.oidcIssuer;
  if (!issuer) throw new Error('--console-client-id needs --console-issuer (or --oidc-issuer)');
  const hours = Number(o.consoleSessionHours ?? 8);
  if (!(hours > 0 && hours <= 720)) throw new Error('--console-session-hours must be in (0, 720]');
  const secret = (o.consoleClientSecret as string | undefined) ?? env.SEALROOM_CONSOLE_CLIENT_SECRET;
  return {
    issuer: String(issuer),
    clientId: String(o.consoleClientId),
    ...(secret ? { clientSecret: secret } : {}),
    adminGroup: String(o.consoleAdminGroup ?? 'sealroom-admins'),
    helpdeskGroup: String(o.consoleHelpdeskGroup ?? 'sealroom-helpdesk'),
    groupsClaim: String(o.consoleGroupsClaim ?? 'groups'),
    sessionHours: hours,
  };
}

/** Alert delivery options from `provisioning serve` flags. */
function alertsFromFlags(
  o: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { alerts?: { smtpUrl?: string; mailFrom?: string } } {
  const smtpUrl = (o.smtpUrl as string | undefined) ?? env.SEALROOM_SMTP_URL;
  const mailFrom = o.mailFrom as string | undefined;
  if (smtpUrl && !/^smtps?:\/\//.test(smtpUrl))
    throw new Error('--smtp-url must be an smtp:// or smtps:// URL');
  if (!smtpUrl && !mailFrom) return {};
  return { alerts: { ...(smtpUrl ? { smtpUrl } : {}), ...(mailFrom ? { mailFrom } : {}) } };
}

export function registerProvisioningCommands(program: Command): void {
  const prov = program
    .command('provisioning')
    .description('the provisioning service (enrollment, fleet, revocation)');

  prov
    .command('serve')
    .description('run the provisioning service (SQLite in --data-dir, or PostgreSQL with DATABASE_URL)')
    .option('--data-dir <dir>', 'SQLite file, org CA and the bootstrap admin token', '.data/provisioning')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', '8443')
    .option('--org <name>', 'organisation name (certificate O)', 'Sealroom')
    .option('--public-url <url>', 'URL devices and IT use (claim links)')
    .option('--database-url <url>', 'PostgreSQL connection URL (default: $DATABASE_URL)')
    .option('--ca-cert <pem>', "IT's own Ed25519 CA certificate")
    .option('--ca-key <pem>', "IT's own CA private key (PKCS#8 PEM)")
    .option('--tls-cert <pem>', 'serve HTTPS with this certificate')
    .option('--tls-key <pem>', 'and this key')
    .option('--enrollments-per-minute <n>', 'rate limit per client address', '30')
    .option('--claims-per-minute <n>', 'rate limit per client address', '30')
    .option('--device-requests-per-minute <n>', 'rate limit per device on device-signed calls', '300')
    .option('--device-burst <n>', 'requests a device may send at once above that rate', '60')
    .option('--code-ttl <seconds>', 'activation code lifetime', '900')
    .option('--cert-days <days>', 'device certificate validity', '365')
    .option(
      '--oidc-issuer <url>',
      'people sign in with this OpenID Connect provider (exact issuer URL) and get person certificates (docs/people.md)',
    )
    .option('--oidc-client-id <id>', 'our public client id at the provider (ID token audience)')
    .option('--oidc-redirect-uri <url>', 'where the provider sends people back (default: <public URL>/join/)')
    .option(
      '--people-email-domain <domain>',
      'only people with an email of this domain (repeatable; default: any verified email)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--person-cert-hours <h>', 'person certificate validity in hours (at most 12)', '12')
    .option('--people-per-minute <n>', 'person certificate requests per client address', '30')
    .option(
      '--web-relay <url>',
      'relay WebSocket URL the /join/ page may connect to (repeatable; the first is offered to the page)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--console-client-id <id>',
      'turn on the IT console at /console/: our confidential client id at the OpenID Connect provider (docs/console.md)',
    )
    .option(
      '--console-issuer <url>',
      "the console's OpenID Connect provider (exact issuer URL; default: --oidc-issuer)",
    )
    .option(
      '--updates-repo <dir>',
      'host this TUF repository (scripts/release/publish.ts) at /updates/metadata and /updates/targets',
    )
    .option(
      '--console-client-secret <secret>',
      "the console client's secret (prefer $SEALROOM_CONSOLE_CLIENT_SECRET: a flag shows in the process list)",
    )
    .option('--console-admin-group <name>', 'ID-token group that makes a console admin', 'sealroom-admins')
    .option(
      '--console-helpdesk-group <name>',
      'ID-token group that makes a console helpdesk user (read-only)',
      'sealroom-helpdesk',
    )
    .option('--console-groups-claim <claim>', 'ID-token claim that lists the groups', 'groups')
    .option('--console-session-hours <h>', 'console session lifetime in hours', '8')
    .option(
      '--smtp-url <url>',
      'SMTP server for alert e-mail, e.g. smtp://mail.example.org:587 (default: $SEALROOM_SMTP_URL); without it e-mail targets stay pending',
    )
    .option(
      '--mail-from <address>',
      'From address of alert e-mails (default "Sealroom alerts <alerts@sealroom.invalid>")',
    )
    .action(async (o) => {
      const { startProvisioningService } = await import('./service/serve.js');
      const consoleOptions = consoleFromFlags(o, process.env);
      if (!!o.oidcIssuer !== !!o.oidcClientId)
        throw new Error('--oidc-issuer and --oidc-client-id go together');
      const hours = Number(o.personCertHours);
      if (!(hours > 0 && hours <= 12)) throw new Error('--person-cert-hours must be in (0, 12]');
      const relays: string[] = o.webRelay ?? [];
      const people = o.oidcIssuer
        ? {
            issuer: String(o.oidcIssuer),
            clientId: String(o.oidcClientId),
            redirectUri: String(
              o.oidcRedirectUri ??
                `${(o.publicUrl ?? `https://${o.host}:${o.port}`).replace(/\/$/, '')}/join/`,
            ),
            certValidityMs: hours * 3600_000,
            ...(o.peopleEmailDomain ? { allowedEmailDomains: o.peopleEmailDomain as string[] } : {}),
            ...(relays[0] ? { relayUrl: relays[0] } : {}),
          }
        : undefined;
      const svc = await startProvisioningService({
        dataDir: o.dataDir,
        databaseUrl: o.databaseUrl ?? process.env.DATABASE_URL,
        host: o.host,
        port: Number(o.port),
        org: o.org,
        publicUrl: o.publicUrl,
        caCertPath: o.caCert,
        caKeyPath: o.caKey,
        tlsCertPath: o.tlsCert,
        tlsKeyPath: o.tlsKey,
        rateLimits: {
          enrollmentsPerMinute: Number(o.enrollmentsPerMinute),
          claimsPerMinute: Number(o.claimsPerMinute),
          deviceRequestsPerMinute: Number(o.deviceRequestsPerMinute),
          deviceBurst: Number(o.deviceBurst),
          peopleCertificatesPerMinute: Number(o.peoplePerMinute),
        },
        codeTtlSeconds: Number(o.codeTtl),
        certValidityDays: Number(o.certDays),
        ...(people ? { people, web: { relayUrls: relays } } : {}),
        ...(consoleOptions ? { console: consoleOptions } : {}),
        ...alertsFromFlags(o, process.env),
        ...(o.updatesRepo ? { updates: { repoDir: String(o.updatesRepo) } } : {}),
      });
      if (consoleOptions)
        console.error(
          `IT console on ${svc.url}/console/ (sign-in with ${consoleOptions.issuer}, redirect URI ${svc.url}/console/auth/callback)`,
        );
      if (o.updatesRepo)
        console.error(
          `update repository ${o.updatesRepo}: devices use ${svc.url}/updates/metadata/ and ${svc.url}/updates/targets/`,
        );
      if (people) console.error(`people sign in with ${people.issuer}; join page ${people.redirectUri}`);
      console.error(
        `provisioning service on ${svc.url} (store: ${svc.store.kind}, OpenAPI: ${svc.url}/openapi.json)`,
      );
      if (svc.tls.caPath)
        console.error(
          `provisioning TLS CA ${svc.tls.caPath} (SHA-256 ${svc.tls.caSha256}); devices pin it at enrollment, IT passes it to sealroom admin --tls-ca`,
        );
      if (svc.bootstrapTokenPath)
        console.error(`first admin token written to ${svc.bootstrapTokenPath} (mode 0600)`);
      const stop = async () => {
        await svc.close();
        process.exit(0);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });

  prov
    .command('sign-partner-cas')
    .description(
      'sign partner-org CA certificates with the org CA key, for devices\' config key "partnerCas" (cross-organisation meetings)',
    )
    .argument('<pem...>', 'partner CA certificates (PEM files); none signs an empty list that removes them')
    .option('--data-dir <dir>', 'data directory of the service (holds the org CA)', '.data/provisioning')
    .option('--ca-cert <pem>', "IT's own CA certificate (with --ca-key)")
    .option('--ca-key <pem>', "IT's own CA private key")
    .action(async (pems: string[], o) => {
      const { readFile } = await import('node:fs/promises');
      const { existsSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { loadOrCreateCa } = await import('./service/serve.js');
      const { signPartnerCas, verifyPartnerCas } = await import('../src/pki/partner-cas.js');
      if (!o.caCert && !existsSync(join(o.dataDir, 'ca.json')))
        throw new Error(
          `no org CA in ${o.dataDir}: pass the service's --data-dir, or --ca-cert and --ca-key`,
        );
      const ca = await loadOrCreateCa({
        dataDir: o.dataDir,
        org: 'Sealroom',
        ...(o.caCert ? { caCertPath: o.caCert } : {}),
        ...(o.caKey ? { caKeyPath: o.caKey } : {}),
      });
      const caPems = await Promise.all(pems.map((f) => readFile(f, 'utf8')));
      const bundle = await signPartnerCas(ca, caPems);
      verifyPartnerCas(bundle, ca.certPem); // each entry must be a CA certificate
      console.log(JSON.stringify(bundle));
    });

  prov
    .command('token')
    .description('create an admin API token directly in the store (for bootstrap and automation)')
    .requiredOption('--name <name>', 'who or what uses it (shown as the actor in the audit log)')
    .option('--scope <scope>', 'read or admin', 'read')
    .option('--days <n>', 'lifetime in days (default 90, at most 365)', '90')
    .option('--data-dir <dir>', 'data directory of the service', '.data/provisioning')
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL)')
    .action(async (o) => {
      if (o.scope !== 'read' && o.scope !== 'admin') throw new Error('--scope must be read or admin');
      const { generateAdminToken, hashAdminToken, MAX_TOKEN_DAYS } = await import('./tokens.js');
      const days = Number(o.days);
      if (!(days > 0 && days <= MAX_TOKEN_DAYS))
        throw new Error(`--days must be between 1 and ${MAX_TOKEN_DAYS}`);
      const { openStore } = await import('./store/open.js');
      const { randomBytes } = await import('node:crypto');
      const store = await openStore({
        dataDir: o.dataDir,
        databaseUrl: o.databaseUrl ?? process.env.DATABASE_URL,
      });
      try {
        const token = generateAdminToken();
        const now = new Date();
        await store.createToken({
          id: randomBytes(8).toString('hex'),
          name: o.name,
          tokenHash: hashAdminToken(token),
          scope: o.scope,
          actor: 'cli',
          now: now.toISOString(),
          expiresAt: new Date(now.getTime() + days * 86_400_000).toISOString(),
        });
        console.log(token);
      } finally {
        await store.close();
      }
    });

  prov
    .command('enroll-device')
    .description(
      'run the device side of enrollment and heartbeats on its own (prints one JSON line per change)',
    )
    .requiredOption('--state-dir <dir>', 'identity key, enrollment state, certificate')
    .requiredOption('--service-url <url>', 'provisioning service base URL')
    .option('--software-version <v>', 'reported software version', '0.1.0')
    .option('--poll-interval <ms>', 'certificate polling interval', '3000')
    .option('--heartbeat-interval <ms>', 'heartbeat interval', '30000')
    .action(async (o) => {
      const { EnrollmentRunner } = await import('../device/enrollment/runner.js');
      const { StateStore, initialState } = await import('../device/daemon/state.js');
      const state = new StateStore(initialState(o.softwareVersion));
      const runner = new EnrollmentRunner({
        stateDir: o.stateDir,
        serviceUrl: o.serviceUrl,
        softwareVersion: o.softwareVersion,
        state,
        pollIntervalMs: Number(o.pollInterval),
        heartbeatIntervalMs: Number(o.heartbeatInterval),
      });
      state.on('change', (s) =>
        console.log(JSON.stringify({ enrollment: s.enrollment, device: s.device, phase: s.phase })),
      );
      runner.on('config', (config, version) =>
        console.log(JSON.stringify({ config, configVersion: version })),
      );
      runner.on('change', (st) => {
        if (st.phase === 'enrolled')
          console.log(JSON.stringify({ heartbeat: true, configVersion: st.configVersion }));
      });
      const stop = async () => {
        await runner.stop();
        process.exit(0);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await runner.start();
    });

  const admin = program
    .command('admin')
    .description("IT's client for the provisioning service")
    .option('--url <url>', 'service URL (default: $SEALROOM_PROVISIONING_URL or https://127.0.0.1:8443)')
    .option('--token <token>', 'admin token (default: $SEALROOM_ADMIN_TOKEN)')
    .option('--token-file <path>', 'read the admin token from a file')
    .option(
      '--tls-ca <pem>',
      "trust only this CA for the service's HTTPS certificate, e.g. <data dir>/tls/ca.pem (default: $SEALROOM_PROVISIONING_CA, else the system trust store)",
    );

  const client = async () => {
    const o = admin.opts() as { url?: string; token?: string; tokenFile?: string; tlsCa?: string };
    const { readFile } = await import('node:fs/promises');
    const token =
      o.token ??
      (o.tokenFile ? (await readFile(o.tokenFile, 'utf8')).trim() : process.env.SEALROOM_ADMIN_TOKEN);
    if (!token) throw new Error('an admin token is needed: --token, --token-file or $SEALROOM_ADMIN_TOKEN');
    const { AdminClient } = await import('./client/admin-client.js');
    const url = o.url ?? process.env.SEALROOM_PROVISIONING_URL ?? 'https://127.0.0.1:8443';
    const caPath = o.tlsCa ?? process.env.SEALROOM_PROVISIONING_CA;
    let pinned: typeof fetch | undefined;
    if (caPath) {
      const caPem = await readFile(caPath, 'utf8').catch((err: Error) => {
        throw new Error(`cannot read the service CA ${caPath}: ${err.message}`);
      });
      const { createPinnedFetch } = await import('../src/util/pinned-fetch.js');
      pinned = createPinnedFetch(caPem);
    }
    return new AdminClient(url.replace(/\/$/, ''), token, pinned);
  };

  admin
    .command('claim <code>')
    .description('claim an activation code shown on a room screen; issues the device certificate')
    .requiredOption('--room <name>', 'room name')
    .requiredOption('--site <site>', 'site (building, city)')
    .option('--policy <policy>', 'policy name', 'default')
    .option('--config <json>', 'initial configuration (JSON object)')
    .option('--json', 'print JSON')
    .action(async (code: string, o) => {
      const d = await (await client()).claim({
        activationCode: code,
        roomName: o.room,
        site: o.site,
        policy: o.policy,
        ...(o.config ? { config: JSON.parse(o.config) } : {}),
      });
      print(o.json, d, () => `claimed ${d.id}: "${d.roomName}" at ${d.site}, certificate ${d.certSerial}`);
    });

  admin
    .command('list')
    .description('list devices')
    .option('--status <status>', 'pending | active | revoked | decommissioned')
    .option('--site <site>', 'only this site')
    .option('--q <text>', 'device id or room name contains')
    .option('--limit <n>', 'at most', '100')
    .option('--offset <n>', 'skip', '0')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await (await client()).listDevices({
        status: o.status,
        site: o.site,
        q: o.q,
        limit: Number(o.limit),
        offset: Number(o.offset),
      });
      print(o.json, r, () =>
        [
          formatTable(
            ['DEVICE', 'STATUS', 'ROOM', 'SITE', 'VERSION', 'LAST SEEN', 'CERT UNTIL'],
            r.items.map((d) => [
              dash(d.id),
              dash(d.status),
              dash(d.roomName),
              dash(d.site),
              dash(d.softwareVersion),
              ago(d.lastSeenAt),
              dash(d.certNotAfter).slice(0, 10),
            ]),
          ),
          `${r.items.length} of ${r.total} devices`,
        ].join('\n'),
      );
    });

  admin
    .command('show <device>')
    .description('device detail with its last health report')
    .option('--json', 'print JSON')
    .action(async (id: string, o) => {
      const d = await (await client()).showDevice(id);
      print(o.json, d, () => deviceDetail(d));
    });

  admin
    .command('revoke <device>')
    .description('revoke a device: its certificates go on the revocation list the relay enforces')
    .option('--reason <text>', 'why (kept in the audit log)')
    .option('--json', 'print JSON')
    .action(async (id: string, o) => {
      const d = await (await client()).revoke(id, o.reason);
      print(o.json, d, () => `revoked ${d.id} ("${dash(d.roomName)}")`);
    });

  admin
    .command('decommission <device>')
    .description('retire a device (revokes it too)')
    .option('--reason <text>', 'why')
    .option('--json', 'print JSON')
    .action(async (id: string, o) => {
      const d = await (await client()).decommission(id, o.reason);
      print(o.json, d, () => `decommissioned ${d.id}`);
    });

  admin
    .command('config <device> <json>')
    .description('replace the device configuration (delivered with its next heartbeat)')
    .option('--json', 'print JSON')
    .action(async (id: string, config: string, o) => {
      const d = await (await client()).setConfig(id, JSON.parse(config));
      print(o.json, d, () => `config v${d.configVersion} set for ${d.id}`);
    });

  admin
    .command('update-channel')
    .description(
      "assign a site's or one device's update channel, window or pause (delivered with their next heartbeat)",
    )
    .option('--site <site>', "the site: changes its profile's `update` key")
    .option('--device <id>', "one device: changes its override's `update` key (wins over the site)")
    .option('--channel <name>', 'e.g. stable, canary')
    .option('--window <HH:MM-HH:MM>', 'install only in this window, device local time; "any" removes it')
    .option('--pause', 'hold updates')
    .option('--resume', 'let updates go on')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const req = updateChannelRequest(o);
      if (typeof req === 'string') throw new Error(req);
      const r = await (await client()).setUpdatePolicy(req.target, req.change);
      const who = 'site' in req.target ? `site ${req.target.site}` : `device ${req.target.deviceId}`;
      print(
        o.json,
        r,
        () =>
          `${who}: update ${JSON.stringify(r.update)} (${r.devicesChanged} devices get a new configuration)`,
      );
    });

  admin
    .command('updates')
    .description(
      'the rollout: per channel, devices by version and update state; devices that failed or rolled back',
    )
    .option('--site <site>', 'only this site')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await (await client()).rollout(o.site);
      const counts = (m: Record<string, number>) =>
        Object.entries(m)
          .sort((a, b) => b[1] - a[1])
          .map(([k, n]) => `${k} ${n}`)
          .join(', ') || '–';
      print(o.json, r, () =>
        [
          formatTable(
            ['CHANNEL', 'DEVICES', 'PAUSED', 'LATEST', 'VERSIONS', 'STATES'],
            r.channels.map((c) => [
              c.channel,
              String(c.devices),
              String(c.paused),
              Object.entries(c.latest)
                .map(([arch, v]) => `${v} (${arch})`)
                .join(', ') || '–',
              counts(c.versions),
              counts(c.states),
            ]),
          ),
          ...(r.problems.length
            ? [
                '',
                formatTable(
                  ['DEVICE', 'ROOM', 'STATE', 'ON', 'TARGET', 'WHEN', 'ERROR'],
                  r.problems.map((p) => [
                    p.deviceId,
                    dash(p.roomName),
                    p.state,
                    p.current,
                    dash(p.target),
                    ago(p.at),
                    dash(p.error),
                  ]),
                ),
              ]
            : []),
        ].join('\n'),
      );
    });

  admin
    .command('audit')
    .description('the audit log of admin actions, newest first')
    .option('--actor <name>', 'token name')
    .option('--token-id <id>', 'changes made with this token')
    .option('--action <action>', 'e.g. device.claim, device.revoke')
    .option('--device <id>', 'device id')
    .option('--since <iso>', 'from (ISO 8601)')
    .option('--until <iso>', 'until (ISO 8601)')
    .option('--limit <n>', 'at most', '100')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const r = await (await client()).audit({
        actor: o.actor,
        action: o.action,
        deviceId: o.device,
        tokenId: o.tokenId,
        since: o.since,
        until: o.until,
        limit: Number(o.limit),
      });
      print(o.json, r, () =>
        formatTable(
          ['WHEN', 'WHO', 'TOKEN', 'ACTION', 'DEVICE', 'DETAILS'],
          r.map((a) => [
            dash(a.at),
            dash(a.actor),
            dash(a.tokenId),
            dash(a.action),
            dash(a.deviceId),
            JSON.stringify(a.details),
          ]),
        ),
      );
    });

  const tokenCmd = admin
    .command('token')
    .description('admin tokens: create (the default), list, revoke')
    .option('--name <name>', 'who or what uses it (unique; the audit log shows it as the actor)')
    .option('--scope <scope>', 'read or admin (never wider than your own token; default read)')
    .option('--days <n>', 'lifetime in days (default 90, never past your own token, at most 365)')
    .option('--json', 'print JSON')
    .action(async (o) => createToken(o));

  type CreateOpts = { name?: string; scope?: string; days?: string; json?: boolean };
  const createToken = async (given: CreateOpts) => {
    // Options given around `create` may have been taken by `token` itself: take both.
    const o: CreateOpts = { ...(tokenCmd.opts() as CreateOpts) };
    for (const [k, v] of Object.entries(given)) if (v !== undefined) o[k as keyof CreateOpts] = v as never;
    const scope = o.scope ?? 'read';
    if (!o.name) throw new Error('--name is required');
    if (scope !== 'read' && scope !== 'admin') throw new Error('--scope must be read or admin');
    const expiresAt = o.days ? new Date(Date.now() + Number(o.days) * 86_400_000).toISOString() : undefined;
    const t = await (await client()).createToken(o.name, scope, expiresAt);
    print(o.json, t, () => t.token);
  };

  tokenCmd
    .command('create')
    .description('create another admin token (shown once)')
    .option('--name <name>', 'who or what uses it (unique; required)')
    .option('--scope <scope>', 'read or admin (default read)')
    .option('--days <n>', 'lifetime in days (default 90)')
    .option('--json', 'print JSON')
    .action(async (o) => createToken(o));

  tokenCmd
    .command('list')
    .description('list tokens (names, scopes, expiry; never the secrets)')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const list = await (await client()).listTokens();
      print(o.json || tokenCmd.opts().json, list, () =>
        formatTable(
          ['ID', 'NAME', 'SCOPE', 'CREATED', 'EXPIRES', 'BY', 'REVOKED'],
          list.map((t) => [
            t.id,
            t.name,
            t.scope,
            t.createdAt.slice(0, 10),
            t.expiresAt.slice(0, 10),
            dash(t.createdBy),
            dash(t.revokedAt),
          ]),
        ),
      );
    });

  tokenCmd
    .command('revoke <idOrName>')
    .description('revoke a token by id or name: refused from now on')
    .option('--json', 'print JSON')
    .action(async (idOrName: string, o) => {
      const t = await (await client()).revokeToken(idOrName);
      print(o.json || tokenCmd.opts().json, t, () => `revoked token ${t.id} ("${t.name}")`);
    });
}
