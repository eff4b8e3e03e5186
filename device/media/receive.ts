// The media worker's receive path: RTP → frame assembly → sender authentication + SFrame open →
// gallery tile decoder (wall=false) and/or the wall (decrypted, still encoded frames for the kiosk
// page), Opus → mixer voice. A frame that fails to open is dropped and a keyframe requested; after a
// loss or a failure nothing but a keyframe is used. Split out of engine.ts, which owns the pipelines.
// A shared screen (content m-line, transport.ts) takes the same checks — SFrame under the sharer's
// KID, sender authentication — and then one more: its sender must be a current member this device
// verified and the one the relay's roster names as sharing (host.contentAllowed); it goes to the
// wall's content line only (never a gallery tile).
import { parseKid } from '../../src/core/e2ee/sender-keys.js';
import type { Logger } from '../../src/util/log.js';
import { isH264Keyframe, isVp8Keyframe, splitAnnexB } from './bitstream.js';
import { FrameAssembler } from './frame-assembler.js';
import type { LivePipeline } from './gst.js';
import type { Counters } from './ipc.js';
import type { MediaKeyState } from './key-state.js';
import { depacketizeH264, depacketizeVp8 } from './rtp-payload.js';
import { failureCause, openAuthenticated, openH264Authenticated } from './sender-auth.js';
import type { MediaSettings } from './templates.js';
import type { RemoteRtp } from './transport.js';
import type { WallHub } from './wall/hub.js';

const PLI_INTERVAL_MS = 500;

export type ReceiveSettings = MediaSettings & { plaintextForBenchmark?: boolean };

/** What the receive path needs from the engine. */
export interface ReceiveHost {
  settings(): ReceiveSettings;
  readonly keys: MediaKeyState;
  readonly counters: Counters;
  readonly wall: WallHub;
  gallery(): LivePipeline | undefined;
  speakerMix(): LivePipeline | undefined;
  /** PLI on the far connection for `ssrc`. */
  sendPli(ssrc: number): void;
  addCryptoNs(ns: bigint): void;
  /** A sender got a gallery/mixer slot (labels may change). */
  slotAssigned(): void;
  /** May this sender's screen be shown: a verified current member, named as the sharer? */
  contentAllowed(senderIndex: number): boolean;
  readonly log: Logger;
}

interface RemoteStream {
  assembler: FrameAssembler;
  /** Drop delta frames until a keyframe (after loss or a decrypt failure). */
  awaitingKeyframe: boolean;
  lastPli: number;
  /** Screen content (the SFU's content m-line), not a camera. */
  content: boolean;
}

export interface RemoteCounts {
  videoFrames: number;
  audioFrames: number;
  decodedFrames: number;
}

export class ReceivePath {
  readonly #streams = new Map<number, RemoteStream>();
  /** Gallery tile and mixer voice of each far sender. */
  readonly slotBySender = new Map<number, number>();
  readonly #ssrcBySender = new Map<number, number>();
  /** The SSRC of each sender's screen content (for keyframe requests of the content line). */
  readonly #contentSsrcBySender = new Map<number, number>();
  readonly #counts = new Map<number, RemoteCounts>();
  /** latencyProbe: RTP timestamps of frames pushed into each tile's decoder, oldest first. */
  readonly #pushedStamps = new Map<number, number[]>();
  #latency: number[] = [];

  constructor(private readonly host: ReceiveHost) {}

  /** A new PeerConnection: streams and counts start afresh (slots are released by the engine). */
  reset(): void {
    this.#streams.clear();
    this.#ssrcBySender.clear();
    this.#contentSsrcBySender.clear();
    this.#counts.clear();
    this.#pushedStamps.clear();
  }

  /** Frees `sender`'s slot; returns it. */
  releaseSlot(sender: number): number | undefined {
    const slot = this.slotBySender.get(sender);
    if (slot === undefined) return undefined;
    this.slotBySender.delete(sender);
    this.#pushedStamps.delete(slot);
    return slot;
  }

  takeLatency(): number[] {
    const out = this.#latency;
    this.#latency = [];
    return out;
  }

  remotes(): {
    senderIndex: number;
    slot: number;
    videoFrames: number;
    audioFrames: number;
    decodedFrames: number;
  }[] {
    return [...this.#counts].map(([senderIndex, c]) => ({
      senderIndex,
      slot: this.slotBySender.get(senderIndex) ?? -1,
      ...c,
    }));
  }

  /** Asks a far sender (by sender index) for a keyframe: the wall's m-line switched to it. */
  requestSenderKeyframe(senderIndex: number, content = false): void {
    const ssrc = (content ? this.#contentSsrcBySender : this.#ssrcBySender).get(senderIndex);
    const stream = ssrc !== undefined ? this.#streams.get(ssrc) : undefined;
    if (ssrc !== undefined && stream) this.#pli(ssrc, stream);
  }

  slotFor(senderIndex: number): number | undefined {
    let slot = this.slotBySender.get(senderIndex);
    if (slot !== undefined) return slot;
    const used = new Set(this.slotBySender.values());
    for (let s = 0; s < this.host.settings().tiles; s++) {
      if (!used.has(s)) {
        slot = s;
        break;
      }
    }
    if (slot === undefined) return undefined;
    this.slotBySender.set(senderIndex, slot);
    this.host.slotAssigned();
    return slot;
  }

  #count(senderIndex: number, kind: 'video' | 'audio'): void {
    let c = this.#counts.get(senderIndex);
    if (!c) {
      c = { videoFrames: 0, audioFrames: 0, decodedFrames: 0 };
      this.#counts.set(senderIndex, c);
    }
    if (kind === 'video') c.videoFrames++;
    else c.audioFrames++;
  }

  onRtp({ kind, ssrc, packet, content }: RemoteRtp): void {
    if (kind === 'audio') {
      this.#onAudioPacket(packet.payload);
      return;
    }
    let stream = this.#streams.get(ssrc);
    if (!stream) {
      stream = { assembler: new FrameAssembler(), awaitingKeyframe: true, lastPli: 0, content: false };
      this.#streams.set(ssrc, stream);
    }
    // An SSRC that moved between camera and content (renegotiation) restarts at a keyframe.
    if (stream.content !== (content === true)) {
      stream.content = content === true;
      stream.awaitingKeyframe = true;
    }
    const frames = stream.assembler.push({
      sequenceNumber: packet.header.sequenceNumber,
      timestamp: packet.header.timestamp,
      marker: packet.header.marker,
      payload: packet.payload,
    });
    for (const f of frames) {
      if (f.afterLoss) {
        this.host.counters.framesLost++;
        stream.awaitingKeyframe = true;
      }
      this.#onVideoFrame(ssrc, stream, f.payloads, f.timestamp);
    }
  }

  #timed<T>(fn: () => T): T {
    const t0 = process.hrtime.bigint();
    try {
      return fn();
    } finally {
      this.host.addCryptoNs(process.hrtime.bigint() - t0);
    }
  }

  #onVideoFrame(ssrc: number, stream: RemoteStream, payloads: Uint8Array[], timestamp: number): void {
    const settings = this.host.settings();
    const keys = this.host.keys;
    let kid: bigint;
    let frame: Buffer;
    let keyframe: boolean;
    try {
      if (settings.codec === 'h264') {
        const units = depacketizeH264(payloads);
        if (!units) throw new Error('malformed H.264 payload');
        if (settings.plaintextForBenchmark) {
          kid = 0n;
          frame = Buffer.concat(units.flatMap((u) => [Buffer.from([0, 0, 0, 1]), u]));
        } else {
          ({ kid, frame } = this.#timed(() => openH264Authenticated(keys.receiver, keys.verifier, units)));
        }
        keyframe = isH264Keyframe(splitAnnexB(frame));
      } else {
        const sealed = depacketizeVp8(payloads);
        if (!sealed) throw new Error('malformed VP8 payload');
        if (settings.plaintextForBenchmark) {
          kid = 0n;
          frame = sealed;
        } else {
          const opened = this.#timed(() => openAuthenticated('vp8', keys.receiver, keys.verifier, sealed));
          kid = opened.kid;
          frame = Buffer.from(opened.frame);
        }
        keyframe = isVp8Keyframe(frame);
      }
    } catch (err) {
      // Never feed a decoder (or the page) what did not authenticate; ask the sender for a fresh start.
      this.#countFailure(err);
      stream.awaitingKeyframe = true;
      this.#pli(ssrc, stream);
      this.host.log.debug({ ssrc, err: (err as Error).message }, 'video frame dropped');
      return;
    }
    const senderIndex = settings.plaintextForBenchmark ? ssrc & 0xffff : parseKid(kid).senderIndex;
    if (stream.content) {
      this.#onContentFrame(ssrc, stream, senderIndex, frame, timestamp, keyframe);
      return;
    }
    if (stream.awaitingKeyframe && !keyframe) {
      this.#pli(ssrc, stream);
      return;
    }
    const restarting = stream.awaitingKeyframe;
    stream.awaitingKeyframe = false;
    this.#ssrcBySender.set(senderIndex, ssrc);
    const slot = this.slotFor(senderIndex);
    this.host.wall.remoteFrame(senderIndex, frame, timestamp, keyframe);
    if (slot === undefined) return;
    this.host.counters.videoFramesDecrypted++;
    this.#count(senderIndex, 'video');
    const gallery = this.host.gallery();
    if (!gallery) return;
    if (settings.latencyProbe) {
      // The decoder restarts at this keyframe: anything it never output before is not coming.
      const fifo = (restarting ? undefined : this.#pushedStamps.get(slot)) ?? [];
      fifo.push(timestamp);
      if (fifo.length > 120) fifo.shift();
      this.#pushedStamps.set(slot, fifo);
    }
    gallery.push(`vin${slot}`, frame);
  }

  /**
   * An authenticated screen-content frame of `senderIndex`: to the wall's content line if that sender
   * is a current verified member sharing now, else dropped (counted). Never a gallery tile (docs/media.md).
   */
  #onContentFrame(
    ssrc: number,
    stream: RemoteStream,
    senderIndex: number,
    frame: Buffer,
    timestamp: number,
    keyframe: boolean,
  ): void {
    const counters = this.host.counters;
    if (!this.host.contentAllowed(senderIndex)) {
      counters.contentFramesDropped = (counters.contentFramesDropped ?? 0) + 1;
      stream.awaitingKeyframe = true;
      return;
    }
    if (stream.awaitingKeyframe && !keyframe) {
      this.#pli(ssrc, stream);
      return;
    }
    stream.awaitingKeyframe = false;
    this.#contentSsrcBySender.set(senderIndex, ssrc);
    counters.contentFramesDecrypted = (counters.contentFramesDecrypted ?? 0) + 1;
    this.host.wall.contentFrame(senderIndex, frame, timestamp, keyframe);
  }

  /**
   * A frame left tile `slot`'s decoder (latencyProbe). Decoders emit one picture per access unit in
   * order, so it is the oldest one pushed; its RTP timestamp is the sender's wall clock at capture
   * (90 kHz, both ends on one machine in the benchmark).
   */
  onDecoded(slot: number): void {
    const stamp = this.#pushedStamps.get(slot)?.shift();
    const sender = [...this.slotBySender].find(([, s]) => s === slot)?.[0];
    if (sender !== undefined) {
      const c = this.#counts.get(sender);
      if (c) c.decodedFrames++;
    }
    if (stamp === undefined) return;
    const behind = ((((Date.now() * 90) % 2 ** 32) - stamp + 2 ** 32) % 2 ** 32) / 90;
    this.#latency.push(Math.round(behind * 10) / 10);
  }

  /** Every dropped frame counts as a decrypt failure; forged and far-ahead ones also by cause. */
  #countFailure(err: unknown): void {
    const counters = this.host.counters;
    counters.decryptFailures++;
    const cause = failureCause(err);
    if (cause === 'auth') counters.authFailures++;
    else if (cause === 'implausible') counters.implausibleCounters++;
  }

  #pli(ssrc: number, stream: RemoteStream): void {
    const now = Date.now();
    if (now - stream.lastPli < PLI_INTERVAL_MS) return;
    stream.lastPli = now;
    this.host.counters.keyframesRequested++;
    this.host.sendPli(ssrc);
  }

  #onAudioPacket(payload: Buffer): void {
    const settings = this.host.settings();
    const keys = this.host.keys;
    let kid = 0n;
    let frame: Buffer = payload;
    if (!settings.plaintextForBenchmark) {
      try {
        const opened = this.#timed(() => openAuthenticated('opus', keys.receiver, keys.verifier, payload));
        kid = opened.kid;
        frame = Buffer.from(opened.frame);
      } catch (err) {
        this.#countFailure(err);
        return;
      }
    }
    if (settings.plaintextForBenchmark) {
      // Baseline runs have no KID to tell senders apart: one voice, no gallery slot taken.
      this.host.speakerMix()?.push('ain0', frame);
      return;
    }
    const senderIndex = parseKid(kid).senderIndex;
    const slot = this.slotFor(senderIndex);
    if (slot === undefined) return;
    this.host.counters.audioFramesDecrypted++;
    this.#count(senderIndex, 'audio');
    this.host.speakerMix()?.push(`ain${slot}`, frame);
  }
}
