// bench:browser's sending room for the CPU comparison: one 1280×720@30 VP8 encoder (GStreamer, the
// media worker's encoder settings from pipelines/codecs.json), its frames sent on K video tracks of
// one werift PeerConnection offered straight to a Chromium page — either SFrame-sealed and
// sender-authenticated per stream exactly as a room's media worker does (device/media/sender-auth.ts,
// VP8 clear-prefix + MAC trailer), or plain (the baseline). The same encoded frames either way, so the
// only difference the page sees is whether its receive transform has to open them.
import { createHash } from 'node:crypto';
import type { RTCPeerConnection } from 'werift';
import { loadPipelineSet } from '../../device/media/catalog.js';
import { LivePipeline } from '../../device/media/gst.js';
import { packetizeVp8 } from '../../device/media/rtp-payload.js';
import { sealAuthenticated } from '../../device/media/sender-auth.js';
import { DEFAULT_SETTINGS, renderTemplate } from '../../device/media/templates.js';
import { VIDEO_PAYLOAD_TYPE } from '../../device/media/transport.js';
import { deriveSenderBaseKey, makeKid } from '../../src/core/e2ee/sender-keys.js';
import { FrameAuthSender } from '../../src/core/frame-auth/node.js';
import { SFrameSender } from '../../src/core/sframe/index.js';
import type { TransformKeys } from '../../src/web/shared/messages.js';
import { type OutStream, offeringPeer, offerToPage, writeFrame } from './sfu-offer.js';

export const EPOCH = 1;
/** The browser's sender index (it sends nothing here; its KID tells the transform which tag is its). */
export const BROWSER_INDEX = 1;
export const senderIndex = (i: number) => 200 + i;
const meetingKey = new Uint8Array(32).fill(11);
const MEETING = { meetingId: 'm-bench-browser', creationNonce: new Uint8Array(32).fill(12) };
const authKey = (s: number, r: number) =>
  new Uint8Array(createHash('sha256').update(`bench-browser ${s}>${r}`).digest());
const baseKey = (s: number) => deriveSenderBaseKey(meetingKey, EPOCH, s, MEETING);

/** What the E2EE worker would hand the page's transform worker for K bench senders. */
export function browserTransformKeys(k: number): TransformKeys {
  const senders = Array.from({ length: k }, (_, i) => senderIndex(i));
  return {
    type: 'keys',
    epoch: EPOCH,
    sendKid: makeKid(EPOCH, BROWSER_INDEX).toString(),
    sendKey: baseKey(BROWSER_INDEX),
    receiveKeys: senders.map((s) => ({ kid: makeKid(EPOCH, s).toString(), key: baseKey(s) })),
    auth: senders.map((s) => ({
      peerIndex: s,
      send: authKey(BROWSER_INDEX, s),
      receive: authKey(s, BROWSER_INDEX),
    })),
    sending: false,
  };
}

type Stream = OutStream & { sframe: SFrameSender; auth: FrameAuthSender };

export class BrowserBenchSender {
  readonly video: LivePipeline;
  #pc: RTCPeerConnection | undefined;
  #streams: Stream[] = [];
  readonly #keys = new Map<number, { sframe: SFrameSender; auth: FrameAuthSender }>();
  #pictureId = 0;
  #sealed = true;
  framesSent = 0;

  constructor(opts: { width?: number; height?: number; fps?: number; kbps?: number } = {}) {
    const set = loadPipelineSet('headless');
    const settings = {
      ...DEFAULT_SETTINGS,
      codec: 'vp8' as const,
      keyframeInterval: 300,
      videoKbps: opts.kbps ?? 2500,
    };
    const encoder = renderTemplate(
      set.codecs.vp8.encoder,
      { ...settings, videoBps: settings.videoKbps * 1000 },
      'encoder',
    );
    const w = opts.width ?? 1280;
    const h = opts.height ?? 720;
    const fps = opts.fps ?? 30;
    this.video = new LivePipeline(
      'bench-browser-vp8',
      `videotestsrc is-live=true pattern=ball ! video/x-raw,width=${w},height=${h},framerate=${fps}/1 ! queue max-size-buffers=30 max-size-time=0 max-size-bytes=0 ! videoconvert ! ${encoder} ! appsink name=enc max-buffers=30 drop=false sync=false`,
    );
    this.video.onSample('enc', (frame) => this.#onVideo(frame));
    this.video.start();
  }

  #onVideo(frame: Buffer): void {
    if (this.#pc?.connectionState !== 'connected') return;
    const ts = Math.round(Date.now() * 90) % 2 ** 32;
    for (const t of this.#streams) {
      const body = this.#sealed ? sealAuthenticated('vp8', t.sframe, t.auth, frame) : frame;
      writeFrame(t, 'video', packetizeVp8(body, this.#pictureId), ts, VIDEO_PAYLOAD_TYPE);
    }
    this.#pictureId = (this.#pictureId + 1) & 0x7fff;
    this.framesSent++;
  }

  /** One SFrame sender per stream for the whole run: a KID's counter never restarts under one key. */
  #keysFor(i: number): { sframe: SFrameSender; auth: FrameAuthSender } {
    let s = this.#keys.get(i);
    if (!s) {
      const self = senderIndex(i);
      s = {
        sframe: new SFrameSender({ kid: makeKid(EPOCH, self), baseKey: baseKey(self) }),
        auth: new FrameAuthSender([{ peerIndex: BROWSER_INDEX, key: authKey(self, BROWSER_INDEX) }]),
      };
      this.#keys.set(i, s);
    }
    return s;
  }

  /** A fresh PeerConnection with K video tracks offered to a page (`answer` returns its SDP). */
  async connectPage(k: number, sealed: boolean, answer: (offer: string) => Promise<string>): Promise<void> {
    await this.close();
    this.#sealed = sealed;
    const peer = offeringPeer('vp8', k, {
      videoOnly: true,
      onKeyframeRequest: () => this.video.forceKeyUnit('enc'),
      extra: (i) => this.#keysFor(i),
    });
    this.#pc = peer.pc;
    this.#streams = peer.streams;
    await offerToPage(peer.pc, answer);
    this.video.forceKeyUnit('enc');
  }

  async close(): Promise<void> {
    const pc = this.#pc;
    this.#pc = undefined;
    if (pc) await pc.close();
  }

  stop(): void {
    this.video.stop();
  }
}
