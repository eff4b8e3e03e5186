// The person's identity key as the E2EE worker uses it: a non-extractable WebCrypto Ed25519 private
// key (it never leaves the browser's key store, not even into this worker's memory) and its raw
// public key. Signs the relay challenge and the E2EE key binding; a person never leads, so nothing else.
import type { AsyncSigner } from './relay-client.js';

export async function webCryptoSigner(keyPair: CryptoKeyPair): Promise<AsyncSigner> {
  const { privateKey, publicKey } = keyPair;
  if (privateKey.algorithm.name !== 'Ed25519') throw new Error('the identity key is not Ed25519');
  if (privateKey.extractable) throw new Error('the identity key must be non-extractable');
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
  if (raw.length !== 32) throw new Error('an Ed25519 public key is 32 bytes');
  return {
    publicKey: raw,
    async sign(message: Uint8Array): Promise<Uint8Array> {
      return new Uint8Array(await crypto.subtle.sign('Ed25519', privateKey, Uint8Array.from(message)));
    },
  };
}
