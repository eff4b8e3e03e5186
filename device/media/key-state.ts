// The media worker's keys for one meeting: the SFrame sender, the SFrame receiver's keys, the
// pairwise frame-authentication keys, and whether sending is allowed. Rebuilt from each 'keys'
// message by key BYTES, not only by KID: a repeated KID in another meeting is another key, and must
// never keep encrypting under the old one. Cleared when the meeting ends.
import { FrameAuthSender, FrameAuthVerifier } from '../../src/core/frame-auth/node.js';
import type { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { type ToWorker, keyFromWire, keyToWire, kidFromWire, kidToWire } from './ipc.js';

export type WireKeys = Omit<Extract<ToWorker, { type: 'keys' }>, 'type'>;

/** Keys as the daemon holds them (the E2EE core's KeysEvent fits). */
export interface MediaKeys {
  epoch: number;
  sendKid: bigint;
  sendKey: Uint8Array;
  /** Every key to accept: all senders of the current epoch, and of the next one once known. */
  receiveKeys: { kid: bigint; key: Uint8Array }[];
  /** False: send nothing (rekeying, leader lost). Default true. */
  sending?: boolean;
  /**
   * Pairwise frame-authentication keys, one per other member (docs/sframe.md, "Sender
   * authentication"). Without them nobody can verify this device's frames, nor it theirs.
   */
  auth?: { peerIndex: number; send: Uint8Array; receive: Uint8Array }[];
  meetingId?: string;
}

export function mediaKeysToWire(keys: MediaKeys): WireKeys {
  return {
    epoch: keys.epoch,
    sendKid: kidToWire(keys.sendKid),
    sendKey: keyToWire(keys.sendKey),
    receiveKeys: keys.receiveKeys.map((k) => ({ kid: kidToWire(k.kid), key: keyToWire(k.key) })),
    sending: keys.sending ?? true,
    auth: (keys.auth ?? []).map((a) => ({
      peerIndex: a.peerIndex,
      send: keyToWire(a.send),
      receive: keyToWire(a.receive),
    })),
    ...(keys.meetingId !== undefined ? { meetingId: keys.meetingId } : {}),
  };
}

type MakeSender = (kid: bigint, baseKey: Uint8Array, initialCounter: bigint) => SFrameSender;

const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), b) === 0;

export class MediaKeyState {
  #sender: SFrameSender | undefined;
  #sendKid: bigint | undefined;
  #sendKey: Uint8Array = new Uint8Array(0);
  #auth: FrameAuthSender | undefined;
  #verifier = new FrameAuthVerifier(-1, []);
  #sending = false;
  #receiveKids = new Set<bigint>();

  constructor(
    readonly receiver: SFrameReceiver,
    private readonly makeSender: MakeSender,
  ) {}

  get verifier(): FrameAuthVerifier {
    return this.#verifier;
  }

  get sending(): boolean {
    return this.#sending;
  }

  /** What to protect an outgoing frame with, or undefined: then send nothing. */
  sendKeys(): { sender: SFrameSender; auth: FrameAuthSender } | undefined {
    if (!this.#sending || !this.#sender || !this.#auth) return undefined;
    return { sender: this.#sender, auth: this.#auth };
  }

  /** Applies a keys message; `newSender` when the SFrame sender was rebuilt (new KID or new key). */
  set(k: WireKeys): { newSender: boolean } {
    const sendKid = kidFromWire(k.sendKid);
    const sendKey = keyFromWire(k.sendKey);
    let newSender = false;
    if (sendKid !== this.#sendKid || !sameBytes(sendKey, this.#sendKey)) {
      const initialCounter = k.counterBase ? kidFromWire(k.counterBase) : 0n;
      this.#sender = this.makeSender(sendKid, sendKey, initialCounter);
      this.#sendKey.fill(0);
      this.#sendKey = sendKey;
      this.#sendKid = sendKid;
      newSender = true;
    }
    const next = new Set<bigint>();
    for (const { kid, key } of k.receiveKeys) {
      const id = kidFromWire(kid);
      this.receiver.setKey(id, keyFromWire(key)); // a changed key starts a fresh replay window
      next.add(id);
    }
    for (const old of this.#receiveKids) if (!next.has(old)) this.receiver.removeKey(old);
    this.#receiveKids = next;
    const self = Number(sendKid & 0xffffn);
    const peers = k.auth.filter((a) => a.peerIndex !== self);
    this.#auth = new FrameAuthSender(
      peers.map((a) => ({ peerIndex: a.peerIndex, key: keyFromWire(a.send) })),
    );
    this.#verifier = new FrameAuthVerifier(
      self,
      peers.map((a) => ({ peerIndex: a.peerIndex, key: keyFromWire(a.receive) })),
    );
    this.#sending = k.sending;
    return { newSender };
  }

  /** Forgets every key: nothing is sent, nothing decrypts, until the next meeting's keys. */
  clear(): void {
    this.#sender = undefined;
    this.#sendKid = undefined;
    this.#sendKey.fill(0);
    this.#sendKey = new Uint8Array(0) as Uint8Array;
    this.#auth = undefined;
    this.#verifier = new FrameAuthVerifier(-1, []);
    this.#sending = false;
    for (const kid of this.#receiveKids) this.receiver.removeKey(kid);
    this.#receiveKids.clear();
  }
}
