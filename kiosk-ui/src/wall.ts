// The wall connection: the far rooms' video, decrypted by the media worker and forwarded still encoded
// over a loopback WebRTC connection that only this page can open (docs/kiosk.md "The wall").
//
// The kiosk launcher opens the page as http://127.0.0.1:<port>/#wall=<token>. The token is moved to
// sessionStorage and the fragment removed, so it is neither shown nor kept in the history. Each session:
// POST /api/wall/sessions (Bearer token) → the worker's offer → our answer (after ICE gathering, at
// most 2 s) → POST …/answer. Streams are kept per m-line (transceiver mid); the page binds them to tiles
// through state.media.wall.slots. On failure, or when the media worker comes back from a restart, the
// page opens a new session, backing off 1 s → 10 s. Without a token there is no video, nothing else
// changes.
import type { DeviceState } from '../../device/daemon/state.js';

export const WALL_TOKEN_KEY = 'sealroom.wallToken';
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
const GATHER_MS = 2000;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10_000];
/** ICE 'disconnected' this long counts as a failure (a dead worker never comes back on its own). */
const DISCONNECTED_MS = 4000;

/**
 * Takes the token from the `#wall=` fragment (then removes the fragment) or from sessionStorage
 * (a reload keeps it). Returns undefined when there is none.
 */
export function takeWallToken(win: Window = window): string | undefined {
  const hash = win.location.hash.replace(/^#/, '');
  const params = new URLSearchParams(hash);
  if (params.has('wall')) {
    const token = params.get('wall') ?? '';
    if (TOKEN.test(token)) {
      try {
        win.sessionStorage.setItem(WALL_TOKEN_KEY, token);
      } catch {
        // Storage refused (private mode): the token still serves this page's lifetime.
        win.history.replaceState(null, '', win.location.pathname + win.location.search);
        return token;
      }
    }
    win.history.replaceState(null, '', win.location.pathname + win.location.search);
  }
  try {
    const stored = win.sessionStorage.getItem(WALL_TOKEN_KEY);
    return stored && TOKEN.test(stored) ? stored : undefined;
  } catch {
    return undefined;
  }
}

export type WallStatus =
  | 'no-token'
  | 'idle'
  | 'connecting'
  | 'connected'
  /** The daemon has no wall to offer now (no media worker, wall off, worker restarting): retrying. */
  | 'unavailable'
  /** The daemon refused the token (401): retrying slowly, a fresh kiosk link is needed. */
  | 'refused'
  | 'retrying';

export interface WallDeps {
  fetch: typeof fetch;
  createPeer(): RTCPeerConnection;
  setTimeout(fn: () => void, ms: number): number;
  clearTimeout(id: number | undefined): void;
}

const browserDeps = (): WallDeps => ({
  fetch: (...args) => window.fetch(...args),
  createPeer: () => new RTCPeerConnection({ iceServers: [] }),
  setTimeout: (fn, ms) => window.setTimeout(fn, ms),
  clearTimeout: (id) => window.clearTimeout(id),
});

interface Session {
  gen: number;
  id?: string;
  pc?: RTCPeerConnection;
  disconnectedTimer?: number;
}

export class WallClient {
  /** The stream of each m-line (transceiver mid) that delivered a track. */
  readonly streams = new Map<string, MediaStream>();
  status: WallStatus;
  #token: string | undefined;
  #deps: WallDeps;
  #onChange: () => void;
  #want = false;
  #worker: DeviceState['media']['worker'] | undefined;
  #session: Session | undefined;
  #gen = 0;
  #attempt = 0;
  #retryTimer: number | undefined;

  constructor(token: string | undefined, onChange: () => void, deps: WallDeps = browserDeps()) {
    this.#token = token;
    this.#onChange = onChange;
    this.#deps = deps;
    this.status = token ? 'idle' : 'no-token';
  }

  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** Follows the daemon state: connect during an active meeting, reconnect after a worker restart. */
  update(state: DeviceState): void {
    const want = this.#token !== undefined && state.meeting?.status === 'active';
    const worker = state.media.worker;
    const workerBack = this.#worker !== undefined && this.#worker !== 'running' && worker === 'running';
    this.#worker = worker;
    if (!want) {
      if (this.#want) {
        this.#want = false;
        this.#stop();
        this.#setStatus(this.#token ? 'idle' : 'no-token');
      }
      return;
    }
    if (!this.#want) {
      this.#want = true;
      this.#attempt = 0;
      this.#open();
    } else if (workerBack) {
      // The worker's restart dropped our session (its PeerConnection is gone): start over now.
      this.#attempt = 0;
      this.#restart();
    }
  }

  /** The page is going away: close the session so the daemon frees it at once. */
  close(): void {
    this.#want = false;
    this.#stop(true);
  }

  #setStatus(status: WallStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.#onChange();
  }

  #auth(): Record<string, string> {
    return { authorization: `Bearer ${this.#token}` };
  }

  #stop(keepalive = false): void {
    this.#deps.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const session = this.#session;
    this.#session = undefined;
    this.#gen++;
    if (session) {
      this.#deps.clearTimeout(session.disconnectedTimer);
      session.pc?.close();
      if (session.id) {
        this.#deps
          .fetch(`/api/wall/sessions/${encodeURIComponent(session.id)}`, {
            method: 'DELETE',
            headers: this.#auth(),
            keepalive,
          })
          .catch(() => {});
      }
    }
    if (this.streams.size > 0) {
      this.streams.clear();
      this.#onChange();
    }
  }

  #restart(): void {
    this.#stop();
    this.#open();
  }

  #retry(status: WallStatus): void {
    this.#stop();
    if (!this.#want) return;
    const delay = BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)]!;
    this.#attempt++;
    this.#setStatus(status);
    this.#retryTimer = this.#deps.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#want) this.#open();
    }, delay);
  }

  #open(): void {
    const gen = ++this.#gen;
    const session: Session = { gen };
    this.#session = session;
    this.#setStatus('connecting');
    this.#negotiate(session).catch((err: unknown) => {
      if (session.gen !== this.#gen) return;
      const status = (err as { status?: number }).status;
      this.#retry(status === 401 ? 'refused' : status === 503 ? 'unavailable' : 'retrying');
    });
  }

  async #negotiate(session: Session): Promise<void> {
    const current = () => session.gen === this.#gen;
    const res = await this.#deps.fetch('/api/wall/sessions', {
      method: 'POST',
      headers: { ...this.#auth(), 'content-type': 'application/json' },
      body: '{}',
    });
    if (!res.ok) throw Object.assign(new Error(`wall session: HTTP ${res.status}`), { status: res.status });
    const offer = (await res.json()) as { sessionId?: unknown; sdp?: unknown };
    if (typeof offer.sessionId !== 'string' || typeof offer.sdp !== 'string') {
      throw new Error('wall session: malformed answer');
    }
    session.id = offer.sessionId;
    if (!current()) {
      // Superseded while the request ran: free the daemon's session (the stop before missed it).
      this.#deps
        .fetch(`/api/wall/sessions/${encodeURIComponent(offer.sessionId)}`, {
          method: 'DELETE',
          headers: this.#auth(),
        })
        .catch(() => {});
      return;
    }
    const pc = this.#deps.createPeer();
    session.pc = pc;
    pc.addEventListener('track', (ev) => {
      if (!current()) return;
      const mid = ev.transceiver.mid;
      if (mid === null) return;
      this.streams.set(mid, new MediaStream([ev.track]));
      this.#onChange();
    });
    pc.addEventListener('connectionstatechange', () => {
      if (!current()) return;
      const state = pc.connectionState;
      this.#deps.clearTimeout(session.disconnectedTimer);
      session.disconnectedTimer = undefined;
      if (state === 'connected') {
        this.#attempt = 0;
        this.#setStatus('connected');
      } else if (state === 'failed' || state === 'closed') {
        this.#retry('retrying');
      } else if (state === 'disconnected') {
        session.disconnectedTimer = this.#deps.setTimeout(() => {
          if (current() && pc.connectionState === 'disconnected') this.#retry('retrying');
        }, DISCONNECTED_MS);
      }
    });
    await pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    await this.#gathered(pc);
    if (!current()) return;
    const sdp = pc.localDescription?.sdp ?? answer.sdp ?? '';
    const posted = await this.#deps.fetch(
      `/api/wall/sessions/${encodeURIComponent(offer.sessionId)}/answer`,
      {
        method: 'POST',
        headers: { ...this.#auth(), 'content-type': 'application/json' },
        body: JSON.stringify({ sdp }),
      },
    );
    if (!posted.ok) {
      throw Object.assign(new Error(`wall answer: HTTP ${posted.status}`), { status: posted.status });
    }
  }

  /** Waits for ICE gathering to complete (loopback host candidates: quick), at most 2 s. */
  #gathered(pc: RTCPeerConnection): Promise<void> {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#deps.clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', check);
        resolve();
      };
      const check = () => {
        if (pc.iceGatheringState === 'complete') done();
      };
      const timer = this.#deps.setTimeout(done, GATHER_MS);
      pc.addEventListener('icegatheringstatechange', check);
    });
  }
}
