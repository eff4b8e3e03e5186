// The media worker's engine: the pipelines, frame protection and transport of one room, driven by
// IPC commands (worker.ts). Send: appsink → SFrame → RTP → werift. Receive (receive.ts): RTP → frame
// assembly → SFrame → gallery tile decoder (wall=false) or the kiosk page's wall connection (wall/),
// Opus → mixer voice. A camera or microphone pipeline error shows the slate (video) and restarts that
// pipeline with backoff while everything else keeps flowing.
import { EventEmitter } from 'node:events';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import { SFrameReceiver, SFrameSender, plausibleCounter } from '../../src/core/sframe/index.js';
import type { Logger } from '../../src/util/log.js';
import { splitAnnexB } from './bitstream.js';
import { loadPipelineSet, missingElements } from './catalog.js';
import { KeyframeLimiter } from './keyframe-limiter.js';
import { LivePipeline, PipelineError } from './gst.js';
import { type Counters, type FromWorker, type RosterLabel, type SettingsPatch, zeroCounters } from './ipc.js';
import { MediaKeyState, type WireKeys } from './key-state.js';
import { ReceivePath } from './receive.js';
import { packetizeH264, packetizeVp8 } from './rtp-payload.js';
import {
  DEFAULT_SETTINGS,
  type LaunchStrings,
  type MediaSettings,
  TemplateError,
  buildLaunchStrings,
} from './templates.js';
import { sealAuthenticated, sealH264Authenticated } from './sender-auth.js';
import { MediaTransport } from './transport.js';
import { WallHub } from './wall/hub.js';
import { dbov } from './wall/speaker.js';

type DeviceStatus = 'ok' | 'missing' | 'restarting';
type EngineSettings = MediaSettings & {
  latencyProbe?: boolean;
  plaintextForBenchmark?: boolean;
  wall?: boolean;
};

export interface EngineEvents {
  message: [FromWorker];
}

const RESTART_BACKOFF_MS = [500, 1000, 2000, 5000, 10000];
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
  readonly #names = new Map<number, string>();
  /**
   * Whose screen may be on the wall: a current member whose certificate verified on the device and
   * whom the relay's roster names as the sharer (the daemon's roster message says both).
   */
  readonly #contentSenders = new Set<number>();
  #lastDisplay: Buffer | undefined;
  #speakerRing = Buffer.alloc(0);
  readonly counters: Counters = zeroCounters();
  #cryptoNs = 0n;
  /** The kiosk page's wall connections (decrypted, still encoded video over loopback). */
  readonly wall: WallHub;
  readonly #receive: ReceivePath;

  constructor(
    private readonly log: Logger,
    /** ICE on 127.0.0.1 only (tests, benchmarks). */
    private readonly loopbackOnly = false,
  ) {
    super();
    this.wall = new WallHub({
      codec: () => this.settings.codec,
      requestRemoteKeyframe: (sender, content) => this.#receive.requestSenderKeyframe(sender, content),
      requestOwnKeyframe: () => this.requestKeyframe(),
      send: (msg) => this.#send(msg),
      log,
    });
    this.#receive = new ReceivePath({
      settings: () => this.settings,
      keys: this.#keys,
      counters: this.counters,
      wall: this.wall,
      gallery: () => this.#pipes.gallery,
      speakerMix: () => this.#pipes.speakerMix,
      sendPli: (ssrc) => this.#transport?.requestKeyframe(ssrc),
      addCryptoNs: (ns) => {
        this.#cryptoNs += ns;
      },
      slotAssigned: () => this.#labelTiles(),
      contentAllowed: (sender) => this.#contentSenders.has(sender),
      log,
    });
  }

  /** The slot of each far sender (gallery tile and mixer voice). */
  get #slotBySender(): Map<number, number> {
    return this.#receive.slotBySender;
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
    const before = this.#launch;
    const same =
      before &&
      !this.settings.wall === !settings.wall &&
      Object.keys(before).length === Object.keys(launch).length &&
      Object.entries(launch).every(([k, v]) => before[k as keyof LaunchStrings] === v);
    // Wall connections negotiated one codec: with another one the pages must open new connections.
    if (settings.codec !== this.settings.codec) this.wall.closeAll();
    this.settings = settings;
    if (same && this.#pipes.speakerMix?.playing) return true;
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
        // wall=true: the kiosk page decodes and lays out; no GStreamer gallery (nor its display),
        // nor the black keyframe that clears a gallery tile.
        if (text === undefined || (settings.wall && (name === 'gallery' || name === 'blankTile'))) continue;
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
    this.#receive.releaseSlot(sender);
    this.wall.senderGone(sender);
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
    for (const name of ['gallery', 'speakerMix'] as const)
      p[name]?.on('error', (e) => this.#pipelineFailed(e));
    const gallery = p.gallery;
    if (gallery?.has('display')) {
      gallery.onSample('display', (buf) => {
        this.counters.displayFrames++;
        this.#lastDisplay = buf;
      });
    }
    if (gallery && this.settings.latencyProbe) {
      for (let slot = 0; slot < this.settings.tiles; slot++) {
        gallery.onSample(`decoded${slot}`, () => this.#receive.onDecoded(slot));
      }
    }
    const speaker = p.speakerMix as LivePipeline;
    // Level taps per voice (alevel{slot}: mono S16LE 8 kHz) → the wall's active speaker.
    for (let slot = 0; slot < this.settings.tiles; slot++) {
      if (!speaker.has(`alevel${slot}`)) continue;
      speaker.onSample(`alevel${slot}`, (buf) => {
        const sender = [...this.#slotBySender].find(([, s]) => s === slot)?.[0];
        if (sender !== undefined) this.wall.level(sender, dbov(buf), Date.now());
      });
    }
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
    this.#contentSenders.clear();
    this.wall.contentGone();
  }

  setRoster(participants: RosterLabel[]): void {
    const before = new Set(this.#names.keys());
    this.#names.clear();
    this.#contentSenders.clear();
    for (const p of participants) {
      this.#names.set(p.senderIndex, p.name);
      if (p.verified === true && p.sharing === true) this.#contentSenders.add(p.senderIndex);
    }
    // A sharer who stopped, left the roster (or no longer verifies): its screen leaves the wall now.
    this.wall.contentAllowed((s) => this.#contentSenders.has(s));
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
    const ts = videoClock(Date.now());
    // Self-view: the own encoder's output before SFrame, to the kiosk page only (loopback).
    this.wall.selfFrame(frame, ts);
    const transport = this.#transport;
    if (transport?.connectionState !== 'connected') return;
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
    transport.on('rtp', (rtp) => this.#receive.onRtp(rtp));
    // Nobody shares any more (the SFU took the content m-line away): the content line goes idle.
    transport.on('contentLines', (n) => {
      if (n === 0) this.wall.contentGone();
    });
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
    for (const [sender, slot] of [...this.#slotBySender]) this.#retireSlot(sender, slot);
    this.#receive.reset();
    this.wall.reset();
    if (t) await t.close();
  }

  // ---------------------------------------------------------------- reporting

  #status(): void {
    this.#send({
      type: 'status',
      camera: this.#camera,
      microphone: this.#microphone,
      pipelines: this.#pipes.speakerMix ? 'playing' : 'stopped',
      transport: this.#transport?.connectionState ?? 'closed',
    });
  }

  stats(): FromWorker {
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    const latencyMs = this.#receive.takeLatency();
    return {
      type: 'stats',
      counters: {
        ...this.counters,
        cryptoMicros: Number(this.#cryptoNs / 1000n),
        wallFramesForwarded: this.wall.framesForwarded,
      },
      remotes: this.#receive.remotes(),
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

  // ---------------------------------------------------------------- wall (kiosk page)

  /** A kiosk page asks for the wall: offer, then report the slots. */
  async openWall(sessionId: string): Promise<void> {
    try {
      const sdp = await this.wall.open(sessionId);
      this.#send({ type: 'wall-offer', sessionId, sdp });
      this.#send(this.wall.slotsMessage());
    } catch (err) {
      this.#send({ type: 'wall-error', sessionId, message: (err as Error).message });
    }
  }

  async answerWall(sessionId: string, sdp: string): Promise<void> {
    try {
      await this.wall.answer(sessionId, sdp);
    } catch (err) {
      this.#send({ type: 'wall-error', sessionId, message: (err as Error).message });
    }
  }

  closeWall(sessionId: string): void {
    this.wall.close(sessionId);
  }

  async shutdown(): Promise<void> {
    this.wall.closeAll();
    this.stopPipelines();
    await this.disconnect();
  }
}

export { PipelineError, TemplateError };
