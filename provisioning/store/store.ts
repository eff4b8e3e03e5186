// The provisioning store: devices, activation codes (hashed), certificates, admin tokens (hashed),
// audit log and device request nonces. Domain methods over the portable SQL of ./db.ts, so the
// SQLite and PostgreSQL stores are the same code and pass the same tests.
import { createHash, randomBytes } from 'node:crypto';
import { DEFAULT_TOKEN_DAYS, MAX_TOKEN_DAYS } from '../tokens.js';
import type { Db, Row, SqlValue } from './db.js';
import { migrate } from './migrations.js';

export type DeviceStatus = 'pending' | 'active' | 'revoked' | 'decommissioned';
export type TokenScope = 'read' | 'admin';

export interface DeviceRecord {
  id: string;
  status: DeviceStatus;
  /** Raw Ed25519 public key, base64. */
  publicKey: string;
  csrPem: string;
  inventory: Record<string, unknown>;
  softwareVersion: string;
  roomName: string | null;
  site: string | null;
  policy: string | null;
  config: Record<string, unknown>;
  configVersion: number;
  certSerial: string | null;
  certNotAfter: string | null;
  createdAt: string;
  claimedAt: string | null;
  claimedBy: string | null;
  revokedAt: string | null;
  lastSeenAt: string | null;
  health: Record<string, unknown> | null;
}

export interface EnrollmentRecord {
  id: string;
  deviceId: string;
  expiresAt: string;
  usedAt: string | null;
  createdAt: string;
}

export interface CertificateRecord {
  serial: string;
  deviceId: string;
  certPem: string;
  notBefore: string;
  notAfter: string;
  issuedAt: string;
  revokedAt: string | null;
}

export interface TokenRecord {
  id: string;
  name: string;
  scope: TokenScope;
  createdAt: string;
  /** ISO time after which the token is refused (401 "token expired"). */
  expiresAt: string;
  /** Name of the token (or 'cli'/'system') that created it. */
  createdBy: string | null;
  revokedAt: string | null;
}

/** A signed CRL kept in the store (GET /v1/revocations serves it until it must be re-issued). */
export interface CrlDocument {
  crlNumber: bigint;
  thisUpdate: string;
  nextUpdate: string;
  der: Buffer;
  /** SHA-256 over the revoked (serial, revokedAt) set it lists. */
  setHash: string;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  deviceId: string | null;
  /** The admin token that made the change (null for the system, the offline CLI and devices). */
  tokenId: string | null;
  details: Record<string, unknown>;
}

export interface DeviceFilter {
  status?: DeviceStatus;
  site?: string;
  /** Substring of device id or room name. */
  q?: string;
  limit?: number;
  offset?: number;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  deviceId?: string;
  tokenId?: string;
  since?: string;
  until?: string;
  limit?: number;
}

export class StoreConflict extends Error {
  override readonly name = 'StoreConflict';
}

const json = (v: unknown) => JSON.stringify(v ?? null);
const parse = <T>(v: unknown): T => JSON.parse(String(v)) as T;
const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

function toDevice(r: Row): DeviceRecord {
  return {
    id: String(r.id),
    status: r.status as DeviceStatus,
    publicKey: String(r.public_key),
    csrPem: String(r.csr_pem),
    inventory: parse(r.inventory),
    softwareVersion: String(r.software_version),
    roomName: str(r.room_name),
    site: str(r.site),
    policy: str(r.policy),
    config: parse(r.config),
    configVersion: Number(r.config_version),
    certSerial: str(r.cert_serial),
    certNotAfter: str(r.cert_not_after),
    createdAt: String(r.created_at),
    claimedAt: str(r.claimed_at),
    claimedBy: str(r.claimed_by),
    revokedAt: str(r.revoked_at),
    lastSeenAt: str(r.last_seen_at),
    health: r.health === null || r.health === undefined ? null : parse(r.health),
  };
}

function toToken(r: Row): TokenRecord {
  const createdAt = String(r.created_at);
  return {
    id: String(r.id),
    name: String(r.name),
    scope: r.scope as TokenScope,
    createdAt,
    // Tokens from before expiry existed: at most the longest lifetime a token can have now.
    expiresAt:
      str(r.expires_at) ?? new Date(Date.parse(createdAt) + MAX_TOKEN_DAYS * 86_400_000).toISOString(),
    createdBy: str(r.created_by),
    revokedAt: str(r.revoked_at),
  };
}

/** Unique-constraint violation on SQLite (better-sqlite3) or PostgreSQL (pg). */
function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}

/** The hash a cached CRL records of the revoked set it lists (order-independent). */
export function revokedSetHash(entries: { serial: string; revokedAt: string }[]): string {
  const lines = entries.map((e) => `${e.serial.toLowerCase()} ${e.revokedAt}`).sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

function toCrl(r: Row): CrlDocument {
  return {
    crlNumber: BigInt(String(r.crl_number)),
    thisUpdate: String(r.this_update),
    nextUpdate: String(r.next_update),
    der: Buffer.from(String(r.der), 'base64'),
    setHash: String(r.set_hash),
  };
}

function toCertificate(r: Row): CertificateRecord {
  return {
    serial: String(r.serial),
    deviceId: String(r.device_id),
    certPem: String(r.cert_pem),
    notBefore: String(r.not_before),
    notAfter: String(r.not_after),
    issuedAt: String(r.issued_at),
    revokedAt: str(r.revoked_at),
  };
}

const DEFAULT_TOKEN_DAYS_MS = DEFAULT_TOKEN_DAYS * 86_400_000;

let sequence = 0;
/** Time-ordered unique id: sorts by time, then by creation order within this process, as text. */
export function orderedId(now: Date): string {
  sequence = (sequence + 1) % 1_679_616; // 36^4
  return `${now.getTime().toString(36).padStart(9, '0')}${sequence.toString(36).padStart(4, '0')}${randomBytes(6).toString('hex')}`;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class ProvisioningStore {
  constructor(readonly db: Db) {}

  get kind(): Db['kind'] {
    return this.db.kind;
  }

  async migrate(): Promise<number[]> {
    return migrate(this.db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ── enrollment ─────────────────────────────────────────────────────────────────────────────

  /** Registers (or re-registers, while still pending) a device and gives it a fresh code. */
  async registerEnrollment(args: {
    deviceId: string;
    publicKey: string;
    csrPem: string;
    inventory: Record<string, unknown>;
    softwareVersion: string;
    enrollmentId: string;
    codeHash: string;
    expiresAt: string;
    now: string;
  }): Promise<void> {
    await this.db.transaction(async (tx) => {
      const existing = await tx.get('SELECT status FROM devices WHERE id = ?', [args.deviceId]);
      if (existing && existing.status !== 'pending') {
        throw new StoreConflict(`device ${args.deviceId} is ${String(existing.status)}`);
      }
      if (existing) {
        await tx.run('UPDATE devices SET csr_pem = ?, inventory = ?, software_version = ? WHERE id = ?', [
          args.csrPem,
          json(args.inventory),
          args.softwareVersion,
          args.deviceId,
        ]);
        // Earlier codes of this device stop working: only the one on screen now is valid.
        await tx.run(
          'UPDATE enrollments SET expires_at = ? WHERE device_id = ? AND used_at IS NULL AND expires_at > ?',
          [args.now, args.deviceId, args.now],
        );
      } else {
        await tx.run(
          `INSERT INTO devices (id, status, public_key, csr_pem, inventory, software_version, config, config_version, created_at)
           VALUES (?, 'pending', ?, ?, ?, ?, '{}', 0, ?)`,
          [args.deviceId, args.publicKey, args.csrPem, json(args.inventory), args.softwareVersion, args.now],
        );
      }
      await tx.run(
        'INSERT INTO enrollments (id, device_id, code_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?)',
        [args.enrollmentId, args.deviceId, args.codeHash, args.expiresAt, args.now],
      );
    });
  }

  async findEnrollmentByCodeHash(codeHash: string): Promise<EnrollmentRecord | undefined> {
    const r = await this.db.get('SELECT * FROM enrollments WHERE code_hash = ?', [codeHash]);
    return r ? toEnrollment(r) : undefined;
  }

  async getEnrollment(id: string): Promise<EnrollmentRecord | undefined> {
    const r = await this.db.get('SELECT * FROM enrollments WHERE id = ?', [id]);
    return r ? toEnrollment(r) : undefined;
  }

  /** Marks the code used, assigns the room and stores the first certificate, atomically. */
  async claim(args: {
    enrollmentId: string;
    deviceId: string;
    roomName: string;
    site: string;
    policy: string;
    config: Record<string, unknown>;
    cert: Omit<CertificateRecord, 'revokedAt' | 'deviceId'>;
    actor: string;
    tokenId?: string | null;
    now: string;
  }): Promise<void> {
    await this.db.transaction(async (tx) => {
      const used = await tx.run(
        'UPDATE enrollments SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?',
        [args.now, args.enrollmentId, args.now],
      );
      if (used !== 1) throw new StoreConflict('activation code already used or expired');
      const updated = await tx.run(
        `UPDATE devices SET status = 'active', room_name = ?, site = ?, policy = ?, config = ?, config_version = 1,
           cert_serial = ?, cert_not_after = ?, claimed_at = ?, claimed_by = ? WHERE id = ? AND status = 'pending'`,
        [
          args.roomName,
          args.site,
          args.policy,
          json(args.config),
          args.cert.serial,
          args.cert.notAfter,
          args.now,
          args.actor,
          args.deviceId,
        ],
      );
      if (updated !== 1) throw new StoreConflict('device is not waiting for a claim');
      await insertCertificate(tx, { ...args.cert, deviceId: args.deviceId });
      await insertAudit(
        tx,
        args.now,
        args.actor,
        'device.claim',
        args.deviceId,
        {
          roomName: args.roomName,
          site: args.site,
          policy: args.policy,
          serial: args.cert.serial,
        },
        args.tokenId,
      );
    });
  }

  // ── devices ────────────────────────────────────────────────────────────────────────────────

  async getDevice(id: string): Promise<DeviceRecord | undefined> {
    const r = await this.db.get('SELECT * FROM devices WHERE id = ?', [id]);
    return r ? toDevice(r) : undefined;
  }

  async listDevices(f: DeviceFilter = {}): Promise<{ total: number; items: DeviceRecord[] }> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (f.status) {
      where.push('status = ?');
      params.push(f.status);
    }
    if (f.site) {
      where.push('site = ?');
      params.push(f.site);
    }
    if (f.q) {
      where.push("(LOWER(id) LIKE ? ESCAPE '\\' OR LOWER(room_name) LIKE ? ESCAPE '\\')");
      const like = `%${escapeLike(f.q.toLowerCase())}%`;
      params.push(like, like);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = await this.db.get(`SELECT COUNT(*) AS n FROM devices ${clause}`, params);
    const rows = await this.db.all(
      `SELECT * FROM devices ${clause} ORDER BY created_at, id LIMIT ? OFFSET ?`,
      [...params, f.limit ?? 100, f.offset ?? 0],
    );
    return { total: Number(total?.n ?? 0), items: rows.map(toDevice) };
  }

  /**
   * Records a heartbeat of an active device in one statement (UPDATE … RETURNING, on both SQLite ≥ 3.35
   * and PostgreSQL) and returns what the reply needs; undefined when the device is not active.
   */
  async recordHeartbeat(
    deviceId: string,
    health: Record<string, unknown>,
    softwareVersion: string,
    now: string,
  ): Promise<{ configVersion: number; certNotAfter: string | null } | undefined> {
    const r = await this.db.get(
      `UPDATE devices SET last_seen_at = ?, health = ?, software_version = ? WHERE id = ? AND status = 'active'
       RETURNING config_version, cert_not_after`,
      [now, json(health), softwareVersion, deviceId],
    );
    return r ? { configVersion: Number(r.config_version), certNotAfter: str(r.cert_not_after) } : undefined;
  }

  async getConfig(deviceId: string): Promise<Record<string, unknown>> {
    const r = await this.db.get('SELECT config FROM devices WHERE id = ?', [deviceId]);
    return r ? parse(r.config) : {};
  }

  async setConfig(
    deviceId: string,
    config: Record<string, unknown>,
    actor: string,
    now: string,
    tokenId: string | null = null,
  ): Promise<number> {
    return this.db.transaction(async (tx) => {
      const changed = await tx.run(
        "UPDATE devices SET config = ?, config_version = config_version + 1 WHERE id = ? AND status = 'active'",
        [json(config), deviceId],
      );
      if (changed !== 1) throw new StoreConflict('only active devices take configuration');
      await insertAudit(tx, now, actor, 'device.config', deviceId, { config }, tokenId);
      const r = await tx.get('SELECT config_version FROM devices WHERE id = ?', [deviceId]);
      return Number(r?.config_version);
    });
  }

  /** Revokes (or decommissions) a device and every certificate it holds. */
  async revoke(
    deviceId: string,
    actor: string,
    reason: string,
    now: string,
    status: 'revoked' | 'decommissioned' = 'revoked',
    tokenId: string | null = null,
  ): Promise<void> {
    await this.db.transaction(async (tx) => {
      const d = await tx.get('SELECT status FROM devices WHERE id = ?', [deviceId]);
      if (!d) throw new StoreConflict('unknown device');
      if (d.status === status || d.status === 'decommissioned')
        throw new StoreConflict(`device is already ${d.status}`);
      await tx.run('UPDATE devices SET status = ?, revoked_at = COALESCE(revoked_at, ?) WHERE id = ?', [
        status,
        now,
        deviceId,
      ]);
      await tx.run('UPDATE certificates SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL', [
        now,
        deviceId,
      ]);
      await tx.run(
        'UPDATE enrollments SET expires_at = ? WHERE device_id = ? AND used_at IS NULL AND expires_at > ?',
        [now, deviceId, now],
      );
      await insertAudit(
        tx,
        now,
        actor,
        status === 'revoked' ? 'device.revoke' : 'device.decommission',
        deviceId,
        { reason },
        tokenId,
      );
    });
  }

  // ── certificates ───────────────────────────────────────────────────────────────────────────

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const r = await this.db.get('SELECT * FROM certificates WHERE serial = ?', [serial]);
    return r ? toCertificate(r) : undefined;
  }

  async addRenewedCertificate(deviceId: string, cert: Omit<CertificateRecord, 'revokedAt' | 'deviceId'>) {
    await this.db.transaction(async (tx) => {
      const changed = await tx.run(
        "UPDATE devices SET cert_serial = ?, cert_not_after = ? WHERE id = ? AND status = 'active'",
        [cert.serial, cert.notAfter, deviceId],
      );
      if (changed !== 1) throw new StoreConflict('only active devices renew certificates');
      await insertCertificate(tx, { ...cert, deviceId });
      await insertAudit(tx, cert.issuedAt, `device:${deviceId}`, 'device.renew', deviceId, {
        serial: cert.serial,
      });
    });
  }

  async listRevoked(): Promise<{ serial: string; deviceId: string; revokedAt: string }[]> {
    const rows = await this.db.all(
      'SELECT serial, device_id, revoked_at FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial',
    );
    return rows.map((r) => ({
      serial: String(r.serial),
      deviceId: String(r.device_id),
      revokedAt: String(r.revoked_at),
    }));
  }

  // ── device request replay protection ───────────────────────────────────────────────────────

  /** True when the nonce is new for this device (and is now remembered until expiresAt). */
  async useNonce(deviceId: string, nonce: string, expiresAt: string): Promise<boolean> {
    const n = await this.db.run(
      'INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      [deviceId, nonce, expiresAt],
    );
    return n === 1;
  }

  // ── people: one-time ID tokens, issuance log ──────────────────────────────────────────────

  /**
   * True when this ID token (by SHA-256, hex) was never used, and it is now remembered until its
   * `exp` (`expiresAt`): a token is exchanged for a certificate once. Atomic (primary key).
   */
  async useIdToken(tokenHash: string, expiresAt: string, now: string): Promise<boolean> {
    const n = await this.db.run(
      'INSERT INTO used_id_tokens (token_hash, expires_at, used_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      [tokenHash, expiresAt, now],
    );
    return n === 1;
  }

  /** Forgets used tokens that expired before `now` (an expired token is refused anyway). */
  async purgeUsedIdTokens(now: string): Promise<number> {
    return this.db.run('DELETE FROM used_id_tokens WHERE expires_at < ?', [now]);
  }

  /** Audit row for an issued person certificate (who, serial, until when; never the token). */
  async recordPersonCertificate(args: { email: string; serial: string; notAfter: string; now: string }) {
    await insertAudit(this.db, args.now, `person:${args.email}`, 'person-certificate', null, {
      email: args.email,
      serial: args.serial,
      notAfter: args.notAfter,
    });
  }

  async purgeNonces(now: string): Promise<number> {
    return this.db.run('DELETE FROM device_nonces WHERE expires_at < ?', [now]);
  }

  /**
   * Forgets what has expired: used nonces whose timestamps left the acceptance window, activation
   * codes never used that expired before `enrollmentsBefore`, and pending devices left without any
   * enrollment (an unauthenticated caller could otherwise fill the tables). A purged pending device
   * that calls again is told it is unknown and enrolls again.
   */
  async purgeExpired(
    now: string,
    enrollmentsBefore: string = now,
  ): Promise<{ nonces: number; enrollments: number; devices: number }> {
    const nonces = await this.purgeNonces(now);
    return this.db.transaction(async (tx) => {
      const enrollments = await tx.run('DELETE FROM enrollments WHERE used_at IS NULL AND expires_at < ?', [
        enrollmentsBefore,
      ]);
      const devices = await tx.run(
        `DELETE FROM devices WHERE status = 'pending' AND created_at < ?
           AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.device_id = devices.id)`,
        [enrollmentsBefore],
      );
      return { nonces, enrollments, devices };
    });
  }

  // ── admin tokens and audit ─────────────────────────────────────────────────────────────────

  /**
   * Stores a new token (its hash). Names are unique: a taken name → StoreConflict. `expiresAt`
   * defaults to now + DEFAULT_TOKEN_DAYS; the caller (route, CLI) enforces the limits.
   */
  async createToken(args: {
    id: string;
    name: string;
    tokenHash: string;
    scope: TokenScope;
    actor: string;
    /** The admin token that creates this one (audit), if any. */
    tokenId?: string | null;
    now: string;
    expiresAt?: string;
  }): Promise<TokenRecord> {
    const expiresAt = args.expiresAt ?? new Date(Date.parse(args.now) + DEFAULT_TOKEN_DAYS_MS).toISOString();
    try {
      await this.db.transaction(async (tx) => {
        if (await tx.get('SELECT id FROM admin_tokens WHERE name = ?', [args.name]))
          throw new StoreConflict(`a token named "${args.name}" exists already`);
        await tx.run(
          'INSERT INTO admin_tokens (id, name, token_hash, scope, created_at, expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)',
          [args.id, args.name, args.tokenHash, args.scope, args.now, expiresAt, args.actor],
        );
        await insertAudit(
          tx,
          args.now,
          args.actor,
          'token.create',
          null,
          { newTokenId: args.id, name: args.name, scope: args.scope, expiresAt },
          args.tokenId,
        );
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreConflict(`a token named "${args.name}" exists already`);
      throw err;
    }
    return {
      id: args.id,
      name: args.name,
      scope: args.scope,
      createdAt: args.now,
      expiresAt,
      createdBy: args.actor,
      revokedAt: null,
    };
  }

  /** The token with this hash, revoked and expired ones included (the caller refuses those). */
  async findToken(tokenHash: string): Promise<TokenRecord | undefined> {
    const r = await this.db.get('SELECT * FROM admin_tokens WHERE token_hash = ?', [tokenHash]);
    return r ? toToken(r) : undefined;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.db.all('SELECT * FROM admin_tokens ORDER BY created_at, id')).map(toToken);
  }

  /** Revokes a token by id or name; StoreConflict when unknown or already revoked. */
  async revokeToken(
    idOrName: string,
    actor: string,
    now: string,
    tokenId: string | null = null,
  ): Promise<TokenRecord> {
    return this.db.transaction(async (tx) => {
      const r =
        (await tx.get('SELECT * FROM admin_tokens WHERE id = ?', [idOrName])) ??
        (await tx.get('SELECT * FROM admin_tokens WHERE name = ?', [idOrName]));
      if (!r) throw new StoreConflict('unknown token');
      const t = toToken(r);
      if (t.revokedAt) throw new StoreConflict(`token "${t.name}" is already revoked`);
      await tx.run('UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [now, t.id]);
      await insertAudit(
        tx,
        now,
        actor,
        'token.revoke',
        null,
        { revokedTokenId: t.id, name: t.name },
        tokenId,
      );
      return { ...t, revokedAt: now };
    });
  }

  async countTokens(): Promise<number> {
    return Number((await this.db.get('SELECT COUNT(*) AS n FROM admin_tokens'))?.n ?? 0);
  }

  async listAudit(f: AuditFilter = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    for (const [col, v] of [
      ['actor', f.actor],
      ['action', f.action],
      ['device_id', f.deviceId],
      ['token_id', f.tokenId],
    ] as const) {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        params.push(v);
      }
    }
    if (f.since) {
      where.push('at >= ?');
      params.push(f.since);
    }
    if (f.until) {
      where.push('at < ?');
      params.push(f.until);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const rows = await this.db.all(`SELECT * FROM audit_log ${clause} ORDER BY id DESC LIMIT ?`, [
      ...params,
      f.limit ?? 100,
    ]);
    return rows.map((r) => ({
      id: String(r.id),
      at: String(r.at),
      actor: String(r.actor),
      action: String(r.action),
      deviceId: str(r.device_id),
      tokenId: str(r.token_id),
      details: parse(r.details),
    }));
  }

  // ── the signed CRL (GET /v1/revocations) ───────────────────────────────────────────────────

  async latestCrl(): Promise<CrlDocument | undefined> {
    const r = await this.db.get('SELECT * FROM crl_documents ORDER BY crl_number DESC LIMIT 1');
    return r ? toCrl(r) : undefined;
  }

  /**
   * The CRL to serve: the cached one while it lists exactly the revoked set and is younger than
   * `reissueMs`; otherwise `sign` makes a new one with the next CRL number (strictly increasing,
   * persisted). Signing happens outside any transaction (a CRL of 10 000 entries takes seconds to
   * build, and on SQLite a transaction holds every other request); the insert then checks, in a
   * transaction (on PostgreSQL under an advisory lock), that nobody stored that number meanwhile —
   * if another instance did, its CRL is used (or the next number signed), so two different CRLs
   * never carry one number.
   */
  async currentCrl(
    now: Date,
    reissueMs: number,
    sign: (
      entries: { serial: string; revokedAt: string }[],
      crlNumber: bigint,
    ) => Promise<{ der: Buffer; thisUpdate: Date; nextUpdate: Date }>,
  ): Promise<CrlDocument> {
    const fresh = (c: CrlDocument, hash: string): boolean =>
      c.setHash === hash &&
      now.getTime() - Date.parse(c.thisUpdate) < reissueMs &&
      Date.parse(c.thisUpdate) <= now.getTime() + 60_000;
    for (let attempt = 0; ; attempt++) {
      const entries = (await this.listRevoked()).map((e) => ({ serial: e.serial, revokedAt: e.revokedAt }));
      const hash = revokedSetHash(entries);
      const held = await this.latestCrl();
      if (held && fresh(held, hash)) return held;
      const crlNumber = (held?.crlNumber ?? 0n) + 1n;
      const signed = await sign(entries, crlNumber);
      const doc: CrlDocument = {
        crlNumber,
        thisUpdate: signed.thisUpdate.toISOString(),
        nextUpdate: signed.nextUpdate.toISOString(),
        der: signed.der,
        setHash: hash,
      };
      const stored = await this.db.transaction(async (tx) => {
        if (tx.kind === 'postgres') await tx.exec('SELECT pg_advisory_xact_lock(727002)');
        const latest = await tx.get('SELECT crl_number FROM crl_documents ORDER BY crl_number DESC LIMIT 1');
        if ((latest ? BigInt(String(latest.crl_number)) : 0n) >= crlNumber) return false; // someone was first
        await tx.run(
          'INSERT INTO crl_documents (crl_number, this_update, next_update, der, set_hash) VALUES (?, ?, ?, ?, ?)',
          [crlNumber.toString(), doc.thisUpdate, doc.nextUpdate, doc.der.toString('base64'), hash],
        );
        // Keep a short history (the newest is served; older ones only help an investigation).
        await tx.run('DELETE FROM crl_documents WHERE crl_number < ?', [(crlNumber - 20n).toString()]);
        return true;
      });
      if (stored) return doc;
      if (attempt >= 3) {
        const latest = await this.latestCrl();
        if (latest) return latest; // busy signers elsewhere: serve theirs, the next request catches up
      }
    }
  }

  // ── tests and benchmarks ───────────────────────────────────────────────────────────────────

  /** Every persistent row except nonces, in a stable order: "no state changed" is snapshot equality. */
  async snapshot(): Promise<Record<string, Row[]>> {
    const out: Record<string, Row[]> = {};
    for (const [table, key] of [
      ['devices', 'id'],
      ['enrollments', 'id'],
      ['certificates', 'serial'],
      ['admin_tokens', 'id'],
      ['audit_log', 'id'],
      ['crl_documents', 'crl_number'],
    ] as const) {
      out[table] = await this.db.all(`SELECT * FROM ${table} ORDER BY ${key}`);
    }
    return out;
  }

  /** Bulk insert of already-active devices (benchmark fleets), in batches inside one transaction. */
  async seedActiveDevices(
    rows: {
      id: string;
      publicKey: string;
      roomName: string;
      site: string;
      serial: string;
      certPem: string;
    }[],
    now: string,
  ): Promise<void> {
    const notAfter = new Date(Date.parse(now) + 365 * 86_400_000).toISOString();
    await this.db.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += 200) {
        const batch = rows.slice(i, i + 200);
        const dev: SqlValue[] = [];
        const cert: SqlValue[] = [];
        for (const r of batch) {
          dev.push(r.id, r.publicKey, r.roomName, r.site, r.serial, notAfter, now, now);
          cert.push(r.serial, r.id, r.certPem, now, notAfter, now);
        }
        await tx.run(
          `INSERT INTO devices (id, status, public_key, csr_pem, inventory, software_version, room_name, site, policy, config,
             config_version, cert_serial, cert_not_after, created_at, claimed_at, claimed_by)
           VALUES ${batch.map(() => "(?, 'active', ?, '', '{}', 'seed', ?, ?, 'default', '{}', 1, ?, ?, ?, ?, 'seed')").join(', ')}`,
          dev,
        );
        await tx.run(
          `INSERT INTO certificates (serial, device_id, cert_pem, not_before, not_after, issued_at)
           VALUES ${batch.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
          cert,
        );
      }
    });
  }
}

function toEnrollment(r: Row): EnrollmentRecord {
  return {
    id: String(r.id),
    deviceId: String(r.device_id),
    expiresAt: String(r.expires_at),
    usedAt: str(r.used_at),
    createdAt: String(r.created_at),
  };
}

async function insertCertificate(tx: Db, c: Omit<CertificateRecord, 'revokedAt'>): Promise<void> {
  await tx.run(
    'INSERT INTO certificates (serial, device_id, cert_pem, not_before, not_after, issued_at) VALUES (?, ?, ?, ?, ?, ?)',
    [c.serial, c.deviceId, c.certPem, c.notBefore, c.notAfter, c.issuedAt],
  );
}

export async function insertAudit(
  tx: Db,
  now: string,
  actor: string,
  action: string,
  deviceId: string | null,
  details: Record<string, unknown>,
  tokenId: string | null = null,
): Promise<void> {
  await tx.run(
    'INSERT INTO audit_log (id, at, actor, action, device_id, details, token_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [orderedId(new Date(now)), now, actor, action, deviceId, json(details), tokenId],
  );
}
