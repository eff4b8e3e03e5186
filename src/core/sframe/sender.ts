// The sending side of one KID: counts frames, never reuses a counter, writes header || ct || tag into a
// single fresh buffer per frame.

import { sealInto } from './aead.js';
import { SFrameError } from './errors.js';
import { FrameKey } from './frame-key.js';
import { FrameSlab } from './frame-slab.js';
import { MAX_UINT64, headerLength, writeHeader } from './header.js';
import { checkKid } from './keys.js';
import { type CipherSuiteId, DEFAULT_SUITE } from './suites.js';

export interface SFrameSenderOptions {
  kid: bigint;
  baseKey: Uint8Array;
  suite?: CipherSuiteId;
  /** First CTR to use (default 0). A sender resuming a KID must start past every CTR it used. */
  initialCounter?: bigint;
}

export class SFrameSender {
  readonly kid: bigint;
  readonly suite: CipherSuiteId;
  private readonly frameKey: FrameKey;
  private readonly slab = new FrameSlab();
  /** Next CTR to use; MAX_UINT64 + 1 once exhausted. */
  private nextCounter: bigint;

  constructor(opts: SFrameSenderOptions) {
    checkKid(opts.kid);
    this.kid = opts.kid;
    this.suite = opts.suite ?? DEFAULT_SUITE;
    this.frameKey = new FrameKey(this.suite, opts.baseKey, opts.kid);
    const initial = opts.initialCounter ?? 0n;
    if (typeof initial !== 'bigint' || initial < 0n) {
      throw new RangeError(`initialCounter must be a non-negative bigint, got ${String(initial)}`);
    }
    if (initial > MAX_UINT64) throw new SFrameError('COUNTER_EXHAUSTED', 'initialCounter exceeds 2^64-1');
    this.nextCounter = initial;
  }

  /** The CTR the next frame will carry. */
  get counter(): bigint {
    return this.nextCounter;
  }

  /** Encrypts one frame; `metadata` is authenticated (after the header) but not sent. */
  encrypt(plaintext: Uint8Array, metadata?: Uint8Array): Uint8Array {
    if (!(plaintext instanceof Uint8Array) || (metadata !== undefined && !(metadata instanceof Uint8Array))) {
      throw new TypeError('plaintext and metadata must be Uint8Arrays');
    }
    const ctr = this.nextCounter;
    if (ctr > MAX_UINT64) {
      throw new SFrameError('COUNTER_EXHAUSTED', `KID ${this.kid} used every counter; rekey`);
    }
    // Claim the counter before encrypting: even if sealing throws, it is never used twice.
    this.nextCounter = ctr + 1n;
    const hlen = headerLength(this.kid, ctr);
    const out = this.slab.take(hlen + plaintext.length + this.frameKey.suite.nt);
    writeHeader(out, 0, this.kid, ctr);
    sealInto(
      this.frameKey.aeadKey,
      this.frameKey.nonceFor(ctr),
      out.subarray(0, hlen),
      metadata,
      plaintext,
      out,
      hlen,
    );
    return out;
  }
}
