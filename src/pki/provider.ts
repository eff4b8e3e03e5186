// @peculiar/x509 does its signing through WebCrypto; Node 20's webcrypto has Ed25519. Importing this
// module once sets the provider for every caller of src/pki.
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
export const subtle = webcrypto.subtle;
export const ED25519 = { name: 'Ed25519' } as const;
