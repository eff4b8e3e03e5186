// Requests to the relay and their replies, matched by id: the one piece of client plumbing a room's
// connection (device/daemon/relay-connection.ts, `ws`) and a browser's (src/web/e2ee/relay-client.ts,
// the page worker's WebSocket) share. Pure: the caller owns the socket and passes `send`.
import type { ClientMessage, ServerMessage } from './relay.js';

export type RelayReply = Extract<ServerMessage, { type: 'meeting' | 'ok' }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A client message that takes a reply, without its id (PendingRequests assigns one). */
export type RelayRequest = DistributiveOmit<Extract<ClientMessage, { id?: number }>, 'id'>;

/** The relay answered a request with `error`. */
export class RelayRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The relay answered a `create` or `join` with `redirect`: the meeting lives on another node of a
 * clustered relay. The caller decides whether `url` is one it trusts before following it.
 */
export class RelayRedirect extends RelayRequestError {
  constructor(
    readonly url: string,
    readonly meetingId: string,
  ) {
    super('redirect', `the meeting ${meetingId} is hosted at ${url}`);
  }
}

export class PendingRequests {
  readonly #pending = new Map<number, { resolve: (m: RelayReply) => void; reject: (e: Error) => void }>();
  #nextId = 1;

  /** Sends `message` with a fresh id; resolves with its 'meeting' or 'ok' reply, rejects on 'error'. */
  request(message: RelayRequest, send: (message: ClientMessage) => boolean): Promise<RelayReply> {
    const id = this.#nextId++;
    return new Promise<RelayReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      if (!send({ ...message, id } as ClientMessage)) {
        this.#pending.delete(id);
        reject(new Error('not connected to the relay'));
      }
    });
  }

  /** Settles the request `message` answers, if any; true when it did. Replies the relay never owed are ignored. */
  settle(message: ServerMessage): boolean {
    const id = 'id' in message ? message.id : undefined;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (id === undefined || !pending) return false;
    this.#pending.delete(id);
    if (message.type === 'error') pending.reject(new RelayRequestError(message.code, message.message));
    else if (message.type === 'redirect') pending.reject(new RelayRedirect(message.url, message.meetingId));
    else if (message.type === 'meeting' || message.type === 'ok') pending.resolve(message);
    else pending.reject(new Error(`unexpected reply ${message.type}`));
    return true;
  }

  /** The connection is gone: every request still waiting fails. */
  rejectAll(error: Error): void {
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}
