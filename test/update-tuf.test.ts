/**
 * Signed releases end to end: a real TUF repository published with src/update/tuf-repo.ts, served by
 * a real HTTP server on loopback, read by the tuf-js client in src/update/tuf-client.ts. The server
 * (and so the network) is the attacker: it can replay, withhold, cut and swap any file, and in some
 * tests it holds the online (snapshot/timestamp) keys too.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Metadata, TargetFile, Targets } from '@tufjs/models';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle, extractBundle } from '../src/update/bundle.js';
import { UpdateClient, UpdateError, UpdateRefusedError } from '../src/update/tuf-client.js';
import {
  type KeyPair,
  RepoError,
  addRelease,
  expiresAt,
  generateKey,
  initRepository,
  loadKey,
  loadRepo,
  newSnapshot,
  newTimestamp,
  publicOnly,
  refreshSnapshot,
  refreshTimestamp,
  rotateKey,
  saveKey,
  signMetadata,
  writeRoot,
  writeSnapshot,
  writeTargets,
  writeTimestamp,
} from '../src/update/tuf-repo.js';

let work: string;
const bundles: Record<string, { file: string; sha256: string; bytes: number }> = {};

const K = {
  root: generateKey(),
  root2: generateKey(),
  targets: generateKey(),
  targetsB: generateKey(),
  snapshot: generateKey(),
  timestamp: generateKey(),
  attacker: generateKey(),
};
const online = { snapshot: [K.snapshot], timestamp: [K.timestamp] };
const allKeys = { targets: [K.targets], ...online };
const DAY_MS = 24 * 3600 * 1000;

async function makeBundle(
  version: string,
  arch: 'x64' | 'arm64' = 'x64',
): Promise<{ file: string; sha256: string; bytes: number }> {
  const key = `${version}-${arch}`;
  if (bundles[key]) return bundles[key];
  const src = path.join(work, `src-${key}`);
  await mkdir(path.join(src, 'dist'), { recursive: true });
  await writeFile(path.join(src, 'package.json'), JSON.stringify({ name: 'sealroom', version }));
  await writeFile(path.join(src, 'dist/version.js'), `console.log(${JSON.stringify(version)});\n`);
  // Incompressible payload so the bundle is big enough to cut mid-transfer.
  await writeFile(path.join(src, 'dist/payload.bin'), randomBytes(400_000));
  const file = path.join(work, `sealroom-${key}.tar.gz`);
  const r = await buildBundle({ sourceDir: src, outFile: file, version, arch, sourceDateEpoch: 0 });
  bundles[key] = { file, sha256: r.sha256, bytes: r.bytes };
  return bundles[key];
}

// ---------------------------------------------------------------------------------------------
// the hostile static server

interface Served {
  server: Server;
  base: string;
  requests: { path: string; range?: string }[];
  /** Serve these bytes instead of the file (replays, forgeries). */
  override: Map<string, Buffer>;
  /** Send this many bytes of the file, then drop the connection (once). */
  cutOnce: Map<string, number>;
  /** Answer 404 (withhold). */
  hide: Set<string>;
}

async function serve(repoDir: string): Promise<Served> {
  const s: Omit<Served, 'server' | 'base'> = {
    requests: [],
    override: new Map(),
    cutOnce: new Map(),
    hide: new Set(),
  };
  const server = createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    s.requests.push({ path: urlPath, range: req.headers.range });
    if (urlPath.includes('..') || s.hide.has(urlPath)) {
      res.writeHead(404).end();
      return;
    }
    let body = s.override.get(urlPath);
    if (!body) {
      try {
        body = await readFile(path.join(repoDir, urlPath));
      } catch {
        res.writeHead(404).end();
        return;
      }
    }
    let start = 0;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}`,
        'Content-Length': body.length - start,
      });
    } else {
      res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
    }
    const cut = s.cutOnce.get(urlPath);
    if (cut !== undefined) {
      s.cutOnce.delete(urlPath);
      res.write(body.subarray(start, cut), () => {
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return { ...s, server, base: `http://127.0.0.1:${port}` };
}

const servers: Server[] = [];
let repoN = 0;

interface Fixture {
  dir: string;
  srv: Served;
  rootJson: Buffer;
  client: (cacheName?: string) => UpdateClient;
}

async function fixture(opts: { targetsKeys?: KeyPair[]; targetsThreshold?: number } = {}): Promise<Fixture> {
  const dir = path.join(work, `repo-${++repoN}`);
  await initRepository(dir, {
    rootKeys: [K.root],
    targetsKeys: opts.targetsKeys ?? [K.targets],
    snapshotKeys: [K.snapshot],
    timestampKeys: [K.timestamp],
    threshold: { targets: opts.targetsThreshold ?? 1 },
  });
  const srv = await serve(dir);
  servers.push(srv.server);
  const rootJson = await readFile(path.join(dir, 'metadata/1.root.json'));
  const cacheBase = path.join(work, `device-${repoN}`);
  return {
    dir,
    srv,
    rootJson,
    client: (cacheName = 'a') =>
      new UpdateClient({
        metadataUrl: `${srv.base}/metadata/`,
        targetsUrl: `${srv.base}/targets/`,
        cacheDir: path.join(cacheBase, cacheName),
        trustedRootJson: rootJson,
        idleTimeoutMs: 5000,
      }),
  };
}

async function refusal(p: Promise<unknown>): Promise<UpdateRefusedError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UpdateRefusedError);
  return err as UpdateRefusedError;
}

/** What an attacker holding the online keys can publish: a snapshot and a timestamp over any files on the server. */
async function forgeSnapshotTimestamp(
  dir: string,
  o: {
    targetsFile: string;
    targetsVersion: number;
    snapshotSigners: KeyPair[];
    timestampSigners: KeyPair[];
    bump?: number;
  },
): Promise<void> {
  const state = await loadRepo(dir);
  const now = new Date();
  const bump = o.bump ?? 10;
  const targetsBytes = await readFile(path.join(dir, 'metadata', o.targetsFile));
  const snap = signMetadata(
    newSnapshot({
      version: state.snapshot.signed.version + bump,
      expires: expiresAt(now, 3600),
      targetsBytes,
      targetsVersion: o.targetsVersion,
    }),
    o.snapshotSigners,
  );
  const snapshotBytes = await writeSnapshot(dir, snap);
  const ts = signMetadata(
    newTimestamp({
      version: state.timestamp.signed.version + bump,
      expires: expiresAt(now, 3600),
      snapshotBytes,
      snapshotVersion: snap.signed.version,
    }),
    o.timestampSigners,
  );
  await writeTimestamp(dir, ts);
}

/** A targets file listing an extra (evil) release, signed by whoever the attacker has. */
async function forgeTargets(
  dir: string,
  signers: KeyPair[],
  release: { version: string; file: string; sha256: string; bytes: number },
): Promise<{ name: string; version: number }> {
  const state = await loadRepo(dir);
  const { _type, ...json } = state.targets.signed.toJSON() as Record<string, unknown>;
  const targets = Targets.fromJSON({ ...json, version: state.targets.signed.version + 1 } as never);
  const targetPath = `stable/x64/sealroom-${release.version}.tar.gz`;
  targets.addTarget(
    new TargetFile({
      path: targetPath,
      length: release.bytes,
      hashes: { sha256: release.sha256 },
      unrecognizedFields: { custom: { version: release.version, channel: 'stable', arch: 'x64' } },
    }),
  );
  const md = signMetadata(new Metadata(targets), signers);
  await writeTargets(dir, md);
  await mkdir(path.join(dir, 'targets/stable/x64'), { recursive: true });
  await writeFile(
    path.join(dir, `targets/stable/x64/${release.sha256}.sealroom-${release.version}.tar.gz`),
    await readFile(release.file),
  );
  return { name: `${md.signed.version}.targets.json`, version: md.signed.version };
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sealroom-tuf-'));
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await rm(work, { recursive: true, force: true });
});

describe('signed releases: the good path', () => {
  it('finds the newest newer release of the channel and downloads it verified, with progress', async () => {
    const f = await fixture();
    const b100 = await makeBundle('1.0.0');
    const b110 = await makeBundle('1.1.0');
    const b120arm = await makeBundle('1.2.0', 'arm64');
    const b130 = await makeBundle('1.3.0');
    await addRelease(f.dir, b100.file, { version: '1.0.0', arch: 'x64', channel: 'stable', keys: allKeys });
    await addRelease(f.dir, b110.file, { version: '1.1.0', arch: 'x64', channel: 'stable', keys: allKeys });
    await addRelease(f.dir, b120arm.file, {
      version: '1.2.0',
      arch: 'arm64',
      channel: 'stable',
      keys: allKeys,
    });
    await addRelease(f.dir, b130.file, { version: '1.3.0', arch: 'x64', channel: 'canary', keys: allKeys });
    // The published metadata is what tuf-js reads, and refuses a bundle published under another version.
    await expect(
      addRelease(f.dir, b100.file, { version: '1.0.1', arch: 'x64', channel: 'stable', keys: allKeys }),
    ).rejects.toThrow(RepoError);

    const client = f.client();
    const t = await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' });
    expect(t).toEqual({
      version: '1.1.0',
      targetPath: 'stable/x64/sealroom-1.1.0.tar.gz',
      length: b110.bytes,
      sha256: b110.sha256,
    });
    expect(await client.check({ channel: 'stable', arch: 'arm64', currentVersion: '1.0.0' })).toMatchObject({
      version: '1.2.0',
    });
    expect(await client.check({ channel: 'canary', arch: 'x64', currentVersion: '1.0.0' })).toMatchObject({
      version: '1.3.0',
    });

    const progress: number[] = [];
    const dest = path.join(work, 'dl-good/bundle.tar.gz');
    await client.download(t!, dest, { onProgress: (p) => progress.push(p.received) });
    expect((await readFile(dest)).equals(await readFile(b110.file))).toBe(true);
    expect(progress.at(-1)).toBe(b110.bytes);
    expect(progress.length).toBeGreaterThan(1);
    expect(existsSync(`${dest}.part`)).toBe(false);
    const m = await extractBundle(dest, path.join(work, 'dl-good/slot'), {
      fsync: true,
      expect: { version: '1.1.0', arch: 'x64' },
    });
    expect(m.version).toBe('1.1.0');
    // Consistent snapshots: versioned metadata and hash-prefixed targets were fetched.
    expect(f.srv.requests.some((r) => /^\/metadata\/\d+\.snapshot\.json$/.test(r.path))).toBe(true);
    expect(
      f.srv.requests.some((r) => r.path === `/targets/stable/x64/${b110.sha256}.sealroom-1.1.0.tar.gz`),
    ).toBe(true);
  });

  it('never offers an older or equal version (application rollback)', async () => {
    const f = await fixture();
    const b100 = await makeBundle('1.0.0');
    const b110 = await makeBundle('1.1.0');
    await addRelease(f.dir, b100.file, { version: '1.0.0', arch: 'x64', channel: 'stable', keys: allKeys });
    await addRelease(f.dir, b110.file, { version: '1.1.0', arch: 'x64', channel: 'stable', keys: allKeys });
    const client = f.client();
    expect(await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.1.0' })).toBeUndefined();
    expect(await client.check({ channel: 'stable', arch: 'x64', currentVersion: '2.0.0' })).toBeUndefined();
    expect(
      await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.1.0-rc.1' }),
    ).toMatchObject({ version: '1.1.0' });
    // A target the client did not offer and that is not newer is still only downloadable if signed:
    const forged = {
      version: '0.9.0',
      targetPath: 'stable/x64/sealroom-0.9.0.tar.gz',
      length: b100.bytes,
      sha256: b100.sha256,
    };
    const err = await refusal(client.download(forged, path.join(work, 'dl-old.tar.gz')));
    expect(err.reason).toBe('metadata');
    // And a signed target with other length/hash than the caller claims is refused.
    const lying = {
      version: '1.0.0',
      targetPath: 'stable/x64/sealroom-1.0.0.tar.gz',
      length: b110.bytes,
      sha256: b110.sha256,
    };
    expect((await refusal(client.download(lying, path.join(work, 'dl-lie.tar.gz')))).reason).toBe('metadata');
  });

  it('resumes a cut download with an HTTP Range request', async () => {
    const f = await fixture();
    const b = await makeBundle('1.1.0');
    const rel = await addRelease(f.dir, b.file, {
      version: '1.1.0',
      arch: 'x64',
      channel: 'stable',
      keys: allKeys,
    });
    const urlPath = `/targets/stable/x64/${rel.sha256}.sealroom-1.1.0.tar.gz`;
    const client = f.client();
    const t = (await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }))!;
    const dest = path.join(work, 'dl-resume/bundle.tar.gz');
    f.srv.cutOnce.set(urlPath, 150_000);
    const err = await client.download(t, dest, { retries: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpdateError);
    expect(err).not.toBeInstanceOf(UpdateRefusedError);
    expect((err as UpdateError).retryable).toBe(true);
    const partial = (await stat(`${dest}.part`)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(b.bytes);
    expect(existsSync(dest)).toBe(false);

    // A new client (as after a reboot) continues where it stopped.
    const progress: number[] = [];
    const again = f.client();
    const t2 = (await again.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }))!;
    await again.download(t2, dest, { onProgress: (p) => progress.push(p.received) });
    expect(progress[0]).toBe(partial);
    const dl = f.srv.requests.filter((r) => r.path === urlPath);
    expect(dl.at(-1)!.range).toBe(`bytes=${partial}-`);
    expect((await readFile(dest)).equals(await readFile(b.file))).toBe(true);

    // Within one call, a cut connection is resumed by itself.
    const dest2 = path.join(work, 'dl-resume/again.tar.gz');
    f.srv.cutOnce.set(urlPath, 100_000);
    await again.download(t2, dest2);
    expect((await readFile(dest2)).equals(await readFile(b.file))).toBe(true);
    expect(f.srv.requests.filter((r) => r.path === urlPath).at(-1)!.range).toMatch(/^bytes=\d+-$/);
  });
  it('keeps the partial file when the caller aborts, and recovers from a torn cached root', async () => {
    const f = await fixture();
    const b = await makeBundle('1.1.0');
    const rel = await addRelease(f.dir, b.file, {
      version: '1.1.0',
      arch: 'x64',
      channel: 'stable',
      keys: allKeys,
    });
    const urlPath = `/targets/stable/x64/${rel.sha256}.sealroom-1.1.0.tar.gz`;
    const client = f.client('abort');
    const t = (await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }))!;
    const dest = path.join(work, 'dl-abort/bundle.tar.gz');
    const ac = new AbortController();
    f.srv.cutOnce.set(urlPath, 200_000); // the server stalls after 200 kB (then drops)
    const err = await client
      .download(t, dest, {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.received >= 100_000) ac.abort();
        },
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(UpdateError);
    expect((err as UpdateError).reason).toBe('aborted');
    expect((await stat(`${dest}.part`)).size).toBeGreaterThan(0);

    // A power cut tore root.json: the client falls back to its last good root and carries on.
    const cache = path.join(work, `device-${repoN}`, 'abort', 'metadata');
    await writeFile(path.join(cache, 'root.json'), '{"signed": {"_type": "ro');
    const again = f.client('abort');
    const t2 = (await again.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }))!;
    await again.download(t2, dest);
    expect((await readFile(dest)).equals(await readFile(b.file))).toBe(true);
    expect(JSON.parse(await readFile(path.join(cache, 'root.json'), 'utf8')).signed.version).toBe(1);
  });
});

describe('signed releases: refusals', () => {
  it('refuses tampered bundle bytes (and a longer bundle), deleting the download', async () => {
    const f = await fixture();
    const b = await makeBundle('1.1.0');
    const rel = await addRelease(f.dir, b.file, {
      version: '1.1.0',
      arch: 'x64',
      channel: 'stable',
      keys: allKeys,
    });
    const urlPath = `/targets/stable/x64/${rel.sha256}.sealroom-1.1.0.tar.gz`;
    const client = f.client();
    const t = (await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }))!;
    const tampered = Buffer.from(await readFile(b.file));
    tampered[tampered.length >> 1]! ^= 0x01;
    f.srv.override.set(urlPath, tampered);
    const dest = path.join(work, 'dl-tampered.tar.gz');
    expect((await refusal(client.download(t, dest))).reason).toBe('hash');
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);

    f.srv.override.set(urlPath, Buffer.concat([await readFile(b.file), Buffer.from('extra')]));
    expect((await refusal(client.download(t, dest))).reason).toBe('length');
    expect(existsSync(`${dest}.part`)).toBe(false);

    // A poisoned partial download from before (e.g. from another server) is caught when it completes.
    f.srv.override.delete(urlPath);
    await writeFile(`${dest}.part`, randomBytes(1000));
    expect((await refusal(client.download(t, dest))).reason).toBe('hash');
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('refuses targets signed by a key root does not trust', async () => {
    const f = await fixture();
    const evil = await makeBundle('6.6.6');
    // The attacker has the online keys and its own "targets" key.
    const forged = await forgeTargets(f.dir, [K.attacker], { version: '6.6.6', ...evil });
    await forgeSnapshotTimestamp(f.dir, {
      targetsFile: forged.name,
      targetsVersion: forged.version,
      snapshotSigners: [K.snapshot],
      timestampSigners: [K.timestamp],
    });
    const err = await refusal(f.client().check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }));
    expect(err.reason).toBe('signature');
  });

  it('refuses targets signed below the threshold', async () => {
    const f = await fixture({ targetsKeys: [K.targets, K.targetsB], targetsThreshold: 2 });
    const b = await makeBundle('1.1.0');
    // The publisher itself refuses to sign below the threshold…
    await expect(
      addRelease(f.dir, b.file, { version: '1.1.0', arch: 'x64', channel: 'stable', keys: allKeys }),
    ).rejects.toThrow(/threshold/);
    // …and with both keys the release is found.
    await addRelease(f.dir, b.file, {
      version: '1.1.0',
      arch: 'x64',
      channel: 'stable',
      keys: { ...allKeys, targets: [K.targets, K.targetsB] },
    });
    expect(
      await f.client('ok').check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }),
    ).toMatchObject({ version: '1.1.0' });
    // One stolen targets key is not enough.
    const evil = await makeBundle('6.6.6');
    const forged = await forgeTargets(f.dir, [K.targets], { version: '6.6.6', ...evil });
    await forgeSnapshotTimestamp(f.dir, {
      targetsFile: forged.name,
      targetsVersion: forged.version,
      snapshotSigners: [K.snapshot],
      timestampSigners: [K.timestamp],
    });
    const err = await refusal(
      f.client('stolen').check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }),
    );
    expect(err.reason).toBe('signature');
    expect(err.message).toMatch(/1\/2/);
  });

  it('refuses an expired timestamp and expired targets', async () => {
    const f = await fixture();
    const b = await makeBundle('1.1.0');
    await addRelease(f.dir, b.file, { version: '1.1.0', arch: 'x64', channel: 'stable', keys: allKeys });
    await refreshTimestamp(f.dir, { keys: online, now: new Date(Date.now() - 2 * DAY_MS) });
    const e1 = await refusal(
      f.client('ts').check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }),
    );
    expect(e1.reason).toBe('expired');
    expect(e1.message).toMatch(/timestamp/);

    const g = await fixture();
    await addRelease(g.dir, b.file, {
      version: '1.1.0',
      arch: 'x64',
      channel: 'stable',
      keys: allKeys,
      now: new Date(Date.now() - 100 * DAY_MS),
    });
    await refreshSnapshot(g.dir, { keys: online });
    const e2 = await refusal(
      g.client('targets').check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }),
    );
    expect(e2.reason).toBe('expired');
    expect(e2.message).toMatch(/targets/);
  });

  it('refuses a stale timestamp replayed after a newer one, and a frozen repository once it expires (freeze)', async () => {
    const f = await fixture();
    const b = await makeBundle('1.1.0');
    await addRelease(f.dir, b.file, { version: '1.1.0', arch: 'x64', channel: 'stable', keys: allKeys });
    const stale = await readFile(path.join(f.dir, 'metadata/timestamp.json'));
    const client = f.client();
    expect(await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' })).toBeDefined();
    await refreshTimestamp(f.dir, { keys: online });
    expect(await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' })).toBeDefined();
    // The mirror goes back to the older (still unexpired, validly signed) timestamp.
    f.srv.override.set('/metadata/timestamp.json', stale);
    const err = await refusal(f.client().check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }));
    expect(err.reason).toBe('rollback');
    f.srv.override.delete('/metadata/timestamp.json');

    // A frozen mirror: it keeps serving the newest timestamp it has, which then expires.
    const v = await refreshTimestamp(f.dir, { keys: online, expiresIn: 2 });
    expect(v).toBeGreaterThan(2);
    const ts = JSON.parse(await readFile(path.join(f.dir, 'metadata/timestamp.json'), 'utf8')) as {
      signed: { expires: string };
    };
    expect(await client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' })).toBeDefined();
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(ts.signed.expires) - Date.now()) + 200));
    const frozen = await refusal(client.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }));
    expect(frozen.reason).toBe('expired');
  });

  it('refuses a snapshot version rollback and a targets version rollback (attacker holds the online keys)', async () => {
    const f = await fixture();
    const b1 = await makeBundle('1.0.0');
    const b2 = await makeBundle('1.1.0');
    await addRelease(f.dir, b1.file, { version: '1.0.0', arch: 'x64', channel: 'stable', keys: allKeys });
    const old = await loadRepo(f.dir);
    const oldSnapshot = old.snapshot.signed.version;
    const oldTargets = old.targets.signed.version;
    await addRelease(f.dir, b2.file, { version: '1.1.0', arch: 'x64', channel: 'stable', keys: allKeys });
    const client = f.client();
    expect(await client.check({ channel: 'stable', arch: 'x64', currentVersion: '0.1.0' })).toMatchObject({
      version: '1.1.0',
    });

    // A new timestamp pointing back to the old snapshot.
    const state = await loadRepo(f.dir);
    const snapBytes = await readFile(path.join(f.dir, `metadata/${oldSnapshot}.snapshot.json`));
    const ts = signMetadata(
      newTimestamp({
        version: state.timestamp.signed.version + 5,
        expires: expiresAt(new Date(), 3600),
        snapshotBytes: snapBytes,
        snapshotVersion: oldSnapshot,
      }),
      [K.timestamp],
    );
    f.srv.override.set('/metadata/timestamp.json', Buffer.from(`${JSON.stringify(ts.toJSON())}\n`));
    const e1 = await refusal(client.check({ channel: 'stable', arch: 'x64', currentVersion: '0.1.0' }));
    expect(e1.reason).toBe('rollback');
    expect(e1.message).toMatch(/snapshot version/i);
    f.srv.override.delete('/metadata/timestamp.json');

    // A new snapshot (and timestamp) pointing back to the old targets, which hid 1.1.0.
    await forgeSnapshotTimestamp(f.dir, {
      targetsFile: `${oldTargets}.targets.json`,
      targetsVersion: oldTargets,
      snapshotSigners: [K.snapshot],
      timestampSigners: [K.timestamp],
    });
    const e2 = await refusal(client.check({ channel: 'stable', arch: 'x64', currentVersion: '0.1.0' }));
    expect(e2.reason).toBe('rollback');
    expect(e2.message).toMatch(/targets/);
  });
});

describe('signed releases: key rotation', () => {
  it('rotates the targets key and then the root key; each new root is signed by the old threshold', async () => {
    const f = await fixture();
    const b1 = await makeBundle('1.0.0');
    const b2 = await makeBundle('1.1.0');
    const b3 = await makeBundle('1.2.0');
    await addRelease(f.dir, b1.file, { version: '1.0.0', arch: 'x64', channel: 'stable', keys: allKeys });
    const device = f.client();
    expect(await device.check({ channel: 'stable', arch: 'x64', currentVersion: '0.1.0' })).toMatchObject({
      version: '1.0.0',
    });

    // Keys live on disk (offline medium) as PEM + TUF public JSON; the publisher loads them from there.
    const keyDir = path.join(work, 'offline-keys');
    await saveKey(keyDir, 'targets-2', K.targetsB);
    const newTargets = await loadKey(path.join(keyDir, 'targets-2.pem'));
    expect(newTargets.keyId).toBe(K.targetsB.keyId);
    expect((await loadKey(path.join(keyDir, 'targets-2.pub.json'))).privateKey).toBeUndefined();
    expect((await stat(path.join(keyDir, 'targets-2.pem'))).mode & 0o777).toBe(0o600);

    // A root that drops the old targets key signed by nobody trusted is refused by the tool itself.
    await expect(
      rotateKey(f.dir, 'targets', {
        remove: [K.targets.keyId],
        add: [publicOnly(newTargets)],
        rootSigners: [K.attacker],
        keys: { ...online, targets: [newTargets] },
      }),
    ).rejects.toThrow(/threshold of the current root/);

    const v2 = await rotateKey(f.dir, 'targets', {
      remove: [K.targets.keyId],
      add: [publicOnly(newTargets)],
      rootSigners: [K.root],
      keys: { ...online, targets: [newTargets] },
    });
    expect(v2).toBe(2);
    await addRelease(f.dir, b2.file, {
      version: '1.1.0',
      arch: 'x64',
      channel: 'stable',
      keys: { ...online, targets: [newTargets] },
    });
    // The old targets key no longer publishes.
    await expect(
      addRelease(f.dir, b3.file, { version: '1.2.0', arch: 'x64', channel: 'stable', keys: allKeys }),
    ).rejects.toThrow(/threshold/);
    expect(await device.check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' })).toMatchObject({
      version: '1.1.0',
    });
    // A device that only knows root v1 walks to v2 as well.
    expect(
      await f.client('fresh').check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' }),
    ).toMatchObject({ version: '1.1.0' });

    // A stolen old targets key is now worthless, even with the online keys.
    const evil = await makeBundle('6.6.6');
    const saved = await loadRepo(f.dir);
    const forged = await forgeTargets(f.dir, [K.targets], { version: '6.6.6', ...evil });
    await forgeSnapshotTimestamp(f.dir, {
      targetsFile: forged.name,
      targetsVersion: forged.version,
      snapshotSigners: [K.snapshot],
      timestampSigners: [K.timestamp],
    });
    expect(
      (await refusal(f.client('victim').check({ channel: 'stable', arch: 'x64', currentVersion: '1.0.0' })))
        .reason,
    ).toBe('signature');
    // (put the honest chain back on top)
    await writeTargets(f.dir, saved.targets);
    await forgeSnapshotTimestamp(f.dir, {
      targetsFile: `${saved.targets.signed.version}.targets.json`,
      targetsVersion: saved.targets.signed.version,
      snapshotSigners: [K.snapshot],
      timestampSigners: [K.timestamp],
      bump: 20,
    });

    // Root key rotation: root v3 is signed by the old root key (old threshold) and the new one.
    const v3 = await rotateKey(f.dir, 'root', {
      remove: [K.root.keyId],
      add: [publicOnly(K.root2)],
      rootSigners: [K.root, K.root2],
    });
    expect(v3).toBe(3);
    await addRelease(f.dir, b3.file, {
      version: '1.2.0',
      arch: 'x64',
      channel: 'stable',
      keys: { ...online, targets: [newTargets] },
    });
    expect(await device.check({ channel: 'stable', arch: 'x64', currentVersion: '1.1.0' })).toMatchObject({
      version: '1.2.0',
    });
    expect(
      await f.client('fresh2').check({ channel: 'stable', arch: 'x64', currentVersion: '1.1.0' }),
    ).toMatchObject({ version: '1.2.0' });

    // A root v4 signed only by a key the current root does not list is refused by the device.
    const state = await loadRepo(f.dir);
    const { _type, ...rootJson } = state.root.signed.toJSON() as Record<string, unknown> & {
      keys: Record<string, unknown>;
      roles: Record<string, { keyids: string[] }>;
    };
    rootJson.version = 4;
    rootJson.keys[K.attacker.keyId] = K.attacker.tuf;
    rootJson.roles.root!.keyids = [K.attacker.keyId];
    rootJson.roles.targets!.keyids = [K.attacker.keyId];
    const { Root } = await import('@tufjs/models');
    const evilRoot = signMetadata(new Metadata(Root.fromJSON(rootJson as never)), [K.attacker]);
    await writeRoot(f.dir, evilRoot);
    const err = await refusal(device.check({ channel: 'stable', arch: 'x64', currentVersion: '1.1.0' }));
    expect(err.reason).toBe('signature');
    expect(err.message).toMatch(/root/);
  });
});
