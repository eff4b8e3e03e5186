/**
 * Release bundles: a reproducible `.tar.gz` of the built application (issue 14).
 *
 * Reproducible means: the same input tree gives the same bytes. Entries are written in a fixed order
 * (depth first, names sorted by their UTF-8 bytes), with a fixed mtime (SOURCE_DATE_EPOCH or 0),
 * uid/gid 0, no user or group names, and modes normalised (0755 for directories and executables,
 * 0644 for other files). gzip is written with no file name and mtime 0. The first entry is always
 * `sealroom-release.json`.
 *
 * Extraction is hostile by default: the bundle is verified by TUF before it gets here, but a signed
 * bundle must still not be able to write outside its slot. Absolute paths, `..`, symlinks that
 * leave the tree, writing through a symlink, duplicates, device files, FIFOs, hard links and entries
 * over a size cap are refused.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type Dirent } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { addonArchProblem, readHead } from './elf-arch.js';

export const MANIFEST_NAME = 'sealroom-release.json';
export const ARCHES = ['x64', 'arm64'] as const;
export type Arch = (typeof ARCHES)[number];

export interface ReleaseManifest {
  name: 'sealroom';
  version: string;
  arch: Arch;
  node: string;
  /** Number of non-directory entries (regular files and symlinks) after the manifest. */
  files: number;
}

export class BundleError extends Error {
  constructor(
    readonly code:
      | 'path'
      | 'symlink'
      | 'type'
      | 'size'
      | 'manifest'
      | 'duplicate'
      | 'count'
      | 'dest'
      | 'source'
      | 'format'
      | 'arch',
    message: string,
  ) {
    super(message);
    this.name = 'BundleError';
  }
}

const MANIFEST_MAX_BYTES = 64 * 1024;
const DEFAULT_MAX_ENTRY_BYTES = 512 * 1024 * 1024;
const DEFAULT_MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 250_000;
const MAX_PATH_BYTES = 4096;

// ---------------------------------------------------------------------------------------------
// semver (the subset releases use: MAJOR.MINOR.PATCH[-prerelease][+build])

const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export function isSemver(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 128 && SEMVER_RE.test(v);
}

/** Semver precedence: <0, 0, >0. Build metadata is ignored. Throws on an invalid version. */
export function compareSemver(a: string, b: string): number {
  const ma = SEMVER_RE.exec(a);
  const mb = SEMVER_RE.exec(b);
  if (!ma || !mb) throw new BundleError('manifest', `not a semver version: ${!ma ? a : b}`);
  for (let i = 1; i <= 3; i++) {
    const d = BigInt(ma[i]!) - BigInt(mb[i]!);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  const pa = ma[4];
  const pb = mb[4];
  if (pa === undefined && pb === undefined) return 0;
  if (pa === undefined) return 1;
  if (pb === undefined) return -1;
  const ia = pa.split('.');
  const ib = pb.split('.');
  for (let i = 0; i < Math.max(ia.length, ib.length); i++) {
    const x = ia[i];
    const y = ib[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const xn = /^\d+$/.test(x);
    const yn = /^\d+$/.test(y);
    if (xn && yn) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (xn !== yn) {
      return xn ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// paths

/** Checks a tar entry name (directory names without their trailing slash). */
function checkEntryName(name: string): void {
  if (name.length === 0) throw new BundleError('path', 'empty entry name');
  if (Buffer.byteLength(name) > MAX_PATH_BYTES) throw new BundleError('path', 'entry name too long');
  if (name.includes('\0') || name.includes('\\')) throw new BundleError('path', `bad character in ${name}`);
  if (name.startsWith('/')) throw new BundleError('path', `absolute path refused: ${name}`);
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') throw new BundleError('path', `path refused: ${name}`);
    if (Buffer.byteLength(seg) > 255) throw new BundleError('path', `path segment too long in ${name}`);
  }
}

/**
 * A symlink may only be relative, already normalised (so `..` can appear only as leading segments,
 * which the kernel resolves from the link's own real directory) and resolve inside the tree.
 */
function checkSymlink(name: string, target: string): void {
  if (!target || target.includes('\0') || target.includes('\\')) {
    throw new BundleError('symlink', `bad symlink target for ${name}`);
  }
  if (target.startsWith('/'))
    throw new BundleError('symlink', `absolute symlink refused: ${name} -> ${target}`);
  if (path.posix.normalize(target) !== target || target.endsWith('/')) {
    throw new BundleError('symlink', `symlink target not normalised: ${name} -> ${target}`);
  }
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(name), target));
  if (resolved === '..' || resolved.startsWith('../') || path.posix.isAbsolute(resolved)) {
    throw new BundleError('symlink', `symlink leaves the bundle: ${name} -> ${target}`);
  }
}

function normaliseMode(kind: 'file' | 'directory', mode: number): number {
  if (kind === 'directory') return 0o755;
  return mode & 0o111 ? 0o755 : 0o644;
}

function validateManifest(raw: unknown): ReleaseManifest {
  if (typeof raw !== 'object' || raw === null) throw new BundleError('manifest', 'manifest is not an object');
  const m = raw as Record<string, unknown>;
  if (m.name !== 'sealroom') throw new BundleError('manifest', 'manifest name is not sealroom');
  if (!isSemver(m.version)) throw new BundleError('manifest', 'manifest version is not semver');
  if (!ARCHES.includes(m.arch as Arch)) throw new BundleError('manifest', 'manifest arch is not x64|arm64');
  if (typeof m.node !== 'string' || m.node.length > 64) throw new BundleError('manifest', 'manifest node');
  if (typeof m.files !== 'number' || !Number.isSafeInteger(m.files) || m.files < 0) {
    throw new BundleError('manifest', 'manifest files count');
  }
  return { name: 'sealroom', version: m.version, arch: m.arch as Arch, node: m.node, files: m.files };
}

function manifestBytes(m: ReleaseManifest): Buffer {
  // Fixed key order: reproducible.
  const ordered = { name: m.name, version: m.version, arch: m.arch, node: m.node, files: m.files };
  return Buffer.from(`${JSON.stringify(ordered, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// build

interface SourceEntry {
  rel: string;
  abs: string;
  kind: 'file' | 'directory' | 'symlink';
  mode: number;
  size: number;
  linkname?: string;
}

const byteOrder = (a: Dirent, b: Dirent): number => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));

async function walk(root: string): Promise<SourceEntry[]> {
  const out: SourceEntry[] = [];
  const visit = async (relDir: string): Promise<void> => {
    const dirents = (await readdir(path.join(root, relDir), { withFileTypes: true })).sort(byteOrder);
    for (const d of dirents) {
      const rel = relDir ? `${relDir}/${d.name}` : d.name;
      const abs = path.join(root, rel);
      checkEntryName(rel);
      if (rel === MANIFEST_NAME) throw new BundleError('source', `${MANIFEST_NAME} is reserved`);
      const st = await lstat(abs);
      if (st.isSymbolicLink()) {
        const linkname = await readlink(abs);
        checkSymlink(rel, linkname);
        out.push({ rel, abs, kind: 'symlink', mode: 0o777, size: 0, linkname });
      } else if (st.isDirectory()) {
        out.push({ rel, abs, kind: 'directory', mode: 0o755, size: 0 });
        await visit(rel);
      } else if (st.isFile()) {
        out.push({ rel, abs, kind: 'file', mode: normaliseMode('file', st.mode), size: st.size });
      } else {
        throw new BundleError('type', `unsupported file type in source: ${rel}`);
      }
    }
  };
  await visit('');
  return out;
}

function hashingTap(hash: ReturnType<typeof createHash>, counter?: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      if (counter) counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

export function sourceDateEpochFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw))
    throw new BundleError('source', 'SOURCE_DATE_EPOCH must be a whole number of seconds');
  return Number(raw);
}

/**
 * Builds `outFile` (written to a temp file, fsynced, then renamed) from the staged application tree
 * `sourceDir` (package.json, dist/…, pipelines/…, production node_modules/…).
 */
export async function buildBundle(opts: {
  sourceDir: string;
  outFile: string;
  version: string;
  arch: Arch;
  sourceDateEpoch?: number;
}): Promise<{ sha256: string; bytes: number; tarSha256: string; files: number }> {
  if (!isSemver(opts.version)) throw new BundleError('manifest', `version is not semver: ${opts.version}`);
  if (!ARCHES.includes(opts.arch)) throw new BundleError('manifest', `arch must be x64|arm64: ${opts.arch}`);
  const epoch = opts.sourceDateEpoch ?? sourceDateEpochFromEnv();
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new BundleError('source', 'bad sourceDateEpoch');
  const mtime = new Date(epoch * 1000);
  const entries = await walk(path.resolve(opts.sourceDir));
  const files = entries.filter((e) => e.kind !== 'directory').length;
  // Every native addon must be for the bundle's arch: a wrong one fails only on the box, at require.
  const wrongArch: string[] = [];
  for (const e of entries) {
    if (e.kind !== 'file' || !e.rel.endsWith('.node')) continue;
    const problem = addonArchProblem(await readHead(e.abs), opts.arch);
    if (problem) wrongArch.push(`${e.rel}: ${problem}`);
  }
  if (wrongArch.length > 0) {
    throw new BundleError(
      'arch',
      `${wrongArch.length} native addon(s) not for linux-${opts.arch}: ${wrongArch.slice(0, 5).join('; ')}${wrongArch.length > 5 ? '; …' : ''}`,
    );
  }
  const manifest: ReleaseManifest = {
    name: 'sealroom',
    version: opts.version,
    arch: opts.arch,
    node: '>=20',
    files,
  };

  const base = { uid: 0, gid: 0, uname: '', gname: '', mtime };
  const pack = tar.pack();
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const counter = { n: 0 };
  const tmp = `${opts.outFile}.tmp-${process.pid}`;
  const out = createWriteStream(tmp, { mode: 0o644 });
  const done = pipeline(
    pack as unknown as Readable,
    hashingTap(tarHash),
    createGzip({ level: 9, memLevel: 9 }),
    hashingTap(gzHash, counter),
    out,
  );
  const addEntries = async (): Promise<void> => {
    const addBuffer = (header: HeaderArg, data?: Buffer): Promise<void> =>
      new Promise((resolve, reject) => {
        pack.entry(header, data as Buffer, (err) => (err ? reject(err) : resolve()));
      });
    await addBuffer({ ...base, name: MANIFEST_NAME, type: 'file', mode: 0o644 }, manifestBytes(manifest));
    for (const e of entries) {
      if (e.kind === 'directory') {
        await addBuffer({ ...base, name: e.rel, type: 'directory', mode: 0o755, size: 0 });
      } else if (e.kind === 'symlink') {
        await addBuffer({
          ...base,
          name: e.rel,
          type: 'symlink',
          mode: 0o777,
          size: 0,
          linkname: e.linkname!,
        });
      } else {
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry(
            { ...base, name: e.rel, type: 'file', mode: e.mode, size: e.size },
            (err) => (err ? reject(err) : resolve()),
          );
          const src = createReadStream(e.abs);
          src.on('error', (err) => {
            sink.destroy(err);
            reject(err);
          });
          src.pipe(sink);
        });
      }
    }
    pack.finalize();
  };
  try {
    await Promise.all([
      addEntries().catch((err) => {
        pack.destroy(err);
        throw err;
      }),
      done,
    ]);
    const fh = await open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, opts.outFile);
    await fsyncDir(path.dirname(path.resolve(opts.outFile)));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { sha256: gzHash.digest('hex'), bytes: counter.n, tarSha256: tarHash.digest('hex'), files };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// extract

export interface ExtractOptions {
  fsync: boolean;
  onProgress?: (p: { readBytes: number; totalBytes: number; entries: number }) => void;
  maxEntryBytes?: number;
  maxTotalBytes?: number;
  maxEntries?: number;
  /** Refuse the bundle unless its manifest says exactly this. */
  expect?: { version?: string; arch?: Arch };
}

type TarEntry = tar.ExtractEvents['entry'][1];
type HeaderArg = Partial<tar.Header> & { name: string };

async function readAll(entry: TarEntry, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const raw of entry) {
    const chunk = raw as Buffer;
    n += chunk.length;
    if (n > max) throw new BundleError('size', 'entry larger than allowed');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Opens the bundle and iterates over its entries; `visit` must consume or drain each entry. */
async function iterateBundle(
  file: string,
  visit: (entry: TarEntry, index: number) => Promise<'continue' | 'stop'>,
  onRead?: (readBytes: number) => void,
): Promise<void> {
  const src = createReadStream(file);
  let readBytes = 0;
  src.on('data', (chunk) => {
    readBytes += chunk.length;
    onRead?.(readBytes);
  });
  const gunzip = createGunzip();
  const ex = tar.extract();
  const piping = pipeline(src, gunzip, ex as unknown as NodeJS.WritableStream).catch((err: unknown) => err);
  let index = 0;
  let failure: unknown;
  try {
    for await (const entry of ex) {
      const r = await visit(entry, index++);
      if (r === 'stop') break;
    }
  } catch (err) {
    failure = err;
  } finally {
    src.destroy();
    ex.destroy();
  }
  const pipeErr = await piping;
  if (failure) throw failure;
  if (pipeErr && index === 0) {
    throw new BundleError('format', `not a readable bundle: ${(pipeErr as Error).message ?? pipeErr}`);
  }
}

/** Reads only the manifest (the first entry). */
export async function readBundleManifest(file: string): Promise<ReleaseManifest> {
  let manifest: ReleaseManifest | undefined;
  await iterateBundle(file, async (entry, i) => {
    if (i !== 0) return 'stop';
    const h = entry.header;
    if (h.name !== MANIFEST_NAME || h.type !== 'file') {
      throw new BundleError('manifest', `first entry must be ${MANIFEST_NAME}`);
    }
    if ((h.size ?? 0) > MANIFEST_MAX_BYTES) throw new BundleError('size', 'manifest too large');
    manifest = validateManifest(JSON.parse((await readAll(entry, MANIFEST_MAX_BYTES)).toString('utf8')));
    return 'stop';
  });
  if (!manifest) throw new BundleError('manifest', 'empty bundle');
  return manifest;
}

/**
 * Extracts a bundle into `destDir` (which must be missing or empty). On error the directory is left
 * partial: the caller discards it.
 */
export async function extractBundle(
  file: string,
  destDir: string,
  opts: ExtractOptions,
): Promise<ReleaseManifest> {
  const maxEntryBytes = opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES;
  const maxTotalBytes = opts.maxTotalBytes ?? DEFAULT_MAX_TOTAL_BYTES;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const root = path.resolve(destDir);
  await mkdir(root, { recursive: true });
  if ((await readdir(root)).length > 0) throw new BundleError('dest', `destination not empty: ${root}`);
  const totalBytes = (await stat(file)).size;

  let manifest: ReleaseManifest | undefined;
  let nonDirs = 0;
  let total = 0;
  let entries = 0;
  let readBytes = 0;
  const dirs = new Set<string>(['']);
  const nonDirPaths = new Set<string>();
  const progress = (): void => opts.onProgress?.({ readBytes, totalBytes, entries });

  const ensureParents = async (rel: string): Promise<void> => {
    const segs = rel.split('/');
    let cur = '';
    for (let i = 0; i < segs.length - 1; i++) {
      cur = cur ? `${cur}/${segs[i]}` : segs[i]!;
      if (dirs.has(cur)) continue;
      if (nonDirPaths.has(cur))
        throw new BundleError('symlink', `entry written through a non-directory: ${rel}`);
      await mkdir(path.join(root, cur), { mode: 0o755 });
      dirs.add(cur);
    }
  };

  await iterateBundle(
    file,
    async (entry, i) => {
      const h = entry.header;
      entries++;
      if (entries > maxEntries + 1) throw new BundleError('size', 'too many entries');
      if (i === 0) {
        if (h.name !== MANIFEST_NAME || h.type !== 'file') {
          throw new BundleError('manifest', `first entry must be ${MANIFEST_NAME}`);
        }
        if ((h.size ?? 0) > MANIFEST_MAX_BYTES) throw new BundleError('size', 'manifest too large');
        const bytes = await readAll(entry, MANIFEST_MAX_BYTES);
        let parsed: unknown;
        try {
          parsed = JSON.parse(bytes.toString('utf8'));
        } catch {
          throw new BundleError('manifest', 'manifest is not JSON');
        }
        manifest = validateManifest(parsed);
        if (opts.expect?.version !== undefined && manifest.version !== opts.expect.version) {
          throw new BundleError('manifest', `bundle is ${manifest.version}, expected ${opts.expect.version}`);
        }
        if (opts.expect?.arch !== undefined && manifest.arch !== opts.expect.arch) {
          throw new BundleError('manifest', `bundle is for ${manifest.arch}, expected ${opts.expect.arch}`);
        }
        await writeFileEntry(path.join(root, MANIFEST_NAME), bytes, 0o644, opts.fsync);
        nonDirPaths.add(MANIFEST_NAME);
        progress();
        return 'continue';
      }
      const type = h.type;
      const name = type === 'directory' ? h.name.replace(/\/+$/, '') : h.name;
      checkEntryName(name);
      const size = h.size ?? 0;
      if (size > maxEntryBytes)
        throw new BundleError('size', `entry over the size cap: ${name} (${size} bytes)`);
      total += size;
      if (total > maxTotalBytes) throw new BundleError('size', 'bundle over the total size cap');
      if (dirs.has(name) || nonDirPaths.has(name)) {
        if (type === 'directory' && dirs.has(name)) {
          entry.resume();
          return 'continue';
        }
        throw new BundleError('duplicate', `duplicate entry: ${name}`);
      }
      await ensureParents(name);
      const abs = path.join(root, name);
      if (type === 'directory') {
        await mkdir(abs, { mode: 0o755 });
        dirs.add(name);
        entry.resume();
      } else if (type === 'symlink') {
        const target = h.linkname ?? '';
        checkSymlink(name, target);
        await symlink(target, abs);
        nonDirPaths.add(name);
        nonDirs++;
        entry.resume();
      } else if (type === 'file') {
        await streamFileEntry(
          entry,
          abs,
          normaliseMode('file', h.mode ?? 0o644),
          size,
          maxEntryBytes,
          opts.fsync,
        );
        nonDirPaths.add(name);
        nonDirs++;
      } else {
        throw new BundleError('type', `entry type refused: ${name} (${type})`);
      }
      progress();
      return 'continue';
    },
    (n) => {
      readBytes = n;
    },
  );
  if (!manifest) throw new BundleError('manifest', 'empty bundle');
  if (nonDirs !== manifest.files) {
    throw new BundleError('count', `bundle has ${nonDirs} files, manifest says ${manifest.files}`);
  }
  if (opts.fsync) {
    const ordered = [...dirs].sort((a, b) => b.split('/').length - a.split('/').length);
    for (const d of ordered) await fsyncDir(path.join(root, d));
    await fsyncDir(path.dirname(root));
  }
  readBytes = totalBytes;
  progress();
  return manifest;
}

async function writeFileEntry(abs: string, data: Buffer, mode: number, fsync: boolean): Promise<void> {
  const fh = await open(abs, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
}

async function streamFileEntry(
  entry: TarEntry,
  abs: string,
  mode: number,
  size: number,
  max: number,
  fsync: boolean,
): Promise<void> {
  // 'wx' = O_CREAT|O_EXCL: never follows a symlink and never overwrites.
  const fh = await open(abs, 'wx', mode);
  try {
    let n = 0;
    for await (const raw of entry) {
      const chunk = raw as Buffer;
      n += chunk.length;
      if (n > max) throw new BundleError('size', `entry over the size cap: ${abs}`);
      await fh.write(chunk);
    }
    if (n !== size) throw new BundleError('format', `short entry: ${abs}`);
    await fh.chmod(mode);
    if (fsync) await fh.sync();
  } finally {
    await fh.close();
  }
}
