// The media worker's engine: the pipelines, frame protection and transport of one room, driven by
// IPC commands (worker.ts). Send: appsink → SFrame → RTP → werift. Receive: RTP → frame assembly →
// SFrame → appsrc → decoder → gallery tile / mixer voice. A frame that fails to decrypt is dropped
// and a keyframe is requested; a camera or microphone pipeline error shows the slate (video) and
// restarts that pipeline with backoff while everything else keeps flowing.
import { EventEmitter } from 'node:events';
import { parseKid } from '../../src/core/e2ee/sender-keys.js';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import { SFrameReceiver, SFrameSender, plausibleCounter } from '../../src/core/sframe/index.js';
import type { Logger } from '../../src/util/log.js';
import { isH264Keyframe, isVp8Keyframe, splitAnnexB } from './bitstream.js';
import { loadPipelineSet, missingElements } from './catalog.js';
import { FrameAssembler } from './frame-assembler.js';
import { KeyframeLimiter } from './keyframe-limiter.js';
import { LivePipeline, PipelineError } from './gst.js';
import type { Counters, FromWorker, SettingsPatch } from './ipc.js';
import { MediaKeyState, type WireKeys } from './key-state.js';
import { depacketizeH264, depacketizeVp8, packetizeH264, packetizeVp8 } from './rtp-payload.js';
import {
  DEFAULT_SETTINGS,
  type LaunchStrings,
  type MediaSettings,
  TemplateError,
  buildLaunchStrings,
} from './templates.js';
import {
  failureCause,
  openAuthenticated,
  openH264Authenticated,
  sealAuthenticated,
  sealH264Authenticated,
} from './sender-auth.js';
import { MediaTransport, type RemoteRtp } from './transport.js';

type DeviceStatus = 'ok' | 'missing' | 'restarting';
type EngineSettings = MediaSettings & { latencyProbe?: boolean; plaintextForBenchmark?: boolean };

export interface EngineEvents {
  message: [FromWorker];
}

interface RemoteStream {
  assembler: FrameAssembler;
  /** Drop delta frames until a keyframe (after loss or a decrypt failure). */
  awaitingKeyframe: boolean;
  lastPli: number;
}

const RESTART_BACKOFF_MS = [500, 1000, 2000, 5000, 10000];
const PLI_INTERVAL_MS = 500;
const SPEAKER_KEEP_BYTES = 48000 * 2; // one second of mono S16LE

/** RTP video clock from the wall clock, so timestamps double as capture stamps on one machine. */
const videoClock = (ms: number) => Math.round(ms * 90) % 2 ** 32;

export class MediaEngine extends EventEmitter<EngineEvents> {
  settings: EngineSettings = { ...DEFAULT_SETTINGS };
  #pipes: Partial<Record<keyof LaunchStrings, LivePipeline>> = {};
  readonly #cache = new Map<string, LivePipeline>();
  #launch: LaunchStrings | undefined;
  #transport: MediaTransport | undefined;
  /** SFrame sender and receiver, frame-authentication keys, and whether sending is allowed. */
  readonly #keys = new MediaKeyState(
    new SFrameReceiver({ replayWindow: 256, plausibleCounter }),
    (kid, baseKey, initialCounter) => new SFrameSender({ kid, baseKey, initialCounter }),
  );
  /** Keyframes asked for by receivers (PLI/FIR, SFU, daemon): at most one per 500 ms, coalesced. */
  readonly #keyframeLimit = new KeyframeLimiter();
  #micMuted = false;
  /** Speaker level 0..1; kept out of the launch string so a change never rebuilds a pipeline. */
  #volume = 0.6;
  #cameraOff = false;
  #camera: DeviceStatus = 'ok';
  #microphone: DeviceStatus = 'ok';
  #cameraRestarts = 0;
  #micRestarts = 0;
  #timers = new Set<NodeJS.Timeout>();
  #pictureId = 0;
  #faultCaps: string | undefined;
  readonly #blankFrames = new Map<string, Buffer>();
  #audioTs = Math.floor(Math.random() * 2 ** 31);
  readonly #streams = new Map<number, RemoteStream>();
  readonly #slotBySender = new Map<number, number>();
  readonly #names = new Map<number, string>();
  readonly #remoteCounts = new Map<
    number,
    { videoFrames: number; audioFrames: number; decodedFrames: number }
  >();
  /** latencyProbe: RTP timestamps of frames pushed into each tile's decoder, oldest first. */
  readonly #pushedStamps = new Map<number, number[]>();
  #lastDisplay: Buffer | undefined;
  #speakerRing = Buffer.alloc(0);
  #latency: number[] = [];
  readonly counters: Counters = {
    videoFramesSent: 0,
    audioFramesSent: 0,
    videoFramesDecrypted: 0,
    audioFramesDecrypted: 0,
    decryptFailures: 0,
    authFailures: 0,
    implausibleCounters: 0,
    framesLost: 0,
    keyframesRequested: 0,
    keyframesForced: 0,
    displayFrames: 0,
    cryptoMicros: 0,
  };
  #cryptoNs = 0n;

  constructor(
    private readonly log: Logger,
    /** ICE on 127.0.0.1 only (tests, benchmarks). */
    private readonly loopbackOnly = false,
  ) {
    super();
  }

  #send(msg: FromWorker): void {
    this.emit('message', msg);
  }

  #after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  // ---------------------------------------------------------------- pipelines

  /** Builds and plays every pipeline; reports a bad template or missing element by name. */
  async start(patch: SettingsPatch): Promise<boolean> {
    const settings = { ...this.settings, ...patch };
    let launch: LaunchStrings;
    try {
      launch = buildLaunchStrings(loadPipelineSet(settings.profile), settings);
    } catch (err) {
      this.#send({ type: 'error', code: 'template', message: (err as Error).message });
      return false;
    }
    // Same pipelines already playing (e.g. the supervisor re-sending settings): nothing to rebuild.
    const same =
      this.#launch &&
      Object.entries(launch).every(([k, v]) => this.#launch?.[k as keyof LaunchStrings] === v);
    this.settings = settings;
    if (same && this.#pipes.gallery?.playing) return true;
    this.stopPipelines();
    this.#launch = launch;
    const missing = await missingElements(launch);
    if (missing.length > 0) {
      for (const m of missing) {
        this.#send({
          type: 'error',
          code: 'missing-element',
          pipeline: m.pipeline,
          element: m.element,
          message: `GStreamer element "${m.element}" (pipeline ${m.pipeline}, profile ${this.settings.profile}) is not installed`,
        });
      }
      return false;
    }
    try {
      for (const name of Object.keys(launch) as (keyof LaunchStrings)[]) {
        // The binding never frees a pipeline: reuse one whose launch string is unchanged.
        const text = launch[name];
        let pipe = this.#cache.get(text);
        if (!pipe) {
          pipe = new LivePipeline(name, text);
          this.#cache.set(text, pipe);
        }
        if (name === 'gallery' || name === 'speakerMix') pipe.latencySeconds = 0.1;
        this.#pipes[name] = pipe;
      }
    } catch (err) {
      const e = err as PipelineError;
      this.#send({
        type: 'error',
        code: 'pipeline',
        pipeline: e.pipeline,
        element: e.element,
        message: e.message,
      });
      this.stopPipelines();
      return false;
    }
    this.#wirePipelines();
    const p = this.#pipes;
    p.gallery?.start();
    p.speakerMix?.start();
    p.audioSend?.start();
    if (this.#cameraOff) this.#showSlate('Camera off');
    else p.videoSend?.start();
    this.#labelTiles();
    this.#applyVolume();
    this.#encodeBlank();
    this.#status();
    return true;
  }

  /** Runs the one-frame blankTile pipeline once per codec and keeps its black keyframe. */
  #encodeBlank(): void {
    const blank = this.#pipes.blankTile;
    if (!blank || this.#blankFrames.has(this.settings.codec)) return;
    const codec = this.settings.codec;
    blank.onSample('blankout', (buf) => {
      this.#blankFrames.set(codec, buf);
      this.#after(0, () => blank.stop());
    });
    blank.start();
    this.#after(3000, () => blank.stop());
  }

  /** A participant left this tile: show black, drop the label, free the slot for someone else. */
  #retireSlot(sender: number, slot: number): void {
    this.#slotBySender.delete(sender);
    this.#pushedStamps.delete(slot);
    const gallery = this.#pipes.gallery;
    if (!gallery) return;
    gallery.set(`label${slot}`, 'text', '');
    const blank = this.#blankFrames.get(this.settings.codec);
    if (blank) gallery.push(`vin${slot}`, blank);
  }

  #applyVolume(): void {
    const mix = this.#pipes.speakerMix;
    if (mix?.has('speakervolume')) mix.set('speakervolume', 'volume', this.#volume);
  }

  #wirePipelines(): void {
    const p = this.#pipes;
    const video = p.videoSend as LivePipeline;
    const slate = p.slate as LivePipeline;
    const audio = p.audioSend as LivePipeline;
    video.onSample('videoout', (buf) => {
      if (this.#camera !== 'ok') this.#cameraRecovered();
      this.#sendVideoFrame(buf);
    });
    slate.onSample('slateout', (buf) => this.#sendVideoFrame(buf));
    audio.onSample('audioout', (buf) => {
      if (this.#microphone !== 'ok') {
        this.#microphone = 'ok';
        this.#micRestarts = 0;
        this.#status();
      }
      this.#sendAudioFrame(buf);
    });
    p.blankTile?.on('error', (e) =>
      this.log.warn({ err: e.message, element: e.element }, 'blank tile encoder failed'),
    );
    video.on('error', (e) => this.#cameraFailed(e));
    audio.on('error', (e) => this.#micFailed(e));
    slate.on('error', (e) => this.#pipelineFailed(e));
    for (const name of ['gallery', 'speakerMix'] as const) {
      const pipe = p[name] as LivePipeline;
      pipe.on('error', (e) => this.#pipelineFailed(e));
    }
    const gallery = p.gallery as LivePipeline;
    if (gallery.has('display')) {
      gallery.onSample('display', (buf) => {
        this.counters.displayFrames++;
        this.#lastDisplay = buf;
      });
    }
    if (this.settings.latencyProbe) {
      for (let slot = 0; slot < this.settings.tiles; slot++) {
        gallery.onSample(`decoded${slot}`, () => this.#onDecoded(slot));
      }
    }
    const speaker = p.speakerMix as LivePipeline;
    if (speaker.has('speaker')) {
      speaker.onSample('speaker', (buf) => {
        const joined = Buffer.concat([this.#speakerRing, buf]);
        this.#speakerRing = joined.subarray(Math.max(0, joined.length - SPEAKER_KEEP_BYTES));
      });
    }
  }

  stopPipelines(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const pipe of Object.values(this.#pipes)) pipe?.stop();
    for (const pipe of Object.values(this.#pipes)) pipe?.removeAllListeners();
    this.#pipes = {};
    this.#status();
  }

  #cameraFailed(err: PipelineError): void {
    this.log.warn({ err: err.message, element: err.element }, 'camera pipeline failed');
    this.#send({
      type: 'error',
      code: 'pipeline',
      pipeline: 'videoSend',
      element: err.element,
      message: err.message,
    });
    this.#pipes.videoSend?.stop();
    this.#camera = this.#cameraRestarts >= 2 ? 'missing' : 'restarting';
    this.#status();
    this.#showSlate('Camera unavailable');
    const delay = RESTART_BACKOFF_MS[Math.min(this.#cameraRestarts, RESTART_BACKOFF_MS.length - 1)] as number;
    this.#cameraRestarts++;
    this.#after(delay, () => {
      const video = this.#pipes.videoSend;
      if (!video || this.#cameraOff) return;
      // A test's injected fault must not survive the restart.
      if (this.#faultCaps !== undefined) video.set('camerafault', 'caps', this.#faultCaps);
      this.#faultCaps = undefined;
      video.start();
    });
  }

  #cameraRecovered(): void {
    this.#camera = 'ok';
    this.#cameraRestarts = 0;
    if (!this.#cameraOff) this.#pipes.slate?.stop();
    this.#forceKeyframe();
    this.#status();
  }

  #micFailed(err: PipelineError): void {
    this.log.warn({ err: err.message, element: err.element }, 'microphone pipeline failed');
    this.#send({
      type: 'error',
      code: 'pipeline',
      pipeline: 'audioSend',
      element: err.element,
      message: err.message,
    });
    this.#pipes.audioSend?.stop();
    this.#microphone = this.#micRestarts >= 2 ? 'missing' : 'restarting';
    this.#status();
    const delay = RESTART_BACKOFF_MS[Math.min(this.#micRestarts, RESTART_BACKOFF_MS.length - 1)] as number;
    this.#micRestarts++;
    this.#after(delay, () => this.#pipes.audioSend?.start());
  }

  #pipelineFailed(err: PipelineError): void {
    this.log.warn({ err: err.message, element: err.element }, 'pipeline failed');
    this.#send({
      type: 'error',
      code: 'pipeline',
      pipeline: err.pipeline,
      element: err.element,
      message: err.message,
    });
    const pipe = this.#pipes[err.pipeline as keyof LaunchStrings];
    pipe?.stop();
    this.#after(1000, () => pipe?.start());
  }

  #showSlate(text: string): void {
    const slate = this.#pipes.slate;
    if (!slate) return;
    slate.set('slatetext', 'text', text);
    slate.start();
    this.#forceKeyframe();
  }

  // ---------------------------------------------------------------- controls and keys

  setControls(c: { micMuted?: boolean; cameraOff?: boolean; volume?: number }): void {
    if (c.micMuted !== undefined) this.#micMuted = c.micMuted;
    if (c.volume !== undefined) {
      this.#volume = c.volume / 100;
      this.#applyVolume();
    }
    if (c.cameraOff !== undefined && c.cameraOff !== this.#cameraOff) {
      this.#cameraOff = c.cameraOff;
      const video = this.#pipes.videoSend;
      if (c.cameraOff) {
        video?.stop(); // releases the camera
        this.#showSlate('Camera off');
      } else if (video) {
        video.start();
        if (this.#camera === 'ok') this.#after(0, () => this.#pipes.slate?.stop());
      }
    }
    this.#status();
  }

  /** New keys from the daemon: rebuilds what changed (key bytes, not only KIDs); see key-state.ts. */
  setKeys(k: WireKeys): void {
    if (this.#keys.set(k).newSender) this.#forceKeyframe(); // receivers switching key start from a keyframe
  }

  /** The meeting ended: no key of it survives in this process. */
  clearKeys(): void {
    this.#keys.clear();
  }

  setRoster(participants: { senderIndex: number; name: string }[]): void {
    const before = new Set(this.#names.keys());
    this.#names.clear();
    for (const p of participants) this.#names.set(p.senderIndex, p.name);
    // Someone who was on the roster and is no longer: clear their tile now rather than freeze it.
    for (const [sender, slot] of [...this.#slotBySender]) {
      if (before.has(sender) && !this.#names.has(sender)) this.#retireSlot(sender, slot);
    }
    this.#labelTiles();
  }

  #labelTiles(): void {
    const gallery = this.#pipes.gallery;
    if (!gallery) return;
    for (const [sender, slot] of this.#slotBySender) {
      gallery.set(`label${slot}`, 'text', this.#names.get(sender) ?? `Participant ${sender}`);
    }
  }

  /** Forces a keyframe now (the engine's own reasons: new epoch, camera back, slate). */
  #forceKeyframe(): void {
    const p = this.#pipes;
    this.#keyframeLimit.forced(performance.now());
    try {
      if (p.videoSend?.playing) p.videoSend.forceKeyUnit('videoout');
      if (p.slate?.playing) p.slate.forceKeyUnit('slateout');
      this.counters.keyframesForced++;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'keyframe request not delivered');
    }
  }

  /** A receiver asked for a keyframe: rate-limited, never dropped (keyframe-limiter.ts). */
  requestKeyframe(): void {
    const decision = this.#keyframeLimit.request(performance.now());
    if (decision.action === 'force') this.#forceKeyframe();
    else if (decision.action === 'schedule')
      this.#after(decision.inMs, () => {
        if (this.#keyframeLimit.fire()) this.#forceKeyframe();
      });
  }

  // ---------------------------------------------------------------- send path

  #sendVideoFrame(frame: Buffer): void {
    const transport = this.#transport;
    if (transport?.connectionState !== 'connected') return;
    const ts = videoClock(Date.now());
    let payloads: Buffer[];
    if (this.settings.plaintextForBenchmark) {
      payloads =
        this.settings.codec === 'h264'
          ? packetizeH264(splitAnnexB(frame))
          : packetizeVp8(frame, this.#nextPictureId());
    } else {
      const keys = this.#keys.sendKeys();
      if (!keys) return; // never send media without a key, nor while told to stop
      const t0 = process.hrtime.bigint();
      const sealed =
        this.settings.codec === 'h264'
          ? sealH264Authenticated(keys.sender, keys.auth, frame)
          : sealAuthenticated('vp8', keys.sender, keys.auth, frame);
      this.#cryptoNs += process.hrtime.bigint() - t0;
      payloads =
        this.settings.codec === 'h264'
          ? packetizeH264(sealed as Uint8Array[])
          : packetizeVp8(sealed as Uint8Array, this.#nextPictureId());
    }
    transport.sendVideo(payloads, ts);
    this.counters.videoFramesSent++;
  }

  #nextPictureId(): number {
    this.#pictureId = (this.#pictureId + 1) & 0x7fff;
    return this.#pictureId;
  }

  #sendAudioFrame(frame: Buffer): void {
    this.#audioTs = (this.#audioTs + 960) % 2 ** 32;
    // A muted microphone sends nothing at all: nothing to decode, nothing to leak.
    if (this.#micMuted) return;
    const transport = this.#transport;
    if (transport?.connectionState !== 'connected') return;
    let payload: Buffer;
    if (this.settings.plaintextForBenchmark) payload = frame;
    else {
      const keys = this.#keys.sendKeys();
      if (!keys) return;
      const t0 = process.hrtime.bigint();
      payload = Buffer.from(sealAuthenticated('opus', keys.sender, keys.auth, frame));
      this.#cryptoNs += process.hrtime.bigint() - t0;
    }
    transport.sendAudio(payload, this.#audioTs);
    this.counters.audioFramesSent++;
  }

  // ---------------------------------------------------------------- transport and receive path

  async connect(role: 'offer' | 'answer'): Promise<void> {
    await this.disconnect();
    const transport = new MediaTransport({ codec: this.settings.codec, loopbackOnly: this.loopbackOnly });
    this.#transport = transport;
    transport.on('signal', (payload) => this.#send({ type: 'signal', payload }));
    transport.on('state', () => this.#status());
    transport.on('keyframeRequest', () => this.requestKeyframe());
    transport.on('rtp', (rtp) => this.#onRtp(rtp));
    if (role === 'offer') await transport.offer();
  }

  async handleSignal(payload: SignalPayload): Promise<void> {
    // Against the SFU nobody needs to call connect(): the relay's first offer creates the connection.
    if (!this.#transport) await this.connect('answer');
    await this.#transport?.handleSignal(payload);
  }

  async disconnect(): Promise<void> {
    const t = this.#transport;
    this.#transport = undefined;
    // A new PeerConnection is a new session: streams, gallery slots and their counts start afresh.
    this.#streams.clear();
    for (const [sender, slot] of [...this.#slotBySender]) this.#retireSlot(sender, slot);
    this.#remoteCounts.clear();
    this.#pushedStamps.clear();
    if (t) await t.close();
  }

  #slotFor(senderIndex: number): number | undefined {
    let slot = this.#slotBySender.get(senderIndex);
    if (slot !== undefined) return slot;
    const used = new Set(this.#slotBySender.values());
    for (let s = 0; s < this.settings.tiles; s++) {
      if (!used.has(s)) {
        slot = s;
        break;
      }
    }
    if (slot === undefined) return undefined;
    this.#slotBySender.set(senderIndex, slot);
    this.#labelTiles();
    return slot;
  }

  #count(senderIndex: number, kind: 'video' | 'audio'): void {
    let c = this.#remoteCounts.get(senderIndex);
    if (!c) {
      c = { videoFrames: 0, audioFrames: 0, decodedFrames: 0 };
      this.#remoteCounts.set(senderIndex, c);
    }
    if (kind === 'video') c.videoFrames++;
    else c.audioFrames++;
  }

  #onRtp({ kind, ssrc, packet }: RemoteRtp): void {
    if (kind === 'audio') {
      this.#onAudioPacket(packet.payload);
      return;
    }
    let stream = this.#streams.get(ssrc);
    if (!stream) {
      stream = { assembler: new FrameAssembler(), awaitingKeyframe: true, lastPli: 0 };
      this.#streams.set(ssrc, stream);
    }
    const frames = stream.assembler.push({
      sequenceNumber: packet.header.sequenceNumber,
      timestamp: packet.header.timestamp,
      marker: packet.header.marker,
      payload: packet.payload,
    });
    for (const f of frames) {
      if (f.afterLoss) {
        this.counters.framesLost++;
        stream.awaitingKeyframe = true;
      }
      this.#onVideoFrame(ssrc, stream, f.payloads, f.timestamp);
    }
  }

  #onVideoFrame(ssrc: number, stream: RemoteStream, payloads: Uint8Array[], timestamp: number): void {
    let kid: bigint;
    let frame: Buffer;
    let keyframe: boolean;
    try {
      if (this.settings.codec === 'h264') {
        const units = depacketizeH264(payloads);
        if (!units) throw new Error('malformed H.264 payload');
        if (this.settings.plaintextForBenchmark) {
          ({ kid, frame } = {
            kid: 0n,
            frame: Buffer.concat(units.flatMap((u) => [Buffer.from([0, 0, 0, 1]), u])),
          });
        } else {
          const t0 = process.hrtime.bigint();
          ({ kid, frame } = openH264Authenticated(this.#keys.receiver, this.#keys.verifier, units));
          this.#cryptoNs += process.hrtime.bigint() - t0;
        }
        keyframe = isH264Keyframe(splitAnnexB(frame));
      } else {
        const sealed = depacketizeVp8(payloads);
        if (!sealed) throw new Error('malformed VP8 payload');
        if (this.settings.plaintextForBenchmark) ({ kid, frame } = { kid: 0n, frame: sealed });
        else {
          const t0 = process.hrtime.bigint();
          const opened = openAuthenticated('vp8', this.#keys.receiver, this.#keys.verifier, sealed);
          this.#cryptoNs += process.hrtime.bigint() - t0;
          kid = opened.kid;
          frame = Buffer.from(opened.frame);
        }
        keyframe = isVp8Keyframe(frame);
      }
    } catch (err) {
      // Never feed a decoder what did not authenticate; ask the sender for a fresh start.
      this.#countFailure(err);
      stream.awaitingKeyframe = true;
      this.#pli(ssrc, stream);
      this.log.debug({ ssrc, err: (err as Error).message }, 'video frame dropped');
      return;
    }
    if (stream.awaitingKeyframe && !keyframe) {
      this.#pli(ssrc, stream);
      return;
    }
    const restarting = stream.awaitingKeyframe;
    stream.awaitingKeyframe = false;
    const senderIndex = this.settings.plaintextForBenchmark ? ssrc & 0xffff : parseKid(kid).senderIndex;
    const slot = this.#slotFor(senderIndex);
    if (slot === undefined) return;
    this.counters.videoFramesDecrypted++;
    this.#count(senderIndex, 'video');
    if (this.settings.latencyProbe) {
      // The decoder restarts at this keyframe: anything it never output before is not coming.
      const fifo = (restarting ? undefined : this.#pushedStamps.get(slot)) ?? [];
      fifo.push(timestamp);
      if (fifo.length > 120) fifo.shift();
      this.#pushedStamps.set(slot, fifo);
    }
    this.#pipes.gallery?.push(`vin${slot}`, frame);
  }

  /**
   * A frame left tile `slot`'s decoder (latencyProbe). Decoders emit one picture per access unit in
   * order, so it is the oldest one pushed; its RTP timestamp is the sender's wall clock at capture
   * (90 kHz, both ends on one machine in the benchmark).
   */
  #onDecoded(slot: number): void {
    const stamp = this.#pushedStamps.get(slot)?.shift();
    const sender = [...this.#slotBySender].find(([, s]) => s === slot)?.[0];
    if (sender !== undefined) {
      const c = this.#remoteCounts.get(sender);
      if (c) c.decodedFrames++;
    }
    if (stamp === undefined) return;
    const behind = ((((Date.now() * 90) % 2 ** 32) - stamp + 2 ** 32) % 2 ** 32) / 90;
    this.#latency.push(Math.round(behind * 10) / 10);
  }

  /** Every dropped frame counts as a decrypt failure; forged and far-ahead ones also by cause. */
  #countFailure(err: unknown): void {
    this.counters.decryptFailures++;
    const cause = failureCause(err);
    if (cause === 'auth') this.counters.authFailures++;
    else if (cause === 'implausible') this.counters.implausibleCounters++;
  }

  #pli(ssrc: number, stream: RemoteStream): void {
    const now = Date.now();
    if (now - stream.lastPli < PLI_INTERVAL_MS) return;
    stream.lastPli = now;
    this.counters.keyframesRequested++;
    this.#transport?.requestKeyframe(ssrc);
  }

  #onAudioPacket(payload: Buffer): void {
    let kid = 0n;
    let frame: Buffer = payload;
    if (!this.settings.plaintextForBenchmark) {
      try {
        const t0 = process.hrtime.bigint();
        const opened = openAuthenticated('opus', this.#keys.receiver, this.#keys.verifier, payload);
        this.#cryptoNs += process.hrtime.bigint() - t0;
        kid = opened.kid;
        frame = Buffer.from(opened.frame);
      } catch (err) {
        this.#countFailure(err);
        return;
      }
    }
    if (this.settings.plaintextForBenchmark) {
      // Baseline runs have no KID to tell senders apart: one voice, no gallery slot taken.
      this.#pipes.speakerMix?.push('ain0', frame);
      return;
    }
    const senderIndex = parseKid(kid).senderIndex;
    const slot = this.#slotFor(senderIndex);
    if (slot === undefined) return;
    this.counters.audioFramesDecrypted++;
    this.#count(senderIndex, 'audio');
    this.#pipes.speakerMix?.push(`ain${slot}`, frame);
  }

  // ---------------------------------------------------------------- reporting

  #status(): void {
    this.#send({
      type: 'status',
      camera: this.#camera,
      microphone: this.#microphone,
      pipelines: this.#pipes.gallery ? 'playing' : 'stopped',
      transport: this.#transport?.connectionState ?? 'closed',
    });
  }

  stats(): FromWorker {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const latencyMs = this.#latency;
    this.#latency = [];
    return {
      type: 'stats',
      counters: { ...this.counters, cryptoMicros: Number(this.#cryptoNs / 1000n) },
      remotes: [...this.#remoteCounts].map(([senderIndex, c]) => ({
        senderIndex,
        slot: this.#slotBySender.get(senderIndex) ?? -1,
        ...c,
      })),
      rssBytes: mem.rss,
      cpuUserMicros: cpu.user,
      cpuSystemMicros: cpu.system,
      latencyMs,
    };
  }

  probe(id: number): FromWorker {
    const s = this.settings;
    const labels = [...this.#slotBySender].map(
      ([sender]) => this.#names.get(sender) ?? `Participant ${sender}`,
    );
    return {
      type: 'probe',
      id,
      ...(this.#lastDisplay
        ? {
            display: {
              width: s.probeWidth,
              height: s.probeHeight,
              rgb: this.#lastDisplay.toString('base64'),
            },
          }
        : {}),
      ...(this.#speakerRing.length > 0 ? { speaker: this.#speakerRing.toString('base64') } : {}),
      labels,
    };
  }

  injectCameraFault(): boolean {
    const video = this.#pipes.videoSend;
    if (!video?.playing || !video.has('camerafault')) return false;
    this.#faultCaps = String(video.element('camerafault').caps);
    // Caps the source cannot produce: a real not-negotiated error from inside the pipeline.
    video.set('camerafault', 'caps', 'audio/x-raw');
    return true;
  }

  async shutdown(): Promise<void> {
    this.stopPipelines();
    await this.disconnect();
  }
}

export { PipelineError, TemplateError };
