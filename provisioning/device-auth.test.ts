import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateActivationCode, hashActivationCode, normalizeActivationCode } from './activation-code.js';
import { MAX_SKEW_MS, parseDeviceAuth, signDeviceRequest, verifyDeviceSignature } from './device-auth.js';

const key = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const now = 1_800_000_000_000;
const req = { method: 'POST', path: '/v1/devices/sr-a/heartbeat', body: '{"a":1}' };

function signed(overrides: Partial<typeof req> = {}) {
  return signDeviceRequest({ privateKey: key.privateKey, deviceId: 'sr-a', now, ...req, ...overrides });
}

describe('device request signatures', () => {
  it('verifies the request that was signed', () => {
    const auth = parseDeviceAuth(signed(), now + 1000);
    expect(typeof auth).toBe('object');
    if (typeof auth === 'string') return;
    expect(verifyDeviceSignature(auth, req, key.publicKey)).toBe(true);
    expect(verifyDeviceSignature(auth, req, other.publicKey)).toBe(false);
  });

  it('fails when any signed part changes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('method', 'path', 'body'),
        fc.string({ minLength: 1, maxLength: 20 }),
        (field, suffix) => {
          const auth = parseDeviceAuth(signed(), now);
          if (typeof auth === 'string') return false;
          return !verifyDeviceSignature(auth, { ...req, [field]: req[field] + suffix }, key.publicKey);
        },
      ),
    );
    const headers = signed();
    const auth = parseDeviceAuth({ ...headers, 'x-sealroom-device': 'sr-b' }, now);
    expect(typeof auth === 'object' && verifyDeviceSignature(auth, req, key.publicKey)).toBe(false);
  });

  it('rejects missing headers, bad shapes and stale timestamps before any crypto', () => {
    expect(parseDeviceAuth({}, now)).toBe('missing-headers');
    expect(parseDeviceAuth(signed(), now + MAX_SKEW_MS + 1)).toBe('stale-timestamp');
    expect(parseDeviceAuth({ ...signed(), 'x-sealroom-timestamp': '12abc' }, now)).toBe('bad-timestamp');
    expect(parseDeviceAuth({ ...signed(), 'x-sealroom-nonce': "'; DROP TABLE--" }, now)).toBe('bad-nonce');
    expect(parseDeviceAuth({ ...signed(), 'x-sealroom-signature': 'AAAA' }, now)).toBe('bad-signature');
  });
});

describe('activation codes', () => {
  it('are XXXX-XXXX from the unambiguous alphabet and normalise back', () => {
    for (let i = 0; i < 200; i++) {
      const code = generateActivationCode();
      expect(code).toMatch(/^[ACDEFGHJKMNPQRTWXY34679]{4}-[ACDEFGHJKMNPQRTWXY34679]{4}$/);
      expect(normalizeActivationCode(` ${code.toLowerCase().replace('-', ' ')} `)).toBe(
        code.replace('-', ''),
      );
    }
    expect(normalizeActivationCode('ABCD-EFG0')).toBeUndefined(); // 0 and B are not in the alphabet
    expect(normalizeActivationCode('ACDE')).toBeUndefined();
    expect(hashActivationCode('ACDEFGHJ')).not.toBe(hashActivationCode('ACDEFGHK'));
  });
});
