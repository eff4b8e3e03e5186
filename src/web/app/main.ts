// Entry point of the web participant page (served at /join/ by the provisioning service). Keeps one
// state object, redraws it (view.ts) and runs the steps: sign-in (signin.ts), local media
// (media.ts), the meeting (session.ts: E2EE worker, transform worker, RTCPeerConnection).
import type { TransformStats, TrustAnchorsJson } from '../shared/messages.js';
import type { TileStats } from './call.js';
import { checkRelayUrl, type JoinTarget, parseJoinFragment } from './fragment.js';
import { type LocalMedia, openCamera, openLocalMedia, openScreen, screenRefusal } from './media.js';
import { Session } from './session.js';
import {
  currentSignIn,
  fetchPeopleConfig,
  finishSignIn,
  isSignInCallback,
  type PeopleConfig,
  SignInError,
  type SignedIn,
  signOut,
  startSignIn,
} from './signin.js';
import { type Actions, type AppState, type MediaElements, renderApp } from './view.js';

const root = document.getElementById('root')!;
const state: AppState = {
  screen: 'loading',
  busy: false,
  org: '',
  local: {
    audioMuted: false,
    videoOff: false,
    sharing: false,
    hasCamera: false,
    hasMicrophone: false,
    problems: [],
  },
};
let config: PeopleConfig | undefined;
let signedIn: SignedIn | undefined;
let relayAllowList: string[] = [];
let local: LocalMedia | undefined;
let screenTrack: MediaStreamTrack | null = null;
let session: Session | undefined;
/** The worker's view has named us as the sharer since we started sharing. */
let shareConfirmed = false;

// ---------------------------------------------------------------- media elements kept across redraws

const remoteVideos = new Map<string, HTMLVideoElement>();
const remoteAudios = new Map<string, HTMLAudioElement>();
const selfVideos: Partial<Record<'camera' | 'screen', HTMLVideoElement>> = {};

function videoFor(track: MediaStreamTrack, el?: HTMLVideoElement): HTMLVideoElement {
  const video = el ?? document.createElement('video');
  video.muted = true; // sound plays from the <audio> elements
  video.autoplay = true;
  video.playsInline = true;
  const current = video.srcObject as MediaStream | null;
  if (current?.getTracks()[0] !== track) {
    video.srcObject = new MediaStream([track]);
    video.play().catch(() => undefined);
  }
  return video;
}

function syncMediaElements(): void {
  const remote = session?.call.remote ?? new Map();
  for (const [mid, r] of remote) {
    if (r.label === 'audio') {
      let audio = remoteAudios.get(mid);
      if (!audio) {
        audio = document.createElement('audio');
        audio.autoplay = true;
        audio.dataset.testid = 'remote-audio';
        remoteAudios.set(mid, audio);
      }
      audio.dataset.participantId = r.publisher;
      if ((audio.srcObject as MediaStream | null)?.getTracks()[0] !== r.track) {
        audio.srcObject = new MediaStream([r.track]);
        audio.play().catch(() => undefined);
      }
    } else {
      remoteVideos.set(mid, videoFor(r.track, remoteVideos.get(mid)));
    }
  }
  for (const map of [remoteVideos, remoteAudios] as Map<string, HTMLMediaElement>[]) {
    for (const [mid, el] of map) {
      if (!remote.has(mid)) {
        el.srcObject = null;
        map.delete(mid);
      }
    }
  }
  if (local?.camera && local.camera.readyState === 'live') {
    selfVideos.camera = videoFor(local.camera, selfVideos.camera);
    selfVideos.camera.classList.add('mirror');
  } else delete selfVideos.camera;
  if (screenTrack && screenTrack.readyState === 'live')
    selfVideos.screen = videoFor(screenTrack, selfVideos.screen);
  else delete selfVideos.screen;
}

const media: MediaElements = {
  remoteVideo: (mid) => remoteVideos.get(mid),
  selfVideo: (which) => selfVideos[which],
  audios: () => [...remoteAudios.values()],
};

// ---------------------------------------------------------------- render

function render(): void {
  if (session) {
    state.meeting = {
      status: session.status.status,
      text: session.status.text,
      view: session.view,
      remote: [...session.call.remote.values()].map((r) => ({
        mid: r.mid,
        participantId: r.publisher,
        label: r.label,
      })),
      canShare: session.call.canShare,
    };
  }
  syncMediaElements();
  const focused = document.activeElement?.closest<HTMLElement>('[data-testid]')?.dataset.testid;
  root.replaceChildren(renderApp(state, actions, media));
  if (focused) root.querySelector<HTMLElement>(`[data-testid="${focused}"]`)?.focus({ preventScroll: true });
  const heading = root.querySelector('h1');
  document.title = heading?.textContent ? `${heading.textContent} · Sealroom` : 'Sealroom';
}

function update(change: Partial<AppState>): void {
  Object.assign(state, change);
  render();
}

function showError(err: unknown): void {
  if (err instanceof SignInError) update({ error: { text: err.message, code: err.code }, busy: false });
  else update({ error: { text: (err as Error).message || String(err) }, busy: false });
}

// ---------------------------------------------------------------- steps

function showSignedIn(s: SignedIn): void {
  signedIn = s;
  update({
    screen: 'ready',
    busy: false,
    person: { ...s.person, notAfter: s.notAfter },
  });
  // A meeting to join: show the camera before joining (and ask for camera and microphone now).
  if (state.target) ensureLocalMedia().catch(() => undefined);
}

async function trustAnchors(): Promise<TrustAnchorsJson> {
  const res = await fetch('/api/people/trust', { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`The trust anchors could not be loaded (HTTP ${res.status}).`);
  const t = (await res.json()) as Partial<TrustAnchorsJson>;
  return {
    orgCaPems: Array.isArray(t.orgCaPems) ? t.orgCaPems : [],
    partnerCaPems: Array.isArray(t.partnerCaPems) ? t.partnerCaPems : [],
    revokedSerials: Array.isArray(t.revokedSerials) ? t.revokedSerials : [],
  };
}

async function ensureLocalMedia(): Promise<void> {
  if (local) return;
  local = await openLocalMedia();
  // A new microphone keeps the mute the person chose.
  if (local.microphone) local.microphone.enabled = !state.local.audioMuted;
  state.local.hasCamera = !!local.camera;
  state.local.hasMicrophone = !!local.microphone;
  state.local.videoOff = !local.camera;
  state.local.problems = local.problems;
  render();
}

function stopLocalMedia(): void {
  for (const t of [local?.camera, local?.microphone, screenTrack]) if (t?.readyState === 'live') t.stop();
  local = undefined;
  screenTrack = null;
  state.local.sharing = false;
}

async function join(): Promise<void> {
  const target = state.target;
  if (!signedIn || !target) return;
  if (Date.parse(signedIn.notAfter) <= Date.now()) {
    await signOut();
    update({
      screen: 'sign-in',
      error: { text: 'Your certificate has expired. Sign in again.', code: 'certificate-expired' },
    });
    return;
  }
  update({ busy: true, error: undefined });
  try {
    const [trust] = await Promise.all([trustAnchors(), ensureLocalMedia()]);
    session?.close();
    session = new Session(target, {
      changed: () => onSessionChange(),
      shareResult: (enabled, ok, text) => {
        if (!ok && enabled) void stopSharing(text || 'The meeting refused the screen share.');
      },
    });
    await session.call.setTrack('microphone', local?.microphone ?? null);
    await session.call.setTrack('camera', state.local.videoOff ? null : (local?.camera ?? null));
    session.start(signedIn, trust, relayAllowList);
    if (state.local.audioMuted || state.local.videoOff)
      session.mute(state.local.audioMuted, state.local.videoOff);
    update({ screen: 'meeting', busy: false });
  } catch (err) {
    showError(err);
  }
}

function onSessionChange(): void {
  const s = session;
  if (!s) return;
  const { status } = s.status;
  // Out of the meeting: camera, microphone and screen are released (the camera light goes out).
  if (['denied', 'left', 'ended', 'refused', 'error'].includes(status)) {
    if (local || screenTrack) stopLocalMedia();
    render();
    return;
  }
  // One sharer per meeting: when someone else starts, the relay ends our share. Only after the view
  // once named us (right after we start, it may still name the previous sharer).
  const sharer = s.view?.sharer ?? null;
  const self = s.view?.participantId;
  if (state.local.sharing && self) {
    if (sharer === self) shareConfirmed = true;
    else if (shareConfirmed) {
      const by = s.view?.members.find((m) => m.participantId === sharer)?.name;
      void stopSharing(
        by ? `${by} started sharing; your screen is no longer shown.` : 'Your screen is no longer shown.',
      );
      return;
    }
  }
  render();
}

async function leave(): Promise<void> {
  const s = session;
  if (!s) return;
  await stopSharing();
  await s.leave();
  stopLocalMedia();
  // The worker is gone: show the outcome ourselves.
  s.status = { status: 'left', text: 'You left the meeting.' };
  render();
}

async function stopSharing(notice?: string): Promise<void> {
  const wasSharing = state.local.sharing;
  if (screenTrack?.readyState === 'live') screenTrack.stop();
  screenTrack = null;
  state.local.sharing = false;
  state.local.notice = notice;
  if (session) {
    await session.call.setTrack('content', null);
    if (wasSharing) session.share(false);
  }
  render();
}

async function startSharing(): Promise<void> {
  if (!session?.call.canShare) return;
  try {
    const track = await openScreen();
    screenTrack = track;
    // The browser's own "Stop sharing" bar ends the track: treat it like the button.
    track.addEventListener('ended', () => {
      if (screenTrack === track) void stopSharing();
    });
    await session.call.setTrack('content', track);
    session.share(true);
    shareConfirmed = false;
    state.local.sharing = true;
    state.local.notice = undefined;
    render();
  } catch (err) {
    state.local.notice = screenRefusal(err);
    render();
  }
}

const actions: Actions = {
  signIn() {
    if (!config) return;
    update({ busy: true, error: undefined });
    startSignIn(config).catch(showError);
  },
  signOut() {
    session?.close();
    session = undefined;
    stopLocalMedia();
    signedIn = undefined;
    void signOut().then(() =>
      update({ screen: 'sign-in', person: undefined, meeting: undefined, error: undefined }),
    );
  },
  join: () => void join(),
  rejoin: () => {
    session?.close();
    session = undefined;
    state.meeting = undefined;
    state.screen = 'ready';
    void join();
  },
  leave: () => void leave(),
  toggleMute() {
    const mic = local?.microphone;
    if (!mic) return;
    state.local.audioMuted = !state.local.audioMuted;
    mic.enabled = !state.local.audioMuted;
    session?.mute(state.local.audioMuted, state.local.videoOff);
    render();
  },
  toggleCamera() {
    void (async () => {
      if (state.local.videoOff) {
        try {
          const cam = await openCamera();
          if (local) local.camera = cam;
          state.local.hasCamera = true;
          state.local.videoOff = false;
          await session?.call.setTrack('camera', cam);
        } catch (err) {
          state.local.notice = `The camera could not be started: ${(err as Error).message}`;
        }
      } else {
        // Off means off: nothing is sent and the camera light goes out.
        state.local.videoOff = true;
        await session?.call.setTrack('camera', null);
        local?.camera?.stop();
        if (local) local.camera = null;
      }
      session?.mute(state.local.audioMuted, state.local.videoOff);
      render();
    })();
  },
  toggleShare() {
    if (state.local.sharing) void stopSharing();
    else void startSharing();
  },
};

// ---------------------------------------------------------------- boot

function readTarget(): void {
  const parsed = parseJoinFragment(location.hash);
  state.target = undefined;
  state.targetError = undefined;
  let target: JoinTarget | undefined;
  if (parsed.ok === true) target = parsed.target;
  else if (parsed.ok === false) {
    // A link with only a meeting id uses the organisation's relay.
    const params = new URLSearchParams(location.hash.slice(1));
    const meeting = params.get('meeting');
    const fallback = config?.relayUrl ? checkRelayUrl(config.relayUrl) : undefined;
    const again =
      meeting && fallback && !params.has('relay')
        ? parseJoinFragment(`#${new URLSearchParams({ meeting, relay: fallback })}`)
        : parsed;
    if (again.ok === true) target = again.target;
    else if (again.ok === false) state.targetError = again.reason;
  }
  if (target && relayAllowList.length > 0 && !relayAllowList.includes(target.relayUrl)) {
    state.targetError = `This link points at a relay this organisation does not use (${target.relayUrl}). Ask the room for a new link.`;
    target = undefined;
  }
  state.target = target;
}

async function loadRelayAllowList(): Promise<string[]> {
  try {
    const res = await fetch('/join/relays.json', { headers: { accept: 'application/json' } });
    if (!res.ok) return [];
    const body = (await res.json()) as { relayUrls?: unknown };
    return Array.isArray(body.relayUrls)
      ? body.relayUrls.filter((r): r is string => typeof r === 'string')
      : [];
  } catch {
    return [];
  }
}

async function boot(): Promise<void> {
  render();
  try {
    [config, relayAllowList] = await Promise.all([fetchPeopleConfig(), loadRelayAllowList()]);
    state.org = config.org;
  } catch (err) {
    state.screen = 'sign-in';
    showError(err);
    return;
  }
  const callback = isSignInCallback();
  if (callback) {
    update({ screen: 'sign-in', busy: true });
    try {
      const s = await finishSignIn(config);
      readTarget();
      showSignedIn(s);
    } catch (err) {
      readTarget();
      state.screen = 'sign-in';
      showError(err);
    }
    return;
  }
  readTarget();
  const existing = await currentSignIn().catch(() => undefined);
  if (existing) showSignedIn(existing);
  else update({ screen: 'sign-in' });
}

window.addEventListener('hashchange', () => {
  readTarget();
  render();
});
window.addEventListener('pagehide', () => session?.close());
// Keeps the certificate's "in 11 h 58 min" current.
window.setInterval(() => {
  if (state.screen === 'ready') render();
}, 30_000);

// Test and benchmark hook: counters only (the transform worker's and decoded frames per tile), no keys.
async function sealroomWebStats(): Promise<{
  transform: TransformStats;
  tiles: TileStats[];
  connectionState: RTCPeerConnectionState;
  signallingErrors: string[];
}> {
  if (!session)
    return {
      transform: { streams: {}, epoch: 0, sending: false },
      tiles: [],
      connectionState: 'new',
      signallingErrors: [],
    };
  const [transform, tiles] = await Promise.all([session.transformStats(), session.tileStats()]);
  return {
    transform,
    tiles,
    connectionState: session.call.connectionState,
    signallingErrors: [...session.call.errors],
  };
}
declare global {
  interface Window {
    sealroomWebStats: typeof sealroomWebStats;
    sealroomDebug: { stats: typeof sealroomWebStats };
  }
}
window.sealroomWebStats = sealroomWebStats;
window.sealroomDebug = { stats: sealroomWebStats };

void boot();
