// The web participant's RTCRtpScriptTransform worker (a dedicated Worker the page starts). A thin
// shell over FrameCrypto: keys arrive only on the MessagePort from the E2EE worker (the page hands
// that port over, it never sees a key); the page may ask for counters. Every transform the page
// attaches — microphone, camera, content (send) and every subscribed stream (receive) — runs here.
import type {
  E2eeToTransform,
  PageToTransform,
  TransformOptions,
  TransformToE2ee,
  TransformToPage,
} from '../shared/messages.js';
import { FrameCrypto, type MediaKind, videoKind } from './frame-crypto.js';

interface EncodedFrame {
  data: ArrayBuffer;
  getMetadata?(): { mimeType?: string };
}

interface ScriptTransformer {
  readonly readable: ReadableStream<EncodedFrame>;
  readonly writable: WritableStream<EncodedFrame>;
  readonly options: TransformOptions;
  sendKeyFrameRequest?(): Promise<void>;
  /** Send side: asks the encoder for a keyframe (Chromium's RTCRtpScriptTransformer). */
  generateKeyFrame?(rid?: string): Promise<unknown>;
}

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  onrtctransform: ((e: { transformer: ScriptTransformer }) => void) | null;
  postMessage(message: TransformToPage): void;
};

const frames = new FrameCrypto();
/** A dropped video frame leaves the decoder waiting for a keyframe: ask, at most every 500 ms. */
const KEYFRAME_REQUEST_INTERVAL_MS = 500;
let lastKeyframeRequest = 0;
let keysPort: MessagePort | undefined;

function listen(port: MessagePort): void {
  // One E2EE worker per transform worker, for good: a second port (from whoever runs in the page)
  // is ignored, so it can neither take the keys channel over nor feed keys of its own.
  if (keysPort) return;
  keysPort = port;
  port.onmessage = (e: MessageEvent) => {
    const m = e.data as E2eeToTransform;
    if (m?.type === 'keys') {
      void frames
        .setKeys(m)
        .then(() => port.postMessage({ type: 'keys-set', epoch: m.epoch } satisfies TransformToE2ee));
    } else if (m?.type === 'wipe') void frames.wipe();
  };
}

scope.onmessage = (e: MessageEvent) => {
  const m = e.data as PageToTransform;
  if (m?.type === 'port' && m.port) listen(m.port);
  else if (m?.type === 'stats') scope.postMessage({ type: 'stats', id: m.id, stats: frames.stats() });
};

function kindOf(o: TransformOptions, frame: EncodedFrame): MediaKind {
  return o.kind === 'audio' ? 'audio' : videoKind(o.codec, frame.getMetadata?.().mimeType);
}

function pipeline(t: ScriptTransformer): Transformer<EncodedFrame, EncodedFrame> {
  const o = t.options;
  const source =
    o.source ??
    (o.kind === 'audio'
      ? o.side === 'send'
        ? 'microphone'
        : 'audio'
      : o.kind === 'video' && o.side === 'send'
        ? 'camera'
        : 'video');
  const stream = `${o.side}-${source}`;
  if (o.side === 'send') {
    // Frames dropped (no keys yet, or sending off) may have included the keyframe: when frames go out
    // again, ask the encoder for a new one, so receivers need not wait for their own PLI.
    let dropping = false;
    return {
      async transform(frame, controller) {
        try {
          const wire = await frames.seal(stream, kindOf(o, frame), new Uint8Array(frame.data));
          if (!wire) {
            dropping = true;
            return; // never send media without a key, or while sending is off
          }
          if (dropping && o.kind === 'video')
            Promise.resolve()
              .then(() => t.generateKeyFrame?.())
              .catch(() => undefined);
          dropping = false;
          frame.data = wire.buffer as ArrayBuffer;
          controller.enqueue(frame);
        } catch {
          // a frame that cannot be sealed is not sent
        }
      },
    };
  }
  return {
    async transform(frame, controller) {
      try {
        const plain = await frames.open(stream, kindOf(o, frame), new Uint8Array(frame.data));
        frame.data = plain.buffer as ArrayBuffer;
        controller.enqueue(frame);
      } catch {
        const now = Date.now();
        if (
          o.kind === 'video' &&
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
  t.readable
    .pipeThrough(new TransformStream(pipeline(t)))
    .pipeTo(t.writable)
    .catch(() => undefined);
};
