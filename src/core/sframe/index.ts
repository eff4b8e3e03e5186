// SFrame (RFC 9605) for Sealroom: the public surface used by the media worker, the key manager,
// the selftest and the benchmarks. Pure: node:crypto only, no I/O.

export { SFrameError, type SFrameErrorCode, isSFrameError } from './errors.js';
export {
  type CipherSuite,
  type CipherSuiteId,
  DEFAULT_SUITE,
  SUPPORTED_SUITES,
  cipherSuite,
} from './suites.js';
export { type DecodedHeader, MAX_HEADER_LENGTH, MAX_UINT64, decodeHeader, encodeHeader } from './header.js';
export { MIN_BASE_KEY_BYTES, deriveKeyAndSalt, keyScheduleLabel, sframeSecret } from './keys.js';
export { SFrameSender, type SFrameSenderOptions } from './sender.js';
export {
  DEFAULT_MAX_FRAME_BYTES,
  type DecryptedFrame,
  SFrameReceiver,
  type SFrameReceiverOptions,
} from './receiver.js';
export { DEFAULT_REPLAY_WINDOW } from './replay-window.js';
export {
  GENERATION_SHIFT,
  MAX_COUNTER_STEP,
  MAX_GENERATION_STEP,
  plausibleCounter,
} from './counter-policy.js';
