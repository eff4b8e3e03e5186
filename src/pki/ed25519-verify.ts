// Ed25519 signature verification that bundles for the browser (@noble/curves) but uses node:crypto
// when it is there — about ten times faster, and the E2EE trust callback runs it synchronously
// while a message waits. node:crypto is looked up at run time (process.getBuiltinModule, Node ≥ 20.16),
// never imported, so a browser bundle has no node: import. Both are RFC 8032 strict (as OpenSSL).
import { ed25519 } from '@noble/curves/ed25519.js';

interface NodeCryptoSlice {
  createPublicKey(o: { key: Uint8Array; format: 'der'; type: 'spki' }): unknown;
  verify(algorithm: null, data: Uint8Array, key: unknown, signature: Uint8Array): boolean;
}

const nodeCrypto = (
  globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }
).process?.getBuiltinModule?.('node:crypto') as NodeCryptoSlice | undefined;

const SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/** Node key objects of the few CA keys we verify with. */
const keys = new Map<string, unknown>();

export function verifyEd25519Noble(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

export function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (!nodeCrypto || publicKey.length !== 32 || signature.length !== 64)
    return verifyEd25519Noble(signature, message, publicKey);
  try {
    const id = String.fromCharCode(...publicKey);
    let key = keys.get(id);
    if (!key) {
      key = nodeCrypto.createPublicKey({
        key: Uint8Array.from([...SPKI_PREFIX, ...publicKey]),
        format: 'der',
        type: 'spki',
      });
      if (keys.size > 64) keys.clear();
      keys.set(id, key);
    }
    return nodeCrypto.verify(null, message, key, signature);
  } catch {
    return false;
  }
}
