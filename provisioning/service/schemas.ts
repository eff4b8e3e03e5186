// TypeBox schemas of every /v1 route (request and response). They are the validation, the
// serialization and the OpenAPI document at once.
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { UPDATE_STATES } from '../store/update-store.js';

/** Printable text: no control characters (C0, DEL, C1), trimmed length 1..max. */
export const Text = (maxLength: number, description?: string) =>
  Type.String({
    minLength: 1,
    maxLength,
    pattern: '^[^\\u0000-\\u001f\\u007f-\\u009f]*$',
    ...(description ? { description } : {}),
  });

export const DeviceId = Type.String({
  pattern: '^sr-[a-z2-7]{20}$',
  description: 'derived from the device key',
});
export const Serial = Type.String({ pattern: '^[0-9a-f]{2,64}$' });
export const DeviceStatus = Type.Union([
  Type.Literal('pending'),
  Type.Literal('active'),
  Type.Literal('revoked'),
  Type.Literal('decommissioned'),
]);
export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String({ description: "the HTTP status name, or a code such as 'device-revoked'" }),
  message: Type.String(),
  crl: Type.Optional(
    Type.String({
      description:
        "with 'device-revoked': the current CRL (PEM) signed by the org CA, the proof the device checks",
    }),
  ),
});

const Bytes = Type.Integer({ minimum: 0 });
export const Inventory = Type.Object(
  {
    model: Type.Optional(Text(200)),
    manufacturer: Type.Optional(Text(200)),
    serial: Type.Optional(Text(200)),
    macs: Type.Optional(Type.Array(Type.String({ pattern: '^[0-9a-fA-F:]{11,23}$' }), { maxItems: 32 })),
    cpu: Type.Optional(Text(200)),
    cores: Type.Optional(Type.Integer({ minimum: 0, maximum: 4096 })),
    memoryBytes: Type.Optional(Bytes),
    cameras: Type.Optional(Type.Array(Text(200), { maxItems: 32 })),
    audioDevices: Type.Optional(Type.Array(Text(200), { maxItems: 64 })),
    displays: Type.Optional(Type.Array(Text(200), { maxItems: 16 })),
    os: Type.Optional(Text(200)),
  },
  { additionalProperties: false },
);

export const EnrollRequest = Type.Object(
  {
    csr: Type.String({ minLength: 1, maxLength: 4096, description: 'PEM PKCS#10, Ed25519, CN = device id' }),
    softwareVersion: Text(64),
    inventory: Inventory,
  },
  { additionalProperties: false },
);
export type EnrollRequest = Static<typeof EnrollRequest>;

export const EnrollReply = Type.Object({
  enrollmentId: Type.String(),
  deviceId: DeviceId,
  activationCode: Type.String({ description: 'XXXX-XXXX, single use' }),
  expiresAt: Type.String({ format: 'date-time' }),
  claimUrl: Type.String(),
});

export const ClaimRequest = Type.Object(
  {
    activationCode: Type.String({ minLength: 1, maxLength: 32 }),
    roomName: Text(120),
    site: Text(120),
    policy: Type.Optional(Text(64)),
    config: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type ClaimRequest = Static<typeof ClaimRequest>;

export const Health = Type.Object(
  {
    loadPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100_000 })),
    temperatureC: Type.Optional(Type.Union([Type.Number({ minimum: -100, maximum: 300 }), Type.Null()])),
    memory: Type.Optional(
      Type.Object({ usedBytes: Bytes, totalBytes: Bytes }, { additionalProperties: false }),
    ),
    disk: Type.Optional(
      Type.Object({ usedBytes: Bytes, totalBytes: Bytes }, { additionalProperties: false }),
    ),
    peripherals: Type.Optional(
      Type.Object(
        {
          present: Type.Array(Text(200), { maxItems: 64 }),
          missing: Type.Array(Text(200), { maxItems: 64 }),
          /** The model of each present peripheral (kind → name): a different name later is "changed". */
          names: Type.Optional(
            Type.Record(Type.String({ pattern: '^(camera|microphone|speaker|display|hid)$' }), Text(200), {
              additionalProperties: false,
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    selfTest: Type.Optional(
      Type.Object(
        {
          ok: Type.Boolean(),
          failed: Type.Array(Text(200), { maxItems: 64 }),
          at: Type.String({ format: 'date-time', maxLength: 40 }),
        },
        { additionalProperties: false },
      ),
    ),
    meetingState: Type.Optional(Text(32)),
    uptimeSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type Health = Static<typeof Health>;

export const HeartbeatRequest = Type.Object(
  {
    softwareVersion: Text(64),
    configVersion: Type.Integer({ minimum: 0 }),
    health: Health,
  },
  { additionalProperties: false },
);
export type HeartbeatRequest = Static<typeof HeartbeatRequest>;

export const HeartbeatReply = Type.Object({
  status: DeviceStatus,
  configVersion: Type.Integer(),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  renewCertificate: Type.Boolean(),
  serverTime: Type.String(),
  /** Remote actions IT queued (restart, renew-certificate, collect-logs): now marked sent. */
  actions: Type.Optional(Type.Array(Type.Object({ id: Type.String(), kind: Type.String() }))),
});

export const CertificateReply = Type.Object({
  status: DeviceStatus,
  certPem: Type.Optional(Type.String()),
  caCertPem: Type.Optional(Type.String()),
  serial: Type.Optional(Serial),
  notAfter: Type.Optional(Type.String()),
  deviceId: DeviceId,
  roomName: Type.Optional(Type.String()),
  site: Type.Optional(Type.String()),
  org: Type.String(),
  config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  configVersion: Type.Integer(),
});

export const RenewRequest = Type.Object(
  { csr: Type.String({ minLength: 1, maxLength: 4096 }) },
  { additionalProperties: false },
);

export const DeviceIdParams = Type.Object({ id: DeviceId });

export const DeviceSummary = Type.Object({
  id: Type.String(),
  status: DeviceStatus,
  roomName: Type.Union([Type.String(), Type.Null()]),
  site: Type.Union([Type.String(), Type.Null()]),
  softwareVersion: Type.String(),
  lastSeenAt: Type.Union([Type.String(), Type.Null()]),
  certSerial: Type.Union([Type.String(), Type.Null()]),
  certNotAfter: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
});

export const DeviceDetail = Type.Composite([
  DeviceSummary,
  Type.Object({
    policy: Type.Union([Type.String(), Type.Null()]),
    inventory: Type.Record(Type.String(), Type.Unknown()),
    config: Type.Record(Type.String(), Type.Unknown()),
    configVersion: Type.Integer(),
    claimedAt: Type.Union([Type.String(), Type.Null()]),
    claimedBy: Type.Union([Type.String(), Type.Null()]),
    revokedAt: Type.Union([Type.String(), Type.Null()]),
    health: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  }),
]);

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** What the fleet list adds to a device (status from heartbeats, config delivery, incidents). */
export const FleetFields = Type.Object({
  online: Type.Boolean({ description: 'last signed heartbeat within 90 s (3 × the 30 s heartbeat)' }),
  inMeeting: Type.Boolean(),
  meetingState: Nullable(Type.String()),
  configVersion: Type.Integer(),
  reportedConfigVersion: Nullable(Type.Integer()),
  configPending: Type.Boolean({ description: 'the device has not reported running the current config yet' }),
  openIncidents: Type.Integer(),
});

export const FleetDeviceSummary = Type.Composite([DeviceSummary, FleetFields]);

export const DeviceListQuery = Type.Object(
  {
    status: Type.Optional(DeviceStatus),
    site: Type.Optional(Text(120)),
    q: Type.Optional(Text(120)),
    online: Type.Optional(Type.Boolean()),
    inMeeting: Type.Optional(Type.Boolean()),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        pattern: '^[A-Za-z0-9_-]+$',
        description: 'nextCursor of the previous page',
      }),
    ),
    offset: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'old CLI paging; prefer cursor' }),
    ),
  },
  { additionalProperties: false },
);
export type DeviceListQuery = Static<typeof DeviceListQuery>;

export const DeviceList = Type.Object({
  total: Type.Integer(),
  items: Type.Array(FleetDeviceSummary),
  nextCursor: Nullable(Type.String()),
});

export const PeripheralKind = Type.Union(
  ['camera', 'microphone', 'speaker', 'display', 'hid'].map((k) => Type.Literal(k)),
);

// ── software updates (issue 14: provisioning/service/routes-updates.ts) ──────────────────────────

/** Semantic version (semver 2.0.0 precedence rules apply). */
export const Semver = Type.String({
  maxLength: 64,
  pattern:
    '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$',
});
/** An update channel (ring): also a path segment of the TUF targets, so a strict name. */
export const ChannelName = Type.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,31}$',
  description: "e.g. 'stable', 'canary'",
});
export const UpdateStateName = Type.Union(UPDATE_STATES.map((s) => Type.Literal(s)));
/** Largest update-state body (bytes): the report is small; anything bigger is refused with 413. */
export const MAX_UPDATE_STATE_BODY = 4096;
export const UpdateStateBody = Type.Object(
  {
    at: Type.String({ format: 'date-time', maxLength: 40, description: "the device's time of this state" }),
    state: UpdateStateName,
    current: Semver,
    target: Type.Optional(Semver),
    channel: ChannelName,
    progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    error: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);
export type UpdateStateBody = Static<typeof UpdateStateBody>;

const StoredUpdateState = Type.Object({
  at: Type.String(),
  state: UpdateStateName,
  current: Type.String(),
  target: Nullable(Type.String()),
  channel: Type.String(),
  progress: Nullable(Type.Number()),
  error: Nullable(Type.String()),
  receivedAt: Type.String(),
  changedAt: Type.String(),
});

export const UpdateStateReply = Type.Object({
  applied: Type.Boolean({ description: 'false: a newer report is stored already (this one is ignored)' }),
  stored: StoredUpdateState,
});

const UpdateWindow = Type.Object(
  {
    start: Type.String({
      pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$',
      description: 'HH:MM, device local time',
    }),
    end: Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' }),
  },
  { additionalProperties: false },
);

/** A device's update card in GET /v1/devices/:id. */
export const DeviceUpdateView = Type.Object({
  channel: Type.String({ description: 'assigned (effective configuration, default stable)' }),
  window: Nullable(UpdateWindow),
  paused: Type.Boolean(),
  channelPending: Type.Boolean({ description: 'the last report names another channel' }),
  reported: Nullable(StoredUpdateState),
});

export const RolloutQuery = Type.Object({ site: Type.Optional(Text(120)) }, { additionalProperties: false });
const Counts = Type.Record(Type.String(), Type.Integer());
export const RolloutReply = Type.Object({
  channels: Type.Array(
    Type.Object({
      channel: Type.String(),
      devices: Type.Integer(),
      paused: Type.Integer(),
      channelPending: Type.Integer(),
      versions: Counts,
      states: Counts,
      latest: Type.Record(Type.String(), Type.String(), { description: 'arch → newest published version' }),
    }),
  ),
  problems: Type.Array(
    Type.Object({
      deviceId: Type.String(),
      roomName: Nullable(Type.String()),
      site: Nullable(Type.String()),
      channel: Type.String(),
      state: UpdateStateName,
      current: Type.String(),
      target: Nullable(Type.String()),
      error: Nullable(Type.String()),
      at: Type.String(),
    }),
  ),
});

export const UpdatePolicyBody = Type.Object(
  {
    channel: Type.Optional(ChannelName),
    window: Type.Optional(Nullable(UpdateWindow)),
    paused: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdatePolicyBody = Static<typeof UpdatePolicyBody>;
export const UpdatePolicyReply = Type.Object({
  update: Type.Record(Type.String(), Type.Unknown(), {
    description: 'the `update` key now in the profile / override',
  }),
  version: Type.Integer({ description: 'profile version (site) or config version (device)' }),
  devicesChanged: Type.Integer(),
});

export const FleetDeviceDetail = Type.Composite([
  DeviceDetail,
  FleetFields,
  Type.Object({
    peripherals: Type.Array(
      Type.Object({
        kind: PeripheralKind,
        state: Type.Union(['ok', 'missing', 'changed', 'new'].map((k) => Type.Literal(k))),
        name: Nullable(Type.String()),
        expected: Nullable(Type.String()),
      }),
    ),
    certificate: Nullable(
      Type.Object({
        serial: Type.String(),
        notBefore: Type.String(),
        notAfter: Type.String(),
        daysLeft: Type.Integer(),
      }),
    ),
    configOverride: Nullable(Type.Record(Type.String(), Type.Unknown())),
    profileVersion: Nullable(Type.Integer()),
    selfTest: Nullable(
      Type.Object({ ok: Type.Boolean(), failed: Type.Array(Type.String()), at: Type.String() }),
    ),
    pendingActions: Type.Integer(),
    update: DeviceUpdateView,
  }),
]);

export const FleetSummaryReply = Type.Object({
  devices: Type.Integer({ description: 'active devices (online + offline)' }),
  online: Type.Integer(),
  offline: Type.Integer(),
  inMeeting: Type.Integer(),
  pending: Type.Integer({ description: 'devices waiting for a claim' }),
  openIncidents: Type.Integer(),
  sites: Type.Array(Type.String()),
});

export const HealthQuery = Type.Object(
  { hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 168, default: 24 })) },
  { additionalProperties: false },
);

const NullableNumber = Nullable(Type.Number());
export const HealthSamples = Type.Object({
  samples: Type.Array(
    Type.Object({
      at: Type.String(),
      loadPercent: NullableNumber,
      temperatureC: NullableNumber,
      memoryUsedBytes: NullableNumber,
      memoryTotalBytes: NullableNumber,
      diskUsedBytes: NullableNumber,
      diskTotalBytes: NullableNumber,
    }),
  ),
});

export const SiteName = Text(120);
export const SiteParams = Type.Object({ site: SiteName }, { additionalProperties: false });

export const SiteList = Type.Object({
  items: Type.Array(
    Type.Object({
      site: Type.String(),
      devices: Type.Integer(),
      online: Type.Integer(),
      profileVersion: Nullable(Type.Integer()),
    }),
  ),
});

/** A configuration document: a JSON object (size bounded by the body limit, keys ≤ 64 characters). */
export const ConfigObject = Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), {
  maxProperties: 256,
});

export const ProfileBody = Type.Object({ config: ConfigObject }, { additionalProperties: false });

export const ProfileReply = Type.Object({
  site: Type.String(),
  config: Type.Record(Type.String(), Type.Unknown()),
  version: Type.Integer(),
  updatedAt: Type.String(),
  updatedBy: Type.String(),
});

export const ActionKind = Type.Union(
  ['restart', 'renew-certificate', 'collect-logs'].map((k) => Type.Literal(k)),
);
export const ActionRequest = Type.Object({ kind: ActionKind }, { additionalProperties: false });

export const ActionId = Type.String({ pattern: '^act_[0-9a-z]{25}$' });
export const ActionParams = Type.Object({ actionId: ActionId }, { additionalProperties: false });
export const DeviceActionParams = Type.Object(
  { id: DeviceId, actionId: ActionId },
  { additionalProperties: false },
);

export const Action = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  kind: Type.String(),
  status: Type.Union(['queued', 'sent', 'done', 'failed', 'expired'].map((k) => Type.Literal(k))),
  createdAt: Type.String(),
  createdBy: Type.String(),
  sentAt: Nullable(Type.String()),
  finishedAt: Nullable(Type.String()),
  result: Nullable(
    Type.Object({ message: Type.Optional(Type.String()), bundleBytes: Type.Optional(Type.Integer()) }),
  ),
});
export const ActionList = Type.Object({ items: Type.Array(Action) });

/** Largest log bundle a device may upload: 8 MiB gzip, base64 in JSON (4/3), in a 12 MiB body. */
export const MAX_BUNDLE_BYTES = 8 * 1024 * 1024;
export const ActionResultBody = Type.Object(
  {
    status: Type.Union([Type.Literal('done'), Type.Literal('failed')]),
    message: Type.Optional(Type.String({ maxLength: 2000 })),
    bundle: Type.Optional(
      Type.String({
        minLength: 4,
        maxLength: Math.ceil(MAX_BUNDLE_BYTES / 3) * 4,
        pattern: '^[A-Za-z0-9+/]+={0,2}$',
        description: 'base64 of a gzip file (≤ 8 MiB decoded)',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ReasonBody = Type.Object({ reason: Type.Optional(Text(500)) }, { additionalProperties: false });

export const ConfigBody = Type.Object(
  { config: Type.Record(Type.String({ maxLength: 64 }), Type.Unknown(), { maxProperties: 256 }) },
  { additionalProperties: false },
);

export const AuditQuery = Type.Object(
  {
    actor: Type.Optional(Text(120)),
    action: Type.Optional(Text(64)),
    deviceId: Type.Optional(DeviceId),
    tokenId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._@-]+$' })),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  },
  { additionalProperties: false },
);
export type AuditQuery = Static<typeof AuditQuery>;

export const AuditList = Type.Array(
  Type.Object({
    id: Type.String(),
    at: Type.String(),
    actor: Type.String(),
    action: Type.String(),
    deviceId: Type.Union([Type.String(), Type.Null()]),
    tokenId: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
  }),
);

export const TokenScope = Type.Union([Type.Literal('read'), Type.Literal('admin')]);

export const TokenRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9 ._@-]*$' }),
    scope: TokenScope,
    expiresAt: Type.Optional(
      Type.String({
        format: 'date-time',
        description: 'default: now + 90 days (capped at the creating token’s own expiry); at most 365 days',
      }),
    ),
  },
  { additionalProperties: false },
);
export type TokenRequest = Static<typeof TokenRequest>;

export const TokenInfo = Type.Object({
  id: Type.String(),
  name: Type.String(),
  scope: TokenScope,
  createdAt: Type.String(),
  expiresAt: Type.String(),
  createdBy: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});

export const TokenCreated = Type.Composite([
  TokenInfo,
  Type.Object({ token: Type.String({ description: 'srt_…, shown once' }) }),
]);

export const TokenList = Type.Array(TokenInfo);

export const TokenIdParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9 ._@-]*$' }),
});

// ── people (routes-people.ts) ────────────────────────────────────────────────────────────────
const Base64Url = (description: string, maxLength: number) =>
  Type.String({ pattern: '^[A-Za-z0-9_-]*$', maxLength, description });

export const PeopleConfigReply = Type.Object({
  issuer: Type.String({ description: "the org's OpenID Connect issuer" }),
  clientId: Type.String(),
  redirectUri: Type.String(),
  org: Type.String(),
  relayUrl: Type.Optional(Type.String()),
});

export const PersonCertificateRequest = Type.Object(
  {
    idToken: Type.Optional(
      Type.String({
        maxLength: 16384,
        description: 'the OIDC ID token; its nonce is personKeyNonce(publicKey)',
      }),
    ),
    publicKey: Type.Optional(Base64Url('raw Ed25519 public key (32 bytes), base64url', 64)),
    proof: Type.Optional(
      Base64Url(
        'Ed25519 signature by the key over encode("sealroom/v1/person-cert-request", idToken, publicKey), base64url',
        128,
      ),
    ),
  },
  { additionalProperties: false },
);
export type PersonCertificateRequest = Static<typeof PersonCertificateRequest>;

export const PersonCertificateReply = Type.Object({
  certificate: Type.String({ description: 'PEM person certificate from the org CA' }),
  notAfter: Type.String({ format: 'date-time' }),
  person: Type.Object({ name: Type.String(), email: Type.String(), org: Type.String() }),
});

export const PeopleTrustReply = Type.Object({
  orgCaPems: Type.Array(Type.String()),
  partnerCaPems: Type.Array(Type.String()),
  revokedSerials: Type.Array(Type.String()),
});
