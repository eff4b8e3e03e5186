// One authenticated WebSocket session with the relay: answers the challenge with the device's
// identity key, matches requests to replies by id, and emits everything else as events.
// Used by the daemon's meeting client, and by tests and benchmarks as a lightweight participant.
import { type KeyObject, sign } from 'node:crypto';
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import {
  authSignedBytes,
  type ClientMessage,
  parseServerMessage,
  type ServerMessage,
} from '../../src/core/protocol/relay.js';
import {
  PendingRequests,
  type RelayReply,
  type RelayRequest,
  RelayRequestError,
} from '../../src/core/protocol/relay-requests.js';

export { RelayRequestError };

export interface DeviceCredentials {
  certificatePem: string;
  identityKey: KeyObject;
}

/**
 * Liveness of an established session: a WebSocket ping every intervalMs, and the socket is terminated
 * (so the client reconnects) when nothing at all — pong or message — arrived for timeoutMs. Without
 * it a silent cut (no FIN/RST: a dead switch, a NAT that forgot us) leaves the room "connected" forever.
 */
export interface LivenessOptions {
  intervalMs: number;
  timeoutMs: number;
}

export const DEFAULT_LIVENESS: LivenessOptions = { intervalMs: 5_000, timeoutMs: 15_000 };

export class RelayConnection extends EventEmitter<{ message: [ServerMessage]; close: [number, string] }> {
  readonly #socket: WebSocket;
  readonly #requests = new PendingRequests();
  #liveness: NodeJS.Timeout | undefined;
  identity?: Extract<ServerMessage, { type: 'authenticated' }>['identity'];
  /** The relay instance (from its challenge): a new one after a relay restart. */
  relayId?: string;

  private constructor(socket: WebSocket) {
    super();
    this.#socket = socket;
  }

  /** Connects and authenticates; rejects with the relay's reason when refused. */
  static async connect(
    url: string,
    credentials: DeviceCredentials,
    timeoutMs = 10_000,
    liveness: LivenessOptions = DEFAULT_LIVENESS,
  ): Promise<RelayConnection> {
    const socket = new WebSocket(url, { handshakeTimeout: timeoutMs });
    const connection = new RelayConnection(socket);
    return new Promise<RelayConnection>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('relay did not authenticate us in time')), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.terminate();
        reject(err);
      };
      socket.on('error', (err) => fail(err));
      socket.on('close', (code, reason) => {
        fail(new Error(`relay closed the connection (${code} ${reason.toString()})`));
        connection.#onClose(code, reason.toString());
      });
      socket.on('message', (raw: Buffer) => {
        const parsed = parseServerMessage(raw);
        if (!parsed.ok) return;
        const message = parsed.message;
        if (!connection.identity) {
          if (message.type === 'challenge') {
            connection.relayId = message.relayId;
            const signature = sign(null, authSignedBytes(message.nonce), credentials.identityKey).toString(
              'base64',
            );
            connection.#sendRaw({ type: 'auth', certificate: credentials.certificatePem, signature });
          } else if (message.type === 'authenticated') {
            connection.identity = message.identity;
            clearTimeout(timer);
            socket.removeAllListeners('error');
            socket.on('error', () => undefined);
            connection.#watchLiveness(liveness);
            resolve(connection);
          } else if (message.type === 'error') {
            fail(new RelayRequestError(message.code, message.message));
          }
          return;
        }
        connection.#onMessage(message);
      });
    });
  }

  get open(): boolean {
    return this.#socket.readyState === WebSocket.OPEN;
  }

  /** Sends a request and resolves with its reply ('meeting' or 'ok'), or rejects with the error. */
  request(message: RelayRequest): Promise<RelayReply> {
    return this.#requests.request(message, (m) => this.#sendRaw(m));
  }

  /** Fire-and-forget messages (bulletin board, signalling, media). */
  send(message: Extract<ClientMessage, { type: 'e2ee' | 'signal' | 'media' | 'ping' }>): boolean {
    return this.#sendRaw(message);
  }

  close(): void {
    this.#socket.close(1000, 'bye');
  }

  /** Drops the connection without a goodbye (tests: a device losing power). */
  terminate(): void {
    this.#socket.terminate();
  }

  #watchLiveness({ intervalMs, timeoutMs }: LivenessOptions): void {
    let lastHeard = Date.now();
    const heard = () => {
      lastHeard = Date.now();
    };
    this.#socket.on('pong', heard);
    this.#socket.on('message', heard);
    this.#liveness = setInterval(() => {
      if (Date.now() - lastHeard > timeoutMs) {
        clearInterval(this.#liveness);
        this.#socket.terminate(); // emits 'close' (1006): the meeting client reconnects
        return;
      }
      if (this.#socket.readyState === WebSocket.OPEN) this.#socket.ping();
    }, intervalMs);
  }

  #sendRaw(message: ClientMessage): boolean {
    if (this.#socket.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(JSON.stringify(message));
    return true;
  }

  #onMessage(message: ServerMessage): void {
    this.#requests.settle(message);
    this.emit('message', message);
  }

  #onClose(code: number, reason: string): void {
    clearInterval(this.#liveness);
    this.#requests.rejectAll(new Error('relay connection closed'));
    this.emit('close', code, reason);
  }
}
