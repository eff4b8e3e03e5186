// One meeting attempt: the E2EE worker (relay connection, protocol core, verified roster — H4a's
// src/web/e2ee/worker.ts), the transform worker (SFrame on every sender and receiver) and the Call.
// The page creates the MessageChannel between the two workers and hands one end to each: keys travel
// on it from the E2EE worker to the transform worker and never through this thread.
import {
  type E2eeToPage,
  isE2eeToPage,
  type MeetingStatus,
  type MeetingView,
  type PageToE2ee,
  type PageToTransform,
  type TransformStats,
  type TransformToPage,
  type TrustAnchorsJson,
} from '../shared/messages.js';
import { Call, type TileStats } from './call.js';
import type { JoinTarget } from './fragment.js';
import type { SignedIn } from './signin.js';

export interface SessionEvents {
  changed(): void;
  shareResult(enabled: boolean, ok: boolean, text: string): void;
}

export class Session {
  status: { status: MeetingStatus; text: string } = {
    status: 'connecting',
    text: 'Connecting to the relay…',
  };
  view: MeetingView | undefined;
  readonly call: Call;
  readonly #e2ee: Worker;
  readonly #transform: Worker;
  #statsId = 0;
  readonly #pendingStats = new Map<number, (s: TransformStats) => void>();
  #closed = false;

  constructor(
    readonly target: JoinTarget,
    private readonly events: SessionEvents,
  ) {
    this.#e2ee = new Worker(new URL('./e2ee-worker.js', import.meta.url), {
      type: 'module',
      name: 'sealroom-e2ee',
    });
    this.#transform = new Worker(new URL('./transform-worker.js', import.meta.url), {
      type: 'module',
      name: 'sealroom-transform',
    });
    this.call = new Call(
      this.#transform,
      (payload) => this.#post({ type: 'signal', payload }),
      () => events.changed(),
    );
    this.#e2ee.onmessage = (e: MessageEvent) => this.#onE2ee(e.data);
    this.#e2ee.onerror = (e) => {
      e.preventDefault();
      this.#setStatus('error', `The encryption worker failed: ${e.message || 'unknown error'}`);
    };
    this.#transform.onmessage = (e: MessageEvent) => {
      const m = e.data as TransformToPage;
      if (m?.type === 'stats') this.#pendingStats.get(m.id)?.(m.stats);
    };
  }

  /** `relayUrls`: the organisation's relays, where a clustered relay's redirect may send the worker. */
  start(signedIn: SignedIn, trust: TrustAnchorsJson, relayUrls: string[] = []): void {
    const channel = new MessageChannel();
    this.#transform.postMessage({ type: 'port', port: channel.port2 } satisfies PageToTransform, [
      channel.port2,
    ]);
    const start: PageToE2ee = {
      type: 'start',
      relayUrl: this.target.relayUrl,
      relayUrls,
      meetingId: this.target.meetingId,
      certificatePem: signedIn.certificate,
      trust,
      keyPair: signedIn.key.pair,
      transformPort: channel.port1,
    };
    this.#e2ee.postMessage(start, [channel.port1]);
  }

  #post(m: PageToE2ee): void {
    if (!this.#closed) this.#e2ee.postMessage(m);
  }

  #setStatus(status: MeetingStatus, text: string): void {
    this.status = { status, text };
    this.events.changed();
  }

  #onE2ee(data: unknown): void {
    if (!isE2eeToPage(data)) return;
    const m = data as E2eeToPage;
    switch (m.type) {
      case 'status':
        this.#setStatus(m.status, String(m.text ?? ''));
        if (['denied', 'left', 'ended', 'refused', 'error'].includes(m.status)) this.call.close();
        break;
      case 'view':
        this.view = m.view;
        this.events.changed();
        break;
      case 'signal':
        void this.call.signal(m.payload);
        break;
      case 'share':
        this.events.shareResult(m.enabled, m.ok, String(m.text ?? ''));
        break;
    }
  }

  share(enabled: boolean): void {
    this.#post({ type: 'share', enabled });
  }

  mute(audio: boolean, video: boolean): void {
    this.#post({ type: 'mute', audio, video });
  }

  /** Says goodbye through the worker, then stops everything (the worker gets a moment to send). */
  async leave(): Promise<void> {
    if (this.#closed) return;
    this.#post({ type: 'leave' });
    this.call.close();
    await new Promise((r) => setTimeout(r, 300));
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.call.close();
    this.#e2ee.terminate();
    this.#transform.terminate();
    for (const resolve of this.#pendingStats.values()) resolve(emptyStats());
    this.#pendingStats.clear();
  }

  async transformStats(): Promise<TransformStats> {
    if (this.#closed) return emptyStats();
    const id = ++this.#statsId;
    return new Promise<TransformStats>((resolve) => {
      const timer = setTimeout(() => done(emptyStats()), 2000);
      const done = (s: TransformStats) => {
        clearTimeout(timer);
        this.#pendingStats.delete(id);
        resolve(s);
      };
      this.#pendingStats.set(id, done);
      this.#transform.postMessage({ type: 'stats', id } satisfies PageToTransform);
    });
  }

  tileStats(): Promise<TileStats[]> {
    return this.call.tileStats();
  }
}

const emptyStats = (): TransformStats => ({ streams: {}, epoch: 0, sending: false });
