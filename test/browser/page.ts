// The browser participant page: Chromium's fake camera and microphone, one RTCPeerConnection that
// answers the media worker's offer, and RTCRtpScriptTransform on every sender and receiver running
// transform-worker.ts (WebCrypto SFrame). Driven by the test through `window.participant`; ICE
// candidates and the answer leave through `window.sealroomSignal` (a Playwright binding).
import type { KeysMessage, WorkerCounters } from './transform-worker.js';

type Signal =
  | { kind: 'description'; type: 'offer' | 'answer'; sdp: string }
  | { kind: 'candidate'; candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null };

export interface PageStats {
  counters: WorkerCounters;
  connectionState: string;
  inboundVideo?: {
    framesDecoded: number;
    keyFramesDecoded: number;
    framesDropped: number;
    pliCount: number;
    freezeCount: number;
    frameWidth?: number;
    frameHeight?: number;
    decoderImplementation?: string;
  };
  outboundVideo?: { framesEncoded: number; keyFramesEncoded: number; frameWidth?: number; bytesSent: number };
  inboundAudio?: { totalSamplesReceived: number; concealedSamples: number; audioLevel?: number };
  /** Signalling messages that failed to apply (a broken negotiation shows here). */
  signallingErrors: string[];
  /** Every ICE candidate pair Chromium formed: which local address sent checks to which remote one. */
  candidatePairs: {
    local: string;
    remote: string;
    state: string;
    requestsSent: number;
    responsesReceived: number;
  }[];
}

export interface PixelSample {
  width: number;
  height: number;
  /** RGB at each requested point (fractions of width and height). */
  colours: [number, number, number][];
  /** Fraction of sampled pixels (a 16×12 grid) that are not near-black. */
  nonBlack: number;
}

declare global {
  interface Window {
    participant: ReturnType<typeof createParticipant>;
    sealroomSignal?: (payload: Signal) => Promise<void>;
  }
}

function createParticipant() {
  let local: MediaStream | undefined;
  let pc: RTCPeerConnection | undefined;
  let statsId = 0;
  const worker = new Worker('/transform-worker.js', { name: 'sframe-transform' });
  const pendingStats = new Map<number, (c: WorkerCounters) => void>();
  let keysAck: (() => void) | undefined;
  let audio: AudioContext | undefined;
  let analyser: AnalyserNode | undefined;
  worker.onmessage = (e: MessageEvent) => {
    const m = e.data as { type: 'stats'; id: number; counters: WorkerCounters } | { type: 'keys-set' };
    if (m.type === 'stats') pendingStats.get(m.id)?.(m.counters);
    else keysAck?.();
  };
  const video = document.querySelector('video') as HTMLVideoElement;
  const canvas = document.querySelector('canvas') as HTMLCanvasElement;
  // Signalling messages are applied strictly in order (a candidate must not overtake the offer).
  let queue: Promise<void> = Promise.resolve();
  const early: RTCIceCandidateInit[] = [];
  const signallingErrors: string[] = [];

  const send = (payload: Signal) => window.sealroomSignal?.(payload);

  function newConnection(): RTCPeerConnection {
    const conn = new RTCPeerConnection({ iceServers: [] });
    pc = conn;
    conn.onicecandidate = (e) => {
      if (e.candidate?.candidate) {
        send({
          kind: 'candidate',
          candidate: e.candidate.candidate,
          sdpMid: e.candidate.sdpMid,
          sdpMLineIndex: e.candidate.sdpMLineIndex,
        });
      }
    };
    return conn;
  }

  async function answer(offerSdp: string): Promise<void> {
    const conn = newConnection();
    await conn.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    // Chromium 156 applies a transform only if it is attached before any further await here: set
    // after replaceTrack() or setLocalDescription() it was silently ignored and frames left in clear.
    const remote = new MediaStream();
    const transceivers = conn.getTransceivers();
    for (const t of transceivers) {
      const kind = t.receiver.track.kind as 'audio' | 'video';
      t.receiver.transform = new RTCRtpScriptTransform(worker, { side: 'receive', kind });
      t.sender.transform = new RTCRtpScriptTransform(worker, { side: 'send', kind });
    }
    for (const t of transceivers) {
      const track = local?.getTracks().find((tr) => tr.kind === t.receiver.track.kind);
      if (track) {
        await t.sender.replaceTrack(track);
        t.direction = 'sendrecv';
      }
      remote.addTrack(t.receiver.track);
    }
    video.srcObject = remote;
    video.play().catch(() => undefined);
    const desc = await conn.createAnswer();
    await conn.setLocalDescription(desc);
    await send({ kind: 'description', type: 'answer', sdp: desc.sdp ?? '' });
  }

  return {
    /** Opens the fake camera (320×240) and microphone. */
    async init(): Promise<{ video: string; audio: string }> {
      local = await navigator.mediaDevices.getUserMedia({
        video: { width: 320, height: 240, frameRate: 30 },
        audio: true,
      });
      const [v, a] = [local.getVideoTracks()[0], local.getAudioTracks()[0]];
      return { video: v?.label ?? '', audio: a?.label ?? '' };
    },

    /**
     * Peer-to-peer with another browser page: this page offers. Transforms are attached before any
     * await after the transceivers exist (see answer()).
     */
    async offer(videoMimeType?: string): Promise<void> {
      const conn = newConnection();
      const remote = new MediaStream();
      for (const track of local?.getTracks() ?? []) {
        const t = conn.addTransceiver(track, { direction: 'sendrecv' });
        const kind = track.kind as 'audio' | 'video';
        const codecs = RTCRtpReceiver.getCapabilities(kind)?.codecs ?? [];
        const only = codecs.filter((c) => c.mimeType === videoMimeType);
        if (kind === 'video' && videoMimeType && only.length > 0) t.setCodecPreferences(only);
        t.receiver.transform = new RTCRtpScriptTransform(worker, { side: 'receive', kind });
        t.sender.transform = new RTCRtpScriptTransform(worker, { side: 'send', kind });
        remote.addTrack(t.receiver.track);
      }
      video.srcObject = remote;
      video.play().catch(() => undefined);
      const desc = await conn.createOffer();
      await conn.setLocalDescription(desc);
      await send({ kind: 'description', type: 'offer', sdp: desc.sdp ?? '' });
    },

    setKeys(keys: Omit<KeysMessage, 'type'>): Promise<void> {
      return new Promise((resolve) => {
        keysAck = resolve;
        worker.postMessage({ type: 'keys', ...keys } satisfies KeysMessage);
      });
    },

    signal(payload: Signal): Promise<void> {
      queue = queue
        .then(async () => {
          if (payload.kind === 'description') {
            if (payload.type === 'offer') await answer(payload.sdp);
            else await pc?.setRemoteDescription({ type: 'answer', sdp: payload.sdp });
            // Candidates that overtook the description (the far end trickles while it is still
            // sending it) were kept until now.
            for (const c of early.splice(0)) await pc?.addIceCandidate(c);
          } else {
            const c = {
              candidate: payload.candidate,
              sdpMid: payload.sdpMid ?? null,
              sdpMLineIndex: payload.sdpMLineIndex ?? null,
            };
            if (pc?.remoteDescription) await pc.addIceCandidate(c);
            else early.push(c);
          }
        })
        .catch((err: Error) => {
          signallingErrors.push(err.message);
        });
      return queue;
    },

    async stats(): Promise<PageStats> {
      const id = ++statsId;
      const counters = await new Promise<WorkerCounters>((resolve) => {
        pendingStats.set(id, resolve);
        worker.postMessage({ type: 'stats', id });
      });
      pendingStats.delete(id);
      const out: PageStats = {
        counters,
        connectionState: pc?.connectionState ?? 'new',
        candidatePairs: [],
        signallingErrors: [...signallingErrors],
      };
      const report = pc ? await pc.getStats() : new Map();
      const address = (id: string) => {
        const c = report.get(id);
        return c ? `${c.address}:${c.port}/${c.candidateType}` : id;
      };
      for (const s of report.values()) {
        if (s.type === 'candidate-pair') {
          out.candidatePairs.push({
            local: address(s.localCandidateId),
            remote: address(s.remoteCandidateId),
            state: s.state,
            requestsSent: s.requestsSent ?? 0,
            responsesReceived: s.responsesReceived ?? 0,
          });
        }
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.inboundVideo = {
            framesDecoded: s.framesDecoded ?? 0,
            keyFramesDecoded: s.keyFramesDecoded ?? 0,
            framesDropped: s.framesDropped ?? 0,
            pliCount: s.pliCount ?? 0,
            freezeCount: s.freezeCount ?? 0,
            frameWidth: s.frameWidth,
            frameHeight: s.frameHeight,
            decoderImplementation: s.decoderImplementation,
          };
        } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
          out.outboundVideo = {
            framesEncoded: s.framesEncoded ?? 0,
            keyFramesEncoded: s.keyFramesEncoded ?? 0,
            frameWidth: s.frameWidth,
            bytesSent: s.bytesSent ?? 0,
          };
        } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          out.inboundAudio = {
            totalSamplesReceived: s.totalSamplesReceived ?? 0,
            concealedSamples: s.concealedSamples ?? 0,
            audioLevel: s.audioLevel,
          };
        }
      }
      return out;
    },

    /** Draws the playing <video> into a canvas, as the screen shows it, and reads pixels back. */
    sample(points: [number, number][]): PixelSample | undefined {
      const w = video.videoWidth;
      const h = video.videoHeight;
      if (w === 0 || h === 0 || video.readyState < 2) return undefined;
      canvas.width = w;
      canvas.height = h;
      const ctx = canvas.getContext('2d', { willReadFrequently: true });
      if (!ctx) return undefined;
      ctx.drawImage(video, 0, 0, w, h);
      const px = (x: number, y: number): [number, number, number] => {
        const d = ctx.getImageData(Math.min(w - 1, Math.floor(x)), Math.min(h - 1, Math.floor(y)), 1, 1).data;
        return [d[0] ?? 0, d[1] ?? 0, d[2] ?? 0];
      };
      let lit = 0;
      for (let gy = 0; gy < 12; gy++) {
        for (let gx = 0; gx < 16; gx++) {
          const [r, g, b] = px(((gx + 0.5) * w) / 16, ((gy + 0.5) * h) / 12);
          if (r + g + b > 60) lit++;
        }
      }
      return {
        width: w,
        height: h,
        colours: points.map(([fx, fy]) => px(fx * w, fy * h)),
        nonBlack: lit / (16 * 12),
      };
    },

    /**
     * The received audio as a listener would hear it: the spectrum of the remote track (Web Audio
     * analyser), as the level at each asked frequency and the loudest frequency.
     */
    async listen(freqs: number[]): Promise<{ peakHz: number; levelsDb: number[] } | undefined> {
      const track = (video.srcObject as MediaStream | null)?.getAudioTracks()[0];
      if (!track) return undefined;
      audio ??= new AudioContext({ sampleRate: 48000 });
      await audio.resume();
      if (!analyser) {
        analyser = audio.createAnalyser();
        analyser.fftSize = 4096;
        analyser.smoothingTimeConstant = 0;
        audio.createMediaStreamSource(new MediaStream([track])).connect(analyser);
        await new Promise((r) => setTimeout(r, 300));
      }
      const bins = new Float32Array(analyser.frequencyBinCount);
      analyser.getFloatFrequencyData(bins);
      const hzPerBin = audio.sampleRate / analyser.fftSize;
      let peak = 1;
      for (let i = 2; i < bins.length; i++) if ((bins[i] ?? -Infinity) > (bins[peak] ?? -Infinity)) peak = i;
      return {
        peakHz: peak * hzPerBin,
        levelsDb: freqs.map((f) => bins[Math.round(f / hzPerBin)] ?? -Infinity),
      };
    },

    close(): void {
      audio?.close().catch(() => undefined);
      pc?.close();
      for (const t of local?.getTracks() ?? []) t.stop();
      worker.terminate();
    },
  };
}

window.participant = createParticipant();
