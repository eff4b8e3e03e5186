// Entry point of the room screen: keeps one live copy of the daemon state (server-sent events from the
// local control server), renders it, and posts the actions people trigger.
import type { DeviceState } from '../../device/daemon/state.js';
import { formatClock, formatDate } from './format.js';
import { CODE_FULL_MS, type LocalState, renderApp, type WallView } from './view.js';
import { takeWallToken, WallClient } from './wall.js';

const root = document.getElementById('root')!;
let state: DeviceState | undefined;
const local: LocalState = { keypad: '', connected: false, busy: false };
let toastTimer: number | undefined;
let codeTimer: number | undefined;

// The wall connection (far rooms' video) and one <video> element per m-line, kept across redraws so a
// state push never restarts a picture.
const wall = new WallClient(takeWallToken(), () => render());
const videos = new Map<string, HTMLVideoElement>();
const wallView: WallView = {
  get status() {
    return wall.status;
  },
  video(mid: string) {
    const stream = wall.streams.get(mid);
    if (!stream) return undefined;
    let video = videos.get(mid);
    if (!video) {
      video = document.createElement('video');
      video.muted = true; // the room's sound comes from the media worker's speaker path
      video.autoplay = true;
      video.playsInline = true;
      video.setAttribute('aria-hidden', 'true');
      // First frame (or a new size): redraw, so the tile drops its "Waiting for video…".
      video.addEventListener('resize', () => render());
      videos.set(mid, video);
    }
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      video.play().catch(() => {});
    }
    return video;
  },
};

function render(): void {
  if (!state) return;
  // Each state push redraws the screen; keep where people scrolled long lists and which button has
  // keyboard focus, so a volume change elsewhere does not jump the roster back to the top.
  const scrolled = new Map<string, number>();
  for (const el of root.querySelectorAll<HTMLElement>('[data-testid=roster], [data-testid=waiting]')) {
    scrolled.set(el.dataset.testid!, el.scrollTop);
  }
  const focused = document.activeElement?.closest<HTMLElement>('[data-testid], [data-key]');
  const focusKey = focused?.dataset.testid
    ? `[data-testid="${focused.dataset.testid}"]`
    : focused?.dataset.key
      ? `[data-key="${focused.dataset.key}"]`
      : undefined;
  for (const [mid, video] of videos) {
    if (!wall.streams.has(mid)) {
      video.srcObject = null;
      videos.delete(mid);
    }
  }
  root.replaceChildren(renderApp(state, local, { act, setLocal }, wallView));
  for (const [id, top] of scrolled) {
    const el = root.querySelector<HTMLElement>(`[data-testid="${id}"]`);
    if (el) el.scrollTop = top;
  }
  if (focusKey) root.querySelector<HTMLElement>(focusKey)?.focus({ preventScroll: true });
}

function setLocal(change: Partial<LocalState>): void {
  Object.assign(local, change);
  if ('codeFullUntil' in change) armCodeTimer();
  render();
}

/** Redraws when the full-size code is due to shrink back to the band. */
function armCodeTimer(): void {
  window.clearTimeout(codeTimer);
  codeTimer = undefined;
  if (local.codeFullUntil === undefined) return;
  codeTimer = window.setTimeout(
    () => {
      codeTimer = undefined;
      if (local.codeFullUntil !== undefined && Date.now() >= local.codeFullUntil)
        local.codeFullUntil = undefined;
      render();
    },
    Math.max(0, local.codeFullUntil - Date.now()) + 50,
  );
}

function showToast(message: string): void {
  window.clearTimeout(toastTimer);
  setLocal({ toast: message });
  toastTimer = window.setTimeout(() => setLocal({ toast: undefined }), 6000);
}

async function act(path: string, body: Record<string, unknown> = {}): Promise<void> {
  setLocal({ busy: true });
  try {
    const res = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) {
      const payload = (await res.json().catch(() => ({}))) as { error?: string };
      showToast(payload.error ?? `The room could not do that (HTTP ${res.status}).`);
    } else if (path === '/api/meeting/join') {
      local.keypad = '';
    }
  } catch {
    showToast('The room daemon did not answer. Try again in a moment.');
  } finally {
    setLocal({ busy: false });
  }
}

function connect(): void {
  const events = new EventSource('/api/events');
  // After a (re)connect the daemon may have restarted with a lower revision: take its first push as is.
  let fresh = true;
  let downTimer: number | undefined;
  events.addEventListener('open', () => {
    fresh = true;
    window.clearTimeout(downTimer);
    downTimer = undefined;
    if (!local.connected) setLocal({ connected: true });
  });
  events.addEventListener('state', (ev) => {
    const next = JSON.parse((ev as MessageEvent<string>).data) as DeviceState;
    if (!fresh && state && next.revision <= state.revision) return;
    fresh = false;
    // A meeting that just became active shows its code full size first, even with video playing.
    const wasActive =
      state?.meeting?.status === 'active' && state.meeting.meetingId === next.meeting?.meetingId;
    if (next.meeting?.status === 'active' && !wasActive) {
      local.codeFullUntil = Date.now() + CODE_FULL_MS;
      armCodeTimer();
    }
    state = next;
    wall.update(next);
    local.connected = true;
    render();
  });
  events.addEventListener('error', () => {
    // A refused stream (an HTTP error instead of events) is final for EventSource: start over.
    if (events.readyState === EventSource.CLOSED) {
      window.clearTimeout(downTimer);
      setLocal({ connected: false });
      window.setTimeout(connect, 2000);
      return;
    }
    // EventSource retries on its own (about every second); say so only when the gap is long enough
    // to notice. Retries keep failing meanwhile, so arm the timer once, not on every error.
    if (downTimer !== undefined) return;
    downTimer = window.setTimeout(() => {
      downTimer = undefined;
      if (events.readyState !== EventSource.OPEN) setLocal({ connected: false });
    }, 2000);
  });
}

function tickClock(): void {
  const now = new Date();
  for (const el of document.querySelectorAll<HTMLElement>('[data-clock]')) {
    const text = el.dataset.clock === 'date' ? formatDate(now) : formatClock(now);
    if (el.textContent !== text) el.textContent = text;
  }
}

connect();
window.setInterval(tickClock, 1000);
// Rectangles are computed for the viewport (layout.ts): a new size needs a new layout.
window.addEventListener('resize', () => render());
window.addEventListener('pagehide', () => wall.close());
