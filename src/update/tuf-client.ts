/**
 * The device side of signed releases (issue 14): finds the newest release of a channel with the
 * tuf-js client and downloads it resumably, verifying it against the signed TUF metadata.
 *
 * What the TUF client guarantees (tuf-js 5, the TUF spec's client workflow): root N+1 is accepted
 * only if signed by a threshold of root N's keys and of its own; timestamp, snapshot and targets
 * must be signed by a threshold of the keys root names for them; none of them may be expired
 * (freeze); none may go back in version (rollback of timestamp, snapshot or targets); the snapshot
 * and targets files must match the hashes and lengths their parent signed; the bundle must match the
 * length and sha256 in targets. On top of that, `check` never offers a version older than or equal to
 * the running one, and a target path must agree with its signed custom fields.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Metadata, MetadataKind, type TargetFile } from '@tufjs/models';
import { LengthOrHashMismatchError, UnsignedMetadataError } from '@tufjs/models/dist/error.js';
import { BaseFetcher, Updater } from 'tuf-js';
import {
  BadVersionError,
  DownloadHTTPError,
  DownloadLengthMismatchError,
  ExpiredMetadataError,
} from 'tuf-js/dist/error.js';
import { fsyncPath, writeFileAtomic } from '../util/atomic-file.js';
import { ARCHES, type Arch, compareSemver, isSemver } from './bundle.js';

export interface ReleaseTarget {
  version: string;
  targetPath: string;
  length: number;
  sha256: string;
}

export type UpdateErrorReason =
  | 'signature'
  | 'expired'
  | 'rollback'
  | 'hash'
  | 'length'
  | 'metadata'
  | 'network'
  | 'aborted';

/** Any failure of check/download. `retryable` failures (network) keep a partial download. */
export class UpdateError extends Error {
  constructor(
    readonly reason: UpdateErrorReason,
    message: string,
    readonly retryable = false,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpdateError';
  }
}

/** A security refusal: the repository or the network tried to give us something we must not install. */
export class UpdateRefusedError extends UpdateError {
  constructor(reason: UpdateErrorReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, false, options);
    this.name = 'UpdateRefusedError';
  }
}

function classify(err: unknown): UpdateError {
  if (err instanceof UpdateError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const cause = { cause: err };
  if (err instanceof DownloadHTTPError)
    return new UpdateError('network', `HTTP ${err.statusCode}: ${msg}`, true, cause);
  if (err instanceof DownloadLengthMismatchError) return new UpdateRefusedError('length', msg, cause);
  if (err instanceof ExpiredMetadataError || /expired/i.test(msg))
    return new UpdateRefusedError('expired', msg, cause);
  if (err instanceof BadVersionError || /version/i.test(msg))
    return new UpdateRefusedError('rollback', msg, cause);
  if (err instanceof UnsignedMetadataError || /signed by|signature/i.test(msg)) {
    return new UpdateRefusedError('signature', msg, cause);
  }
  if (err instanceof LengthOrHashMismatchError || /hash|length/i.test(msg))
    return new UpdateRefusedError('hash', msg, cause);
  if (err instanceof TypeError && /fetch failed/i.test(msg))
    return new UpdateError('network', msg, true, cause);
  if (/ECONNREFUSED|ECONNRESET|socket|network|timeout|aborted/i.test(msg))
    return new UpdateError('network', msg, true, cause);
  return new UpdateRefusedError('metadata', msg, cause);
}

type FetchFn = typeof globalThis.fetch;

/** tuf-js's fetcher on an injectable fetch, with a timeout and no retry (the caller retries). */
class MetadataFetcher extends BaseFetcher {
  constructor(
    private readonly fetchImpl: FetchFn,
    private readonly timeoutMs: number,
  ) {
    super();
  }

  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const res = await this.fetchImpl(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    if (!res.ok || !res.body) {
      await res.body?.cancel().catch(() => {});
      // DownloadHTTPError with 404 is how tuf-js learns there is no newer root.
      throw new DownloadHTTPError('Failed to download', res.status);
    }
    return res.body as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

/** A root that parses and is signed by a threshold of its own root keys; else undefined. */
function selfSignedRoot(bytes: Buffer | string): Metadata<import('@tufjs/models').Root> | undefined {
  try {
    const md = Metadata.fromJSON(MetadataKind.Root, JSON.parse(bytes.toString()));
    md.verifyDelegate('root', md);
    return md;
  } catch {
    return undefined;
  }
}

export interface UpdateClientOptions {
  /** Base URL of the repository's metadata (…/metadata/). */
  metadataUrl: string;
  /** Base URL of the repository's targets (…/targets/). */
  targetsUrl: string;
  /** Device-local state: `cacheDir/metadata/` holds the trusted TUF metadata. */
  cacheDir: string;
  /** The root shipped with the device (used only when no valid cached root exists). */
  trustedRootJson: string | Buffer;
  fetch?: FetchFn;
  /** Per metadata request; default 30 s. */
  metadataTimeoutMs?: number;
  /** A download stalled this long is aborted (and can be resumed); default 60 s. */
  idleTimeoutMs?: number;
}

export interface DownloadOptions {
  onProgress?: (p: { received: number; total: number }) => void;
  signal?: AbortSignal;
  /** Resume attempts after a cut connection within this call; default 3. */
  retries?: number;
}

export class UpdateClient {
  private readonly metadataDir: string;
  private readonly fetchImpl: FetchFn;
  private readonly offered = new Map<string, TargetFile>();
  private rootPrepared = false;

  constructor(private readonly o: UpdateClientOptions) {
    this.metadataDir = path.join(o.cacheDir, 'metadata');
    this.fetchImpl = o.fetch ?? globalThis.fetch;
    if (!selfSignedRoot(o.trustedRootJson))
      throw new UpdateRefusedError('metadata', 'the shipped trusted root is not valid');
  }

  /**
   * Puts a valid root in the metadata cache: the cached one, else the last good copy, else the
   * shipped one (tuf-js then walks the root versions forward from it, each signed by the previous).
   */
  private async prepareRoot(): Promise<void> {
    if (this.rootPrepared) return;
    await mkdir(this.metadataDir, { recursive: true });
    const rootFile = path.join(this.metadataDir, 'root.json');
    const goodFile = path.join(this.metadataDir, 'root.good.json');
    const read = async (f: string): Promise<Buffer | undefined> => readFile(f).catch(() => undefined);
    const cached = await read(rootFile);
    if (!cached || !selfSignedRoot(cached)) {
      const good = await read(goodFile);
      await writeFileAtomic(
        rootFile,
        good && selfSignedRoot(good) ? good : Buffer.from(this.o.trustedRootJson),
        0o644,
      );
    }
    this.rootPrepared = true;
  }

  private async refresh(): Promise<Updater> {
    await this.prepareRoot();
    const updater = new Updater({
      metadataDir: this.metadataDir,
      metadataBaseUrl: this.o.metadataUrl,
      targetBaseUrl: this.o.targetsUrl,
      fetcher: new MetadataFetcher(this.fetchImpl, this.o.metadataTimeoutMs ?? 30_000),
    });
    try {
      await updater.refresh();
    } catch (err) {
      throw classify(err);
    } finally {
      await this.syncMetadata();
    }
    // tuf-js writes metadata without fsync: make what it accepted durable, and keep a copy of the
    // newest accepted root in case a power cut tears root.json in a later write.
    await writeFileAtomic(
      path.join(this.metadataDir, 'root.good.json'),
      await readFile(path.join(this.metadataDir, 'root.json')),
      0o644,
    );
    return updater;
  }

  private async syncMetadata(): Promise<void> {
    try {
      for (const f of await readdir(this.metadataDir)) {
        if (f.endsWith('.json')) await fsyncPath(path.join(this.metadataDir, f)).catch(() => {});
      }
      await fsyncPath(this.metadataDir);
    } catch {
      // best effort
    }
  }

  /** The newest release in `channel` for `arch` strictly newer than `currentVersion`, if any. */
  async check(q: {
    channel: string;
    arch: Arch;
    currentVersion: string;
  }): Promise<ReleaseTarget | undefined> {
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(q.channel))
      throw new UpdateError('metadata', `bad channel: ${q.channel}`);
    if (!ARCHES.includes(q.arch)) throw new UpdateError('metadata', `bad arch: ${q.arch}`);
    if (!isSemver(q.currentVersion))
      throw new UpdateError('metadata', `bad current version: ${q.currentVersion}`);
    const updater = await this.refresh();
    // tuf-js has no "list targets": read the targets it has just verified and persisted, then take
    // each candidate's info back from tuf-js's trusted set (getTargetInfo), never from the file.
    const raw = JSON.parse(readFileSync(path.join(this.metadataDir, 'targets.json'), 'utf8')) as {
      signed?: { targets?: Record<string, unknown> };
    };
    const prefix = `${q.channel}/${q.arch}/sealroom-`;
    const candidates: { version: string; targetPath: string }[] = [];
    for (const targetPath of Object.keys(raw.signed?.targets ?? {})) {
      if (!targetPath.startsWith(prefix) || !targetPath.endsWith('.tar.gz')) continue;
      const version = targetPath.slice(prefix.length, -'.tar.gz'.length);
      if (!isSemver(version) || compareSemver(version, q.currentVersion) <= 0) continue;
      candidates.push({ version, targetPath });
    }
    candidates.sort((a, b) => compareSemver(b.version, a.version));
    for (const c of candidates) {
      let info: TargetFile | undefined;
      try {
        info = await updater.getTargetInfo(c.targetPath);
      } catch (err) {
        throw classify(err);
      }
      if (!info) continue;
      const custom = info.custom as { version?: unknown; channel?: unknown; arch?: unknown };
      const sha256 = info.hashes.sha256;
      if (custom.version !== c.version || custom.channel !== q.channel || custom.arch !== q.arch) continue;
      if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) continue;
      this.offered.set(c.targetPath, info);
      return { version: c.version, targetPath: c.targetPath, length: info.length, sha256 };
    }
    return undefined;
  }

  /** The trusted TargetFile for a target, checked against what the caller holds. */
  private async trustedInfo(target: ReleaseTarget): Promise<TargetFile> {
    let info = this.offered.get(target.targetPath);
    if (!info) {
      const updater = await this.refresh();
      try {
        info = await updater.getTargetInfo(target.targetPath);
      } catch (err) {
        throw classify(err);
      }
    }
    if (!info) throw new UpdateRefusedError('metadata', `${target.targetPath} is not a signed target`);
    if (info.length !== target.length || info.hashes.sha256 !== target.sha256) {
      throw new UpdateRefusedError(
        'metadata',
        `${target.targetPath}: length/hash differ from the signed ones`,
      );
    }
    if ((info.custom as { version?: unknown }).version !== target.version) {
      throw new UpdateRefusedError('metadata', `${target.targetPath}: version differs from the signed one`);
    }
    return info;
  }

  /**
   * Downloads `target` to `destFile`. The bytes go to `destFile.part`; a part left by an earlier
   * cut continues with an HTTP Range request. Before returning, the file is verified by tuf-js's
   * length and hash check, fsynced and renamed into place. A failed verification deletes it.
   */
  async download(target: ReleaseTarget, destFile: string, opts: DownloadOptions = {}): Promise<void> {
    const info = await this.trustedInfo(target);
    const sha256 = info.hashes.sha256!;
    const { dir, base } = path.posix.parse(info.path);
    const url = new URL(
      `${dir ? `${dir}/` : ''}${sha256}.${base}`,
      this.o.targetsUrl.endsWith('/') ? this.o.targetsUrl : `${this.o.targetsUrl}/`,
    );
    const part = `${destFile}.part`;
    await mkdir(path.dirname(path.resolve(destFile)), { recursive: true });
    const retries = opts.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.fetchInto(url, part, info.length, opts);
        break;
      } catch (err) {
        const e = classify(err);
        if (!e.retryable || attempt >= retries || opts.signal?.aborted) {
          if (e instanceof UpdateRefusedError) await rm(part, { force: true });
          throw e;
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
    try {
      await info.verify(createReadStream(part));
    } catch (err) {
      await rm(part, { force: true });
      throw new UpdateRefusedError(
        err instanceof LengthOrHashMismatchError && /length/i.test(String(err)) ? 'length' : 'hash',
        `downloaded bundle does not match its signed metadata: ${(err as Error).message}`,
        { cause: err },
      );
    }
    await rename(part, destFile);
    await fsyncPath(path.dirname(path.resolve(destFile)));
  }

  private async fetchInto(url: URL, part: string, length: number, opts: DownloadOptions): Promise<void> {
    let have = 0;
    try {
      have = (await stat(part)).size;
    } catch {
      have = 0;
    }
    if (have > length) {
      await rm(part, { force: true });
      have = 0;
    }
    if (have === length) return; // complete: verification decides
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    const idleMs = this.o.idleTimeoutMs ?? 60_000;
    let idle = setTimeout(() => ctl.abort(new Error('download stalled (timeout)')), idleMs);
    const bump = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => ctl.abort(new Error('download stalled (timeout)')), idleMs);
    };
    const fh = await open(part, 'a');
    try {
      const headers: Record<string, string> = {};
      if (have > 0) headers.Range = `bytes=${have}-`;
      let res: Response;
      try {
        res = await this.fetchImpl(url, { headers, signal: ctl.signal });
      } catch (err) {
        if (opts.signal?.aborted) throw new UpdateError('aborted', 'download aborted', false, { cause: err });
        throw new UpdateError('network', `download failed: ${(err as Error).message}`, true, { cause: err });
      }
      if (res.status === 206 && have > 0) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
        if (!m || Number(m[1]) !== have) {
          await res.body?.cancel().catch(() => {});
          await fh.truncate(0);
          throw new UpdateError('network', 'server answered another range; starting over', true);
        }
      } else if (res.status === 200) {
        if (have > 0) await fh.truncate(0);
        have = 0;
      } else if (res.status === 416) {
        await res.body?.cancel().catch(() => {});
        await fh.truncate(0);
        throw new UpdateError('network', 'range not satisfiable; starting over', true);
      } else {
        await res.body?.cancel().catch(() => {});
        throw new UpdateError(
          'network',
          `HTTP ${res.status} for ${url.pathname}`,
          res.status >= 500 || res.status === 408,
        );
      }
      if (!res.body) throw new UpdateError('network', 'empty body', true);
      let received = have;
      opts.onProgress?.({ received, total: length });
      const reader = res.body.getReader();
      try {
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await reader.read();
          } catch (err) {
            if (opts.signal?.aborted)
              throw new UpdateError('aborted', 'download aborted', false, { cause: err });
            throw new UpdateError('network', `connection lost at ${received}/${length} bytes`, true, {
              cause: err,
            });
          }
          if (chunk.done) break;
          bump();
          received += chunk.value.length;
          if (received > length) {
            throw new UpdateRefusedError(
              'length',
              `server sent more than the signed length (${length} bytes)`,
            );
          }
          await fh.write(chunk.value);
          opts.onProgress?.({ received, total: length });
        }
      } finally {
        reader.releaseLock();
      }
      if (received < length)
        throw new UpdateError('network', `connection closed at ${received}/${length} bytes`, true);
    } finally {
      clearTimeout(idle);
      opts.signal?.removeEventListener('abort', onAbort);
      // Keep what arrived, durably: a later call resumes from it.
      await fh.sync().catch(() => {});
      await fh.close();
    }
  }
}

/** sha256 of a file (hex), for callers that want to log what they install. */
export async function sha256OfFile(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
