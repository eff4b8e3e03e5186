// Authenticated frame protection for the media worker: SFrame (frame-protect.ts) plus the pairwise
// MAC trailer (src/core/frame-auth). Receive order: trailer parsed, every SFrame header read (one
// KID per frame), this receiver's tag verified under the key shared with the KID's sender — and
// only then SFrame decryption, which checks the replay window and counter plausibility and is the
// only step that moves the window. Nothing reaches a decoder that failed any step.
import { FrameAuthError } from '../../src/core/frame-auth/trailer.js';
import type { FrameAuthSender, FrameAuthVerifier } from '../../src/core/frame-auth/node.js';
import {
  type SFrameReceiver,
  type SFrameSender,
  decodeHeader,
  isSFrameError,
} from '../../src/core/sframe/index.js';
import { appendTrailer, splitTrailer, splitTrailerNal, trailerNal } from './auth-layout.js';
import { NAL_IDR, NAL_PPS, NAL_SPS, nalType } from './bitstream.js';
import {
  openH264AccessUnit,
  sealH264AccessUnit,
  sliceHeaderPrefix,
  splitProtectedNal,
  unescapeEmulation,
} from './h264-protect.js';
import { openVp8Frame, sealVp8Frame, splitProtectedVp8 } from './vp8-protect.js';

export type FrameKind = 'opus' | 'vp8';

/** The sender index a Sealroom KID names (KID = epoch << 16 | senderIndex). */
export const kidSender = (kid: bigint) => Number(kid & 0xffffn);

export function sealAuthenticated(
  kind: FrameKind,
  sender: Pick<SFrameSender, 'encrypt'>,
  auth: FrameAuthSender,
  frame: Uint8Array,
): Uint8Array {
  const sealed = kind === 'vp8' ? sealVp8Frame(sender, frame) : sender.encrypt(frame);
  return appendTrailer(sealed, auth.trailer([sealed]));
}

export function openAuthenticated(
  kind: FrameKind,
  receiver: Pick<SFrameReceiver, 'decrypt'>,
  verifier: FrameAuthVerifier,
  wire: Uint8Array,
): { kid: bigint; frame: Uint8Array } {
  const { frame, trailer } = splitTrailer(wire);
  const sframe = kind === 'vp8' ? splitProtectedVp8(frame).sealed : frame;
  const { kid } = decodeHeader(sframe);
  verifier.verifyParsed(kidSender(kid), [frame], trailer);
  if (kind === 'vp8') return openVp8Frame(receiver, frame);
  const { plaintext } = receiver.decrypt(frame);
  return { kid, frame: plaintext };
}

export function sealH264Authenticated(
  sender: Pick<SFrameSender, 'encrypt'>,
  auth: FrameAuthSender,
  accessUnit: Uint8Array,
): Uint8Array[] {
  const units = sealH264AccessUnit(sender, accessUnit);
  units.push(trailerNal(auth.trailer(units)));
  return units;
}

/**
 * The KID of a protected NAL unit, reading only its SFrame header: a slice's SFrame starts right
 * after its clear bytes, so only a few bytes need unescaping (the whole unit is unescaped once, later,
 * when it is opened).
 */
function protectedNalKid(unit: Uint8Array): bigint {
  const type = nalType(unit);
  if (type === NAL_SPS || type === NAL_PPS) return decodeHeader(splitProtectedNal(unit).sframe).kid;
  const n = type === 1 || type === NAL_IDR ? sliceHeaderPrefix(unit) : 1;
  const zeros = unit[n - 1] === 0 ? (n >= 2 && unit[n - 2] === 0 ? 2 : 1) : 0;
  // A 17-byte header takes at most 26 bytes escaped.
  return decodeHeader(unescapeEmulation(unit.subarray(n, n + 32), zeros)).kid;
}

export function openH264Authenticated(
  receiver: Pick<SFrameReceiver, 'decrypt'>,
  verifier: FrameAuthVerifier,
  wireUnits: readonly Uint8Array[],
): { kid: bigint; frame: Buffer } {
  const { units, trailer } = splitTrailerNal(wireUnits);
  let kid: bigint | undefined;
  for (const unit of units) {
    const k = protectedNalKid(unit);
    if (kid !== undefined && k !== kid)
      throw new FrameAuthError('MALFORMED_TRAILER', 'NAL units of one frame from different KIDs');
    kid = k;
  }
  if (kid === undefined) throw new FrameAuthError('MALFORMED_TRAILER', 'frame without NAL units');
  verifier.verifyParsed(kidSender(kid), units, trailer);
  return openH264AccessUnit(receiver, units);
}

/** Why a frame was dropped: forged or untagged, an implausible counter, or any other failure. */
export function failureCause(err: unknown): 'auth' | 'implausible' | 'decrypt' {
  if (err instanceof FrameAuthError) return 'auth';
  if (isSFrameError(err, 'IMPLAUSIBLE_COUNTER')) return 'implausible';
  return 'decrypt';
}
