// The worker's WebRTC transport (werift): one PeerConnection carrying our audio and video (already
// SFrame-protected, packetised here into RTP by the caller) and every remote track the other side
// sends. Works against the relay's SFU (it offers; we answer, also on every renegotiation) and
// peer-to-peer between two workers (one offers). SDP/ICE leave as 'signal' events for the daemon to
// forward. werift never asks for keyframes by itself, so PLI is sent explicitly (requestKeyframe);
// no transport-cc extension is negotiated (werift's TWCC feedback is not padded to 4 bytes).
// The SFU's offer may carry, besides each publisher's audio and camera, a publisher's shared screen:
// a sendonly video m-line with `a=msid:<publisherId> content` (docs/relay.md). We only receive it;
// its packets are tagged `content` so the receive path puts them on the wall's content line. The
// tag is the relay's word and only says which line: who sent a frame is its SFrame KID, checked.
import { EventEmitter } from 'node:events';
import {
  MediaStreamTrack,
  PictureLossIndication,
  type RtcpPacket,
  RtcpPayloadSpecificFeedback,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  type RTCRtpTransceiver,
  RtpHeader,
  RtpPacket,
} from 'werift';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import type { VideoCodec } from './bitstream.js';

export const OPUS_PAYLOAD_TYPE = 111;
/** RFC 5104 Full Intra Request feedback message type (werift does not export its class). */
const FIR_FMT = 4;
export const VIDEO_PAYLOAD_TYPE = 96;

export function videoCodecParameters(codec: VideoCodec): RTCRtpCodecParameters {
  const rtcpFeedback = [
    { type: 'nack' },
    { type: 'nack', parameter: 'pli' },
    { type: 'ccm', parameter: 'fir' },
  ];
  return codec === 'h264'
    ? new RTCRtpCodecParameters({
        mimeType: 'video/H264',
        clockRate: 90000,
        payloadType: VIDEO_PAYLOAD_TYPE,
        rtcpFeedback,
        parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
      })
    : new RTCRtpCodecParameters({
        mimeType: 'video/VP8',
        clockRate: 90000,
        payloadType: VIDEO_PAYLOAD_TYPE,
        rtcpFeedback,
      });
}

export const opusCodecParameters = () =>
  new RTCRtpCodecParameters({
    mimeType: 'audio/opus',
    clockRate: 48000,
    channels: 2,
    payloadType: OPUS_PAYLOAD_TYPE,
  });

/** The msid track id the SFU gives a shared screen's m-line (`a=msid:<publisherId> content`). */
export const CONTENT_TRACK_ID = 'content';

export interface RemoteRtp {
  kind: 'audio' | 'video';
  ssrc: number;
  packet: RtpPacket;
  /** A video packet of an m-line the offer marked as screen content (msid track id `content`). */
  content?: boolean;
}

export interface TransportEvents {
  signal: [SignalPayload];
  rtp: [RemoteRtp];
  /** The far end (or the SFU on behalf of a subscriber) asked for a keyframe. */
  keyframeRequest: [];
  state: [string];
  /** After each remote offer: how many live content m-lines it carries (0: nobody shares). */
  contentLines: [number];
}

export interface TransportOptions {
  codec: VideoCodec;
  /** Gather only 127.0.0.1 (tests and benchmarks on one machine). */
  loopbackOnly?: boolean;
}

export class MediaTransport extends EventEmitter<TransportEvents> {
  readonly #pc: RTCPeerConnection;
  readonly #videoTrack = new MediaStreamTrack({ kind: 'video' });
  readonly #audioTrack = new MediaStreamTrack({ kind: 'audio' });
  readonly #receiverBySsrc = new Map<number, RTCRtpTransceiver>();
  readonly #attached = new Set<RTCRtpTransceiver>();
  #videoSeq = Math.floor(Math.random() * 0xffff);
  #audioSeq = Math.floor(Math.random() * 0xffff);
  #closed = false;

  constructor(opts: TransportOptions) {
    super();
    this.#pc = new RTCPeerConnection({
      iceServers: [],
      codecs: { video: [videoCodecParameters(opts.codec)], audio: [opusCodecParameters()] },
      headerExtensions: { video: [], audio: [] },
      ...(opts.loopbackOnly
        ? {
            iceAdditionalHostAddresses: ['127.0.0.1'],
            iceInterfaceAddresses: { udp4: '127.0.0.1' },
            iceUseIpv6: false,
          }
        : {}),
    });
    this.#pc.onIceCandidate.subscribe((candidate) => {
      if (!candidate || this.#closed) return;
      const json = candidate.toJSON();
      if (!json.candidate) return;
      this.emit('signal', {
        kind: 'candidate',
        candidate: json.candidate,
        sdpMid: json.sdpMid ?? null,
        sdpMLineIndex: json.sdpMLineIndex ?? null,
      });
    });
    this.#pc.connectionStateChange.subscribe((state) => this.emit('state', state));
    this.#pc.onTransceiverAdded.subscribe((t) => this.#watch(t));
  }

  get connectionState(): string {
    return this.#pc.connectionState;
  }

  /** Peer-to-peer: add our send/receive transceivers and send an offer. */
  async offer(): Promise<void> {
    this.#attach(this.#pc.addTransceiver(this.#videoTrack, { direction: 'sendrecv' }));
    this.#attach(this.#pc.addTransceiver(this.#audioTrack, { direction: 'sendrecv' }));
    const offer = await this.#pc.createOffer();
    await this.#pc.setLocalDescription(offer);
    this.emit('signal', { kind: 'description', type: 'offer', sdp: offer.sdp });
  }

  async handleSignal(payload: SignalPayload): Promise<void> {
    if (this.#closed) return;
    if (payload.kind === 'candidate') {
      await this.#pc.addIceCandidate({
        candidate: payload.candidate,
        sdpMid: payload.sdpMid ?? undefined,
        sdpMLineIndex: payload.sdpMLineIndex ?? undefined,
      });
      return;
    }
    // werift reuses a transceiver whose m-line went inactive (a participant left) for the next new
    // remote m-line, dropping the old m-line from its list and misaligning the answer: the next
    // participant's media never arrived. Marked as used, inactive transceivers stay in place.
    if (payload.type === 'offer')
      for (const t of this.#pc.getTransceivers())
        if (t.currentDirection === 'inactive') t.usedForSender = true;
    await this.#pc.setRemoteDescription({ type: payload.type, sdp: payload.sdp });
    if (payload.type === 'offer') {
      this.#attachToOffer();
      this.emit('contentLines', this.#liveContentLines());
      const answer = await this.#pc.createAnswer();
      await this.#pc.setLocalDescription(answer);
      this.emit('signal', { kind: 'description', type: 'answer', sdp: answer.sdp });
    }
  }

  /** Our tracks go on the first audio and video m-lines the offerer lets us send on. */
  #attachToOffer(): void {
    for (const kind of ['video', 'audio'] as const) {
      const track = kind === 'video' ? this.#videoTrack : this.#audioTrack;
      if ([...this.#attached].some((t) => t.kind === kind && !t.stopped)) continue;
      const t = this.#pc
        .getTransceivers()
        // werift's offerDirection is already reversed (what WE may do): 'sendonly' = the offerer receives.
        .find(
          (tr) =>
            tr.kind === kind &&
            !tr.stopped &&
            (tr.offerDirection === 'sendonly' || tr.offerDirection === 'sendrecv'),
        );
      if (!t) continue;
      t.setDirection(t.offerDirection === 'sendonly' ? 'sendonly' : 'sendrecv');
      t.sender.replaceTrack(track).catch(() => undefined);
      this.#attach(t);
    }
  }

  /** m-lines the far end sends us screen content on (not stopped, not inactive). */
  #liveContentLines(): number {
    return this.#pc
      .getTransceivers()
      .filter(
        (t) =>
          t.kind === 'video' &&
          !t.stopped &&
          !this.#attached.has(t) &&
          isContent(t) &&
          (t.offerDirection === 'recvonly' || t.offerDirection === 'sendrecv'),
      ).length;
  }

  #attach(t: RTCRtpTransceiver): void {
    this.#attached.add(t);
  }

  /**
   * PLI/FIR for one of our senders. werift routes payload-specific feedback by the packet's *sender*
   * SSRC first, so on a sendrecv transceiver a PLI lands on our receiver, not our sender: look at both.
   */
  #onRtcp(packet: RtcpPacket): void {
    if (packet.type !== RtcpPayloadSpecificFeedback.type) return;
    const fb = (packet as RtcpPayloadSpecificFeedback).feedback as { count: number; mediaSsrc?: number };
    if (fb.count !== PictureLossIndication.count && fb.count !== FIR_FMT) return;
    const ours = [...this.#attached].some((t) => t.sender.ssrc === fb.mediaSsrc && t.kind === 'video');
    if (ours || fb.count === FIR_FMT) this.emit('keyframeRequest');
  }

  #watch(t: RTCRtpTransceiver): void {
    t.sender.onRtcp.subscribe((p) => this.#onRtcp(p));
    t.receiver.onRtcp.subscribe((p) => this.#onRtcp(p));
    t.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((packet) => {
        const ssrc = packet.header.ssrc;
        if (!this.#receiverBySsrc.has(ssrc)) this.#receiverBySsrc.set(ssrc, t);
        const kind = track.kind === 'audio' ? 'audio' : 'video';
        // Read per packet: a renegotiation may move an m-line from camera to content.
        this.emit('rtp', {
          kind,
          ssrc,
          packet,
          ...(kind === 'video' && isContent(t) ? { content: true } : {}),
        });
      });
    });
  }

  /** Sends one video frame's payloads with one RTP timestamp, marker on the last packet. */
  sendVideo(payloads: readonly Buffer[], timestamp: number): void {
    payloads.forEach((payload, i) => {
      this.#videoSeq = (this.#videoSeq + 1) & 0xffff;
      const header = new RtpHeader({
        sequenceNumber: this.#videoSeq,
        timestamp: timestamp >>> 0,
        marker: i === payloads.length - 1,
        payloadType: VIDEO_PAYLOAD_TYPE,
      });
      this.#videoTrack.writeRtp(new RtpPacket(header, payload));
    });
  }

  sendAudio(payload: Buffer, timestamp: number): void {
    this.#audioSeq = (this.#audioSeq + 1) & 0xffff;
    const header = new RtpHeader({
      sequenceNumber: this.#audioSeq,
      timestamp: timestamp >>> 0,
      marker: false,
      payloadType: OPUS_PAYLOAD_TYPE,
    });
    this.#audioTrack.writeRtp(new RtpPacket(header, payload));
  }

  /** Sends a PLI for a remote video stream. */
  requestKeyframe(ssrc: number): void {
    const t = this.#receiverBySsrc.get(ssrc);
    t?.receiver.sendRtcpPLI(ssrc).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pc.close();
  }
}

/** The m-line's msid track id (werift keeps it per receiver from the latest remote description). */
function isContent(t: RTCRtpTransceiver): boolean {
  return t.receiver.remoteTrackId === CONTENT_TRACK_ID;
}
