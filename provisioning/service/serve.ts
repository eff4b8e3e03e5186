// Running the service: data directory (SQLite file, CA, bootstrap token), optional PostgreSQL and
// TLS, listen. The org CA is created on first start unless IT brings its own (--ca-cert/--ca-key).
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type CertificateAuthority, createCertificateAuthority, loadCa } from '../../src/pki/index.js';
import { readJsonIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';
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
}

export interface RunningService {
  app: FastifyInstance;
  store: ProvisioningStore;
  ca: CertificateAuthority;
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

export async function startProvisioningService(opts: ServeOptions): Promise<RunningService> {
  const logger = opts.logger === undefined ? createLogger('provisioning') : opts.logger;
  const ca = await loadOrCreateCa(opts);
  const store = await openStore({ dataDir: opts.dataDir, databaseUrl: opts.databaseUrl });
  try {
    const bootstrapTokenPath = await ensureBootstrapToken(store, opts.dataDir);
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port ?? 8443;
    const tls = opts.tlsCertPath && opts.tlsKeyPath;
    const scheme = tls ? 'https' : 'http';
    const app = await buildService({
      store,
      ca,
      org: opts.org,
      publicUrl: opts.publicUrl ?? `${scheme}://${host}:${port}`,
      logger,
      rateLimits: opts.rateLimits,
      codeTtlSeconds: opts.codeTtlSeconds,
      certValidityDays: opts.certValidityDays,
      https: tls
        ? { cert: await readFile(opts.tlsCertPath!, 'utf8'), key: await readFile(opts.tlsKeyPath!, 'utf8') }
        : undefined,
    });
    const address = await app.listen({ host, port });
    const url = opts.publicUrl ?? address.replace('[::1]', 'localhost');
    if (logger) logger.info({ url, store: store.kind, bootstrapTokenPath }, 'provisioning service listening');
    return {
      app,
      store,
      ca,
      url: url.replace(/\/$/, ''),
      bootstrapTokenPath,
      close: async () => {
        await app.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
}
