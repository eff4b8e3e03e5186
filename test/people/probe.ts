// What a test sees of the person's page without relying on its UI: an init script (runs before the
// page's own code) that (1) notes every RTCPeerConnection the page makes and every remote track it
// receives, (2) plays each remote video track in a hidden <video> of its own and records when its
// first frame was painted (first *decrypted and decoded* frame: a frame that failed SFrame never
// reaches the decoder) and its average colour, (3) replaces getDisplayMedia with a captured canvas of
// a known picture (magenta with a moving white bar), so "share screen" needs no desktop. Browser
// independent (Chromium and Firefox): only standard APIs. Nothing here sees a key.
export const SHARE_RGB: [number, number, number] = [255, 0, 255];

export interface ProbeVideo {
  trackId: string;
  /** Date.now() when the first frame was painted, or 0. */
  firstFrameAt: number;
  frames: number;
  width: number;
  height: number;
  avg?: [number, number, number];
}

export interface ProbeReport {
  pcs: number;
  connectionStates: string[];
  videos: ProbeVideo[];
  /** inbound-rtp per kind summed over the page's connections. */
  inbound: {
    video: { framesDecoded: number; packetsReceived: number; bytesReceived: number; streams: number };
    audio: {
      totalAudioEnergy: number;
      totalSamplesReceived: number;
      concealedSamples: number;
      packetsReceived: number;
      streams: number;
    };
  };
  /** outbound-rtp per kind. */
  outbound: { video: { framesEncoded: number; streams: number }; audio: { packetsSent: number } };
  /** Per video RTP stream (inbound and outbound): packets, frames, keyframes, PLIs — for diagnosis. */
  rtp: Record<string, unknown>[];
  /** Loudest frequency (Hz) per remote audio track, from an AnalyserNode. */
  audioPeaksHz: number[];
  /** The shared canvas is being captured (getDisplayMedia was called and not stopped). */
  sharing: boolean;
}

/** Installed with addInitScript / evaluateOnNewDocument before the page loads. */
export const PROBE_SCRIPT = `(() => {
  if (window.__sealroomProbe) return;
  const pcs = [];
  // By track object: the SFU's msid gives every publisher's camera the same track id ('video').
  const videos = new Map();
  let nextTrack = 0;
  const audioPeaks = [];
  let sharing = false;
  let audioCtx;
  const Native = window.RTCPeerConnection;
  if (Native) {
    window.RTCPeerConnection = new Proxy(Native, {
      construct(target, args, newTarget) {
        const pc = Reflect.construct(target, args, newTarget);
        pcs.push(pc);
        pc.addEventListener('track', (e) => watch(e.track));
        return pc;
      },
    });
  }
  function watch(track) {
    if (track.kind === 'video') {
      if ([...videos.values()].some((e) => e.track === track)) return;
      const v = document.createElement('video');
      v.muted = true; v.autoplay = true; v.playsInline = true;
      // In the viewport (Chromium pauses muted videos it considers hidden), tiny and nearly transparent.
      v.style.cssText = 'position:fixed;right:0;bottom:0;width:16px;height:9px;opacity:0.05;pointer-events:none';
      v.srcObject = new MediaStream([track]);
      const entry = { trackId: track.id + '#' + ++nextTrack, track, firstFrameAt: 0, frames: 0, video: v };
      videos.set(entry.trackId, entry);
      const onFrame = () => {
        if (!entry.firstFrameAt) entry.firstFrameAt = Date.now();
        entry.frames++;
        v.requestVideoFrameCallback(onFrame);
      };
      v.requestVideoFrameCallback(onFrame);
      const attach = () => { document.documentElement.appendChild(v); v.play().catch(() => {}); };
      if (document.documentElement) attach(); else addEventListener('DOMContentLoaded', attach);
    } else if (track.kind === 'audio') {
      try {
        // Chromium feeds a remote track into WebAudio only while some element plays it too.
        const a = new Audio(); a.muted = true; a.srcObject = new MediaStream([track]); a.play().catch(() => {});
        audioCtx ??= new AudioContext();
        const src = audioCtx.createMediaStreamSource(new MediaStream([track]));
        const an = audioCtx.createAnalyser(); an.fftSize = 4096; src.connect(an);
        audioPeaks.push(an);
        audioCtx.resume().catch(() => {});
      } catch {}
    }
  }
  function avgOf(v) {
    if (!v.videoWidth) return undefined;
    const c = document.createElement('canvas'); c.width = 32; c.height = 18;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(v, 0, 0, 32, 18);
    const d = g.getImageData(0, 0, 32, 18).data;
    let r = 0, gr = 0, b = 0;
    for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
    const n = d.length / 4;
    return [Math.round(r / n), Math.round(gr / n), Math.round(b / n)];
  }
  function shareCanvas() {
    const c = document.createElement('canvas'); c.width = 640; c.height = 360;
    const g = c.getContext('2d');
    let x = 0;
    const draw = () => {
      g.fillStyle = 'rgb(255,0,255)'; g.fillRect(0, 0, 640, 360);
      g.fillStyle = '#fff'; g.fillRect(x, 150, 60, 60);
      x = (x + 8) % 580;
    };
    draw();
    const timer = setInterval(draw, 66);
    const stream = c.captureStream(15);
    const [track] = stream.getVideoTracks();
    sharing = true;
    const stop = track.stop.bind(track);
    let stopped = false;
    // Once only: a page that stops the track from its 'ended' handler must not recurse.
    track.stop = () => {
      if (stopped) return;
      stopped = true; sharing = false; clearInterval(timer); stop();
      track.dispatchEvent(new Event('ended'));
    };
    return stream;
  }
  if (navigator.mediaDevices) {
    navigator.mediaDevices.getDisplayMedia = async () => shareCanvas();
  }
  window.__sealroomProbe = {
    async report() {
      const inbound = {
        video: { framesDecoded: 0, packetsReceived: 0, bytesReceived: 0, streams: 0 },
        audio: { totalAudioEnergy: 0, totalSamplesReceived: 0, concealedSamples: 0, packetsReceived: 0, streams: 0 },
      };
      const outbound = { video: { framesEncoded: 0, streams: 0 }, audio: { packetsSent: 0 } };
      const rtp = [];
      for (const pc of pcs) {
        if (pc.connectionState === 'closed') continue;
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.kind === 'video')
            rtp.push({ type: s.type, mid: s.mid, ssrc: s.ssrc, packets: s.packetsReceived ?? s.packetsSent,
              frames: s.framesDecoded ?? s.framesEncoded, keyFrames: s.keyFramesDecoded ?? s.keyFramesEncoded,
              framesReceived: s.framesReceived, pliCount: s.pliCount, nackCount: s.nackCount, width: s.frameWidth });
          if (s.type === 'inbound-rtp' && s.kind === 'video') {
            inbound.video.framesDecoded += s.framesDecoded || 0;
            inbound.video.packetsReceived += s.packetsReceived || 0;
            inbound.video.bytesReceived += s.bytesReceived || 0;
            inbound.video.streams++;
          }
          if (s.type === 'inbound-rtp' && s.kind === 'audio') {
            inbound.audio.totalAudioEnergy += s.totalAudioEnergy || 0;
            inbound.audio.totalSamplesReceived += s.totalSamplesReceived || 0;
            inbound.audio.concealedSamples += s.concealedSamples || 0;
            inbound.audio.packetsReceived += s.packetsReceived || 0;
            inbound.audio.streams++;
          }
          if (s.type === 'outbound-rtp' && s.kind === 'video') {
            outbound.video.framesEncoded += s.framesEncoded || 0;
            outbound.video.streams++;
          }
          if (s.type === 'outbound-rtp' && s.kind === 'audio') outbound.audio.packetsSent += s.packetsSent || 0;
        });
      }
      const audioPeaksHz = audioPeaks.map((an) => {
        const bins = new Float32Array(an.frequencyBinCount);
        an.getFloatFrequencyData(bins);
        let best = 0;
        for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
        return Math.round((best * an.context.sampleRate) / an.fftSize);
      });
      return {
        pcs: pcs.length,
        connectionStates: pcs.map((p) => p.connectionState),
        videos: [...videos.values()].map((e) => ({
          trackId: e.trackId, firstFrameAt: e.firstFrameAt, frames: e.frames,
          width: e.video.videoWidth, height: e.video.videoHeight, avg: avgOf(e.video),
        })),
        inbound, outbound, rtp, audioPeaksHz, sharing,
      };
    },
  };
})();`;

/** Is `avg` close to `rgb` (each channel within `tol`)? */
export const nearColour = (avg: readonly number[] | undefined, rgb: readonly number[], tol = 60) =>
  !!avg && avg.every((v, i) => Math.abs(v - (rgb[i] ?? 0)) <= tol);
