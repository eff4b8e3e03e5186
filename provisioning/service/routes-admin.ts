// IT-facing routes (admin tokens): claim activation codes, the fleet, configuration, revocation,
// decommissioning, audit log, tokens (create, list, revoke). Every change is written to the audit log
// with the token's name as the actor and its id as tokenId, in the same transaction as the change.
// A token never creates a token with a wider scope or a later expiry than its own.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { issueDeviceCertificateDetailed } from '../../src/pki/index.js';
import { CODE_ALPHABET, hashActivationCode, normalizeActivationCode } from '../activation-code.js';
import { type DeviceRecord, StoreConflict, type TokenRecord, type TokenScope } from '../store/store.js';
import { DEFAULT_TOKEN_DAYS, generateAdminToken, hashAdminToken, mintRefusal } from '../tokens.js';
import { ADMIN_ERRORS, ADMIN_SECURITY } from './admin-route.js';
import { httpError, type ResolvedOptions } from './app.js';
import { applySiteProfile, setDeviceOverride } from '../store/fleet-store.js';
import { actorOf, tokenIdOf } from './principal.js';
import { checkConfigDepth, fleetDetail, listDevicePage } from './routes-fleet.js';
import { pkiToHttp } from './routes-device.js';
import {
  AuditList,
  type AuditQuery,
  ClaimRequest,
  ConfigBody,
  DeviceDetail,
  DeviceIdParams,
  DeviceList,
  type DeviceListQuery,
  DeviceListQuery as DeviceListQuerySchema,
  AuditQuery as AuditQuerySchema,
  FleetDeviceDetail,
  ReasonBody,
  TokenCreated,
  TokenIdParams,
  TokenList,
  TokenRequest,
} from './schemas.js';

type AuthFor = (scope: TokenScope) => (req: FastifyRequest) => Promise<void>;

export function summary(d: DeviceRecord) {
  return {
    id: d.id,
    status: d.status,
    roomName: d.roomName,
    site: d.site,
    softwareVersion: d.softwareVersion,
    lastSeenAt: d.lastSeenAt,
    certSerial: d.certSerial,
    certNotAfter: d.certNotAfter,
    createdAt: d.createdAt,
  };
}

export function detail(d: DeviceRecord) {
  return {
    ...summary(d),
    policy: d.policy,
    inventory: d.inventory,
    config: d.config,
    configVersion: d.configVersion,
    claimedAt: d.claimedAt,
    claimedBy: d.claimedBy,
    revokedAt: d.revokedAt,
    health: d.health,
  };
}

const tokenInfo = (t: TokenRecord) => ({
  id: t.id,
  name: t.name,
  scope: t.scope,
  createdAt: t.createdAt,
  expiresAt: t.expiresAt,
  createdBy: t.createdBy,
  revokedAt: t.revokedAt,
});

export function registerAdminRoutes(app: FastifyInstance, opts: ResolvedOptions, auth: AuthFor): void {
  const { store } = opts;
  const read = auth('read');
  const admin = auth('admin');

  app.post<{ Body: ClaimRequest }>(
    '/claims',
    {
      schema: {
        summary: 'Claim an activation code: assign room, site, policy; issues the device certificate',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        body: ClaimRequest,
        response: { 201: DeviceDetail, ...ADMIN_ERRORS },
      },
      preHandler: admin,
      config: { rateLimit: { max: opts.rateLimits.claimsPerMinute, timeWindow: 60_000 } },
    },
    async (req, reply) => {
      checkConfigDepth(req.body.config ?? {});
      const code = normalizeActivationCode(req.body.activationCode);
      if (!code) {
        throw httpError(
          400,
          `an activation code is 8 characters from ${CODE_ALPHABET} (dashes and spaces ignored)`,
        );
      }
      const enrollment = await store.findEnrollmentByCodeHash(hashActivationCode(code));
      if (!enrollment) throw httpError(404, 'unknown activation code');
      if (enrollment.usedAt) throw httpError(409, 'this activation code was already used');
      const now = opts.now();
      if (Date.parse(enrollment.expiresAt) <= now.getTime()) {
        throw httpError(
          410,
          'this activation code has expired: restart enrollment on the device for a new one',
        );
      }
      const device = await store.getDevice(enrollment.deviceId);
      if (device?.status !== 'pending') throw httpError(409, 'the device is not waiting for a claim');
      const issued = await issueDeviceCertificateDetailed({
        ca: opts.ca,
        csrPem: device.csrPem,
        deviceId: device.id,
        roomName: req.body.roomName,
        site: req.body.site,
        org: opts.org,
        validityDays: opts.certValidityDays,
        now,
      }).catch((err) => {
        throw pkiToHttp(err);
      });
      try {
        await store.claim({
          enrollmentId: enrollment.id,
          deviceId: device.id,
          roomName: req.body.roomName,
          site: req.body.site,
          policy: req.body.policy ?? 'default',
          config: req.body.config ?? {},
          cert: {
            serial: issued.serial,
            certPem: issued.certPem,
            notBefore: issued.notBefore.toISOString(),
            notAfter: issued.notAfter.toISOString(),
            issuedAt: now.toISOString(),
          },
          actor: actorOf(req),
          tokenId: tokenIdOf(req),
          now: now.toISOString(),
        });
      } catch (err) {
        if (err instanceof StoreConflict) throw httpError(409, err.message);
        throw err;
      }
      // The claim's config is the device's override; its site's profile (if any) goes under it.
      await applySiteProfile(store.db, device.id);
      opts.heartbeats.invalidate(device.id);
      req.log.info({ deviceId: device.id, actor: actorOf(req) }, 'device claimed');
      return reply.status(201).send(detail((await store.getDevice(device.id))!));
    },
  );

  app.get<{ Querystring: DeviceListQuery }>(
    '/devices',
    {
      schema: {
        summary: 'List and filter the fleet',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        querystring: DeviceListQuerySchema,
        response: { 200: DeviceList, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => listDevicePage(opts, req.query),
  );

  app.get<{ Params: { id: string } }>(
    '/devices/:id',
    {
      schema: {
        summary:
          'Device detail: last heartbeat health, online/meeting state, peripherals against their baseline, certificate, config override',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        params: DeviceIdParams,
        response: { 200: FleetDeviceDetail, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => {
      const d = await fleetDetail(opts, req.params.id);
      if (!d) throw httpError(404, 'unknown device');
      return d;
    },
  );

  app.put<{ Params: { id: string }; Body: { config: Record<string, unknown> } }>(
    '/devices/:id/config',
    {
      schema: {
        summary:
          "Set the device's configuration override, merged over its site's profile (delivered in the next heartbeat reply)",
        tags: ['admin'],
        security: ADMIN_SECURITY,
        params: DeviceIdParams,
        body: ConfigBody,
        response: { 200: DeviceDetail, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      checkConfigDepth(req.body.config);
      if (!(await store.getDevice(req.params.id))) throw httpError(404, 'unknown device');
      try {
        await setDeviceOverride(store.db, {
          deviceId: req.params.id,
          override: req.body.config,
          actor: actorOf(req),
          tokenId: tokenIdOf(req),
          now: opts.now().toISOString(),
        });
      } catch (err) {
        if (err instanceof StoreConflict) throw httpError(409, err.message);
        throw err;
      } finally {
        opts.heartbeats.invalidate(req.params.id);
      }
      return detail((await store.getDevice(req.params.id))!);
    },
  );

  for (const [action, status] of [
    ['revoke', 'revoked'],
    ['decommission', 'decommissioned'],
  ] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
      `/devices/:id/${action}`,
      {
        schema: {
          summary:
            action === 'revoke'
              ? 'Revoke the device and its certificates (the relay refuses it)'
              : 'Decommission: revoke and retire the device',
          tags: ['admin'],
          security: ADMIN_SECURITY,
          params: DeviceIdParams,
          body: ReasonBody,
          response: { 200: DeviceDetail, ...ADMIN_ERRORS },
        },
        preHandler: admin,
      },
      async (req) => {
        if (!(await store.getDevice(req.params.id))) throw httpError(404, 'unknown device');
        try {
          await store.revoke(
            req.params.id,
            actorOf(req),
            req.body?.reason ?? '',
            opts.now().toISOString(),
            status,
            tokenIdOf(req),
          );
        } catch (err) {
          if (err instanceof StoreConflict) throw httpError(409, err.message);
          throw err;
        } finally {
          opts.crl.invalidate();
          opts.heartbeats.invalidate(req.params.id);
        }
        req.log.info({ deviceId: req.params.id, actor: actorOf(req) }, `device ${status}`);
        return detail((await store.getDevice(req.params.id))!);
      },
    );
  }

  app.get<{ Querystring: AuditQuery }>(
    '/audit',
    {
      schema: {
        summary: 'Audit log of admin actions, newest first',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        querystring: AuditQuerySchema,
        response: { 200: AuditList, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => store.listAudit(req.query),
  );

  app.post<{ Body: TokenRequest }>(
    '/tokens',
    {
      schema: {
        summary:
          'Create an admin API token (shown once); never a wider scope or a later expiry than the creating token',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        body: TokenRequest,
        response: { 201: TokenCreated, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req, reply) => {
      const parent = req.adminToken!;
      const now = opts.now();
      const expiresAt = req.body.expiresAt
        ? new Date(req.body.expiresAt)
        : new Date(Math.min(now.getTime() + DEFAULT_TOKEN_DAYS * 86_400_000, Date.parse(parent.expiresAt)));
      if (Number.isNaN(expiresAt.getTime())) throw httpError(400, 'expiresAt is not a valid time');
      const refused = mintRefusal(parent, { scope: req.body.scope, expiresAt }, now);
      if (refused) throw httpError(403, refused);
      const token = generateAdminToken();
      const id = randomBytes(8).toString('hex');
      let created: TokenRecord;
      try {
        created = await store.createToken({
          id,
          name: req.body.name,
          tokenHash: hashAdminToken(token),
          scope: req.body.scope,
          actor: actorOf(req),
          tokenId: tokenIdOf(req),
          now: now.toISOString(),
          expiresAt: expiresAt.toISOString(),
        });
      } catch (err) {
        if (err instanceof StoreConflict) throw httpError(409, err.message);
        throw err;
      }
      return reply.status(201).send({ ...tokenInfo(created), token });
    },
  );

  app.get(
    '/tokens',
    {
      schema: {
        summary: 'List admin tokens (never their secrets or hashes)',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        response: { 200: TokenList, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async () => (await store.listTokens()).map(tokenInfo),
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    {
      schema: {
        summary: 'Revoke an admin token (by id or name): it is refused from now on',
        tags: ['admin'],
        security: ADMIN_SECURITY,
        params: TokenIdParams,
        response: { 200: TokenList.items, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      try {
        const t = await store.revokeToken(
          req.params.id,
          actorOf(req),
          opts.now().toISOString(),
          tokenIdOf(req),
        );
        req.log.info({ tokenId: t.id, actor: actorOf(req) }, 'admin token revoked');
        return tokenInfo(t);
      } catch (err) {
        if (err instanceof StoreConflict)
          throw httpError(err.message === 'unknown token' ? 404 : 409, err.message);
        throw err;
      }
    },
  );
}
