// The selective forwarding unit: one werift PeerConnection per participant that receives its audio
// and video and sends every other participant's. Frames are SFrame ciphertext; the SFU reads RTP
// headers only. The relay always offers; a change of publishers triggers a new offer.
import {
  MediaStreamTrack,
  PictureLossIndication,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  RTCRtpCodecParameters,
  type RTCRtpTransceiver,
  type RtpPacket,
  useNACK,
  usePLI,
  useSdesMid,
  useTransportWideCC,
} from 'werift';
import type { SignalPayload } from '../core/protocol/relay.js';
import type { Logger } from '../util/log.js';
import type { ConnectionId } from './meetings.js';
import { applyWeriftFixes, clonePacketForSubscriber } from './werift-fixes.js';

export type MediaKind = 'audio' | 'video';

export interface SfuOptions {
  log: Logger;
  /** Sends a signalling message to one participant's device. */
  sendSignal: (connection: ConnectionId, payload: SignalPayload) => void;
  /** Video codec every participant uses in this deployment (default H264, the media worker's default). */
  videoCodec?: 'VP8' | 'H264';
  /**
   * The one IPv4 address to gather ICE candidates on. Set when the relay listens on loopback, so a
   * loopback deployment never offers (or sends media to) the machine's other interfaces.
   */
  mediaAddress?: string;
  /** Sees every RTP packet a publisher sends (tests record what crosses the relay). */
  onPublisherRtp?: (meetingId: string, participantId: string, kind: MediaKind, packet: RtpPacket) => void;
}

/** werift ICE options that gather host candidates on one IPv4 address only. */
export function onlyInterface(address: string) {
  return {
    iceAdditionalHostAddresses: [address],
    iceInterfaceAddresses: { udp4: address },
    iceUseIpv6: false,
  };
}

/**
 * Drops the SDP's ICE candidates on other addresses: werift binds to the chosen interface but still
 * advertises the host's other addresses, which a loopback deployment must never offer.
 */
export function keepCandidatesOn(sdp: string, address: string): string {
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || line.split(' ')[4] === address)
    .join('\r\n');
}

export function codecsFor(videoCodec: 'VP8' | 'H264') {
  const feedback = [useNACK(), usePLI(), { type: 'transport-cc' }];
  const video =
    videoCodec === 'VP8'
      ? new RTCRtpCodecParameters({
          mimeType: 'video/VP8',
          clockRate: 90000,
          payloadType: 96,
          rtcpFeedback: feedback,
        })
      : new RTCRtpCodecParameters({
          mimeType: 'video/H264',
          clockRate: 90000,
          payloadType: 96,
          rtcpFeedback: feedback,
          parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
        });
  return {
    audio: [
      new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 }),
    ],
    video: [video],
  };
}

/** SSRC we put as the PLI's sender: never advertised in SDP (see sendPli). */
const PLI_SENDER_SSRC = 0x5ea1_0001;

/**
 * Asks a publisher for a keyframe. werift's own `receiver.sendRtcpPLI` names the transceiver's
 * sender SSRC as the PLI's sender, and a werift peer that answered our recvonly m-line routes a PSFB
 * by that SSRC first — to its own receiver, which ignores it. An unadvertised sender SSRC makes every
 * implementation route by the media SSRC, as RFC 4585 intends.
 */
function sendPli(transceiver: RTCRtpTransceiver, mediaSsrc: number | undefined): void {
  if (mediaSsrc === undefined || transceiver.receiver.stopped) return;
  const packet = new RtcpPayloadSpecificFeedback({
    feedback: new PictureLossIndication({ senderSsrc: PLI_SENDER_SSRC, mediaSsrc }),
  });
  void transceiver.receiver.dtlsTransport?.sendRtcp([packet]).catch(() => undefined);
}

interface Subscription {
  publisher: ConnectionId;
  kind: MediaKind;
  track: MediaStreamTrack;
  transceiver: RTCRtpTransceiver;
}

interface Peer {
  connection: ConnectionId;
  meetingId: string;
  participantId: string;
  pc: RTCPeerConnection;
  /** The publisher's incoming tracks once they arrive. */
  incoming: Partial<Record<MediaKind, { track: MediaStreamTrack; transceiver: RTCRtpTransceiver }>>;
  /** What this peer receives from others. */
  subscriptions: Subscription[];
  /** Forwarding targets of this peer's media, per kind (one track per subscriber). */
  forwardTo: Record<MediaKind, Set<MediaStreamTrack>>;
  negotiating: boolean;
  renegotiate: boolean;
  closed: boolean;
  /** Packets received from this publisher, and copies forwarded to its subscribers. */
  received: number;
  forwarded: number;
}

export class Sfu {
  readonly #peers = new Map<ConnectionId, Peer>();
  readonly #opts: SfuOptions;
  readonly #codecs: ReturnType<typeof codecsFor>;

  constructor(opts: SfuOptions) {
    applyWeriftFixes();
    this.#opts = opts;
    this.#codecs = codecsFor(opts.videoCodec ?? 'H264');
  }

  has(connection: ConnectionId): boolean {
    return this.#peers.has(connection);
  }

  peerCount(): number {
    return this.#peers.size;
  }

  /** Per participant: media connection state, packets published, copies forwarded to subscribers. */
  stats(): {
    participantId: string;
    meetingId: string;
    state: string;
    subscriptions: number;
    received: number;
    forwarded: number;
  }[] {
    return [...this.#peers.values()].map((p) => ({
      participantId: p.participantId,
      meetingId: p.meetingId,
      state: p.pc.connectionState,
      subscriptions: p.subscriptions.length,
      received: p.received,
      forwarded: p.forwarded,
    }));
  }

  /** Creates the participant's PeerConnection, subscribes it to everyone else and them to it. */
  add(connection: ConnectionId, meetingId: string, participantId: string): void {
    if (this.#peers.has(connection)) return;
    const pc = new RTCPeerConnection({
      iceServers: [],
      codecs: this.#codecs,
      headerExtensions: { audio: [useSdesMid()], video: [useSdesMid(), useTransportWideCC()] },
      bundlePolicy: 'max-bundle',
      ...(this.#opts.mediaAddress ? onlyInterface(this.#opts.mediaAddress) : {}),
    });
    const peer: Peer = {
      connection,
      meetingId,
      participantId,
      pc,
      incoming: {},
      subscriptions: [],
      forwardTo: { audio: new Set(), video: new Set() },
      negotiating: false,
      renegotiate: false,
      closed: false,
      received: 0,
      forwarded: 0,
    };
    this.#peers.set(connection, peer);
    for (const kind of ['audio', 'video'] as const) {
      const transceiver = pc.addTransceiver(kind, { direction: 'recvonly' });
      transceiver.onTrack.subscribe((track) => this.#onPublisherTrack(peer, kind, track, transceiver));
    }
    pc.connectionStateChange.subscribe((state) => {
      this.#opts.log.debug({ participantId, state }, 'media connection state');
      if (state === 'connected') this.#requestKeyframes(peer);
    });
    for (const other of this.#peers.values()) {
      if (other === peer || other.meetingId !== meetingId || other.closed) continue;
      this.#subscribe(peer, other);
      this.#subscribe(other, peer);
      void this.#negotiate(other);
    }
    void this.#negotiate(peer);
  }

  async remove(connection: ConnectionId): Promise<void> {
    const peer = this.#peers.get(connection);
    if (!peer) return;
    peer.closed = true;
    this.#peers.delete(connection);
    for (const other of this.#peers.values()) {
      const gone = other.subscriptions.filter((s) => s.publisher === connection);
      if (gone.length === 0) continue;
      other.subscriptions = other.subscriptions.filter((s) => s.publisher !== connection);
      for (const s of gone) {
        s.track.stop();
        try {
          other.pc.removeTrack(s.transceiver.sender);
        } catch {
          // already closed
        }
      }
      void this.#negotiate(other);
    }
    for (const s of peer.subscriptions) {
      s.track.stop();
      this.#peers.get(s.publisher)?.forwardTo[s.kind].delete(s.track);
    }
    peer.forwardTo.audio.clear();
    peer.forwardTo.video.clear();
    await peer.pc.close().catch(() => undefined);
  }

  async handleSignal(connection: ConnectionId, payload: SignalPayload): Promise<void> {
    const peer = this.#peers.get(connection);
    if (!peer || peer.closed) return;
    if (payload.kind === 'candidate') {
      await peer.pc
        .addIceCandidate({
          candidate: payload.candidate,
          sdpMid: payload.sdpMid ?? undefined,
          sdpMLineIndex: payload.sdpMLineIndex ?? undefined,
        })
        .catch((err: unknown) => this.#opts.log.debug({ err }, 'ignored ICE candidate'));
      return;
    }
    if (payload.type !== 'answer') {
      this.#opts.log.warn(
        { participantId: peer.participantId },
        'device sent an offer; the relay always offers',
      );
      return;
    }
    await peer.pc.setRemoteDescription({ type: 'answer', sdp: payload.sdp });
    peer.negotiating = false;
    this.#opts.log.debug({ participantId: peer.participantId }, 'answer applied');
    // New subscriptions may now flow: ask their publishers for a keyframe.
    this.#requestKeyframes(peer);
    if (peer.renegotiate) void this.#negotiate(peer);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#peers.keys()].map((c) => this.remove(c)));
  }

  #subscribe(subscriber: Peer, publisher: Peer): void {
    for (const kind of ['audio', 'video'] as const) {
      const track = new MediaStreamTrack({ kind });
      const transceiver = subscriber.pc.addTransceiver(track, { direction: 'sendonly' });
      subscriber.subscriptions.push({ publisher: publisher.connection, kind, track, transceiver });
      publisher.forwardTo[kind].add(track);
      if (kind === 'video') {
        // A subscriber's decoder asking for a keyframe goes to the publisher's encoder.
        transceiver.sender.onPictureLossIndication.subscribe(() => this.#requestKeyframe(publisher));
      }
    }
  }

  #onPublisherTrack(
    peer: Peer,
    kind: MediaKind,
    track: MediaStreamTrack,
    transceiver: RTCRtpTransceiver,
  ): void {
    peer.incoming[kind] = { track, transceiver };
    this.#opts.log.debug({ participantId: peer.participantId, kind, ssrc: track.ssrc }, 'publisher track');
    const tap = this.#opts.onPublisherRtp;
    track.onReceiveRtp.subscribe((packet) => {
      if (tap) tap(peer.meetingId, peer.participantId, kind, packet);
      peer.received++;
      for (const target of peer.forwardTo[kind]) {
        target.writeRtp(clonePacketForSubscriber(packet));
        peer.forwarded++;
      }
    });
    if (kind === 'video') sendPli(transceiver, track.ssrc);
  }

  #requestKeyframe(publisher: Peer): void {
    const video = publisher.incoming.video;
    if (!video || video.track.ssrc === undefined || publisher.closed) return;
    sendPli(video.transceiver, video.track.ssrc);
  }

  #requestKeyframes(subscriber: Peer): void {
    for (const s of subscriber.subscriptions) {
      if (s.kind !== 'video') continue;
      const publisher = this.#peers.get(s.publisher);
      if (publisher) this.#requestKeyframe(publisher);
    }
  }

  /** One offer at a time per peer; changes while an answer is pending cause one more round. */
  async #negotiate(peer: Peer): Promise<void> {
    if (peer.closed) return;
    if (peer.negotiating) {
      peer.renegotiate = true;
      return;
    }
    peer.negotiating = true;
    peer.renegotiate = false;
    try {
      const offer = await peer.pc.createOffer();
      await peer.pc.setLocalDescription(offer);
      const gathered = peer.pc.localDescription?.sdp ?? offer.sdp;
      const sdp = this.#opts.mediaAddress ? keepCandidatesOn(gathered, this.#opts.mediaAddress) : gathered;
      if (!peer.closed) this.#opts.sendSignal(peer.connection, { kind: 'description', type: 'offer', sdp });
      this.#opts.log.debug(
        { participantId: peer.participantId, subscriptions: peer.subscriptions.length },
        'offer sent',
      );
    } catch (err) {
      peer.negotiating = false;
      if (!peer.closed)
        this.#opts.log.warn({ err, participantId: peer.participantId }, 'could not make an offer');
    }
  }
}
