// The person's key: a non-extractable Ed25519 key pair made by WebCrypto, kept in IndexedDB. The
// private key never exists as bytes in page memory; the certificate names its public key, and the
// ID token's nonce is bound to it (docs/people.md), so a token certifies this key and no other.
import { encodeCanonical } from '../../core/e2ee/canonical.js';
import { idbDelete, idbGet, idbSet } from './idb.js';

const KEY = 'person-key';

export interface PersonKey {
  pair: CryptoKeyPair;
  /** The raw 32-byte public key. */
  publicKeyRaw: Uint8Array;
}

export async function generatePersonKey(): Promise<PersonKey> {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  if (pair.privateKey.extractable) throw new Error('WebCrypto made an extractable private key');
  const publicKeyRaw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  return { pair, publicKeyRaw };
}

/** The stored key, or a new one (stored). `fresh`: always a new one (a new sign-in, a new key). */
export async function loadOrCreatePersonKey(fresh = false): Promise<PersonKey> {
  if (!fresh) {
    const stored = await idbGet<CryptoKeyPair>(KEY);
    if (stored?.privateKey && stored.publicKey) {
      const publicKeyRaw = new Uint8Array(await crypto.subtle.exportKey('raw', stored.publicKey));
      return { pair: stored, publicKeyRaw };
    }
  }
  const key = await generatePersonKey();
  await idbSet(KEY, key.pair);
  return key;
}

export const forgetPersonKey = (): Promise<void> => idbDelete(KEY);

export function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const sha256 = async (data: Uint8Array) =>
  new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));

/** nonce = base64url(SHA-256(encode("sealroom/v1/person-key", publicKeyRaw))). */
export async function personKeyNonce(publicKeyRaw: Uint8Array): Promise<string> {
  return base64url(await sha256(encodeCanonical('sealroom/v1/person-key', publicKeyRaw)));
}

/** proof = Ed25519 over encode("sealroom/v1/person-cert-request", idToken, publicKeyRaw). */
export async function possessionProof(key: PersonKey, idToken: string): Promise<string> {
  const msg = encodeCanonical('sealroom/v1/person-cert-request', idToken, key.publicKeyRaw);
  const sig = await crypto.subtle.sign(
    { name: 'Ed25519' },
    key.pair.privateKey,
    msg as Uint8Array<ArrayBuffer>,
  );
  return base64url(new Uint8Array(sig));
}
