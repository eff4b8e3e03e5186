// The receiving side: one key and one replay window per KID, picked by the header's KID (no trial
// decryption). Order of checks: size, header, key, replay window, counter plausibility, tag; the window moves only after
// the tag verified, so forged frames change nothing.

import { open } from './aead.js';
import { SFrameError } from './errors.js';
import { FrameKey } from './frame-key.js';
import { decodeHeader } from './header.js';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replay-window.js';
import { type CipherSuiteId, DEFAULT_SUITE } from './suites.js';

/** Default ceiling on an SFrame's size: far above a 4K keyframe, far below memory trouble. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface SFrameReceiverOptions {
  /** Counters accepted out of order behind the highest one seen (default 128). */
  replayWindow?: number;
  /** Larger inputs are refused with TOO_LARGE before any work (default 16 MiB). */
  maxFrameBytes?: number;
  /**
   * Refuses (IMPLAUSIBLE_COUNTER, window untouched) a CTR this says is implausible given the
   * highest CTR accepted for its KID (undefined before the first). Default: every CTR is plausible.
   * Sealroom's media worker uses plausibleCounter (counter-policy.ts).
   */
  plausibleCounter?: (ctr: bigint, highest: bigint | undefined) => boolean;
}

export interface DecryptedFrame {
  plaintext: Uint8Array;
  kid: bigint;
  ctr: bigint;
}

interface KidState {
  readonly frameKey: FrameKey;
  readonly baseKey: Uint8Array;
  readonly window: ReplayWindow;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class SFrameReceiver {
  private readonly windowSize: number;
  private readonly maxFrameBytes: number;
  private readonly kids = new Map<bigint, KidState>();
  private readonly plausible: SFrameReceiverOptions['plausibleCounter'];

  constructor(opts: SFrameReceiverOptions = {}) {
    this.windowSize = opts.replayWindow ?? DEFAULT_REPLAY_WINDOW;
    new ReplayWindow(this.windowSize); // validates the size now rather than at the first setKey
    const max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxFrameBytes must be a positive integer`);
    this.maxFrameBytes = max;
    this.plausible = opts.plausibleCounter;
  }

  /**
   * Installs the base key for `kid`. Setting the same key again keeps the replay window; a different
   * key or suite starts a fresh one (its counters belong to a different key).
   */
  setKey(kid: bigint, baseKey: Uint8Array, suite: CipherSuiteId = DEFAULT_SUITE): void {
    const existing = this.kids.get(kid);
    if (existing && existing.frameKey.suite.id === suite && sameBytes(existing.baseKey, baseKey)) return;
    const frameKey = new FrameKey(suite, baseKey, kid);
    this.kids.set(kid, {
      frameKey,
      baseKey: Uint8Array.from(baseKey),
      window: new ReplayWindow(this.windowSize),
    });
  }

  removeKey(kid: bigint): void {
    const state = this.kids.get(kid);
    if (state) state.baseKey.fill(0);
    this.kids.delete(kid);
  }

  hasKey(kid: bigint): boolean {
    return this.kids.has(kid);
  }

  /** Authenticates and decrypts one SFrame. Every refusal is an SFrameError. */
  decrypt(sframe: Uint8Array, metadata?: Uint8Array): DecryptedFrame {
    if (!(sframe instanceof Uint8Array))
      throw new SFrameError('MALFORMED_HEADER', 'input is not a Uint8Array');
    if (metadata !== undefined && !(metadata instanceof Uint8Array)) {
      throw new SFrameError('MALFORMED_HEADER', 'metadata is not a Uint8Array');
    }
    if (sframe.length > this.maxFrameBytes) {
      throw new SFrameError(
        'TOO_LARGE',
        `${sframe.length} bytes exceed the ${this.maxFrameBytes}-byte limit`,
      );
    }
    const { kid, ctr, headerLength } = decodeHeader(sframe);
    const state = this.kids.get(kid);
    if (state === undefined) throw new SFrameError('UNKNOWN_KEY', `no key for KID ${kid}`);
    if (sframe.length < headerLength + state.frameKey.suite.nt) {
      throw new SFrameError('TRUNCATED', `frame ends before its ${state.frameKey.suite.nt}-byte tag`);
    }
    state.window.check(ctr);
    if (this.plausible && !this.plausible(ctr, state.window.highestAccepted)) {
      throw new SFrameError('IMPLAUSIBLE_COUNTER', `counter ${ctr} jumps too far for KID ${kid}`);
    }
    let plaintext: Uint8Array;
    try {
      plaintext = open(
        state.frameKey.aeadKey,
        state.frameKey.nonceFor(ctr),
        sframe.subarray(0, headerLength),
        metadata,
        sframe.subarray(headerLength),
      );
    } catch (err) {
      if (err instanceof SFrameError) throw err;
      // Anything OpenSSL throws here means the frame did not verify; never leak another error type.
      throw new SFrameError('AUTH_FAILED', `decryption failed: ${(err as Error).message}`);
    }
    state.window.accept(ctr);
    return { plaintext, kid, ctr };
  }
}
