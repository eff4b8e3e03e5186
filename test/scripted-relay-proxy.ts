// A scripted loopback WebSocket proxy in front of a real relay (src/relay/server.ts), for the tests
// that play the network or a relay cluster (test/meeting-client-resume.test.ts,
// test/relay-cluster-clients.test.ts). Each device connection gets its own connection to `upstream`
// as it is at that moment; a rule (`onDevice`) may answer a device's message itself or cut the
// connection, and a subclass may change what the relay's frames do on their way back.
import { type RawData, WebSocket, WebSocketServer } from 'ws';

// biome-ignore lint/suspicious/noExplicitAny: the proxy reads any JSON either side sends
export type Json = any;

export interface ProxyPair {
  device: WebSocket;
  upstream: WebSocket;
}

/** What the proxy does with a device's message: pass it on, answer it itself, or cut the connection. */
export type DeviceRule<P extends ProxyPair = ProxyPair> = (
  m: Json,
  pair: P,
) => 'pass' | 'cut' | { reply: Json };

export class ScriptedRelayProxy<P extends ProxyPair = ProxyPair> {
  readonly #server: WebSocketServer;
  readonly #listening: Promise<void>;
  protected readonly pairs = new Set<P>();
  /** Where new device connections go (a switch here plus `cutAll` is a relay restart / failover). */
  upstream: string;
  onDevice: DeviceRule<P> = () => 'pass';
  /** Device connections accepted so far. */
  connections = 0;

  constructor(upstream: string) {
    this.upstream = upstream;
    this.#server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.#listening = new Promise<void>((resolve, reject) => {
      this.#server.once('listening', () => resolve());
      this.#server.once('error', reject);
    });
    this.#server.on('connection', (device) => this.#accept(device));
  }

  static async start<T extends ScriptedRelayProxy<ProxyPair>>(
    this: new (
      upstream: string,
    ) => T,
    upstream: string,
  ): Promise<T> {
    const proxy = new this(upstream);
    await proxy.#listening;
    return proxy;
  }

  get url(): string {
    const address = this.#server.address();
    if (typeof address === 'string' || !address) throw new Error('not listening');
    return `ws://127.0.0.1:${address.port}/v1/ws`;
  }

  /** Sends `message` to every device as if the relay said it. */
  inject(message: Json): void {
    for (const { device } of this.pairs) device.send(JSON.stringify(message));
  }

  /** The relay no longer hosts the meeting: every device is closed with CLOSE.moved (4012). */
  moveAll(): void {
    for (const { device, upstream } of this.pairs) {
      device.close(4012, 'moved');
      upstream.terminate();
    }
  }

  /** Every connection cut (the relay died): the rooms reconnect, to `upstream` as it is now. */
  cutAll(): void {
    for (const { device, upstream } of this.pairs) {
      device.terminate();
      upstream.terminate();
    }
  }

  /** Sockets cut, port closed. */
  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** A relay frame on its way to the device: passed on as it is. */
  protected fromRelay(pair: P, raw: string): void {
    if (pair.device.readyState === WebSocket.OPEN) pair.device.send(raw);
  }

  /** A connection pair is gone (called before its sockets are terminated). */
  protected closed(_pair: P): void {}

  #accept(device: WebSocket): void {
    this.connections++;
    const upstream = new WebSocket(this.upstream);
    const pair = { device, upstream } as P;
    this.pairs.add(pair);
    const pending: string[] = [];
    upstream.on('open', () => {
      for (const raw of pending.splice(0)) upstream.send(raw);
    });
    const closeBoth = () => {
      this.pairs.delete(pair);
      this.closed(pair);
      device.terminate();
      upstream.terminate();
    };
    device.on('close', closeBoth);
    upstream.on('close', closeBoth);
    device.on('error', closeBoth);
    upstream.on('error', closeBoth);
    upstream.on('message', (data: RawData) => this.fromRelay(pair, data.toString()));
    device.on('message', (data: RawData) => {
      const raw = data.toString();
      let m: Json;
      try {
        m = JSON.parse(raw);
      } catch {
        m = undefined;
      }
      const verdict = this.onDevice(m, pair);
      if (verdict === 'cut') {
        closeBoth();
        return;
      }
      if (verdict !== 'pass') {
        device.send(JSON.stringify(verdict.reply));
        return;
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(raw);
      else pending.push(raw);
    });
  }
}
