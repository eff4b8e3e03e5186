// The one import of the platform backend. On Node this is node:crypto; a browser bundle built with
// scripts/esbuild-core-browser.mjs resolves `./node.js` below to `./browser.js` instead.
export { backend } from './node.js';
export type { CryptoBackend, Ed25519Signer, X25519Agreement } from './api.js';
