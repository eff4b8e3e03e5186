// A person's shared screen on a room's wall (issue 12), through the real relay and its SFU
// (startRelay): the room is a real MeetingClient with a real media worker (wall on) and a real
// kiosk-page stand-in (Chromium, test/wall-page.ts); the person is a MeetingClient with a person
// certificate whose media is a werift publisher standing in for the browser: it answers the SFU's
// person offer (audio, camera, content m-lines) and sends a green VP8 picture on the content m-line,
// SFrame-protected under its own KID with frame-authentication tags from the keys its E2EE session
// got. The room shows it on the wall's content line, labelled with the verified name. A second person
// whose frames carry forged authentication tags shares first: nothing of it reaches the wall.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaStreamTrack, RTCPeerConnection, type RTCRtpTransceiver, RtpHeader, RtpPacket } from 'werift';
import type { MediaPort } from '../device/daemon/media-port.js';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { initialState, StateStore } from '../device/daemon/state.js';
import { WorkerMedia } from '../device/daemon/worker-media.js';
import { MediaKeyState, mediaKeysToWire } from '../device/media/key-state.js';
import { packetizeVp8 } from '../device/media/rtp-payload.js';
import { sealAuthenticated } from '../device/media/sender-auth.js';
import type { MediaSupervisor } from '../device/media/supervisor.js';
import { opusCodecParameters, VIDEO_PAYLOAD_TYPE, videoCodecParameters } from '../device/media/transport.js';
import type { KeysEvent } from '../src/core/e2ee/index.js';
import type { SignalPayload } from '../src/core/protocol/relay.js';
import { plausibleCounter, SFrameReceiver, SFrameSender } from '../src/core/sframe/index.js';
import { type CertificateAuthority, TrustStore } from '../src/pki/index.js';
import { issuePersonCertificate, type PersonClaims } from '../src/pki/person.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { latestStats, latestWallSlots, waitFor, wallSessionId, worker } from './media-harness.js';
import { launchWallBrowser, near, type WallBrowser, WallPage } from './wall-page.js';

const ORG = 'Example Corp';
const GREEN = [0, 255, 0];
const LONG = 180_000;

/** VP8 frames of a solid green 320×240 picture (a keyframe every 10), from GStreamer, one file each. */
function greenVp8Frames(dir: string): Buffer[] {
  execFileSync('gst-launch-1.0', [
    '-q',
    'videotestsrc',
    'pattern=green',
    'num-buffers=30',
    '!',
    'video/x-raw,width=320,height=240,framerate=30/1',
    '!',
    'vp8enc',
    'keyframe-max-dist=10',
    'deadline=1',
    '!',
    'multifilesink',
    `location=${join(dir, 'f-%05d.vp8')}`,
  ]);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.vp8'))
    .sort()
    .map((f) => readFileSync(join(dir, f)));
}

/**
 * The browser's media for a person, as far as a room can tell: answers the SFU's person offer,
 * sends `frames` (looped) on the content m-line (the third), sealed with SFrame under the person's
 * KID and frame-authentication tags — or, `forge`, with tags made under keys nobody else holds.
 */
class ContentPublisher implements MediaPort {
  readonly #keys = new MediaKeyState(
    new SFrameReceiver({ replayWindow: 256, plausibleCounter }),
    (kid, baseKey, initialCounter) => new SFrameSender({ kid, baseKey, initialCounter }),
  );
  readonly #listeners: ((p: SignalPayload) => void)[] = [];
  #pc: RTCPeerConnection | undefined;
  readonly #track = new MediaStreamTrack({ kind: 'video' });
  #timer: NodeJS.Timeout | undefined;
  #next = 0;
  #seq = 1000;
  #pictureId = 0;
  sent = 0;

  constructor(
    private readonly frames: Buffer[],
    private readonly forge = false,
  ) {}

  connect(): void {
    this.disconnect();
    const pc = new RTCPeerConnection({
      iceServers: [],
      codecs: { video: [videoCodecParameters('vp8')], audio: [opusCodecParameters()] },
      headerExtensions: { video: [], audio: [] },
      iceAdditionalHostAddresses: ['127.0.0.1'],
      iceInterfaceAddresses: { udp4: '127.0.0.1' },
      iceUseIpv6: false,
    });
    this.#pc = pc;
    pc.onIceCandidate.subscribe((c) => {
      const json = c?.toJSON();
      if (!json?.candidate) return;
      this.#emit({
        kind: 'candidate',
        candidate: json.candidate,
        sdpMid: json.sdpMid ?? null,
        sdpMLineIndex: json.sdpMLineIndex ?? null,
      });
    });
    // A PLI from the SFU (a subscriber switched to us): start again at the first frame, a keyframe.
    pc.onTransceiverAdded.subscribe((t: RTCRtpTransceiver) =>
      t.sender.onRtcp.subscribe(() => {
        this.#next = 0;
      }),
    );
    this.#timer = setInterval(() => this.#tick(), 33);
  }

  disconnect(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    void this.#pc?.close();
    this.#pc = undefined;
  }

  signal(payload: SignalPayload): void {
    void this.#signal(payload).catch(() => undefined);
  }

  async #signal(payload: SignalPayload): Promise<void> {
    const pc = this.#pc;
    if (!pc) return;
    if (payload.kind === 'candidate') {
      await pc.addIceCandidate({
        candidate: payload.candidate,
        sdpMid: payload.sdpMid ?? undefined,
        sdpMLineIndex: payload.sdpMLineIndex ?? undefined,
      });
      return;
    }
    await pc.setRemoteDescription({ type: payload.type, sdp: payload.sdp });
    if (payload.type !== 'offer') return;
    // The person offer: m0 audio, m1 camera, m2 content (recvonly at the relay); then subscriptions.
    const content = pc.getTransceivers()[2];
    if (content?.kind === 'video' && content.sender.track !== this.#track) {
      content.setDirection('sendonly');
      await content.sender.replaceTrack(this.#track);
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.#emit({ kind: 'description', type: 'answer', sdp: answer.sdp });
  }

  onSignal(listener: (payload: SignalPayload) => void): void {
    this.#listeners.push(listener);
  }

  keys(event: KeysEvent): void {
    const wire = mediaKeysToWire(event);
    if (this.forge) {
      // Same SFrame key (it is a member), but authentication tags under keys the room does not have.
      wire.auth = wire.auth.map((a) => ({ ...a, send: Buffer.alloc(32, 7).toString('base64') }));
    }
    this.#keys.set(wire);
  }

  labels(): void {}

  async close(): Promise<void> {
    this.disconnect();
  }

  #emit(p: SignalPayload): void {
    for (const l of this.#listeners) l(p);
  }

  #tick(): void {
    if (this.#pc?.connectionState !== 'connected') return;
    const keys = this.#keys.sendKeys();
    if (!keys) return;
    const frame = this.frames[this.#next % this.frames.length] as Buffer;
    this.#next++;
    const sealed = sealAuthenticated('vp8', keys.sender, keys.auth, frame) as Uint8Array;
    this.#pictureId = (this.#pictureId + 1) & 0x7fff;
    const payloads = packetizeVp8(sealed, this.#pictureId);
    const ts = Math.round(Date.now() * 90) % 2 ** 32;
    payloads.forEach((payload, i) => {
      this.#seq = (this.#seq + 1) & 0xffff;
      const header = new RtpHeader({
        sequenceNumber: this.#seq,
        timestamp: ts,
        marker: i === payloads.length - 1,
        payloadType: VIDEO_PAYLOAD_TYPE,
      });
      this.#track.writeRtp(new RtpPacket(header, payload));
    });
    this.sent++;
  }
}

let dir: string;
let frames: Buffer[];
let orgCa: CertificateAuthority;
let relay: Relay | undefined;
let browser: WallBrowser | undefined;
const clients: MeetingClient[] = [];
const workers: MediaSupervisor[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'room-content-'));
  frames = greenVp8Frames(dir);
  orgCa = await createDevelopmentCa(ORG);
  relay = await startRelay({ log: silentLogger, trust: { caPems: [orgCa.certPem] }, videoCodec: 'VP8' });
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.stop();
  await Promise.all(workers.map((w) => w.stop()));
  await browser?.close();
  await relay?.close();
  rmSync(dir, { recursive: true, force: true });
});

function client(credentials: { certificatePem: string; identityKey: KeyObject }, media: MediaPort) {
  const state = new StateStore(initialState('test'));
  const c = new MeetingClient({
    relayUrl: (relay as Relay).url,
    credentials,
    trust: new TrustStore({ orgCaPem: orgCa.certPem }),
    state,
    log: silentLogger,
    media,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    tickMs: 100,
  });
  clients.push(c);
  return { client: c, state };
}

async function person(claims: PersonClaims, publisher: ContentPublisher) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyRaw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
  const issued = await issuePersonCertificate({ ca: orgCa, publicKeyRaw, person: claims });
  const p = client({ certificatePem: issued.certPem, identityKey: privateKey }, publisher);
  await p.client.start();
  return p;
}

describe('a person’s shared screen on the room’s wall', () => {
  it(
    'shows an authenticated member’s content on the content line with the verified name; forged content never',
    async () => {
      browser = await launchWallBrowser();
      // The room: a real media worker with the wall on, under a real meeting client.
      const w = worker({ codec: 'vp8', pattern: 'blue', wall: true, tiles: 9 });
      workers.push(w);
      await w.start();
      const slots = latestWallSlots(w);
      const stats = latestStats(w);
      const device = await issueDevelopmentDevice(orgCa, { roomName: 'Boardroom', org: ORG });
      const room = client(
        { certificatePem: device.certificatePem, identityKey: device.identityKey },
        new WorkerMedia(w),
      );
      await room.client.start();
      const { meetingId } = await room.client.startMeeting();

      const mallory = await person(
        { name: 'Mallory Forge', email: 'mallory@example.org', org: ORG },
        new ContentPublisher(frames, true),
      );
      const aliceMedia = new ContentPublisher(frames);
      const alice = await person({ name: 'Alice Smith', email: 'alice@example.org', org: ORG }, aliceMedia);
      for (const p of [mallory, alice]) {
        await p.client.joinMeeting(meetingId);
        const id = p.client.participantId ?? '';
        await waitFor('join request', () =>
          room.state.get().meeting?.waiting.some((x) => x.participantId === id),
        );
        await room.client.admit(id);
        await waitFor('admitted with keys', () => p.client.keyHistory.length > 0);
      }
      await waitFor('three in the roster', () => room.state.get().meeting?.roster.length === 3);

      // The kiosk page's wall connection.
      const id = wallSessionId();
      const { sdp } = await w.openWall(id);
      const page = await WallPage.open(browser);
      w.answerWall(id, await page.answer(sdp));
      const contentMid = await waitFor(
        'content slot',
        () => slots()?.slots.find((s) => s.kind === 'content')?.mid,
      );

      // Mallory shares: the frames decrypt (it holds the meeting key) but fail authentication.
      await mallory.client.shareScreen(true);
      await waitFor('forged frames refused', () => (stats()?.counters.authFailures ?? 0) > 10, 60_000);
      expect(slots()?.slots.find((s) => s.kind === 'content')?.senderIndex).toBeUndefined();
      expect((await page.report()).get(contentMid)?.painted ?? 0).toBe(0);
      expect(stats()?.counters.contentFramesDecrypted ?? 0).toBe(0);

      // Alice shares (a new share ends Mallory's): her green on the content line, named from her certificate.
      await alice.client.shareScreen(true);
      const aliceIndex = room.state
        .get()
        .meeting?.roster.find((r) => r.participantId === alice.client.participantId)?.senderIndex;
      expect(aliceIndex).toBeDefined();
      await waitFor(
        'Alice’s screen in the content slot',
        () => slots()?.slots.find((s) => s.kind === 'content' && s.senderIndex === aliceIndex),
        60_000,
      );
      await waitFor(
        'green on the content line',
        async () => near((await page.report()).get(contentMid)?.avg, GREEN),
        60_000,
      );
      expect(aliceMedia.sent).toBeGreaterThan(0);
      // What the kiosk labels the content tile with: the roster entry of that sender index.
      const entry = room.state.get().meeting?.roster.find((r) => r.senderIndex === aliceIndex);
      expect(entry).toMatchObject({ kind: 'person', roomName: 'Alice Smith', email: 'alice@example.org' });
      // No camera tile for a screen: the remote lines stay empty (neither person sends a camera).
      expect(slots()?.slots.filter((s) => s.kind === 'remote' && s.senderIndex !== undefined)).toEqual([]);

      // Alice stops: the content line goes idle at once (the relay's roster no longer names her).
      await alice.client.shareScreen(false);
      await waitFor(
        'content slot idle',
        () => slots()?.slots.find((s) => s.kind === 'content')?.senderIndex === undefined,
        20_000,
      );
      await page.close();
      w.closeWall(id);
    },
    LONG,
  );
});
