// Device-facing routes: enrollment (CSR + inventory → activation code), certificate pickup,
// heartbeats with health (config in the reply), renewal with the same key; plus the public CA
// certificate and signed revocation list.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  deviceIdForPublicKey,
  issueDeviceCertificateDetailed,
  PkiError,
  parseAndVerifyCsr,
  rawPublicKey,
  signRevocationList,
} from '../../src/pki/index.js';
import { generateActivationCode, hashActivationCode, normalizeActivationCode } from '../activation-code.js';
import { StoreConflict } from '../store/store.js';
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
  RevocationListReply,
} from './schemas.js';

type Hook = (req: FastifyRequest) => Promise<void>;

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

export function registerDeviceRoutes(app: FastifyInstance, opts: ResolvedOptions, deviceAuth: Hook): void {
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
      if (!device) throw httpError(404, 'unknown device');
      if (device.status === 'revoked' || device.status === 'decommissioned') {
        throw httpError(403, `this device is ${device.status}`);
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
      schema: {
        summary: 'Health report; the reply carries newer configuration and renewal advice',
        tags: ['device'],
        security: [{ deviceSignature: [] }],
        params: DeviceIdParams,
        body: HeartbeatRequest,
        response: { 200: HeartbeatReply, ...errors },
      },
      preHandler: deviceAuth,
    },
    async (req) => {
      const now = opts.now();
      // One statement on the hot path; the device row is read only when the heartbeat is refused.
      const seen = await store.recordHeartbeat(
        req.params.id,
        req.body.health,
        req.body.softwareVersion,
        now.toISOString(),
      );
      if (!seen) {
        const device = await store.getDevice(req.params.id);
        throw httpError(device ? 403 : 404, device ? `this device is ${device.status}` : 'unknown device');
      }
      const renewAt = seen.certNotAfter
        ? Date.parse(seen.certNotAfter) - opts.renewBeforeDays * 86_400_000
        : 0;
      return {
        status: 'active' as const,
        configVersion: seen.configVersion,
        ...(req.body.configVersion < seen.configVersion
          ? { config: await store.getConfig(req.params.id) }
          : {}),
        renewCertificate: now.getTime() >= renewAt,
        serverTime: now.toISOString(),
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
      const device = await store.getDevice(req.params.id);
      if (device?.status !== 'active') throw httpError(403, 'only active devices renew certificates');
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

  app.get(
    '/revocations',
    {
      schema: {
        summary: 'Revoked certificate serials, signed with the CA key (for the relay)',
        tags: ['public'],
        response: { 200: RevocationListReply },
      },
    },
    async () => signRevocationList(opts.ca, await store.listRevoked(), opts.now().toISOString()),
  );
}
