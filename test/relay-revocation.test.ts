// `sealroom relay --revocations <provisioning URL>` as a real process: a device whose certificate is
// on the provisioning service's signed revocation list is refused; a list not signed by the org CA
// has no effect.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import { type RevocationList, signRevocationList } from '../src/pki/index.js';
import { loadOrCreateDevelopmentCa } from '../src/relay/dev-ca-store.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';

let dir: string;
const servers: Server[] = [];
const relays: ChildProcess[] = [];
let good: DevelopmentDevice;
let revoked: DevelopmentDevice;

/** A stand-in for the provisioning service's GET /v1/revocations. */
async function revocationService(list: RevocationList): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url !== '/v1/revocations') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

async function relayWith(revocations: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/sealroom.ts',
      'relay',
      '--dev-ca',
      join(dir, 'ca'),
      '--port',
      '0',
      '--revocations',
      revocations,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn' } },
  );
  relays.push(child);
  return new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0] ?? '') as { relay: string }).relay);
    });
    child.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealroom-revocation-'));
  const ca = await loadOrCreateDevelopmentCa(join(dir, 'ca'));
  good = await issueDevelopmentDevice(ca, { roomName: 'Good' });
  revoked = await issueDevelopmentDevice(ca, { roomName: 'Stolen' });
}, 30_000);

afterAll(async () => {
  for (const relay of relays) {
    if (relay.exitCode !== null) continue;
    const exited = new Promise((r) => relay.once('exit', r));
    relay.kill('SIGTERM');
    await exited;
  }
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const connect = (url: string, d: DevelopmentDevice) =>
  RelayConnection.connect(url, { certificatePem: d.certificatePem, identityKey: d.identityKey });
const entry = (d: DevelopmentDevice) => ({
  serial: d.serial,
  deviceId: d.deviceId,
  revokedAt: new Date().toISOString(),
});

describe('relay and the provisioning revocation list', () => {
  it('refuses a revoked device and admits the others', async () => {
    const ca = await loadOrCreateDevelopmentCa(join(dir, 'ca'));
    const url = await relayWith(await revocationService(await signRevocationList(ca, [entry(revoked)])));
    await expect(connect(url, revoked)).rejects.toMatchObject({ code: 'certificate-revoked' });
    const c = await connect(url, good);
    expect(c.identity?.roomName).toBe('Good');
    c.close();
  }, 30_000);

  it('ignores a revocation list that is not signed by the org CA', async () => {
    const forged = await signRevocationList(await createDevelopmentCa('Mallory'), [
      entry(good),
      entry(revoked),
    ]);
    const url = await relayWith(await revocationService(forged));
    for (const d of [good, revoked]) {
      const c = await connect(url, d);
      expect(c.identity?.deviceId).toBe(d.deviceId);
      c.close();
    }
  }, 30_000);
});
