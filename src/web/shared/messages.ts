// The web participant's three message channels, typed (docs/interop.md, "The web participant"):
//
//   page ──(PageToE2ee)──▶ E2EE worker ──(E2eeToPage)──▶ page          (worker.postMessage)
//   E2EE worker ──(E2eeToTransform)──▶ transform worker                  (a MessagePort the page hands over)
//   page ──(PageToTransform)──▶ transform worker ──(TransformToPage)──▶ page  (stats only)
//
// Keys travel only on the E2EE worker → transform worker port: no message the page sends or receives
// carries key material. The page sees names only as the E2EE worker verified them from certificates.
// Types only (plus one tiny guard): imported by the page, both workers and the tests.

/** SDP or ICE of the page's one RTCPeerConnection with the relay's SFU (the relay always offers). */
export type SignalPayload =
  | { kind: 'description'; type: 'offer' | 'answer'; sdp: string }
  | { kind: 'candidate'; candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null };

/** What the page got from `GET /api/people/trust` (same origin as the page's code). */
export interface TrustAnchorsJson {
  orgCaPems: string[];
  partnerCaPems: string[];
  revokedSerials: string[];
}

// ---------------------------------------------------------------- page → E2EE worker

export type PageToE2ee =
  /**
   * Join the meeting (never create). `keyPair.privateKey` is the person's non-extractable Ed25519
   * CryptoKey (structured-cloned into the worker; it signs the relay challenge and the E2EE binding).
   * `transformPort` (transferred) reaches the transform worker: keys go there and nowhere else.
   */
  | {
      type: 'start';
      relayUrl: string;
      /** The organisation's relays: where a clustered relay's redirect may send the worker. */
      relayUrls?: string[];
      meetingId: string;
      certificatePem: string;
      trust: TrustAnchorsJson;
      keyPair: CryptoKeyPair;
      transformPort: MessagePort;
    }
  /** The page's answer and ICE candidates, for the relay's SFU. */
  | { type: 'signal'; payload: SignalPayload }
  /** Start/stop showing the screen (the page attaches the track to the content sender itself). */
  | { type: 'share'; enabled: boolean }
  /** Local mute state, shown back in the view only (the relay protocol has no mute). */
  | { type: 'mute'; audio: boolean; video: boolean }
  /** Leave the meeting: the worker says goodbye to the relay, wipes the transform's keys, stops. */
  | { type: 'leave' };

// ---------------------------------------------------------------- E2EE worker → page

export type MeetingStatus =
  | 'connecting' // opening the relay connection, authenticating, asking to join
  | 'waiting' // in the relay's waiting list / not yet in the verified participant list
  | 'admitted' // in the leader's signed list: keys follow
  | 'denied' // the leader said no
  | 'left' // we left
  | 'ended' // the meeting ended, or the leader removed us
  | 'refused' // the relay refused us (certificate, origin, no such meeting, …) or our own cert does not verify
  | 'error'; // connection lost or an unexpected failure

/** A roster member as this worker verified it: every field from a certificate checked here. */
export interface VerifiedMember {
  participantId: string;
  senderIndex: number;
  kind: 'room' | 'person';
  /** Person: the certificate's CN; room: its room name. */
  name: string;
  /** Person: the certificate's rfc822Name; room: ''. */
  email: string;
  org: string;
  leader: boolean;
  self: boolean;
}

export interface MeetingView {
  meetingId: string;
  /** Our participant id ('' before the relay answered the join). */
  participantId: string;
  /** The security code of the signed participant list; absent until the leader's certificate verified here. */
  securityCode?: string;
  /** Leader of the verified list ('' before it arrived). */
  leaderId: string;
  /** Members of the signed list whose certificates verified here, by sender index. */
  members: VerifiedMember[];
  /** Participant ids whose certificates did not verify here (never named; the chain stops there). */
  refused: string[];
  /** Our media may go out (false while rekeying or the leader is silent: the transform sends nothing). */
  sending: boolean;
  /** The verified member whose screen goes in the content slot (relay-supplied id, kept only if verified). */
  sharer: string | null;
  /** The key epoch in use (a number, no key material). */
  epoch: number;
  /** What the page told us (echoed so every view is complete). */
  muted: { audio: boolean; video: boolean };
}

export type E2eeToPage =
  | { type: 'status'; status: MeetingStatus; text: string }
  | { type: 'view'; view: MeetingView }
  /** The SFU's offer and ICE candidates for the page's RTCPeerConnection. */
  | { type: 'signal'; payload: SignalPayload }
  /** Outcome of a `share` request. */
  | { type: 'share'; enabled: boolean; ok: boolean; text: string };

// ---------------------------------------------------------------- E2EE worker → transform worker (port)

/** Keys for the transform worker; SFrame base keys and frame-authentication keys, raw bytes. */
export interface TransformKeys {
  type: 'keys';
  epoch: number;
  /** KID as a decimal string (KIDs are 64-bit). */
  sendKid: string;
  sendKey: Uint8Array;
  receiveKeys: { kid: string; key: Uint8Array }[];
  /** One per other member: pairwise frame-authentication keys (docs/sframe.md §12). */
  auth: { peerIndex: number; send: Uint8Array; receive: Uint8Array }[];
  /** false: send nothing at all (rekeying, leader lost). */
  sending: boolean;
}

export type E2eeToTransform = TransformKeys | { type: 'wipe' };

/** Transform worker → E2EE worker (same port): keys applied. */
export type TransformToE2ee = { type: 'keys-set'; epoch: number };

// ---------------------------------------------------------------- page ↔ transform worker

/**
 * `new RTCRtpScriptTransform(transformWorker, options)`: which stream this transform runs on.
 * `source` tells camera from screen on video sends and on receives (from the msid the SFU put in the
 * offer); `codec` from the negotiated SDP, used only when the frame's metadata has no mimeType.
 */
export interface TransformOptions {
  side: 'send' | 'receive';
  kind: 'audio' | 'video';
  source?: 'microphone' | 'camera' | 'content';
  codec?: 'vp8' | 'h264';
  /** Receive: the publisher's participant id (from the msid), for per-sender stats only. */
  participantId?: string;
}

export type PageToTransform =
  /** The E2EE worker's keys port (transferred). Sent once, before any transform starts; a second one is ignored. */
  { type: 'port'; port: MessagePort } | { type: 'stats'; id: number };

/** Counters of one stream class; no key material. */
export interface StreamStats {
  /** Frames sealed and handed on (send). */
  sent: number;
  /** Frames opened and handed to the decoder (receive). */
  opened: number;
  /**
   * Receive refusals by code (BAD_TAG, NO_TAG, AUTH_FAILED, UNKNOWN_KEY, REPLAY, NO_KEYS, …): dropped,
   * never decoded. EMPTY counts the empty audio frames Chromium hands over now and then (harmless).
   */
  failed: Record<string, number>;
  /** Send: frames dropped because there was no key or sending was off. */
  dropped: number;
}

export interface TransformStats {
  /** Keys: `${side}-${source}` (send-microphone, send-camera, send-content, receive-audio, receive-video, receive-content). */
  streams: Record<string, StreamStats>;
  /** Epoch of the keys in use (0: none). */
  epoch: number;
  sending: boolean;
}

export type TransformToPage = { type: 'stats'; id: number; stats: TransformStats };

// ---------------------------------------------------------------- guards

const TYPES_TO_PAGE = new Set(['status', 'view', 'signal', 'share']);

/** True for a well-formed E2eeToPage type tag (the page ignores anything else). */
export function isE2eeToPage(value: unknown): value is E2eeToPage {
  return (
    typeof value === 'object' &&
    value !== null &&
    TYPES_TO_PAGE.has(String((value as { type?: unknown }).type))
  );
}
