// Runs the enrollment state machine against the provisioning service: registers the CSR and
// inventory, shows the activation code (daemon StateStore → kiosk), polls for the certificate, then
// sends heartbeats with health and applies config from the replies; renews when asked. State is
// persisted atomically after each transition (<stateDir>/enrollment.json), so a restart resumes; an
// unreachable service is retried with exponential backoff (injectable clock for tests).
//
// What the network cannot do to it:
// - Every call goes over HTTPS to the service TLS CA pinned at first use (<stateDir>/provisioning-ca.pem,
//   provisioning/client/tls-pin.ts; optionally checked against SEALROOM_PROVISIONING_CA_SHA256).
// - A 403 'device-revoked' reply is believed only with its proof: a CRL (`crl`) signed by the pinned
//   org CA that lists this device's certificate serial. Anything else is logged ("unproven
//   revocation reply ignored") and retried.
// - The org CA (<stateDir>/ca.pem) is written at first enrollment only; a certificate reply with a
//   different CA is refused unless a `caRollover` in config, signed by the held CA, moved to it.
import { createPublicKey, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeviceProvisioningClient } from '../../provisioning/client/device-client.js';
import { DeviceActions } from './actions.js';
import { type BundleFile, buildLogBundle, readJournal } from './log-bundle.js';
import { ProvisioningHttpError } from '../../provisioning/client/http.js';
import { PROVISIONING_CA_SHA256_ENV, pinServiceCa, TlsPinError } from '../../provisioning/client/tls-pin.js';
import { sameCertificate, verifyCaRollover } from '../../src/pki/ca-rollover.js';
import { verifyCrl } from '../../src/pki/crl.js';
import { createCsr, verifyDeviceCertificate } from '../../src/pki/index.js';
import { normalizeSerial } from '../../src/pki/verify.js';
import { readJsonIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';
import { createPinnedFetch } from '../../src/util/pinned-fetch.js';
import { type Logger, silentLogger } from '../../src/util/log.js';
import type { DeviceState, StateStore } from '../daemon/state.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../identity/index.js';
import { collectHealth, collectInventory } from './health.js';
import { CA_FILE, DeviceTrustAnchors } from './trust-anchors.js';
import {
  backoffDelay,
  type Certificate,
  type EnrollmentEvent,
  type EnrollmentState,
  initialEnrollmentState,
  nextAction,
  reduce,
  toView,
} from './machine.js';

export interface Clock {
  now(): number;
  /** Resolves after ms, or early when signal aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    }),
};

export interface EnrollmentRunnerOptions {
  /** Holds identity.key (0600), enrollment.json, and device.pem + ca.pem once enrolled. */
  stateDir: string;
  /** Base URL of the provisioning service. */
  serviceUrl: string;
  softwareVersion: string;
  /** The daemon's state: the runner writes `enrollment`, `device.{deviceId,roomName,org,site}`, and
   *  moves `phase` between 'enrolling' and 'idle'. */
  state?: StateStore;
  clock?: Clock;
  logger?: Logger;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
  backoff?: { baseMs: number; maxMs: number };
  collectInventory?: () => Promise<Record<string, unknown>>;
  collectHealth?: (state?: DeviceState) => Promise<Record<string, unknown>>;
  /**
   * SHA-256 (hex) of the provisioning service's TLS CA, checked at first use before pinning it.
   * Defaults to $SEALROOM_PROVISIONING_CA_SHA256 (/etc/default/sealroom); unset means trust on first use.
   */
  provisioningCaSha256?: string;
  /** The daemon's recent log text (its stderr ring) for a collect-logs bundle. */
  logText?: () => string;
  /** Literal secrets to scrub from a log bundle besides keys and tokens (e.g. the kiosk token). */
  secrets?: () => string[];
  /** Add the unit's journal lines to a log bundle when readable (default true). */
  readJournal?: boolean;
}

interface PersistedState {
  version: 1;
  state: EnrollmentState;
}

export const STATE_FILE = 'enrollment.json';

export class EnrollmentRunner extends EventEmitter<{
  change: [EnrollmentState];
  enrolled: [Certificate];
  config: [Record<string, unknown>, number];
  revoked: [string];
  /** A signed rollover replaced the pinned org CA (new CA PEM). */
  'ca-rollover': [string];
  /** IT asked for a daemon restart (action id); its 'done' is already recorded and reported. */
  restart: [string];
}> {
  readonly #opts: EnrollmentRunnerOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  #identity: DeviceIdentity | undefined;
  #state: EnrollmentState | undefined;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #attempt = 0;
  #fetch: typeof fetch | undefined;
  #client: DeviceProvisioningClient | undefined;
  #actions: DeviceActions | undefined;
  /** Activation codes issued to this process: scrubbed from log bundles (they may be in old lines). */
  readonly #codes = new Set<string>();

  constructor(opts: EnrollmentRunnerOptions) {
    super();
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#log = opts.logger ?? silentLogger;
  }

  get current(): EnrollmentState | undefined {
    return this.#state;
  }

  get identity(): DeviceIdentity | undefined {
    return this.#identity;
  }

  /** fetch pinned to the provisioning service's TLS CA, once pinned (use it for GET /v1/revocations). */
  get fetch(): typeof fetch | undefined {
    return this.#fetch;
  }

  /** Pins (first use) or reads the service TLS CA; retried by #run until it succeeds. */
  async #pin(): Promise<typeof fetch> {
    if (this.#fetch) return this.#fetch;
    const expected = this.#opts.provisioningCaSha256 ?? process.env[PROVISIONING_CA_SHA256_ENV];
    const caPem = await pinServiceCa({
      stateDir: this.#opts.stateDir,
      url: this.#opts.serviceUrl,
      ...(expected?.trim() ? { expectedSha256: expected.trim() } : {}),
    });
    this.#fetch = createPinnedFetch(caPem);
    return this.#fetch;
  }

  /** Loads (or makes) the identity key and the saved state, then runs in the background. */
  async start(): Promise<void> {
    if (this.#loop) return;
    this.#abort = new AbortController();
    this.#opts.state?.update((s) => {
      s.enrollment = { status: 'generating-key' };
    });
    this.#identity = await loadOrCreateIdentity(this.#opts.stateDir);
    if (this.#identity.created) this.#log.info({ deviceId: this.#identity.deviceId }, 'identity key created');
    const saved = await readJsonIfExists<PersistedState>(join(this.#opts.stateDir, STATE_FILE));
    this.#state =
      saved?.version === 1 && saved.state.deviceId === this.#identity.deviceId
        ? saved.state
        : initialEnrollmentState(this.#identity.deviceId);
    if (this.#state.phase === 'awaiting-claim' && this.#state.activationCode)
      this.#codes.add(this.#state.activationCode);
    this.#actions = new DeviceActions({
      stateDir: this.#opts.stateDir,
      logger: this.#log,
      now: () => this.#clock.now(),
      report: (id, result) => {
        if (!this.#client) throw new Error('not connected to the provisioning service yet');
        return this.#client.reportActionResult(id, result);
      },
      collectLogs: () => this.#collectLogs(),
      // Deferred: the listener may stop this runner, which waits for the loop that is emitting.
      restart: (id) => setImmediate(() => this.emit('restart', id)),
    });
    await this.#actions.load();
    this.#publish();
    this.#loop = this.#run().catch((err) =>
      this.#log.error({ err }, 'enrollment runner stopped on an error'),
    );
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  async #run(): Promise<void> {
    const identity = this.#identity!;
    const signal = this.#abort.signal;
    let client: DeviceProvisioningClient | undefined;
    while (!signal.aborted) {
      const action = nextAction(this.#state!, this.#clock.now());
      if (action === 'none') return;
      let waitMs: number;
      try {
        client ??= this.#client = new DeviceProvisioningClient(
          this.#opts.serviceUrl.replace(/\/$/, ''),
          identity.deviceId,
          identity.key.privateKey,
          () => this.#clock.now(),
          signal,
          await this.#pin(),
        );
        waitMs = await this.#perform(action, client);
        this.#attempt = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (action === 'renew' && (err instanceof RefusedReply || err instanceof ProvisioningHttpError)) {
          await this.#actions
            ?.renewFinished(false, `renewal failed: ${err.message}`)
            .catch((e) => this.#log.warn({ err: String(e) }, 'could not record the renewal outcome'));
          // A refusal that retrying cannot fix: back to heartbeats (the device stays visible to IT),
          // the service asks again when it still wants a renewal.
          const st = this.#state;
          const permanent =
            err instanceof RefusedReply ||
            (err.status >= 400 && err.status < 500 && ![401, 403, 408, 429].includes(err.status));
          if (permanent && st?.phase === 'enrolled')
            await this.#apply({
              type: 'heartbeat',
              configVersion: st.configVersion,
              renewCertificate: false,
            });
        }
        const handled = await this.#onHttpError(action, err);
        if (handled) continue;
        waitMs = backoffDelay(
          this.#attempt++,
          this.#clock.random(),
          this.#opts.backoff?.baseMs ?? 1000,
          this.#opts.backoff?.maxMs ?? 60_000,
        );
        const why =
          err instanceof ProvisioningHttpError &&
          err.status === 403 &&
          /revoked|decommissioned/.test(err.message)
            ? `the service says "${err.message}" without proof; ignored`
            : err instanceof ProvisioningHttpError ||
                err instanceof TlsPinError ||
                err instanceof RefusedReply
              ? err.message
              : untrustedTls(err)
                ? `the provisioning service presented a TLS certificate this device does not trust (${untrustedTls(err)}); refused`
                : 'provisioning service unreachable';
        this.#log.warn(
          { action, attempt: this.#attempt, waitMs, err: String(err) },
          'enrollment step failed',
        );
        this.#publish(`${why}; retrying in ${Math.ceil(waitMs / 1000)} s`);
      }
      await this.#clock.sleep(waitMs, signal);
    }
  }

  /** Does one step; returns how long to wait before the next. */
  async #perform(action: Exclude<ReturnType<typeof nextAction>, 'none'>, client: DeviceProvisioningClient) {
    const identity = this.#identity!;
    switch (action) {
      case 'register': {
        const csr = await createCsr(identity.key, { deviceId: identity.deviceId });
        const inventory = await (this.#opts.collectInventory ?? collectInventory)();
        const r = await client.enroll({ csr, softwareVersion: this.#opts.softwareVersion, inventory });
        this.#codes.add(r.activationCode);
        await this.#apply({ type: 'registered', ...r });
        this.#log.info({ deviceId: identity.deviceId, expiresAt: r.expiresAt }, 'activation code issued');
        return 0;
      }
      case 'poll-certificate': {
        const r = await client.fetchCertificate();
        if (r.status === 'active' && r.certPem && r.caCertPem) {
          await this.#applyCertificate(r);
          return 0;
        }
        return this.#opts.pollIntervalMs ?? 3000;
      }
      case 'renew': {
        const csr = await createCsr(identity.key, { deviceId: identity.deviceId });
        const renewed = await client.renew(csr);
        await this.#applyCertificate(renewed);
        await this.#actions?.renewFinished(
          true,
          `new certificate ${renewed.serial ?? ''}, valid until ${renewed.notAfter ?? '?'}`,
        );
        return 0;
      }
      case 'heartbeat': {
        const st = this.#state as Extract<EnrollmentState, { phase: 'enrolled' }>;
        const health = await (this.#opts.collectHealth ?? collectHealth)(this.#opts.state?.get());
        const r = await client.heartbeat({
          softwareVersion: this.#opts.softwareVersion,
          configVersion: st.configVersion,
          health,
        });
        // Actions first: a renew-certificate action asks for the renewal even if the flag is late.
        const wanted = await this.#actions!.receive(r.actions);
        await this.#apply({
          type: 'heartbeat',
          config: r.config,
          configVersion: r.configVersion,
          renewCertificate: r.renewCertificate === true || wanted.renew,
        });
        if (r.config) {
          await this.#applyCaRollover(r.config);
          this.emit('config', r.config, r.configVersion);
        }
        return this.#opts.heartbeatIntervalMs ?? 30_000;
      }
    }
  }

  /** The collect-logs bundle: logs, journal, state and enrollment summary; no key, token or code. */
  async #collectLogs(): Promise<Uint8Array> {
    const st = this.#state;
    const daemonState = this.#opts.state?.get();
    const view = daemonState ? structuredClone(daemonState) : undefined;
    if (view?.enrollment) {
      delete view.enrollment.activationCode;
      delete view.enrollment.claimUrl;
    }
    const summary =
      st?.phase === 'enrolled'
        ? {
            phase: st.phase,
            deviceId: st.deviceId,
            serial: st.certificate.serial,
            notAfter: st.certificate.notAfter,
            roomName: st.certificate.roomName,
            site: st.certificate.site,
            org: st.certificate.org,
            configVersion: st.configVersion,
            configKeys: Object.keys(st.config).slice(0, 100),
            renewalDue: st.renewalDue,
          }
        : { phase: st?.phase, deviceId: st?.deviceId };
    const health = await (this.#opts.collectHealth ?? collectHealth)(daemonState).catch((err: Error) => ({
      error: err.message,
    }));
    const journal = this.#opts.readJournal === false ? '' : await readJournal();
    const files: BundleFile[] = [
      { name: 'daemon.log', text: this.#opts.logText?.() ?? '' },
      ...(journal ? [{ name: 'journal.txt', text: journal }] : []),
      {
        name: 'about.json',
        text: JSON.stringify(
          {
            softwareVersion: this.#opts.softwareVersion,
            node: process.version,
            platform: `${process.platform} ${process.arch}`,
            uptimeSeconds: Math.round(process.uptime()),
            collectedAt: new Date(this.#clock.now()).toISOString(),
          },
          null,
          2,
        ),
      },
      { name: 'enrollment.json', text: JSON.stringify(summary, null, 2) },
      { name: 'state.json', text: JSON.stringify(view ?? null, null, 2) },
      { name: 'health.json', text: JSON.stringify(health, null, 2) },
      { name: 'actions.json', text: JSON.stringify(this.#actions?.entries ?? [], null, 2) },
    ];
    const secrets = [...(this.#opts.secrets?.() ?? []), ...this.#codes];
    if (st?.phase === 'awaiting-claim' && st.activationCode) secrets.push(st.activationCode);
    const key = this.#identity?.key.privateKey;
    if (key) secrets.push(String(key.export({ format: 'pem', type: 'pkcs8' })).trim());
    // The heartbeat key lives only in the client's memory; scrubbed anyway, should a log line hold it.
    secrets.push(...(this.#client?.heartbeatKeySecrets() ?? []));
    return buildLogBundle(files, { secrets, now: this.#clock.now() });
  }

  async #applyCertificate(r: Awaited<ReturnType<DeviceProvisioningClient['fetchCertificate']>>) {
    if (!r.certPem || !r.caCertPem || !r.serial)
      throw new RefusedReply('certificate reply without a certificate');
    // A rollover in the same reply's config moves the pinned CA first (a renewal from the new CA).
    if (r.config) await this.#applyCaRollover(r.config);
    const caPath = join(this.#opts.stateDir, CA_FILE);
    const pinned = await readFile(caPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (pinned !== undefined && !sameCertificate(pinned, r.caCertPem)) {
      throw new RefusedReply(
        'the service presented a different org CA than the one pinned at enrollment; refused without a signed CA rollover',
      );
    }
    // The certificate must be ours: issued by that CA, for this device's key.
    const verified = await verifyDeviceCertificate(r.certPem, r.caCertPem).catch((err: Error) => {
      throw new RefusedReply(`the certificate from the service does not verify: ${err.message}`);
    });
    const ownKey = createPublicKey(this.#identity!.key.privateKey).export({ format: 'der', type: 'spki' });
    if (!verified.publicKey.export({ format: 'der', type: 'spki' }).equals(ownKey))
      throw new RefusedReply('the certificate from the service is not for this device key');
    const certificate: Certificate = {
      certPem: r.certPem!,
      caCertPem: r.caCertPem!,
      serial: r.serial!,
      notAfter: r.notAfter!,
      roomName: r.roomName ?? '',
      site: r.site ?? '',
      org: r.org,
    };
    // The certificate files first: other parts (meeting client) read them once state says enrolled.
    await writeFileAtomic(join(this.#opts.stateDir, 'device.pem'), certificate.certPem, 0o644);
    if (pinned === undefined) await writeFileAtomic(caPath, certificate.caCertPem, 0o644);
    await this.#apply({
      type: 'certificate',
      certificate,
      config: r.config ?? {},
      configVersion: r.configVersion,
    });
    this.emit('enrolled', certificate);
    if (r.config) this.emit('config', r.config, r.configVersion);
  }

  /**
   * A `caRollover` in config: verified with the pinned org CA, then the new CA replaces ca.pem
   * (atomically). One already applied (its new CA is the pinned one) is ignored; one that does not
   * verify is logged and ignored.
   */
  async #applyCaRollover(config: Record<string, unknown>): Promise<boolean> {
    const doc = config.caRollover;
    if (doc === undefined || doc === null) return false;
    const caPath = join(this.#opts.stateDir, CA_FILE);
    const pinned = await readFile(caPath, 'utf8').catch(() => undefined);
    if (pinned === undefined) return false; // nothing pinned yet: the first certificate pins the CA
    const newCaPem = (doc as { newCaPem?: unknown }).newCaPem;
    if (typeof newCaPem === 'string' && sameCertificate(pinned, newCaPem)) return false;
    let verifiedPem: string;
    try {
      verifiedPem = verifyCaRollover(doc, pinned, new Date(this.#clock.now()));
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'refused a CA rollover that does not verify');
      return false;
    }
    await writeFileAtomic(caPath, verifiedPem, 0o644);
    this.#log.info(
      { newCa: new X509Certificate(verifiedPem).subject.replace(/\n/g, ', ') },
      'org CA rolled over (signed by the previous CA)',
    );
    this.emit('ca-rollover', verifiedPem);
    return true;
  }

  /**
   * Is this 403 a proven revocation? Only when its `crl` verifies with the pinned org CA and lists
   * this device's own certificate serial; the CRL is then put in force (DeviceTrustAnchors.applyCrl).
   */
  async #provenRevocation(err: ProvisioningHttpError): Promise<boolean> {
    const st = this.#state;
    const crl = (err.body as { crl?: unknown } | undefined)?.crl;
    if (st?.phase !== 'enrolled' || typeof crl !== 'string') return false;
    const caPem = await readFile(join(this.#opts.stateDir, CA_FILE), 'utf8').catch(() => undefined);
    if (!caPem) return false;
    try {
      const verified = await verifyCrl(crl, caPem);
      if (!verified.serials.has(normalizeSerial(st.certificate.serial))) return false;
    } catch {
      return false;
    }
    try {
      const anchors = await DeviceTrustAnchors.load(this.#opts.stateDir, this.#log);
      await anchors.applyCrl(crl);
    } catch (e) {
      // Proven all the same (verified above); an older-than-held CRL cannot list a newer revocation.
      this.#log.warn({ err: (e as Error).message }, 'could not store the revocation CRL');
    }
    return true;
  }

  /** Known answers that move the machine instead of retrying. Returns true when handled. */
  async #onHttpError(action: string, err: unknown): Promise<boolean> {
    if (!(err instanceof ProvisioningHttpError)) return false;
    if (err.status === 403 && (err.code === 'device-revoked' || /revoked|decommissioned/.test(err.message))) {
      if (!(await this.#provenRevocation(err))) {
        this.#log.warn(
          { action, status: err.status, message: err.message },
          'unproven revocation reply ignored',
        );
        return false;
      }
      await this.#apply({ type: 'revoked', reason: err.message.replace(/^this device is /, '') });
      this.emit('revoked', err.message);
      return true;
    }
    if (err.status === 401 && /unknown device/.test(err.message) && this.#state?.phase !== 'revoked') {
      this.#log.warn(
        { deviceId: this.#state?.deviceId },
        'the service does not know this device: enrolling again',
      );
      await this.#apply({ type: 'forgotten' });
      return true;
    }
    if (action === 'register' && err.status === 409) {
      await this.#apply({ type: 'already-known' });
      return true;
    }
    return false;
  }

  async #apply(event: EnrollmentEvent): Promise<void> {
    const next = reduce(this.#state!, event);
    await writeFileAtomic(
      join(this.#opts.stateDir, STATE_FILE),
      JSON.stringify({ version: 1, state: next } satisfies PersistedState),
      0o600,
    );
    this.#state = next;
    this.#publish();
    this.emit('change', next);
  }

  #publish(problem?: string): void {
    const store = this.#opts.state;
    const st = this.#state;
    if (!store || !st) return;
    store.update((s) => {
      s.enrollment = toView(st, problem);
      s.device.deviceId = st.deviceId;
      if (st.phase === 'enrolled') {
        s.device.roomName = st.certificate.roomName;
        s.device.org = st.certificate.org;
        s.device.site = st.certificate.site;
        if (s.phase === 'enrolling' || s.phase === 'starting') s.phase = 'idle';
      } else if (s.phase === 'starting' || s.phase === 'idle') {
        s.phase = st.phase === 'revoked' ? 'error' : 'enrolling';
      }
    });
  }
}

/** The TLS verification error code when a fetch failed because the server is not the pinned one. */
function untrustedTls(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; i++) {
    if (typeof e.code === 'string' && /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME/.test(e.code)) return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** A reply the device refuses to act on (wrong CA, certificate not ours): retried with backoff. */
export class RefusedReply extends Error {
  override readonly name = 'RefusedReply';
}
