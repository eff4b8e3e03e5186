// Sealroom release tool: reproducible bundles and the TUF repository that signs them (docs/updates.md).
//
//   node --import tsx scripts/release/publish.ts <command> [options]      (--help on any command)
//
//   keygen   --out DIR --name NAME                 new Ed25519 key: NAME.pem (0600) + NAME.pub.json
//   stage    --out DIR [--arch x64|arm64] [--copy-node-modules]   the app tree from a built checkout:
//            package.json, package-lock.json, dist/ (no tests), pipelines/, production node_modules
//            (npm ci --omit=dev from the lock, or a pruned copy of ./node_modules). --arch defaults to
//            this machine's; another arch (arm64 on x64) installs the lock's packages for it with
//            --ignore-scripts and cross-builds the addons (cross-build.ts; check them with verify-arm64.ts)
//   bundle   --source DIR --version V --arch x64|arm64 --out FILE   reproducible .tar.gz
//            (mtime from SOURCE_DATE_EPOCH, else --epoch, else 0); prints sha256 and size
//   init     --repo DIR --root-key PEM... --targets-key PEM... --snapshot-key PEM... --timestamp-key PEM...
//            [--threshold role=N ...] [--expires role=DAYS ...]
//   add      --repo DIR --bundle FILE --version V --arch A --channel C --key PEM...
//            (the targets key(s) — offline — and the online snapshot and timestamp keys)
//   timestamp --repo DIR --key PEM [--expires-in SECONDS]          re-sign timestamp (cron, online key)
//   snapshot  --repo DIR --key PEM...                              re-sign snapshot + timestamp
//   rotate   --repo DIR --role R [--remove KEYID...] [--add PUB.json...] [--threshold N]
//            --root-key PEM... (a threshold of the CURRENT root keys, plus the new ones when R=root)
//            [--key PEM...] (the rotated role's new keys and the roles below it, to re-sign)
//   show     --repo DIR                                             versions, expiries, releases
//
// Keys: root and targets private keys stay offline (air-gapped machine or hardware token export);
// the repository directory never holds a private key. Serve <repo>/metadata/ and <repo>/targets/.
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Command } from 'commander';
import { type Arch, buildBundle, sourceDateEpochFromEnv } from '../../src/update/bundle.js';
import {
  assertAddonsArch,
  applyPatches,
  crossBuildAddons,
  defaultSysroot,
  ensureAptPackages,
  ensureSysroot,
  HOST_PACKAGES,
  hostArch,
  pruneForeignPrebuilds,
} from './cross-build.js';
import {
  addRelease,
  DEFAULT_EXPIRIES,
  type Expiries,
  generateKey,
  initRepository,
  type KeyPair,
  loadKey,
  loadRepo,
  publicOnly,
  refreshSnapshot,
  refreshTimestamp,
  type RoleKeys,
  type RoleName,
  ROLES,
  rotateKey,
  saveKey,
} from '../../src/update/tuf-repo.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

async function loadKeys(files: string[] | undefined): Promise<KeyPair[]> {
  return Promise.all((files ?? []).map((f) => loadKey(f)));
}

/** Every key for every role: the tool signs each role with the given keys that root lists for it. */
function everyRole(keys: KeyPair[]): RoleKeys {
  return { root: keys, targets: keys, snapshot: keys, timestamp: keys };
}

function parseRoleMap(pairs: string[] | undefined, what: string): Partial<Record<RoleName, number>> {
  const out: Partial<Record<RoleName, number>> = {};
  for (const p of pairs ?? []) {
    const m = /^(root|targets|snapshot|timestamp)=(\d+(?:\.\d+)?)$/.exec(p);
    if (!m) throw new Error(`${what}: expected role=N, got ${p}`);
    out[m[1] as RoleName] = Number(m[2]);
  }
  return out;
}

function arch(v: string): Arch {
  if (v !== 'x64' && v !== 'arm64') throw new Error(`--arch must be x64 or arm64, got ${v}`);
  return v;
}

const program = new Command('publish')
  .description('Sealroom release tool: reproducible bundles and their TUF repository')
  .showHelpAfterError();

program
  .command('keygen')
  .description('generate an Ed25519 key (NAME.pem private 0600, NAME.pub.json public)')
  .requiredOption('--out <dir>', 'directory for the key files (offline medium for root/targets)')
  .requiredOption('--name <name>', 'file name stem, e.g. root-1, targets-1, snapshot, timestamp')
  .action(async (o: { out: string; name: string }) => {
    const key = generateKey();
    const files = await saveKey(o.out, o.name, key);
    console.log(JSON.stringify({ keyid: key.keyId, ...files }));
  });

program
  .command('stage')
  .description('stage the app tree to bundle from a built checkout (npm run build first)')
  .requiredOption('--out <dir>', 'empty directory to fill')
  .option('--from <dir>', 'checkout root', process.cwd())
  .option('--arch <arch>', "x64 or arm64 (default: this machine's)")
  .option(
    '--sysroot <dir>',
    'arm64 headers and libraries for a cross build (default: $TMPDIR/sealroom-sysroot-<arch>)',
  )
  .option('--copy-node-modules', 'copy ./node_modules and prune dev dependencies instead of npm ci')
  .action(
    async (o: { out: string; from: string; arch?: string; sysroot?: string; copyNodeModules?: boolean }) => {
      const t0 = Date.now();
      const from = path.resolve(o.from);
      const out = path.resolve(o.out);
      const host = hostArch();
      const target = o.arch !== undefined ? arch(o.arch) : host;
      const cross = target !== host;
      if (cross && host !== 'x64') throw new Error(`cross staging is x64 → arm64 only (this is ${host})`);
      if (cross && o.copyNodeModules) {
        throw new Error(
          `--copy-node-modules copies this machine's (${host}) addons: not with --arch ${target}`,
        );
      }
      await stat(path.join(from, 'dist/src/cli/sealroom.js')).catch(() => {
        throw new Error('build first: npm run build');
      });
      await mkdir(out, { recursive: true });
      if ((await readdir(out)).length > 0) throw new Error(`${out} is not empty`);
      // The toolchain and sysroot first: a missing one fails before minutes of npm ci.
      let sysroot: string | undefined;
      if (cross) {
        ensureAptPackages(HOST_PACKAGES);
        sysroot = await ensureSysroot(target, path.resolve(o.sysroot ?? defaultSysroot(target)));
      }
      await cp(path.join(from, 'package.json'), path.join(out, 'package.json'));
      await cp(path.join(from, 'package-lock.json'), path.join(out, 'package-lock.json'));
      await cp(path.join(from, 'dist'), path.join(out, 'dist'), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (src) => {
          const rel = path.relative(path.join(from, 'dist'), src);
          if (['deb', 'test', 'scripts'].includes(rel.split(path.sep)[0] ?? '')) return false;
          return !/\.test\.js(\.map)?$/.test(rel);
        },
      });
      await cp(path.join(from, 'pipelines'), path.join(out, 'pipelines'), { recursive: true }).catch(
        () => {},
      );
      const npm = { cwd: out, stdio: 'inherit' as const };
      if (o.copyNodeModules) {
        await cp(path.join(from, 'node_modules'), path.join(out, 'node_modules'), {
          recursive: true,
          verbatimSymlinks: true,
        });
        execFileSync('npm', ['prune', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], npm);
      } else if (cross) {
        // The lock's packages for the target (its esbuild/rollup platform packages, not ours), no
        // install scripts: they would build for this machine. Patches, then the addons for the target.
        console.log(`[stage] npm ci --omit=dev --ignore-scripts --cpu=${target} --os=linux --libc=glibc`);
        execFileSync(
          'npm',
          [
            'ci',
            '--omit=dev',
            '--ignore-scripts',
            `--cpu=${target}`,
            '--os=linux',
            '--libc=glibc',
            '--no-audit',
            '--no-fund',
          ],
          npm,
        );
        applyPatches(out, from);
        const r = await crossBuildAddons({ stageDir: out, arch: target, sysroot: sysroot! });
        console.log(`[stage] addons: ${r.addons.map((a) => `${a.pkg} (${a.how}, ${a.ms} ms)`).join(', ')}`);
      } else {
        // From the lock, exactly; install scripts wait until patches/ is applied (as in setup.sh: a
        // plain `npm ci` compiled gstreamer-superficial without our fixes), then build or fetch the
        // addons for this machine's arch.
        execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], npm);
        applyPatches(out, from);
        execFileSync('npm', ['rebuild', '--foreground-scripts=false', '--no-audit', '--no-fund'], npm);
      }
      await rm(path.join(out, 'node_modules/.package-lock.json'), { force: true });
      const pruned = await pruneForeignPrebuilds(out, target);
      if (pruned.length > 0) console.log(`[stage] removed ${pruned.length} prebuilds for other platforms`);
      await assertAddonsArch(out, target);
      console.log(`[stage] ${target} tree ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      console.log(out);
    },
  );

program
  .command('bundle')
  .description('build a reproducible release bundle from a staged tree')
  .requiredOption('--source <dir>', 'staged app tree (see stage)')
  .requiredOption('--version <semver>', 'release version')
  .requiredOption('--arch <arch>', 'x64 or arm64')
  .requiredOption('--out <file>', 'output .tar.gz')
  .option('--epoch <seconds>', 'mtime of every entry when SOURCE_DATE_EPOCH is not set')
  .action(async (o: { source: string; version: string; arch: string; out: string; epoch?: string }) => {
    const fromEnv = process.env.SOURCE_DATE_EPOCH ? sourceDateEpochFromEnv() : undefined;
    const epoch = fromEnv ?? (o.epoch !== undefined ? Number(o.epoch) : 0);
    const r = await buildBundle({
      sourceDir: o.source,
      outFile: o.out,
      version: o.version,
      arch: arch(o.arch),
      sourceDateEpoch: epoch,
    });
    console.log(JSON.stringify({ file: o.out, ...r, sourceDateEpoch: epoch }));
  });

program
  .command('init')
  .description('create a TUF repository (root v1, empty targets, snapshot, timestamp)')
  .requiredOption('--repo <dir>', 'repository directory')
  .requiredOption('--root-key <pem>', 'root private key (repeat)', collect)
  .requiredOption('--targets-key <pem>', 'targets private key (repeat)', collect)
  .requiredOption('--snapshot-key <pem>', 'snapshot private key (repeat)', collect)
  .requiredOption('--timestamp-key <pem>', 'timestamp private key (repeat)', collect)
  .option('--threshold <role=N>', 'signature threshold of a role (repeat; default 1)', collect)
  .option(
    '--expires <role=DAYS>',
    `expiry of a role in days (repeat; defaults ${Object.entries(DEFAULT_EXPIRIES)
      .map(([r, s]) => `${r}=${s / 86400}`)
      .join(' ')})`,
    collect,
  )
  .action(
    async (o: {
      repo: string;
      rootKey: string[];
      targetsKey: string[];
      snapshotKey: string[];
      timestampKey: string[];
      threshold?: string[];
      expires?: string[];
    }) => {
      const days = parseRoleMap(o.expires, '--expires');
      const expiries: Partial<Expiries> = {};
      for (const r of ROLES) if (days[r] !== undefined) expiries[r] = Math.round(days[r] * 86400);
      const state = await initRepository(o.repo, {
        rootKeys: await loadKeys(o.rootKey),
        targetsKeys: await loadKeys(o.targetsKey),
        snapshotKeys: await loadKeys(o.snapshotKey),
        timestampKeys: await loadKeys(o.timestampKey),
        threshold: parseRoleMap(o.threshold, '--threshold'),
        expiries,
      });
      console.log(
        `repository created; ship ${path.join(o.repo, 'metadata/1.root.json')} as the device's trusted root`,
      );
      console.log(JSON.stringify({ root: state.root.signed.version, expires: state.root.signed.expires }));
    },
  );

program
  .command('add')
  .description('publish a bundle: new targets (offline key), snapshot and timestamp (online keys)')
  .requiredOption('--repo <dir>', 'repository directory')
  .requiredOption('--bundle <file>', 'bundle built by the bundle command')
  .requiredOption('--version <semver>', 'must match the bundle manifest')
  .requiredOption('--arch <arch>', 'must match the bundle manifest')
  .requiredOption('--channel <name>', 'e.g. canary, stable')
  .requiredOption('--key <pem>', 'signing key (repeat): targets, snapshot, timestamp', collect)
  .action(
    async (o: {
      repo: string;
      bundle: string;
      version: string;
      arch: string;
      channel: string;
      key: string[];
    }) => {
      const r = await addRelease(o.repo, o.bundle, {
        version: o.version,
        arch: arch(o.arch),
        channel: o.channel,
        keys: everyRole(await loadKeys(o.key)),
      });
      console.log(JSON.stringify(r));
    },
  );

program
  .command('timestamp')
  .description('re-sign the timestamp (run from a timer well within its expiry)')
  .requiredOption('--repo <dir>', 'repository directory')
  .requiredOption('--key <pem>', 'timestamp key (repeat)', collect)
  .option('--expires-in <seconds>', 'override the configured timestamp expiry')
  .action(async (o: { repo: string; key: string[]; expiresIn?: string }) => {
    const v = await refreshTimestamp(o.repo, {
      keys: everyRole(await loadKeys(o.key)),
      expiresIn: o.expiresIn !== undefined ? Number(o.expiresIn) : undefined,
    });
    console.log(JSON.stringify({ timestamp: v }));
  });

program
  .command('snapshot')
  .description('re-sign snapshot and timestamp (same targets)')
  .requiredOption('--repo <dir>', 'repository directory')
  .requiredOption('--key <pem>', 'snapshot and timestamp keys (repeat)', collect)
  .action(async (o: { repo: string; key: string[] }) => {
    console.log(
      JSON.stringify({ snapshot: await refreshSnapshot(o.repo, { keys: everyRole(await loadKeys(o.key)) }) }),
    );
  });

program
  .command('rotate')
  .description("rotate a role's keys: new root version signed by the old root threshold")
  .requiredOption('--repo <dir>', 'repository directory')
  .requiredOption('--role <role>', 'root, targets, snapshot or timestamp')
  .option('--remove <keyid>', 'key id to drop (repeat)', collect)
  .option('--add <pub.json>', 'public key to add (repeat)', collect)
  .option('--threshold <n>', 'new threshold of the role')
  .requiredOption('--root-key <pem>', 'root signer (repeat): old threshold, plus new root keys', collect)
  .option('--key <pem>', "the role's new private keys and the roles below it, to re-sign (repeat)", collect)
  .action(
    async (o: {
      repo: string;
      role: string;
      remove?: string[];
      add?: string[];
      threshold?: string;
      rootKey: string[];
      key?: string[];
    }) => {
      if (!ROLES.includes(o.role as RoleName)) throw new Error(`--role must be one of ${ROLES.join(', ')}`);
      const v = await rotateKey(o.repo, o.role as RoleName, {
        remove: o.remove,
        add: (await loadKeys(o.add)).map(publicOnly),
        threshold: o.threshold !== undefined ? Number(o.threshold) : undefined,
        rootSigners: await loadKeys(o.rootKey),
        keys: everyRole(await loadKeys(o.key)),
      });
      console.log(JSON.stringify({ root: v }));
    },
  );

program
  .command('show')
  .description('versions, expiries and releases of a repository')
  .requiredOption('--repo <dir>', 'repository directory')
  .action(async (o: { repo: string }) => {
    const s = await loadRepo(o.repo);
    const roles = { root: s.root, targets: s.targets, snapshot: s.snapshot, timestamp: s.timestamp };
    for (const [name, md] of Object.entries(roles)) {
      console.log(`${name.padEnd(10)} v${md.signed.version}  expires ${md.signed.expires}`);
    }
    for (const role of ROLES) {
      const r = s.root.signed.roles[role]!;
      console.log(
        `${role.padEnd(10)} threshold ${r.threshold} of ${r.keyIDs.map((k) => k.slice(0, 12)).join(', ')}`,
      );
    }
    for (const [p, t] of Object.entries(s.targets.signed.targets)) {
      console.log(`${p}  ${t.length} bytes  sha256 ${t.hashes.sha256}`);
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`publish: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
