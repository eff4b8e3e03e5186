// Heartbeat keys: a symmetric MAC instead of an Ed25519 signature on the heartbeat hot path (an
// Ed25519 verification costs more CPU than a whole bare request). Like TLS session resumption after
// a certificate handshake: the device gets a short-lived key through a device-SIGNED exchange
// (POST /v1/devices/:id/heartbeat-key, with a nonce), then MACs its heartbeats with it:
//   x-sealroom-heartbeat-key: keyId = "<device id>.<expires, unix s>.<secret generation>"
//   x-sealroom-timestamp:     unix milliseconds (the same skew window as signed requests)
//   x-sealroom-mac:           base64url HMAC-SHA256(key, canonical request, see macString)
// key = HMAC-SHA256(service secret, "sealroom/v1/heartbeat-key|<device id>|<expires>"): stateless,
// so every instance sharing the database (and its service_secrets row) derives the same key, and a
// keyId with another device or a later expiry derives another key (its MAC does not verify).
// Pure (no clock, no store: callers pass now and the secret).
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import { MAX_SKEW_MS } from './device-auth.js';

export const HEARTBEAT_KEY_HEADERS = {
  keyId: 'x-sealroom-heartbeat-key',
  timestamp: 'x-sealroom-timestamp',
  mac: 'x-sealroom-mac',
} as const;

/** How long an issued heartbeat key is valid (default). */
export const HEARTBEAT_KEY_TTL_MS = 6 * 3600_000;
/** A device fetches a new key when its key expires within this. */
export const HEARTBEAT_KEY_REFRESH_MS = 10 * 60_000;
/** The service_secrets row name of a secret generation. */
export const heartbeatSecretName = (generation: number) => `heartbeat-key.${generation}`;

export function heartbeatKeyId(deviceId: string, expiresUnixS: number, generation: number): string {
  return `${deviceId}.${expiresUnixS}.${generation}`;
}

export function deriveHeartbeatKey(secret: Buffer, deviceId: string, expiresUnixS: number): Buffer {
  return createHmac('sha256', secret)
    .update(`sealroom/v1/heartbeat-key|${deviceId}|${expiresUnixS}`, 'utf8')
    .digest();
}

export interface ParsedHeartbeatKeyId {
  deviceId: string;
  expiresUnixS: number;
  generation: number;
}

const KEY_ID = /^(sr-[a-z2-7]{20})\.(\d{1,12})\.(\d{1,6})$/;

export function parseHeartbeatKeyId(keyId: string): ParsedHeartbeatKeyId | undefined {
  const m = KEY_ID.exec(keyId);
  if (!m) return undefined;
  return { deviceId: m[1]!, expiresUnixS: Number(m[2]), generation: Number(m[3]) };
}

/** The canonical request a heartbeat MAC covers (the keyId too: a MAC names its key). */
export function macString(p: {
  method: string;
  path: string;
  body: string | Uint8Array;
  timestamp: string;
  keyId: string;
}): string {
  // One-shot hash (no Hash object): the heartbeat hot path runs this per request.
  const bodyHash = hash('sha256', p.body, 'hex');
  return `sealroom-heartbeat-v1\n${p.method.toUpperCase()}\n${p.path}\n${bodyHash}\n${p.timestamp}\n${p.keyId}`;
}

export function heartbeatMac(
  key: Buffer,
  p: { method: string; path: string; body: string | Uint8Array; timestamp: string; keyId: string },
): Buffer {
  return createHmac('sha256', key).update(macString(p), 'utf8').digest();
}

/** Device side: the headers of one MAC'd request. */
export function macHeartbeatRequest(p: {
  keyId: string;
  key: Buffer;
  method: string;
  path: string;
  body: string;
  now: number;
}): Record<string, string> {
  const timestamp = String(p.now);
  return {
    [HEARTBEAT_KEY_HEADERS.keyId]: p.keyId,
    [HEARTBEAT_KEY_HEADERS.timestamp]: timestamp,
    [HEARTBEAT_KEY_HEADERS.mac]: heartbeatMac(p.key, { ...p, timestamp }).toString('base64url'),
  };
}

export type HeartbeatMacFailure =
  | 'missing-headers'
  | 'bad-key-id'
  | 'bad-timestamp'
  | 'stale-timestamp'
  | 'bad-mac'
  | 'heartbeat-key-expired';

export interface ParsedHeartbeatMac extends ParsedHeartbeatKeyId {
  keyId: string;
  timestamp: number;
  mac: Buffer;
}

/** Header shapes, clock window and expiry; the MAC needs the derived key (verifyHeartbeatMac). */
export function parseHeartbeatMac(
  headers: Record<string, string | string[] | undefined>,
  now: number,
): ParsedHeartbeatMac | HeartbeatMacFailure {
  const keyId = headers[HEARTBEAT_KEY_HEADERS.keyId];
  const ts = headers[HEARTBEAT_KEY_HEADERS.timestamp];
  const mac = headers[HEARTBEAT_KEY_HEADERS.mac];
  if (typeof keyId !== 'string' || typeof ts !== 'string' || typeof mac !== 'string')
    return 'missing-headers';
  const id = parseHeartbeatKeyId(keyId);
  if (!id) return 'bad-key-id';
  if (!/^\d{1,15}$/.test(ts)) return 'bad-timestamp';
  const timestamp = Number(ts);
  if (Math.abs(now - timestamp) > MAX_SKEW_MS) return 'stale-timestamp';
  if (!/^[A-Za-z0-9_-]{43}$/.test(mac)) return 'bad-mac';
  if (id.expiresUnixS * 1000 <= now) return 'heartbeat-key-expired';
  return {
    deviceId: id.deviceId,
    expiresUnixS: id.expiresUnixS,
    generation: id.generation,
    keyId,
    timestamp,
    mac: Buffer.from(mac, 'base64url'),
  };
}

/** Constant-time check of the MAC under `key` (the key derived for parsed.keyId; callers may cache it). */
export function verifyHeartbeatMac(
  parsed: ParsedHeartbeatMac,
  key: Buffer,
  req: { method: string; path: string; body: string | Uint8Array },
): boolean {
  if (parsed.mac.length !== 32) return false; // SHA-256
  const expected = createHmac('sha256', key)
    .update(
      macString({
        method: req.method,
        path: req.path,
        body: req.body,
        timestamp: String(parsed.timestamp),
        keyId: parsed.keyId,
      }),
      'utf8',
    )
    .digest();
  return parsed.mac.length === expected.length && timingSafeEqual(parsed.mac, expected);
}
