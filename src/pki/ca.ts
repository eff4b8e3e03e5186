// The organisation's certificate authority: an Ed25519 self-signed root that signs device
// certificates. IT can bring its own (any Ed25519 CA certificate + PKCS#8 key in PEM).
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { PkiError } from './errors.js';
import { ED25519, subtle, x509 } from './provider.js';
import { caSubjectName } from './subject.js';

export interface CertificateAuthority {
  certPem: string;
  privateKeyPem: string;
}

export interface LoadedCa {
  cert: x509.X509Certificate;
  signingKey: CryptoKey;
}

const DAY_MS = 86_400_000;

/** Random positive 128-bit serial (hex, lowercase, no leading zero byte). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

export async function createCertificateAuthority(opts: {
  commonName: string;
  org: string;
  validityDays: number;
  now?: Date;
}): Promise<CertificateAuthority> {
  const keys = (await subtle.generateKey(ED25519, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date((opts.now ?? new Date()).getTime() - 60_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: caSubjectName(opts.commonName, opts.org),
    notBefore,
    notAfter: new Date(notBefore.getTime() + opts.validityDays * DAY_MS),
    keys,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await subtle.exportKey('pkcs8', keys.privateKey);
  const privateKeyPem = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  return { certPem: cert.toString('pem'), privateKeyPem };
}

export function parseCertificate(pem: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem);
  } catch {
    throw new PkiError('malformed', 'not a PEM X.509 certificate');
  }
}

const loaded = new Map<string, Promise<LoadedCa>>();

/** Parses a CA once per process (issuing many certificates should not re-import the key each time). */
export function loadCa(ca: CertificateAuthority): Promise<LoadedCa> {
  const cacheKey = ca.certPem + ca.privateKeyPem;
  let entry = loaded.get(cacheKey);
  if (!entry) {
    entry = (async () => {
      const cert = parseCertificate(ca.certPem);
      const privateKey = createPrivateKey(ca.privateKeyPem);
      if (privateKey.asymmetricKeyType !== 'ed25519')
        throw new PkiError('wrong-key-type', 'CA key is not Ed25519');
      const spkiOfKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
      if (!Buffer.from(cert.publicKey.rawData).equals(spkiOfKey)) {
        throw new PkiError('bad-chain', 'CA private key does not match the CA certificate');
      }
      const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
      const signingKey = (await subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign'])) as CryptoKey;
      return { cert, signingKey };
    })();
    entry.catch(() => loaded.delete(cacheKey));
    loaded.set(cacheKey, entry);
  }
  return entry;
}

/** Signs arbitrary bytes with the CA key (signed partner-CA bundles and CA rollovers). */
export async function signWithCa(ca: CertificateAuthority, data: Uint8Array): Promise<Uint8Array> {
  const { signingKey } = await loadCa(ca);
  return new Uint8Array(await subtle.sign(ED25519, signingKey, data));
}
