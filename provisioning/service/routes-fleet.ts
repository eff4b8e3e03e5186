// The fleet for IT (the console and the API): status from heartbeats, health history, sites and
// their configuration profiles, remote actions (restart, renew the certificate, collect logs) and
// the device-signed route a device reports an action's result on. The device list and detail
// (routes-admin.ts) are built here too. Every change is audited in its own transaction and makes
// the heartbeat pipeline forget what it cached about the device.
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ActionNotFound,
  type ActionRecord,
  baselineFrom,
  decodeCursor,
  encodeCursor,
  type FleetCursor,
  type FleetFilter,
  type FleetRow,
  fleetDetailExtra,
  fleetSummary,
  getBundle,
  getProfile,
  healthSamples,
  isInMeeting,
  isOnline,
  jsonDepth,
  MAX_CONFIG_DEPTH,
  listActions,
  listFleet,
  listSites,
  openIncidentCounts,
  peripheralsDiff,
  putProfile,
  queueAction,
  recordActionResult,
  setBaselineIfUnset,
} from '../store/fleet-store.js';
import { StoreConflict, type TokenScope } from '../store/store.js';
import { deviceUpdateView } from '../store/update-store.js';
import { ADMIN_ERRORS, ADMIN_SECURITY } from './admin-route.js';
import { codedError, httpError, type ResolvedOptions } from './app.js';
import { actorOf, tokenIdOf } from './principal.js';
import { detail } from './routes-admin.js';
import { activeDevice } from './routes-device.js';
import {
  Action,
  ActionList,
  ActionParams,
  ActionRequest,
  ActionResultBody,
  DeviceActionParams,
  DeviceIdParams,
  type DeviceListQuery,
  FleetSummaryReply,
  HealthQuery,
  HealthSamples,
  MAX_BUNDLE_BYTES,
  ProfileBody,
  ProfileReply,
  SiteList,
  SiteParams,
} from './schemas.js';

type AuthFor = (scope: TokenScope) => (req: FastifyRequest) => Promise<void>;
type Hook = (req: FastifyRequest) => Promise<void>;

const gunzipAsync = promisify(gunzip);

const coded = codedError;

/** Refuses a configuration nested deeper than MAX_CONFIG_DEPTH (400 'config-too-deep'). */
export function checkConfigDepth(config: unknown): void {
  if (jsonDepth(config) > MAX_CONFIG_DEPTH)
    throw coded(400, 'config-too-deep', `a configuration may nest at most ${MAX_CONFIG_DEPTH} levels`);
}

function fleetFields(r: FleetRow, nowIso: string, openIncidents: number) {
  return {
    online: isOnline(r.lastSeenAt, nowIso),
    inMeeting: isInMeeting(r.meetingState, r.lastSeenAt, nowIso),
    meetingState: r.meetingState,
    configVersion: r.configVersion,
    reportedConfigVersion: r.reportedConfigVersion,
    configPending: r.status === 'active' && r.reportedConfigVersion !== r.configVersion,
    openIncidents,
  };
}

/** GET /v1/devices: one page (cursor or the old offset), the total, and the next cursor. */
export async function listDevicePage(opts: ResolvedOptions, q: DeviceListQuery) {
  const filter: FleetFilter = {
    ...(q.status ? { status: q.status } : {}),
    ...(q.site !== undefined ? { site: q.site } : {}),
    ...(q.q ? { q: q.q } : {}),
    ...(q.online !== undefined ? { online: q.online } : {}),
    ...(q.inMeeting !== undefined ? { inMeeting: q.inMeeting } : {}),
  };
  if (q.cursor !== undefined && q.offset)
    throw coded(400, 'bad-cursor', 'give either cursor or offset, not both');
  let cursor: FleetCursor | undefined;
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor, filter);
    if (typeof c === 'string') throw coded(400, 'bad-cursor', c);
    cursor = c;
  }
  const nowIso = opts.now().toISOString();
  const page = await listFleet(
    opts.store.db,
    filter,
    { limit: q.limit ?? 50, ...(cursor ? { cursor } : {}), ...(q.offset ? { offset: q.offset } : {}) },
    nowIso,
  );
  const incidents = await openIncidentCounts(
    opts.store.db,
    page.rows.map((r) => r.id),
  );
  return {
    total: page.total,
    items: page.rows.map((r) => ({
      id: r.id,
      status: r.status,
      roomName: r.roomName,
      site: r.site,
      softwareVersion: r.softwareVersion,
      lastSeenAt: r.lastSeenAt,
      certSerial: r.certSerial,
      certNotAfter: r.certNotAfter,
      createdAt: r.createdAt,
      ...fleetFields(r, nowIso, incidents.get(r.id) ?? 0),
    })),
    nextCursor: page.next ? encodeCursor(page.next, filter) : null,
  };
}

/** GET /v1/devices/:id: the stored detail plus fleet state, peripherals, certificate, override. */
export async function fleetDetail(opts: ResolvedOptions, id: string) {
  const d = await opts.store.getDevice(id);
  if (!d) return undefined;
  const extra = await fleetDetailExtra(opts.store.db, id);
  if (!extra) return undefined;
  let baseline = extra.peripheralsBaseline;
  if (!baseline) {
    // No flush set it yet (e.g. the health came before this instance ran): the health we have is the first.
    const first = baselineFrom(d.health);
    if (first && (await setBaselineIfUnset(opts.store.db, id, first))) baseline = first;
  }
  const now = opts.now();
  const nowIso = now.toISOString();
  const incidents = await openIncidentCounts(opts.store.db, [id]);
  const selfTest = d.health?.selfTest as { ok: boolean; failed: string[]; at: string } | undefined;
  return {
    ...detail(d),
    ...fleetFields(
      {
        ...d,
        reportedConfigVersion: extra.reportedConfigVersion,
        meetingState: extra.meetingState,
        pendingActions: extra.pendingActions,
      },
      nowIso,
      incidents.get(id) ?? 0,
    ),
    peripherals: peripheralsDiff(d.health, baseline),
    certificate: extra.certificate
      ? {
          ...extra.certificate,
          daysLeft: Math.floor((Date.parse(extra.certificate.notAfter) - now.getTime()) / 86_400_000),
        }
      : null,
    configOverride: extra.configOverride,
    profileVersion: extra.profileVersion,
    selfTest: selfTest ? { ok: selfTest.ok, failed: selfTest.failed, at: selfTest.at } : null,
    pendingActions: extra.pendingActions,
    update: await deviceUpdateView(opts.store.db, id, d.config),
  };
}

const actionView = (a: ActionRecord) => a;

export function registerFleetRoutes(
  v1: FastifyInstance,
  opts: ResolvedOptions,
  auth: AuthFor,
  deviceAuth: Hook,
): void {
  const { store } = opts;
  const read = auth('read');
  const admin = auth('admin');

  // The peripherals baseline is the first health that lists peripherals. Devices known to have one
  // are remembered so the flush path costs one UPDATE per device per process, not per heartbeat.
  const baselined = new Set<string>();
  opts.heartbeats.onFlush(async (batch) => {
    for (const hb of batch) {
      if (baselined.has(hb.deviceId)) continue;
      const b = baselineFrom(hb.health);
      if (!b) continue;
      await setBaselineIfUnset(store.db, hb.deviceId, b);
      if (baselined.size > 200_000) baselined.clear();
      baselined.add(hb.deviceId);
    }
  });

  v1.get(
    '/fleet/summary',
    {
      schema: {
        summary:
          'Fleet counts: active devices online/offline, in a meeting, waiting for a claim; open incidents; sites',
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        response: { 200: FleetSummaryReply, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async () => fleetSummary(store.db, opts.now().toISOString()),
  );

  v1.get<{ Params: { id: string }; Querystring: { hours?: number } }>(
    '/devices/:id/health',
    {
      schema: {
        summary: 'Health samples of the last hours (≤ 168), oldest first',
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: DeviceIdParams,
        querystring: HealthQuery,
        response: { 200: HealthSamples, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => {
      if (!(await store.getDevice(req.params.id))) throw httpError(404, 'unknown device');
      const since = new Date(opts.now().getTime() - (req.query.hours ?? 24) * 3600_000).toISOString();
      return { samples: await healthSamples(store.db, req.params.id, since) };
    },
  );

  v1.get(
    '/sites',
    {
      schema: {
        summary: 'Sites with their active and online device counts and profile version',
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        response: { 200: SiteList, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async () => ({ items: await listSites(store.db, opts.now().toISOString()) }),
  );

  v1.get<{ Params: { site: string } }>(
    '/sites/:site/profile',
    {
      schema: {
        summary: "The site's configuration profile (devices get it merged under their override)",
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: SiteParams,
        response: { 200: ProfileReply, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => {
      const p = await getProfile(store.db, req.params.site);
      if (!p) throw httpError(404, 'this site has no profile');
      return p;
    },
  );

  v1.put<{ Params: { site: string }; Body: { config: Record<string, unknown> } }>(
    '/sites/:site/profile',
    {
      schema: {
        summary:
          "Set the site's profile: every active device of the site gets profile ← its override; config_version rises only where that changed",
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: SiteParams,
        body: ProfileBody,
        response: { 200: ProfileReply, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      checkConfigDepth(req.body.config);
      const { profile, changed } = await putProfile(store.db, {
        site: req.params.site,
        config: req.body.config,
        actor: actorOf(req),
        tokenId: tokenIdOf(req),
        now: opts.now().toISOString(),
      });
      for (const id of changed) opts.heartbeats.invalidate(id);
      req.log.info(
        { site: profile.site, version: profile.version, changed: changed.length },
        'site profile set',
      );
      return profile;
    },
  );

  v1.post<{ Params: { id: string }; Body: { kind: 'restart' | 'renew-certificate' | 'collect-logs' } }>(
    '/devices/:id/actions',
    {
      schema: {
        summary: 'Queue a remote action; the device gets it in its next heartbeat reply',
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: DeviceIdParams,
        body: ActionRequest,
        response: { 202: Action, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req, reply) => {
      if (!(await store.getDevice(req.params.id))) throw httpError(404, 'unknown device');
      let action: ActionRecord;
      try {
        action = await queueAction(store.db, {
          deviceId: req.params.id,
          kind: req.body.kind,
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
      return reply.status(202).send(actionView(action));
    },
  );

  v1.get<{ Params: { id: string } }>(
    '/devices/:id/actions',
    {
      schema: {
        summary: "The device's remote actions, newest first (sent > 1 h without a result: expired)",
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: DeviceIdParams,
        response: { 200: ActionList, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => {
      if (!(await store.getDevice(req.params.id))) throw httpError(404, 'unknown device');
      const items = await listActions(store.db, req.params.id, opts.now().toISOString());
      return { items: items.map(actionView) };
    },
  );

  v1.get<{ Params: { actionId: string } }>(
    '/actions/:actionId/bundle',
    {
      schema: {
        summary: 'The log bundle a collect-logs action uploaded (application/gzip)',
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: ActionParams,
        produces: ['application/gzip'],
        response: ADMIN_ERRORS,
      },
      preHandler: read,
    },
    async (req, reply) => {
      const b = await getBundle(store.db, req.params.actionId);
      if (!b) throw httpError(404, 'no log bundle for this action');
      return reply
        .type('application/gzip')
        .header(
          'content-disposition',
          `attachment; filename="sealroom-logs-${b.deviceId}-${req.params.actionId}.gz"`,
        )
        .header('x-content-type-options', 'nosniff')
        .header('x-sealroom-sha256', b.sha256)
        .send(b.content);
    },
  );

  // Device-signed: the signature (deviceAuth) proves the device in the path; the action must be its own.
  v1.post<{
    Params: { id: string; actionId: string };
    Body: { status: 'done' | 'failed'; message?: string; bundle?: string };
  }>(
    '/devices/:id/actions/:actionId/result',
    {
      // A log bundle (≤ 8 MiB gzip as base64) does not fit the service's small default body limit.
      bodyLimit: 12 * 1024 * 1024,
      schema: {
        summary: 'A device reports the result of an action it was sent (collect-logs: with the gzip bundle)',
        tags: ['device'],
        security: [{ deviceSignature: [] }],
        params: DeviceActionParams,
        body: ActionResultBody,
        response: { 200: Action, ...ADMIN_ERRORS },
      },
      preHandler: deviceAuth,
    },
    async (req) => {
      await activeDevice(opts, req.params.id);
      let bundle: Buffer | undefined;
      if (req.body.bundle !== undefined) {
        bundle = Buffer.from(req.body.bundle, 'base64');
        if (bundle.length > MAX_BUNDLE_BYTES)
          throw coded(413, 'bundle-too-large', 'the bundle is larger than 8 MiB');
        if (bundle.length < 18 || bundle[0] !== 0x1f || bundle[1] !== 0x8b)
          throw coded(400, 'bundle-not-gzip', 'the bundle is not a gzip file');
        try {
          // Decompressing proves it is whole gzip; the cap stops a small bomb from filling memory.
          await gunzipAsync(bundle, { maxOutputLength: MAX_BUNDLE_BYTES });
        } catch (err) {
          if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
            throw coded(413, 'bundle-too-large', 'the bundle is larger than 8 MiB uncompressed');
          throw coded(400, 'bundle-not-gzip', 'the bundle is not a valid gzip file');
        }
      }
      try {
        const a = await recordActionResult(store.db, {
          deviceId: req.params.id,
          actionId: req.params.actionId,
          status: req.body.status,
          ...(req.body.message !== undefined ? { message: req.body.message } : {}),
          ...(bundle ? { bundle } : {}),
          now: opts.now().toISOString(),
        });
        return actionView(a);
      } catch (err) {
        if (err instanceof ActionNotFound) throw httpError(404, 'unknown action');
        if (err instanceof StoreConflict) throw httpError(409, err.message);
        throw err;
      } finally {
        opts.heartbeats.invalidate(req.params.id);
      }
    },
  );
}
