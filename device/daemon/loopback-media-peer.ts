// A lightweight media participant without GStreamer: a werift PeerConnection that answers the SFU's
// offers, publishes RTP packets it is given (already-protected frames) and reports every packet it
// receives. Tests and benchmarks use it as a room; it follows the same m-line convention as the
// media worker: in each relay offer, m-lines 0 (audio) and 1 (video) are what this device sends,
// every later m-line carries another participant's audio or video.
import { EventEmitter } from 'node:events';
import { MediaStreamTrack, RTCPeerConnection, type RTCRtpTransceiver, RtpHeader, RtpPacket } from 'werift';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import { codecsFor, onlyInterface } from '../../src/relay/sfu.js';
import { applyWeriftFixes } from '../../src/relay/werift-fixes.js';

export type Kind = 'audio' | 'video';

export interface ReceivedPacket {
  kind: Kind;
  payload: Buffer;
  marker: boolean;
  timestamp: number;
  extensionIds: number[];
}

export class LoopbackMediaPeer extends EventEmitter<{
  packet: [ReceivedPacket];
  keyframeRequest: [];
  signal: [SignalPayload];
}> {
  readonly pc: RTCPeerConnection;
  readonly #tracks: Record<Kind, MediaStreamTrack> = {
    audio: new MediaStreamTrack({ kind: 'audio' }),
    video: new MediaStreamTrack({ kind: 'video' }),
  };
  readonly #seq: Record<Kind, number> = { audio: 1000, video: 5000 };
  #queue = Promise.resolve();
  #published = new Set<RTCRtpTransceiver>();
  keyframeRequests = 0;

  constructor(videoCodec: 'VP8' | 'H264' = 'H264') {
    super();
    applyWeriftFixes();
    this.pc = new RTCPeerConnection({
      iceServers: [],
      codecs: codecsFor(videoCodec),
      // Like the media worker: no header extensions (no transport-wide CC loop between werift peers).
      headerExtensions: { audio: [], video: [] },
      bundlePolicy: 'max-bundle',
      ...onlyInterface('127.0.0.1'),
    });
    const seen = new Set<MediaStreamTrack>();
    this.pc.onTrack.subscribe((track) => {
      // werift may announce the same remote track again after a renegotiation.
      if (seen.has(track)) return;
      seen.add(track);
      const kind = track.kind as Kind;
      track.onReceiveRtp.subscribe((rtp) =>
        this.emit('packet', {
          kind,
          payload: rtp.payload,
          marker: rtp.header.marker,
          timestamp: rtp.header.timestamp,
          extensionIds: rtp.header.extensions.map((e) => e.id),
        }),
      );
    });
  }

  get connected(): boolean {
    return this.pc.connectionState === 'connected';
  }

  /** Feed a signalling message from the relay; answers go out through the 'signal' event. */
  handleSignal(payload: SignalPayload): Promise<void> {
    this.#queue = this.#queue.then(() => this.#handle(payload)).catch(() => undefined);
    return this.#queue;
  }

  /** Sends one RTP packet carrying `payload` (one whole protected frame in these tests). */
  send(
    kind: Kind,
    payload: Buffer,
    timestamp: number,
    opts: { marker?: boolean; extensions?: { id: number; payload: Buffer }[] } = {},
  ): void {
    this.#seq[kind] = (this.#seq[kind] + 1) & 0xffff;
    const header = new RtpHeader({
      sequenceNumber: this.#seq[kind],
      timestamp: timestamp >>> 0,
      marker: opts.marker ?? true,
      payloadType: kind === 'audio' ? 111 : 96,
      extensions: opts.extensions ?? [],
    });
    this.#tracks[kind].writeRtp(new RtpPacket(header, payload));
  }

  /** Asks the publishers of everything this peer receives for a keyframe (as a decoder would). */
  requestKeyframes(): void {
    for (const t of this.pc.getTransceivers()) {
      const ssrc = t.receiver.track?.ssrc;
      if (t.kind === 'video' && ssrc !== undefined && !this.#published.has(t))
        void t.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.pc.close().catch(() => undefined);
  }

  async #handle(payload: SignalPayload): Promise<void> {
    if (payload.kind === 'candidate') {
      await this.pc.addIceCandidate({
        candidate: payload.candidate,
        sdpMid: payload.sdpMid ?? undefined,
        sdpMLineIndex: payload.sdpMLineIndex ?? undefined,
      });
      return;
    }
    if (payload.type !== 'offer') return;
    // werift reuses a transceiver whose m-line went inactive for the next new remote m-line (meant
    // for our own addTransceiver), dropping the old m-line from its list and misaligning the answer:
    // after someone left and someone joined, their media never arrives. Keep inactive ones in place.
    for (const t of this.pc.getTransceivers()) if (t.currentDirection === 'inactive') t.usedForSender = true;
    await this.pc.setRemoteDescription({ type: 'offer', sdp: payload.sdp });
    const transceivers = this.pc.getTransceivers();
    for (const [index, kind] of [[0, 'audio'] as const, [1, 'video'] as const]) {
      const t = transceivers[index];
      if (!t || this.#published.has(t)) continue;
      this.#published.add(t);
      t.setDirection('sendonly');
      await t.sender.replaceTrack(this.#tracks[kind]);
      if (kind === 'video')
        t.sender.onPictureLossIndication.subscribe(() => {
          this.keyframeRequests++;
          this.emit('keyframeRequest');
        });
    }
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.emit('signal', {
      kind: 'description',
      type: 'answer',
      sdp: this.pc.localDescription?.sdp ?? answer.sdp,
    });
  }
}

/** Wires a media peer to a relay connection's signalling and asks the SFU for media. */
export function connectMedia(
  connection: {
    on(e: 'message', f: (m: { type: string; payload?: unknown }) => void): unknown;
    send(m: { type: 'signal'; payload: SignalPayload } | { type: 'media'; enabled: boolean }): boolean;
  },
  peer: LoopbackMediaPeer,
): void {
  connection.on('message', (m) => {
    if (m.type === 'signal') void peer.handleSignal(m.payload as SignalPayload);
  });
  peer.on('signal', (payload) => connection.send({ type: 'signal', payload }));
  connection.send({ type: 'media', enabled: true });
}
