// The provisioning store: devices, activation codes (hashed), certificates, admin tokens (hashed),
// audit log and device request nonces. Domain methods over the portable SQL of ./db.ts, so the
// SQLite and PostgreSQL stores are the same code and pass the same tests.
import { randomBytes } from 'node:crypto';
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
  revokedAt: string | null;
}

export interface AuditEntry {
  id: string;
  at: string;
  actor: string;
  action: string;
  deviceId: string | null;
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
      await insertAudit(tx, args.now, args.actor, 'device.claim', args.deviceId, {
        roomName: args.roomName,
        site: args.site,
        policy: args.policy,
        serial: args.cert.serial,
      });
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
  ): Promise<number> {
    return this.db.transaction(async (tx) => {
      const changed = await tx.run(
        "UPDATE devices SET config = ?, config_version = config_version + 1 WHERE id = ? AND status = 'active'",
        [json(config), deviceId],
      );
      if (changed !== 1) throw new StoreConflict('only active devices take configuration');
      await insertAudit(tx, now, actor, 'device.config', deviceId, { config });
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
        {
          reason,
        },
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

  async purgeNonces(now: string): Promise<number> {
    return this.db.run('DELETE FROM device_nonces WHERE expires_at < ?', [now]);
  }

  // ── admin tokens and audit ─────────────────────────────────────────────────────────────────

  async createToken(args: {
    id: string;
    name: string;
    tokenHash: string;
    scope: TokenScope;
    actor: string;
    now: string;
  }) {
    await this.db.transaction(async (tx) => {
      await tx.run(
        'INSERT INTO admin_tokens (id, name, token_hash, scope, created_at) VALUES (?, ?, ?, ?, ?)',
        [args.id, args.name, args.tokenHash, args.scope, args.now],
      );
      await insertAudit(tx, args.now, args.actor, 'token.create', null, {
        tokenId: args.id,
        name: args.name,
        scope: args.scope,
      });
    });
  }

  async findToken(tokenHash: string): Promise<TokenRecord | undefined> {
    const r = await this.db.get('SELECT * FROM admin_tokens WHERE token_hash = ? AND revoked_at IS NULL', [
      tokenHash,
    ]);
    if (!r) return undefined;
    return {
      id: String(r.id),
      name: String(r.name),
      scope: r.scope as TokenScope,
      createdAt: String(r.created_at),
      revokedAt: str(r.revoked_at),
    };
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
      details: parse(r.details),
    }));
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

async function insertAudit(
  tx: Db,
  now: string,
  actor: string,
  action: string,
  deviceId: string | null,
  details: Record<string, unknown>,
): Promise<void> {
  await tx.run(
    'INSERT INTO audit_log (id, at, actor, action, device_id, details) VALUES (?, ?, ?, ?, ?, ?)',
    [orderedId(new Date(now)), now, actor, action, deviceId, json(details)],
  );
}
