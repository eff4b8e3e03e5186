import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BundleError,
  MANIFEST_NAME,
  buildBundle,
  compareSemver,
  extractBundle,
  readBundleManifest,
} from '../src/update/bundle.js';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sealroom-bundle-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A small but realistic app tree: package.json, dist, pipelines, node_modules with a .bin symlink. */
async function makeTree(dir: string, opts: { touch?: number } = {}): Promise<void> {
  await mkdir(path.join(dir, 'dist/src/cli'), { recursive: true });
  await mkdir(path.join(dir, 'pipelines'), { recursive: true });
  await mkdir(path.join(dir, 'node_modules/foo/bin'), { recursive: true });
  await mkdir(path.join(dir, 'node_modules/.bin'), { recursive: true });
  await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'sealroom', version: '1.2.3' }));
  await writeFile(path.join(dir, 'dist/src/cli/sealroom.js'), '#!/usr/bin/env node\nconsole.log("1.2.3")\n');
  await chmod(path.join(dir, 'dist/src/cli/sealroom.js'), 0o775);
  await writeFile(path.join(dir, 'pipelines/echo.pipeline'), 'videotestsrc ! fakesink\n');
  await writeFile(path.join(dir, 'node_modules/foo/bin/foo.js'), 'module.exports = 1;\n');
  await writeFile(path.join(dir, 'node_modules/foo/blob.bin'), Buffer.alloc(300_000, 7));
  await symlink('../foo/bin/foo.js', path.join(dir, 'node_modules/.bin/foo'));
  // A long path (> 100 bytes) exercises the ustar prefix / pax encoding.
  const deep = path.join(dir, 'node_modules/foo', 'x'.repeat(60), 'y'.repeat(60), 'z'.repeat(60));
  await mkdir(deep, { recursive: true });
  await writeFile(path.join(deep, `${'w'.repeat(120)}.js`), 'deep\n');
  if (opts.touch !== undefined) {
    const t = new Date(opts.touch * 1000);
    await utimes(path.join(dir, 'package.json'), t, t);
  }
}

type RawEntry = {
  name: string;
  type?: tar.Header['type'];
  data?: Buffer | string;
  linkname?: string;
  size?: number;
  mode?: number;
};

/** Builds a tar.gz by hand, bypassing every check of buildBundle (what an attacker would send). */
async function rawBundle(
  file: string,
  entries: RawEntry[],
  manifest?: Record<string, unknown> | null,
): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((r) => pack.on('end', () => r()));
  const add = (h: Partial<tar.Header> & { name: string }, data?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => pack.entry(h, data as Buffer, (e) => (e ? reject(e) : resolve())));
  const files = entries.filter((e) => (e.type ?? 'file') !== 'directory').length;
  if (manifest !== null) {
    const m = manifest ?? { name: 'sealroom', version: '9.9.9', arch: 'x64', node: '>=20', files };
    await add({ name: MANIFEST_NAME, type: 'file', mode: 0o644 }, Buffer.from(JSON.stringify(m)));
  }
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') {
      await add({ name: e.name, type, mode: e.mode ?? 0o644 }, Buffer.from(e.data ?? ''));
    } else {
      await add({ name: e.name, type, mode: e.mode ?? 0o755, linkname: e.linkname, size: 0 });
    }
  }
  pack.finalize();
  await ended;
  await writeFile(file, gzipSync(Buffer.concat(chunks)));
}

describe('release bundle: reproducible', () => {
  it('same inputs give a byte-identical bundle twice, even from another copy with other mtimes', async () => {
    const a = path.join(work, 'tree-a');
    const b = path.join(work, 'tree-b');
    await makeTree(a);
    await makeTree(b, { touch: 1_700_000_000 });
    const out1 = path.join(work, 'one.tar.gz');
    const out2 = path.join(work, 'two.tar.gz');
    const out3 = path.join(work, 'three.tar.gz');
    const r1 = await buildBundle({
      sourceDir: a,
      outFile: out1,
      version: '1.2.3',
      arch: 'arm64',
      sourceDateEpoch: 1_700_000_000,
    });
    const r2 = await buildBundle({
      sourceDir: a,
      outFile: out2,
      version: '1.2.3',
      arch: 'arm64',
      sourceDateEpoch: 1_700_000_000,
    });
    const r3 = await buildBundle({
      sourceDir: b,
      outFile: out3,
      version: '1.2.3',
      arch: 'arm64',
      sourceDateEpoch: 1_700_000_000,
    });
    const [b1, b2, b3] = await Promise.all([readFile(out1), readFile(out2), readFile(out3)]);
    expect(b1.equals(b2)).toBe(true);
    expect(b1.equals(b3)).toBe(true);
    expect(r1.sha256).toBe(createHash('sha256').update(b1).digest('hex'));
    expect(r1.bytes).toBe(b1.length);
    expect(r2).toEqual(r1);
    expect(r3.sha256).toBe(r1.sha256);
    // gzip header: no name, mtime 0.
    expect(b1[3]! & 0x08).toBe(0);
    expect(b1.readUInt32LE(4)).toBe(0);
    // A different epoch or version gives different bytes.
    const r4 = await buildBundle({
      sourceDir: a,
      outFile: path.join(work, 'four.tar.gz'),
      version: '1.2.3',
      arch: 'arm64',
      sourceDateEpoch: 5,
    });
    expect(r4.sha256).not.toBe(r1.sha256);
  });

  it('has the manifest first, sorted entries, uid/gid 0, fixed mtime and normalised modes', async () => {
    const src = path.join(work, 'tree-hdr');
    await makeTree(src);
    const out = path.join(work, 'hdr.tar.gz');
    const r = await buildBundle({
      sourceDir: src,
      outFile: out,
      version: '2.0.0-rc.1',
      arch: 'x64',
      sourceDateEpoch: 42,
    });
    const headers: tar.Header[] = [];
    const ex = tar.extract();
    const done = new Promise<void>((resolve, reject) => {
      ex.on('entry', (h, s, next) => {
        headers.push(h);
        s.on('end', next);
        s.resume();
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
    });
    ex.end(gunzipSync(await readFile(out)));
    await done;
    expect(headers[0]!.name).toBe(MANIFEST_NAME);
    for (const h of headers) {
      expect(h.uid).toBe(0);
      expect(h.gid).toBe(0);
      expect(h.mtime!.getTime()).toBe(42_000);
      expect(h.uname ?? '').toBe('');
      expect([0o644, 0o755, 0o777]).toContain(h.mode);
    }
    const exe = headers.find((h) => h.name === 'dist/src/cli/sealroom.js')!;
    expect(exe.mode).toBe(0o755);
    expect(headers.find((h) => h.name === 'package.json')!.mode).toBe(0o644);
    const names = headers.slice(1).map((h) => h.name.replace(/\/$/, ''));
    expect(names.indexOf('dist')).toBeLessThan(names.indexOf('dist/src'));
    expect(names.indexOf('node_modules')).toBeLessThan(names.indexOf('package.json'));
    expect(r.files).toBe(headers.filter((h) => h.type !== 'directory').length - 1);
    const m = await readBundleManifest(out);
    expect(m).toEqual({ name: 'sealroom', version: '2.0.0-rc.1', arch: 'x64', node: '>=20', files: r.files });
  });

  it('extracts the tree (symlinks inside kept), fsyncs, reports progress, and checks expect', async () => {
    const src = path.join(work, 'tree-x');
    await makeTree(src);
    const out = path.join(work, 'x.tar.gz');
    await buildBundle({ sourceDir: src, outFile: out, version: '1.2.3', arch: 'x64' });
    const dest = path.join(work, 'slot-x');
    const seen: number[] = [];
    const m = await extractBundle(out, dest, {
      fsync: true,
      onProgress: (p) => seen.push(p.readBytes),
      expect: { version: '1.2.3', arch: 'x64' },
    });
    expect(m.version).toBe('1.2.3');
    expect(await readFile(path.join(dest, 'pipelines/echo.pipeline'), 'utf8')).toContain('videotestsrc');
    expect((await stat(path.join(dest, 'dist/src/cli/sealroom.js'))).mode & 0o777).toBe(0o755);
    expect(await readlink(path.join(dest, 'node_modules/.bin/foo'))).toBe('../foo/bin/foo.js');
    expect((await readFile(path.join(dest, 'node_modules/foo/blob.bin'))).length).toBe(300_000);
    expect(JSON.parse(await readFile(path.join(dest, MANIFEST_NAME), 'utf8')).version).toBe('1.2.3');
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.at(-1)).toBe((await stat(out)).size);
    await expect(
      extractBundle(out, path.join(work, 'slot-y'), { fsync: false, expect: { version: '1.2.4' } }),
    ).rejects.toThrow(BundleError);
    await expect(
      extractBundle(out, path.join(work, 'slot-z'), { fsync: false, expect: { arch: 'arm64' } }),
    ).rejects.toThrow(/expected arm64/);
    // A non-empty destination is refused.
    await expect(extractBundle(out, dest, { fsync: false })).rejects.toThrow(/not empty/);
  });

  it('refuses to build from a tree whose symlink leaves it', async () => {
    const src = path.join(work, 'tree-bad');
    await makeTree(src);
    await symlink('../../../etc/passwd', path.join(src, 'node_modules/.bin/evil'));
    await expect(
      buildBundle({ sourceDir: src, outFile: path.join(work, 'bad.tar.gz'), version: '1.0.0', arch: 'x64' }),
    ).rejects.toThrow(/leaves/);
    expect(existsSync(path.join(work, 'bad.tar.gz'))).toBe(false);
  });
});

describe('release bundle: hostile bundles are refused', () => {
  let n = 0;
  async function refuse(
    entries: RawEntry[],
    code: string,
    opts: { maxEntryBytes?: number; manifest?: Record<string, unknown> | null } = {},
  ) {
    const file = path.join(work, `hostile-${++n}.tar.gz`);
    const parent = path.join(work, `hostile-parent-${n}`);
    const dest = path.join(parent, 'slot');
    await mkdir(parent, { recursive: true });
    await rawBundle(file, entries, opts.manifest);
    const err = await extractBundle(file, dest, { fsync: false, maxEntryBytes: opts.maxEntryBytes }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, JSON.stringify(entries.map((e) => e.name))).toBeInstanceOf(BundleError);
    expect((err as BundleError).code).toBe(code);
    // Nothing was written next to the slot.
    expect((await readdir(parent)).sort()).toEqual(['slot']);
    return dest;
  }

  it('refuses .. and absolute paths', async () => {
    await refuse([{ name: '../evil.js', data: 'x' }], 'path');
    await refuse([{ name: 'dist/../../evil.js', data: 'x' }], 'path');
    await refuse([{ name: '/tmp/evil.js', data: 'x' }], 'path');
    await refuse([{ name: './dist/x.js', data: 'x' }], 'path');
    await refuse([{ name: 'dist\\..\\..\\evil', data: 'x' }], 'path');
  });

  it('refuses symlinks pointing outside, and writing through a symlink', async () => {
    await refuse([{ name: 'escape', type: 'symlink', linkname: '..' }], 'symlink');
    await refuse([{ name: 'etc', type: 'symlink', linkname: '/etc' }], 'symlink');
    await refuse([{ name: 'a/b', type: 'symlink', linkname: '../../x' }], 'symlink');
    // Lexically inside, really outside once `b` is a link to `.`: not normalised, refused.
    await refuse(
      [
        { name: 'b', type: 'symlink', linkname: '.' },
        { name: 'c', type: 'symlink', linkname: 'b/../..' },
      ],
      'symlink',
    );
    // A harmless-looking link, then a file written through it.
    const dest = await refuse(
      [
        { name: 'dir', type: 'directory' },
        { name: 'link', type: 'symlink', linkname: 'dir' },
        { name: 'link/x.js', data: 'x' },
      ],
      'symlink',
    );
    expect(existsSync(path.join(dest, 'dir/x.js'))).toBe(false);
    // A link replaced by a file of the same name (overwrite through the link) is a duplicate.
    await refuse(
      [
        { name: 'pkg', type: 'symlink', linkname: 'dist' },
        { name: 'pkg', data: 'x' },
      ],
      'duplicate',
    );
  });

  it('refuses device files, FIFOs and hard links', async () => {
    await refuse([{ name: 'dev', type: 'character-device' }], 'type');
    await refuse([{ name: 'blk', type: 'block-device' }], 'type');
    await refuse([{ name: 'pipe', type: 'fifo' }], 'type');
    await refuse([{ name: 'hard', type: 'link', linkname: 'package.json' }], 'type');
  });

  it('refuses entries over the size cap (before writing them)', async () => {
    const dest = await refuse([{ name: 'big.bin', data: Buffer.alloc(5000) }], 'size', {
      maxEntryBytes: 4096,
    });
    expect(existsSync(path.join(dest, 'big.bin'))).toBe(false);
  });

  it('refuses a bundle without the manifest first, a bad manifest, or a wrong file count', async () => {
    await refuse([{ name: 'package.json', data: '{}' }], 'manifest', { manifest: null });
    await refuse([{ name: 'a', data: '1' }], 'manifest', {
      manifest: { name: 'evil', version: '1.0.0', arch: 'x64', node: '>=20', files: 1 },
    });
    await refuse([{ name: 'a', data: '1' }], 'manifest', {
      manifest: { name: 'sealroom', version: 'latest', arch: 'x64', node: '>=20', files: 1 },
    });
    await refuse([{ name: 'a', data: '1' }], 'count', {
      manifest: { name: 'sealroom', version: '1.0.0', arch: 'x64', node: '>=20', files: 5 },
    });
    await refuse(
      [
        { name: 'a', data: '1' },
        { name: 'a', data: '2' },
      ],
      'duplicate',
    );
  });

  it('refuses garbage and truncated bundles', async () => {
    const junk = path.join(work, 'junk.tar.gz');
    await writeFile(junk, Buffer.from('this is not a gzip file at all'));
    await expect(extractBundle(junk, path.join(work, 'junk-slot'), { fsync: false })).rejects.toThrow();
    const src = path.join(work, 'tree-trunc');
    await makeTree(src);
    const good = path.join(work, 'trunc.tar.gz');
    await buildBundle({ sourceDir: src, outFile: good, version: '1.0.0', arch: 'x64' });
    const bytes = await readFile(good);
    await writeFile(good, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(extractBundle(good, path.join(work, 'trunc-slot'), { fsync: false })).rejects.toThrow();
  });

  it('keeps file modes sane (no setuid from the bundle)', async () => {
    const file = path.join(work, 'suid.tar.gz');
    await rawBundle(file, [{ name: 'tool', data: 'x', mode: 0o4755 }]);
    const dest = path.join(work, 'suid-slot');
    await extractBundle(file, dest, { fsync: false });
    expect((await lstat(path.join(dest, 'tool'))).mode & 0o7777).toBe(0o755);
  });
});

describe('semver order', () => {
  it('orders releases by semver precedence', () => {
    expect(compareSemver('1.0.0', '1.0.1')).toBe(-1);
    expect(compareSemver('1.10.0', '1.9.0')).toBe(1);
    expect(compareSemver('1.0.0-rc.1', '1.0.0')).toBe(-1);
    expect(compareSemver('1.0.0-rc.2', '1.0.0-rc.10')).toBe(-1);
    expect(compareSemver('1.0.0-alpha', '1.0.0-1')).toBe(1);
    expect(compareSemver('1.0.0+b1', '1.0.0+b2')).toBe(0);
  });
});
