// Screen share through the SFU (issue 12): a person's offer has a third publish m-line (content);
// `share` makes the relay forward it to every other participant on an m-line labelled
// `a=msid:<publisher> content` — never before, never after, never from a non-sharer. One sharer per
// meeting (a new share replaces the old one), the sharer leaving ends it, the roster says who shares,
// rooms cannot share, and share toggles have a budget of their own.
// Real werift PeerConnections on loopback; each peer labels what it receives by the m-line's msid.
import { EventEmitter } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaStreamTrack, RTCPeerConnection, type RTCRtpTransceiver, RtpHeader, RtpPacket } from 'werift';
import WebSocket from 'ws';
import { RelayConnection, RelayRequestError } from '../device/daemon/relay-connection.js';
import type { ServerMessage, SignalPayload } from '../src/core/protocol/relay.js';
import type { CertificateAuthority } from '../src/pki/index.js';
import { issuePersonCertificate } from '../src/pki/person.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Identity, MeetingRegistry } from '../src/relay/meetings.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { codecsFor, onlyInterface } from '../src/relay/sfu.js';
import { applyWeriftFixes } from '../src/relay/werift-fixes.js';
import { silentLogger } from '../src/util/log.js';

type Published = 'audio' | 'video' | 'content';
const ORG = 'Sealroom Demo Org';

interface Got {
  /** The m-line's msid as this peer's werift saw it: publisher participant id and kind. */
  from: string;
  kind: string;
  payload: string;
}

/** A werift participant: publishes `publishes` on the offer's first m-lines, records the rest. */
class MediaPeer extends EventEmitter<{ signal: [SignalPayload] }> {
  readonly pc: RTCPeerConnection;
  readonly offers: string[] = [];
  readonly got: Got[] = [];
  readonly keyframeRequests: Record<Published, number> = { audio: 0, video: 0, content: 0 };
  readonly #tracks = new Map<Published, MediaStreamTrack>();
  readonly #seq = new Map<Published, number>();
  readonly #published = new Set<RTCRtpTransceiver>();
  #queue = Promise.resolve();

  constructor(
    readonly name: string,
    readonly publishes: Published[],
  ) {
    super();
    applyWeriftFixes();
    for (const kind of publishes) {
      this.#tracks.set(kind, new MediaStreamTrack({ kind: kind === 'audio' ? 'audio' : 'video' }));
      this.#seq.set(kind, 1000);
    }
    this.pc = new RTCPeerConnection({
      iceServers: [],
      codecs: codecsFor('VP8'),
      headerExtensions: { audio: [], video: [] },
      bundlePolicy: 'max-bundle',
      ...onlyInterface('127.0.0.1'),
    });
    const seen = new Set<MediaStreamTrack>();
    this.pc.ontrack = ({ track, transceiver }) => {
      if (seen.has(track)) return;
      seen.add(track);
      // Labels are read per packet: werift may reuse a transceiver for a later m-line.
      track.onReceiveRtp.subscribe((rtp) =>
        this.got.push({
          from: transceiver.receiver.remoteStreamId ?? '',
          kind: transceiver.receiver.remoteTrackId ?? '',
          payload: rtp.payload.toString(),
        }),
      );
    };
  }

  get connected(): boolean {
    return this.pc.connectionState === 'connected';
  }

  handleSignal(payload: SignalPayload): void {
    this.#queue = this.#queue.then(() => this.#handle(payload)).catch(() => undefined);
  }

  send(kind: Published, n: number): void {
    const track = this.#tracks.get(kind);
    if (!track) return;
    const seq = ((this.#seq.get(kind) ?? 0) + 1) & 0xffff;
    this.#seq.set(kind, seq);
    const header = new RtpHeader({
      sequenceNumber: seq,
      timestamp: (n * 960) >>> 0,
      marker: true,
      payloadType: kind === 'audio' ? 111 : 96,
    });
    track.writeRtp(new RtpPacket(header, Buffer.from(`${this.name}|${kind}|${n}|${'x'.repeat(200)}`)));
  }

  /** Packets from `sender` of `kind` that arrived on an m-line labelled `<participantId> <label>`. */
  count(sender: MediaPeer, kind: Published, participantId: string, label: string = kind): number {
    const prefix = `${sender.name}|${kind}|`;
    return this.got.filter(
      (g) => g.payload.startsWith(prefix) && g.from === participantId && g.kind === label,
    ).length;
  }

  /** Every packet of `sender`'s `kind`, whatever its m-line. */
  all(sender: MediaPeer, kind: Published): Got[] {
    return this.got.filter((g) => g.payload.startsWith(`${sender.name}|${kind}|`));
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
    this.offers.push(payload.sdp);
    for (const t of this.pc.getTransceivers()) if (t.currentDirection === 'inactive') t.usedForSender = true;
    await this.pc.setRemoteDescription({ type: 'offer', sdp: payload.sdp });
    const transceivers = this.pc.getTransceivers();
    for (const [index, kind] of this.publishes.entries()) {
      const t = transceivers[index];
      const track = this.#tracks.get(kind);
      if (!t || !track || this.#published.has(t)) continue;
      this.#published.add(t);
      t.setDirection('sendonly');
      await t.sender.replaceTrack(track);
      if (kind !== 'audio') t.sender.onPictureLossIndication.subscribe(() => this.keyframeRequests[kind]++);
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

interface Member {
  name: string;
  connection: RelayConnection;
  peer: MediaPeer;
  participantId: string;
  roster?: Extract<ServerMessage, { type: 'roster' }>;
  rosters: number;
}

let ca: CertificateAuthority;
let relay: Relay;
let timer: NodeJS.Timeout | undefined;
const members: Member[] = [];
let meetingId = '';

async function personCredentials(name: string, email: string) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const issued = await issuePersonCertificate({
    ca,
    publicKeyRaw: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12)),
    person: { name, email, org: ORG },
  });
  return { certificatePem: issued.certPem, identityKey: privateKey };
}

async function member(name: string, kind: 'room' | 'person'): Promise<Member> {
  const credentials =
    kind === 'room'
      ? await issueDevelopmentDevice(ca, { roomName: name }).then((d) => ({
          certificatePem: d.certificatePem,
          identityKey: d.identityKey,
        }))
      : await personCredentials(name, `${name.toLowerCase()}@example.org`);
  const connection = await RelayConnection.connect(relay.url, credentials);
  const m: Member = {
    name,
    connection,
    peer: new MediaPeer(name, kind === 'room' ? ['audio', 'video'] : ['audio', 'video', 'content']),
    participantId: '',
    rosters: 0,
  };
  connection.on('message', (msg) => {
    if (msg.type === 'signal') m.peer.handleSignal(msg.payload);
    if (msg.type === 'roster') {
      m.roster = msg;
      m.rosters++;
    }
  });
  m.peer.on('signal', (payload) => connection.send({ type: 'signal', payload }));
  members.push(m);
  return m;
}

async function admit(leader: Member, m: Member): Promise<void> {
  const joined = await m.connection.request({ type: 'join', meetingId });
  if (joined.type !== 'meeting') throw new Error('no join');
  m.participantId = joined.participantId;
  await leader.connection.request({ type: 'admit', participantId: m.participantId });
}

function mediaOn(m: Member): void {
  m.connection.send({ type: 'media', enabled: true });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RelayRequestError) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** The m-sections of an SDP: kind, direction and msid. */
function sections(sdp: string): { kind: string; direction: string; msid: string }[] {
  return sdp
    .split(/\r\nm=/)
    .slice(1)
    .map((s) => ({
      kind: s.split(' ')[0] ?? '',
      direction: /\r\na=(sendonly|recvonly|sendrecv|inactive)/.exec(s)?.[1] ?? '',
      msid: /\r\na=msid:([^\r]*)/.exec(s)?.[1] ?? '',
    }));
}

const settle = (ms = 400) => new Promise((r) => setTimeout(r, ms));
let A: Member;
let B: Member;
let P: Member;
let Q: Member;

beforeAll(async () => {
  ca = await createDevelopmentCa(ORG);
  relay = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] }, videoCodec: 'VP8' });
  A = await member('A', 'room');
  B = await member('B', 'room');
  P = await member('P', 'person');
  Q = await member('Q', 'person');
  const created = await A.connection.request({ type: 'create' });
  if (created.type !== 'meeting') throw new Error('no meeting');
  meetingId = created.meetingId;
  A.participantId = created.participantId;
  for (const m of [B, P, Q]) await admit(A, m);
  // Everyone publishes every 20 ms what it has: P and Q their content too, sharing or not.
  let n = 0;
  timer = setInterval(() => {
    n++;
    for (const m of members) if (m.peer.connected) for (const kind of m.peer.publishes) m.peer.send(kind, n);
  }, 20);
  for (const m of [A, B, P, Q]) mediaOn(m);
  for (const [to, from] of [
    [A, P],
    [P, A],
    [B, Q],
    [Q, B],
  ] as const)
    await until(() => to.peer.count(from.peer, 'video', from.participantId) > 5, 20_000);
}, 60_000);

/** expect.poll for hooks (where vitest does not allow it). */
async function until(ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('media did not start in time');
    await settle(50);
  }
}

afterAll(async () => {
  if (timer) clearInterval(timer);
  for (const m of members) {
    m.connection.terminate();
    await m.peer.close();
  }
  await relay?.close();
});

describe('content m-lines', () => {
  it("a person's offer publishes audio, video and content; a room's only audio and video; msid names publisher and kind", () => {
    const person = sections(P.peer.offers[0] ?? '');
    expect(person.slice(0, 3)).toEqual([
      { kind: 'audio', direction: 'recvonly', msid: '' },
      { kind: 'video', direction: 'recvonly', msid: '' },
      { kind: 'video', direction: 'recvonly', msid: '' },
    ]);
    const room = sections(A.peer.offers[0] ?? '');
    expect(room.slice(0, 2).map((s) => s.direction)).toEqual(['recvonly', 'recvonly']);
    const latest = sections(A.peer.offers.at(-1) ?? '');
    expect(latest.slice(2).every((s) => s.direction === 'sendonly' || s.direction === 'inactive')).toBe(true);
    const msids = latest.filter((s) => s.direction === 'sendonly').map((s) => s.msid);
    for (const m of [B, P, Q])
      expect(msids).toEqual(expect.arrayContaining([`${m.participantId} audio`, `${m.participantId} video`]));
    // Nobody shares yet: no content line, and no content packet reaches anyone.
    expect(msids.some((s) => s.endsWith(' content'))).toBe(false);
    for (const m of members) {
      expect(m.roster?.sharing).toBeNull();
      expect(m.peer.all(P.peer, 'content')).toHaveLength(0);
      expect(m.peer.all(Q.peer, 'content')).toHaveLength(0);
    }
  });

  it("share: everyone else gets the sharer's content on an m-line `<sharer> content`, with a keyframe request", async () => {
    const plis = P.peer.keyframeRequests.content;
    await P.connection.request({ type: 'share', enabled: true });
    for (const m of [A, B, Q]) {
      await expect.poll(() => m.roster?.sharing, { timeout: 5000 }).toBe(P.participantId);
      await expect
        .poll(() => m.peer.count(P.peer, 'content', P.participantId), { timeout: 15_000 })
        .toBeGreaterThan(10);
      expect(sections(m.peer.offers.at(-1) ?? '').map((s) => s.msid)).toContain(`${P.participantId} content`);
    }
    expect(P.roster?.sharing).toBe(P.participantId);
    await expect.poll(() => P.peer.keyframeRequests.content, { timeout: 5000 }).toBeGreaterThan(plis);
    // Never back to the sharer, never on another m-line; the camera stays on its own.
    expect(P.peer.all(P.peer, 'content')).toHaveLength(0);
    for (const m of [A, B, Q]) {
      const content = m.peer.all(P.peer, 'content');
      expect(content.every((g) => g.from === P.participantId && g.kind === 'content')).toBe(true);
      const camera = m.peer.all(P.peer, 'video');
      expect(camera.every((g) => g.from === P.participantId && g.kind === 'video')).toBe(true);
      expect(m.peer.all(Q.peer, 'content')).toHaveLength(0);
    }
  });

  it('a second sharer replaces the first; share off stops it; sharing again needs no new offer', async () => {
    await Q.connection.request({ type: 'share', enabled: true });
    for (const m of [A, B, P]) {
      await expect.poll(() => m.roster?.sharing, { timeout: 5000 }).toBe(Q.participantId);
      await expect
        .poll(() => m.peer.count(Q.peer, 'content', Q.participantId), { timeout: 15_000 })
        .toBeGreaterThan(10);
    }
    await settle();
    const fromP = A.peer.all(P.peer, 'content').length;
    await settle(600);
    expect(A.peer.all(P.peer, 'content').length).toBe(fromP);
    // P stopping its (no longer current) share changes nothing.
    const rostersBefore = A.rosters;
    await P.connection.request({ type: 'share', enabled: false });
    await settle(200);
    expect(A.rosters).toBe(rostersBefore);
    expect(A.roster?.sharing).toBe(Q.participantId);

    await Q.connection.request({ type: 'share', enabled: false });
    await expect.poll(() => A.roster?.sharing, { timeout: 5000 }).toBeNull();
    await settle();
    const fromQ = B.peer.all(Q.peer, 'content').length;
    await settle(600);
    expect(B.peer.all(Q.peer, 'content').length).toBe(fromQ);

    const offers = A.peer.offers.length;
    await P.connection.request({ type: 'share', enabled: true });
    await expect
      .poll(() => A.peer.all(P.peer, 'content').length, { timeout: 10_000 })
      .toBeGreaterThan(fromP + 10);
    expect(A.peer.offers.length).toBe(offers);
  });

  it('every re-offer to a peer keeps its o= session id and raises the version (RFC 3264 §8)', () => {
    for (const m of [A, B, P, Q]) {
      const origins = m.peer.offers.map((sdp) => /^o=\S+ (\S+) (\S+) /m.exec(sdp)?.slice(1) ?? []);
      expect(origins.length).toBeGreaterThan(1);
      expect(new Set(origins.map(([id]) => id)).size).toBe(1);
      const versions = origins.map(([, v]) => Number(v));
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] ?? 0);
    }
    const ids = [A, B, P, Q].map((m) => /^o=\S+ (\S+) /m.exec(m.peer.offers[0] ?? '')?.[1]);
    expect(new Set(ids).size).toBe(4);
  });

  it('a participant starting media during a share gets the content at once, with a keyframe request', async () => {
    expect(A.roster?.sharing).toBe(P.participantId);
    const C = await member('C', 'room');
    await admit(A, C);
    await expect.poll(() => C.roster?.sharing).toBe(P.participantId);
    const plis = P.peer.keyframeRequests.content;
    mediaOn(C);
    await expect
      .poll(() => C.peer.count(P.peer, 'content', P.participantId), { timeout: 20_000 })
      .toBeGreaterThan(10);
    expect(C.peer.all(Q.peer, 'content')).toHaveLength(0);
    expect(P.peer.keyframeRequests.content).toBeGreaterThan(plis);
  }, 30_000);

  it('the sharer leaving ends the share: roster says nobody, content stops, the others go on', async () => {
    const gone = new Promise<void>((resolve) =>
      A.connection.on('message', (m) => {
        if (m.type === 'roster' && m.sharing === null) resolve();
      }),
    );
    await P.connection.request({ type: 'leave' });
    await gone;
    await settle();
    const fromP = B.peer.all(P.peer, 'content').length;
    const fromA = B.peer.count(A.peer, 'video', A.participantId);
    await settle(600);
    expect(B.peer.all(P.peer, 'content').length).toBe(fromP);
    await expect
      .poll(() => B.peer.count(A.peer, 'video', A.participantId), { timeout: 10_000 })
      .toBeGreaterThan(fromA + 10);
    expect(relay.sfu.sharer(meetingId)).toBeUndefined();
  });
});

describe('who may share', () => {
  it('rooms cannot share; a person without media, one still waiting, or not authenticated is refused', async () => {
    expect(await refusal(A.connection.request({ type: 'share', enabled: true }))).toBe('no-content');
    // P left: it is in no meeting.
    expect(await refusal(P.connection.request({ type: 'share', enabled: true }))).toBe('not-admitted');
    // R joins but is not admitted yet.
    const R = await member('R', 'person');
    const joined = await R.connection.request({ type: 'join', meetingId });
    if (joined.type !== 'meeting') throw new Error('no join');
    expect(await refusal(R.connection.request({ type: 'share', enabled: true }))).toBe('not-admitted');
    // Admitted, no media yet: nothing to share from.
    await A.connection.request({ type: 'admit', participantId: joined.participantId });
    expect(await refusal(R.connection.request({ type: 'share', enabled: true }))).toBe('no-media');
    expect(A.roster?.sharing).toBeNull();
    // Before authentication: refused and closed (4401).
    const ws = new WebSocket(relay.url);
    const messages: ServerMessage[] = [];
    ws.on('message', (raw: Buffer) => messages.push(JSON.parse(raw.toString()) as ServerMessage));
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'share', id: 1, enabled: true }));
    expect(await new Promise<number>((r) => ws.on('close', (c) => r(c)))).toBe(4401);
    expect(messages.map((m) => m.type)).toEqual(['challenge', 'error']);
    expect(relay.sfu.sharer(meetingId)).toBeUndefined();
  });

  it('a flood of share toggles is rate limited: few rosters reach the others, the relay says so', async () => {
    const rostersAtB = B.rosters;
    const errors: string[] = [];
    Q.connection.on('message', (m) => {
      if (m.type === 'error') errors.push(m.code);
    });
    const started = performance.now();
    // Sent without waiting for replies: a refused one gets none (one rate-limited error per second).
    for (let i = 0; i < 60; i++) Q.connection.send({ type: 'share', enabled: i % 2 === 0 } as never);
    await expect.poll(() => errors.includes('rate-limited'), { timeout: 5000 }).toBe(true);
    await settle(300);
    const elapsedS = (performance.now() - started) / 1000;
    expect(errors).toContain('rate-limited');
    // A burst of 5, then 1/s: each change is one roster to each member.
    expect(B.rosters - rostersAtB).toBeLessThanOrEqual(5 + Math.ceil(elapsedS));
    expect(Q.connection.open).toBe(true);
  }, 20_000);
});

describe('MeetingRegistry.share (the state machine alone)', () => {
  const room: Identity = {
    kind: 'room',
    deviceId: 'sr-room',
    roomName: 'Room',
    org: ORG,
    email: '',
    certificate: '',
  };
  const personIdentity = (email: string): Identity => ({
    kind: 'person',
    deviceId: `person:${email}`,
    roomName: email,
    org: ORG,
    email,
    certificate: '',
  });
  const rostersOf = (r: { outgoing: { message: ServerMessage }[] }) =>
    r.outgoing.map((o) => o.message).filter((m) => m.type === 'roster');

  it('one sharer; a new one replaces it; a non-sharer stopping changes nothing; leaving or ending clears it', () => {
    const registry = new MeetingRegistry();
    const created = registry.create('c-room', room, 1);
    const meeting = created.outgoing[0]?.message;
    if (meeting?.type !== 'meeting') throw new Error('no meeting');
    const ids: Record<string, string> = {};
    for (const [c, email] of [
      ['c-p', 'p@example.org'],
      ['c-q', 'q@example.org'],
      ['c-w', 'w@example.org'],
    ] as const) {
      const joined = registry.join(c, personIdentity(email), 1, meeting.meetingId).outgoing[0]?.message;
      if (joined?.type !== 'meeting') throw new Error('no join');
      ids[c] = joined.participantId;
      if (c !== 'c-w') registry.admit('c-room', 2, joined.participantId);
    }
    // Waiting (c-w) and unknown connections cannot share.
    expect(() => registry.share('c-w', 3, true)).toThrow(expect.objectContaining({ code: 'not-admitted' }));
    expect(() => registry.share('c-nobody', 3, true)).toThrow(
      expect.objectContaining({ code: 'not-admitted' }),
    );

    let r = registry.share('c-p', 4, true);
    expect(r.media).toEqual([{ kind: 'share', meetingId: meeting.meetingId, sharer: 'c-p' }]);
    expect(rostersOf(r).map((m) => m.type === 'roster' && m.sharing)).toEqual([
      ids['c-p'],
      ids['c-p'],
      ids['c-p'],
    ]);
    // Again: nothing new to say.
    expect(registry.share('c-p', 5, true)).toEqual({
      outgoing: [{ to: 'c-p', message: { type: 'ok', id: 5 } }],
      media: [],
    });
    r = registry.share('c-q', 6, true);
    expect(r.media).toEqual([{ kind: 'share', meetingId: meeting.meetingId, sharer: 'c-q' }]);
    expect(registry.share('c-p', 7, false).media).toEqual([]);
    expect(registry.sharerOf('c-room')).toBe('c-q');
    r = registry.leave('c-q', 8);
    expect(rostersOf(r).every((m) => m.type === 'roster' && m.sharing === null)).toBe(true);
    expect(registry.sharerOf('c-room')).toBeNull();
    registry.share('c-p', 9, true);
    r = registry.share('c-p', 10, false);
    expect(r.media).toEqual([{ kind: 'share', meetingId: meeting.meetingId, sharer: null }]);
    // People never lead: neither create nor take a hand-over.
    expect(() => registry.create('c-x', personIdentity('x@example.org'), 11)).toThrow(
      expect.objectContaining({ code: 'rooms-only' }),
    );
    expect(() => registry.handover('c-room', 12, ids['c-p'] ?? '')).toThrow(
      expect.objectContaining({ code: 'rooms-only' }),
    );
    registry.share('c-p', 13, true);
    registry.end('c-room', 14);
    expect(registry.sharerOf('c-p')).toBeNull();
  });
});
