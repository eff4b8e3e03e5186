// sd_notify through the real systemd-notify binary into a real AF_UNIX datagram socket. Node cannot
// bind one, so a few lines of python3 play systemd's side and print each datagram.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { notifyAssignments, notifyReady, sdNotify, startWatchdog, watchdogIntervalMs } from './sd-notify.js';

const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data = s.recv(4096)
    print(data.decode().replace("\\n", "|"), flush=True)
`;

let receiver: ChildProcess | undefined;
let dir: string | undefined;

afterEach(() => {
  receiver?.kill();
  receiver = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function listen(): Promise<{ socket: string; messages: string[]; next(n: number): Promise<string[]> }> {
  dir = mkdtempSync(join(tmpdir(), 'sealroom-notify-'));
  const socket = join(dir, 'notify.sock');
  const child = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  receiver = child;
  const messages: string[] = [];
  let wake: () => void = () => {};
  let buffered = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    // systemd-notify follows each message with a BARRIER=1 datagram (it waits until it is read).
    messages.push(...lines.filter((l) => l !== 'BARRIER=1'));
    wake();
  });
  const next = async (n: number) => {
    while (messages.length < n) await new Promise<void>((r) => (wake = r));
    return messages.slice(0, n);
  };
  await next(1);
  messages.shift();
  return { socket, messages, next };
}

describe('sd_notify', () => {
  it('formats assignments and the watchdog interval', () => {
    expect(notifyAssignments({ READY: 1, STATUS: 'two\nlines', SKIP: undefined })).toEqual([
      'READY=1',
      'STATUS=two lines',
    ]);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42)).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '41' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
  });

  it('does nothing outside systemd', async () => {
    expect(await sdNotify({ READY: 1 }, { env: {} })).toBe(false);
  });

  it('sends READY, STATUS and MAINPID to $NOTIFY_SOCKET', async () => {
    const { socket, next } = await listen();
    expect(
      await notifyReady('serving on 127.0.0.1:8780', { env: { ...process.env, NOTIFY_SOCKET: socket } }),
    ).toBe(true);
    const [first] = await next(1);
    expect(first!.split('|')).toEqual(
      expect.arrayContaining(['READY=1', 'STATUS=serving on 127.0.0.1:8780', `MAINPID=${process.pid}`]),
    );
  });

  it('pings the watchdog only while healthy', async () => {
    const { socket, messages, next } = await listen();
    let healthy = true;
    const env = {
      ...process.env,
      NOTIFY_SOCKET: socket,
      WATCHDOG_USEC: '100000',
      WATCHDOG_PID: String(process.pid),
    };
    const dog = startWatchdog(() => healthy, { env });
    expect(dog.intervalMs).toBe(50);
    try {
      const pings = await next(2);
      expect(pings.every((m) => m.split('|').includes('WATCHDOG=1'))).toBe(true);
      healthy = false;
      // Let any ping already under way land, then check that no new ones arrive.
      await new Promise((r) => setTimeout(r, 200));
      const settled = messages.length;
      await new Promise((r) => setTimeout(r, 200));
      expect(messages.length).toBe(settled);
    } finally {
      dog.stop();
    }
  });
});
