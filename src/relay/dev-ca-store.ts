// The development org CA kept in a directory (ca.pem, ca-key.pem, mode 0600 for the key), and device
// credentials issued from it (device.pem, device-key.pem). For loopback deployments only: enrolled
// devices get their certificate from the provisioning service instead.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { CertificateAuthority } from '../pki/index.js';
import { createDevelopmentCa, issueDevelopmentDevice } from './dev-pki.js';

export async function loadOrCreateDevelopmentCa(dir: string, org?: string): Promise<CertificateAuthority> {
  const certPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'ca-key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certPem: readFileSync(certPath, 'utf8'), privateKeyPem: readFileSync(keyPath, 'utf8') };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = await createDevelopmentCa(org);
  await writeFileAtomic(keyPath, ca.privateKeyPem, 0o600);
  await writeFileAtomic(certPath, ca.certPem, 0o644);
  return ca;
}

export interface DeviceCredentialFiles {
  certificatePem: string;
  identityKeyPem: string;
}

/** Loads device credentials from dir, issuing them from the development CA the first time. */
export async function loadOrIssueDevelopmentDevice(
  caDir: string,
  deviceDir: string,
  opts: { roomName: string; org?: string; site?: string },
): Promise<DeviceCredentialFiles> {
  const certPath = join(deviceDir, 'device.pem');
  const keyPath = join(deviceDir, 'device-key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { certificatePem: readFileSync(certPath, 'utf8'), identityKeyPem: readFileSync(keyPath, 'utf8') };
  }
  const ca = await loadOrCreateDevelopmentCa(caDir, opts.org);
  const device = await issueDevelopmentDevice(ca, opts);
  mkdirSync(deviceDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(keyPath, device.identityKeyPem, 0o600);
  await writeFileAtomic(certPath, device.certificatePem, 0o644);
  return { certificatePem: device.certificatePem, identityKeyPem: device.identityKeyPem };
}
