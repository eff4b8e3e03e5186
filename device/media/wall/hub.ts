// The wall glue in the media worker: the kiosk page sessions (at most 4, sharing one slot
// assignment), which far sender each remote m-line carries, the active speaker, and the forwarding of
// decrypted, still encoded frames: re-packetised per codec, RTP timestamp unchanged. An m-line that
// switches sender, and every m-line of a session that just connected, starts at that sender's next
// keyframe (asked for upstream); a PLI from the page goes upstream (remote) or to the own encoder
// (self, through the engine's KeyframeLimiter). The content m-line carries one member's shared screen
// (receive.ts lets through only an authenticated frame of a current verified member); a new sharer
// takes the line once the current one has been silent for CONTENT_TAKEOVER_MS, so two streams
// forwarded at once (a hostile relay) cannot make it flicker between them.
import type { Logger } from '../../../src/util/log.js';
import { type VideoCodec, isH264Keyframe, isVp8Keyframe, splitAnnexB } from '../bitstream.js';
import { type FromWorker, MAX_WALL_SESSIONS, type WallSlot } from '../ipc.js';
import { packetizeH264, packetizeVp8 } from '../rtp-payload.js';
import { CONTENT_LINE, LINE_KINDS, REMOTE_LINES, SELF_LINE, WallPeer, type WallPeerEvents } from './peer.js';
import { assignSlots, changedLines } from './slots.js';
import { ActiveSpeakerPicker } from './speaker.js';

/** What the hub uses of a WallPeer (tests stand in for it). */
export interface WallPeerPort {
  readonly offer: string;
  readonly mids: string[];
  readonly connected: boolean;
  answer(sdp: string): Promise<void>;
  send(line: number, payloads: readonly Buffer[], timestamp: number): boolean;
  close(): Promise<void>;
  on<K extends keyof WallPeerEvents>(event: K, listener: (...args: WallPeerEvents[K]) => void): unknown;
}

export interface WallHubDeps {
  codec(): VideoCodec;
  /** Ask a far sender for a keyframe (the engine's rate-limited PLI); `content`: of its shared screen. */
  requestRemoteKeyframe(senderIndex: number, content?: boolean): void;
  /** The worker's own encoder (the engine's KeyframeLimiter). */
  requestOwnKeyframe(): void;
  send(msg: FromWorker): void;
  log: Logger;
  /** Default: a real loopback WallPeer. */
  createPeer?(codec: VideoCodec): Promise<WallPeerPort>;
}

interface Session {
  id: string;
  peer: WallPeerPort;
  /** Per m-line: nothing but a keyframe may go out next. */
  needKey: boolean[];
}

interface Sender {
  firstSeen: number;
  lastSpoke: number;
}

/** How long the content line's sharer must be silent before another one's screen replaces it. */
export const CONTENT_TAKEOVER_MS = 1000;

export class WallHub {
  readonly #sessions = new Map<string, Session>();
  #lines: (number | undefined)[] = Array.from({ length: REMOTE_LINES }, () => undefined);
  readonly #senders = new Map<number, Sender>();
  readonly #picker = new ActiveSpeakerPicker();
  #active: number | undefined;
  /** The sender whose shared screen the content m-line carries, and when its last frame came. */
  #content: { sender: number; lastFrame: number } | undefined;
  /** VP8 PictureID per m-line. */
  readonly #pictureIds = LINE_KINDS.map(() => Math.floor(Math.random() * 0x7fff));
  framesForwarded = 0;

  constructor(private readonly deps: WallHubDeps) {}

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Remote m-line → sender index (undefined: idle). */
  get lines(): readonly (number | undefined)[] {
    return this.#lines;
  }

  get activeSpeaker(): number | undefined {
    return this.#active;
  }

  /** The sender shown on the content m-line (undefined: nobody shares). */
  get contentSender(): number | undefined {
    return this.#content?.sender;
  }

  // ---------------------------------------------------------------- sessions

  /** A new session: its offer SDP. A fifth session closes the oldest. */
  async open(id: string): Promise<string> {
    if (this.#sessions.has(id)) throw new Error('wall session exists');
    const peer = await (this.deps.createPeer ?? WallPeer.create)(this.deps.codec());
    const session: Session = { id, peer, needKey: LINE_KINDS.map(() => true) };
    while (this.#sessions.size >= MAX_WALL_SESSIONS) {
      const oldest = this.#sessions.keys().next().value as string;
      this.close(oldest);
    }
    this.#sessions.set(id, session);
    peer.on('keyframeRequest', (line) => this.#pageAskedKeyframe(line));
    peer.on('state', (state) => {
      if (state === 'connected') {
        // Everything starts at a keyframe: ask every sender shown (and the own camera) for one now.
        session.needKey.fill(true);
        for (const s of this.#lines) if (s !== undefined) this.deps.requestRemoteKeyframe(s);
        if (this.#content) this.deps.requestRemoteKeyframe(this.#content.sender, true);
        this.deps.requestOwnKeyframe();
      } else if (state === 'failed' || state === 'closed') {
        if (this.#sessions.get(id) === session) this.close(id);
      }
    });
    return peer.offer;
  }

  /** The page's answer; refused for an unknown session or a second answer. */
  async answer(id: string, sdp: string): Promise<void> {
    const session = this.#sessions.get(id);
    if (!session) throw new Error('unknown wall session');
    await session.peer.answer(sdp);
  }

  close(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    session.peer.close().catch((err: unknown) => this.deps.log.debug({ err }, 'wall close failed'));
  }

  closeAll(): void {
    for (const id of [...this.#sessions.keys()]) this.close(id);
  }

  // ---------------------------------------------------------------- slots

  /** The current slots as the daemon and the page see them. */
  slotsMessage(): FromWorker {
    const first = this.#sessions.values().next().value as Session | undefined;
    const mids = first?.peer.mids ?? LINE_KINDS.map((_, i) => String(i));
    const slots: WallSlot[] = LINE_KINDS.map((kind, i) => {
      const sender =
        i < REMOTE_LINES ? this.#lines[i] : i === CONTENT_LINE ? this.#content?.sender : undefined;
      return { mid: mids[i] ?? String(i), kind, ...(sender !== undefined ? { senderIndex: sender } : {}) };
    });
    return {
      type: 'wall-slots',
      slots,
      ...(this.#active !== undefined ? { activeSpeaker: this.#active } : {}),
    };
  }

  /** Recomputes the assignment; true if it changed (and was reported). */
  #reassign(): boolean {
    const before = this.#lines;
    const after = assignSlots(
      before,
      [...this.#senders].map(([senderIndex, s]) => ({ senderIndex, ...s })),
      REMOTE_LINES,
    );
    const changed = changedLines(before, after);
    this.#lines = after;
    if (changed.length === 0) return false;
    for (const line of changed) {
      for (const s of this.#sessions.values()) s.needKey[line] = true;
      const sender = after[line];
      if (sender !== undefined) this.deps.requestRemoteKeyframe(sender);
    }
    this.deps.send(this.slotsMessage());
    return true;
  }

  /** A far sender left (roster, disconnect): its m-line goes idle. */
  senderGone(senderIndex: number): void {
    if (this.#content?.sender === senderIndex) this.contentGone();
    if (!this.#senders.delete(senderIndex)) return;
    this.#picker.forget(senderIndex);
    const wasActive = this.#active === senderIndex;
    if (wasActive) this.#active = undefined;
    if (!this.#reassign() && wasActive) this.deps.send(this.slotsMessage());
  }

  /** A new far connection: nobody is shown until their frames arrive. */
  reset(): void {
    const hadAny = this.#senders.size > 0 || this.#active !== undefined || this.#content !== undefined;
    this.#content = undefined;
    for (const s of [...this.#senders.keys()]) this.#picker.forget(s);
    this.#senders.clear();
    this.#active = undefined;
    this.#lines = this.#lines.map(() => undefined);
    if (hadAny) this.deps.send(this.slotsMessage());
  }

  /** An audio level of a far sender (dBov) at `now` (ms): may change the active speaker and slots. */
  level(senderIndex: number, dbov: number, now: number): void {
    const active = this.#picker.level(senderIndex, dbov, now);
    if (active === this.#active) return;
    this.#active = active;
    const s = active !== undefined ? this.#senders.get(active) : undefined;
    if (s) s.lastSpoke = now;
    if (!this.#reassign()) this.deps.send(this.slotsMessage());
  }

  // ---------------------------------------------------------------- frames

  #pageAskedKeyframe(line: number): void {
    if (line === SELF_LINE) this.deps.requestOwnKeyframe();
    else if (line === CONTENT_LINE) {
      if (this.#content) this.deps.requestRemoteKeyframe(this.#content.sender, true);
    } else if (line < REMOTE_LINES) {
      const sender = this.#lines[line];
      if (sender !== undefined) this.deps.requestRemoteKeyframe(sender);
    }
  }

  #isKeyframe(frame: Buffer): boolean {
    return this.deps.codec() === 'h264' ? isH264Keyframe(splitAnnexB(frame)) : isVp8Keyframe(frame);
  }

  #packetize(line: number, frame: Buffer): Buffer[] {
    if (this.deps.codec() === 'h264') return packetizeH264(splitAnnexB(frame));
    const id = ((this.#pictureIds[line] as number) + 1) & 0x7fff;
    this.#pictureIds[line] = id;
    return packetizeVp8(frame, id);
  }

  /**
   * A decrypted far frame (H.264 Annex B access unit or VP8 frame) with its sender's RTP timestamp;
   * `keyframe` when the receive path already knows (it parsed the frame), else found here.
   */
  remoteFrame(
    senderIndex: number,
    frame: Buffer,
    timestamp: number,
    keyframe?: boolean,
    now = Date.now(),
  ): void {
    if (!this.#senders.has(senderIndex)) {
      this.#senders.set(senderIndex, { firstSeen: now, lastSpoke: Number.NEGATIVE_INFINITY });
      this.#reassign();
    }
    if (this.#sessions.size === 0) return;
    const line = this.#lines.indexOf(senderIndex);
    if (line < 0) return;
    if (!this.#forward(line, frame, timestamp, keyframe)) this.deps.requestRemoteKeyframe(senderIndex);
  }

  /**
   * A decrypted, authenticated shared-screen frame of a current verified member (receive.ts checks
   * both): onto the content m-line. Another sharer takes the line only once the shown one is silent.
   */
  contentFrame(
    senderIndex: number,
    frame: Buffer,
    timestamp: number,
    keyframe?: boolean,
    now = Date.now(),
  ): void {
    const current = this.#content;
    if (current && current.sender !== senderIndex && now - current.lastFrame < CONTENT_TAKEOVER_MS) return;
    if (current?.sender !== senderIndex) {
      this.#content = { sender: senderIndex, lastFrame: now };
      for (const s of this.#sessions.values()) s.needKey[CONTENT_LINE] = true;
      this.deps.send(this.slotsMessage());
    }
    (this.#content as { lastFrame: number }).lastFrame = now;
    if (this.#sessions.size === 0) return;
    if (!this.#forward(CONTENT_LINE, frame, timestamp, keyframe))
      this.deps.requestRemoteKeyframe(senderIndex, true);
  }

  /** Nobody shares any more (the SFU dropped the content m-line, the meeting ended): the line goes idle. */
  contentGone(): void {
    if (!this.#content) return;
    this.#content = undefined;
    this.deps.send(this.slotsMessage());
  }

  /** Keeps the sharer only while `allowed` (the verified roster) still says so. */
  contentAllowed(allowed: (senderIndex: number) => boolean): void {
    if (this.#content && !allowed(this.#content.sender)) this.contentGone();
  }

  /** The worker's own encoded camera/slate frame (before SFrame): the self-view. */
  selfFrame(frame: Buffer, timestamp: number): void {
    if (this.#sessions.size === 0) return;
    if (!this.#forward(SELF_LINE, frame, timestamp)) this.deps.requestOwnKeyframe();
  }

  /** Sends to every connected session; false if one of them still waits for a keyframe. */
  #forward(line: number, frame: Buffer, timestamp: number, known?: boolean): boolean {
    let keyframe = known;
    let payloads: Buffer[] | undefined;
    let satisfied = true;
    for (const s of this.#sessions.values()) {
      if (!s.peer.connected) continue;
      if (s.needKey[line]) {
        keyframe ??= this.#isKeyframe(frame);
        if (!keyframe) {
          satisfied = false;
          continue;
        }
        s.needKey[line] = false;
      }
      payloads ??= this.#packetize(line, frame);
      if (s.peer.send(line, payloads, timestamp)) this.framesForwarded++;
    }
    return satisfied;
  }
}

export { CONTENT_LINE, SELF_LINE };
