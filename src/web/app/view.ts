// The screens, as pure functions of the page state: sign in → signed in (certificate) → waiting →
// the meeting (tiles, security code, verified roster, controls) → an outcome. Every name shown comes
// from the E2EE worker's verified view (certificates checked in the page's worker), never from the relay.
import type { MeetingStatus, MeetingView, VerifiedMember } from '../shared/messages.js';
import { h } from '../../../kiosk-ui/src/dom.js';
import { codeRows, expiryText, participantLine, securityCodeGroups } from './format.js';
import type { JoinTarget } from './fragment.js';
import type { MediaLabel } from './sdp.js';

export interface RemoteTile {
  mid: string;
  participantId: string;
  label: MediaLabel;
}

export interface AppState {
  screen: 'loading' | 'sign-in' | 'ready' | 'meeting';
  busy: boolean;
  org: string;
  target?: JoinTarget;
  targetError?: string;
  error?: { text: string; code?: string };
  person?: { name: string; email: string; org: string; notAfter: string };
  meeting?: {
    status: MeetingStatus;
    text: string;
    view?: MeetingView;
    remote: RemoteTile[];
    canShare: boolean;
  };
  local: {
    audioMuted: boolean;
    videoOff: boolean;
    sharing: boolean;
    hasCamera: boolean;
    hasMicrophone: boolean;
    problems: string[];
    notice?: string;
  };
}

export interface Actions {
  signIn(): void;
  signOut(): void;
  join(): void;
  leave(): void;
  toggleMute(): void;
  toggleCamera(): void;
  toggleShare(): void;
  rejoin(): void;
}

/** Video and audio elements live outside the render (kept across redraws, so nothing restarts). */
export interface MediaElements {
  remoteVideo(mid: string): HTMLVideoElement | undefined;
  selfVideo(which: 'camera' | 'screen'): HTMLVideoElement | undefined;
  audios(): HTMLAudioElement[];
}

export function renderApp(s: AppState, act: Actions, media: MediaElements): HTMLElement {
  const main =
    s.screen === 'loading'
      ? h('main', { class: 'centre', 'data-screen': 'loading' }, h('p', { class: 'lead' }, 'Loading…'))
      : s.screen === 'sign-in'
        ? signInScreen(s, act)
        : s.screen === 'ready' || !s.meeting
          ? readyScreen(s, act, media)
          : meetingScreen(s, act, media);
  return h(
    'div',
    { class: 'app' },
    main,
    h('div', { class: 'audio-sink', 'aria-hidden': 'true' }, media.audios()),
  );
}

function brand(org: string): HTMLElement {
  return h(
    'header',
    { class: 'brand' },
    h('span', { class: 'logo', 'aria-hidden': 'true' }, '■'),
    h('span', { class: 'product' }, 'Sealroom'),
    org ? h('span', { class: 'org' }, org) : null,
  );
}

function errorBox(s: AppState): HTMLElement | null {
  if (!s.error) return null;
  return h(
    'div',
    { class: 'error', role: 'alert', 'data-testid': 'error', 'data-code': s.error.code },
    h('p', null, s.error.text),
    s.error.code ? h('p', { class: 'code-hint' }, `Reason code: ${s.error.code}`) : null,
  );
}

function targetLine(s: AppState): HTMLElement | null {
  if (s.targetError)
    return h('p', { class: 'warning', 'data-testid': 'link-error', role: 'alert' }, s.targetError);
  if (!s.target)
    return h('p', { class: 'muted' }, 'Open a meeting link from a room screen to join a meeting.');
  return h(
    'p',
    { class: 'target', 'data-testid': 'target' },
    'Meeting ',
    h('strong', { class: 'mono' }, s.target.meetingId),
  );
}

function signInScreen(s: AppState, act: Actions): HTMLElement {
  return h(
    'main',
    { class: 'centre', 'data-screen': 'sign-in' },
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'signin-title' },
      brand(s.org),
      h('h1', { id: 'signin-title' }, 'Join an encrypted meeting'),
      targetLine(s),
      h(
        'p',
        null,
        'Sign in with your organisation account. The rooms in the meeting see your name and email from a ' +
          'certificate made for this browser only; it expires within 12 hours.',
      ),
      errorBox(s),
      h(
        'button',
        {
          class: 'primary',
          type: 'button',
          'data-testid': 'sign-in',
          disabled: s.busy,
          onclick: () => act.signIn(),
        },
        s.busy ? 'Signing in…' : s.org ? `Sign in with ${s.org}` : 'Sign in',
      ),
    ),
  );
}

function identityCard(s: AppState, act: Actions): HTMLElement | null {
  const p = s.person;
  if (!p) return null;
  return h(
    'section',
    { class: 'identity', 'data-testid': 'identity', 'aria-label': 'Signed in as' },
    h('p', { class: 'who' }, h('span', { 'data-testid': 'person-name', class: 'name' }, p.name)),
    h('p', { 'data-testid': 'person-email' }, p.email),
    h('p', { 'data-testid': 'person-org' }, p.org),
    h(
      'p',
      { class: 'muted', 'data-testid': 'cert-expiry', 'data-not-after': p.notAfter },
      `Certificate valid ${expiryText(new Date(p.notAfter), new Date())}`,
    ),
    h(
      'button',
      { class: 'link', type: 'button', 'data-testid': 'sign-out', onclick: () => act.signOut() },
      'Sign out',
    ),
  );
}

function readyScreen(s: AppState, act: Actions, media: MediaElements): HTMLElement {
  return h(
    'main',
    { class: 'centre', 'data-screen': 'ready' },
    h(
      'section',
      { class: 'card wide', 'aria-labelledby': 'ready-title' },
      brand(s.org),
      h('h1', { id: 'ready-title' }, 'Signed in'),
      identityCard(s, act),
      targetLine(s),
      errorBox(s),
      problems(s),
      h(
        'button',
        {
          class: 'primary',
          type: 'button',
          'data-testid': 'join',
          disabled: s.busy || !s.target,
          onclick: () => act.join(),
        },
        s.busy ? 'Joining…' : 'Join meeting',
      ),
    ),
    selfPreview(s, media),
  );
}

function problems(s: AppState): HTMLElement | null {
  if (s.local.problems.length === 0 && !s.local.notice) return null;
  return h(
    'ul',
    { class: 'notices', 'data-testid': 'notices' },
    s.local.problems.map((p) => h('li', null, p)),
    s.local.notice ? h('li', { role: 'status' }, s.local.notice) : null,
  );
}

function selfPreview(s: AppState, media: MediaElements): HTMLElement | null {
  const cam = media.selfVideo('camera');
  if (!cam || s.local.videoOff) return null;
  return h(
    'figure',
    { class: 'tile self', 'data-testid': 'self-tile' },
    cam,
    h('figcaption', null, 'You (preview)'),
  );
}

const OUTCOME: Partial<Record<MeetingStatus, string>> = {
  denied: 'The room did not let you in.',
  left: 'You left the meeting.',
  ended: 'The meeting has ended.',
  refused: 'The meeting refused the connection.',
  error: 'The connection to the meeting failed.',
};

function statusLine(status: MeetingStatus, text: string): HTMLElement {
  const fallback: Record<MeetingStatus, string> = {
    connecting: 'Connecting…',
    waiting: 'Waiting for the room to let you in…',
    admitted: 'In the meeting',
    denied: OUTCOME.denied!,
    left: OUTCOME.left!,
    ended: OUTCOME.ended!,
    refused: OUTCOME.refused!,
    error: OUTCOME.error!,
  };
  return h(
    'p',
    {
      class: `status status-${status}`,
      'data-testid': 'status',
      'data-status': status,
      role: 'status',
      'aria-live': 'polite',
    },
    text || fallback[status],
  );
}

function meetingScreen(s: AppState, act: Actions, media: MediaElements): HTMLElement {
  const m = s.meeting!;
  if (m.status === 'connecting' || m.status === 'waiting') {
    return h(
      'main',
      { class: 'centre', 'data-screen': 'waiting' },
      h(
        'section',
        { class: 'card wide', 'aria-labelledby': 'waiting-title' },
        brand(s.org),
        h('h1', { id: 'waiting-title' }, m.status === 'waiting' ? 'Waiting to be let in' : 'Connecting'),
        targetLine(s),
        statusLine(m.status, m.text),
        h(
          'p',
          { class: 'muted' },
          'A room in the meeting sees your name, email and organisation from your certificate and decides.',
        ),
        problems(s),
        h(
          'button',
          { class: 'danger', type: 'button', 'data-testid': 'leave', onclick: () => act.leave() },
          'Cancel',
        ),
      ),
      selfPreview(s, media),
    );
  }
  if (m.status !== 'admitted') {
    return h(
      'main',
      { class: 'centre', 'data-screen': 'outcome' },
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'outcome-title' },
        brand(s.org),
        h('h1', { id: 'outcome-title' }, OUTCOME[m.status] ?? 'Not in the meeting'),
        statusLine(m.status, m.text),
        errorBox(s),
        h(
          'div',
          { class: 'row' },
          h(
            'button',
            { class: 'primary', type: 'button', 'data-testid': 'rejoin', onclick: () => act.rejoin() },
            'Join again',
          ),
          h(
            'button',
            { type: 'button', 'data-testid': 'sign-out', onclick: () => act.signOut() },
            'Sign out',
          ),
        ),
      ),
    );
  }
  return h(
    'main',
    { class: 'meeting', 'data-screen': 'meeting' },
    h(
      'div',
      { class: 'topbar' },
      brand(s.org),
      h(
        'span',
        { class: 'mono meeting-id', 'aria-label': 'Meeting id' },
        m.view?.meetingId ?? s.target?.meetingId ?? '',
      ),
      statusLine(m.status, m.text),
      m.view && !m.view.sending
        ? h(
            'span',
            { class: 'badge warn', 'data-testid': 'paused', role: 'status' },
            'Your media is paused while keys change',
          )
        : null,
    ),
    stage(s, media),
    h(
      'aside',
      { class: 'side', 'aria-label': 'Security code and participants' },
      codePanel(m.view),
      roster(m.view),
    ),
    controls(s, act),
  );
}

function memberOf(view: MeetingView | undefined, pid: string): VerifiedMember | undefined {
  return view?.members.find((x) => x.participantId === pid);
}

function stage(s: AppState, media: MediaElements): HTMLElement {
  const m = s.meeting!;
  const videos = m.remote.filter((r) => r.label !== 'audio');
  // Only a verified member's screen goes in the content slot, and only the one the view names.
  const content = videos.filter((r) => r.label === 'content');
  const cameras = videos.filter((r) => r.label === 'video');
  const tiles: HTMLElement[] = [];
  for (const r of [...content, ...cameras]) {
    const video = media.remoteVideo(r.mid);
    if (!video) continue;
    const member = memberOf(m.view, r.participantId);
    const who = member ? participantLine(member) : 'Unverified participant';
    const kind = r.label === 'content' ? 'content' : 'camera';
    video.dataset.participantId = r.participantId;
    video.dataset.kind = kind;
    tiles.push(
      h(
        'figure',
        {
          class: `tile ${kind}${member ? '' : ' unverified'}`,
          'data-testid': 'tile',
          'data-participant-id': r.participantId,
          'data-kind': kind,
          'data-mid': r.mid,
        },
        video,
        h(
          'figcaption',
          null,
          kind === 'content' ? `Screen of ${member?.name ?? 'an unverified participant'}` : who,
        ),
      ),
    );
  }
  const self: HTMLElement[] = [];
  const cam = media.selfVideo('camera');
  if (cam && !s.local.videoOff) {
    self.push(
      h('figure', { class: 'tile self', 'data-testid': 'self-tile' }, cam, h('figcaption', null, 'You')),
    );
  }
  const screen = media.selfVideo('screen');
  if (screen && s.local.sharing) {
    self.push(
      h(
        'figure',
        { class: 'tile self content', 'data-testid': 'self-screen' },
        screen,
        h('figcaption', null, 'Your screen (everyone sees this)'),
      ),
    );
  }
  const hasContent = content.length > 0 || s.local.sharing;
  return h(
    'section',
    {
      class: `stage${hasContent ? ' with-content' : ''}`,
      'aria-label': 'Video',
      'data-testid': 'stage',
      'data-tiles': tiles.length,
    },
    tiles.length === 0
      ? h('p', { class: 'muted centre-text', 'data-testid': 'no-video' }, 'No video from the others yet.')
      : null,
    tiles,
    self,
  );
}

function codePanel(view: MeetingView | undefined): HTMLElement {
  if (!view?.securityCode) {
    return h(
      'section',
      { class: 'code-panel pending', 'data-testid': 'security-code-pending' },
      h('p', null, 'Waiting for the meeting key…'),
    );
  }
  return h(
    'section',
    { class: 'code-panel', 'aria-labelledby': 'code-title' },
    h('h2', { id: 'code-title' }, 'Security code'),
    h('p', { class: 'muted' }, 'Compare it with the room screens: everyone must see the same digits.'),
    h(
      'div',
      { class: 'code', 'data-testid': 'security-code', 'aria-label': `Security code ${view.securityCode}` },
      codeRows(securityCodeGroups(view.securityCode)).map((row) =>
        h(
          'span',
          { class: 'code-row' },
          row.map((group) =>
            h(
              'span',
              { class: 'code-group' },
              [...group].map((d) => h('span', { class: 'digit' }, d)),
            ),
          ),
        ),
      ),
    ),
  );
}

function roster(view: MeetingView | undefined): HTMLElement {
  const members = [...(view?.members ?? [])].sort((a, b) => a.senderIndex - b.senderIndex);
  return h(
    'section',
    { class: 'roster-panel', 'aria-labelledby': 'roster-title' },
    h('h2', { id: 'roster-title' }, `In the meeting (${members.length})`),
    h(
      'ul',
      { class: 'roster', 'data-testid': 'roster' },
      members.map((p) =>
        h(
          'li',
          {
            'data-testid': 'roster-entry',
            'data-participant-id': p.participantId,
            'data-kind': p.kind,
            class: p.self ? 'self' : undefined,
          },
          h('span', { class: 'kind', 'aria-hidden': 'true' }, p.kind === 'room' ? '▣' : '●'),
          h(
            'span',
            null,
            h('span', { class: 'line', 'data-testid': 'roster-line' }, participantLine(p)),
            p.leader ? [' ', h('span', { class: 'badge' }, 'leads')] : null,
            p.self ? [' ', h('span', { class: 'badge' }, 'you')] : null,
            view?.sharer === p.participantId ? [' ', h('span', { class: 'badge' }, 'sharing')] : null,
          ),
        ),
      ),
      (view?.refused ?? []).map((pid) =>
        h(
          'li',
          { 'data-testid': 'roster-refused', 'data-participant-id': pid, class: 'refused' },
          h('span', { class: 'kind', 'aria-hidden': 'true' }, '!'),
          h(
            'span',
            { class: 'line' },
            'A participant whose certificate did not verify (not shown, not trusted)',
          ),
        ),
      ),
    ),
  );
}

function controls(s: AppState, act: Actions): HTMLElement {
  const l = s.local;
  const m = s.meeting!;
  return h(
    'nav',
    { class: 'controls', 'aria-label': 'Meeting controls' },
    h(
      'button',
      {
        type: 'button',
        'data-testid': 'mute',
        'aria-pressed': String(l.audioMuted),
        disabled: !l.hasMicrophone,
        onclick: () => act.toggleMute(),
      },
      l.audioMuted ? 'Unmute' : 'Mute',
    ),
    h(
      'button',
      {
        type: 'button',
        'data-testid': 'camera',
        'aria-pressed': String(l.videoOff),
        onclick: () => act.toggleCamera(),
      },
      l.videoOff ? 'Start camera' : 'Stop camera',
    ),
    h(
      'button',
      {
        type: 'button',
        'data-testid': 'share',
        'aria-pressed': String(l.sharing),
        disabled: !m.canShare && !l.sharing,
        title: m.canShare ? undefined : 'The relay has not offered a line for screen sharing yet',
        onclick: () => act.toggleShare(),
      },
      l.sharing ? 'Stop sharing' : 'Share screen',
    ),
    h(
      'button',
      { class: 'danger', type: 'button', 'data-testid': 'leave', onclick: () => act.leave() },
      'Leave',
    ),
    l.notice ? h('p', { class: 'notice', role: 'status', 'data-testid': 'notice' }, l.notice) : null,
  );
}
