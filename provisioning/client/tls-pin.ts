// Pinning the provisioning service's TLS CA on the device. At first enrollment the device connects,
// takes the root of the chain the service presents (the service sends its CA: serve.ts), checks that
// it really validates the service's certificate for this host name and — when an integrator set one
// (SEALROOM_PROVISIONING_CA_SHA256 in /etc/default/sealroom, or --provisioning-ca-sha256) — that its
// SHA-256 fingerprint matches; then saves it as <stateDir>/provisioning-ca.pem. From then on every
// device call goes through createPinnedFetch(pinned) and the saved CA is never replaced: a network
// attacker presenting any other certificate, publicly trusted or not, is refused.
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { connect, type DetailedPeerCertificate, type PeerCertificate } from 'node:tls';
import { readTextIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';

export const PROVISIONING_CA_FILE = 'provisioning-ca.pem';
/** The environment variable (set in /etc/default/sealroom) holding the expected CA fingerprint. */
export const PROVISIONING_CA_SHA256_ENV = 'SEALROOM_PROVISIONING_CA_SHA256';

export class TlsPinError extends Error {
  override readonly name = 'TlsPinError';
}

/** Accepts `ab:cd:…` or `abcd…` in any case; returns 64 lowercase hex digits. */
export function normalizeSha256(fingerprint: string): string {
  const hex = fingerprint.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new TlsPinError('a SHA-256 fingerprint is 64 hex digits');
  return hex;
}

/** SHA-256 of the certificate's DER, lowercase hex (what `openssl x509 -fingerprint -sha256` prints). */
export function certificateSha256(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

function target(url: string): { host: string; port: number; servername?: string } {
  const u = new URL(url);
  if (u.protocol !== 'https:')
    throw new TlsPinError(`the provisioning service must be reached over https (got ${u.protocol}//)`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return { host, port: Number(u.port || 443), ...(isIP(host) ? {} : { servername: host }) };
}

/** Connects without trusting anything and returns the chain the server presented, leaf first. */
async function presentedChain(url: string, timeoutMs: number): Promise<X509Certificate[]> {
  const t = target(url);
  const peer = await new Promise<DetailedPeerCertificate>((resolve, reject) => {
    const socket = connect({ ...t, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    socket.setTimeout(timeoutMs, () => socket.destroy(new TlsPinError('TLS handshake timed out')));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true);
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
  });
  const chain: X509Certificate[] = [];
  let cur: PeerCertificate | DetailedPeerCertificate | undefined = peer;
  while (cur?.raw && chain.length < 8) {
    chain.push(new X509Certificate(cur.raw));
    const next: DetailedPeerCertificate | undefined = (cur as DetailedPeerCertificate).issuerCertificate;
    if (!next || next === cur || next.raw?.equals(cur.raw)) break;
    cur = next;
  }
  if (chain.length === 0) throw new TlsPinError('the provisioning service presented no certificate');
  return chain;
}

/** A full TLS handshake trusting only caPem, with host name checks; throws if it does not validate. */
async function handshakeWith(url: string, caPem: string, timeoutMs: number): Promise<void> {
  const t = target(url);
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ ...t, ca: caPem, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
    socket.setTimeout(timeoutMs, () => socket.destroy(new TlsPinError('TLS handshake timed out')));
    socket.once('secureConnect', () => {
      socket.end();
      resolve();
    });
    socket.once('error', reject);
  });
}

export interface PinServiceCaOptions {
  stateDir: string;
  /** The provisioning service's https:// base URL. */
  url: string;
  /** SHA-256 of the service TLS CA (DER), hex with or without colons. */
  expectedSha256?: string;
  timeoutMs?: number;
}

/**
 * Returns the pinned service TLS CA (PEM): the saved one, or — on first use — the root the service
 * presents, once it validates the service's certificate (and matches expectedSha256 when set).
 */
export async function pinServiceCa(opts: PinServiceCaOptions): Promise<string> {
  const path = join(opts.stateDir, PROVISIONING_CA_FILE);
  const expected = opts.expectedSha256 ? normalizeSha256(opts.expectedSha256) : undefined;
  const saved = await readTextIfExists(path);
  if (saved) {
    let fingerprint: string;
    try {
      fingerprint = certificateSha256(saved);
    } catch {
      throw new TlsPinError(
        `${path} is not a PEM certificate; the pinned CA is never replaced automatically`,
      );
    }
    if (expected && fingerprint !== expected)
      throw new TlsPinError(
        `the pinned provisioning CA (${path}, SHA-256 ${fingerprint}) does not match the configured fingerprint ${expected}`,
      );
    return saved;
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const chain = await presentedChain(opts.url, timeoutMs);
  const root = chain[chain.length - 1]!;
  if (!root.checkIssued(root) || !root.verify(root.publicKey))
    throw new TlsPinError(
      'the provisioning service did not present its CA certificate (a self-signed root) in its TLS chain; ' +
        'serve the full chain including the CA',
    );
  if (!root.ca) throw new TlsPinError('the root the provisioning service presented is not a CA certificate');
  const fingerprint = createHash('sha256').update(root.raw).digest('hex');
  if (expected && fingerprint !== expected)
    throw new TlsPinError(
      `the provisioning service's TLS CA has SHA-256 ${fingerprint}, not the configured ${expected}: refusing to enroll`,
    );
  const pem = root.toString();
  await handshakeWith(opts.url, pem, timeoutMs).catch((err: Error) => {
    throw new TlsPinError(
      `the CA the provisioning service presented does not validate its certificate: ${err.message}`,
    );
  });
  // Never replace: another caller may have pinned meanwhile; the file that exists wins.
  const again = await readTextIfExists(path);
  if (again) return pinServiceCa(opts);
  await writeFileAtomic(path, pem, 0o644);
  return pem;
}
