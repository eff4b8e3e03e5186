// The page's one RTCPeerConnection with the relay's SFU. The relay always offers (docs/relay.md): the
// first audio and video m-lines and, for a person, a second video m-line are where this page publishes
// (microphone, camera, screen); every later sendonly m-line carries another participant's stream,
// labelled by `a=msid:<participant id> <audio|video|content>`. Every sender and receiver gets an
// RTCRtpScriptTransform running the transform worker, which seals and opens SFrame with keys this
// thread never sees. Screen sharing swaps the content sender's track (replaceTrack): no renegotiation.
import type { SignalPayload, TransformOptions } from '../shared/messages.js';
import { type MediaLabel, type OfferSection, parseOffer, publishLines, subscriptions } from './sdp.js';

export interface RemoteStream {
  mid: string;
  publisher: string;
  label: MediaLabel;
  track: MediaStreamTrack;
}

export interface TileStats {
  mid: string;
  participantId: string;
  /** As the tile's data-kind: a camera or a shared screen. */
  kind: 'camera' | 'content';
  framesDecoded: number;
  width?: number;
  height?: number;
}

type Source = 'microphone' | 'camera' | 'content';

export class Call {
  readonly remote = new Map<string, RemoteStream>();
  #pc: RTCPeerConnection | undefined;
  #publish: Partial<Record<Source, string>> | undefined;
  #senders: Partial<Record<Source, RTCRtpSender>> = {};
  #tracks: Partial<Record<Source, MediaStreamTrack | null>> = {};
  /** Transceivers that already have their transforms (by object: mids can be recycled). */
  #prepared = new WeakSet<RTCRtpTransceiver>();
  #queue: Promise<void> = Promise.resolve();
  /** DTLS fingerprint and ICE ufrag of the relay's last offer: which PeerConnection there we talk to. */
  #identity: string | undefined;
  #early: RTCIceCandidateInit[] = [];
  readonly errors: string[] = [];

  constructor(
    private readonly transformWorker: Worker,
    private readonly send: (payload: SignalPayload) => void,
    private readonly changed: () => void,
  ) {}

  get connectionState(): RTCPeerConnectionState {
    return this.#pc?.connectionState ?? 'new';
  }

  /** Whether the relay gave this page a line to share its screen on. */
  get canShare(): boolean {
    return !!this.#senders.content;
  }

  /** The track to send from this source (null: send nothing). Takes effect now or at the next offer. */
  async setTrack(source: Source, track: MediaStreamTrack | null): Promise<void> {
    this.#tracks[source] = track;
    await this.#senders[source]?.replaceTrack(track);
  }

  /** Applies the relay's signalling strictly in order (a candidate must not overtake its offer). */
  signal(payload: SignalPayload): Promise<void> {
    this.#queue = this.#queue
      .then(async () => {
        if (payload.kind === 'description') {
          if (payload.type !== 'offer') throw new Error('the relay sent an answer; it always offers');
          await this.#answer(payload.sdp);
          for (const c of this.#early.splice(0)) await this.#pc?.addIceCandidate(c);
        } else {
          const c = {
            candidate: payload.candidate,
            sdpMid: payload.sdpMid ?? null,
            sdpMLineIndex: payload.sdpMLineIndex ?? null,
          };
          if (this.#pc?.remoteDescription) await this.#pc.addIceCandidate(c);
          else if (this.#early.length < 64) this.#early.push(c);
        }
      })
      .catch((err: Error) => {
        if (this.errors.length < 50) this.errors.push(err.message);
      });
    return this.#queue;
  }

  #connection(): RTCPeerConnection {
    if (this.#pc) return this.#pc;
    const pc = new RTCPeerConnection({
      iceServers: [],
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    pc.onicecandidate = (e) => {
      if (e.candidate?.candidate) {
        this.send({
          kind: 'candidate',
          candidate: e.candidate.candidate,
          sdpMid: e.candidate.sdpMid,
          sdpMLineIndex: e.candidate.sdpMLineIndex,
        });
      }
    };
    pc.onconnectionstatechange = () => this.changed();
    this.#pc = pc;
    return pc;
  }

  async #answer(sdp: string): Promise<void> {
    // Another DTLS certificate (a relay restart) or other ICE credentials (the relay never restarts
    // ICE on a connection, so: a new PeerConnection there, e.g. after we reconnected) mean another
    // PeerConnection at the relay: start over on a fresh one. Not o=: werift puts a random session
    // id in every offer, re-offers included.
    const fingerprint = /^a=fingerprint:(.+)$/m.exec(sdp)?.[1]?.trim();
    const ufrag = /^a=ice-ufrag:(.+)$/m.exec(sdp)?.[1]?.trim();
    const identity = fingerprint && ufrag ? `${fingerprint} ${ufrag}` : undefined;
    if (this.#pc && identity && this.#identity && identity !== this.#identity) this.#reset();
    this.#identity = identity;
    const pc = this.#connection();
    const sections = parseOffer(sdp);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    // Transforms go on synchronously, before any other await: Chromium ignored a transform set after
    // replaceTrack() or setLocalDescription() and sent frames in the clear (test/browser/page.ts).
    this.#publish ??= publishLines(sections);
    const byMid = new Map(sections.map((s) => [s.mid, s]));
    const subs = subscriptions(sections);
    const transceivers = pc.getTransceivers();
    for (const t of transceivers) {
      if (this.#prepared.has(t) || !t.mid) continue;
      this.#prepared.add(t);
      this.#attach(t, byMid.get(t.mid), subs.get(t.mid)?.label);
    }
    const publishing: Source[] = [];
    for (const source of ['microphone', 'camera', 'content'] as const) {
      const mid = this.#publish[source];
      const t = transceivers.find((x) => x.mid === mid);
      if (!t) continue;
      t.direction = 'sendonly';
      if (this.#senders[source] !== t.sender) {
        this.#senders[source] = t.sender;
        publishing.push(source);
      }
    }
    for (const source of publishing) await this.#senders[source]?.replaceTrack(this.#tracks[source] ?? null);
    this.#collectRemote(transceivers, subs);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ kind: 'description', type: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
    this.changed();
  }

  #attach(t: RTCRtpTransceiver, section: OfferSection | undefined, label: MediaLabel | undefined): void {
    const kind = t.receiver.track.kind === 'audio' ? 'audio' : 'video';
    const codec = section?.codec;
    const isPublish = (s: Source) => this.#publish?.[s] === t.mid;
    const sendSource: Source = isPublish('content') ? 'content' : kind === 'audio' ? 'microphone' : 'camera';
    const send: TransformOptions = { side: 'send', kind, source: sendSource, ...(codec ? { codec } : {}) };
    const receive: TransformOptions = {
      side: 'receive',
      kind,
      ...(label === 'content' ? { source: 'content' as const } : {}),
      ...(codec ? { codec } : {}),
      ...(section?.publisher ? { participantId: section.publisher } : {}),
    };
    t.sender.transform = new RTCRtpScriptTransform(this.transformWorker, send);
    t.receiver.transform = new RTCRtpScriptTransform(this.transformWorker, receive);
  }

  #collectRemote(
    transceivers: RTCRtpTransceiver[],
    subs: Map<string, { publisher: string; label: MediaLabel }>,
  ): void {
    const live = new Set<string>();
    for (const t of transceivers) {
      const sub = t.mid ? subs.get(t.mid) : undefined;
      if (!t.mid || !sub || t.currentDirection === 'stopped') continue;
      live.add(t.mid);
      const had = this.remote.get(t.mid);
      // A recycled m-line may now carry someone else: replace the entry, keep the track.
      if (!had || had.publisher !== sub.publisher || had.label !== sub.label) {
        this.remote.set(t.mid, {
          mid: t.mid,
          publisher: sub.publisher,
          label: sub.label,
          track: t.receiver.track,
        });
      }
    }
    for (const mid of [...this.remote.keys()]) if (!live.has(mid)) this.remote.delete(mid);
  }

  /** Decoded frames per received video stream (inbound-rtp by mid). */
  async tileStats(): Promise<TileStats[]> {
    const pc = this.#pc;
    if (!pc) return [];
    const report = await pc.getStats();
    const out: TileStats[] = [];
    for (const s of report.values()) {
      if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
      const r = this.remote.get(String(s.mid ?? ''));
      if (!r) continue;
      out.push({
        mid: r.mid,
        participantId: r.publisher,
        kind: r.label === 'content' ? 'content' : 'camera',
        framesDecoded: s.framesDecoded ?? 0,
        width: s.frameWidth,
        height: s.frameHeight,
      });
    }
    return out;
  }

  /** Drops the connection and everything negotiated on it; the tracks to send stay. */
  #reset(): void {
    this.#pc?.close();
    this.#pc = undefined;
    this.#publish = undefined;
    this.#senders = {};
    this.#prepared = new WeakSet();
    this.#early = [];
    this.remote.clear();
  }

  close(): void {
    this.#reset();
    this.#identity = undefined;
  }
}
