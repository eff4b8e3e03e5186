// The meeting keys one participant holds, by epoch, and which one it sends with. Receive keys cover
// the certified epoch, any newer epoch already unwrapped (peers may switch first) and, for
// `overlapMs` after a switch, the previous epoch (frames still in flight). Older keys are wiped.
import { E2eeError } from './errors.js';
import type { FrameAuthKey } from './frame-auth.js';
import { deriveSenderBaseKey, type MeetingIdentity, makeKid } from './sender-keys.js';

export interface SenderKey {
  kid: bigint;
  epoch: number;
  senderIndex: number;
  key: Uint8Array; // SFrame base key
}

/** What the media worker needs: the key it encrypts with and every key it may decrypt with. */
export interface KeysEvent {
  type: 'keys';
  meetingId: string;
  epoch: number; // the certified epoch this participant sends with
  sendKid: bigint;
  sendKey: Uint8Array;
  receiveKeys: SenderKey[];
  /** false: the media engine must send NOTHING (rekeying after a membership change, leader lost). */
  sending: boolean;
  /** One per other current member: pairwise frame-authentication keys (frame-auth.ts). */
  auth: FrameAuthKey[];
}

export type KeyRingSnapshot = Pick<KeysEvent, 'epoch' | 'sendKid' | 'sendKey' | 'receiveKeys'>;

export class KeyRing {
  // Sender keys are bound to the meeting; its creation nonce is known only once the chain starts.
  readonly #meeting: () => MeetingIdentity;
  readonly #keys = new Map<number, Uint8Array>();
  // SFrame base keys already derived, per epoch: a keys event for 100 senders would otherwise
  // redo ~300 HKDFs on every change.
  readonly #derived = new Map<number, Map<number, Uint8Array>>();
  #highest = 0;
  #sendEpoch = 0;
  #previousEpoch = 0;
  #previousUntil = 0;
  #certifiedPending = 0; // a certified epoch whose key has not arrived yet

  constructor(meeting: () => MeetingIdentity) {
    this.#meeting = meeting;
  }

  get highestEpoch(): number {
    return this.#highest;
  }
  get sendEpoch(): number {
    return this.#sendEpoch;
  }
  /** An epoch a heartbeat certified whose key has not arrived (0 if none). */
  get awaitingEpoch(): number {
    const epoch = this.#certifiedPending;
    // Also below a newer uncertified key we hold (keys out of order, protocol.md §4.4).
    return epoch > this.#sendEpoch && !this.#keys.has(epoch) ? epoch : 0;
  }
  has(epoch: number): boolean {
    return this.#keys.has(epoch);
  }
  key(epoch: number): Uint8Array | undefined {
    return this.#keys.get(epoch);
  }

  /** Stores the key of a new epoch; refuses any epoch that does not exceed every epoch seen. */
  add(epoch: number, meetingKey: Uint8Array, now: number): void {
    // The one exception to "epochs only increase": the certified epoch we lack (keys out of order).
    if (epoch <= this.#highest && epoch !== this.awaitingEpoch) {
      throw new E2eeError('stale-epoch', `key epoch ${epoch} does not exceed ${this.#highest}`);
    }
    this.#keys.set(epoch, meetingKey);
    this.#highest = Math.max(this.#highest, epoch);
    if (this.#certifiedPending === epoch) this.certify(epoch, now);
  }

  /** A heartbeat certified `epoch`: send with it (now, or as soon as its key arrives). */
  certify(epoch: number, now: number): boolean {
    if (epoch <= this.#sendEpoch) return false;
    if (!this.#keys.has(epoch)) {
      this.#certifiedPending = Math.max(this.#certifiedPending, epoch);
      return false;
    }
    this.#wipe(this.#previousEpoch);
    this.#previousEpoch = this.#sendEpoch;
    this.#previousUntil = now;
    this.#sendEpoch = epoch;
    for (const e of [...this.#keys.keys()]) {
      if (e < epoch && e !== this.#previousEpoch) this.#wipe(e);
    }
    return true;
  }

  /** Drops the previous epoch once `overlapMs` have passed since the switch; true if it did. */
  expire(now: number, overlapMs: number): boolean {
    if (this.#previousEpoch && now >= this.#previousUntil + overlapMs) {
      this.#wipe(this.#previousEpoch);
      this.#previousEpoch = 0;
      return true;
    }
    return false;
  }

  /** Forget everything (removed from the meeting). */
  clear(): void {
    for (const e of [...this.#keys.keys()]) this.#wipe(e);
    this.#sendEpoch = 0;
    this.#previousEpoch = 0;
  }

  /**
   * The media worker's view, for `ownSenderIndex` among `senderIndexes` (the current members). The
   * key buffers are copies the caller owns: the ring wipes its own when an epoch retires.
   */
  snapshot(ownSenderIndex: number, senderIndexes: number[]): KeyRingSnapshot | undefined {
    const sendMeetingKey = this.#keys.get(this.#sendEpoch);
    if (!sendMeetingKey) return undefined;
    const receiveKeys: SenderKey[] = [];
    for (const [epoch, meetingKey] of [...this.#keys.entries()].sort((a, b) => a[0] - b[0])) {
      for (const senderIndex of senderIndexes) {
        if (senderIndex === ownSenderIndex) continue;
        const key = this.#senderKey(meetingKey, epoch, senderIndex);
        receiveKeys.push({ kid: makeKid(epoch, senderIndex), epoch, senderIndex, key: Uint8Array.from(key) });
      }
    }
    return {
      epoch: this.#sendEpoch,
      sendKid: makeKid(this.#sendEpoch, ownSenderIndex),
      sendKey: Uint8Array.from(this.#senderKey(sendMeetingKey, this.#sendEpoch, ownSenderIndex)),
      receiveKeys,
    };
  }

  #senderKey(meetingKey: Uint8Array, epoch: number, senderIndex: number): Uint8Array {
    let perEpoch = this.#derived.get(epoch);
    if (!perEpoch) {
      perEpoch = new Map();
      this.#derived.set(epoch, perEpoch);
    }
    let key = perEpoch.get(senderIndex);
    if (!key) {
      key = deriveSenderBaseKey(meetingKey, epoch, senderIndex, this.#meeting());
      perEpoch.set(senderIndex, key);
    }
    return key;
  }

  #wipe(epoch: number): void {
    this.#keys.get(epoch)?.fill(0);
    this.#keys.delete(epoch);
    for (const key of this.#derived.get(epoch)?.values() ?? []) key.fill(0);
    this.#derived.delete(epoch);
  }
}
