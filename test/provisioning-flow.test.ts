// The whole flow with real processes, on SQLite and on PostgreSQL: `sealroom provisioning serve`,
// a device running `sealroom provisioning enroll-device` (killed with SIGKILL mid-enrollment and
// restarted), and IT using `sealroom admin …`. All of it over HTTPS: the service makes its TLS CA,
// the device pins it at first use, IT's CLI trusts it with --tls-ca.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackendName, backends, PostgresCluster } from './provisioning-backends.js';

const repo = resolve(import.meta.dirname, '..');
const cli = join(repo, 'src/cli/sealroom.ts');
const node = process.execPath;
const run = promisify(execFile);

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** A child process whose stdout lines (JSON when possible) we can wait for. */
class Proc {
  readonly lines: unknown[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    this.child = spawn(node, ['--import', 'tsx', cli, ...args], {
      cwd: repo,
      env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push(line);
        }
      });
    }
  }
  async waitFor<T>(pick: (line: unknown) => T | undefined, what: string, ms = 30_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      for (const l of this.lines) {
        const v = pick(l);
        if (v !== undefined) return v;
      }
      if (Date.now() > end || this.child.exitCode !== null) {
        throw new Error(`${what} not seen; output:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

type Line = {
  enrollment?: { status: string; activationCode?: string; message?: string };
  device?: { deviceId?: string };
  config?: Record<string, unknown>;
};

describe.each(backends)('provisioning end to end with real processes on %s', (backend: BackendName) => {
  const procs: Proc[] = [];
  let dir: string;
  let url: string;
  let env: Record<string, string | undefined>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-flow-'));
    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    env = { DATABASE_URL: backend === 'postgres' ? await cluster.createDatabase() : undefined };
    const svc = new Proc(
      ['provisioning', 'serve', '--data-dir', join(dir, 'svc'), '--port', String(port), '--org', 'Acme Corp'],
      env,
    );
    procs.push(svc);
    await svc.waitFor(
      (l) => (typeof l === 'string' && l.includes('provisioning service on') ? true : undefined),
      'service start',
    );
  });

  afterAll(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = async (...args: string[]) => {
    const { stdout } = await run(
      node,
      [
        '--import',
        'tsx',
        cli,
        'admin',
        '--url',
        url,
        '--tls-ca',
        join(dir, 'svc', 'tls', 'ca.pem'),
        '--token-file',
        join(dir, 'svc', 'admin-token'),
        ...args,
      ],
      { cwd: repo },
    );
    return stdout;
  };

  it('enrolls a device, survives a device kill, claims, heartbeats, pushes config, revokes, audits', async () => {
    const deviceArgs = [
      'provisioning',
      'enroll-device',
      '--state-dir',
      join(dir, 'device'),
      '--service-url',
      url,
      '--poll-interval',
      '300',
      '--heartbeat-interval',
      '500',
    ];
    const first = new Proc(deviceArgs);
    procs.push(first);
    const code = await first.waitFor((l) => (l as Line).enrollment?.activationCode, 'activation code');
    await first.kill('SIGKILL'); // power cut while waiting for IT

    const device = new Proc(deviceArgs);
    procs.push(device);
    expect(await device.waitFor((l) => (l as Line).enrollment?.activationCode, 'code after restart')).toBe(
      code,
    );
    const deviceId = await device.waitFor((l) => (l as Line).device?.deviceId, 'device id');

    const claimed = JSON.parse(
      await admin('claim', code, '--room', "Salle O'Keeffe; 2", '--site', 'Paris', '--json'),
    );
    expect(claimed).toMatchObject({ id: deviceId, status: 'active', roomName: "Salle O'Keeffe; 2" });
    await device.waitFor(
      (l) => ((l as Line).enrollment?.status === 'enrolled' ? true : undefined),
      'enrolled',
    );
    const verified = execFileSync('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'svc', 'ca.pem'),
      join(dir, 'device', 'device.pem'),
    ]).toString();
    expect(verified).toMatch(/: OK/);

    await admin('config', deviceId, '{"volume":15}');
    await device.waitFor(
      (l) => ((l as Line).config?.volume === 15 ? true : undefined),
      'config in a heartbeat reply',
    );

    // Heartbeats are written in batches (provisioning/service/heartbeats.ts): within a second or so.
    let shown = JSON.parse(await admin('show', deviceId, '--json'));
    for (let i = 0; i < 50 && !shown.lastSeenAt; i++) {
      await new Promise((r) => setTimeout(r, 200));
      shown = JSON.parse(await admin('show', deviceId, '--json'));
    }
    expect(shown.lastSeenAt).toEqual(expect.any(String));
    expect(shown.health.peripherals).toMatchObject({
      present: expect.any(Array),
      missing: expect.any(Array),
    });
    expect(shown.health.memory.totalBytes).toBeGreaterThan(0);
    const table = await admin('list', '--site', 'Paris');
    expect(table).toContain(deviceId);
    expect(table).toMatch(/^DEVICE\s+STATUS\s+ROOM/);

    await admin('revoke', deviceId, '--reason', 'left the building');
    // Believed only because the 403 carries the org CA's CRL listing this device.
    await device.waitFor(
      (l) => (/was revoked by IT/.test((l as Line).enrollment?.message ?? '') ? true : undefined),
      'device learns it is revoked',
    );
    expect(
      execFileSync('openssl', [
        'x509',
        '-noout',
        '-fingerprint',
        '-sha256',
        '-in',
        join(dir, 'device', 'provisioning-ca.pem'),
      ]).toString(),
    ).toBe(
      execFileSync('openssl', [
        'x509',
        '-noout',
        '-fingerprint',
        '-sha256',
        '-in',
        join(dir, 'svc', 'tls', 'ca.pem'),
      ]).toString(),
    );
    const audit = JSON.parse(await admin('audit', '--device', deviceId, '--json')) as {
      action: string;
      actor: string;
    }[];
    expect(audit.map((a) => a.action)).toEqual(['device.revoke', 'device.config', 'device.claim']);
    expect(audit.every((a) => a.actor === 'bootstrap')).toBe(true);
  });
});
