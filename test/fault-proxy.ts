// A fault-injecting TCP proxy on loopback, for network-fault tests (`tc netem` is not available and
// traffic must stay on 127.0.0.0/8). Put it between a room and the relay and switch its mode:
//
//   pass       bytes flow both ways; closes and resets are passed on.
//   blackhole  a silent cut: every byte in both directions is dropped and no socket is closed, so
//              neither end sees a FIN or RST. New connections are accepted (the SYN "gets lost"
//              further on) but never reach the target. Only a liveness check can notice this.
//   close      every connection is reset (RST) on both sides, and new ones are reset at once.
//
// A connection that lived through a blackhole stays cut after `pass` is restored: its streams lost
// bytes, and a WebSocket cannot resynchronise its framing. Like a real path that came back after the
// endpoints' TCP state went stale, it is up to the endpoints' timeouts to drop it; new connections
// pass normally.
import { createSocket as createDgramSocket, type Socket as DgramSocket } from 'node:dgram';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export type TcpFaultMode = 'pass' | 'blackhole' | 'close';

interface Link {
  client: Socket;
  upstream: Socket | undefined;
  /** Cut by a blackhole: nothing is forwarded, no close is passed on. */
  cut: boolean;
}

export class TcpFaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  /** Every socket the proxy opened or accepted, so close() can end the cut ones left behind too. */
  readonly #sockets = new Set<Socket>();
  #mode: TcpFaultMode = 'pass';
  /** Bytes the proxy dropped in a blackhole (tests check the cut was really exercised). */
  droppedBytes = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Listens on 127.0.0.1 (a free port) and forwards to target. */
  static async start(target: { host?: string; port: number }): Promise<TcpFaultProxy> {
    const server = createServer({ pauseOnConnect: true });
    const proxy = new TcpFaultProxy(server, { host: target.host ?? '127.0.0.1', port: target.port });
    server.on('connection', (socket) => proxy.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    if (!address || typeof address === 'string') throw new Error('the fault proxy is not listening');
    return address.port;
  }

  get mode(): TcpFaultMode {
    return this.#mode;
  }

  /** Connections currently open on the client side (cut ones included). */
  get connections(): number {
    return this.#links.size;
  }

  setMode(mode: TcpFaultMode): void {
    this.#mode = mode;
    if (mode === 'blackhole') for (const link of this.#links) link.cut = true;
    if (mode === 'close') for (const link of [...this.#links]) this.#reset(link);
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    this.#links.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => this.#sockets.delete(socket));
  }

  #accept(client: Socket): void {
    this.#track(client);
    if (this.#mode === 'close') {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, upstream: undefined, cut: this.#mode === 'blackhole' };
    this.#links.add(link);
    client.on('close', () => {
      this.#links.delete(link);
      // A cut link keeps its other end open: the far side must not learn of the close.
      if (!link.cut) link.upstream?.destroy();
    });
    client.on('data', (chunk: Buffer) => {
      if (link.cut || !link.upstream) this.droppedBytes += chunk.length;
      else link.upstream.write(chunk);
    });
    client.on('end', () => {
      if (!link.cut) link.upstream?.end();
    });
    if (link.cut) {
      client.resume(); // read and drop, like a link that loses everything
      return;
    }
    const upstream = tcpConnect({ host: this.#target.host, port: this.#target.port });
    link.upstream = upstream;
    this.#track(upstream);
    upstream.on('connect', () => client.resume());
    upstream.on('data', (chunk: Buffer) => {
      if (link.cut) this.droppedBytes += chunk.length;
      else client.write(chunk);
    });
    upstream.on('end', () => {
      if (!link.cut) client.end();
    });
    upstream.on('close', () => {
      if (!link.cut) client.destroy();
    });
  }

  #reset(link: Link): void {
    this.#links.delete(link);
    link.client.resetAndDestroy();
    if (link.upstream && !link.upstream.destroyed) {
      if (link.upstream.connecting) link.upstream.destroy();
      else link.upstream.resetAndDestroy();
    }
  }
}

export type UdpFaultMode = 'pass' | 'blackhole';

/**
 * A UDP proxy for one media flow (one client ↔ one target): the client sends to `port`, the target
 * sends to `upstreamPort` (advertise these in place of the real ICE candidates). Besides pass and
 * blackhole it drops a random fraction of datagrams (`loss`) and delays each by up to `jitterMs`
 * (which also reorders them), independently in both directions.
 */
export class UdpFaultProxy {
  readonly #front: DgramSocket;
  readonly #back: DgramSocket;
  readonly #target: { host: string; port: number };
  #client: { address: string; port: number } | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();
  mode: UdpFaultMode = 'pass';
  /** Fraction of datagrams dropped in pass mode, 0..1. */
  loss = 0;
  jitterMs = 0;
  forwarded = 0;
  dropped = 0;

  private constructor(front: DgramSocket, back: DgramSocket, target: { host: string; port: number }) {
    this.#front = front;
    this.#back = back;
    this.#target = target;
    front.on('message', (msg, from) => {
      this.#client = { address: from.address, port: from.port };
      this.#forward(msg, (m) => this.#back.send(m, this.#target.port, this.#target.host));
    });
    back.on('message', (msg) => {
      const client = this.#client;
      if (!client) {
        this.dropped++;
        return;
      }
      this.#forward(msg, (m) => this.#front.send(m, client.port, client.address));
    });
  }

  static async start(target: { host: string; port: number }): Promise<UdpFaultProxy> {
    const bind = async () => {
      const socket = createDgramSocket('udp4');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
      return socket;
    };
    return new UdpFaultProxy(await bind(), await bind(), target);
  }

  /** Where the client sends (stands in for the target's candidate). */
  get port(): number {
    return this.#front.address().port;
  }

  /** Where the target sends (stands in for the client's candidate). */
  get upstreamPort(): number {
    return this.#back.address().port;
  }

  close(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#front.close();
    this.#back.close();
  }

  #forward(msg: Buffer, send: (m: Buffer) => void): void {
    if (this.mode === 'blackhole' || Math.random() < this.loss) {
      this.dropped++;
      return;
    }
    this.forwarded++;
    if (this.jitterMs <= 0) {
      send(msg);
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      send(msg);
    }, Math.random() * this.jitterMs);
    this.#timers.add(timer);
  }
}
