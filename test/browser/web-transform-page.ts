// A test page for the production transform worker (src/web/media/transform-worker.ts) in Chromium:
// two RTCPeerConnections in one page, A sends microphone, camera and a canvas as "content" to B.
// Each side runs its own transform worker, which gets its keys only over a MessagePort (here the
// page plays the E2EE worker's end of that port; in the web app it is the E2EE worker itself).
// Driven by test/web-e2ee-chromium.test.ts through `window.webTransform`.
import type { TransformKeys, TransformOptions, TransformStats } from '../../src/web/shared/messages.js';

/** Keys as the test hands them over (JSON: byte strings as number arrays). */
export interface KeysJson {
  epoch: number;
  sendKid: string;
  sendKey: number[];
  receiveKeys: { kid: string; key: number[] }[];
  auth: { peerIndex: number; send: number[]; receive: number[] }[];
  sending: boolean;
}

export interface RtcCounts {
  connectionState: string;
  /** Receiver B, per mid: frames decoded (video) or samples received (audio). */
  inbound: Record<string, { kind: string; framesDecoded: number; packets: number; codec: string }>;
  outbound: Record<string, { framesEncoded: number; packets: number }>;
}

declare global {
  interface Window {
    webTransform: ReturnType<typeof createHarness>;
  }
}

type Side = { worker: Worker; port: MessagePort };

function transformWorker(): Side {
  const worker = new Worker('/transform-worker.js', { name: 'web-transform' });
  const channel = new MessageChannel();
  worker.postMessage({ type: 'port', port: channel.port2 }, [channel.port2]);
  return { worker, port: channel.port1 };
}

const SOURCES: TransformOptions['source'][] = ['microphone', 'camera', 'content'];

function createHarness() {
  const a = transformWorker();
  const b = transformWorker();
  const pcA = new RTCPeerConnection({ iceServers: [] });
  const pcB = new RTCPeerConnection({ iceServers: [] });
  let statsId = 0;
  let drawing: number | undefined;

  pcA.onicecandidate = (e) => e.candidate && pcB.addIceCandidate(e.candidate).catch(() => undefined);
  pcB.onicecandidate = (e) => e.candidate && pcA.addIceCandidate(e.candidate).catch(() => undefined);

  function contentTrack(): MediaStreamTrack {
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 180;
    const ctx = canvas.getContext('2d')!;
    let n = 0;
    const draw = () => {
      n++;
      ctx.fillStyle = `hsl(${(n * 7) % 360} 80% 50%)`;
      ctx.fillRect(0, 0, 320, 180);
      ctx.fillStyle = '#fff';
      ctx.fillText(`slide ${n}`, 20, 90);
    };
    draw();
    drawing = window.setInterval(draw, 66);
    return canvas.captureStream(15).getVideoTracks()[0]!;
  }

  return {
    /** A sends microphone, camera, content to B; transforms attached before any further await. */
    async start(videoMime: 'video/VP8' | 'video/H264'): Promise<void> {
      const local = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { width: 320, height: 240, frameRate: 30 },
      });
      const tracks = [local.getAudioTracks()[0]!, local.getVideoTracks()[0]!, contentTrack()];
      tracks.forEach((track, i) => {
        const t = pcA.addTransceiver(track, { direction: 'sendonly' });
        const kind = track.kind as 'audio' | 'video';
        if (kind === 'video') {
          const only = (RTCRtpReceiver.getCapabilities('video')?.codecs ?? []).filter(
            (c) => c.mimeType === videoMime,
          );
          if (only.length > 0) t.setCodecPreferences(only);
        }
        t.sender.transform = new RTCRtpScriptTransform(a.worker, {
          side: 'send',
          kind,
          source: SOURCES[i],
        } satisfies TransformOptions);
      });
      const offer = await pcA.createOffer();
      await pcA.setLocalDescription(offer);
      await pcB.setRemoteDescription(offer);
      // Receive transforms right after setRemoteDescription (Chromium ignores later ones; docs/interop.md).
      pcB.getTransceivers().forEach((t, i) => {
        t.receiver.transform = new RTCRtpScriptTransform(b.worker, {
          side: 'receive',
          kind: t.receiver.track.kind as 'audio' | 'video',
          source: i === 2 ? 'content' : i === 1 ? 'camera' : 'microphone',
        } satisfies TransformOptions);
        const el = document.createElement(t.receiver.track.kind === 'audio' ? 'audio' : 'video');
        el.autoplay = true;
        el.muted = true;
        el.srcObject = new MediaStream([t.receiver.track]);
        document.body.append(el);
      });
      const answer = await pcB.createAnswer();
      await pcB.setLocalDescription(answer);
      await pcA.setRemoteDescription(answer);
    },

    /** The E2EE worker's side of the port: keys in, wait for the transform worker's ack. */
    keys(which: 'a' | 'b', k: KeysJson): Promise<number> {
      const side = which === 'a' ? a : b;
      const message: TransformKeys = {
        type: 'keys',
        epoch: k.epoch,
        sendKid: k.sendKid,
        sendKey: Uint8Array.from(k.sendKey),
        receiveKeys: k.receiveKeys.map((r) => ({ kid: r.kid, key: Uint8Array.from(r.key) })),
        auth: k.auth.map((x) => ({
          peerIndex: x.peerIndex,
          send: Uint8Array.from(x.send),
          receive: Uint8Array.from(x.receive),
        })),
        sending: k.sending,
      };
      return new Promise((resolve) => {
        side.port.onmessage = (e) => resolve((e.data as { epoch: number }).epoch);
        side.port.postMessage(message);
      });
    },

    /** The page itself (not the E2EE worker) posting keys to the transform worker: must be ignored. */
    injectKeys(which: 'a' | 'b', k: KeysJson): void {
      (which === 'a' ? a : b).worker.postMessage({
        type: 'keys',
        epoch: k.epoch,
        sendKid: k.sendKid,
        sendKey: Uint8Array.from(k.sendKey),
        receiveKeys: k.receiveKeys.map((r) => ({ kid: r.kid, key: Uint8Array.from(r.key) })),
        auth: k.auth.map((x) => ({
          peerIndex: x.peerIndex,
          send: Uint8Array.from(x.send),
          receive: Uint8Array.from(x.receive),
        })),
        sending: true,
      });
    },

    /** The page handing the transform worker a second keys port and posting keys on it: ignored. */
    hijackPort(which: 'a' | 'b', k: KeysJson): void {
      const channel = new MessageChannel();
      (which === 'a' ? a : b).worker.postMessage({ type: 'port', port: channel.port2 }, [channel.port2]);
      channel.port1.postMessage({
        type: 'keys',
        epoch: k.epoch,
        sendKid: k.sendKid,
        sendKey: Uint8Array.from(k.sendKey),
        receiveKeys: k.receiveKeys.map((r) => ({ kid: r.kid, key: Uint8Array.from(r.key) })),
        auth: k.auth.map((x) => ({
          peerIndex: x.peerIndex,
          send: Uint8Array.from(x.send),
          receive: Uint8Array.from(x.receive),
        })),
        sending: true,
      } satisfies TransformKeys);
    },

    wipe(which: 'a' | 'b'): void {
      (which === 'a' ? a : b).port.postMessage({ type: 'wipe' });
    },

    /** The page's view of a transform worker: counters only. */
    stats(which: 'a' | 'b'): Promise<TransformStats> {
      const { worker } = which === 'a' ? a : b;
      const id = ++statsId;
      return new Promise((resolve) => {
        const listener = (e: MessageEvent) => {
          if ((e.data as { id?: number }).id !== id) return;
          worker.removeEventListener('message', listener);
          resolve((e.data as { stats: TransformStats }).stats);
        };
        worker.addEventListener('message', listener);
        worker.postMessage({ type: 'stats', id });
      });
    },

    async rtc(): Promise<RtcCounts> {
      const out: RtcCounts = { connectionState: pcB.connectionState, inbound: {}, outbound: {} };
      const codecs = new Map<string, string>();
      const reportB = await pcB.getStats();
      for (const s of reportB.values()) if (s.type === 'codec') codecs.set(s.id, s.mimeType);
      for (const s of reportB.values()) {
        if (s.type !== 'inbound-rtp') continue;
        out.inbound[s.mid ?? s.id] = {
          kind: s.kind,
          framesDecoded: s.framesDecoded ?? 0,
          packets: s.packetsReceived ?? 0,
          codec: codecs.get(s.codecId) ?? '',
        };
      }
      for (const s of (await pcA.getStats()).values()) {
        if (s.type === 'outbound-rtp')
          out.outbound[s.mid ?? s.id] = { framesEncoded: s.framesEncoded ?? 0, packets: s.packetsSent ?? 0 };
      }
      return out;
    },

    close(): void {
      if (drawing) clearInterval(drawing);
      pcA.close();
      pcB.close();
      a.worker.terminate();
      b.worker.terminate();
    },
  };
}

window.webTransform = createHarness();
