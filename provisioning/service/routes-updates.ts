// Software updates in the fleet (issue 14; docs/updates.md "In the fleet"):
// - the TUF repository, when the service hosts it (`--updates-repo <dir>`): GET /updates/metadata/<file>
//   and GET /updates/targets/<path>, plain files with Range requests, nothing else (no listing, no
//   dot segments, no symlink leaving the repository, long cache only for consistent-snapshot names).
//   The files are public: what protects devices is TUF's signatures, checked on the device.
// - POST /v1/devices/:id/update-state: a device reports its update state, signed like action results;
//   the newest `at` wins (a replayed or late older report is ignored);
// - GET /v1/fleet/updates: the rollout per channel; PUT /v1/sites/:site/update-policy and
//   PUT /v1/devices/:id/update-policy: channel, window, pause (the `update` configuration key).
import { constants, realpathSync } from 'node:fs';
import { type FileHandle, open, readFile, realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { compareSemver, isSemver } from '../../src/update/bundle.js';
import { StoreConflict, type TokenScope } from '../store/store.js';
import {
  CHANNEL_RE,
  MAX_FUTURE_SKEW_MS,
  recordUpdateState,
  rolloutSummary,
  setUpdatePolicy,
  type UpdatePolicyChange,
} from '../store/update-store.js';
import { ADMIN_ERRORS, ADMIN_SECURITY } from './admin-route.js';
import { codedError, httpError, type ResolvedOptions } from './app.js';
import { actorOf, tokenIdOf } from './principal.js';
import { activeDevice } from './routes-device.js';
import {
  DeviceIdParams,
  MAX_UPDATE_STATE_BODY,
  RolloutQuery,
  RolloutReply,
  SiteParams,
  UpdatePolicyBody,
  UpdatePolicyReply,
  UpdateStateBody,
  UpdateStateReply,
} from './schemas.js';

type AuthFor = (scope: TokenScope) => (req: FastifyRequest) => Promise<void>;
type Hook = (req: FastifyRequest) => Promise<void>;

export interface UpdatesOptions {
  /** A TUF repository made by scripts/release/publish.ts (metadata/ and targets/ are served). */
  repoDir: string;
}

const coded = codedError;

// ── the TUF repository as static files ──────────────────────────────────────────────────────

/** A metadata file name: flat, e.g. timestamp.json, 3.root.json, 12.snapshot.json. */
const METADATA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.json$/;
/** One segment of a target path: no leading dot (so no `.`, `..` or dotfiles), no separators. */
const TARGET_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}$/;
const MAX_TARGET_DEPTH = 6;
/** Consistent-snapshot names never change content: N.root.json, N.targets.json, <sha256>.<name>. */
const IMMUTABLE_METADATA = /^[1-9][0-9]{0,18}\.[a-z]+\.json$/;
const IMMUTABLE_TARGET = /^[0-9a-f]{64}\./;

/** The segments of a request path below a served folder, or undefined when any is not allowed. */
export function safeSegments(raw: string, kind: 'metadata' | 'targets'): string[] | undefined {
  if (raw.length === 0 || raw.length > 1024) return undefined;
  // Fastify decodes the path once; what is left must be plain (a second decoding is never done).
  if (/[\\%\0]/.test(raw)) return undefined;
  const parts = raw.split('/');
  if (kind === 'metadata')
    return parts.length === 1 && METADATA_NAME.test(parts[0]!) && !raw.includes('..') ? parts : undefined;
  if (parts.length > MAX_TARGET_DEPTH) return undefined;
  return parts.every((p) => TARGET_SEGMENT.test(p) && !p.includes('..')) ? parts : undefined;
}

interface ByteRange {
  start: number;
  end: number;
}

/**
 * A single `bytes=` range against a file of `size` bytes: the range, 'unsatisfiable' (416), or
 * undefined (no usable Range header: the whole file; several ranges are answered whole too).
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d{0,16})-(\d{0,16})$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== '' && Number(b) < start) return undefined; // syntactically invalid: ignored (RFC 9110)
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

async function sendRepoFile(
  req: FastifyRequest,
  reply: FastifyReply,
  root: string,
  folder: 'metadata' | 'targets',
  raw: string,
) {
  const parts = safeSegments(raw, folder);
  if (!parts) throw httpError(404, 'not found');
  const base = join(root, folder);
  const wanted = resolve(base, ...parts);
  let real: string;
  let realBase: string;
  try {
    realBase = await realpath(base);
    real = await realpath(wanted);
  } catch {
    throw httpError(404, 'not found');
  }
  // A symlink anywhere on the way may not lead out of the served folder.
  if (!real.startsWith(realBase + sep)) throw httpError(404, 'not found');
  let fh: FileHandle;
  try {
    fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw httpError(404, 'not found');
  }
  let handedOver = false;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw httpError(404, 'not found'); // directories are never listed
    const name = parts[parts.length - 1]!;
    const immutable = folder === 'metadata' ? IMMUTABLE_METADATA.test(name) : IMMUTABLE_TARGET.test(name);
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    reply
      .header('content-type', folder === 'metadata' ? 'application/json' : 'application/octet-stream')
      .header('x-content-type-options', 'nosniff')
      .header('accept-ranges', 'bytes')
      .header('etag', etag)
      .header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined && ifNoneMatch === etag) return reply.status(304).send();
    const ifRange = req.headers['if-range'];
    const range =
      ifRange === undefined || ifRange === etag
        ? parseRange(req.headers.range as string | undefined, st.size)
        : undefined;
    if (range === 'unsatisfiable') {
      reply.header('content-range', `bytes */${st.size}`);
      throw coded(416, 'range-not-satisfiable', `the file has ${st.size} bytes`);
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? st.size - 1;
    const length = st.size === 0 ? 0 : end - start + 1;
    if (range) reply.status(206).header('content-range', `bytes ${start}-${end}/${st.size}`);
    reply.header('content-length', String(length));
    // HEAD: no payload, so fastify keeps the content-length set above (a stream would be read whole).
    if (req.method === 'HEAD') return reply.send();
    if (length === 0) return reply.send('');
    handedOver = true;
    return reply.send(fh.createReadStream({ start, end, autoClose: true }));
  } finally {
    if (!handedOver) await fh.close().catch(() => {});
  }
}

/** GET (and HEAD) /updates/metadata/<file> and /updates/targets/<path> from the repository. */
export async function registerUpdatesRepo(app: FastifyInstance, o: UpdatesOptions): Promise<void> {
  const root = resolve(o.repoDir);
  // Fail at start, not at the first device: the repository must exist and be a TUF one.
  for (const f of ['metadata', 'targets'])
    if (!(await stat(join(root, f)).catch(() => undefined))?.isDirectory())
      throw new Error(
        `--updates-repo ${o.repoDir}: no ${f}/ folder (make one with scripts/release/publish.ts)`,
      );
  // GET and HEAD in one route: fastify's automatic HEAD would read a file stream to its end.
  const methods: ('GET' | 'HEAD')[] = ['GET', 'HEAD'];
  app.route<{ Params: { file: string } }>({
    method: methods,
    url: '/updates/metadata/:file',
    schema: { hide: true },
    handler: (req, reply) => sendRepoFile(req, reply, root, 'metadata', req.params.file),
  });
  app.route<{ Params: { '*': string } }>({
    method: methods,
    url: '/updates/targets/*',
    schema: { hide: true },
    handler: (req, reply) => sendRepoFile(req, reply, root, 'targets', req.params['*']),
  });
}

/**
 * The newest published version per channel and architecture, read from the repository's current
 * metadata (timestamp → snapshot → targets; no signature check: it is our own disk, only shown to
 * IT). Re-read when timestamp.json changes; {} when there is no repository or it cannot be read.
 */
export function latestReleasesReader(repoDir: string | undefined) {
  let memo: { key: string; value: Map<string, Record<string, string>> } | undefined;
  return async (): Promise<Map<string, Record<string, string>>> => {
    if (!repoDir) return new Map();
    try {
      const md = join(realpathSync(repoDir), 'metadata');
      const ts = await stat(join(md, 'timestamp.json'));
      const key = `${ts.mtimeMs}:${ts.size}`;
      if (memo?.key === key) return memo.value;
      const read = async (f: string) =>
        JSON.parse(await readFile(join(md, f), 'utf8')) as { signed: Record<string, unknown> };
      const metaOf = (m: { signed: Record<string, unknown> }, f: string) =>
        Number((m.signed.meta as Record<string, { version?: unknown }> | undefined)?.[f]?.version);
      const snapV = metaOf(await read('timestamp.json'), 'snapshot.json');
      const snap = await read(`${snapV}.snapshot.json`);
      const targets = await read(`${metaOf(snap, 'targets.json')}.targets.json`);
      const value = new Map<string, Record<string, string>>();
      for (const t of Object.values(
        (targets.signed.targets ?? {}) as Record<string, { custom?: Record<string, unknown> }>,
      )) {
        const c = t.custom ?? {};
        const { channel, arch, version } = c as { channel?: unknown; arch?: unknown; version?: unknown };
        if (typeof channel !== 'string' || !CHANNEL_RE.test(channel)) continue;
        if ((arch !== 'x64' && arch !== 'arm64') || !isSemver(version)) continue;
        const per = value.get(channel) ?? {};
        const cur = per[arch];
        if (!cur || compareSemver(version, cur) > 0) per[arch] = version;
        value.set(channel, per);
      }
      memo = { key, value };
      return value;
    } catch {
      return memo?.value ?? new Map();
    }
  };
}

// ── the /v1 routes ──────────────────────────────────────────────────────────────────────────

const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/g;

export function registerUpdateRoutes(
  v1: FastifyInstance,
  opts: ResolvedOptions,
  auth: AuthFor,
  deviceAuth: Hook,
  updates: UpdatesOptions | undefined,
): void {
  const { store } = opts;
  const read = auth('read');
  const admin = auth('admin');
  const latest = latestReleasesReader(updates?.repoDir);

  // Device-signed: the signature (deviceAuth) proves the device in the path, its nonce is used once.
  v1.post<{ Params: { id: string }; Body: UpdateStateBody }>(
    '/devices/:id/update-state',
    {
      bodyLimit: MAX_UPDATE_STATE_BODY,
      schema: {
        summary:
          'A device reports its update state (on each change); a report older than the stored one is ignored',
        tags: ['device'],
        security: [{ deviceSignature: [] }],
        params: DeviceIdParams,
        body: UpdateStateBody,
        response: { 200: UpdateStateReply, ...ADMIN_ERRORS },
      },
      preHandler: deviceAuth,
    },
    async (req) => {
      await activeDevice(opts, req.params.id);
      const b = req.body;
      const atMs = Date.parse(b.at);
      if (!Number.isFinite(atMs)) throw coded(400, 'bad-time', '`at` is not a time');
      const now = opts.now();
      if (atMs > now.getTime() + MAX_FUTURE_SKEW_MS)
        throw coded(400, 'time-in-future', '`at` is ahead of the service clock: check the device clock');
      const result = await recordUpdateState(store.db, {
        deviceId: req.params.id,
        report: {
          at: new Date(atMs).toISOString(),
          state: b.state,
          current: b.current,
          channel: b.channel,
          ...(b.target !== undefined ? { target: b.target } : {}),
          ...(b.progress !== undefined ? { progress: b.progress } : {}),
          ...(b.error !== undefined ? { error: b.error.replace(CONTROL_CHARS, ' ') } : {}),
        },
        now: now.toISOString(),
      });
      if (result.applied && (b.state === 'failed' || b.state === 'rolled-back'))
        req.log.warn(
          { deviceId: req.params.id, state: b.state, target: b.target },
          'device update did not land',
        );
      return { applied: result.applied, stored: result.stored };
    },
  );

  v1.get<{ Querystring: { site?: string } }>(
    '/fleet/updates',
    {
      schema: {
        summary:
          'The rollout per assigned channel: devices, running versions, update states; devices that failed or rolled back',
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        querystring: RolloutQuery,
        response: { 200: RolloutReply, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) =>
      rolloutSummary(store.db, {
        ...(req.query.site !== undefined ? { site: req.query.site } : {}),
        latest: await latest(),
      }),
  );

  const policyChange = (b: UpdatePolicyBody): UpdatePolicyChange => ({
    ...(b.channel !== undefined ? { channel: b.channel } : {}),
    ...(b.window !== undefined ? { window: b.window } : {}),
    ...(b.paused !== undefined ? { paused: b.paused } : {}),
  });
  const checkWindow = (b: UpdatePolicyBody) => {
    if (b.window && b.window.start === b.window.end)
      throw coded(400, 'empty-window', 'a window starts and ends at different times (omit it for any time)');
  };

  v1.put<{ Params: { site: string }; Body: UpdatePolicyBody }>(
    '/sites/:site/update-policy',
    {
      schema: {
        summary:
          "Set the site's update channel, window or pause (the `update` key of its profile; the site's devices get it in their next heartbeat reply)",
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: SiteParams,
        body: UpdatePolicyBody,
        response: { 200: UpdatePolicyReply, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      checkWindow(req.body);
      const r = await setUpdatePolicy(store.db, {
        target: { site: req.params.site },
        change: policyChange(req.body),
        actor: actorOf(req),
        tokenId: tokenIdOf(req),
        now: opts.now().toISOString(),
      });
      for (const id of r.changed) opts.heartbeats.invalidate(id);
      return { update: r.update, version: r.version, devicesChanged: r.changed.length };
    },
  );

  v1.put<{ Params: { id: string }; Body: UpdatePolicyBody }>(
    '/devices/:id/update-policy',
    {
      schema: {
        summary:
          "Set one device's update channel, window or pause (the `update` key of its override, over its site's profile)",
        tags: ['fleet'],
        security: ADMIN_SECURITY,
        params: DeviceIdParams,
        body: UpdatePolicyBody,
        response: { 200: UpdatePolicyReply, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      checkWindow(req.body);
      if (!(await store.getDevice(req.params.id))) throw httpError(404, 'unknown device');
      try {
        const r = await setUpdatePolicy(store.db, {
          target: { deviceId: req.params.id },
          change: policyChange(req.body),
          actor: actorOf(req),
          tokenId: tokenIdOf(req),
          now: opts.now().toISOString(),
        });
        return { update: r.update, version: r.version, devicesChanged: r.changed.length };
      } catch (err) {
        if (err instanceof StoreConflict) throw httpError(409, err.message);
        throw err;
      } finally {
        opts.heartbeats.invalidate(req.params.id);
      }
    },
  );
}
