// The web participant's relay connection: the same wire protocol as a room's (docs/relay.md,
// device/daemon/relay-connection.ts) over any WebSocket-like object — the browser's WebSocket in the
// E2EE worker, `ws` in Node tests. Browser-safe: no Buffer, no node: imports. Authenticates by
// signing the challenge with the person's key (an async WebCrypto signer), matches requests to
// replies by id, and hands every other (schema-valid) server message to `onMessage`.
import {
  authSignedBytes,
  type ClientMessage,
  parseServerMessage,
  type ServerMessage,
} from '../../core/protocol/relay.js';
import {
  PendingRequests,
  type RelayReply,
  type RelayRequest,
  RelayRequestError,
} from '../../core/protocol/relay-requests.js';

export type { RelayRequest };
/** The relay said no (an `error` reply, a refused authentication, a close before it). */
export { RelayRequestError as RelayRefusal };

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

const OPEN = 1;

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** One relay frame: a text frame that parses and validates (size, JSON, schema); else undefined. */
export function parseRelayFrame(data: unknown): ServerMessage | undefined {
  if (typeof data !== 'string') return undefined;
  const parsed = parseServerMessage(data);
  return parsed.ok ? parsed.message : undefined;
}

export interface RelayClientOptions {
  url: string;
  certificatePem: string;
  signer: AsyncSigner;
  openSocket: OpenSocket;
  timeoutMs?: number;
}

export class RelayClient {
  readonly #socket: WebSocketLike;
  readonly #requests = new PendingRequests();
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
          new RelayRequestError(
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
          fail(new RelayRequestError(message.code, message.message));
        }
      };
    });
  }

  get open(): boolean {
    return !this.#closed && this.#socket.readyState === OPEN;
  }

  /** A request; resolves with 'meeting' or 'ok', rejects with RelayRefusal on 'error'. */
  request(message: RelayRequest): Promise<RelayReply> {
    return this.#requests.request(message, (m) => this.#sendRaw(m));
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
    // A reply is nothing more, except a 'meeting', which also updates the status.
    if (this.#requests.settle(message) && message.type !== 'meeting') return;
    this.onMessage(message);
  }

  #onClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#requests.rejectAll(new Error('relay connection closed'));
    this.onClose(code, reason);
  }
}
