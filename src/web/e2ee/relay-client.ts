// The web participant's relay connection: the same wire protocol as a room's (docs/relay.md,
// device/daemon/relay-connection.ts) over any WebSocket-like object — the browser's WebSocket in the
// E2EE worker, `ws` in Node tests. Browser-safe: no Buffer, no node: imports. Authenticates by
// signing the challenge with the person's key (an async WebCrypto signer), matches requests to
// replies by id, and hands every other (schema-valid) server message to `onMessage`.
import {
  authSignedBytes,
  type ClientMessage,
  MAX_MESSAGE_BYTES,
  type ServerMessage,
  serverMessageValidator,
} from '../../core/protocol/relay.js';

/** The part of the WebSocket API used here (browser WebSocket and `ws` both have it). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type OpenSocket = (url: string) => WebSocketLike;

/** Signs with the person's Ed25519 key (non-extractable WebCrypto key in the browser). */
export interface AsyncSigner {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export class RelayRefusal extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const OPEN = 1;

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/**
 * One relay frame: JSON, within the size limit, valid against the server schema; else undefined.
 * (parseServerMessage of relay.ts measures with Buffer, which a browser worker does not have.)
 */
export function parseRelayFrame(data: unknown): ServerMessage | undefined {
  if (typeof data !== 'string' || data.length > MAX_MESSAGE_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  return serverMessageValidator.Check(value) ? (value as ServerMessage) : undefined;
}

type Reply = Extract<ServerMessage, { type: 'meeting' | 'ok' }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type RelayRequest = DistributiveOmit<Extract<ClientMessage, { id?: number }>, 'id'>;

export interface RelayClientOptions {
  url: string;
  certificatePem: string;
  signer: AsyncSigner;
  openSocket: OpenSocket;
  timeoutMs?: number;
}

export class RelayClient {
  readonly #socket: WebSocketLike;
  readonly #pending = new Map<number, { resolve: (m: Reply) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #closed = false;
  /** The relay instance (from its challenge): another one after a relay restart. */
  relayId = '';
  onMessage: (m: ServerMessage) => void = () => undefined;
  onClose: (code: number, reason: string) => void = () => undefined;

  private constructor(socket: WebSocketLike) {
    this.#socket = socket;
  }

  /** Connects and authenticates; rejects with RelayRefusal when the relay says no. */
  static connect(opts: RelayClientOptions): Promise<RelayClient> {
    const socket = opts.openSocket(opts.url);
    const client = new RelayClient(socket);
    return new Promise<RelayClient>((resolve, reject) => {
      let authenticated = false;
      const timer = setTimeout(
        () => fail(new Error('the relay did not authenticate us in time')),
        opts.timeoutMs ?? 10_000,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        if (!authenticated) {
          try {
            socket.close();
          } catch {
            // already closed
          }
          reject(err);
        }
      };
      socket.onerror = () => fail(new Error('could not reach the relay'));
      socket.onclose = (ev) => {
        fail(
          new RelayRefusal(
            ev.code === 4403 ? 'certificate-revoked' : 'closed',
            `the relay closed the connection (${ev.code} ${ev.reason})`,
          ),
        );
        client.#onClose(ev.code, ev.reason);
      };
      socket.onmessage = (ev) => {
        const message = parseRelayFrame(ev.data);
        if (!message) return; // not the protocol: ignored, as a room does
        if (authenticated) {
          client.#onMessage(message);
          return;
        }
        if (message.type === 'challenge') {
          client.relayId = message.relayId;
          opts.signer
            .sign(authSignedBytes(message.nonce))
            .then((signature) =>
              client.#sendRaw({
                type: 'auth',
                certificate: opts.certificatePem,
                signature: base64(signature),
              }),
            )
            .catch((err: Error) => fail(err));
        } else if (message.type === 'authenticated') {
          authenticated = true;
          clearTimeout(timer);
          resolve(client);
        } else if (message.type === 'error') {
          fail(new RelayRefusal(message.code, message.message));
        }
      };
    });
  }

  get open(): boolean {
    return !this.#closed && this.#socket.readyState === OPEN;
  }

  /** A request; resolves with 'meeting' or 'ok', rejects with RelayRefusal on 'error'. */
  request(message: RelayRequest): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (!this.#sendRaw({ ...message, id } as ClientMessage)) {
        this.#pending.delete(id);
        reject(new Error('not connected to the relay'));
      }
    });
  }

  send(message: Extract<ClientMessage, { type: 'e2ee' | 'signal' | 'media' | 'ping' }>): boolean {
    return this.#sendRaw(message);
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#socket.close(1000, 'bye');
    } catch {
      // already closed
    }
    this.#onClose(1000, 'bye');
  }

  #sendRaw(message: ClientMessage): boolean {
    if (this.#socket.readyState !== OPEN) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  #onMessage(message: ServerMessage): void {
    const id = 'id' in message ? message.id : undefined;
    if (id !== undefined) {
      const pending = this.#pending.get(id);
      if (pending) {
        this.#pending.delete(id);
        if (message.type === 'error') pending.reject(new RelayRefusal(message.code, message.message));
        else if (message.type === 'meeting' || message.type === 'ok') pending.resolve(message);
        else pending.reject(new Error(`unexpected reply ${message.type}`));
        if (message.type !== 'meeting') return; // a reply, nothing more (a 'meeting' also updates status)
      }
    }
    this.onMessage(message);
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) p.reject(new Error('relay connection closed'));
    this.#pending.clear();
    this.onClose(code, reason);
  }
}
