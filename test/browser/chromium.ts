// Headless Debian Chromium as the browser participant runs it: the common no-network flags, fake
// camera and microphone, WebRTC allowed on loopback, no mDNS host names, autoplay without a gesture.
import { CHROMIUM_PATH, HEADLESS_ARGS } from '../kiosk-browser.js';
export const CHROMIUM = CHROMIUM_PATH;

export const CHROMIUM_ARGS = [
  ...HEADLESS_ARGS,
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // WebRTC ignores loopback interfaces unless told otherwise; no mDNS host names (no multicast).
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

/** ICE candidates on 127.x or ::1: the only ones a test hands to the other side. */
export const isLoopbackCandidate = (c: string) => / (127\.\d+\.\d+\.\d+|::1) \d+ typ /.test(c);
