// Alert rules, incidents (pollable with a cursor), targets (webhook, e-mail) and the delivery
// outbox with its dead-letter list (docs/alerts.md). Reads need scope read (helpdesk too); changes
// need admin and are audited. A webhook's secret is returned once, by the POST that creates it.
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isRuleKind, parseParams, RULE_KINDS } from '../alerts/rules.js';
import {
  type Actor,
  acknowledgeIncident,
  createTarget,
  decodeCursor,
  deleteTarget,
  ensureDefaultRules,
  getIncident,
  listDeliveries,
  listIncidents,
  listRules,
  listTargets,
  retryDelivery,
  updateRule,
} from '../store/alerts-store.js';
import type { TokenScope } from '../store/store.js';
import { ADMIN_ERRORS, ADMIN_SECURITY } from './admin-route.js';
import { codedError, httpError, type ResolvedOptions } from './app.js';
import { actorOf, tokenIdOf } from './principal.js';
import { DeviceId, Text } from './schemas.js';

type AuthFor = (scope: TokenScope) => (req: FastifyRequest) => Promise<void>;

const tags = ['alerts'];

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ description: 'ISO 8601 UTC' });
const ObjectId = (prefix: string) => Type.String({ pattern: `^${prefix}_[0-9a-z]{13}[0-9a-f]{12}$` });

const RuleKind = Type.Union(RULE_KINDS.map((k) => Type.Literal(k)));
const Rule = Type.Object({
  id: RuleKind,
  kind: RuleKind,
  params: Type.Record(Type.String(), Type.Unknown()),
  enabled: Type.Boolean(),
  updatedAt: Time,
});
const RuleList = Type.Object({ items: Type.Array(Rule) });
const RuleParamsPath = Type.Object({ id: Type.String({ maxLength: 40 }) });
const RuleChange = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    params: Type.Optional(
      Type.Record(Type.String({ maxLength: 40 }), Type.Unknown(), {
        maxProperties: 8,
        description: 'offline {minutes}, temperature {celsius}, certificate-expiring {days}; others {}',
      }),
    ),
  },
  { additionalProperties: false },
);
type RuleChange = Static<typeof RuleChange>;

const IncidentStatus = Type.Union([
  Type.Literal('open'),
  Type.Literal('acknowledged'),
  Type.Literal('resolved'),
]);
const Incident = Type.Object({
  id: Type.String(),
  rule: RuleKind,
  deviceId: Type.String(),
  roomName: Nullable(Type.String()),
  site: Nullable(Type.String()),
  status: IncidentStatus,
  summary: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
  openedAt: Time,
  acknowledgedAt: Nullable(Time),
  acknowledgedBy: Nullable(Type.String()),
  resolvedAt: Nullable(Time),
  updatedAt: Time,
});
const IncidentQuery = Type.Object(
  {
    status: Type.Optional(IncidentStatus),
    deviceId: Type.Optional(DeviceId),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    since: Type.Optional(
      Type.String({
        maxLength: 200,
        pattern: '^[A-Za-z0-9_-]*$',
        description: 'the cursor of the previous reply',
      }),
    ),
  },
  { additionalProperties: false },
);
type IncidentQuery = Static<typeof IncidentQuery>;
const IncidentList = Type.Object({
  items: Type.Array(Incident),
  cursor: Type.String({ description: 'pass back as `since` to get only what changed after this page' }),
});
const IncidentPath = Type.Object({ id: ObjectId('inc') });

const Target = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('webhook'), Type.Literal('email')]),
  name: Type.String(),
  url: Nullable(Type.String()),
  email: Nullable(Type.String()),
  enabled: Type.Boolean(),
  createdAt: Time,
});
const TargetCreated = Type.Composite([
  Target,
  Type.Object({
    secret: Type.Optional(
      Type.String({ description: 'webhook signing secret (whsec_…): shown only in this reply, keep it' }),
    ),
  }),
]);
const Email = Type.String({
  maxLength: 254,
  // One plain address: no lists, display names or comments (nodemailer would take "a@x, b@y" as two).
  pattern: '^[^\\s@,;:<>"\'()\\[\\]\\\\]+@[^\\s@,;:<>"\'()\\[\\]\\\\]+\\.[^\\s@,;:<>"\'()\\[\\]\\\\]+$',
});
const TargetRequest = Type.Union([
  Type.Object(
    { kind: Type.Literal('webhook'), name: Text(100), url: Type.String({ minLength: 8, maxLength: 2000 }) },
    { additionalProperties: false },
  ),
  Type.Object(
    { kind: Type.Literal('email'), name: Text(100), email: Email },
    { additionalProperties: false },
  ),
]);
type TargetRequest = Static<typeof TargetRequest>;
const TargetPath = Type.Object({ id: ObjectId('tgt') });

const DeliveryStatus = Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('dead')]);
const Delivery = Type.Object({
  id: Type.String(),
  targetId: Type.String(),
  incidentId: Type.String(),
  event: Type.String(),
  status: DeliveryStatus,
  attempts: Type.Integer(),
  nextAttemptAt: Time,
  lastError: Nullable(Type.String()),
  createdAt: Time,
  deliveredAt: Nullable(Time),
});
const DeliveryQuery = Type.Object(
  {
    status: Type.Optional(DeliveryStatus),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  },
  { additionalProperties: false },
);
type DeliveryQuery = Static<typeof DeliveryQuery>;
const DeliveryPath = Type.Object({ id: ObjectId('dlv') });

/** A webhook URL: http(s), a host, no credentials (they would sit in logs and the audit trail). */
export function webhookUrlProblem(raw: string): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'url is not a valid absolute URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'url must be http:// or https://';
  if (u.username || u.password) return 'url must not carry credentials (user:password@)';
  if (!u.hostname) return 'url needs a host';
  if (/[\u0000-\u001f\u007f\s]/.test(raw)) return 'url must not contain spaces or control characters';
  return null;
}

const coded = codedError;

export function registerAlertRoutes(app: FastifyInstance, opts: ResolvedOptions, auth: AuthFor): void {
  const db = opts.store.db;
  const read = auth('read');
  const admin = auth('admin');
  const who = (req: FastifyRequest): Actor => ({ actor: actorOf(req), tokenId: tokenIdOf(req) });
  const seeded = () => ensureDefaultRules(db, opts.now().toISOString());

  app.get(
    '/alerts/rules',
    {
      schema: {
        summary: 'Alert rules',
        tags,
        security: ADMIN_SECURITY,
        response: { 200: RuleList, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async () => {
      await seeded();
      return { items: await listRules(db) };
    },
  );

  app.put<{ Params: { id: string }; Body: RuleChange }>(
    '/alerts/rules/:id',
    {
      schema: {
        summary: 'Enable, disable or tune a rule (disabling resolves its incidents)',
        tags,
        security: ADMIN_SECURITY,
        params: RuleParamsPath,
        body: RuleChange,
        response: { 200: Rule, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      const id = req.params.id;
      if (!isRuleKind(id)) throw httpError(404, `unknown rule: rules are ${RULE_KINDS.join(', ')}`);
      let params: Record<string, unknown> | undefined;
      if (req.body.params !== undefined) {
        const p = parseParams(id, req.body.params);
        if (typeof p === 'string') throw coded(400, 'invalid-params', p);
        params = p;
      }
      await seeded();
      const rule = await updateRule(
        db,
        id,
        {
          ...(req.body.enabled !== undefined ? { enabled: req.body.enabled } : {}),
          ...(params ? { params } : {}),
        },
        opts.now().toISOString(),
        who(req),
      );
      if (!rule) throw httpError(404, 'unknown rule');
      void opts.alerts?.deliverNow();
      return rule;
    },
  );

  app.get<{ Querystring: IncidentQuery }>(
    '/incidents',
    {
      schema: {
        summary: 'Incidents ordered by last change; poll with `since` = the previous `cursor`',
        tags,
        security: ADMIN_SECURITY,
        querystring: IncidentQuery,
        response: { 200: IncidentList, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => {
      let since: [string, string] | undefined;
      if (req.query.since) {
        const c = decodeCursor(req.query.since);
        if (!c) throw coded(400, 'bad-cursor', 'since must be a cursor returned by this route');
        since = c;
      }
      return listIncidents(
        db,
        {
          ...(req.query.status ? { status: req.query.status } : {}),
          ...(req.query.deviceId ? { deviceId: req.query.deviceId } : {}),
          limit: req.query.limit ?? 100,
          ...(since ? { since } : {}),
        },
        opts.now().toISOString(),
      );
    },
  );

  app.get<{ Params: { id: string } }>(
    '/incidents/:id',
    {
      schema: {
        summary: 'One incident',
        tags,
        security: ADMIN_SECURITY,
        params: IncidentPath,
        response: { 200: Incident, ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => {
      const incident = await getIncident(db, req.params.id);
      if (!incident) throw httpError(404, 'unknown incident');
      return incident;
    },
  );

  app.post<{ Params: { id: string } }>(
    '/incidents/:id/acknowledge',
    {
      schema: {
        summary: 'Acknowledge an open incident (it still resolves only when its condition clears)',
        tags,
        security: ADMIN_SECURITY,
        params: IncidentPath,
        response: { 200: Incident, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      const r = await acknowledgeIncident(db, req.params.id, opts.now().toISOString(), who(req));
      if (r.result === 'missing') throw httpError(404, 'unknown incident');
      if (r.result === 'resolved') throw coded(409, 'incident-resolved', 'this incident is already resolved');
      if (r.result === 'acknowledged') void opts.alerts?.deliverNow();
      return r.incident!;
    },
  );

  app.get(
    '/alerts/targets',
    {
      schema: {
        summary: 'Alert targets (webhook secrets are never shown again)',
        tags,
        security: ADMIN_SECURITY,
        response: { 200: Type.Object({ items: Type.Array(Target) }), ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async () => ({ items: await listTargets(db) }),
  );

  app.post<{ Body: TargetRequest }>(
    '/alerts/targets',
    {
      schema: {
        summary: 'Add a webhook (returns its signing secret once) or an e-mail target',
        tags,
        security: ADMIN_SECURITY,
        body: TargetRequest,
        response: { 201: TargetCreated, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req, reply) => {
      const body = req.body;
      if (body.kind === 'webhook') {
        const problem = webhookUrlProblem(body.url);
        if (problem) throw coded(400, 'invalid-url', problem);
      }
      const { target, secret } = await createTarget(db, body, opts.now().toISOString(), who(req));
      return reply.status(201).send({ ...target, ...(secret ? { secret } : {}) });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/alerts/targets/:id',
    {
      schema: {
        summary: 'Remove a target and its pending and dead deliveries',
        tags,
        security: ADMIN_SECURITY,
        params: TargetPath,
        response: { 204: Type.Null(), ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req, reply) => {
      if (!(await deleteTarget(db, req.params.id, opts.now().toISOString(), who(req))))
        throw httpError(404, 'unknown target');
      return reply.status(204).send();
    },
  );

  app.get<{ Querystring: DeliveryQuery }>(
    '/alerts/deliveries',
    {
      schema: {
        summary: 'Deliveries, newest first; status=dead is the dead-letter list',
        tags,
        security: ADMIN_SECURITY,
        querystring: DeliveryQuery,
        response: { 200: Type.Object({ items: Type.Array(Delivery) }), ...ADMIN_ERRORS },
      },
      preHandler: read,
    },
    async (req) => ({
      items: await listDeliveries(db, {
        ...(req.query.status ? { status: req.query.status } : {}),
        limit: req.query.limit ?? 100,
      }),
    }),
  );

  app.post<{ Params: { id: string } }>(
    '/alerts/deliveries/:id/retry',
    {
      schema: {
        summary: 'Give a dead delivery one more attempt, now',
        tags,
        security: ADMIN_SECURITY,
        params: DeliveryPath,
        response: { 200: Delivery, ...ADMIN_ERRORS },
      },
      preHandler: admin,
    },
    async (req) => {
      const r = await retryDelivery(db, req.params.id, opts.now().toISOString(), who(req));
      if (r.result === 'missing') throw httpError(404, 'unknown delivery');
      if (r.result === 'not-dead')
        throw coded(
          409,
          'delivery-not-dead',
          `only a dead delivery can be retried (this one is ${r.delivery!.status})`,
        );
      void opts.alerts?.deliverNow();
      return r.delivery!;
    },
  );
}
