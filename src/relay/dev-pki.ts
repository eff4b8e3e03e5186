// A development organisation for loopback deployments (`sealroom demo`, tests, benchmarks): an org
// CA and device certificates issued from it with the same src/pki code the provisioning service uses.
// Production devices get their certificate through enrollment instead.
import type { KeyObject } from 'node:crypto';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  identityKeyToPem,
  issueDeviceCertificateDetailed,
} from '../pki/index.js';

export interface DevelopmentDevice {
  deviceId: string;
  roomName: string;
  org: string;
  site: string;
  certificatePem: string;
  serial: string;
  identityKey: KeyObject;
  identityKeyPem: string;
}

export function createDevelopmentCa(org = 'Sealroom Demo Org'): Promise<CertificateAuthority> {
  return createCertificateAuthority({ commonName: `${org} Development CA`, org, validityDays: 30 });
}

export async function issueDevelopmentDevice(
  ca: CertificateAuthority,
  opts: { roomName: string; org?: string; site?: string; validityDays?: number },
): Promise<DevelopmentDevice> {
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const org = opts.org ?? 'Sealroom Demo Org';
  const site = opts.site ?? 'Loopback';
  const issued = await issueDeviceCertificateDetailed({
    ca,
    csrPem: await createCsr(key, { deviceId }),
    deviceId,
    roomName: opts.roomName,
    org,
    site,
    validityDays: opts.validityDays ?? 30,
  });
  return {
    deviceId,
    roomName: opts.roomName,
    org,
    site,
    certificatePem: issued.certPem,
    serial: issued.serial,
    identityKey: key.privateKey,
    identityKeyPem: identityKeyToPem(key),
  };
}
