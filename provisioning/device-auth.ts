// Device request signatures. A device proves possession of its identity key on every call:
//   x-sealroom-device:    device id
//   x-sealroom-timestamp: unix milliseconds
//   x-sealroom-nonce:     16–64 chars of base64url, fresh per request
//   x-sealroom-signature: base64url Ed25519 signature over
//     "sealroom-device-v1\n<METHOD>\n<path?query>\n<hex SHA-256 of the raw body>\n<timestamp>\n<nonce>\n<device id>"
// The service accepts a timestamp within ±MAX_SKEW_MS and each (device, nonce) once (remembered in
// the store until the timestamp leaves the window), so a captured request cannot be replayed, moved to
// another path, or given another body. Pure (no clock: callers pass now).
import { createHash, type KeyObject, randomBytes, sign, verify } from 'node:crypto';

export const MAX_SKEW_MS = 5 * 60_000;
export const DEVICE_HEADERS = {
  device: 'x-sealroom-device',
  timestamp: 'x-sealroom-timestamp',
  nonce: 'x-sealroom-nonce',
  signature: 'x-sealroom-signature',
} as const;

export function bodyHash(body: string | Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

export function signedString(p: {
  method: string;
  path: string;
  body: string | Uint8Array;
  timestamp: string;
  nonce: string;
  deviceId: string;
}): string {
  return [
    'sealroom-device-v1',
    p.method.toUpperCase(),
    p.path,
    bodyHash(p.body),
    p.timestamp,
    p.nonce,
    p.deviceId,
  ].join('\n');
}

/** Headers for one request. */
export function signDeviceRequest(p: {
  privateKey: KeyObject;
  deviceId: string;
  method: string;
  path: string;
  body: string;
  now: number;
  nonce?: string;
}): Record<string, string> {
  const timestamp = String(p.now);
  const nonce = p.nonce ?? randomBytes(16).toString('base64url');
  const signature = sign(
    null,
    Buffer.from(signedString({ ...p, timestamp, nonce }), 'utf8'),
    p.privateKey,
  ).toString('base64url');
  return {
    [DEVICE_HEADERS.device]: p.deviceId,
    [DEVICE_HEADERS.timestamp]: timestamp,
    [DEVICE_HEADERS.nonce]: nonce,
    [DEVICE_HEADERS.signature]: signature,
  };
}

export type DeviceAuthFailure =
  | 'missing-headers'
  | 'bad-timestamp'
  | 'stale-timestamp'
  | 'bad-nonce'
  | 'bad-signature';

export interface ParsedDeviceAuth {
  deviceId: string;
  timestamp: number;
  nonce: string;
  signature: Buffer;
}

/** Checks the header shapes and the clock window; the signature needs the key (verifyDeviceSignature). */
export function parseDeviceAuth(
  headers: Record<string, string | string[] | undefined>,
  now: number,
): ParsedDeviceAuth | DeviceAuthFailure {
  const h = (k: string) => {
    const v = headers[k];
    return typeof v === 'string' ? v : undefined;
  };
  const deviceId = h(DEVICE_HEADERS.device);
  const ts = h(DEVICE_HEADERS.timestamp);
  const nonce = h(DEVICE_HEADERS.nonce);
  const sig = h(DEVICE_HEADERS.signature);
  if (!deviceId || !ts || !nonce || !sig) return 'missing-headers';
  if (!/^\d{1,15}$/.test(ts)) return 'bad-timestamp';
  const timestamp = Number(ts);
  if (Math.abs(now - timestamp) > MAX_SKEW_MS) return 'stale-timestamp';
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(nonce)) return 'bad-nonce';
  if (!/^[A-Za-z0-9_-]{86}$/.test(sig)) return 'bad-signature';
  return { deviceId, timestamp, nonce, signature: Buffer.from(sig, 'base64url') };
}

export function verifyDeviceSignature(
  auth: ParsedDeviceAuth,
  req: { method: string; path: string; body: string | Uint8Array },
  publicKey: KeyObject,
): boolean {
  const msg = signedString({
    ...req,
    timestamp: String(auth.timestamp),
    nonce: auth.nonce,
    deviceId: auth.deviceId,
  });
  return verify(null, Buffer.from(msg, 'utf8'), publicKey, auth.signature);
}
