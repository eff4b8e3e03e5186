// Sender authentication in the browser (RTCRtpScriptTransform worker), on WebCrypto: the same
// MAC-vector trailer as the media worker (src/core/frame-auth/trailer.ts for the layout,
// device/media/auth-layout.ts for where it sits), with SHA-256 and HMAC-SHA256 from crypto.subtle.
import {
  FrameAuthError,
  type ParsedTrailer,
  buildTrailer,
  coveredChunks,
  signedTail,
  tagsEqual,
} from '../../core/frame-auth/trailer.js';
import { decodeHeader } from '../../core/sframe/header.js';
import { splitAnnexB } from '../../../device/media/bitstream.js';
import { annexB, splitProtectedNal } from '../../../device/media/h264-protect.js';
import {
  appendTrailer,
  splitTrailer,
  splitTrailerNal,
  trailerNal,
} from '../../../device/media/auth-layout.js';
import { splitProtectedVp8 } from '../../../device/media/vp8-protect.js';

export interface PeerKey {
  peerIndex: number;
  key: Uint8Array;
}

const subtle = globalThis.crypto.subtle;
const importHmac = (key: Uint8Array) =>
  subtle.importKey('raw', key as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);

async function digest(units: readonly Uint8Array[]): Promise<Uint8Array> {
  const parts = [...coveredChunks(units)];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await subtle.digest('SHA-256', all));
}

async function tag(key: CryptoKey, d: Uint8Array, tail: Uint8Array): Promise<Uint8Array> {
  const input = new Uint8Array(d.length + tail.length);
  input.set(d, 0);
  input.set(tail, d.length);
  return new Uint8Array(await subtle.sign('HMAC', key, input)).subarray(0, 8);
}

export class WebFrameAuth {
  private constructor(
    readonly selfIndex: number,
    private readonly receivers: number[],
    private readonly sendKeys: CryptoKey[],
    private readonly receiveKeys: Map<number, CryptoKey>,
  ) {}

  static async create(
    selfIndex: number,
    peers: readonly { peerIndex: number; send: Uint8Array; receive: Uint8Array }[],
  ): Promise<WebFrameAuth> {
    const sorted = peers.filter((p) => p.peerIndex !== selfIndex).sort((a, b) => a.peerIndex - b.peerIndex);
    const send = await Promise.all(sorted.map((p) => importHmac(p.send)));
    const receive = new Map<number, CryptoKey>();
    for (const p of sorted) receive.set(p.peerIndex, await importHmac(p.receive));
    return new WebFrameAuth(
      selfIndex,
      sorted.map((p) => p.peerIndex),
      send,
      receive,
    );
  }

  async trailer(units: readonly Uint8Array[]): Promise<Uint8Array> {
    const d = await digest(units);
    const tail = signedTail(this.receivers);
    return buildTrailer(this.receivers, await Promise.all(this.sendKeys.map((k) => tag(k, d, tail))));
  }

  async verify(senderIndex: number, units: readonly Uint8Array[], parsed: ParsedTrailer): Promise<void> {
    const key = this.receiveKeys.get(senderIndex);
    if (!key) throw new FrameAuthError('NO_KEY', `no frame-authentication key for sender ${senderIndex}`);
    const mine = parsed.tagFor(this.selfIndex);
    if (!mine) throw new FrameAuthError('NO_TAG', `no tag for receiver ${this.selfIndex}`);
    if (!tagsEqual(await tag(key, await digest(units), parsed.signedTail), mine))
      throw new FrameAuthError('BAD_TAG', `tag from sender ${senderIndex} does not verify`);
  }

  // ---- per codec, on protected frames (what the SFrame layer produced / will open) ----

  /** Opus, VP8: protected frame → wire. */
  async seal(protectedFrame: Uint8Array): Promise<Uint8Array> {
    return appendTrailer(protectedFrame, await this.trailer([protectedFrame]));
  }

  /** Opus, VP8: wire → protected frame, only if this receiver's tag verifies. */
  async open(kind: 'audio' | 'vp8', wire: Uint8Array): Promise<Uint8Array> {
    const { frame, trailer } = splitTrailer(wire);
    const sframe = kind === 'vp8' ? splitProtectedVp8(frame).sealed : frame;
    await this.verify(Number(decodeHeader(sframe).kid & 0xffffn), [frame], trailer);
    return frame;
  }

  /** H.264: protected Annex B access unit → with the trailer NAL unit appended. */
  async sealH264(au: Uint8Array): Promise<Uint8Array> {
    const units = splitAnnexB(au);
    return annexB([...units, trailerNal(await this.trailer(units))]);
  }

  /** H.264: wire access unit → protected access unit without the trailer, only if it verifies. */
  async openH264(au: Uint8Array): Promise<Uint8Array> {
    const { units, trailer } = splitTrailerNal(splitAnnexB(au));
    let kid: bigint | undefined;
    for (const unit of units) {
      const k = decodeHeader(splitProtectedNal(unit).sframe).kid;
      if (kid !== undefined && k !== kid)
        throw new FrameAuthError('MALFORMED_TRAILER', 'NAL units of one frame from different KIDs');
      kid = k;
    }
    if (kid === undefined) throw new FrameAuthError('MALFORMED_TRAILER', 'frame without NAL units');
    await this.verify(Number(kid & 0xffffn), units, trailer);
    return annexB(units);
  }
}
