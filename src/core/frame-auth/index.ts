// Sender authentication of media frames (pairwise MAC vector). See docs/sframe.md.
export { FrameAuthSender, FrameAuthVerifier, type PeerAuthKey } from './node.js';
export {
  FRAME_AUTH_VERSION,
  FRAME_TAG_BYTES,
  FrameAuthError,
  type FrameAuthErrorCode,
  H264_TRAILER_NAL_HEADER,
  H264_TRAILER_NAL_TYPE,
  MAX_FRAME_AUTH_RECEIVERS,
  type ParsedTrailer,
  buildTrailer,
  coveredChunks,
  macInput,
  parseTrailer,
  signedTail,
  tagsEqual,
  trailerLength,
} from './trailer.js';
