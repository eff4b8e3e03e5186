// Running the service: data directory (SQLite file, CA, bootstrap token), optional PostgreSQL,
// HTTPS, listen. The org CA is created on first start unless IT brings its own (--ca-cert/--ca-key).
// The service always speaks HTTPS: without --tls-cert/--tls-key it creates (once, in <dataDir>/tls/)
// an ECDSA P-256 service TLS CA and a server certificate for localhost, 127.0.0.1, ::1 and the
// public URL's host, signed by it; devices pin that CA at first enrollment (tls-pin.ts).
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type CertificateAuthority, createCertificateAuthority, loadCa } from '../../src/pki/index.js';
import { subtle, x509 } from '../../src/pki/provider.js';
import { readJsonIfExists, readTextIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';
import { createLogger, type Logger } from '../../src/util/log.js';
import { openStore } from '../store/open.js';
import type { ProvisioningStore } from '../store/store.js';
import { generateAdminToken, hashAdminToken } from '../tokens.js';
import { buildService, type ServiceOptions } from './app.js';

export interface ServeOptions {
  dataDir: string;
  databaseUrl?: string;
  host?: string;
  port?: number;
  org: string;
  publicUrl?: string;
  caCertPath?: string;
  caKeyPath?: string;
  tlsCertPath?: string;
  tlsKeyPath?: string;
  logger?: Logger | false;
  rateLimits?: ServiceOptions['rateLimits'];
  codeTtlSeconds?: number;
  certValidityDays?: number;
  /** How often an auto-created TLS server certificate is checked for renewal (default 12 h). */
  tlsCheckIntervalMs?: number;
  /** People sign-in (OIDC → person certificates) and the /join/ page: see ServiceOptions. */
  people?: ServiceOptions['people'];
  web?: ServiceOptions['web'];
  /** The IT console at /console/ and its sign-in: see ServiceOptions. */
  console?: ServiceOptions['console'];
  /** Alert delivery (SMTP for e-mail targets): see ServiceOptions. */
  alerts?: ServiceOptions['alerts'];
  /** Host a TUF repository of software updates at /updates/: see ServiceOptions. */
  updates?: ServiceOptions['updates'];
}

export interface RunningService {
  app: FastifyInstance;
  store: ProvisioningStore;
  ca: CertificateAuthority;
  /** The TLS the service presents; caPem/caPath/caSha256 are set when the service made its own CA. */
  tls: ServiceTls;
  url: string;
  /** Set when this start created the first admin token (file mode 0600). */
  bootstrapTokenPath?: string;
  close(): Promise<void>;
}

export async function loadOrCreateCa(opts: {
  dataDir: string;
  org: string;
  caCertPath?: string;
  caKeyPath?: string;
}): Promise<CertificateAuthority> {
  if (opts.caCertPath || opts.caKeyPath) {
    if (!opts.caCertPath || !opts.caKeyPath) throw new Error('--ca-cert and --ca-key go together');
    const ca = {
      certPem: await readFile(opts.caCertPath, 'utf8'),
      privateKeyPem: await readFile(opts.caKeyPath, 'utf8'),
    };
    await loadCa(ca); // fails early on a mismatched or non-Ed25519 pair
    return ca;
  }
  const path = join(opts.dataDir, 'ca.json');
  const existing = await readJsonIfExists<CertificateAuthority>(path);
  if (existing) return existing;
  const ca = await createCertificateAuthority({
    commonName: `${opts.org} Sealroom device CA`,
    org: opts.org,
    validityDays: 3650,
  });
  await writeFileAtomic(path, JSON.stringify(ca), 0o600);
  await writeFileAtomic(join(opts.dataDir, 'ca.pem'), ca.certPem, 0o644);
  return ca;
}

/** Creates the first admin token when there is none, and writes it to <dataDir>/admin-token (0600). */
export async function ensureBootstrapToken(
  store: ProvisioningStore,
  dataDir: string,
): Promise<string | undefined> {
  if ((await store.countTokens()) > 0) return undefined;
  const token = generateAdminToken();
  await store.createToken({
    id: randomBytes(8).toString('hex'),
    name: 'bootstrap',
    tokenHash: hashAdminToken(token),
    scope: 'admin',
    actor: 'system',
    now: new Date().toISOString(),
  });
  const path = join(dataDir, 'admin-token');
  await writeFileAtomic(path, `${token}\n`, 0o600);
  return path;
}

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** The service TLS CA lives ten years; the server certificate 397 days, re-issued 30 days before. */
export const TLS_CA_VALIDITY_DAYS = 3650;
export const TLS_SERVER_VALIDITY_DAYS = 397;
export const TLS_RENEW_BEFORE_DAYS = 30;

export interface ServiceTls {
  /** PEM chain the server presents: server certificate, then the service TLS CA. */
  cert: string;
  key: string;
  /** The CA devices pin (PEM) — <dataDir>/tls/ca.pem when auto-created. */
  caPem?: string;
  caPath?: string;
  /** SHA-256 of the CA certificate (DER), hex: what an integrator sets as SEALROOM_PROVISIONING_CA_SHA256. */
  caSha256?: string;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return (await subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign'])) as CryptoKey;
}

/** The names the server certificate covers: loopback names plus the public URL's host. */
export function serviceTlsNames(publicUrl?: string): string[] {
  const names = ['localhost', '127.0.0.1', '::1'];
  if (publicUrl) {
    const host = new URL(publicUrl).hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (host && !names.includes(host)) names.push(host);
  }
  return names;
}

function sanNames(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .map((e) => e.replace(/^(DNS|IP Address):/, '').toLowerCase())
    .filter(Boolean);
}

/**
 * Loads or creates <dataDir>/tls/: ca.pem + ca-key.pem (0600), server.pem (chain) + server-key.pem
 * (0600). The CA is made once and kept (devices pin it); the server certificate is re-issued when it
 * is within TLS_RENEW_BEFORE_DAYS of expiry, or when the names it must cover changed.
 */
export async function loadOrCreateServiceTls(opts: {
  dataDir: string;
  org: string;
  publicUrl?: string;
  now?: Date;
}): Promise<ServiceTls> {
  const dir = join(opts.dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const now = opts.now ?? new Date();
  const paths = {
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    server: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
  };
  let caPem = await readTextIfExists(paths.ca);
  let caKeyPem = await readTextIfExists(paths.caKey);
  if (caPem && !caKeyPem)
    throw new Error(
      `${paths.caKey} is missing but ${paths.ca} exists: devices have pinned that CA, so a new one would lock them out; restore the key (or remove ca.pem deliberately)`,
    );
  if (!caPem || !caKeyPem) {
    // Nothing was served with a half-written CA (the CA certificate is written last): start over.
    const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
    const notBefore = new Date(now.getTime() - 60_000);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomBytes(16).toString('hex').replace(/^./, '4'),
      name: [{ CN: [`${opts.org} Sealroom provisioning TLS CA`] }, { O: [opts.org] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + TLS_CA_VALIDITY_DAYS * DAY_MS),
      keys,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    caKeyPem = await exportKeyPem(keys.privateKey);
    caPem = cert.toString('pem');
    await writeFileAtomic(paths.caKey, caKeyPem, 0o600);
    await writeFileAtomic(paths.server, '', 0o644); // any old server certificate is void now
    await writeFileAtomic(paths.ca, caPem, 0o644);
  }
  const caCert = new X509Certificate(caPem);
  const names = serviceTlsNames(opts.publicUrl);
  let serverPem = await readTextIfExists(paths.server);
  let serverKeyPem = await readTextIfExists(paths.serverKey);
  const current = (() => {
    try {
      return serverPem ? new X509Certificate(serverPem) : undefined;
    } catch {
      return undefined;
    }
  })();
  const fresh =
    current &&
    serverKeyPem &&
    current.checkIssued(caCert) &&
    current.verify(caCert.publicKey) &&
    Date.parse(current.validTo) - now.getTime() > TLS_RENEW_BEFORE_DAYS * DAY_MS &&
    names.every((n) => sanNames(current).includes(n === '::1' ? '0:0:0:0:0:0:0:1' : n));
  if (!fresh) {
    const keys = (await subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
    const caX = new x509.X509Certificate(caPem);
    const notBefore = new Date(now.getTime() - 60_000);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(16).toString('hex').replace(/^./, '4'),
      subject: [{ CN: [names[names.length - 1] ?? 'localhost'] }, { O: [opts.org] }],
      issuer: caX.subjectName,
      notBefore,
      notAfter: new Date(notBefore.getTime() + TLS_SERVER_VALIDITY_DAYS * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: await importKeyPem(caKeyPem),
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(
          names.map((n) =>
            isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n },
          ),
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(caX),
      ],
    });
    serverKeyPem = await exportKeyPem(keys.privateKey);
    serverPem = `${cert.toString('pem')}\n${caPem}`;
    await writeFileAtomic(paths.serverKey, serverKeyPem, 0o600);
    await writeFileAtomic(paths.server, serverPem, 0o644);
  }
  return {
    cert: serverPem!,
    key: serverKeyPem!,
    caPem,
    caPath: paths.ca,
    caSha256: createHash('sha256').update(caCert.raw).digest('hex'),
  };
}

export async function startProvisioningService(opts: ServeOptions): Promise<RunningService> {
  const logger = opts.logger === undefined ? createLogger('provisioning') : opts.logger;
  const ca = await loadOrCreateCa(opts);
  const store = await openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  try {
    const bootstrapTokenPath = await ensureBootstrapToken(store, opts.dataDir);
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port ?? 8443;
    if (!!opts.tlsCertPath !== !!opts.tlsKeyPath) throw new Error('--tls-cert and --tls-key go together');
    const tls: ServiceTls =
      opts.tlsCertPath && opts.tlsKeyPath
        ? { cert: await readFile(opts.tlsCertPath, 'utf8'), key: await readFile(opts.tlsKeyPath, 'utf8') }
        : await loadOrCreateServiceTls({ dataDir: opts.dataDir, org: opts.org, publicUrl: opts.publicUrl });
    const scheme = 'https';
    const app = await buildService({
      store,
      ca,
      org: opts.org,
      publicUrl: opts.publicUrl ?? `${scheme}://${host}:${port}`,
      logger,
      rateLimits: opts.rateLimits,
      codeTtlSeconds: opts.codeTtlSeconds,
      certValidityDays: opts.certValidityDays,
      https: { cert: tls.cert, key: tls.key },
      ...(opts.people ? { people: opts.people } : {}),
      ...(opts.web ? { web: opts.web } : {}),
      ...(opts.console ? { console: opts.console } : {}),
      ...(opts.alerts ? { alerts: opts.alerts } : {}),
      ...(opts.updates ? { updates: opts.updates } : {}),
    });
    const address = await app.listen({ host, port });
    // A service that runs for months re-issues its own server certificate before it expires and
    // swaps it in without a restart (the CA, which devices pinned, stays).
    let tlsTimer: NodeJS.Timeout | undefined;
    if (!opts.tlsCertPath) {
      tlsTimer = setInterval(
        () => {
          loadOrCreateServiceTls({ dataDir: opts.dataDir, org: opts.org, publicUrl: opts.publicUrl })
            .then((next) => {
              if (next.cert === tls.cert) return;
              (
                app.server as unknown as { setSecureContext(o: { cert: string; key: string }): void }
              ).setSecureContext({
                cert: next.cert,
                key: next.key,
              });
              tls.cert = next.cert;
              tls.key = next.key;
              if (logger) logger.info('provisioning TLS server certificate re-issued');
            })
            .catch((err: Error) => {
              if (logger) logger.warn({ err: err.message }, 'TLS certificate renewal failed');
            });
        },
        opts.tlsCheckIntervalMs ?? 12 * 3600_000,
      );
      tlsTimer.unref();
    }
    const url = opts.publicUrl ?? address.replace('[::1]', 'localhost');
    if (logger)
      logger.info(
        { url, store: store.kind, bootstrapTokenPath, tlsCa: tls.caPath, tlsCaSha256: tls.caSha256 },
        'provisioning service listening',
      );
    return {
      app,
      store,
      ca,
      tls,
      url: url.replace(/\/$/, ''),
      bootstrapTokenPath,
      close: async () => {
        clearInterval(tlsTimer);
        await app.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
