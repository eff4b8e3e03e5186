// What the meeting client needs from media, whichever engine provides it: the media worker under
// its supervisor (GStreamer, real rooms) or the synthetic engine (tests, benchmarks, hosts without
// cameras). The meeting client hands over keys and relays signalling; it never touches frames.
import type { KeysEvent } from '../../src/core/e2ee/index.js';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import type { RosterLabel } from '../media/ipc.js';

export interface MediaPort {
  /** A fresh media session with the SFU: drop any previous PeerConnection; the relay's offer follows. */
  connect(): void;
  disconnect(): void;
  /** Signalling from the relay (offers, candidates). */
  signal(payload: SignalPayload): void;
  /** Signalling the device must send to the relay (answers, candidates). */
  onSignal(listener: (payload: SignalPayload) => void): void;
  /**
   * Per-sender SFrame keys of the current and next epoch, pairwise frame-authentication keys, and
   * whether to send at all (never identity or meeting keys).
   */
  keys(event: KeysEvent): void;
  /**
   * The meeting ended: forget every key of it (send, receive, frame authentication) so nothing is
   * ever sent or accepted under them again. `disconnect` alone keeps keys (a relay reconnect resumes
   * the same meeting).
   */
  endMeeting?(): void;
  /** Gallery labels per sender index, as the roster shows them, and who may show a shared screen. */
  labels(participants: RosterLabel[]): void;
  /** The engine lost its PeerConnection (e.g. the media worker restarted): negotiate again. */
  onReset?(listener: () => void): void;
  close(): Promise<void>;
}
