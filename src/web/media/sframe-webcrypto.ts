// A second, independent SFrame (RFC 9605) implementation for the browser participant: WebCrypto only
// (crypto.subtle: HKDF, AES-GCM), no Node APIs, no import from src/core/sframe. Written from
// docs/sframe.md and RFC 9605 so that interop tests compare two implementations, not one with itself.
// Runs unchanged in Chromium workers and in Node 20 (globalThis.crypto), where it is checked against
// the official vectors. Only the AES-GCM suites: 0x0004 and 0x0005 (Sealroom's default).

export type GcmSuite = 0x0004 | 0x0005;

interface SuiteParams {
  hash: 'SHA-256' | 'SHA-512';
  keyBytes: number;
}

const SUITES: Record<GcmSuite, SuiteParams> = {
  4: { hash: 'SHA-256', keyBytes: 16 },
  5: { hash: 'SHA-512', keyBytes: 32 },
};
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const UINT64_MAX = (1n << 64n) - 1n;

export type SFrameFailure = 'MALFORMED_HEADER' | 'TRUNCATED' | 'UNKNOWN_KEY' | 'AUTH_FAILED' | 'REPLAY';

/** A refusal from `WebSFrameReceiver.open`; `code` names the RFC 9605 §7-style reason. */
export class WebSFrameError extends Error {
  override name = 'WebSFrameError';
  constructor(
    readonly code: SFrameFailure,
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- header (RFC 9605 §4.3)

/** Fewest big-endian bytes that hold `v` (at least one). */
function minimalBytes(v: bigint): Uint8Array {
  const out: number[] = [];
  let x = v;
  do {
    out.unshift(Number(x & 0xffn));
    x >>= 8n;
  } while (x > 0n);
  return Uint8Array.from(out);
}

/** |X|K(3)|Y|C(3)| then the extended KID bytes, then the extended CTR bytes. */
export function encodeSFrameHeader(kid: bigint, ctr: bigint): Uint8Array {
  if (kid < 0n || kid > UINT64_MAX || ctr < 0n || ctr > UINT64_MAX)
    throw new RangeError('KID/CTR out of range');
  const kidBytes = kid < 8n ? new Uint8Array(0) : minimalBytes(kid);
  const ctrBytes = ctr < 8n ? new Uint8Array(0) : minimalBytes(ctr);
  const k = kid < 8n ? Number(kid) : 0x80 | ((kidBytes.length - 1) << 4);
  const c = ctr < 8n ? Number(ctr) : 0x08 | (ctrBytes.length - 1);
  const out = new Uint8Array(1 + kidBytes.length + ctrBytes.length);
  out[0] = (kid < 8n ? k << 4 : k) | c;
  out.set(kidBytes, 1);
  out.set(ctrBytes, 1 + kidBytes.length);
  return out;
}

export interface ParsedHeader {
  kid: bigint;
  ctr: bigint;
  /** Header length in bytes. */
  length: number;
}

function readUint(bytes: Uint8Array, at: number, n: number): bigint {
  let v = 0n;
  for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(bytes[at + i] as number);
  return v;
}

/** Parses a header; refuses truncated input and non-minimal encodings (as Sealroom's receiver does). */
export function decodeSFrameHeader(frame: Uint8Array): ParsedHeader {
  if (frame.length < 1) throw new WebSFrameError('TRUNCATED', 'empty frame');
  const config = frame[0] as number;
  const x = (config & 0x80) !== 0;
  const k = (config >> 4) & 0x07;
  const y = (config & 0x08) !== 0;
  const c = config & 0x07;
  const kidLen = x ? k + 1 : 0;
  const ctrLen = y ? c + 1 : 0;
  const length = 1 + kidLen + ctrLen;
  if (frame.length < length) throw new WebSFrameError('TRUNCATED', 'frame ends inside the header');
  const kid = x ? readUint(frame, 1, kidLen) : BigInt(k);
  const ctr = y ? readUint(frame, 1 + kidLen, ctrLen) : BigInt(c);
  const nonMinimal = (len: number, v: bigint) => len > 0 && (v < 8n || minimalBytes(v).length !== len);
  if (nonMinimal(kidLen, kid) || nonMinimal(ctrLen, ctr)) {
    throw new WebSFrameError('MALFORMED_HEADER', 'KID or CTR not minimally encoded');
  }
  return { kid, ctr, length };
}

// ---------------------------------------------------------------- key schedule (RFC 9605 §4.4.2)

const encoder = new TextEncoder();

function label(prefix: string, kid: bigint, suite: GcmSuite): Uint8Array {
  const text = encoder.encode(prefix);
  const out = new Uint8Array(text.length + 8 + 2);
  out.set(text, 0);
  const view = new DataView(out.buffer);
  view.setBigUint64(text.length, kid);
  view.setUint16(text.length + 8, suite);
  return out;
}

export interface SFrameKeyMaterial {
  key: CryptoKey;
  salt: Uint8Array;
}

/**
 * sframe_key / sframe_salt = HKDF-Expand(HKDF-Extract("", base_key), label, Nk / Nn). WebCrypto's HKDF
 * does Extract then Expand in one call, and an empty salt is what the RFC's Extract uses.
 */
export async function deriveSFrameKey(
  baseKey: Uint8Array,
  kid: bigint,
  suite: GcmSuite = 0x0005,
): Promise<SFrameKeyMaterial & { rawKey: Uint8Array }> {
  const params = SUITES[suite];
  const ikm = await crypto.subtle.importKey('raw', copy(baseKey), 'HKDF', false, ['deriveBits']);
  const expand = (info: Uint8Array, bytes: number) =>
    crypto.subtle.deriveBits(
      { name: 'HKDF', hash: params.hash, salt: new Uint8Array(0), info: copy(info) },
      ikm,
      bytes * 8,
    );
  const rawKey = new Uint8Array(await expand(label('SFrame 1.0 Secret key ', kid, suite), params.keyBytes));
  const salt = new Uint8Array(await expand(label('SFrame 1.0 Secret salt ', kid, suite), NONCE_BYTES));
  const key = await crypto.subtle.importKey('raw', copy(rawKey), 'AES-GCM', false, ['encrypt', 'decrypt']);
  return { key, salt, rawKey };
}

/** nonce = salt XOR CTR, CTR big-endian in the low-order bytes (RFC 9605 §4.4.3). */
export function sframeNonce(salt: Uint8Array, ctr: bigint): Uint8Array<ArrayBuffer> {
  const nonce = copy(salt);
  let x = ctr;
  for (let i = NONCE_BYTES - 1; i >= NONCE_BYTES - 8; i--) {
    nonce[i] = (nonce[i] as number) ^ Number(x & 0xffn);
    x >>= 8n;
  }
  return nonce;
}

/** A fresh ArrayBuffer-backed copy: WebCrypto wants BufferSource, and frames may be views. */
function copy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------- sender and receiver (§4.4.3, §4.4.4)

export class WebSFrameSender {
  readonly kid: bigint;
  #ctr: bigint;
  readonly #material: Promise<SFrameKeyMaterial>;

  constructor(opts: { kid: bigint; baseKey: Uint8Array; suite?: GcmSuite; initialCounter?: bigint }) {
    this.kid = opts.kid;
    this.#ctr = opts.initialCounter ?? 0n;
    this.#material = deriveSFrameKey(opts.baseKey, opts.kid, opts.suite ?? 0x0005);
  }

  /** header || AES-GCM(plaintext, aad = header || metadata). Each call takes the next CTR, once. */
  async seal(plaintext: Uint8Array, metadata: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    const ctr = this.#ctr;
    if (ctr > UINT64_MAX) throw new RangeError('SFrame counter exhausted: a new key is needed');
    this.#ctr = ctr + 1n; // claimed before the await: concurrent calls never share a counter
    const { key, salt } = await this.#material;
    const header = encodeSFrameHeader(this.kid, ctr);
    const sealed = await crypto.subtle.encrypt(
      {
        name: 'AES-GCM',
        iv: sframeNonce(salt, ctr),
        additionalData: concat(header, metadata),
        tagLength: 128,
      },
      key,
      copy(plaintext),
    );
    return concat(header, new Uint8Array(sealed));
  }
}

interface ReceiveKey {
  material: Promise<SFrameKeyMaterial>;
  highest: bigint | undefined;
  seen: Set<bigint>;
}

/** Per-KID keys and replay windows; `open` returns plaintext only after the tag verified. */
export class WebSFrameReceiver {
  readonly #keys = new Map<bigint, ReceiveKey>();
  readonly #window: bigint;
  readonly #suite: GcmSuite;

  constructor(opts: { replayWindow?: number; suite?: GcmSuite } = {}) {
    this.#window = BigInt(opts.replayWindow ?? 128);
    this.#suite = opts.suite ?? 0x0005;
  }

  setKey(kid: bigint, baseKey: Uint8Array): void {
    this.#keys.set(kid, {
      material: deriveSFrameKey(baseKey, kid, this.#suite),
      highest: undefined,
      seen: new Set(),
    });
  }

  removeKey(kid: bigint): void {
    this.#keys.delete(kid);
  }

  async open(
    frame: Uint8Array,
    metadata: Uint8Array = new Uint8Array(0),
  ): Promise<{ kid: bigint; ctr: bigint; plaintext: Uint8Array }> {
    const { kid, ctr, length } = decodeSFrameHeader(frame);
    const entry = this.#keys.get(kid);
    if (!entry) throw new WebSFrameError('UNKNOWN_KEY', `no key for KID ${kid}`);
    if (frame.length < length + TAG_BYTES)
      throw new WebSFrameError('TRUNCATED', 'frame shorter than its tag');
    this.#checkReplay(entry, ctr);
    const { key, salt } = await entry.material;
    const header = frame.subarray(0, length);
    let plain: ArrayBuffer;
    try {
      plain = await crypto.subtle.decrypt(
        {
          name: 'AES-GCM',
          iv: sframeNonce(salt, ctr),
          additionalData: concat(header, metadata),
          tagLength: 128,
        },
        key,
        copy(frame.subarray(length)),
      );
    } catch {
      throw new WebSFrameError('AUTH_FAILED', `authentication failed (KID ${kid}, CTR ${ctr})`);
    }
    // Checked again: another frame with this CTR may have been accepted while we awaited.
    this.#checkReplay(entry, ctr);
    this.#accept(entry, ctr);
    return { kid, ctr, plaintext: new Uint8Array(plain) };
  }

  #checkReplay(entry: ReceiveKey, ctr: bigint): void {
    const h = entry.highest;
    if (h === undefined || ctr > h) return;
    if (ctr <= h - this.#window || entry.seen.has(ctr)) {
      throw new WebSFrameError('REPLAY', `CTR ${ctr} replayed or behind the window`);
    }
  }

  #accept(entry: ReceiveKey, ctr: bigint): void {
    entry.seen.add(ctr);
    if (entry.highest === undefined || ctr > entry.highest) {
      entry.highest = ctr;
      const floor = ctr - this.#window;
      for (const c of entry.seen) if (c <= floor) entry.seen.delete(c);
    }
  }
}
