// Native addons of a staged release tree for an architecture other than this machine's (issue 14:
// most room boxes are ARM; releases are staged on x64). Used by `publish.ts stage --arch arm64`.
//
//   host toolchain   g++-aarch64-linux-gnu (Debian's cross compiler), qemu-user-static (verify-arm64.ts)
//   arm64 sysroot    the arm64 .debs of GStreamer's headers and libraries (and their runtime deps),
//                    fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a directory,
//                    never installed: installing libgstreamer-plugins-base1.0-dev:arm64 multiarch makes
//                    apt remove the amd64 one (and upgrade ~30 amd64 libraries in lockstep), and the
//                    project's amd64 GStreamer must stay. The same directory is the `-L` root for qemu.
//   addons           node-gyp with --arch=arm64 against this Node's headers (npm's nodedir), the cross
//                    compiler and pkg-config pointed at the sysroot; pkg-prebuilds packages (node-hid)
//                    keep their shipped prebuild when `pkg-prebuilds-verify` accepts it for the arch.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Arch } from '../../src/update/bundle.js';
import { addonArchProblems } from '../../src/update/elf-arch.js';

const say = (msg: string): void => console.log(`[cross-build] ${msg}`);

/** Host (amd64) packages: the cross compiler, and the emulator verify-arm64.ts runs the addons under. */
export const HOST_PACKAGES = ['g++-aarch64-linux-gnu', 'qemu-user-static'];

/**
 * arm64 packages unpacked into the sysroot: what `pkg-config gstreamer-1.0 gstreamer-app-1.0
 * gstreamer-video-1.0` needs (the .pc files, headers and .so links, including the Requires.private
 * of the .pc files), and what the three addons and Node load at run time under qemu (libc, libstdc++,
 * libudev and libusb for node-hid's prebuild). Hand-picked rather than apt's closure, which for
 * libgstreamer-plugins-base1.0-dev pulls Mesa, LLVM, X11 and Wayland (~250 packages) for the GL library
 * the binding does not use.
 */
export const SYSROOT_PACKAGES_ARM64 = [
  // build: headers, .pc files, .so links
  'libgstreamer1.0-dev',
  'libgstreamer-plugins-base1.0-dev',
  'libglib2.0-dev',
  'libunwind-dev',
  'libdw-dev',
  'libelf-dev',
  'liborc-0.4-dev',
  'libffi-dev',
  'libmount-dev',
  'libblkid-dev',
  'libpcre2-dev',
  'libselinux1-dev',
  'libsepol-dev',
  'zlib1g-dev',
  'liblzma-dev',
  'libzstd-dev',
  'libbz2-dev',
  // run time (and link time: the -rpath-link targets)
  'libc6',
  'libgcc-s1',
  'libstdc++6',
  'libgstreamer1.0-0',
  'libgstreamer-plugins-base1.0-0',
  'libglib2.0-0',
  'libffi8',
  'libmount1',
  'libblkid1',
  'libpcre2-8-0',
  'libpcre2-16-0',
  'libpcre2-32-0',
  'libpcre2-posix3',
  'libselinux1',
  'libsepol2',
  'zlib1g',
  'libcap2',
  'libdw1',
  'libelf1',
  'libunwind8',
  'liblzma5',
  'libzstd1',
  'libbz2-1.0',
  'liborc-0.4-0',
  'libudev1',
  'libusb-1.0-0',
];

/** Debian's name for a Node arch, and the GNU triplet of its cross tools. */
const DEB_ARCH: Record<Arch, string> = { x64: 'amd64', arm64: 'arm64' };
const TRIPLET: Record<Arch, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

export function hostArch(): Arch {
  if (process.platform !== 'linux') throw new Error(`releases are staged on Linux, not ${process.platform}`);
  if (process.arch === 'x64' || process.arch === 'arm64') return process.arch;
  throw new Error(`unsupported build machine arch ${process.arch}`);
}

export function defaultSysroot(arch: Arch): string {
  return path.join(os.tmpdir(), `sealroom-sysroot-${arch}`);
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${tail}`);
  }
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// Debian packages (the way scripts/setup.sh does it: dpkg-query, then apt-get)

function asRoot(): string[] {
  if (process.getuid?.() === 0) return [];
  if (spawnSync('sudo', ['-n', 'true']).status === 0) return ['sudo', '-n'];
  throw new Error('need root (or passwordless sudo) to install Debian packages; run scripts/setup.sh');
}

function sudoRun(args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const prefix = asRoot();
  const [cmd, ...rest] = [...prefix, ...args];
  return run(cmd!, rest, { env });
}

export function dpkgInstalled(pkg: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a template
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/**
 * Installs the missing host packages. apt is simulated first and the install refused if it would
 * remove any package (the project's amd64 GStreamer and Chromium must stay).
 */
export function ensureAptPackages(pkgs: string[]): void {
  const missing = pkgs.filter((p) => !dpkgInstalled(p));
  if (missing.length === 0) return;
  say(`installing Debian packages: ${missing.join(' ')}`);
  sudoRun(['apt-get', 'update', '-qq']);
  const sim = run('apt-get', ['install', '-s', '--no-install-recommends', ...missing]);
  const removals = sim.split('\n').filter((l) => l.startsWith('Remv '));
  if (removals.length > 0) {
    throw new Error(
      `refusing: installing ${missing.join(' ')} would remove packages:\n${removals.join('\n')}`,
    );
  }
  sudoRun(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...missing], {
    ...process.env,
    DEBIAN_FRONTEND: 'noninteractive',
  });
}

/** dpkg learns the arch (for `apt-get download pkg:arm64`); nothing of that arch gets installed. */
export function ensureForeignArch(arch: Arch): void {
  const deb = DEB_ARCH[arch];
  const native = run('dpkg', ['--print-architecture']).trim();
  if (native === deb) return;
  const foreign = run('dpkg', ['--print-foreign-architectures']).split('\n');
  if (!foreign.includes(deb)) {
    say(`dpkg --add-architecture ${deb} (package lists only; no ${deb} package is installed)`);
    sudoRun(['dpkg', '--add-architecture', deb]);
    sudoRun(['apt-get', 'update', '-qq']);
  } else if (spawnSync('apt-cache', ['show', `libc6:${deb}`], { stdio: 'ignore' }).status !== 0) {
    say(`apt-get update (no ${deb} package lists yet)`);
    sudoRun(['apt-get', 'update', '-qq']);
  }
}

/**
 * Unpacks the arm64 packages into `dir` (kept between runs: a stamp lists the exact .deb files, so a
 * Debian point release refreshes it). Returns the sysroot path.
 */
export async function ensureSysroot(arch: Arch, dir: string): Promise<string> {
  ensureForeignArch(arch);
  const deb = DEB_ARCH[arch];
  const wanted = SYSROOT_PACKAGES_ARM64.map((p) => `${p}:${deb}`);
  // 'URL' file size SHA256:… — the file names carry the versions.
  const uris = run('apt-get', ['download', '--print-uris', ...wanted]);
  const files = uris
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((f): f is string => !!f)
    .sort();
  const stampFile = path.join(dir, '.sealroom-sysroot');
  const stamp = `${files.join('\n')}\n`;
  if ((await readFile(stampFile, 'utf8').catch(() => '')) === stamp) return dir;
  say(`sysroot ${dir}: downloading ${files.length} ${deb} packages (apt-get download, about 16 MB)`);
  await rm(dir, { recursive: true, force: true });
  const debs = path.join(dir, '.debs');
  await mkdir(debs, { recursive: true });
  // Downloads into our own dir as root: apt's sandbox user could not write there (harmless warning).
  run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', ...wanted], { cwd: debs });
  say(`sysroot ${dir}: unpacking (dpkg-deb -x)`);
  for (const f of (await readdir(debs)).filter((f) => f.endsWith('.deb')).sort()) {
    run('dpkg-deb', ['-x', path.join(debs, f), dir]);
  }
  await rm(debs, { recursive: true, force: true });
  await writeFile(stampFile, stamp);
  return dir;
}

// ---------------------------------------------------------------------------------------------
// addons

function nodeGypScript(): string {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(
      run('npm', ['prefix', '-g']).trim(),
      'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    ),
  ];
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error(`node-gyp not found (looked at ${candidates.filter(Boolean).join(', ')})`);
  return found;
}

/** The Node headers npm builds against (~/.npmrc nodedir=/usr here: no download of headers). */
function nodeDir(): string {
  const fromNpm = run('npm', ['config', 'get', 'nodedir']).trim();
  const dirs = [fromNpm, path.resolve(path.dirname(process.execPath), '..')];
  const found = dirs.find((d) => d && d !== 'undefined' && existsSync(path.join(d, 'include/node/node.h')));
  if (!found) throw new Error('no Node headers: set npm nodedir (e.g. npm config set nodedir /usr)');
  return found;
}

/** Packages under node_modules (nested ones too) that have a binding.gyp. */
async function gypPackages(nodeModules: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!d.isDirectory() || d.name.startsWith('.')) continue;
      const pkg = path.join(dir, d.name);
      if (d.name.startsWith('@')) {
        await visit(pkg);
        continue;
      }
      if (existsSync(path.join(pkg, 'binding.gyp'))) out.push(pkg);
      await visit(path.join(pkg, 'node_modules'));
    }
  };
  await visit(nodeModules);
  return out.sort();
}

/**
 * Removes the prebuilds of other platforms (node-hid ships darwin, win32, musl, arm and x64 ones):
 * the device never loads them, and the bundle's arch check would refuse them.
 */
export async function pruneForeignPrebuilds(stageDir: string, arch: Arch): Promise<string[]> {
  const removed: string[] = [];
  const keep = new RegExp(`(^|-)linux-${arch}$`);
  const visit = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!d.isDirectory()) continue;
      const p = path.join(dir, d.name);
      if (d.name === 'prebuilds') {
        for (const sub of await readdir(p, { withFileTypes: true })) {
          if (!sub.isDirectory() || keep.test(sub.name)) continue;
          const subDir = path.join(p, sub.name);
          // Only Node addons: other runtimes' prebuilds (bare-* ship .bare files) are not ours to judge.
          if (!(await readdir(subDir)).some((f) => f.endsWith('.node'))) continue;
          await rm(subDir, { recursive: true });
          removed.push(path.relative(stageDir, subDir));
        }
      } else {
        await visit(p);
      }
    }
  };
  await visit(path.join(stageDir, 'node_modules'));
  return removed;
}

/** Applies the checkout's patches/ to the staged node_modules with the checkout's patch-package. */
export function applyPatches(stageDir: string, from: string): void {
  const patches = path.join(from, 'patches');
  if (!existsSync(patches)) return;
  const bin = path.join(from, 'node_modules/patch-package/index.js');
  if (!existsSync(bin))
    throw new Error(`patch-package missing in ${from}/node_modules: run scripts/setup.sh`);
  say(`applying ${path.relative(from, patches)}/ (patch-package)`);
  run(process.execPath, [bin, '--error-on-fail', '--patch-dir', path.relative(stageDir, patches)], {
    cwd: stageDir,
  });
}

export interface CrossBuildResult {
  /** Package dir (relative to the stage) → how its addon was obtained and how long it took. */
  addons: { pkg: string; how: 'node-gyp' | 'prebuild'; ms: number }[];
  prunedPrebuilds: string[];
}

/**
 * Builds (or checks the prebuilds of) every package with a binding.gyp in `stageDir/node_modules`
 * for `arch`, after `npm ci --ignore-scripts` and the patches. Fails if any `.node` file left in the
 * tree is not an ELF for `arch`.
 */
export async function crossBuildAddons(o: {
  stageDir: string;
  arch: Arch;
  sysroot: string;
  jobs?: number;
}): Promise<CrossBuildResult> {
  const { stageDir, arch, sysroot } = o;
  const triplet = TRIPLET[arch];
  const libDirs = [`${sysroot}/usr/lib/${triplet}`, `${sysroot}/lib/${triplet}`];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_arch: arch,
    npm_config_target_arch: arch,
    npm_config_platform: 'linux',
    CC: `${triplet}-gcc`,
    CXX: `${triplet}-g++`,
    LINK: `${triplet}-g++`,
    AR: `${triplet}-ar`,
    // pkg-config reads only the sysroot's .pc files and prefixes their -I/-L with it.
    PKG_CONFIG_SYSROOT_DIR: sysroot,
    PKG_CONFIG_LIBDIR: [`${sysroot}/usr/lib/${triplet}/pkgconfig`, `${sysroot}/usr/share/pkgconfig`].join(
      ':',
    ),
    PKG_CONFIG_PATH: '',
    // The libraries' own dependencies (glib → pcre2, ffi, …) are found at link time here, not in /usr.
    LDFLAGS: libDirs.map((d) => `-Wl,-rpath-link,${d}`).join(' '),
  };
  for (const tool of [env.CC!, env.CXX!]) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`${tool} missing: install ${HOST_PACKAGES[0]} (scripts/setup.sh)`);
    }
  }
  const gyp = nodeGypScript();
  const nodedir = nodeDir();
  const jobs = String(o.jobs ?? Math.max(1, os.availableParallelism()));
  const result: CrossBuildResult = { addons: [], prunedPrebuilds: [] };
  for (const pkg of await gypPackages(path.join(stageDir, 'node_modules'))) {
    const rel = path.relative(stageDir, pkg);
    const manifest = JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    const t0 = Date.now();
    // What npm would run first for pkg-prebuilds packages: is there a prebuild for npm_config_arch?
    if (/pkg-prebuilds-verify/.test(manifest.scripts?.install ?? '')) {
      const verify = path.join(stageDir, 'node_modules/pkg-prebuilds/bin/verify.mjs');
      const options = /pkg-prebuilds-verify\s+(\S+)/.exec(manifest.scripts!.install!)![1]!;
      const r = spawnSync(process.execPath, [verify, options], { cwd: pkg, env, encoding: 'utf8' });
      if (r.status === 0) {
        say(`${rel}: prebuild for linux-${arch} accepted by pkg-prebuilds-verify`);
        result.addons.push({ pkg: rel, how: 'prebuild', ms: Date.now() - t0 });
        continue;
      }
      say(`${rel}: no prebuild for linux-${arch}, building`);
    }
    say(`${rel}: node-gyp rebuild --arch=${arch} (${env.CXX})`);
    run(
      process.execPath,
      [gyp, 'rebuild', '--release', `--arch=${arch}`, `--nodedir=${nodedir}`, '--jobs', jobs],
      { cwd: pkg, env },
    );
    const ms = Date.now() - t0;
    say(`${rel}: built in ${(ms / 1000).toFixed(1)} s`);
    result.addons.push({ pkg: rel, how: 'node-gyp', ms });
  }
  result.prunedPrebuilds = await pruneForeignPrebuilds(stageDir, arch);
  await assertAddonsArch(stageDir, arch);
  return result;
}

/** Throws, naming each file, unless every `.node` file under `dir` is an ELF for `arch`. */
export async function assertAddonsArch(dir: string, arch: Arch): Promise<void> {
  const problems = await addonArchProblems(dir, arch);
  if (problems.length > 0) {
    throw new Error(
      `native addons not for linux-${arch}:\n${problems.map((p) => `  ${p.file}: ${p.problem}`).join('\n')}`,
    );
  }
}
