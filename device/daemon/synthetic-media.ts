// A media engine without GStreamer: sends numbered synthetic audio and video frames whose plaintext
// is known ("SEALROOM-PLAINTEXT|room|kind|n"), SFrame-protected with the current send key, one frame
// per RTP packet with the sender-authentication trailer the media worker sends with Opus
// (docs/sframe.md), and opens what arrives with the receive and frame-authentication keys. Tests use
// the known plaintext to prove the relay never sees it; benchmarks use the first decrypted frame per
// sender. Like the worker it rebuilds keys by their bytes, sends nothing while `sending` is false and
// forgets every key when the meeting ends.
import { EventEmitter } from 'node:events';
import { type KeysEvent, parseKid } from '../../src/core/e2ee/index.js';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import { SFrameReceiver, SFrameSender, plausibleCounter } from '../../src/core/sframe/index.js';
import { MediaKeyState, mediaKeysToWire } from '../media/key-state.js';
import { failureCause, openAuthenticated, sealAuthenticated } from '../media/sender-auth.js';
import { type Kind, LoopbackMediaPeer } from './loopback-media-peer.js';
import type { MediaPort } from './media-port.js';

export const KNOWN_PLAINTEXT_PREFIX = 'SEALROOM-PLAINTEXT|';

export interface DecodedFrame {
  kind: Kind;
  senderIndex: number;
  epoch: number;
  text: string;
}

export interface SyntheticMediaOptions {
  roomName: string;
  /** Frame interval per kind (ms); default video 66 (15 fps), audio 40. */
  videoIntervalMs?: number;
  audioIntervalMs?: number;
  /** Bytes of filler per video frame (default 1000). */
  videoBytes?: number;
}

export class SyntheticMedia
  extends EventEmitter<{ frame: [DecodedFrame]; decryptFailure: [] }>
  implements MediaPort
{
  readonly #opts: SyntheticMediaOptions;
  /** Written into every frame's known plaintext. */
  roomName: string;
  #peer: LoopbackMediaPeer | undefined;
  #signalListeners: ((p: SignalPayload) => void)[] = [];
  readonly #keys = new MediaKeyState(
    new SFrameReceiver({ replayWindow: 1024, plausibleCounter }),
    (kid, baseKey, initialCounter) => new SFrameSender({ kid, baseKey, initialCounter }),
  );
  #timers: NodeJS.Timeout[] = [];
  #counter = 0;
  readonly decoded = new Map<number, { audio: number; video: number; lastText: string }>();
  decryptFailures = 0;
  /** Of decryptFailures: frames whose sender authentication failed (forged, untagged). */
  authFailures = 0;
  framesSent = 0;

  constructor(opts: SyntheticMediaOptions) {
    super();
    this.#opts = opts;
    this.roomName = opts.roomName;
  }

  get connected(): boolean {
    return this.#peer?.connected ?? false;
  }

  connect(): void {
    this.disconnect();
    const peer = new LoopbackMediaPeer();
    this.#peer = peer;
    peer.on('signal', (p) => {
      for (const l of this.#signalListeners) l(p);
    });
    peer.on('packet', (p) => this.#receive(p.kind, p.payload));
    peer.on('keyframeRequest', () => undefined);
    const start = Date.now();
    const tick = (kind: Kind) => {
      const keys = this.#keys.sendKeys();
      if (!peer.connected || !keys) return;
      this.#counter++;
      const filler = kind === 'video' ? 'v'.repeat(this.#opts.videoBytes ?? 1000) : 'a'.repeat(80);
      const plaintext = Buffer.from(
        `${KNOWN_PLAINTEXT_PREFIX}${this.roomName}|${kind}|${this.#counter}|${filler}`,
      );
      const frame = sealAuthenticated('opus', keys.sender, keys.auth, plaintext);
      peer.send(kind, Buffer.from(frame), ((Date.now() - start) * 90) >>> 0);
      this.framesSent++;
    };
    this.#timers = [
      setInterval(() => tick('video'), this.#opts.videoIntervalMs ?? 66),
      setInterval(() => tick('audio'), this.#opts.audioIntervalMs ?? 40),
    ];
  }

  disconnect(): void {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    const peer = this.#peer;
    this.#peer = undefined;
    if (peer) {
      peer.removeAllListeners();
      void peer.close();
    }
  }

  signal(payload: SignalPayload): void {
    void this.#peer?.handleSignal(payload);
  }

  onSignal(listener: (payload: SignalPayload) => void): void {
    this.#signalListeners.push(listener);
  }

  keys(event: KeysEvent): void {
    this.#keys.set(mediaKeysToWire(event));
  }

  endMeeting(): void {
    this.#keys.clear();
  }

  labels(): void {}

  async close(): Promise<void> {
    this.disconnect();
  }

  #receive(kind: Kind, payload: Buffer): void {
    let text: string;
    let kid: bigint;
    try {
      const frame = openAuthenticated('opus', this.#keys.receiver, this.#keys.verifier, payload);
      text = Buffer.from(frame.frame).toString('utf8');
      kid = frame.kid;
    } catch (err) {
      this.decryptFailures++;
      if (failureCause(err) === 'auth') this.authFailures++;
      this.emit('decryptFailure');
      return;
    }
    const { epoch, senderIndex } = parseKid(kid);
    const entry = this.decoded.get(senderIndex) ?? { audio: 0, video: 0, lastText: '' };
    entry[kind]++;
    entry.lastText = text.slice(0, 80);
    this.decoded.set(senderIndex, entry);
    this.emit('frame', { kind, senderIndex, epoch, text });
  }
}
