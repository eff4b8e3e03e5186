// The typed IPC protocol between the daemon (MediaSupervisor) and the media worker (child_process.fork,
// JSON serialisation). Every message is validated on arrival; a malformed one is logged and dropped.
// Bigints travel as decimal strings and keys as base64, so the wire stays plain JSON. The worker never
// receives identity or meeting keys: only per-sender SFrame base keys of the current and next epoch
// and the pairwise frame-authentication keys of the current members.
import { type Static, Type } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { SignalPayload } from '../../src/core/protocol/relay.js';

const Kid = Type.String({ pattern: '^[0-9]{1,20}$', description: 'SFrame KID, decimal' });
const Key = Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$', description: '32-byte base key, base64' });
const Codec = Type.Union([Type.Literal('h264'), Type.Literal('vp8')]);
/** Kiosk pages the worker serves at once; the daemon's broker keeps the same limit (oldest goes). */
export const MAX_WALL_SESSIONS = 4;

/** Chosen by the daemon (random, 128 bits+, base64url). */
const WallSessionId = Type.String({ pattern: '^[A-Za-z0-9_-]{16,64}$' });

/** One video m-line of the wall connection and what it carries now. */
export const WallSlot = Type.Object({
  mid: Type.String({ maxLength: 8 }),
  /** remote: a far participant's camera; self: this room's camera (self-view); content: a shared screen. */
  kind: Type.Union([Type.Literal('remote'), Type.Literal('self'), Type.Literal('content')]),
  /** The far participant (KID sender index) whose frames this m-line carries; absent when idle. */
  senderIndex: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffff })),
});
export type WallSlot = Static<typeof WallSlot>;

const DeviceStatus = Type.Union([Type.Literal('ok'), Type.Literal('missing'), Type.Literal('restarting')]);

export const SettingsPatch = Type.Partial(
  Type.Object({
    profile: Type.String({ pattern: '^[a-z0-9-]+$', maxLength: 32 }),
    codec: Codec,
    width: Type.Integer({ minimum: 64, maximum: 3840 }),
    height: Type.Integer({ minimum: 64, maximum: 2160 }),
    fps: Type.Integer({ minimum: 1, maximum: 60 }),
    videoKbps: Type.Integer({ minimum: 50, maximum: 20000 }),
    audioBps: Type.Integer({ minimum: 6000, maximum: 256000 }),
    keyframeInterval: Type.Integer({ minimum: 1, maximum: 3000 }),
    tiles: Type.Integer({ minimum: 1, maximum: 16 }),
    galleryWidth: Type.Integer({ minimum: 64, maximum: 3840 }),
    galleryHeight: Type.Integer({ minimum: 64, maximum: 2160 }),
    probeWidth: Type.Integer({ minimum: 8, maximum: 1920 }),
    probeHeight: Type.Integer({ minimum: 8, maximum: 1080 }),
    pattern: Type.String({ pattern: '^[a-z0-9-]+$', maxLength: 32 }),
    toneHz: Type.Integer({ minimum: 20, maximum: 20000 }),
    cameraDevice: Type.String({ maxLength: 128 }),
    micDevice: Type.String({ maxLength: 128 }),
    speakerDevice: Type.String({ maxLength: 128 }),
    /** Benchmarks: stamp frames and report capture→decoded latency (adds tiny probe appsinks). */
    latencyProbe: Type.Boolean(),
    /** Benchmarks: send frames without SFrame (the baseline of the encryption overhead). */
    plaintextForBenchmark: Type.Boolean(),
    /**
     * Where decrypted far-end video goes. true: still encoded, to the kiosk page over the loopback
     * wall connection (docs/media.md "The wall"); the GStreamer gallery is not built. false: the
     * GStreamer gallery → the profile's display (tests that probe pixels, the benchmark baseline).
     */
    wall: Type.Boolean(),
    /** Echo cancellation + noise suppression on the microphone (webrtcdsp, probe on the speaker). */
    echoCancel: Type.Boolean(),
    /**
     * Tests and benchmarks (profile `test`): a simulated room — the speaker output comes back into
     * the microphone after this delay (ms) and gain (dB ≤ 0), mixed with the microphone's own source.
     * Absent: no acoustic path.
     */
    echoLoopDelayMs: Type.Integer({ minimum: 0, maximum: 1000 }),
    echoLoopGainDb: Type.Number({ minimum: -60, maximum: 0 }),
    /** Test sources: videotestsrc horizontal-speed (pixels per frame), so a static pattern moves. */
    patternSpeed: Type.Integer({ minimum: -100, maximum: 100 }),
    /** Lip sync: extra delay (ms) on the speaker path when audio would lead the wall's video. */
    audioDelayMs: Type.Integer({ minimum: 0, maximum: 500 }),
  }),
);
export type SettingsPatch = Static<typeof SettingsPatch>;

export const ToWorker = Type.Union([
  /** Build and play the pipelines (idempotent; new settings rebuild them). */
  Type.Object({ type: Type.Literal('start'), settings: SettingsPatch }),
  Type.Object({ type: Type.Literal('stop') }),
  /** SFrame keys: what to send with now, and every key to accept (current and next epoch). */
  Type.Object({
    type: Type.Literal('keys'),
    epoch: Type.Integer({ minimum: 0 }),
    sendKid: Kid,
    sendKey: Key,
    receiveKeys: Type.Array(Type.Object({ kid: Kid, key: Key }), { maxItems: 1024 }),
    /**
     * First SFrame CTR for sendKid. A restarted worker gets the same keys again; starting its counter
     * past anything its predecessor can have used keeps every (key, CTR) pair unique (GCM nonce).
     */
    counterBase: Type.Optional(Kid),
    /** False: send nothing at all (rekeying, leader lost); receiving goes on. */
    sending: Type.Boolean(),
    /**
     * Pairwise frame-authentication keys, one per other member: `send` tags this device's frames
     * for that peer, `receive` checks the peer's frames (docs/sframe.md, "Sender authentication").
     */
    auth: Type.Array(
      Type.Object({
        peerIndex: Type.Integer({ minimum: 0, maximum: 0xffff }),
        send: Key,
        receive: Key,
      }),
      { maxItems: 255 },
    ),
    /** The meeting these keys belong to (diagnostics; the key bytes are what counts). */
    meetingId: Type.Optional(Type.String({ maxLength: 128 })),
  }),
  /** The meeting ended: forget every key (send, receive, frame authentication). */
  Type.Object({ type: Type.Literal('clear-keys') }),
  /** Gallery labels per sender index (from the KID), as the roster shows them. */
  Type.Object({
    type: Type.Literal('roster'),
    participants: Type.Array(
      Type.Object({
        senderIndex: Type.Integer({ minimum: 0, maximum: 0xffff }),
        name: Type.String({ maxLength: 64 }),
        /** False for a key holder whose certificate did not verify on the device: its content is never shown. */
        verified: Type.Optional(Type.Boolean()),
        /**
         * The member the relay's roster names as sharing its screen (`sharing`), if verified: the only
         * sender whose content m-line frames go to the wall's content line.
         */
        sharing: Type.Optional(Type.Boolean()),
      }),
      { maxItems: 256 },
    ),
  }),
  /** Open the PeerConnection: 'offer' for peer-to-peer, 'answer' when the SFU offers. */
  Type.Object({
    type: Type.Literal('connect'),
    role: Type.Union([Type.Literal('offer'), Type.Literal('answer')]),
  }),
  Type.Object({ type: Type.Literal('disconnect') }),
  Type.Object({ type: Type.Literal('signal'), payload: SignalPayload }),
  Type.Object({
    type: Type.Literal('controls'),
    micMuted: Type.Optional(Type.Boolean()),
    cameraOff: Type.Optional(Type.Boolean()),
    volume: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  }),
  Type.Object({ type: Type.Literal('keyframe') }),
  Type.Object({ type: Type.Literal('ping'), id: Type.Integer({ minimum: 0 }) }),
  /** Tests and diagnostics: the display and speaker as the test profile's appsinks see them. */
  Type.Object({ type: Type.Literal('probe'), id: Type.Integer({ minimum: 0 }) }),
  /** Tests: make the camera pipeline fail with a real GStreamer error (profiles with `camerafault`). */
  Type.Object({ type: Type.Literal('inject-fault'), target: Type.Literal('camera') }),
  Type.Object({ type: Type.Literal('shutdown') }),
  /** The kiosk page asks for the wall: the worker makes a loopback PeerConnection and offers. */
  Type.Object({ type: Type.Literal('wall-open'), sessionId: WallSessionId }),
  /** The kiosk page's answer (its DTLS fingerprint: only that page can complete the connection). */
  Type.Object({
    type: Type.Literal('wall-answer'),
    sessionId: WallSessionId,
    sdp: Type.String({ minLength: 1, maxLength: 65536 }),
  }),
  Type.Object({ type: Type.Literal('wall-close'), sessionId: WallSessionId }),
]);
export type ToWorker = Static<typeof ToWorker>;

const Counters = Type.Object({
  videoFramesSent: Type.Integer(),
  audioFramesSent: Type.Integer(),
  videoFramesDecrypted: Type.Integer(),
  audioFramesDecrypted: Type.Integer(),
  decryptFailures: Type.Integer(),
  /** Frames dropped because sender authentication failed (forged, no tag for us, no trailer). */
  authFailures: Type.Integer(),
  /** Frames dropped for an implausible SFrame counter jump. */
  implausibleCounters: Type.Integer(),
  framesLost: Type.Integer(),
  keyframesRequested: Type.Integer(),
  keyframesForced: Type.Integer(),
  displayFrames: Type.Integer(),
  /** Time spent in SFrame seal/open (µs), to report the cost of encryption. */
  cryptoMicros: Type.Integer(),
  /** Frames forwarded to kiosk pages over wall connections (all sessions). */
  wallFramesForwarded: Type.Optional(Type.Integer()),
  /** Screen-content frames that authenticated and came from a current verified member. */
  contentFramesDecrypted: Type.Optional(Type.Integer()),
  /** Screen-content frames that authenticated but whose sender is not a verified member sharing now. */
  contentFramesDropped: Type.Optional(Type.Integer()),
});

/** A fresh set of counters, all zero (the optional ones start absent). */
export function zeroCounters(): Counters {
  return {
    videoFramesSent: 0,
    audioFramesSent: 0,
    videoFramesDecrypted: 0,
    audioFramesDecrypted: 0,
    decryptFailures: 0,
    authFailures: 0,
    implausibleCounters: 0,
    framesLost: 0,
    keyframesRequested: 0,
    keyframesForced: 0,
    displayFrames: 0,
    cryptoMicros: 0,
  };
}
export type Counters = Static<typeof Counters>;

export const FromWorker = Type.Union([
  Type.Object({ type: Type.Literal('ready'), pid: Type.Integer() }),
  Type.Object({ type: Type.Literal('pong'), id: Type.Integer() }),
  Type.Object({ type: Type.Literal('signal'), payload: SignalPayload }),
  Type.Object({
    type: Type.Literal('status'),
    camera: DeviceStatus,
    microphone: DeviceStatus,
    pipelines: Type.Union([Type.Literal('stopped'), Type.Literal('playing')]),
    transport: Type.String(),
  }),
  Type.Object({
    type: Type.Literal('stats'),
    counters: Counters,
    /** Remote senders seen, by sender index, with their frame counts. */
    remotes: Type.Array(
      Type.Object({
        senderIndex: Type.Integer(),
        slot: Type.Integer(),
        videoFrames: Type.Integer(),
        audioFrames: Type.Integer(),
        /** Frames out of the decoder (only counted with latencyProbe). */
        decodedFrames: Type.Integer(),
      }),
    ),
    rssBytes: Type.Integer(),
    cpuUserMicros: Type.Integer(),
    cpuSystemMicros: Type.Integer(),
    /** Capture→decoded latency samples (ms) since the last stats, when latencyProbe is on. */
    latencyMs: Type.Array(Type.Number()),
  }),
  Type.Object({
    type: Type.Literal('probe'),
    id: Type.Integer(),
    display: Type.Optional(
      Type.Object({ width: Type.Integer(), height: Type.Integer(), rgb: Type.String() }),
    ),
    /** Recent speaker output, mono S16LE 48 kHz, base64. */
    speaker: Type.Optional(Type.String()),
    labels: Type.Array(Type.String()),
  }),
  Type.Object({ type: Type.Literal('wall-offer'), sessionId: WallSessionId, sdp: Type.String() }),
  Type.Object({ type: Type.Literal('wall-error'), sessionId: WallSessionId, message: Type.String() }),
  /**
   * What each wall m-line carries and who speaks (sender index, from decoded audio levels with
   * hysteresis). Sent on every change and after each wall-open.
   */
  Type.Object({
    type: Type.Literal('wall-slots'),
    slots: Type.Array(WallSlot, { maxItems: 32 }),
    activeSpeaker: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffff })),
  }),
  Type.Object({
    type: Type.Literal('error'),
    code: Type.Union([
      Type.Literal('template'),
      Type.Literal('missing-element'),
      Type.Literal('pipeline'),
      Type.Literal('transport'),
      Type.Literal('ipc'),
    ]),
    message: Type.String(),
    pipeline: Type.Optional(Type.String()),
    element: Type.Optional(Type.String()),
  }),
]);
export type FromWorker = Static<typeof FromWorker>;

/** One entry of the 'roster' message: a gallery label, and whether that sender's screen may be shown. */
export type RosterLabel = Extract<ToWorker, { type: 'roster' }>['participants'][number];

const toWorker = TypeCompiler.Compile(ToWorker);
const fromWorker = TypeCompiler.Compile(FromWorker);

function validate<T>(
  check: { Check(v: unknown): boolean; Errors(v: unknown): Iterable<{ path: string; message: string }> },
  value: unknown,
): { ok: true; message: T } | { ok: false; error: string } {
  if (check.Check(value)) return { ok: true, message: value as T };
  const first = [...check.Errors(value)][0];
  return { ok: false, error: first ? `${first.path || '/'}: ${first.message}` : 'invalid message' };
}

export const parseToWorker = (v: unknown) => validate<ToWorker>(toWorker, v);
export const parseFromWorker = (v: unknown) => validate<FromWorker>(fromWorker, v);

// ---- bigint and key codecs for the 'keys' message ----
export const kidToWire = (kid: bigint): string => kid.toString(10);
export const kidFromWire = (kid: string): bigint => BigInt(kid);
export const keyToWire = (key: Uint8Array): string => Buffer.from(key).toString('base64');
export const keyFromWire = (key: string): Uint8Array => new Uint8Array(Buffer.from(key, 'base64'));
