// The log bundle IT asks for with a `collect-logs` action: a .tar.gz of the daemon's recent log lines,
// the journal lines it may read, its state and its enrollment summary. It leaves the box, so it is
// scrubbed (private keys, tokens, activation codes) and capped: the service takes at most 8 MiB.
import { execFile } from 'node:child_process';
import type { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';

/** The service's limit on a bundle (decoded). */
export const MAX_BUNDLE_BYTES = 8 * 1024 * 1024;

export interface BundleFile {
  name: string;
  text: string;
}

/** PEM private keys, bearer/API tokens and webhook secrets, whatever put them in a log line. */
const SECRET_PATTERNS: RegExp[] = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g,
  /\b(srt|whsec|srk)_[A-Za-z0-9_-]{8,}/g,
  /\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
];

/** Removes secrets: the patterns above and every literal in `secrets` (activation code, kiosk token…). */
export function scrubSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const re of SECRET_PATTERNS) out = out.replace(re, '[redacted]');
  for (const s of secrets) {
    if (s.length >= 6) out = out.split(s).join('[redacted]');
  }
  return out;
}

/** One ustar header + content, padded to 512-byte blocks. Names are ASCII, ≤ 99 bytes. */
function tarEntry(name: string, data: Buffer, mtime: number): Buffer {
  const header = Buffer.alloc(512);
  const safe = name.replace(/[^\w.-]/g, '_').slice(0, 99);
  header.write(safe, 0, 'ascii');
  header.write('0000600\0', 100, 'ascii');
  header.write('0000000\0', 108, 'ascii');
  header.write('0000000\0', 116, 'ascii');
  header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  header.write(
    `${Math.floor(mtime / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
    'ascii',
  );
  header.fill(' ', 148, 156); // checksum field counts as spaces while summing
  header.write('0', 156, 'ascii');
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, pad]);
}

/**
 * Scrubs, caps and packs the files into a .tar.gz of at most `maxBytes`. Files are kept whole in
 * order while they fit; the log files (first) lose their OLDEST lines when they do not.
 */
export function buildLogBundle(
  files: BundleFile[],
  opts: { secrets?: readonly string[]; maxBytes?: number; now?: number } = {},
): Buffer {
  const max = opts.maxBytes ?? MAX_BUNDLE_BYTES;
  const now = opts.now ?? Date.now();
  // tar never exceeds this much raw content, so even incompressible data gzips under the cap
  // (gzip adds ~5 bytes per 16 KiB block plus a header).
  let budget = Math.floor(max * 0.98) - 1024 - files.length * 1024;
  const entries: Buffer[] = [];
  for (const f of files) {
    let data = Buffer.from(scrubSecrets(f.text, opts.secrets), 'utf8');
    if (data.length > budget) {
      const marker = Buffer.from('[older lines cut to fit the bundle]\n');
      const keep = Math.max(0, budget - marker.length);
      data = data.subarray(data.length - keep);
      const nl = data.indexOf(10);
      data = Buffer.concat([marker, nl >= 0 ? data.subarray(nl + 1) : data]);
    }
    budget -= data.length;
    entries.push(tarEntry(f.name, data, now));
  }
  entries.push(Buffer.alloc(1024)); // end of archive
  const gz = gzipSync(Buffer.concat(entries), { level: 6 });
  if (gz.length > max) throw new Error(`log bundle is ${gz.length} bytes, over the ${max} byte limit`);
  return gz;
}

/** Lists a tar's files (names and text): for tests and for a technician's script. */
export function readTar(tar: Buffer): BundleFile[] {
  const out: BundleFile[] = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const name = header.subarray(0, 100).toString('ascii').replace(/\0.*$/s, '');
    const size = Number.parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim(), 8);
    out.push({ name, text: tar.subarray(off + 512, off + 512 + size).toString('utf8') });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/**
 * The newest log text a process printed: a byte-bounded ring of its stderr. Installed once per
 * process by `sealroom daemon` (capture()); the journal may not be readable by the daemon's user.
 */
export class LogRing {
  #chunks: string[] = [];
  #size = 0;
  constructor(readonly maxChars = 2 * 1024 * 1024) {}

  push(text: string): void {
    this.#chunks.push(text);
    this.#size += text.length;
    while (this.#size > this.maxChars && this.#chunks.length > 1) {
      this.#size -= this.#chunks.shift()!.length;
    }
    if (this.#size > this.maxChars) {
      const only = this.#chunks[0]!.slice(-this.maxChars);
      this.#chunks = [only];
      this.#size = only.length;
    }
  }

  text(): string {
    return this.#chunks.join('');
  }

  /** Tees a stream's writes (process.stderr) into the ring; returns the undo. */
  capture(stream: NodeJS.WriteStream | Writable): () => void {
    const original = stream.write;
    const ring = this;
    stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      try {
        ring.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      } catch {
        // never let the tee break logging
      }
      return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof stream.write;
    return () => {
      stream.write = original;
    };
  }
}

/**
 * The daemon unit's recent journal lines, when this user may read them (root, group
 * systemd-journal or adm). Bounded in time and size; '' when journalctl is absent or refuses.
 */
export function readJournal(unit = 'sealroom-daemon.service', lines = 5000): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'journalctl',
      ['--no-pager', '-o', 'short-iso', '-n', String(lines), '-u', unit],
      { timeout: 5000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout) => resolve(err ? '' : String(stdout)),
    );
  });
}
