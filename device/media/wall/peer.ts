// One wall connection: a werift PeerConnection from the media worker to the kiosk page on this
// machine, carrying decrypted but still encoded video (no re-encode). The worker offers a fixed set of
// sendonly video m-lines (9 remote, 1 self, 1 content), ICE on 127.0.0.1 only, no audio, no data
// channel. Only the page whose answer (with its DTLS fingerprint) arrives first can complete the
// connection; a second answer is refused (werift would otherwise add its fingerprint to the accepted
// ones). werift traps (../shared/DESIGN.md): each m-line has its own track and gets freshly built
// packets, no header extensions are negotiated or forwarded.
import { EventEmitter } from 'node:events';
import {
  MediaStreamTrack,
  PictureLossIndication,
  type RtcpPacket,
  RtcpPayloadSpecificFeedback,
  RTCPeerConnection,
  type RTCRtpTransceiver,
  RtpHeader,
  RtpPacket,
} from 'werift';
import type { VideoCodec } from '../bitstream.js';
import { VIDEO_PAYLOAD_TYPE, videoCodecParameters } from '../transport.js';

export const REMOTE_LINES = 9;
export type WallLineKind = 'remote' | 'self' | 'content';
/** The m-lines in offer order: remote 0..8, then self, then content. */
export const LINE_KINDS: readonly WallLineKind[] = [
  ...Array.from({ length: REMOTE_LINES }, () => 'remote' as const),
  'self',
  'content',
];
export const SELF_LINE = REMOTE_LINES;
export const CONTENT_LINE = REMOTE_LINES + 1;

const LOOPBACK = '127.0.0.1';
const FIR_FMT = 4;

/** Keeps only ICE candidates on 127.0.0.1 in an SDP (werift also advertises the host's address). */
export function loopbackCandidatesOnly(sdp: string): string {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || line.split(' ')[4] === LOOPBACK)
    .join('\r\n');
}

interface Line {
  kind: WallLineKind;
  transceiver: RTCRtpTransceiver;
  track: MediaStreamTrack;
  seq: number;
}

export interface WallPeerEvents {
  /** The page asked for a keyframe (PLI/FIR) on m-line `line`. */
  keyframeRequest: [line: number];
  state: [string];
}

export class WallPeer extends EventEmitter<WallPeerEvents> {
  readonly #pc: RTCPeerConnection;
  readonly #lines: Line[] = [];
  #offer = '';
  #answered = false;
  #closed = false;

  private constructor(readonly codec: VideoCodec) {
    super();
    this.#pc = new RTCPeerConnection({
      iceServers: [],
      bundlePolicy: 'max-bundle',
      codecs: { video: [videoCodecParameters(codec)], audio: [] },
      headerExtensions: { video: [], audio: [] },
      iceAdditionalHostAddresses: [LOOPBACK],
      // Every socket is bound to 127.0.0.1, whatever address werift advertises for it.
      iceInterfaceAddresses: { udp4: LOOPBACK },
      iceUseIpv6: false,
      // Only pairs with a loopback remote candidate are ever checked.
      iceFilterCandidatePair: (pair) => pair.remoteCandidate.host === LOOPBACK,
    });
    this.#pc.connectionStateChange.subscribe((s) => this.emit('state', s));
  }

  /** Builds the connection and its offer (local candidates included: no trickle). */
  static async create(codec: VideoCodec): Promise<WallPeer> {
    const peer = new WallPeer(codec);
    await peer.#makeOffer();
    return peer;
  }

  async #makeOffer(): Promise<void> {
    for (const kind of LINE_KINDS) {
      const track = new MediaStreamTrack({ kind: 'video' });
      const transceiver = this.#pc.addTransceiver(track, { direction: 'sendonly' });
      const line: Line = { kind, transceiver, track, seq: Math.floor(Math.random() * 0xffff) };
      this.#lines.push(line);
      transceiver.sender.onRtcp.subscribe((p) => this.#onRtcp(p));
      transceiver.receiver.onRtcp.subscribe((p) => this.#onRtcp(p));
    }
    const offer = await this.#pc.createOffer();
    await this.#pc.setLocalDescription(offer);
    this.#offer = loopbackCandidatesOnly(this.#pc.localDescription?.sdp ?? offer.sdp);
  }

  get offer(): string {
    return this.#offer;
  }

  get answered(): boolean {
    return this.#answered;
  }

  get connectionState(): string {
    return this.#pc.connectionState;
  }

  /** mid of each m-line, in LINE_KINDS order. */
  get mids(): string[] {
    return this.#lines.map((l, i) => l.transceiver.mid ?? String(i));
  }

  /** The page's answer; only the first one counts. */
  async answer(sdp: string): Promise<void> {
    if (this.#closed) throw new Error('wall session is closed');
    if (this.#answered) throw new Error('wall session already answered');
    this.#answered = true;
    if (!/^a=fingerprint:/m.test(sdp)) throw new Error('answer has no DTLS fingerprint');
    if (/^m=(audio|application)/m.test(sdp)) throw new Error('answer has a non-video m-line');
    await this.#pc.setRemoteDescription({ type: 'answer', sdp });
  }

  get connected(): boolean {
    return this.#pc.connectionState === 'connected';
  }

  /** Sends one frame's RTP payloads on m-line `line`: the given timestamp, fresh sequence numbers. */
  send(line: number, payloads: readonly Buffer[], timestamp: number): boolean {
    const l = this.#lines[line];
    if (!l || !this.connected) return false;
    payloads.forEach((payload, i) => {
      l.seq = (l.seq + 1) & 0xffff;
      const header = new RtpHeader({
        sequenceNumber: l.seq,
        timestamp: timestamp >>> 0,
        marker: i === payloads.length - 1,
        payloadType: VIDEO_PAYLOAD_TYPE,
      });
      l.track.writeRtp(new RtpPacket(header, payload));
    });
    return true;
  }

  #onRtcp(packet: RtcpPacket): void {
    if (packet.type !== RtcpPayloadSpecificFeedback.type) return;
    const fb = (packet as RtcpPayloadSpecificFeedback).feedback as { count: number; mediaSsrc?: number };
    if (fb.count !== PictureLossIndication.count && fb.count !== FIR_FMT) return;
    const line = this.#lines.findIndex((l) => l.transceiver.sender.ssrc === fb.mediaSsrc);
    if (line >= 0) this.emit('keyframeRequest', line);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.removeAllListeners('keyframeRequest');
    await this.#pc.close();
  }
}
