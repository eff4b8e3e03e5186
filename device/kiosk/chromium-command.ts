// The command line that puts the room screen on the display: Chromium in kiosk mode inside cage (a
// Wayland kiosk compositor that shows exactly one full-screen application). Pure.
export interface KioskCommandOptions {
  /** What Chromium opens: on the device the start page (file://) that forwards to the room screen. */
  url: string;
  chromium?: string;
  cage?: string;
  /** Profile directory: keeps the kiosk's Chromium state out of any person's home. */
  profileDir: string;
  /** Run Chromium directly (an existing X11/Wayland session, or development). */
  withoutCage?: boolean;
  /** Headless, for tests and the benchmark. */
  headless?: boolean;
  extraArgs?: string[];
}

/** Flags every Sealroom Chromium gets: no network chatter, no first-run or crash bubbles. */
export const QUIET_CHROMIUM_FLAGS = [
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-translate',
  // One list: Chromium honours only the last --disable-features (kioskCommand merges them anyway).
  '--disable-features=Translate,MediaRouter,OptimizationHints,WebRtcHideLocalIpsWithMdns',
  '--check-for-update-interval=31536000',
  '--password-store=basic',
];

/** What makes Chromium a wall display: full screen, no zoom by pinch, no swipe-back, no dialogs. */
export const KIOSK_FLAGS = [
  '--kiosk',
  '--noerrdialogs',
  '--disable-infobars',
  '--disable-session-crashed-bubble',
  '--disable-pinch',
  '--overscroll-history-navigation=0',
];

/**
 * What the wall connection needs (docs/kiosk.md, "The wall"): ICE candidates on 127.0.0.1 (Chromium
 * leaves loopback out by default and hides host addresses behind mDNS names), and video that plays
 * without a tap.
 */
export const WALL_FLAGS = [
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

/**
 * Chromium keeps only the last `--disable-features=` (and `--enable-features=`): fold every one
 * into a single flag where the first stood, in order, without duplicates.
 */
export function mergeFeatureFlags(args: readonly string[]): string[] {
  const out: string[] = [];
  const lists = new Map<string, string[]>();
  for (const arg of args) {
    const m = /^(--(?:disable|enable)-features)=(.*)$/.exec(arg);
    if (!m) {
      out.push(arg);
      continue;
    }
    const [, flag, value] = m as unknown as [string, string, string];
    let list = lists.get(flag);
    if (!list) {
      list = [];
      lists.set(flag, list);
      out.push(flag);
    }
    for (const f of value.split(',')) if (f && !list.includes(f)) list.push(f);
  }
  return out.map((a) => {
    const list = lists.get(a);
    return list ? `${a}=${list.join(',')}` : a;
  });
}

export function kioskCommand(o: KioskCommandOptions): { command: string; args: string[] } {
  const chromium = o.chromium ?? '/usr/bin/chromium';
  const chromiumArgs = mergeFeatureFlags([
    ...(o.headless ? ['--headless', '--disable-gpu', '--no-sandbox'] : KIOSK_FLAGS),
    ...(o.withoutCage || o.headless ? [] : ['--ozone-platform=wayland']),
    ...QUIET_CHROMIUM_FLAGS,
    ...WALL_FLAGS,
    `--user-data-dir=${o.profileDir}`,
    ...(o.extraArgs ?? []),
    o.url,
  ]);
  if (o.withoutCage || o.headless) return { command: chromium, args: chromiumArgs };
  // -d: no client-side decorations; -s: allow VT switching so a technician can reach a console.
  return { command: o.cage ?? '/usr/bin/cage', args: ['-d', '-s', '--', chromium, ...chromiumArgs] };
}
