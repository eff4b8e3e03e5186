// The device's long-term identity: an Ed25519 key made at first boot in <dir>/identity.key (PKCS#8
// PEM, mode 0600, directory 0700). It never leaves the device: only CSRs and signatures made with it
// do. The device id is derived from the public key (src/pki deviceIdForPublicKey).
//   loadOrCreateIdentity(dir) → { key, deviceId, path, created }
import { chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  deviceIdForPublicKey,
  generateIdentityKey,
  type IdentityKey,
  identityKeyFromPem,
  identityKeyToPem,
} from '../../src/pki/index.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { readFile } from 'node:fs/promises';

export interface DeviceIdentity {
  key: IdentityKey;
  deviceId: string;
  path: string;
  /** True when this call made the key (first boot). */
  created: boolean;
}

export const IDENTITY_FILE = 'identity.key';

export async function loadOrCreateIdentity(dir: string): Promise<DeviceIdentity> {
  const path = join(dir, IDENTITY_FILE);
  let pem: string | undefined;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (pem !== undefined) {
    // Someone loosened the permissions (a backup restore, a careless copy): tighten them again.
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
    const key = identityKeyFromPem(pem);
    return { key, deviceId: deviceIdForPublicKey(key.publicKey), path, created: false };
  }
  const key = generateIdentityKey();
  // Atomic: a power cut during first boot leaves no file (and a new key next boot), never half a key.
  await writeFileAtomic(path, identityKeyToPem(key), 0o600);
  return { key, deviceId: deviceIdForPublicKey(key.publicKey), path, created: true };
}
