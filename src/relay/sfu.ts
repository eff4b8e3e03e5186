// The selective forwarding unit: one werift PeerConnection per participant that receives its audio
// and video and sends every other participant's. Frames are SFrame ciphertext; the SFU reads RTP
// headers only. The relay always offers; a change of publishers triggers a new offer.
//
// Screen share (issue 12): a person's offer has a third publish m-line, `content` (video, recvonly
// here). The meeting's one sharer (MeetingRegistry decides, setSharer applies) is forwarded to every
// other participant on a sendonly m-line of its own; every subscribed m-line names its publisher and
// kind as `a=msid:<publisher participant id> <audio|video|content>` (docs/relay.md, "Media").
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
import { randomInt } from 'node:crypto';
import type { SignalPayload } from '../core/protocol/relay.js';
import type { Logger } from '../util/log.js';
import type { ConnectionId } from './meetings.js';
import { applyWeriftFixes, clonePacketForSubscriber, routePliByMediaSsrc } from './werift-fixes.js';

/** What a publisher sends: audio, camera video, and (people only) screen content on a video m-line. */
export type MediaKind = 'audio' | 'video' | 'content';
const CAMERA_KINDS = ['audio', 'video'] as const;

/** The m-line (and werift track) kind each media kind travels on. */
function lineKind(kind: MediaKind): 'audio' | 'video' {
  return kind === 'audio' ? 'audio' : 'video';
}

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

/**
 * RFC 3264 §8: every offer of one session keeps the origin's session id and raises its version.
 * werift draws a new random `o=` session id on each createOffer, which a browser may read as a
 * different session (the web page once started over on each re-offer); give each peer one origin.
 */
export function withOrigin(sdp: string, sessionId: string, version: number): string {
  return sdp.replace(/^o=(\S+) \S+ \S+ /m, (_, user: string) => `o=${user} ${sessionId} ${version} `);
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
  /** The `o=` session id of every offer to this peer, and the version of the last one (withOrigin). */
  originId: string;
  offers: number;
  closed: boolean;
  /** Its offer has the content publish m-line (people): it may share a screen. */
  content: boolean;
  /** Packets received from this publisher, and copies forwarded to its subscribers. */
  received: number;
  forwarded: number;
}

export interface AddOptions {
  /** Offer a third publish m-line for screen content (people; rooms' offers keep two m-lines). */
  content?: boolean;
}

export class Sfu {
  readonly #peers = new Map<ConnectionId, Peer>();
  readonly #opts: SfuOptions;
  readonly #codecs: ReturnType<typeof codecsFor>;
  /** Meeting id → the connection whose content is forwarded now. */
  readonly #sharers = new Map<string, ConnectionId>();

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

  /** True when the participant has media with a content publish m-line (it can share). */
  canShare(connection: ConnectionId): boolean {
    return this.#peers.get(connection)?.content === true;
  }

  /** The connection whose content is forwarded in a meeting now, if any. */
  sharer(meetingId: string): ConnectionId | undefined {
    return this.#sharers.get(meetingId);
  }

  /**
   * Creates the participant's PeerConnection: m-lines 0 (audio) and 1 (video) and, with `content`,
   * 2 (content) receive what it publishes; it is subscribed to everyone else (and to the current
   * sharer's content) and they to it.
   */
  add(connection: ConnectionId, meetingId: string, participantId: string, opts: AddOptions = {}): void {
    if (this.#peers.has(connection)) return;
    const pc = new RTCPeerConnection({
      iceServers: [],
      codecs: this.#codecs,
      headerExtensions: { audio: [useSdesMid()], video: [useSdesMid(), useTransportWideCC()] },
      bundlePolicy: 'max-bundle',
      ...(this.#opts.mediaAddress ? onlyInterface(this.#opts.mediaAddress) : {}),
    });
    // A browser subscriber's PLI must reach its sendonly transceiver's sender (werift-fixes.ts).
    routePliByMediaSsrc(pc);
    const peer: Peer = {
      connection,
      meetingId,
      participantId,
      pc,
      incoming: {},
      subscriptions: [],
      forwardTo: { audio: new Set(), video: new Set(), content: new Set() },
      negotiating: false,
      renegotiate: false,
      originId: String(randomInt(1, 2 ** 47)),
      offers: 0,
      closed: false,
      content: opts.content === true,
      received: 0,
      forwarded: 0,
    };
    this.#peers.set(connection, peer);
    const publishes: MediaKind[] = peer.content ? ['audio', 'video', 'content'] : ['audio', 'video'];
    for (const kind of publishes) {
      const transceiver = pc.addTransceiver(lineKind(kind), { direction: 'recvonly' });
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
    const sharer = this.#peers.get(this.#sharers.get(meetingId) ?? '');
    if (sharer && sharer !== peer)
      sharer.forwardTo.content.add(this.#contentSubscription(peer, sharer).track);
    void this.#negotiate(peer);
  }

  /**
   * Forwards `sharer`'s content (null: nobody's) to every other participant of the meeting. A
   * subscriber gets a content m-line the first time a publisher shares; it stays (silent while that
   * publisher does not share) until the publisher leaves, so sharing on and off costs no
   * renegotiation. A sharer without a content m-line (a room) is ignored.
   */
  setSharer(meetingId: string, sharer: ConnectionId | null): void {
    const before = this.#peers.get(this.#sharers.get(meetingId) ?? '');
    const next = sharer === null ? undefined : this.#peers.get(sharer);
    if (before === next && next !== undefined) return;
    before?.forwardTo.content.clear();
    if (!next?.content || next.meetingId !== meetingId || next.closed) {
      this.#sharers.delete(meetingId);
      return;
    }
    this.#sharers.set(meetingId, next.connection);
    for (const other of this.#peers.values()) {
      if (other === next || other.meetingId !== meetingId || other.closed) continue;
      const existing = other.subscriptions.find(
        (s) => s.publisher === next.connection && s.kind === 'content',
      );
      const subscription = existing ?? this.#contentSubscription(other, next);
      next.forwardTo.content.add(subscription.track);
      if (!existing) void this.#negotiate(other);
    }
    // Subscribers already connected need a keyframe to start decoding the share now.
    this.#requestKeyframe(next, 'content');
  }

  async remove(connection: ConnectionId): Promise<void> {
    const peer = this.#peers.get(connection);
    if (!peer) return;
    peer.closed = true;
    this.#peers.delete(connection);
    if (this.#sharers.get(peer.meetingId) === connection) this.#sharers.delete(peer.meetingId);
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
    for (const targets of Object.values(peer.forwardTo)) targets.clear();
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

  /** Subscribes to a publisher's audio and camera video (forwarded from now on). */
  #subscribe(subscriber: Peer, publisher: Peer): void {
    for (const kind of CAMERA_KINDS)
      publisher.forwardTo[kind].add(this.#addSubscription(subscriber, publisher, kind).track);
  }

  /** The subscriber's content m-line for this publisher (made once; forwarding is setSharer's). */
  #contentSubscription(subscriber: Peer, publisher: Peer): Subscription {
    return (
      subscriber.subscriptions.find((s) => s.publisher === publisher.connection && s.kind === 'content') ??
      this.#addSubscription(subscriber, publisher, 'content')
    );
  }

  /** A sendonly m-line to the subscriber with `a=msid:<publisher participant id> <kind>`. */
  #addSubscription(subscriber: Peer, publisher: Peer, kind: MediaKind): Subscription {
    const track = new MediaStreamTrack({ kind: lineKind(kind) });
    const transceiver = subscriber.pc.addTransceiver(track, { direction: 'sendonly' });
    // werift writes a=msid:<sender.streamIds…> <sender.trackId>: the publisher and the kind.
    transceiver.sender.streamId = publisher.participantId;
    // trackId is typed readonly but is a plain writable field, read only when the SDP is written.
    (transceiver.sender as { trackId: string }).trackId = kind;
    const subscription: Subscription = { publisher: publisher.connection, kind, track, transceiver };
    subscriber.subscriptions.push(subscription);
    if (kind !== 'audio') {
      // A subscriber's decoder asking for a keyframe goes to the publisher's encoder.
      transceiver.sender.onPictureLossIndication.subscribe(() => this.#requestKeyframe(publisher, kind));
    }
    return subscription;
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
    if (kind !== 'audio') sendPli(transceiver, track.ssrc);
  }

  #requestKeyframe(publisher: Peer, kind: 'video' | 'content'): void {
    const incoming = publisher.incoming[kind];
    if (!incoming || incoming.track.ssrc === undefined || publisher.closed) return;
    // Content only while shared: a non-sharer's encoder has nothing to refresh for anyone.
    if (kind === 'content' && this.#sharers.get(publisher.meetingId) !== publisher.connection) return;
    sendPli(incoming.transceiver, incoming.track.ssrc);
  }

  #requestKeyframes(subscriber: Peer): void {
    for (const s of subscriber.subscriptions) {
      if (s.kind === 'audio') continue;
      const publisher = this.#peers.get(s.publisher);
      if (publisher) this.#requestKeyframe(publisher, s.kind);
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
      const kept = this.#opts.mediaAddress ? keepCandidatesOn(gathered, this.#opts.mediaAddress) : gathered;
      const sdp = withOrigin(kept, peer.originId, ++peer.offers);
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
