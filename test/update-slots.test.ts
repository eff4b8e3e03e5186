// The device's A/B updater on a real temp directory with real release bundles (src/update/bundle.ts):
// atomic switch and state, apply → boot → gate → commit, rollback by itself (attempts, deadline,
// failed gate), crash-loop rollback after a commit, refusals (older, rejected, wrong arch, bad tar,
// busy), symlink repair, and the health gate with today's real checks (crypto self-test, the kiosk
// control server, its page, the relay connection, the media pipeline of a real media worker) and
// failing ones.
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initialState, StateStore } from '../device/daemon/state.js';
import { createControlServer } from '../device/kiosk/control-server.js';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import {
  deviceHealthChecks,
  type HealthCheck,
  kioskPageCheck,
  type MediaWorkerLike,
  mediaPipelineCheck,
  relayConnectedCheck,
  runHealthGate,
  selfTestCheck,
} from '../device/update/health-gate.js';
import { compareVersions, parseUpdateState } from '../device/update/slots.js';
import { UpdateError, Updater } from '../device/update/updater.js';
import { buildAppBundle, startCurrent } from '../scripts/powercut-ota.js';
import { silentLogger } from '../src/util/log.js';
import { RoomDouble } from './kiosk-room-double.js';
import { worker } from './media-harness.js';

let work: string;
const bundles: Record<string, string> = {};
let n = 0;

beforeAll(async () => {
  work = fs.mkdtempSync(join(tmpdir(), 'sealroom-slots-'));
  for (const v of ['1.0.0', '2.0.0', '3.0.0', '0.9.0'])
    bundles[v] = await buildAppBundle(work, v, { files: 2 });
  bundles.otherArch = await buildAppBundle(join(work), '4.0.0', {
    arch: process.arch === 'arm64' ? 'x64' : 'arm64',
    files: 1,
  });
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function fresh(o: Partial<ConstructorParameters<typeof Updater>[0]> = {}) {
  const root = join(work, `root-${n++}`, 'app');
  let restarts = 0;
  const u = new Updater({
    root,
    restart: () => {
      restarts++;
    },
    ...o,
  });
  return { u, root, restarts: () => restarts };
}

const state = (root: string) => parseUpdateState(fs.readFileSync(join(root, 'update-state.json'), 'utf8'));
const link = (root: string) => fs.readlinkSync(join(root, 'current'));

describe('A/B slots', () => {
  it('installs, applies on trial, boots, commits; the box runs the new version', async () => {
    const { u, root, restarts } = fresh();
    await u.install(bundles['1.0.0']!);
    expect(link(root)).toBe('slots/a');
    expect(startCurrent(root)).toBe('1.0.0');
    const r = await u.apply(bundles['2.0.0']!);
    expect(r).toEqual({ slot: 'b', version: '2.0.0' });
    expect(restarts()).toBe(1);
    expect(link(root)).toBe('slots/b');
    expect(state(root).pending).toMatchObject({ slot: 'b', version: '2.0.0', attempts: 0 });
    expect(state(root).committedVersion).toBe('1.0.0');
    const d = await u.bootCheck();
    expect(d).toMatchObject({ action: 'try-pending', slot: 'b', version: '2.0.0', repaired: false });
    expect(startCurrent(root)).toBe('2.0.0');
    expect(await u.commit()).toEqual({ committed: true, version: '2.0.0' });
    const s = state(root);
    expect(s).toMatchObject({
      current: 'b',
      committedVersion: '2.0.0',
      previous: { slot: 'a', version: '1.0.0' },
    });
    expect(s.pending).toBeUndefined();
    // No temporary files left behind.
    expect(fs.readdirSync(root).sort()).toEqual(['current', 'slots', 'update-state.json']);
    // The next update reuses slot a: the way back is dropped first.
    await u.apply(bundles['3.0.0']!);
    expect(state(root).previous).toBeUndefined();
    expect(state(root).pending).toMatchObject({ slot: 'a', version: '3.0.0' });
    expect(startCurrent(root)).toBe('3.0.0');
  });

  it('rolls back by itself after maxAttempts starts without a commit, and refuses that version again', async () => {
    const { u, root } = fresh({ maxAttempts: 3 });
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    for (let i = 1; i <= 3; i++) expect((await u.bootCheck()).action).toBe('try-pending');
    const d = await u.bootCheck();
    expect(d).toMatchObject({ action: 'rolled-back', slot: 'a', version: '1.0.0' });
    expect(d.reason).toContain('3 times');
    expect(link(root)).toBe('slots/a');
    expect(startCurrent(root)).toBe('1.0.0');
    expect(state(root).rejected).toEqual(['2.0.0']);
    await expect(u.apply(bundles['2.0.0']!)).rejects.toMatchObject({ code: 'rejected' });
    expect(link(root)).toBe('slots/a');
    await u.apply(bundles['2.0.0']!, { force: true });
    expect(state(root).pending?.version).toBe('2.0.0');
  });

  it('rolls back when the version on trial is past its deadline', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const { u, root } = fresh({ now: () => now, updateDeadlineMs: 60_000 });
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    now += 61_000;
    expect(await u.bootCheck()).toMatchObject({ action: 'rolled-back', version: '1.0.0' });
    expect(startCurrent(root)).toBe('1.0.0');
  });

  it('rolls back a committed version in a crash loop (N starts within M minutes, never healthy)', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const { u, root } = fresh({ now: () => now, crashLoop: { starts: 4, windowMs: 5 * 60_000 } });
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    await u.bootCheck();
    await u.commit();
    // Spread-out starts and healthy ones do not count.
    for (let i = 0; i < 6; i++) {
      now += 10 * 60_000;
      expect((await u.bootCheck()).action).toBe('start');
    }
    for (let i = 0; i < 2; i++) {
      now += 1000;
      expect((await u.bootCheck()).action).toBe('start'); // 3 starts within the window with the last one
    }
    await u.commit(); // the gate passed: healthy, the count starts over
    for (let i = 0; i < 3; i++) {
      now += 1000;
      expect((await u.bootCheck()).action).toBe('start');
    }
    now += 1000;
    const d = await u.bootCheck();
    expect(d).toMatchObject({ action: 'crash-loop-rollback', slot: 'a', version: '1.0.0' });
    expect(startCurrent(root)).toBe('1.0.0');
    expect(state(root)).toMatchObject({ current: 'a', committedVersion: '1.0.0', rejected: ['2.0.0'] });
    // The rejected version is not rolled "forward" to if the old one loops as well.
    for (let i = 0; i < 6; i++) expect((await u.bootCheck()).action).toBe('start');
  });

  it('a technician rolls back a committed version and a version on trial', async () => {
    const { u, root, restarts } = fresh();
    await u.install(bundles['1.0.0']!);
    await expect(u.rollback()).rejects.toMatchObject({ code: 'nothing-to-roll-back' });
    await u.apply(bundles['2.0.0']!);
    await u.bootCheck();
    await u.commit();
    expect(await u.rollback()).toEqual({ slot: 'a', version: '1.0.0' });
    expect(startCurrent(root)).toBe('1.0.0');
    expect(state(root).previous).toEqual({ slot: 'b', version: '2.0.0' });
    await u.apply(bundles['3.0.0']!);
    expect(await u.rollback()).toEqual({ slot: 'a', version: '1.0.0' });
    expect(restarts()).toBe(4);
    expect(state(root).pending).toBeUndefined();
  });

  it('refuses older or equal versions, another architecture, a bad tar, and a second update on trial', async () => {
    const { u, root } = fresh();
    await u.install(bundles['1.0.0']!);
    await expect(u.apply(bundles['0.9.0']!)).rejects.toMatchObject({ code: 'not-newer' });
    await expect(u.apply(bundles['1.0.0']!)).rejects.toMatchObject({ code: 'not-newer' });
    await expect(u.apply(bundles['2.0.0']!, { expectedVersion: '1.0.0' })).rejects.toMatchObject({
      code: 'not-newer',
    });
    await expect(u.apply(bundles.otherArch!)).rejects.toMatchObject({ code: 'bad-bundle' });
    await expect(u.apply(bundles['2.0.0']!, { expectedVersion: '2.0.1' })).rejects.toMatchObject({
      code: 'bad-bundle',
    });
    // A tar whose entry climbs out of the slot.
    const evil = join(work, 'evil.tar.gz');
    await new Promise<void>((resolve, reject) => {
      const p = pack();
      p.entry(
        { name: 'sealroom-release.json' },
        JSON.stringify({ name: 'sealroom', version: '5.0.0', arch: process.arch, node: '>=20', files: 1 }),
      );
      p.entry({ name: '../../../escaped.js' }, 'owned');
      p.finalize();
      const out = fs.createWriteStream(evil);
      p.pipe(createGzip()).pipe(out);
      out.on('finish', resolve);
      out.on('error', reject);
    });
    await expect(u.apply(evil)).rejects.toBeInstanceOf(UpdateError);
    expect(fs.existsSync(join(root, '..', 'escaped.js'))).toBe(false);
    expect(fs.existsSync(join(work, 'escaped.js'))).toBe(false);
    // Nothing changed on the box.
    expect(state(root).pending).toBeUndefined();
    expect(link(root)).toBe('slots/a');
    expect(startCurrent(root)).toBe('1.0.0');
    await u.apply(bundles['2.0.0']!);
    await expect(u.apply(bundles['3.0.0']!)).rejects.toMatchObject({ code: 'busy' });
  });

  it('repairs the symlink when a power cut left it behind the state', async () => {
    const { u, root } = fresh();
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    fs.rmSync(join(root, 'current'));
    fs.symlinkSync('slots/a', join(root, 'current'));
    expect(await u.bootCheck()).toMatchObject({ action: 'try-pending', slot: 'b', repaired: true });
    expect(startCurrent(root)).toBe('2.0.0');
    fs.rmSync(join(root, 'current'));
    expect(await u.bootCheck()).toMatchObject({ slot: 'b', repaired: true });
    // A pending slot that does not hold its version is given up.
    fs.rmSync(join(root, 'slots', 'b', 'sealroom-release.json'));
    expect(await u.bootCheck()).toMatchObject({ action: 'rolled-back', version: '1.0.0' });
    expect(startCurrent(root)).toBe('1.0.0');
  });

  it('orders semantic versions', () => {
    expect(compareVersions('1.10.0', '1.9.9')).toBe(1);
    expect(compareVersions('2.0.0-rc.1', '2.0.0')).toBe(-1);
    expect(compareVersions('2.0.0-rc.10', '2.0.0-rc.9')).toBe(1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect(() => compareVersions('1.0', '1.0.0')).toThrow();
  });
});

describe('health gate', () => {
  let server: Awaited<ReturnType<typeof createControlServer>>;
  let store: StateStore;

  beforeAll(async () => {
    const uiDir = join(work, 'ui');
    fs.mkdirSync(uiDir, { recursive: true });
    fs.writeFileSync(join(uiDir, 'index.html'), '<!doctype html><html><body>room</body></html>');
    store = new StateStore(initialState('2.0.0'));
    server = await createControlServer({
      state: store,
      actions: new RoomDouble(store),
      log: silentLogger,
      uiDir,
    });
  });

  afterAll(async () => {
    await server.close();
  });

  it("passes with today's real checks against a real control server once the relay is connected", async () => {
    const checks = deviceHealthChecks(server.url);
    expect(checks.map((c) => c.name)).toEqual([
      'crypto self-test',
      'kiosk control server',
      'kiosk page',
      'relay connection',
    ]);
    setTimeout(() => store.update((s) => (s.relay = { connected: true })), 150);
    const r = await runHealthGate(checks, { timeoutMs: 10_000, retryMs: 50 });
    expect(r.ok).toBe(true);
    const relay = r.checks.find((c) => c.name === 'relay connection')!;
    expect(relay.tries).toBeGreaterThan(1);
  });

  it('fails on the deadline when a check never passes (relay down, page gone, a check that hangs)', async () => {
    store.update((s) => (s.relay = { connected: false }));
    const hang: HealthCheck = { name: 'hangs', run: () => new Promise(() => {}) };
    const r = await runHealthGate(
      [selfTestCheck(), relayConnectedCheck(server.url), kioskPageCheck('http://127.0.0.1:1/'), hang],
      { timeoutMs: 400, retryMs: 50 },
    );
    expect(r.ok).toBe(false);
    expect(Object.fromEntries(r.checks.map((c) => [c.name, c.ok]))).toEqual({
      'crypto self-test': true,
      'relay connection': false,
      'kiosk page': false,
      hangs: false,
    });
    expect(r.ms).toBeLessThan(3000);
  });

  it('commits a version on trial that passes, and rolls back by itself one that fails', async () => {
    const { u, root, restarts } = fresh();
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    await u.bootCheck();
    store.update((s) => (s.relay = { connected: true }));
    const ok = await u.gate(deviceHealthChecks(server.url), { timeoutMs: 10_000, retryMs: 50 });
    expect(ok.outcome).toBe('committed');
    expect(state(root).committedVersion).toBe('2.0.0');
    await u.apply(bundles['3.0.0']!);
    await u.bootCheck();
    store.update((s) => (s.relay = { connected: false }));
    const bad = await u.gate(deviceHealthChecks(server.url), { timeoutMs: 300, retryMs: 50 });
    expect(bad.outcome).toBe('rolled-back');
    expect(restarts()).toBe(3); // two applies, one rollback
    expect(state(root)).toMatchObject({ current: 'b', committedVersion: '2.0.0', rejected: ['3.0.0'] });
    expect(state(root).last?.detail).toContain('relay connection');
    expect(startCurrent(root)).toBe('2.0.0');
    // A committed version that fails its gate is only reported (the crash-loop detector decides).
    const again = await u.gate([relayConnectedCheck(() => false)], { timeoutMs: 100, retryMs: 20 });
    expect(again.outcome).toBe('unhealthy');
  });
});

describe('health gate: media pipeline (a real media worker, test profile)', () => {
  const running: MediaSupervisor[] = [];
  afterAll(async () => {
    await Promise.all(running.map((w) => w.stop()));
  });

  it('passes once the worker runs with its pipelines playing; fails when the worker dies', async () => {
    const store = new StateStore(initialState('2.0.0'));
    const w = worker({ pattern: 'red' }, { state: store, backoffMs: [60_000] });
    running.push(w);
    const check = mediaPipelineCheck(w, () => store.get().media.worker);
    expect(
      deviceHealthChecks('http://127.0.0.1:1/', {
        media: { supervisor: w, worker: () => store.get().media.worker },
      }).map((c) => c.name),
    ).toContain('media pipeline');
    // The gate starts before the worker does (as after a restart): it retries until the pipelines play.
    const gate = runHealthGate([check], { timeoutMs: 30_000, retryMs: 100 });
    await w.start();
    const r = await gate;
    expect(r.ok).toBe(true);
    expect(r.checks[0]!.detail).toContain('pipelines playing');
    expect(r.checks[0]!.tries).toBeGreaterThan(1);
    expect(w.lastStatus).toMatchObject({ pipelines: 'playing', camera: 'ok', microphone: 'ok' });

    // Worker killed (restart far away): no status, state 'restarting' → the gate fails on its deadline.
    const exited = new Promise((res) => w.once('exit', res));
    process.kill(w.pid as number, 'SIGKILL');
    await exited;
    expect(w.lastStatus).toBeUndefined();
    const down = await runHealthGate([check], { timeoutMs: 500, retryMs: 50 });
    expect(down.ok).toBe(false);
    expect(down.checks[0]!.detail).toBe('media worker restarting');
    await w.stop();
  }, 60_000);

  it('a version whose media worker cannot start fails the gate and is rolled back', async () => {
    const store = new StateStore(initialState('3.0.0'));
    const dead = join(work, 'dead-worker.mjs');
    fs.writeFileSync(dead, 'process.exit(3);\n');
    const w = worker({}, { state: store, workerPath: dead, backoffMs: [100] });
    running.push(w);
    void w.start(); // never resolves: the worker never says ready
    const { u, root } = fresh();
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    await u.bootCheck();
    const g = await u.gate([mediaPipelineCheck(w, () => store.get().media.worker)], {
      timeoutMs: 800,
      retryMs: 50,
    });
    expect(g.outcome).toBe('rolled-back');
    expect(state(root)).toMatchObject({ committedVersion: '1.0.0', rejected: ['2.0.0'] });
    expect(state(root).last?.detail).toContain('media pipeline');
    expect(startCurrent(root)).toBe('1.0.0');
    await w.stop();
  }, 30_000);

  it('fails on stopped pipelines, failed capture, or a worker that does not answer', async () => {
    const fake = (s: MediaWorkerLike['lastStatus'], answers = true): MediaWorkerLike => ({
      lastStatus: s,
      probe: () => (answers ? Promise.resolve({}) : Promise.reject(new Error('no answer'))),
    });
    const ok = { pipelines: 'playing', camera: 'ok', microphone: 'ok' } as const;
    const cases: [MediaWorkerLike, string][] = [
      [fake({ ...ok, pipelines: 'stopped' }), 'media pipelines stopped'],
      [fake({ ...ok, camera: 'missing' }), 'camera capture missing'],
      [fake({ ...ok, microphone: 'restarting' }), 'microphone capture restarting'],
      [fake(undefined), 'the media worker has not reported its pipelines'],
      [fake(ok, false), 'no answer'],
    ];
    for (const [media, detail] of cases) {
      const r = await runHealthGate([mediaPipelineCheck(media, () => 'running')], {
        timeoutMs: 150,
        retryMs: 30,
      });
      expect(r.ok).toBe(false);
      expect(r.checks[0]!.detail).toBe(detail);
    }
    const starting = await runHealthGate([mediaPipelineCheck(fake(ok), () => 'starting')], {
      timeoutMs: 150,
      retryMs: 30,
    });
    expect(starting.checks[0]!.detail).toBe('media worker starting');
    expect(
      (await runHealthGate([mediaPipelineCheck(fake(ok), () => 'running')], { timeoutMs: 150 })).ok,
    ).toBe(true);
  });
});
