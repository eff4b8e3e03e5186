// The primitives the E2EE core needs from its platform. Two backends implement exactly this shape:
// node.ts (node:crypto, OpenSSL: fast, used by devices, the relay and bench:rekey) and browser.ts
// (@noble + crypto.getRandomValues, for the web participant). The core imports `./node.js`; bundling
// for a browser with scripts/esbuild-core-browser.mjs swaps that one module for `./browser.js`, so
// there is one protocol implementation and only the primitives change.

/** An Ed25519 private key that can sign; its raw 32-byte public key. */
export interface Ed25519Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** An X25519 private key; `agree` throws on a peer key it cannot use (the caller checks low order). */
export interface X25519Agreement {
  readonly publicKey: Uint8Array;
  agree(peerPublicKey: Uint8Array): Uint8Array;
}

export interface CryptoBackend {
  readonly name: 'node' | 'browser';
  randomBytes(length: number): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  sha3_256(data: Uint8Array): Uint8Array;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  /** Constant-time comparison of two byte strings of equal length. */
  equalSameLength(a: Uint8Array, b: Uint8Array): boolean;
  /** Unpadded base64url (the wire form of every byte field). */
  toBase64Url(bytes: Uint8Array): string;
  /** Decodes base64url leniently; the caller checks canonical form by re-encoding. */
  decodeBase64Url(text: string): Uint8Array;
  ed25519FromSeed(seed: Uint8Array): Ed25519Signer;
  /** Wraps a platform private key (node: an Ed25519 KeyObject); throws where there is none. */
  ed25519FromPlatformKey(key: unknown): Ed25519Signer;
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  x25519FromSeed(seed: Uint8Array): X25519Agreement;
}
