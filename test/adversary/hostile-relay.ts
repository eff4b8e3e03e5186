// A scriptable malicious relay for tests (issue 9, "the adversary in the suite").
//
// HostileRelay is a WebSocket man-in-the-middle on loopback between real devices (the daemon's
// MeetingClient, RelayConnection) and a real relay (src/relay/server.ts). Devices do not
// authenticate the relay, so whoever runs the relay can do all of this; the relay's own rules
// (authentication, lifecycle, bulletin-board checks) still apply to what reaches it, like a
// compromised relay process that keeps its real code but tampers with its sockets.
//
//   const hostile = await HostileRelay.start(relay.url);
//   client = new MeetingClient({ relayUrl: hostile.url, ... });
//   const stop = hostile.use((f) =>
//     f.direction === 'to-device' && f.link.roomName === 'Huddle' && isE2ee(f, 'e2ee.key') ? 'drop' : undefined);
//
// Every frame in either direction goes through the rules in the order they were added; the first
// verdict that is not undefined decides:
//   'pass'                 forward unchanged (stop asking further rules)
//   'drop'                 forward nothing
//   { delayMs }            forward later (frames behind it overtake it: reordering)
//   { replace: [m, …] }    forward these messages instead (rewrite; [] = drop; several = duplicate)
//   'close'                terminate the device's connection and its upstream one
// A frame nobody decides on is forwarded. `frame.message` is the parsed JSON (or undefined for
// non-JSON); rules may read it but should return `replace` to change it.
//
// Besides rules: `seen` logs every frame (with the time it was forwarded), `link.toDevice(m)` and
// `link.toRelay(m)` inject messages (bypassing the rules), `replay(frame)` sends a logged frame
// again, `hold`/`release` keep frames back and let them go in any order. Links learn who is on the
// device end from the `auth` certificate (room name, org, device id) and the `meeting` replies
// (meeting id, participant id). Forged identities and squatting helpers are in ./identities.ts.
import { x509 } from '../../src/pki/provider.js';
import { type RawData, WebSocket, WebSocketServer } from 'ws';

export type Direction = 'to-relay' | 'to-device';

// biome-ignore lint/suspicious/noExplicitAny: hostile input is any JSON at all
export type Json = any;

export interface Frame {
  direction: Direction;
  link: Link;
  raw: string;
  message: Json;
  /** ms (Date.now) when the proxy received it. */
  at: number;
  /** ms when it was forwarded (undefined: dropped, held or not yet). */
  forwardedAt?: number;
}

export type Verdict = 'pass' | 'drop' | 'close' | { delayMs: number } | { replace: Json[] };
export type Rule = (frame: Frame) => Verdict | undefined;

export class Link {
  readonly id: number;
  readonly #device: WebSocket;
  readonly #upstream: WebSocket;
  readonly #pendingUp: string[] = [];
  roomName?: string;
  org?: string;
  deviceId?: string;
  meetingId?: string;
  participantId?: string;
  closed = false;

  constructor(id: number, device: WebSocket, upstream: WebSocket) {
    this.id = id;
    this.#device = device;
    this.#upstream = upstream;
    upstream.on('open', () => {
      for (const raw of this.#pendingUp.splice(0)) upstream.send(raw);
    });
  }

  /** Sends to the device as if the relay said it (bypasses the rules). */
  toDevice(message: Json): void {
    const raw = typeof message === 'string' ? message : JSON.stringify(message);
    if (this.#device.readyState === WebSocket.OPEN) this.#device.send(raw);
  }

  /** Sends to the relay on this device's authenticated connection (bypasses the rules). */
  toRelay(message: Json): void {
    const raw = typeof message === 'string' ? message : JSON.stringify(message);
    if (this.#upstream.readyState === WebSocket.OPEN) this.#upstream.send(raw);
    else if (this.#upstream.readyState === WebSocket.CONNECTING) this.#pendingUp.push(raw);
  }

  close(): void {
    this.closed = true;
    this.#device.terminate();
    this.#upstream.terminate();
  }
}

/** The E2EE payload of a bulletin-board frame (either direction), if it is one of `type`. */
export function e2eePayload(frame: Frame, type?: string): Json | undefined {
  const m = frame.message;
  if (m?.type !== 'e2ee' || typeof m.payload !== 'object' || m.payload === null) return undefined;
  return type === undefined || m.payload.type === type ? m.payload : undefined;
}

export class HostileRelay {
  readonly #server: WebSocketServer;
  readonly #upstreamUrl: string;
  readonly #rules: Rule[] = [];
  readonly #held = new Map<string, Frame[]>();
  readonly links: Link[] = [];
  readonly seen: Frame[] = [];
  #nextLink = 1;

  private constructor(server: WebSocketServer, upstreamUrl: string) {
    this.#server = server;
    this.#upstreamUrl = upstreamUrl;
  }

  static async start(upstreamUrl: string): Promise<HostileRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 2 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', () => resolve());
      server.once('error', reject);
    });
    const hostile = new HostileRelay(server, upstreamUrl);
    server.on('connection', (socket) => hostile.#accept(socket));
    return hostile;
  }

  /** The URL devices connect to instead of the relay's. */
  get url(): string {
    const address = this.#server.address();
    if (typeof address === 'string' || !address) throw new Error('not listening');
    return `ws://127.0.0.1:${address.port}${new URL(this.#upstreamUrl).pathname}`;
  }

  /** Adds a rule (after the existing ones); returns a function removing it. */
  use(rule: Rule): () => void {
    this.#rules.push(rule);
    return () => {
      const i = this.#rules.indexOf(rule);
      if (i >= 0) this.#rules.splice(i, 1);
    };
  }

  clearRules(): void {
    this.#rules.length = 0;
  }

  /** The newest open link of a room (by the certificate's room name). */
  link(roomName: string): Link | undefined {
    return this.links.filter((l) => l.roomName === roomName && !l.closed).at(-1);
  }

  /** Rule helper: keep frames matching `match` back under `key` until release(key). */
  hold(key: string, match: (f: Frame) => boolean): () => void {
    return this.use((f) => {
      if (!match(f)) return undefined;
      const list = this.#held.get(key) ?? [];
      list.push(f);
      this.#held.set(key, list);
      return 'drop';
    });
  }

  /** Forwards the frames held under `key`, in the given order ('reverse' reorders them). */
  release(key: string, order: 'fifo' | 'reverse' = 'fifo'): number {
    const frames = this.#held.get(key) ?? [];
    this.#held.delete(key);
    for (const f of order === 'reverse' ? [...frames].reverse() : frames) this.#forward(f, f.raw);
    return frames.length;
  }

  /** Sends a logged frame again, the same way (a replay the devices cannot tell from the original). */
  replay(frame: Frame, link: Link = frame.link): void {
    if (frame.direction === 'to-device') link.toDevice(frame.raw);
    else link.toRelay(frame.raw);
  }

  async close(): Promise<void> {
    for (const l of this.links) l.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(device: WebSocket): void {
    const upstream = new WebSocket(this.#upstreamUrl);
    const link = new Link(this.#nextLink++, device, upstream);
    this.links.push(link);
    const closeBoth = () => {
      if (link.closed) return;
      link.closed = true;
      device.terminate();
      upstream.terminate();
    };
    device.on('error', closeBoth);
    upstream.on('error', closeBoth);
    device.on('close', closeBoth);
    upstream.on('close', closeBoth);
    device.on('message', (data: RawData) => this.#onFrame(link, 'to-relay', data));
    upstream.on('message', (data: RawData) => this.#onFrame(link, 'to-device', data));
  }

  #onFrame(link: Link, direction: Direction, data: RawData): void {
    const raw = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Buffer.concat(data as Buffer[]).toString('utf8');
    let message: Json;
    try {
      message = JSON.parse(raw);
    } catch {
      message = undefined;
    }
    const frame: Frame = { direction, link, raw, message, at: Date.now() };
    this.#learn(frame);
    this.seen.push(frame);
    let verdict: Verdict | undefined;
    for (const rule of [...this.#rules]) {
      try {
        verdict = rule(frame);
      } catch (err) {
        // A broken test rule must not look like a hostile drop.
        console.error('hostile relay rule threw', err);
        verdict = undefined;
      }
      if (verdict !== undefined) break;
    }
    if (verdict === undefined || verdict === 'pass') {
      this.#forward(frame, raw);
      return;
    }
    if (verdict === 'drop') return;
    if (verdict === 'close') {
      link.close();
      return;
    }
    if ('delayMs' in verdict) {
      setTimeout(() => this.#forward(frame, raw), verdict.delayMs);
      return;
    }
    for (const m of verdict.replace) this.#forward(frame, typeof m === 'string' ? m : JSON.stringify(m));
  }

  #forward(frame: Frame, raw: string): void {
    frame.forwardedAt ??= Date.now();
    if (frame.direction === 'to-device') frame.link.toDevice(raw);
    else frame.link.toRelay(raw);
  }

  /** Who is on the device end: from its certificate and the relay's meeting replies. */
  #learn(frame: Frame): void {
    const m = frame.message;
    if (frame.direction === 'to-relay' && m?.type === 'auth' && typeof m.certificate === 'string') {
      try {
        const cert = new x509.X509Certificate(m.certificate);
        const field = (name: string) => cert.subjectName.getField(name)[0];
        frame.link.deviceId = field('CN');
        frame.link.org = field('O');
        frame.link.roomName = field('OU');
      } catch {
        // not a certificate: the relay will refuse it
      }
    }
    if (frame.direction === 'to-device' && m?.type === 'meeting') {
      frame.link.meetingId = m.meetingId;
      frame.link.participantId = m.participantId;
    }
  }
}
