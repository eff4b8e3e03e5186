// Headless Debian Chromium as the browser participant runs it: the common no-network flags, fake
// camera and microphone, WebRTC allowed on loopback, no mDNS host names, autoplay without a gesture.
export const CHROMIUM = process.env.SEALROOM_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // WebRTC ignores loopback interfaces unless told otherwise; no mDNS host names (no multicast).
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

/** ICE candidates on 127.x or ::1: the only ones a test hands to the other side. */
export const isLoopbackCandidate = (c: string) => / (127\.\d+\.\d+\.\d+|::1) \d+ typ /.test(c);
