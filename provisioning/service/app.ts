// The provisioning service as a fastify instance (no listen here: serve.ts and the tests do that).
// Routes: see ./routes-device.ts (device-signed and enrollment) and ./routes-admin.ts (admin tokens);
// with `people`, ./routes-people.ts (sign-in → person certificates) and ./routes-join.ts (the /join/ page).
import { createPublicKey, type KeyObject, randomBytes, verify } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type HookHandlerDoneFunction,
} from 'fastify';
import { CRL_REISSUE_MS, CRL_VALIDITY_MS, crlToPem, issueCrl } from '../../src/pki/crl.js';
import type { CertificateAuthority } from '../../src/pki/index.js';
import type { Logger } from '../../src/util/log.js';
import { MAX_SKEW_MS, type ParsedDeviceAuth, parseDeviceAuth, signedString } from '../device-auth.js';
import {
  deriveHeartbeatKey,
  HEARTBEAT_KEY_HEADERS,
  HEARTBEAT_KEY_TTL_MS,
  heartbeatSecretName,
  parseHeartbeatMac,
  verifyHeartbeatMac,
} from '../heartbeat-key.js';
import { ensureServiceSecret } from '../store/heartbeat-store.js';
import type { CrlDocument, ProvisioningStore, TokenRecord, TokenScope } from '../store/store.js';
import { hashAdminToken } from '../tokens.js';
import { type AlertEngine, type AlertOptions, startAlerts } from '../alerts/engine.js';
import type { ConsoleOptions } from '../console/options.js';
import { registerConsole } from '../console/routes.js';
import { consoleUserFor } from '../console/session.js';
import {
  createHeartbeatPipeline,
  type HeartbeatPipeline,
  type HeartbeatPipelineOptions,
} from './heartbeats.js';
import { scopeOfRole } from './principal.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerAlertRoutes } from './routes-alerts.js';
import { registerFleetRoutes } from './routes-fleet.js';
import { registerDeviceRoutes } from './routes-device.js';
import { registerUpdateRoutes, registerUpdatesRepo, type UpdatesOptions } from './routes-updates.js';
import { registerJoinRoutes, type WebOptions } from './routes-join.js';
import { type PeopleOptions, registerPeopleRoutes } from './routes-people.js';

export type { PeopleOptions };

export interface ServiceOptions {
  store: ProvisioningStore;
  ca: CertificateAuthority;
  /** Organisation name written into device certificates (O). */
  org: string;
  /** Base URL devices and IT reach the service at (used in claim URLs). */
  publicUrl: string;
  logger?: Logger | false;
  codeTtlSeconds?: number;
  certValidityDays?: number;
  /** Heartbeat replies ask for renewal when less than this remains. */
  renewBeforeDays?: number;
  rateLimits?: {
    /** Per client address. */
    enrollmentsPerMinute?: number;
    /** Per client address. */
    claimsPerMinute?: number;
    /** Per device (its verified id), on every device-signed route: sustained rate (default 300). */
    deviceRequestsPerMinute?: number;
    /** Per device: how many requests may come at once above the sustained rate (default 60). */
    deviceBurst?: number;
    /** Per client address: person certificate requests (and trust fetches) per minute (default 30). */
    peopleCertificatesPerMinute?: number;
  };
  /** How often expired nonces, enrollments and pending devices are purged (default 60 s). */
  purgeIntervalMs?: number;
  /** Unused activation codes are kept this long past their expiry before being purged (default 1 h). */
  enrollmentRetentionMs?: number;
  bodyLimitBytes?: number;
  now?: () => Date;
  /** PEM TLS certificate and key: serve HTTPS. */
  https?: { cert: string; key: string };
  /** People sign-in with the org's OpenID Connect provider → person certificates (docs/people.md). */
  people?: PeopleOptions;
  /** The web participant's page at /join/ (dist/web by default; served only when `people` is set). */
  web?: WebOptions;
  /** The IT console at /console/: sign-in with the org's OpenID Connect provider (docs/console.md). */
  console?: ConsoleOptions;
  /** Alert rules → incidents → webhooks and e-mail (docs/alerts.md). */
  alerts?: AlertOptions;
  /** Host the TUF repository of software updates at /updates/ (docs/updates.md "In the fleet"). */
  updates?: UpdatesOptions;
  /** Heartbeat write-behind: flush period, health-sample period (ms), buffer bound (devices);
   *  keyTtlMs: lifetime of the heartbeat MAC keys devices fetch (default 6 h, provisioning/heartbeat-key.ts). */
  heartbeats?: Pick<
    HeartbeatPipelineOptions,
    'flushIntervalMs' | 'sampleIntervalMs' | 'sampleRetentionMs' | 'maxBuffered'
  > & {
    keyTtlMs?: number;
  };
}

/** The current heartbeat-key secret (service_secrets) and the lifetime of the keys it derives. */
export interface HeartbeatKeySource {
  secret: Buffer;
  generation: number;
  ttlMs: number;
}

/** The secret generation new keys are derived from (a rotation would add generation 2). */
const HEARTBEAT_SECRET_GENERATION = 1;

export interface ResolvedOptions
  extends Required<
    Omit<
      ServiceOptions,
      'logger' | 'rateLimits' | 'https' | 'people' | 'web' | 'console' | 'alerts' | 'heartbeats' | 'updates'
    >
  > {
  rateLimits: Required<NonNullable<ServiceOptions['rateLimits']>>;
  people?: PeopleOptions;
  console?: ConsoleOptions;
  /** Heartbeats are buffered and written in batches (provisioning/service/heartbeats.ts). */
  heartbeats: HeartbeatPipeline;
  /** Derives the heartbeat MAC keys (POST /v1/devices/:id/heartbeat-key, heartbeatAuth). */
  heartbeatKey: HeartbeatKeySource;
  /** Set once the alert engine started (after the routes are registered). */
  alerts?: AlertEngine;
  /** The CRL to serve (cached in the store, re-signed when the revoked set changes or it ages). */
  crl: CrlSource;
}

/** The current signed CRL of the service; `invalidate` after a revocation made by this instance. */
export interface CrlSource {
  current(): Promise<CrlDocument & { pem: string }>;
  invalidate(): void;
}

/** How long an instance reuses the CRL it last read from the store without asking it again. */
const CRL_MEMO_MS = 2000;

export function createCrlSource(
  store: ProvisioningStore,
  ca: CertificateAuthority,
  now: () => Date,
): CrlSource {
  let memo: { at: number; doc: CrlDocument & { pem: string } } | undefined;
  let pending: Promise<CrlDocument & { pem: string }> | undefined;
  const load = async () => {
    const t = now();
    const doc = await store.currentCrl(t, CRL_REISSUE_MS, async (entries, crlNumber) => {
      const thisUpdate = new Date(Math.floor(t.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + CRL_VALIDITY_MS);
      const { der } = await issueCrl(ca, {
        entries: entries.map((e) => ({ serial: e.serial, revokedAt: new Date(e.revokedAt) })),
        crlNumber,
        thisUpdate,
        nextUpdate,
      });
      return { der, thisUpdate, nextUpdate };
    });
    const out = { ...doc, pem: crlToPem(doc.der) };
    memo = { at: t.getTime(), doc: out };
    return out;
  };
  return {
    current: () => {
      const t = now().getTime();
      if (memo && t - memo.at >= 0 && t - memo.at < CRL_MEMO_MS) return Promise.resolve(memo.doc);
      // Concurrent requests share one store round trip (and at most one signature).
      pending ??= load().finally(() => {
        pending = undefined;
      });
      return pending;
    },
    invalidate: () => {
      memo = undefined;
    },
  };
}

/** Per-key token buckets (bounded: the oldest keys are dropped first). */
export class KeyedRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(
    readonly perMinute: number,
    readonly burst: number,
    readonly maxKeys = 100_000,
  ) {}

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string, now: number): boolean {
    let b = this.#buckets.get(key);
    if (b) {
      this.#buckets.delete(key); // re-insert: the map stays in least-recently-used order
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) * this.perMinute) / 60_000);
      b.at = now;
    } else {
      b = { tokens: this.burst, at: now };
      if (this.#buckets.size >= this.maxKeys) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
    }
    this.#buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/**
 * verifyDeviceSignature, run on libuv's thread pool (crypto.verify with a callback): an Ed25519
 * verification costs about as much CPU as a whole bare fastify request, and off the event loop it
 * runs on another core while the loop parses and answers the next requests.
 */
function verifyInThreadPool(parsed: ParsedDeviceAuth, req: FastifyRequest, key: KeyObject): Promise<boolean> {
  const msg = signedString({
    method: req.method,
    path: req.url,
    body: req.rawBody,
    timestamp: String(parsed.timestamp),
    nonce: parsed.nonce,
    deviceId: parsed.deviceId,
  });
  return new Promise((resolve) => {
    verify(null, Buffer.from(msg, 'utf8'), key, parsed.signature, (err, ok) => resolve(!err && ok));
  });
}

/** An HTTP error with a status code and a message meant for the caller. */
export function httpError(statusCode: number, message: string): Error & { statusCode: number } {
  return Object.assign(new Error(message), { statusCode });
}

/** An HTTP error with a machine-readable `error` code as well. */
export function codedError(statusCode: number, code: string, message: string) {
  return Object.assign(httpError(statusCode, message), { code });
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody: string;
    adminToken?: TokenRecord;
    deviceId?: string;
    /** The verified signature's timestamp (unix ms), set on the heartbeat route. */
    deviceSignedAt?: number;
  }
  interface FastifyInstance {
    /** The heartbeat write-behind pipeline (tests call heartbeats.flush() before reading the store). */
    heartbeats: HeartbeatPipeline;
  }
}

export async function buildService(options: ServiceOptions): Promise<FastifyInstance> {
  const now = options.now ?? (() => new Date());
  const opts: ResolvedOptions = {
    store: options.store,
    ca: options.ca,
    org: options.org,
    publicUrl: options.publicUrl.replace(/\/$/, ''),
    codeTtlSeconds: options.codeTtlSeconds ?? 15 * 60,
    certValidityDays: options.certValidityDays ?? 365,
    renewBeforeDays: options.renewBeforeDays ?? 30,
    bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024,
    now,
    rateLimits: {
      enrollmentsPerMinute: options.rateLimits?.enrollmentsPerMinute ?? 30,
      claimsPerMinute: options.rateLimits?.claimsPerMinute ?? 30,
      deviceRequestsPerMinute: options.rateLimits?.deviceRequestsPerMinute ?? 300,
      deviceBurst: options.rateLimits?.deviceBurst ?? 60,
      peopleCertificatesPerMinute: options.rateLimits?.peopleCertificatesPerMinute ?? 30,
    },
    purgeIntervalMs: options.purgeIntervalMs ?? 60_000,
    enrollmentRetentionMs: options.enrollmentRetentionMs ?? 3600_000,
    crl: createCrlSource(options.store, options.ca, now),
    ...(options.people ? { people: options.people } : {}),
    ...(options.console ? { console: options.console } : {}),
    heartbeats: createHeartbeatPipeline(options.store, {
      now,
      ...options.heartbeats,
      ...(options.logger ? { log: options.logger } : {}),
    }),
    heartbeatKey: {
      // Created by the first instance on this database; the others read the same value.
      secret: await ensureServiceSecret(
        options.store.db,
        heartbeatSecretName(HEARTBEAT_SECRET_GENERATION),
        randomBytes(32),
        now().toISOString(),
      ),
      generation: HEARTBEAT_SECRET_GENERATION,
      ttlMs: options.heartbeats?.keyTtlMs ?? HEARTBEAT_KEY_TTL_MS,
    },
  };
  const deviceLimiter = new KeyedRateLimiter(
    opts.rateLimits.deviceRequestsPerMinute,
    opts.rateLimits.deviceBurst,
  );
  // One options object for the HTTP and HTTPS overloads of Fastify(); the casts only pick the overload.
  const app = Fastify({
    loggerInstance: options.logger || undefined,
    logger: options.logger === false ? false : undefined,
    bodyLimit: opts.bodyLimitBytes,
    // Site names (≤ 120 characters, more once URL-encoded) travel in paths: /v1/sites/:site/profile.
    routerOptions: { maxParamLength: 512 },
    ...(options.https ? { https: options.https } : {}),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  } as never) as unknown as FastifyInstance;
  app.decorate('heartbeats', opts.heartbeats);

  // Keep the exact bytes: device signatures cover the SHA-256 of the raw body.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    req.rawBody = body as string;
    if ((body as string).length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(httpError(400, 'the body is not valid JSON'), undefined);
    }
  });
  // '' until the parser sets it (a decoration, not an onRequest hook: no per-request hook to run).
  app.decorateRequest('rawBody', '');

  await app.register(rateLimit, { global: false });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Sealroom provisioning',
        version: '1',
        description: 'Device enrollment, certificates, fleet health and configuration, revocation and audit.',
      },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'srt_… token, scope read or admin' },
          deviceSignature: {
            type: 'apiKey',
            in: 'header',
            name: 'x-sealroom-signature',
            description: 'Ed25519 request signature, see provisioning/device-auth.ts',
          },
          heartbeatMac: {
            type: 'apiKey',
            in: 'header',
            name: 'x-sealroom-mac',
            description: 'heartbeats: HMAC under a heartbeat key, see provisioning/heartbeat-key.ts',
          },
        },
      },
    },
  });

  const keyCache = new Map<string, KeyObject>();
  /** Signature, path device and per-device rate; returns the verified headers. */
  const verifyDevice = async (req: FastifyRequest) => {
    const now = opts.now().getTime();
    const parsed = parseDeviceAuth(req.headers, now);
    if (typeof parsed === 'string') throw httpError(401, `device signature rejected: ${parsed}`);
    const params = req.params as { id?: string };
    if (params.id !== parsed.deviceId)
      throw httpError(403, 'the signing device is not the device in the path');
    let key = keyCache.get(parsed.deviceId);
    if (!key) {
      // One read gives the key and primes the heartbeat cache (the device's next call is a heartbeat).
      const device = await opts.heartbeats.load(parsed.deviceId);
      if (!device) throw httpError(401, 'device signature rejected: unknown device');
      key = createPublicKey({
        key: Buffer.concat([
          Buffer.from('302a300506032b6570032100', 'hex'),
          Buffer.from(device.publicKey, 'base64'),
        ]),
        format: 'der',
        type: 'spki',
      });
      // Safe to cache forever: the device id is a hash of this very key. Bounded: beyond a fleet of
      // 250 000 the oldest entry goes (clearing all would send the whole fleet to the database).
      if (keyCache.size >= 250_000) {
        const oldest = keyCache.keys().next().value;
        if (oldest !== undefined) keyCache.delete(oldest);
      }
      keyCache.set(parsed.deviceId, key);
    }
    if (!(await verifyInThreadPool(parsed, req, key))) {
      throw httpError(401, 'device signature rejected: bad-signature');
    }
    // Per device, keyed by the id the signature proved (so nobody can spend another device's budget),
    // and before the nonce is stored (a flooding device does not fill the nonce table).
    takeDeviceBudget(parsed.deviceId, now);
    return parsed;
  };
  const deviceAuth = async (req: FastifyRequest) => {
    const parsed = await verifyDevice(req);
    const expires = new Date(parsed.timestamp + MAX_SKEW_MS + 1000).toISOString();
    if (!(await opts.store.useNonce(parsed.deviceId, parsed.nonce, expires))) {
      throw httpError(401, 'device signature rejected: replayed request (nonce already used)');
    }
    req.deviceId = parsed.deviceId;
  };
  const takeDeviceBudget = (deviceId: string, now: number) => {
    if (!deviceLimiter.take(deviceId, now)) {
      throw Object.assign(httpError(429, 'too many requests from this device: slow down'), {
        headers: { 'retry-after': String(Math.ceil(60 / opts.rateLimits.deviceRequestsPerMinute)) },
      });
    }
  };
  // Derived keys per device, so a steady device costs one HMAC (its MAC) and a SHA-256 (its body).
  // The key is a function of (secret, keyId): a cache hit needs the same keyId, nothing else.
  const derivedKeys = new Map<string, { keyId: string; key: Buffer }>();
  const derivedKey = (deviceId: string, keyId: string, expiresUnixS: number): Buffer => {
    const hit = derivedKeys.get(deviceId);
    if (hit && hit.keyId === keyId) return hit.key;
    const key = deriveHeartbeatKey(opts.heartbeatKey.secret, deviceId, expiresUnixS);
    if (!hit && derivedKeys.size >= 250_000) {
      const oldest = derivedKeys.keys().next().value;
      if (oldest !== undefined) derivedKeys.delete(oldest);
    }
    derivedKeys.set(deviceId, { keyId, key });
    return key;
  };
  /** A heartbeat MAC'd with a heartbeat key (provisioning/heartbeat-key.ts): an HMAC, no signature. */
  const verifyHeartbeatKey = (req: FastifyRequest) => {
    const now = opts.now().getTime();
    const parsed = parseHeartbeatMac(req.headers, now);
    if (parsed === 'heartbeat-key-expired')
      throw Object.assign(httpError(401, 'heartbeat key expired: fetch a new one'), {
        code: 'heartbeat-key-expired',
      });
    if (typeof parsed === 'string') throw httpError(401, `heartbeat MAC rejected: ${parsed}`);
    if ((req.params as { id?: string }).id !== parsed.deviceId)
      throw httpError(403, "the heartbeat key's device is not the device in the path");
    const hk = opts.heartbeatKey;
    // Another generation: the secret was rotated (or the keyId is made up); the device fetches anew.
    if (parsed.generation !== hk.generation)
      throw Object.assign(httpError(401, 'heartbeat key unknown: fetch a new one'), {
        code: 'heartbeat-key-expired',
      });
    // Never issued that far ahead (a forged expiry would not verify anyway: the key depends on it).
    if (parsed.expiresUnixS * 1000 > now + hk.ttlMs + MAX_SKEW_MS)
      throw httpError(401, 'heartbeat MAC rejected: bad-key-id');
    const key = derivedKey(parsed.deviceId, parsed.keyId, parsed.expiresUnixS);
    if (!verifyHeartbeatMac(parsed, key, { method: req.method, path: req.url, body: req.rawBody }))
      throw httpError(401, 'heartbeat MAC rejected: bad-mac');
    takeDeviceBudget(parsed.deviceId, now);
    return parsed;
  };
  // Heartbeats skip the nonce table (the hot path): a heartbeat is a state report dated by its
  // signed (or MAC'd) time, and a replay cannot move devices.last_seen_at forward (heartbeats.ts).
  // Normally MAC'd with a heartbeat key; an Ed25519 signature is still accepted (older devices, and a
  // device's fallback when its key was refused).
  // Callback style: the MAC path is synchronous, and costs no promise.
  const heartbeatAuth = (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (req.headers[HEARTBEAT_KEY_HEADERS.keyId] === undefined) {
      verifyDevice(req).then((parsed) => {
        req.deviceId = parsed.deviceId;
        req.deviceSignedAt = parsed.timestamp;
        done();
      }, done);
      return;
    }
    let parsed: ReturnType<typeof verifyHeartbeatKey>;
    try {
      parsed = verifyHeartbeatKey(req);
    } catch (err) {
      done(err as Error);
      return;
    }
    req.deviceId = parsed.deviceId;
    req.deviceSignedAt = parsed.timestamp;
    done();
  };

  const adminAuth = (scope: TokenScope) => async (req: FastifyRequest) => {
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) {
      // The console: a session cookie instead of a token; a change must also echo the session's
      // anti-CSRF token (a cookie alone is sent by any page that makes the browser post here).
      const user = opts.console ? await consoleUserFor(req, opts) : undefined;
      if (!user) throw httpError(401, 'an admin token is required (Authorization: Bearer srt_…)');
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.headers['x-sealroom-csrf'] !== user.csrf)
        throw httpError(403, 'missing or wrong x-sealroom-csrf header: reload the console');
      if (scope === 'admin' && scopeOfRole(user.role) !== 'admin')
        throw httpError(403, 'helpdesk is read-only: ask an admin');
      req.consoleUser = user;
      return;
    }
    const record = await opts.store.findToken(hashAdminToken(token));
    if (!record) throw httpError(401, 'unknown or revoked admin token');
    if (record.revokedAt) throw httpError(401, 'unknown or revoked admin token: this token was revoked');
    if (Date.parse(record.expiresAt) <= opts.now().getTime())
      throw httpError(401, `token expired (${record.expiresAt}): ask IT for a new one`);
    if (scope === 'admin' && record.scope !== 'admin') throw httpError(403, 'this token is read-only');
    req.adminToken = record;
  };

  app.setErrorHandler(
    (
      err: Error & {
        statusCode?: number;
        validation?: unknown;
        code?: string;
        crl?: string;
        headers?: Record<string, string>;
      },
      req,
      reply: FastifyReply,
    ) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
      if (status >= 500) req.log.error({ err }, 'request failed');
      const message =
        status >= 500 ? 'internal error' : err.validation ? `invalid request: ${err.message}` : err.message;
      if (err.headers) reply.headers(err.headers);
      return reply.status(status).send({
        statusCode: status,
        // A machine-readable code when the route set one (e.g. 'device-revoked'), else the HTTP name.
        error:
          status < 500 && err.code && /^[a-z][a-z-]*$/.test(err.code)
            ? err.code
            : (STATUS_CODES[status] ?? 'Error'),
        message,
        ...(status === 403 && typeof err.crl === 'string' ? { crl: err.crl } : {}),
      });
    },
  );

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true, store: opts.store.kind }));
  // /claim (the QR code's URL) is the console's: provisioning/console/routes.ts.

  await app.register(
    async (v1) => {
      registerDeviceRoutes(v1, opts, deviceAuth, heartbeatAuth);
      registerAdminRoutes(v1, opts, adminAuth);
      registerFleetRoutes(v1, opts, adminAuth, deviceAuth);
      registerAlertRoutes(v1, opts, adminAuth);
      registerUpdateRoutes(v1, opts, adminAuth, deviceAuth, options.updates);
    },
    { prefix: '/v1' },
  );
  if (opts.people) registerPeopleRoutes(app, opts, opts.people);
  if (options.updates) await registerUpdatesRepo(app, options.updates);
  await registerJoinRoutes(app, options);
  await registerConsole(app, options, opts);
  opts.alerts = startAlerts(app, opts, options.alerts);
  app.addHook('onClose', async () => {
    // Buffered heartbeats are written before the store closes; then the alert timers stop.
    await opts.heartbeats.close();
    await opts.alerts?.close();
  });

  // Forget nonces once their timestamps have left the acceptance window, and activation codes (and
  // the pending devices they belonged to) once they expired more than enrollmentRetentionMs ago.
  // One purge at a time, and none left running once the service is closed: a purge still deleting
  // after close would act on a store the caller may already be reusing (or closing).
  let purging: Promise<unknown> | undefined;
  const purge = setInterval(() => {
    if (purging) return;
    const t = opts.now();
    purging = Promise.all([
      opts.store
        .purgeExpired(t.toISOString(), new Date(t.getTime() - opts.enrollmentRetentionMs).toISOString())
        .catch((err) => app.log.warn({ err }, 'purge of expired nonces and enrollments failed')),
      opts.people
        ? opts.store
            .purgeUsedIdTokens(t.toISOString())
            .catch((err) => app.log.warn({ err }, 'purge of used ID tokens failed'))
        : undefined,
      // Health samples past heartbeats.sampleRetentionMs (7 days), in bounded batches.
      opts.heartbeats
        .purgeSamples()
        .catch((err) => app.log.warn({ err }, 'purge of old health samples failed')),
    ]).finally(() => {
      purging = undefined;
    });
  }, opts.purgeIntervalMs);
  purge.unref();
  app.addHook('onClose', async () => {
    clearInterval(purge);
    await purging;
  });
  return app;
}
