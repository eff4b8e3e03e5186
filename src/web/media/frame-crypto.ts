// The web participant's frame protection, the part of the transform worker that is not Worker glue
// (so Node tests drive it directly): SFrame on WebCrypto in the media worker's formats (Opus whole
// frame, VP8 clear-prefix, H.264 clear-params) plus sender authentication (MAC-vector trailer).
//
// One SFrame sender per KID, shared by every send stream (microphone, camera, content), so all of
// them draw from one counter and a (key, KID, CTR) is never used twice. Frames that fail anywhere are
// thrown out by the caller (never handed to a decoder); without keys, or while `sending` is false,
// nothing is sent at all.
import { FrameAuthError } from '../../core/frame-auth/trailer.js';
import type { StreamStats, TransformKeys, TransformStats } from '../shared/messages.js';
import { WebFrameAuth } from './frame-auth-webcrypto.js';
import { openH264As, sealH264As } from './h264-protect.js';
import { WebSFrameError, WebSFrameReceiver, WebSFrameSender } from './sframe-webcrypto.js';
import { openVp8, sealVp8, Vp8FormatError } from './vp8-protect.js';

export type MediaKind = 'audio' | 'vp8' | 'h264';

/** Why a received frame was dropped (SFrame and frame-auth codes, NO_KEYS, EMPTY, MALFORMED_VP8, ERROR). */
export class FrameDropped extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

const newStats = (): StreamStats => ({ sent: 0, opened: 0, failed: {}, dropped: 0 });

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

interface Active {
  epoch: number;
  sending: boolean;
  sender: WebSFrameSender;
  auth: WebFrameAuth;
}

export class FrameCrypto {
  #active: Active | undefined;
  readonly #receiver = new WebSFrameReceiver({ replayWindow: 256 });
  /** KID → fingerprint of its key: a KID's window is kept while its key stays the same. */
  readonly #receiveKids = new Map<string, string>();
  #sendKeyPrint = '';
  /** Keys are applied in order even though frame-auth key import is async. */
  #applying: Promise<void> = Promise.resolve();
  readonly #stats = new Map<string, StreamStats>();

  /** Applies a keys message from the E2EE worker; resolves once frames use them. */
  setKeys(k: TransformKeys): Promise<void> {
    this.#applying = this.#applying.then(() => this.#apply(k)).catch(() => undefined);
    return this.#applying;
  }

  async #apply(k: TransformKeys): Promise<void> {
    const kid = BigInt(k.sendKid);
    const print = `${k.sendKid}:${hex(k.sendKey)}`;
    const current = this.#active;
    // The same KID and key: keep the sender (its counter goes on); otherwise a new sender.
    const sender =
      current && print === this.#sendKeyPrint
        ? current.sender
        : new WebSFrameSender({ kid, baseKey: k.sendKey });
    this.#sendKeyPrint = print;
    const next = new Set<string>();
    for (const r of k.receiveKeys) {
      const fingerprint = hex(r.key);
      next.add(r.kid);
      if (this.#receiveKids.get(r.kid) === fingerprint) continue;
      this.#receiver.setKey(BigInt(r.kid), r.key);
      this.#receiveKids.set(r.kid, fingerprint);
    }
    for (const old of [...this.#receiveKids.keys()]) {
      if (next.has(old)) continue;
      this.#receiver.removeKey(BigInt(old));
      this.#receiveKids.delete(old);
    }
    const auth = await WebFrameAuth.create(Number(kid & 0xffffn), k.auth);
    this.#active = { epoch: k.epoch, sending: k.sending, sender, auth };
  }

  /** The meeting is over (or we left): every key goes. */
  wipe(): Promise<void> {
    this.#applying = this.#applying.then(() => {
      this.#active = undefined;
      this.#sendKeyPrint = '';
      for (const kid of this.#receiveKids.keys()) this.#receiver.removeKey(BigInt(kid));
      this.#receiveKids.clear();
    });
    return this.#applying;
  }

  get epoch(): number {
    return this.#active?.epoch ?? 0;
  }

  /**
   * A frame to send, sealed and tagged; undefined means drop it (no keys yet, or sending is off).
   * `stream` names the stats entry (send-microphone, send-camera, send-content).
   */
  async seal(stream: string, kind: MediaKind, plain: Uint8Array): Promise<Uint8Array | undefined> {
    const stats = this.#statsFor(stream);
    const active = this.#active;
    if (!active?.sending) {
      stats.dropped++;
      return undefined;
    }
    const { sender, auth } = active;
    const wire =
      kind === 'audio'
        ? await auth.seal(await sender.seal(plain))
        : kind === 'h264'
          ? await auth.sealH264(await sealH264As(sender, plain, 'clear-params'))
          : await auth.seal(await sealVp8(sender, plain, 'clear-prefix'));
    stats.sent++;
    return wire;
  }

  /** A received frame, authenticated then opened; throws FrameDropped (counted) on any failure. */
  async open(stream: string, kind: MediaKind, wire: Uint8Array): Promise<Uint8Array> {
    const stats = this.#statsFor(stream);
    try {
      // Chromium hands the receive transform the odd empty audio frame: nothing to open, dropped.
      if (wire.length === 0) throw new FrameDropped('EMPTY');
      const active = this.#active;
      if (!active) throw new FrameDropped('NO_KEYS');
      // Sender authentication first: nothing unauthenticated reaches SFrame (and its replay window).
      const { auth } = active;
      const plain =
        kind === 'audio'
          ? (await this.#receiver.open(await auth.open('audio', wire))).plaintext
          : kind === 'h264'
            ? await openH264As(this.#receiver, await auth.openH264(wire), 'clear-params')
            : await openVp8(this.#receiver, await auth.open('vp8', wire), 'clear-prefix');
      stats.opened++;
      return plain;
    } catch (err) {
      const code =
        err instanceof FrameDropped || err instanceof WebSFrameError || err instanceof FrameAuthError
          ? err.code
          : err instanceof Vp8FormatError
            ? 'MALFORMED_VP8'
            : 'ERROR';
      stats.failed[code] = (stats.failed[code] ?? 0) + 1;
      throw err instanceof FrameDropped ? err : new FrameDropped(code);
    }
  }

  stats(): TransformStats {
    const streams: Record<string, StreamStats> = {};
    for (const [k, v] of this.#stats) streams[k] = { ...v, failed: { ...v.failed } };
    return { streams, epoch: this.epoch, sending: this.#active?.sending ?? false };
  }

  #statsFor(stream: string): StreamStats {
    let s = this.#stats.get(stream);
    if (!s) {
      s = newStats();
      this.#stats.set(stream, s);
    }
    return s;
  }
}

/**
 * The codec of a video frame: Chromium's frame metadata (authoritative, per frame), else the page's
 * word (from the negotiated SDP), else VP8.
 */
export function videoKind(option: 'vp8' | 'h264' | undefined, mimeType: string | undefined): MediaKind {
  const mime = mimeType?.toLowerCase();
  if (mime === 'video/h264') return 'h264';
  if (mime === 'video/vp8') return 'vp8';
  return option ?? 'vp8';
}
