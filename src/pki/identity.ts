// Device identity keys (Ed25519 through node:crypto, which is ~20x faster than a JS implementation)
// and the certificate signing request a device sends when it enrolls.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { ED25519, subtle, x509 } from './provider.js';
import { utf8 } from './subject.js';

export interface IdentityKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateIdentityKey(): IdentityKey {
  return generateKeyPairSync('ed25519');
}

export function identityKeyToPem(key: IdentityKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function identityKeyFromPem(pem: string): IdentityKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('identity key is not Ed25519');
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The raw 32-byte Ed25519 public key (the last 32 bytes of its SPKI DER). */
export function rawPublicKey(publicKey: KeyObject): Uint8Array {
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

/**
 * A device id derived from the public key ("sr-" + 20 base32 chars of SHA-256(raw key)): it cannot be
 * chosen by a device to collide with another, and anyone holding the key or certificate can recompute it.
 */
export function deviceIdForPublicKey(publicKey: KeyObject | Uint8Array): string {
  const raw = publicKey instanceof Uint8Array ? publicKey : rawPublicKey(publicKey);
  return `sr-${base32(createHash('sha256').update(raw).digest().subarray(0, 12)).slice(0, 20)}`;
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Converts node:crypto keys to the WebCrypto keys @peculiar/x509 signs with. */
export async function toCryptoKeys(key: IdentityKey): Promise<CryptoKeyPair> {
  const pkcs8 = key.privateKey.export({ format: 'der', type: 'pkcs8' });
  const spki = key.publicKey.export({ format: 'der', type: 'spki' });
  const privateKey = (await subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign'])) as CryptoKey;
  const publicKey = (await subtle.importKey('spki', spki, ED25519, true, ['verify'])) as CryptoKey;
  return { privateKey, publicKey };
}

/** A PKCS#10 request (PEM) whose subject CN is the device id, self-signed by the identity key. */
export async function createCsr(identityKey: IdentityKey, opts: { deviceId: string }): Promise<string> {
  const keys = await toCryptoKeys(identityKey);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: new x509.Name([{ CN: [utf8(opts.deviceId)] }]),
    keys,
    signingAlgorithm: ED25519,
  });
  return csr.toString('pem');
}
