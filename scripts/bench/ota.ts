// npm run bench:ota [-- --powercut-trials N] [--time-budget S]
//
// The whole over-the-air path on one machine, with real parts: two small real release bundles
// (src/update/bundle.ts), a TUF repository published with src/update/tuf-repo.ts and served over
// loopback HTTP (with Range requests), the device's TUF client (tuf-js) and its A/B updater.
//   update_s    check → download → verify → apply (extract, fsync, switch) → restart (boot check +
//               a real `node current/dist/app.js`) → health gate (crypto self-test, the app started
//               with the expected version) → commit
//   rollback_s  a signed bundle whose app fails at start: from the restart into it until the old
//               version runs again (gate fails → rollback by itself → boot check → start)
//   power cuts  scripts/powercut-ota.ts (≥ 50 trials): images that boot neither old nor new
//   bad bundles tampered bytes, wrong signing key, expired metadata, older version, replayed
//               (frozen) timestamp, wrong length, bad tar path: each must be refused, the box still
//               running its version.
// The last line is JSON: {"bench":"ota","update_s",…,"bad_bundles_refused"}.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import { FatalCheckError, type HealthCheck, selfTestCheck } from '../../device/update/health-gate.js';
import { Updater } from '../../device/update/updater.js';
import { buildAppBundle, runOtaPowercut, startCurrent } from '../powercut-ota.js';
import { UpdateClient } from '../../src/update/tuf-client.js';
import {
  addRelease,
  generateKey,
  initRepository,
  type KeyPair,
  refreshTimestamp,
  type RoleKeys,
} from '../../src/update/tuf-repo.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const arch = (): 'x64' | 'arm64' => (process.arch === 'arm64' ? 'arm64' : 'x64');
const round = (x: number) => Math.round(x * 1000) / 1000;

/** A static server for <dir>/metadata and <dir>/targets, with `Range: bytes=N-`. */
function serve(dirRef: { dir: string }): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, '');
    if (rel.startsWith('..')) return res.writeHead(400).end();
    const file = join(dirRef.dir, rel);
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch {
      return res.writeHead(404).end();
    }
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    if (range) {
      const from = Number(range[1]);
      if (from >= data.length) return res.writeHead(416).end();
      res.writeHead(206, {
        'content-length': data.length - from,
        'content-range': `bytes ${from}-${data.length - 1}/${data.length}`,
      });
      return res.end(data.subarray(from));
    }
    res.writeHead(200, { 'content-length': data.length });
    res.end(data);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${a.port}`, server });
    }),
  );
}

/** The service starting on `current`: its first output line, and whether it is still fine. */
function startService(root: string): Promise<{ version?: string; code: number | null }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(root, 'current', 'dist', 'app.js')], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('close', (code) => {
      let version: string | undefined;
      try {
        version = (JSON.parse(out.trim().split('\n')[0] ?? '') as { version?: string }).version;
      } catch {}
      resolve({ ...(version ? { version } : {}), code });
    });
  });
}

/** The started app's own check: it printed the version on trial and did not crash. */
function startedCheck(started: { version?: string; code: number | null }, expected: string): HealthCheck {
  return {
    name: 'app started',
    async run() {
      if (started.code !== 0) throw new FatalCheckError(`the app exited with ${started.code}`);
      if (started.version !== expected)
        throw new FatalCheckError(`the app is ${started.version}, not ${expected}`);
      return started.version;
    },
  };
}

async function evilBundle(file: string, version: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = pack();
    p.entry(
      { name: 'sealroom-release.json', mtime: new Date(0) },
      JSON.stringify({ name: 'sealroom', version, arch: arch(), node: '>=20', files: 2 }),
    );
    p.entry({ name: 'dist/app.js', mtime: new Date(0) }, 'console.log("{}")');
    p.entry({ name: '../../escaped.js', mtime: new Date(0) }, 'owned');
    p.finalize();
    const out = fs.createWriteStream(file);
    p.pipe(createGzip()).pipe(out);
    out.on('finish', resolve);
    out.on('error', reject);
  });
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(join(tmpdir(), 'sealroom-bench-ota-'));
  const served = { dir: '' };
  const { url, server } = await serve(served);
  try {
    // Publisher: keys, repository, releases.
    const k = (): KeyPair => generateKey();
    const keys = { root: [k()], targets: [k()], snapshot: [k()], timestamp: [k()] } satisfies RoleKeys;
    const repo = join(work, 'repo');
    const state = await initRepository(repo, {
      rootKeys: keys.root,
      targetsKeys: keys.targets,
      snapshotKeys: keys.snapshot,
      timestampKeys: keys.timestamp,
    });
    const trustedRoot = JSON.stringify(state.root.toJSON());
    served.dir = repo;
    const b = (v: string, o: { exitCode?: number } = {}) => buildAppBundle(work, v, { ...o, files: 40 });
    const v1 = await b('1.0.0');
    const v2 = await b('2.0.0');
    const v3broken = await b('3.0.0', { exitCode: 1 });
    const publish = (dir: string, file: string, version: string, now?: Date) =>
      addRelease(dir, file, { version, arch: arch(), channel: 'stable', keys, ...(now ? { now } : {}) });
    await publish(repo, v2, '2.0.0');

    // Device.
    const root = join(work, 'device', 'app');
    const cacheDir = join(work, 'device', 'cache');
    const device = new Updater({ root });
    await device.install(v1);
    const client = (cache = cacheDir) =>
      new UpdateClient({
        metadataUrl: `${url}/metadata/`,
        targetsUrl: `${url}/targets/`,
        cacheDir: cache,
        trustedRootJson: trustedRoot,
      });

    /** check → download → apply; then the restart and the gate. */
    const update = async (cache = cacheDir) => {
      const committed = (await device.status()).state?.committedVersion as string;
      const c = client(cache);
      const target = await c.check({ channel: 'stable', arch: arch(), currentVersion: committed });
      if (!target) return undefined;
      const file = join(work, 'device', `dl-${target.version}.tar.gz`);
      fs.rmSync(file, { force: true });
      await c.download(target, file);
      await device.apply(file, { expectedVersion: target.version });
      fs.rmSync(file, { force: true });
      return target;
    };
    const restartAndGate = async (expected: string) => {
      await device.bootCheck();
      const started = await startService(root);
      return device.gate([selfTestCheck(), startedCheck(started, expected)], {
        timeoutMs: 30_000,
        retryMs: 100,
      });
    };

    // update_s
    let t0 = performance.now();
    const t2 = await update();
    if (t2?.version !== '2.0.0') throw new Error(`expected 2.0.0 to be offered, got ${t2?.version}`);
    const g2 = await restartAndGate('2.0.0');
    if (g2.outcome !== 'committed') throw new Error(`2.0.0 did not commit: ${JSON.stringify(g2.result)}`);
    const updateS = (performance.now() - t0) / 1000;
    if (startCurrent(root) !== '2.0.0') throw new Error('2.0.0 does not run after its update');
    console.log(
      `update 1.0.0 → 2.0.0 (check, download, verify, apply, restart, gate, commit): ${updateS.toFixed(2)} s`,
    );

    // rollback_s
    await publish(repo, v3broken, '3.0.0');
    const t3 = await update();
    if (t3?.version !== '3.0.0') throw new Error('3.0.0 was not installed');
    t0 = performance.now();
    const g3 = await restartAndGate('3.0.0');
    await device.bootCheck();
    const back = await startService(root);
    const rollbackS = (performance.now() - t0) / 1000;
    if (g3.outcome !== 'rolled-back' || back.version !== '2.0.0')
      throw new Error(`the broken 3.0.0 did not roll back (${g3.outcome}, running ${back.version})`);
    console.log(
      `rollback of a broken 3.0.0 (restart into it, gate fails, back on 2.0.0 running): ${rollbackS.toFixed(2)} s`,
    );

    // Bad bundles: each on its own copy of the repository and of the device's TUF cache.
    const attempts: { kind: string; refused: boolean; detail: string }[] = [];
    const tryBad = async (kind: string, mutate: (dir: string, cache: string) => Promise<void>) => {
      const dir = join(work, `bad-${attempts.length}`, 'repo');
      const cache = join(work, `bad-${attempts.length}`, 'cache');
      fs.cpSync(repo, dir, { recursive: true });
      fs.cpSync(cacheDir, cache, { recursive: true });
      served.dir = dir;
      let refused: boolean;
      let detail: string;
      try {
        await mutate(dir, cache);
        const t = await update(cache);
        refused = t === undefined;
        detail = t ? `INSTALLED ${t.version}` : 'not offered';
      } catch (err) {
        refused = !(err as Error).message.startsWith('BUG');
        detail = `${(err as Error).name}: ${(err as Error).message.split('\n')[0]}`;
      } finally {
        served.dir = repo;
      }
      const st = (await device.status()).state;
      if (st?.pending) await device.rollback('bench: bad bundle got through');
      const running = startCurrent(root);
      if (running !== '2.0.0') {
        refused = false;
        detail += ` (the box runs ${running})`;
      }
      attempts.push({ kind, refused, detail });
      console.log(`bad bundle ${kind.padEnd(22)} ${refused ? 'refused' : 'NOT REFUSED'}: ${detail}`);
    };
    const v4 = await b('4.0.0');
    const targetFile = (dir: string, version: string) => {
      const d = join(dir, 'targets', 'stable', arch());
      const f = fs.readdirSync(d).find((n) => n.endsWith(`sealroom-${version}.tar.gz`));
      if (!f) throw new Error(`no target file for ${version}`);
      return join(d, f);
    };
    await tryBad('tampered bytes', async (dir) => {
      await publish(dir, v4, '4.0.0');
      const f = targetFile(dir, '4.0.0');
      const data = fs.readFileSync(f);
      data[data.length >> 1] = (data[data.length >> 1] as number) ^ 0xff;
      fs.writeFileSync(f, data);
    });
    await tryBad('wrong signing key', async (dir) => {
      // An attacker's repository with its own keys at the same address.
      fs.rmSync(dir, { recursive: true, force: true });
      const evil = { root: [k()], targets: [k()], snapshot: [k()], timestamp: [k()] };
      await initRepository(dir, {
        rootKeys: evil.root,
        targetsKeys: evil.targets,
        snapshotKeys: evil.snapshot,
        timestampKeys: evil.timestamp,
      });
      await addRelease(dir, v4, { version: '4.0.0', arch: arch(), channel: 'stable', keys: evil });
    });
    await tryBad('expired metadata', async (dir) => {
      await publish(dir, v4, '4.0.0');
      await refreshTimestamp(dir, { keys, now: new Date(Date.now() - 3 * 86_400_000), expiresIn: 3600 });
    });
    await tryBad('older version', async (dir, cache) => {
      // Validly signed but older than the running 2.0.0: never offered, and the updater refuses it
      // even when handed the file directly.
      const older = await b('1.5.0');
      await publish(dir, older, '1.5.0');
      served.dir = dir;
      const offered = await client(cache).check({ channel: 'stable', arch: arch(), currentVersion: '2.0.0' });
      if (offered?.version === '1.5.0') throw new Error('BUG: the client offered an older version');
      await device.apply(older);
    });
    await tryBad('frozen timestamp', async (dir, cache) => {
      // The device saw a newer timestamp; the server replays the old one (a freeze attack).
      const old = fs.readFileSync(join(dir, 'metadata', 'timestamp.json'));
      await publish(dir, v4, '4.0.0');
      served.dir = dir;
      await client(cache).check({ channel: 'stable', arch: arch(), currentVersion: '4.0.0' });
      fs.writeFileSync(join(dir, 'metadata', 'timestamp.json'), old);
    });
    await tryBad('wrong length', async (dir) => {
      await publish(dir, v4, '4.0.0');
      fs.appendFileSync(targetFile(dir, '4.0.0'), Buffer.alloc(4096, 1));
    });
    await tryBad('bad tar path (signed)', async (dir) => {
      const evil = join(work, 'evil-6.0.0.tar.gz');
      await evilBundle(evil, '6.0.0');
      await publish(dir, evil, '6.0.0');
    });
    if (fs.existsSync(join(root, '..', 'escaped.js')) || fs.existsSync(join(root, 'escaped.js')))
      throw new Error('a bundle wrote outside its slot');

    // Power cuts.
    const budget = arg('time-budget');
    const pc = await runOtaPowercut({
      trials: Number(arg('powercut-trials') ?? 50),
      ...(budget ? { timeBudgetS: Number(budget) } : {}),
      log: (l) => console.log(l),
    });
    console.log(
      `power cuts: ${pc.trials} trials (${pc.cuts} cuts with power loss, ${pc.timerKills} SIGKILLs), ${pc.images} disk images booted, ${pc.unbootable} unbootable`,
    );
    console.log(
      JSON.stringify({
        bench: 'ota',
        update_s: round(updateS),
        rollback_s: round(rollbackS),
        power_cut_trials: pc.trials,
        power_cut_unbootable: pc.unbootable,
        bad_bundles_tried: attempts.length,
        bad_bundles_refused: attempts.filter((a) => a.refused).length,
      }),
    );
  } finally {
    server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
