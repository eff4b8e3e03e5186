// The interop tests' RTCRtpScriptTransform worker (test/browser-participant.test.ts, proposed-formats):
// the test page hands it keys directly (hex, `setKeys`) and it can also run the former formats for
// the comparison (whole-frame VP8, per-NAL H.264, a chosen first CTR). The web app's production worker
// is src/web/media/transform-worker.ts (keys only over a MessagePort from the E2EE worker); both use
// the same WebCrypto SFrame, VP8/H.264 layouts and frame authentication from src/web/media/.
// SFrame over encoded frames exactly as Sealroom's media worker protects them — Opus as one SFrame
// over the whole frame, VP8 in the clear-prefix format (device/media/vp8-protect.ts).
// One sender per KID for audio and video together, so the two streams share one counter and a
// (key, KID, CTR) is never used twice. Frames that fail to open are dropped, never handed to a
// decoder. The page reads counters with a 'stats' message.
import { FrameAuthError } from '../../src/core/frame-auth/trailer.js';
import { WebFrameAuth } from '../../src/web/media/frame-auth-webcrypto.js';
import { WebSFrameError, WebSFrameReceiver, WebSFrameSender } from '../../src/web/media/sframe-webcrypto.js';
import { type H264Format, openH264As, sealH264As } from '../../src/web/media/h264-protect.js';
import {
  type Vp8Format,
  Vp8FormatError,
  isVp8Keyframe,
  openVp8,
  sealVp8,
} from '../../src/web/media/vp8-protect.js';

type Side = 'send' | 'receive';
type Kind = 'audio' | 'video';

interface EncodedFrame {
  data: ArrayBuffer;
  /** Video only: how Chromium's depacketiser (receive) or encoder (send) classified the frame. */
  type?: 'key' | 'delta' | 'empty';
}

interface ScriptTransformer {
  readonly readable: ReadableStream<EncodedFrame>;
  readonly writable: WritableStream<EncodedFrame>;
  readonly options: { side: Side; kind: Kind };
  sendKeyFrameRequest?(): Promise<void>;
}

export interface KeysMessage {
  type: 'keys';
  sendKid: string;
  /** Hex. */
  sendKey: string;
  receiveKeys: { kid: string; key: string }[];
  /** VP8 frame format, both directions (default 'clear-prefix', as the media worker sends). */
  vp8Format?: Vp8Format;
  /** Video codec of the call (default VP8). */
  videoCodec?: 'vp8' | 'h264';
  /** H.264 frame format (default 'clear-params', as the media worker sends; 'per-nal' is the former one). */
  h264Format?: H264Format;
  /** First CTR of a new sender (decimal; tests use it to stand in for a long-running sender). */
  initialCounter?: string;
  /**
   * Pairwise frame-authentication keys (hex), one per other member: every sent frame carries the
   * MAC-vector trailer and every received frame must carry a valid tag for this participant
   * (docs/sframe.md, "Sender authentication"), as the media worker does. Absent: no trailer either
   * way (the format tests between two pages).
   */
  auth?: { peerIndex: number; send: string; receive: string }[];
}

export interface KindCounters {
  sealed: number;
  opened: number;
  /** Opened frames per KID (decimal): shows which epoch's key a frame came under. */
  openedByKid: Record<string, number>;
  /** Refusals by code (AUTH_FAILED, UNKNOWN_KEY, REPLAY, ...). */
  failures: Record<string, number>;
  /** Video: plaintext keyframes (VP8 P bit 0) seen. */
  keyframes: number;
  /**
   * Receive side, video: frames whose type as Chromium labelled it before decryption (from the
   * ciphertext's first byte) differs from the real VP8 frame type after decryption.
   */
  typeMislabelled: number;
  /** Sent frames dropped because no send key was set yet. */
  droppedWithoutKey: number;
}

export type WorkerCounters = Record<`${Side}-${Kind}`, KindCounters>;

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  onrtctransform: ((e: { transformer: ScriptTransformer }) => void) | null;
  postMessage(message: unknown): void;
};

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
const newCounters = (): KindCounters => ({
  sealed: 0,
  opened: 0,
  openedByKid: {},
  failures: {},
  keyframes: 0,
  typeMislabelled: 0,
  droppedWithoutKey: 0,
});
const counters: WorkerCounters = {
  'send-audio': newCounters(),
  'send-video': newCounters(),
  'receive-audio': newCounters(),
  'receive-video': newCounters(),
};

let sender: WebSFrameSender | undefined;
let sendKeyHex = '';
let vp8Format: Vp8Format = 'clear-prefix';
let videoCodec: 'vp8' | 'h264' = 'vp8';
let h264Format: H264Format = 'clear-params';
const receiver = new WebSFrameReceiver({ replayWindow: 256 });
let receiveKids = new Set<bigint>();
let frameAuth: WebFrameAuth | undefined;
const KEYFRAME_REQUEST_INTERVAL_MS = 500;
let lastKeyframeRequest = 0;

async function setKeys(m: KeysMessage): Promise<void> {
  vp8Format = m.vp8Format ?? 'clear-prefix';
  videoCodec = m.videoCodec ?? 'vp8';
  h264Format = m.h264Format ?? 'clear-params';
  const kid = BigInt(m.sendKid);
  // A new KID or a new key for it: a new sender (its counter starts again, under the new key).
  if (sender?.kid !== kid || m.sendKey !== sendKeyHex) {
    sender = new WebSFrameSender({
      kid,
      baseKey: unhex(m.sendKey),
      initialCounter: BigInt(m.initialCounter ?? 0),
    });
    sendKeyHex = m.sendKey;
  }
  const next = new Set<bigint>();
  for (const { kid: k, key } of m.receiveKeys) {
    const id = BigInt(k);
    receiver.setKey(id, unhex(key));
    next.add(id);
  }
  for (const old of receiveKids) if (!next.has(old)) receiver.removeKey(old);
  receiveKids = next;
  frameAuth = m.auth
    ? await WebFrameAuth.create(
        Number(kid & 0xffffn),
        m.auth.map((a) => ({ peerIndex: a.peerIndex, send: unhex(a.send), receive: unhex(a.receive) })),
      )
    : undefined;
}

scope.onmessage = (e: MessageEvent) => {
  const m = e.data as KeysMessage | { type: 'stats'; id: number };
  if (m.type === 'keys') {
    void setKeys(m).then(() => scope.postMessage({ type: 'keys-set' }));
  } else if (m.type === 'stats') scope.postMessage({ type: 'stats', id: m.id, counters });
};

function sealer(c: KindCounters, kind: Kind): Transformer<EncodedFrame, EncodedFrame> {
  return {
    async transform(frame, controller) {
      const s = sender;
      if (!s) {
        c.droppedWithoutKey++; // never send media without a key
        return;
      }
      const plain = new Uint8Array(frame.data);
      if (kind === 'video' && videoCodec === 'vp8' && isVp8Keyframe(plain)) c.keyframes++;
      const auth = frameAuth;
      let sealed =
        kind === 'audio'
          ? await s.seal(plain)
          : videoCodec === 'h264'
            ? await sealH264As(s, plain, h264Format)
            : await sealVp8(s, plain, vp8Format);
      if (auth)
        sealed =
          kind === 'video' && videoCodec === 'h264' ? await auth.sealH264(sealed) : await auth.seal(sealed);
      frame.data = sealed.buffer as ArrayBuffer;
      c.sealed++;
      controller.enqueue(frame);
    },
  };
}

function opener(c: KindCounters, kind: Kind, t: ScriptTransformer): Transformer<EncodedFrame, EncodedFrame> {
  return {
    async transform(frame, controller) {
      try {
        let data: Uint8Array = new Uint8Array(frame.data);
        // Sender authentication first: nothing unauthenticated reaches SFrame (and its window).
        const auth = frameAuth;
        if (auth) {
          data =
            kind === 'audio'
              ? await auth.open('audio', data)
              : videoCodec === 'h264'
                ? await auth.openH264(data)
                : await auth.open('vp8', data);
        }
        // Counts the KID of every SFrame that opened (an H.264 frame has one per NAL unit).
        let kid = '';
        const counting = {
          open: async (f: Uint8Array, m?: Uint8Array) => {
            const r = await receiver.open(f, m);
            kid = r.kid.toString();
            return r;
          },
        };
        const plaintext =
          kind === 'audio'
            ? (await counting.open(data)).plaintext
            : videoCodec === 'h264'
              ? await openH264As(counting, data, h264Format)
              : await openVp8(counting, data, vp8Format);
        c.openedByKid[kid] = (c.openedByKid[kid] ?? 0) + 1;
        if (kind === 'video' && videoCodec === 'vp8') {
          const key = isVp8Keyframe(plaintext);
          if (key) c.keyframes++;
          if ((frame.type === 'key') !== key) c.typeMislabelled++;
        }
        frame.data = plaintext.buffer as ArrayBuffer;
        c.opened++;
        controller.enqueue(frame);
      } catch (err) {
        const code =
          err instanceof WebSFrameError || err instanceof FrameAuthError
            ? err.code
            : err instanceof Vp8FormatError
              ? 'MALFORMED_VP8'
              : 'ERROR';
        c.failures[code] = (c.failures[code] ?? 0) + 1;
        // Dropped; a video decoder then waits for a keyframe, so ask for one (rate-limited).
        const now = Date.now();
        if (
          kind === 'video' &&
          t.sendKeyFrameRequest &&
          now - lastKeyframeRequest > KEYFRAME_REQUEST_INTERVAL_MS
        ) {
          lastKeyframeRequest = now;
          t.sendKeyFrameRequest().catch(() => undefined);
        }
      }
    },
  };
}

scope.onrtctransform = ({ transformer: t }) => {
  const { side, kind } = t.options;
  const c = counters[`${side}-${kind}`];
  const transformer = side === 'send' ? sealer(c, kind) : opener(c, kind, t);
  t.readable
    .pipeThrough(new TransformStream(transformer))
    .pipeTo(t.writable)
    .catch(() => undefined);
};
