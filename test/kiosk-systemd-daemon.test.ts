// `sealroom daemon` as sealroom-daemon.service runs it (Type=notify, WatchdogSec): a real process with
// $NOTIFY_SOCKET pointing at a datagram socket played by python3; it must say READY=1 once its control
// server answers, keep pinging WATCHDOG=1, and say STOPPING=1 on SIGTERM, then exit 0.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateDevelopmentCa } from '../src/relay/dev-ca-store.js';

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", "|"), flush=True)
`;

const dir = mkdtempSync(join(tmpdir(), 'sealroom-systemd-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function lines(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
): { all: string[]; until(pred: (l: string) => boolean): Promise<string> } {
  const all: string[] = [];
  const waiters: (() => void)[] = [];
  let buf = '';
  child[stream]!.setEncoding('utf8');
  child[stream]!.on('data', (chunk: string) => {
    buf += chunk;
    const parts = buf.split('\n');
    buf = parts.pop()!;
    all.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  return {
    all,
    async until(pred) {
      for (;;) {
        const hit = all.find(pred);
        if (hit !== undefined) return hit;
        if (child.exitCode !== null) throw new Error(`process exited; output: ${all.join('\n')}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

describe('sealroom daemon under systemd', () => {
  it('notifies READY with the control URL, pings the watchdog, and STOPPING on SIGTERM', async () => {
    const socket = join(dir, 'notify.sock');
    const receiver = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(receiver);
    const notes = lines(receiver, 'stdout');
    await notes.until((l) => l === 'listening');

    const caDir = join(dir, 'ca');
    await loadOrCreateDevelopmentCa(caDir, 'Example Corp');
    const daemon = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/sealroom.ts',
        'daemon',
        '--relay',
        'ws://127.0.0.1:9/v1/ws',
        '--dev-ca',
        caDir,
        '--room',
        'Boardroom',
        '--data-dir',
        join(dir, 'data'),
        '--control-port',
        '0',
        '--media',
        'none',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          NOTIFY_SOCKET: socket,
          WATCHDOG_USEC: '400000',
          SEALROOM_LOG_LEVEL: 'warn',
        },
      },
    );
    children.push(daemon);
    lines(daemon, 'stderr');
    const out = lines(daemon, 'stdout');
    const started = JSON.parse(await out.until((l) => l.startsWith('{'))) as { control: string };

    const ready = await notes.until((l) => l.includes('READY=1'));
    expect(ready.split('|')).toEqual(expect.arrayContaining([`STATUS=room screen on ${started.control}`]));
    expect(ready).toMatch(/MAINPID=\d+/);
    // The screen's server answers by the time systemd is told the daemon is ready.
    expect((await fetch(`${started.control}/healthz`)).status).toBe(200);
    await notes.until((l) => l === 'WATCHDOG=1');

    daemon.kill('SIGTERM');
    await notes.until((l) => l.includes('STOPPING=1'));
    const code = await new Promise<number | null>((resolve) => {
      if (daemon.exitCode !== null) resolve(daemon.exitCode);
      else daemon.once('exit', (c) => resolve(c));
    });
    expect(code).toBe(0);
  }, 60_000);
});
