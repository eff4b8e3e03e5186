// The fault proxies themselves, on plain TCP and UDP: what each mode does to bytes and to closes, so
// the meeting tests that rely on them test what they claim (a blackhole must never close or reset
// anything; loss drops, it does not corrupt).
import { createSocket as createDgramSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpFaultProxy, UdpFaultProxy } from './fault-proxy.js';

let echo: Server;
let proxy: TcpFaultProxy;
const serverSide: Socket[] = [];
const clients: Socket[] = [];

beforeAll(async () => {
  echo = createServer((s) => {
    serverSide.push(s);
    s.on('error', () => undefined);
    s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const address = echo.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  proxy = await TcpFaultProxy.start({ port: address.port });
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await proxy.close();
  for (const s of serverSide) s.destroy();
  await new Promise<void>((r) => echo.close(() => r()));
});

interface Watched {
  socket: Socket;
  received: () => string;
  events: string[];
}

async function open(): Promise<Watched> {
  const socket = tcpConnect({ host: '127.0.0.1', port: proxy.port });
  clients.push(socket);
  let data = '';
  const events: string[] = [];
  socket.on('data', (d) => {
    data += d.toString();
  });
  socket.on('end', () => events.push('end'));
  socket.on('error', (e: NodeJS.ErrnoException) => events.push(e.code ?? 'error'));
  socket.on('close', () => events.push('close'));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => data, events };
}

const poll = <T>(f: () => T) => expect.poll(f, { timeout: 5_000, interval: 20 });

describe('TcpFaultProxy', () => {
  it('pass: bytes both ways, and a close is passed on', async () => {
    const c = await open();
    c.socket.write('hello');
    await poll(() => c.received()).toBe('hello');
    const upstreams = serverSide.length;
    c.socket.end();
    await poll(() => serverSide[upstreams - 1]?.readableEnded).toBe(true);
  });

  it('blackhole: nothing arrives either way, nothing is closed or reset, even when one end closes', async () => {
    const c = await open();
    c.socket.write('before');
    await poll(() => c.received()).toBe('before');
    const upstream = serverSide.at(-1);
    proxy.setMode('blackhole');
    c.socket.write('lost');
    upstream?.write('also lost');
    await poll(() => proxy.droppedBytes).toBe('lost'.length + 'also lost'.length);
    // The far end goes away: a silent cut must not tell the client.
    upstream?.destroy();
    // A new connection is accepted but never reaches the server.
    const late = await open();
    const servers = serverSide.length;
    late.socket.write('hello?');
    await poll(() => proxy.droppedBytes).toBe('lost'.length + 'also lost'.length + 'hello?'.length);
    expect(serverSide.length).toBe(servers);
    expect(c.received()).toBe('before');
    expect(c.events).toEqual([]);
    expect(late.events).toEqual([]);
    expect(c.socket.destroyed).toBe(false);
    // Restored: new connections pass; the cut ones stay cut (their streams lost bytes).
    proxy.setMode('pass');
    const fresh = await open();
    fresh.socket.write('again');
    await poll(() => fresh.received()).toBe('again');
    c.socket.write('still cut');
    await poll(() => proxy.droppedBytes).toBe(
      'lost'.length + 'also lost'.length + 'hello?'.length + 'still cut'.length,
    );
    expect(c.received()).toBe('before');
  });

  it('close: open connections and new ones are reset', async () => {
    const c = await open();
    c.socket.write('x');
    await poll(() => c.received()).toBe('x');
    const upstream = serverSide.at(-1);
    const upstreamEvents: string[] = [];
    upstream?.on('error', (e: NodeJS.ErrnoException) => upstreamEvents.push(e.code ?? 'error'));
    proxy.setMode('close');
    await poll(() => c.events.join()).toContain('ECONNRESET');
    await poll(() => upstreamEvents.join()).toContain('ECONNRESET');
    const next = tcpConnect({ host: '127.0.0.1', port: proxy.port });
    clients.push(next);
    const ended = await new Promise<string>((resolve) => {
      next.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      next.once('close', () => resolve('close without error'));
    });
    expect(ended).toBe('ECONNRESET');
    proxy.setMode('pass');
  });
});

describe('UdpFaultProxy', () => {
  let target: DgramSocket;
  let client: DgramSocket;
  let udp: UdpFaultProxy;
  const atTarget: string[] = [];
  const atClient: string[] = [];

  beforeAll(async () => {
    const bind = async () => {
      const s = createDgramSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      return s;
    };
    target = await bind();
    client = await bind();
    // The target answers datagrams (not the loss test's) to wherever they came from: the proxy.
    target.on('message', (m, from) => {
      atTarget.push(m.toString());
      if (!/^(lost|half)-/.test(m.toString())) target.send(`re:${m.toString()}`, from.port, from.address);
    });
    client.on('message', (m) => atClient.push(m.toString()));
    udp = await UdpFaultProxy.start({ host: '127.0.0.1', port: target.address().port });
  });

  afterAll(() => {
    udp.close();
    target.close();
    client.close();
  });

  const send = (text: string) => client.send(text, udp.port, '127.0.0.1');

  it('pass: datagrams both ways, the answer comes back from the proxy', async () => {
    send('one');
    await poll(() => atClient).toContain('re:one');
    expect(atTarget).toContain('one');
  });

  it('loss 1: everything is dropped; loss 0.5 lets about half through, unchanged', async () => {
    udp.loss = 1;
    for (let i = 0; i < 20; i++) send(`lost-${i}`);
    await poll(() => udp.dropped).toBe(20);
    udp.loss = 0.5;
    const droppedBefore = udp.dropped;
    const arrived = () => atTarget.filter((m) => m.startsWith('half-')).length;
    for (let i = 0; i < 200; i++) send(`half-${i}`);
    // Every datagram is either dropped by the proxy or arrives.
    await poll(() => udp.dropped - droppedBefore + arrived()).toBe(200);
    udp.loss = 0;
    expect(atTarget.some((m) => m.startsWith('lost-'))).toBe(false);
    const through = atTarget.filter((m) => m.startsWith('half-'));
    expect(through.length).toBeGreaterThan(40);
    expect(through.length).toBeLessThan(160);
    expect(through.every((m) => /^half-\d+$/.test(m))).toBe(true);
  });

  it('blackhole: nothing either way; pass again: flows', async () => {
    udp.mode = 'blackhole';
    const dropped = udp.dropped;
    send('void');
    await poll(() => udp.dropped).toBe(dropped + 1);
    expect(atTarget).not.toContain('void');
    udp.mode = 'pass';
    send('back');
    await poll(() => atClient).toContain('re:back');
  });
});
