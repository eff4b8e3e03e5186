// The wall broker: the daemon's side of the kiosk page's wall connection (decrypted, still-encoded
// video from the media worker to Chromium over loopback; docs/kiosk.md "The wall"). It names the
// sessions (unguessable ids), keeps at most four (a fifth closes the oldest), forgets them all when the
// worker goes away (its PeerConnections died with it) and mirrors the worker's slot map into
// `state.media.wall`. The control server calls it after checking the kiosk token; the worker side is
// behind WallPort (the MediaSupervisor, or a fake in tests).
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../src/util/log.js';
import { MAX_WALL_SESSIONS } from '../media/ipc.js';
import type { StateStore, WallSlotView } from './state.js';

export interface WallSlots {
  slots: WallSlotView[];
  activeSpeaker?: number;
}

/** What the broker needs from the media worker (MediaSupervisor's wall API). */
export interface WallPort {
  /** The worker makes a loopback PeerConnection and offers; rejects when it cannot. */
  openWall(sessionId: string): Promise<{ sdp: string }>;
  answerWall(sessionId: string, sdp: string): void;
  closeWall(sessionId: string): void;
  /** Slot map changes (and one after each open). Returns an unsubscribe function. */
  onWallSlots(listener: (slots: WallSlots) => void): () => void;
  /** The worker exited or restarted: every wall session it held is gone. Returns an unsubscribe function. */
  onWorkerGone(listener: () => void): () => void;
}

/** A refusal the control API turns into its HTTP status. */
export class WallError extends Error {
  constructor(
    readonly status: 404 | 409 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'WallError';
  }
}

interface Session {
  id: string;
  state: 'opening' | 'offered' | 'answered';
  openedAt: number;
}

export interface WallBrokerOptions {
  port: WallPort;
  state: StateStore;
  log: Logger;
  maxSessions?: number;
}

export class WallBroker {
  readonly #port: WallPort;
  readonly #state: StateStore;
  readonly #log: Logger;
  readonly #max: number;
  /** Insertion order is age order: the first entry is the oldest. */
  readonly #sessions = new Map<string, Session>();
  readonly #unsubscribe: (() => void)[];
  #closed = false;

  constructor(o: WallBrokerOptions) {
    this.#port = o.port;
    this.#state = o.state;
    this.#log = o.log;
    this.#max = o.maxSessions ?? MAX_WALL_SESSIONS;
    this.#unsubscribe = [
      o.port.onWallSlots((slots) => this.#onSlots(slots)),
      o.port.onWorkerGone(() => this.#onWorkerGone()),
    ];
  }

  /** Session ids, oldest first (diagnostics and tests; never in the state the page reads). */
  get sessionIds(): string[] {
    return [...this.#sessions.keys()];
  }

  /** A new wall session: the worker's offer. Closes the oldest session when the limit is reached. */
  async open(): Promise<{ sessionId: string; sdp: string }> {
    if (this.#closed) throw new WallError(503, 'the wall is shut down');
    while (this.#sessions.size >= this.#max) {
      const oldest = this.#sessions.keys().next().value as string;
      this.#log.info({ replaced: short(oldest) }, 'wall session limit reached; closing the oldest');
      this.#drop(oldest);
    }
    // 144 bits: nobody guesses a session id, and it never leaves the page that opened it.
    const id = randomBytes(18).toString('base64url');
    this.#sessions.set(id, { id, state: 'opening', openedAt: Date.now() });
    let offer: { sdp: string };
    try {
      offer = await this.#port.openWall(id);
    } catch (err) {
      this.#sessions.delete(id);
      throw new WallError(503, `the wall is not available: ${(err as Error).message}`);
    }
    const session = this.#sessions.get(id);
    if (!session) {
      // Replaced by newer sessions, or the worker went away, while the offer was being made.
      this.#port.closeWall(id);
      throw new WallError(503, 'the wall session ended before its offer arrived; open a new one');
    }
    session.state = 'offered';
    this.#log.info({ session: short(id), sessions: this.#sessions.size }, 'wall session opened');
    return { sessionId: id, sdp: offer.sdp };
  }

  /** The page's answer; accepted once per session. */
  answer(sessionId: string, sdp: string): void {
    const session = this.#sessions.get(sessionId);
    if (!session) throw new WallError(404, 'no such wall session');
    if (session.state !== 'offered') {
      throw new WallError(409, 'this wall session already has an answer; open a new session');
    }
    session.state = 'answered';
    this.#port.answerWall(sessionId, sdp);
  }

  close(sessionId: string): void {
    if (!this.#sessions.has(sessionId)) throw new WallError(404, 'no such wall session');
    this.#drop(sessionId);
    this.#log.info({ session: short(sessionId), sessions: this.#sessions.size }, 'wall session closed');
  }

  /** Closes every session and stops listening to the worker. */
  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#sessions.keys()]) this.#drop(id);
    for (const off of this.#unsubscribe) off();
  }

  #drop(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    // An opening session is closed once its offer arrives (open() finds it gone).
    if (session.state !== 'opening') this.#port.closeWall(id);
  }

  #onWorkerGone(): void {
    if (this.#sessions.size > 0) {
      this.#log.info({ sessions: this.#sessions.size }, 'media worker gone; wall sessions dropped');
    }
    this.#sessions.clear();
    if (this.#state.get().media.wall !== undefined) {
      this.#state.update((s) => {
        delete s.media.wall;
      });
    }
  }

  #onSlots(next: WallSlots): void {
    if (this.#closed) return;
    const wall: WallSlots = {
      slots: next.slots.map((s) => ({
        mid: s.mid,
        kind: s.kind,
        ...(s.senderIndex !== undefined ? { senderIndex: s.senderIndex } : {}),
      })),
      ...(next.activeSpeaker !== undefined ? { activeSpeaker: next.activeSpeaker } : {}),
    };
    if (JSON.stringify(this.#state.get().media.wall) === JSON.stringify(wall)) return;
    this.#state.update((s) => {
      s.media.wall = wall;
    });
  }
}

/** Enough of a session id to follow it in the log, not enough to use it. */
function short(id: string): string {
  return `${id.slice(0, 4)}…`;
}
