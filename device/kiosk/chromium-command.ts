// The command line that puts the room screen on the display: Chromium in kiosk mode inside cage (a
// Wayland kiosk compositor that shows exactly one full-screen application). Pure.
export interface KioskCommandOptions {
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
  '--disable-features=Translate,MediaRouter,OptimizationHints',
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
  '--autoplay-policy=no-user-gesture-required',
];

export function kioskCommand(o: KioskCommandOptions): { command: string; args: string[] } {
  const chromium = o.chromium ?? '/usr/bin/chromium';
  const chromiumArgs = [
    ...(o.headless ? ['--headless', '--disable-gpu', '--no-sandbox'] : KIOSK_FLAGS),
    ...(o.withoutCage || o.headless ? [] : ['--ozone-platform=wayland']),
    ...QUIET_CHROMIUM_FLAGS,
    `--user-data-dir=${o.profileDir}`,
    ...(o.extraArgs ?? []),
    o.url,
  ];
  if (o.withoutCage || o.headless) return { command: chromium, args: chromiumArgs };
  // -d: no client-side decorations; -s: allow VT switching so a technician can reach a console.
  return { command: o.cage ?? '/usr/bin/cage', args: ['-d', '-s', '--', chromium, ...chromiumArgs] };
}
