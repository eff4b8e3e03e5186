// Device-facing routes: enrollment (CSR + inventory → activation code), certificate pickup,
// heartbeats with health (config in the reply), renewal with the same key; plus the public CA
// certificate and the CRL (RFC 5280, signed by the org CA, cached in the store).
// A device that is revoked or decommissioned is answered 403 { error: 'device-revoked', crl: PEM }:
// the CRL is the proof a device checks before believing it (an injected "revoked" reply without a
// CRL signed by its org CA that lists its serial is ignored).
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import {
  deviceIdForPublicKey,
  issueDeviceCertificateDetailed,
  PkiError,
  parseAndVerifyCsr,
  rawPublicKey,
} from '../../src/pki/index.js';
import { generateActivationCode, hashActivationCode, normalizeActivationCode } from '../activation-code.js';
import { deriveHeartbeatKey, heartbeatKeyId } from '../heartbeat-key.js';
import { takeQueuedActions } from '../store/fleet-store.js';
import { hasSentRenewal } from '../store/heartbeat-store.js';
import { type DeviceRecord, StoreConflict } from '../store/store.js';
import { httpError, type ResolvedOptions } from './app.js';
import {
  CertificateReply,
  DeviceIdParams,
  EnrollReply,
  EnrollRequest,
  ErrorReply,
  HeartbeatReply,
  HeartbeatRequest,
  RenewRequest,
} from './schemas.js';

type Hook = (req: FastifyRequest) => Promise<void>;
type CallbackHook = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

const HeartbeatKeyReply = Type.Object({
  keyId: Type.String({ description: '<device id>.<expires, unix s>.<secret generation>' }),
  key: Type.String({ description: 'base64 HMAC-SHA256 key: MAC heartbeats with it (x-sealroom-mac)' }),
  expiresAt: Type.String(),
});

const errors = {
  400: ErrorReply,
  401: ErrorReply,
  403: ErrorReply,
  404: ErrorReply,
  409: ErrorReply,
  429: ErrorReply,
};

export function pkiToHttp(err: unknown): Error {
  if (err instanceof PkiError) {
    const what = {
      malformed: 'malformed CSR',
      'bad-signature': 'the CSR signature does not match its key',
      'wrong-key-type': 'the CSR key must be Ed25519',
      'bad-subject': 'the CSR common name must be the device id derived from its key',
    }[err.code as string];
    return httpError(400, what ?? err.message);
  }
  return err as Error;
}

/** The 403 a revoked or decommissioned device gets, with the current CRL as proof. */
export async function deviceRevokedError(opts: ResolvedOptions, status: string): Promise<Error> {
  const crl = await opts.crl.current();
  return Object.assign(httpError(403, `this device is ${status}`), { code: 'device-revoked', crl: crl.pem });
}

/** After the signature verified: the device row is gone (a purged pending enrollment) → enroll again. */
const forgotten = () => httpError(401, 'device signature rejected: unknown device');

/**
 * The device of a device-signed request, which must be active: gone → 401 (enroll again), revoked or
 * decommissioned → 403 with the CRL, otherwise not active → 403 (`inactive`, or `this device is <status>`).
 */
export async function activeDevice(
  opts: ResolvedOptions,
  id: string,
  inactive?: string,
): Promise<DeviceRecord> {
  const device = await opts.store.getDevice(id);
  if (!device) throw forgotten();
  if (device.status === 'revoked' || device.status === 'decommissioned')
    throw await deviceRevokedError(opts, device.status);
  if (device.status !== 'active') throw httpError(403, inactive ?? `this device is ${device.status}`);
  return device;
}

export function registerDeviceRoutes(
  app: FastifyInstance,
  opts: ResolvedOptions,
  deviceAuth: Hook,
  heartbeatAuth: Hook | CallbackHook = deviceAuth,
): void {
  const { store } = opts;

  app.post<{ Body: EnrollRequest }>(
    '/enrollments',
    {
      schema: {
        summary: 'A device registers its CSR and inventory and gets an activation code',
        tags: ['device'],
        body: EnrollRequest,
        response: { 201: EnrollReply, ...errors },
      },
      config: { rateLimit: { max: opts.rateLimits.enrollmentsPerMinute, timeWindow: 60_000 } },
    },
    async (req, reply) => {
      const csr = await parseAndVerifyCsr(req.body.csr).catch((err) => {
        throw pkiToHttp(err);
      });
      const deviceId = deviceIdForPublicKey(csr.publicKey);
      if (csr.commonName !== deviceId) throw pkiToHttp(new PkiError('bad-subject', ''));
      const now = opts.now();
      const code = generateActivationCode();
      const enrollmentId = randomBytes(12).toString('base64url');
      const expiresAt = new Date(now.getTime() + opts.codeTtlSeconds * 1000).toISOString();
      try {
        await store.registerEnrollment({
          deviceId,
          publicKey: Buffer.from(rawPublicKey(csr.publicKey)).toString('base64'),
          csrPem: req.body.csr,
          inventory: req.body.inventory,
          softwareVersion: req.body.softwareVersion,
          enrollmentId,
          codeHash: hashActivationCode(normalizeActivationCode(code)!),
          expiresAt,
          now: now.toISOString(),
        });
      } catch (err) {
        if (err instanceof StoreConflict) throw httpError(409, `${err.message}: it cannot enroll again`);
        throw err;
      }
      req.log.info({ deviceId, enrollmentId }, 'enrollment registered');
      return reply.status(201).send({
        enrollmentId,
        deviceId,
        activationCode: code,
        expiresAt,
        claimUrl: `${opts.publicUrl}/claim?code=${code}`,
      });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/devices/:id/certificate',
    {
      schema: {
        summary: 'The device picks up its certificate (pending until IT claims the code)',
        tags: ['device'],
        security: [{ deviceSignature: [] }],
        params: DeviceIdParams,
        response: { 200: CertificateReply, 202: CertificateReply, ...errors },
      },
      preHandler: deviceAuth,
    },
    async (req, reply) => {
      const device = await store.getDevice(req.params.id);
      if (!device) throw forgotten();
      if (device.status === 'revoked' || device.status === 'decommissioned') {
        throw await deviceRevokedError(opts, device.status);
      }
      if (device.status === 'pending' || !device.certSerial) {
        return reply
          .status(202)
          .send({ status: 'pending', deviceId: device.id, org: opts.org, configVersion: 0 });
      }
      const cert = await store.getCertificate(device.certSerial);
      return {
        status: device.status,
        deviceId: device.id,
        certPem: cert?.certPem,
        caCertPem: opts.ca.certPem,
        serial: device.certSerial,
        notAfter: device.certNotAfter ?? undefined,
        roomName: device.roomName ?? undefined,
        site: device.site ?? undefined,
        org: opts.org,
        config: device.config,
        configVersion: device.configVersion,
      };
    },
  );

  app.post<{
    Params: { id: string };
    Body: { softwareVersion: string; configVersion: number; health: Record<string, unknown> };
  }>(
    '/devices/:id/heartbeat',
    {
      // Every device every 30 s: no per-request log lines at info.
      logLevel: 'warn',
      schema: {
        summary: 'Health report; the reply carries newer configuration, queued actions and renewal advice',
        description:
          "Written in batches (about once a second); a report counts at its signed time, so a replayed or older one is answered but changes nothing. Normally MAC'd with a heartbeat key (x-sealroom-heartbeat-key, x-sealroom-timestamp, x-sealroom-mac; 401 heartbeat-key-expired → fetch a new key); an Ed25519 signature is also accepted.",
        tags: ['device'],
        security: [{ heartbeatMac: [] }, { deviceSignature: [] }],
        params: DeviceIdParams,
        body: HeartbeatRequest,
        response: { 200: HeartbeatReply, ...errors, 503: ErrorReply },
      },
      preHandler: heartbeatAuth,
    },
    async (req, reply) => {
      const id = req.params.id;
      // Buffered; the state comes from this instance's cache (no database work once a device is known).
      const state = await opts.heartbeats.accept(id, req.deviceSignedAt!, req.body);
      if (!state) throw forgotten();
      if (state.status === 'revoked' || state.status === 'decommissioned')
        throw await deviceRevokedError(opts, state.status);
      if (state.status !== 'active') throw httpError(403, `this device is ${state.status}`);
      const now = opts.now();
      const renewAt = state.certNotAfter
        ? Date.parse(state.certNotAfter) - opts.renewBeforeDays * 86_400_000
        : 0;
      if (
        state.pendingActions === 0 &&
        req.body.configVersion >= state.configVersion &&
        Number.isSafeInteger(state.configVersion)
      ) {
        // The common reply (no config, no actions), written as JSON text: an integer, a boolean and
        // an ISO time, nothing to escape; fastify's serializer and preSerialization step are skipped.
        reply.header('content-type', 'application/json; charset=utf-8');
        return `{"status":"active","configVersion":${state.configVersion},"renewCertificate":${now.getTime() >= renewAt},"serverTime":"${now.toISOString()}"}`;
      }
      let actions: { id: string; kind: string }[] = [];
      let renewalSent = false;
      if (state.pendingActions > 0) {
        actions = await takeQueuedActions(store.db, id, now.toISOString());
        renewalSent =
          actions.some((a) => a.kind === 'renew-certificate') || (await hasSentRenewal(store.db, id));
      }
      const body: {
        status: 'active';
        configVersion: number;
        config?: Record<string, unknown>;
        actions?: { id: string; kind: string }[];
        renewCertificate: boolean;
        serverTime: string;
      } = {
        status: 'active',
        configVersion: state.configVersion,
        renewCertificate: renewalSent || now.getTime() >= renewAt,
        serverTime: now.toISOString(),
      };
      if (req.body.configVersion < state.configVersion) body.config = await store.getConfig(id);
      if (actions.length > 0) body.actions = actions;
      return body;
    },
  );

  app.post<{ Params: { id: string } }>(
    '/devices/:id/heartbeat-key',
    {
      schema: {
        summary: 'A short-lived key to MAC heartbeats with (instead of signing each one)',
        description:
          'Device-signed (with a nonce). Stateless: the key is derived from a service secret, so every instance verifies it. provisioning/heartbeat-key.ts',
        tags: ['device'],
        security: [{ deviceSignature: [] }],
        params: DeviceIdParams,
        response: { 200: HeartbeatKeyReply, ...errors },
      },
      preHandler: deviceAuth,
    },
    async (req, reply) => {
      const device = await activeDevice(opts, req.params.id, 'only active devices get a heartbeat key');
      const hk = opts.heartbeatKey;
      const expires = Math.floor((opts.now().getTime() + hk.ttlMs) / 1000);
      // The key is a secret: never cached by anything on the way.
      reply.header('cache-control', 'no-store');
      return {
        keyId: heartbeatKeyId(device.id, expires, hk.generation),
        key: deriveHeartbeatKey(hk.secret, device.id, expires).toString('base64'),
        expiresAt: new Date(expires * 1000).toISOString(),
      };
    },
  );

  app.post<{ Params: { id: string }; Body: { csr: string } }>(
    '/devices/:id/certificate/renewal',
    {
      schema: {
        summary: 'Renews the certificate with the same key (CSR signed by it)',
        tags: ['device'],
        security: [{ deviceSignature: [] }],
        params: DeviceIdParams,
        body: RenewRequest,
        response: { 200: CertificateReply, ...errors },
      },
      preHandler: deviceAuth,
    },
    async (req) => {
      const device = await activeDevice(opts, req.params.id, 'only active devices renew certificates');
      const csr = await parseAndVerifyCsr(req.body.csr).catch((err) => {
        throw pkiToHttp(err);
      });
      if (Buffer.from(rawPublicKey(csr.publicKey)).toString('base64') !== device.publicKey) {
        throw httpError(400, 'renewal must use the key the device enrolled with');
      }
      const now = opts.now();
      const issued = await issueDeviceCertificateDetailed({
        ca: opts.ca,
        csrPem: req.body.csr,
        deviceId: device.id,
        roomName: device.roomName ?? '',
        site: device.site ?? '',
        org: opts.org,
        validityDays: opts.certValidityDays,
        now,
      }).catch((err) => {
        throw pkiToHttp(err);
      });
      await store.addRenewedCertificate(device.id, {
        serial: issued.serial,
        certPem: issued.certPem,
        notBefore: issued.notBefore.toISOString(),
        notAfter: issued.notAfter.toISOString(),
        issuedAt: now.toISOString(),
      });
      opts.heartbeats.invalidate(device.id); // the cached certNotAfter would ask for renewal again
      return {
        status: 'active' as const,
        deviceId: device.id,
        certPem: issued.certPem,
        caCertPem: opts.ca.certPem,
        serial: issued.serial,
        notAfter: issued.notAfter.toISOString(),
        roomName: device.roomName ?? undefined,
        site: device.site ?? undefined,
        org: opts.org,
        config: device.config,
        configVersion: device.configVersion,
      };
    },
  );

  app.get(
    '/ca',
    {
      schema: { summary: 'The org CA certificate (PEM)', tags: ['public'] },
    },
    async (_req, reply) => reply.type('application/x-pem-file').send(opts.ca.certPem),
  );

  const crlReply = (pem: boolean) => async (_req: FastifyRequest, reply: FastifyReply) => {
    const crl = await opts.crl.current();
    return reply
      .type(pem ? 'application/x-pem-file' : 'application/pkix-crl')
      .header('cache-control', 'no-cache')
      .header('last-modified', new Date(crl.thisUpdate).toUTCString())
      .header('x-sealroom-crl-number', crl.crlNumber.toString())
      .send(pem ? crl.pem : crl.der);
  };
  app.get(
    '/revocations',
    {
      schema: {
        summary:
          'The X.509 CRL (RFC 5280, DER, application/pkix-crl) signed by the org CA: revoked certificate serials, thisUpdate/nextUpdate and a strictly increasing CRL number',
        tags: ['public'],
        produces: ['application/pkix-crl'],
      },
    },
    crlReply(false),
  );
  app.get(
    '/revocations.pem',
    { schema: { summary: 'The same CRL in PEM', tags: ['public'], produces: ['application/x-pem-file'] } },
    crlReply(true),
  );
}
