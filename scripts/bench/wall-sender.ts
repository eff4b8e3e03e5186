// bench:wall's sending room: one 1280×720@30 encoder (+ Opus), its frames SFrame-protected and
// sender-authenticated per stream and sent on K video + K audio tracks of one werift PeerConnection
// offered to the receiving worker as the relay's SFU would (as bench:media's sender, which cannot be
// imported: that script runs on import). Two additions for the A/V offset: the picture is a moving
// ball whose background `mark()` turns bright yellow for a few frames while the (otherwise silent) microphone beeps at
// 1 kHz, and both raw streams pass a probe branch before the encoders, so the capture instant of
// every video frame (RTP timestamp = capture wall clock at 90 kHz) and of the beep's first sample
// are known in this process's wall clock.
import { createHash } from 'node:crypto';
import type { RTCPeerConnection } from 'werift';
import { deriveSenderBaseKey, makeKid } from '../../src/core/e2ee/sender-keys.js';
import { FrameAuthSender } from '../../src/core/frame-auth/node.js';
import { SFrameSender } from '../../src/core/sframe/index.js';
import { splitAnnexB, type VideoCodec } from '../../device/media/bitstream.js';
import { loadPipelineSet } from '../../device/media/catalog.js';
import { LivePipeline } from '../../device/media/gst.js';
import { packetizeH264, packetizeVp8 } from '../../device/media/rtp-payload.js';
import { sealAuthenticated, sealH264Authenticated } from '../../device/media/sender-auth.js';
import type { MediaKeys, MediaSupervisor } from '../../device/media/supervisor.js';
import { DEFAULT_SETTINGS, renderTemplate } from '../../device/media/templates.js';
import { OPUS_PAYLOAD_TYPE, VIDEO_PAYLOAD_TYPE } from '../../device/media/transport.js';
import { type OutStream, offerToPage, offerToWorker, offeringPeer, writeFrame } from './sfu-offer.js';

export const EPOCH = 1;
export const RECEIVER_INDEX = 1;
export const senderIndex = (i: number) => 100 + i;
const meetingKey = new Uint8Array(32).fill(7);
const MEETING = { meetingId: 'm-bench-wall', creationNonce: new Uint8Array(32).fill(8) };
const MEMBERS = [RECEIVER_INDEX, ...Array.from({ length: 9 }, (_, i) => senderIndex(i))];
const authKey = (s: number, r: number) =>
  new Uint8Array(createHash('sha256').update(`bench ${s}>${r}`).digest());
const baseKey = (s: number) => deriveSenderBaseKey(meetingKey, EPOCH, s, MEETING);

/** The receiving room's keys: every bench stream's SFrame key and pairwise authentication keys. */
export function receiverKeys(): MediaKeys {
  return {
    epoch: EPOCH,
    sendKid: makeKid(EPOCH, RECEIVER_INDEX),
    sendKey: baseKey(RECEIVER_INDEX),
    receiveKeys: Array.from({ length: 9 }, (_, i) => ({
      kid: makeKid(EPOCH, senderIndex(i)),
      key: baseKey(senderIndex(i)),
    })),
    auth: Array.from({ length: 9 }, (_, i) => ({
      peerIndex: senderIndex(i),
      send: authKey(RECEIVER_INDEX, senderIndex(i)),
      receive: authKey(senderIndex(i), RECEIVER_INDEX),
    })),
  } as MediaKeys;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * videotestsrc `background-color` (ARGB) of the ball pattern: the marker turns the black background
 * yellow (the binding sets numbers as gfloat; 0xffffff00 and 0xff000000 are exact in a float, and
 * an enum such as `pattern` cannot be set at all).
 */
const FLASH_BACKGROUND = 0xffffff00;
const NORMAL_BACKGROUND = 0xff000000;
/** Mean luma (GRAY8 of a 16×16 thumbnail) above which a frame is the white marker. */
const WHITE_LUMA = 200;
const BEEP_THRESHOLD = 3000;

type Stream = OutStream & { sframe: SFrameSender; auth: FrameAuthSender };

export class WallSender {
  readonly video: LivePipeline;
  readonly audio: LivePipeline;
  #captures: { at: number; white: boolean }[] = [];
  #pc: RTCPeerConnection | undefined;
  #streams: Stream[] = [];
  readonly #keys = new Map<number, { sframe: SFrameSender; auth: FrameAuthSender }>();
  #audioTs = 0;
  #pictureId = 0;
  #lastWhite = false;
  #beeping = false;
  framesSent = 0;
  /** Direct mode (harness check, no worker): plain encoded frames straight to a page. */
  #plain = false;
  /** Capture wall clock (ms) of the first white frame of every mark, and its RTP timestamp. */
  readonly flashes: { at: number; rtp: number }[] = [];
  /** Capture wall clock (ms) of the first beep sample of every mark. */
  readonly beeps: number[] = [];

  constructor(readonly codec: VideoCodec) {
    const set = loadPipelineSet('headless');
    const settings = { ...DEFAULT_SETTINGS, codec, keyframeInterval: 300 };
    const encoder = renderTemplate(
      set.codecs[codec].encoder,
      { ...settings, videoBps: settings.videoKbps * 1000 },
      'encoder',
    );
    const q = 'queue max-size-buffers=30 max-size-time=0 max-size-bytes=0';
    this.video = new LivePipeline(
      `bench-wall-${codec}`,
      `videotestsrc name=vsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! tee name=t ! ${q} ! videoconvert ! ${encoder} ! appsink name=enc max-buffers=30 drop=false sync=false t. ! ${q} ! videoscale method=nearest-neighbour ! video/x-raw,width=16,height=16 ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=cap max-buffers=30 drop=false sync=false`,
    );
    this.audio = new LivePipeline(
      'bench-wall-audio',
      `audiotestsrc name=asrc is-live=true wave=sine freq=1000 volume=0 samplesperbuffer=480 ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! tee name=at ! ${q} ! opusenc bitrate=32000 frame-size=20 ! appsink name=aenc max-buffers=50 drop=true sync=false at. ! ${q} ! appsink name=araw max-buffers=50 drop=false sync=false`,
    );
    // Both video branches see every frame (no leaky queue, no dropping appsink), so the n-th encoded
    // frame is the n-th captured one: its capture time is the oldest unmatched probe time.
    this.video.onSample('cap', (gray) => {
      let sum = 0;
      for (const v of gray) sum += v;
      this.#captures.push({ at: Date.now(), white: sum / gray.length > WHITE_LUMA });
    });
    this.video.onSample('enc', (frame) => this.#onVideo(frame));
    this.audio.onSample('aenc', (frame) => this.#onAudio(frame));
    this.audio.onSample('araw', (pcm) => this.#onRawAudio(pcm));
    this.video.start();
    this.audio.start();
  }

  /** Flash (yellow background) for `ms` and beep for the same time, both started in the same tick. */
  async mark(ms = 100): Promise<void> {
    this.video.set('vsrc', 'background-color', FLASH_BACKGROUND);
    this.audio.set('asrc', 'volume', 0.5);
    await sleep(ms);
    this.video.set('vsrc', 'background-color', NORMAL_BACKGROUND);
    this.audio.set('asrc', 'volume', 0);
  }

  #onRawAudio(pcm: Buffer): void {
    const arrived = Date.now();
    const n = pcm.length >> 1;
    let onset = -1;
    for (let i = 0; i < n; i++) {
      if (Math.abs(pcm.readInt16LE(i * 2)) > BEEP_THRESHOLD) {
        onset = i;
        break;
      }
    }
    // A live source delivers a buffer once its last sample is captured: sample i was captured
    // (n − i) / 48 ms before the buffer arrived.
    if (onset >= 0 && !this.#beeping) this.beeps.push(arrived - (n - onset) / 48);
    this.#beeping = onset >= 0;
  }

  #onVideo(frame: Buffer): void {
    const cap = this.#captures.shift() ?? { at: Date.now(), white: false };
    const ts = Math.round(cap.at * 90) % 2 ** 32;
    if (cap.white && !this.#lastWhite) this.flashes.push({ at: cap.at, rtp: ts });
    this.#lastWhite = cap.white;
    if (this.#pc?.connectionState !== 'connected') return;
    for (const t of this.#streams) {
      const payloads = this.#plain
        ? this.codec === 'h264'
          ? packetizeH264(splitAnnexB(frame))
          : packetizeVp8(frame, this.#pictureId)
        : this.codec === 'h264'
          ? packetizeH264(sealH264Authenticated(t.sframe, t.auth, frame))
          : packetizeVp8(sealAuthenticated('vp8', t.sframe, t.auth, frame), this.#pictureId);
      writeFrame(t, 'video', payloads, ts, VIDEO_PAYLOAD_TYPE);
    }
    this.#pictureId = (this.#pictureId + 1) & 0x7fff;
    this.framesSent++;
  }

  #onAudio(frame: Buffer): void {
    this.#audioTs = (this.#audioTs + 960) % 2 ** 32;
    if (this.#pc?.connectionState !== 'connected' || this.#plain) return;
    for (const t of this.#streams) {
      const body = sealAuthenticated('opus', t.sframe, t.auth, frame) as Uint8Array;
      writeFrame(t, 'audio', [body], this.#audioTs, OPUS_PAYLOAD_TYPE);
    }
  }

  /** One SFrame sender per stream for the whole run: a KID's counter never restarts under one key. */
  #keysFor(i: number): { sframe: SFrameSender; auth: FrameAuthSender } {
    let s = this.#keys.get(i);
    if (!s) {
      const self = senderIndex(i);
      s = {
        sframe: new SFrameSender({ kid: makeKid(EPOCH, self), baseKey: baseKey(self) }),
        auth: new FrameAuthSender(
          MEMBERS.filter((m) => m !== self).map((m) => ({ peerIndex: m, key: authKey(self, m) })),
        ),
      };
      this.#keys.set(i, s);
    }
    return s;
  }

  /** A fresh PeerConnection offering K video + K audio tracks to the receiver, like the SFU does. */
  async connect(k: number, receiver: MediaSupervisor): Promise<void> {
    await this.close();
    await offerToWorker(this.#peer(k, false).pc, receiver);
    this.video.forceKeyUnit('enc');
  }

  /**
   * Direct mode: K plain video tracks offered straight to a page (`answer` returns its SDP), no
   * worker in between — checks the page and its measurements, and prices Chromium alone.
   */
  async connectPage(k: number, answer: (offer: string) => Promise<string>): Promise<void> {
    await this.close();
    this.#plain = true;
    await offerToPage(this.#peer(k, true).pc, answer);
    this.video.forceKeyUnit('enc');
  }

  #peer(k: number, videoOnly: boolean) {
    const peer = offeringPeer(this.codec, k, {
      videoOnly,
      onKeyframeRequest: () => this.video.forceKeyUnit('enc'),
      extra: (i) => this.#keysFor(i),
    });
    this.#pc = peer.pc;
    this.#streams = peer.streams;
    return peer;
  }

  async close(): Promise<void> {
    this.#plain = false;
    const pc = this.#pc;
    this.#pc = undefined;
    if (pc) await pc.close();
  }

  stop(): void {
    this.video.stop();
    this.audio.stop();
  }
}
