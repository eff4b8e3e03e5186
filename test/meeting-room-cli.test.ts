// `sealroom room …` against a running daemon's local control API: what a technician types on the
// room box does what the touch screen does.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

const run = promisify(execFile);
let relay: Relay;
const daemons: Daemon[] = [];

async function room(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'src/cli/sealroom.ts', 'room', ...args]);
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  relay = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] } });
  for (const roomName of ['Boardroom', 'Huddle']) {
    const device = await issueDevelopmentDevice(ca, { roomName });
    daemons.push(
      await startDaemon({
        relayUrl: relay.url,
        certificatePem: device.certificatePem,
        identityKeyPem: device.identityKeyPem,
        trustAnchors: { orgCaPem: ca.certPem },
        log: silentLogger,
        media: 'none',
        controlPort: 0,
      }),
    );
  }
  const deadline = Date.now() + 15_000;
  while (!daemons.every((d) => d.state.get().relay.connected) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
}, 60_000);

afterAll(async () => {
  for (const d of daemons) await d.stop();
  await relay?.close();
});

describe('sealroom room', () => {
  it('starts, joins, admits and shows the same code in status on both rooms', async () => {
    const [a, b] = daemons as [Daemon, Daemon];
    const started = await room('start', '--control', a.controlUrl);
    expect(started.code).toBe(0);
    const meetingId = /meeting (\S+) started/.exec(started.stdout)?.[1] ?? '';
    expect(meetingId).toMatch(/^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$/);
    expect((await room('join', meetingId, '--control', b.controlUrl)).stdout).toMatch(
      /waiting for the leader/,
    );
    await expect.poll(() => a.state.get().meeting?.waiting.length, { timeout: 10_000 }).toBe(1);
    const status = await room('status', '--control', a.controlUrl);
    const waitingId = /waiting: Huddle \(Sealroom Demo Org\)\s+id (\S+)/.exec(status.stdout)?.[1] ?? '';
    expect(waitingId).not.toBe('');
    expect((await room('admit', waitingId, '--control', a.controlUrl)).code).toBe(0);
    await expect.poll(() => b.state.get().meeting?.securityCode, { timeout: 10_000 }).toBeDefined();
    const [sa, sb] = [
      await room('status', '--control', a.controlUrl),
      await room('status', '--control', b.controlUrl),
    ];
    const code = (s: string) => /code:\s+((?:\d{5} ){7}\d{5})/.exec(s)?.[1];
    expect(code(sa.stdout)).toBeDefined();
    expect(code(sa.stdout)).toBe(code(sb.stdout));
    expect(sb.stdout).toMatch(/★ Boardroom \(Sealroom Demo Org\)/);
    expect(sb.stdout).toMatch(/• Huddle \(Sealroom Demo Org\) — this room/);
  }, 60_000);

  it('says clearly what went wrong', async () => {
    const [, b] = daemons as [Daemon, Daemon];
    const notLeader = await room('lock', 'on', '--control', b.controlUrl);
    expect(notLeader.code).not.toBe(0);
    expect(notLeader.stderr).toMatch(/only the leading room can do this/);
    const unreachable = await room('status', '--control', 'http://127.0.0.1:9');
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.stderr).toMatch(/not reachable/);
  }, 30_000);
});
