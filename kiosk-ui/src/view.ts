// The screens: each is a function of the daemon state (plus the little the screen keeps itself, such
// as digits typed on the keypad) that returns fresh DOM. Buttons call `act`, which posts to the
// local control API.
import type { DeviceState, MeetingView, RosterEntry, VerifiedIdentity } from '../../device/daemon/state.js';
import { h, svg } from './dom.js';
import {
  alertsFor,
  codeRows,
  type WallModel,
  type WallTile,
  wallModel,
  formatClock,
  formatDate,
  identityParts,
  identityText,
  SIGNED_IN,
  keypadPress,
  meetingIdFromKeys,
  type ScreenName,
  screenFor,
  securityCodeGroups,
  spacedMeetingId,
  updateNotice,
} from './format.js';
import { type CodeMode, type MeetingLayout, meetingLayout, type Rect, rectCss } from './layout.js';
import type { WallStatus } from './wall.js';

export interface LocalState {
  keypad: string;
  connected: boolean;
  toast?: string;
  busy: boolean;
  /** While video plays, the security code is shown full size until then (epoch ms), else as a band. */
  codeFullUntil?: number;
}

/** The wall connection as the screens see it: a playing <video> per m-line, and how it goes. */
export interface WallView {
  video(mid: string): HTMLVideoElement | undefined;
  status: WallStatus;
}

const NO_WALL: WallView = { video: () => undefined, status: 'no-token' };

export interface Handlers {
  act(path: string, body?: Record<string, unknown>): void;
  setLocal(change: Partial<LocalState>): void;
}

const LOCK_ICON =
  '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M12 2a5 5 0 0 0-5 5v3H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-8a2 2 0 0 0-2-2h-1V7a5 5 0 0 0-5-5zm-3 8V7a3 3 0 1 1 6 0v3H9z"/></svg>';

/** Full size while the leader change is unconfirmed, or until `codeFullUntil`; else the band. */
export function codeModeFor(meeting: MeetingView, local: LocalState, now = Date.now()): CodeMode {
  if (meeting.leaderChanged) return 'full';
  return local.codeFullUntil !== undefined && now < local.codeFullUntil ? 'full' : 'band';
}

export function renderApp(
  state: DeviceState,
  local: LocalState,
  on: Handlers,
  wall: WallView = NO_WALL,
): HTMLElement {
  const screen = screenFor(state);
  const model = screen === 'meeting' ? wallModel(state) : undefined;
  const video = model?.hasVideo === true;
  return h(
    'div',
    {
      class: `app screen-${screen}${video ? ' layout-video' : ''}`,
      'data-screen': screen,
      'data-revision': state.revision,
    },
    topBar(state, screen),
    video ? null : alertBar(state, local),
    h(
      'main',
      { class: 'main' },
      video
        ? videoMeetingScreen(state, state.meeting!, model!, local, on, wall)
        : screenBody(screen, state, local, on, wall),
    ),
    local.toast ? h('div', { class: 'toast', role: 'status' }, local.toast) : null,
  );
}

function screenBody(
  screen: ScreenName,
  state: DeviceState,
  local: LocalState,
  on: Handlers,
  wall: WallView,
): HTMLElement {
  switch (screen) {
    case 'enrollment':
      return enrollmentScreen(state);
    case 'idle':
      return idleScreen(local, on);
    case 'meeting':
      return meetingScreen(state, state.meeting!, local, on, wall);
    default:
      return startupScreen(state);
  }
}

function topBar(state: DeviceState, screen: ScreenName): HTMLElement {
  const now = new Date();
  return h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'room-name', 'data-testid': 'room-name' }, state.device.roomName ?? 'Sealroom'),
    h(
      'div',
      { class: 'topbar-middle' },
      state.device.org ? h('span', { class: 'muted' }, state.device.org) : null,
      screen === 'meeting' ? null : updateIndicator(state),
    ),
    screen === 'idle' ? null : h('div', { class: 'clock-small', 'data-clock': 'time' }, formatClock(now)),
  );
}

/** Over-the-air update progress (never in a meeting: updates wait for the meeting's end anyway). */
function updateIndicator(state: DeviceState): HTMLElement | null {
  const notice = updateNotice(state);
  if (!notice) return null;
  return h(
    'span',
    { class: 'update-notice', role: 'status', 'data-testid': 'update-notice' },
    notice.text,
    notice.progress !== undefined
      ? h('progress', { class: 'update-progress', max: 100, value: Math.floor(notice.progress * 100) })
      : null,
  );
}

function alertBar(state: DeviceState, local: LocalState): HTMLElement | null {
  const alerts = alertsFor(state, local.connected);
  if (alerts.length === 0) return null;
  return h(
    'section',
    { class: 'alerts', 'aria-label': 'Alerts', 'data-testid': 'alerts' },
    alerts.map((a) =>
      h('div', { class: `alert alert-${a.level}`, role: 'alert', 'data-alert': a.id }, a.message),
    ),
  );
}

function startupScreen(state: DeviceState): HTMLElement {
  const failed = state.diagnostics.filter((d) => !d.ok).length;
  return h(
    'div',
    { class: 'startup' },
    h('h1', { class: 'title' }, state.phase === 'error' ? 'This room needs attention' : 'Starting up…'),
    h(
      'p',
      { class: 'muted' },
      failed > 0
        ? `${failed} check${failed === 1 ? '' : 's'} failed. Contact IT if this does not clear.`
        : 'Checking camera, microphone, display and network.',
    ),
    h(
      'ul',
      { class: 'diagnostics', 'data-testid': 'diagnostics', tabindex: 0 },
      state.diagnostics.map((d) =>
        h(
          'li',
          { class: d.ok ? 'diag ok' : 'diag fail' },
          h('span', { class: 'diag-mark', 'aria-label': d.ok ? 'passed' : 'failed' }, d.ok ? 'OK' : 'FAIL'),
          h('span', { class: 'diag-name' }, d.name),
          h('span', { class: 'diag-detail muted' }, d.detail),
        ),
      ),
    ),
    h('p', { class: 'version muted' }, `Sealroom ${state.device.version}`),
  );
}

function enrollmentScreen(state: DeviceState): HTMLElement {
  const enrollment = state.enrollment;
  const code = enrollment?.activationCode;
  const expires = enrollment?.expiresAt ? new Date(enrollment.expiresAt) : undefined;
  return h(
    'div',
    { class: 'enrollment' },
    h(
      'div',
      { class: 'enroll-text' },
      h('h1', { class: 'title' }, 'Set up this room'),
      code
        ? h(
            'div',
            { class: 'activation' },
            h('div', { class: 'label' }, 'Activation code'),
            h('div', { class: 'activation-code', 'data-testid': 'activation-code' }, code),
            expires
              ? h('div', { class: 'muted' }, `Valid until ${formatClock(expires)} on ${formatDate(expires)}`)
              : null,
          )
        : h('p', { class: 'lead' }, enrollmentProgress(enrollment?.status)),
      h(
        'ol',
        { class: 'instructions' },
        h(
          'li',
          null,
          'IT: open the provisioning console',
          enrollment?.claimUrl ? h('span', { class: 'url' }, ` (${enrollment.claimUrl})`) : null,
          ' or scan the QR code.',
        ),
        h('li', null, 'Enter the activation code, then assign the room name, site and policy.'),
        h('li', null, 'This screen switches to the room view on its own once the device is claimed.'),
      ),
      enrollment?.message ? h('p', { class: 'muted' }, enrollment.message) : null,
    ),
    enrollment?.claimUrl
      ? h(
          'div',
          { class: 'qr' },
          h('img', {
            src: `/api/enrollment/qr.svg?u=${encodeURIComponent(enrollment.claimUrl)}`,
            alt: 'QR code to claim this device',
            'data-testid': 'claim-qr',
          }),
        )
      : null,
  );
}

function enrollmentProgress(status: string | undefined): string {
  switch (status) {
    case 'generating-key':
      return 'Creating this device’s identity key…';
    case 'registering':
      return 'Registering with the provisioning service…';
    case 'fetching-certificate':
      return 'Claimed. Fetching the device certificate…';
    case 'error':
      return 'Enrollment failed. Retrying…';
    default:
      return 'Preparing enrollment…';
  }
}

function idleScreen(local: LocalState, on: Handlers): HTMLElement {
  const now = new Date();
  const rows = ['1234567890', 'qwertyuiop', 'asdfghjkl', 'zxcvbnm'].map((r) => [...r]);
  rows[3]!.push('back');
  rows[2]!.push('clear');
  const label = (k: string) => (k === 'back' ? '⌫' : k === 'clear' ? 'Clear' : k.toUpperCase());
  const aria = (k: string) =>
    k === 'back' ? 'Delete last character' : k === 'clear' ? 'Clear' : k.toUpperCase();
  const typed = meetingIdFromKeys(local.keypad);
  return h(
    'div',
    { class: 'idle' },
    h(
      'div',
      { class: 'idle-left' },
      h('div', { class: 'clock', 'data-clock': 'time', 'data-testid': 'clock' }, formatClock(now)),
      h('div', { class: 'date', 'data-clock': 'date' }, formatDate(now)),
      h(
        'button',
        {
          class: 'btn btn-primary btn-huge',
          'data-testid': 'start-meeting',
          disabled: local.busy,
          onclick: () => on.act('/api/meeting/start'),
        },
        'Start meeting',
      ),
    ),
    h(
      'div',
      { class: 'join', role: 'group', 'aria-label': 'Join a meeting by its id' },
      h('div', { class: 'label' }, 'Join by meeting ID'),
      h(
        'output',
        { class: 'keypad-display', 'data-testid': 'keypad-display', 'aria-live': 'polite' },
        typed || h('span', { class: 'placeholder' }, 'Meeting ID'),
      ),
      h(
        'div',
        { class: 'keypad' },
        rows.map((row) =>
          h(
            'div',
            { class: 'keypad-row' },
            row.map((k) =>
              h(
                'button',
                {
                  class: k === 'back' || k === 'clear' ? 'btn key key-wide' : 'btn key',
                  'data-key': k,
                  'aria-label': aria(k),
                  onclick: () => on.setLocal({ keypad: keypadPress(local.keypad, k) }),
                },
                label(k),
              ),
            ),
          ),
        ),
      ),
      h(
        'button',
        {
          class: 'btn btn-primary',
          'data-testid': 'join-meeting',
          disabled: local.keypad.length === 0 || local.busy,
          onclick: () => on.act('/api/meeting/join', { meetingId: typed }),
        },
        'Join',
      ),
    ),
  );
}

/** A room: "name org"; a person: "Alice Smith · alice@example.org · Example Corp · signed in". */
function identityLine(who: VerifiedIdentity): HTMLElement {
  const p = identityParts(who);
  if (!p.signedIn)
    return h(
      'span',
      { class: 'identity' },
      h('span', { class: 'identity-room' }, p.name),
      h('span', { class: 'identity-org' }, p.org),
    );
  const sep = () => h('span', { class: 'identity-sep', 'aria-hidden': 'true' }, '·');
  return h(
    'span',
    { class: 'identity identity-person', 'data-kind': 'person', title: identityText(who) },
    h('span', { class: 'identity-room' }, p.name),
    p.email ? sep() : null,
    p.email ? h('span', { class: 'identity-email' }, p.email) : null,
    sep(),
    h('span', { class: 'identity-org' }, p.org),
    sep(),
    h('span', { class: 'identity-signed-in' }, SIGNED_IN),
  );
}

function meetingHead(meeting: MeetingView, wall: WallView): HTMLElement {
  return h(
    'div',
    { class: 'meeting-head' },
    h(
      'span',
      { class: 'badge badge-e2ee', 'data-testid': 'e2ee-badge' },
      svg(LOCK_ICON),
      'End-to-end encrypted',
    ),
    h('span', { class: 'meeting-id' }, 'Meeting ', h('strong', null, spacedMeetingId(meeting.meetingId))),
    meeting.locked ? h('span', { class: 'badge badge-locked' }, 'Locked') : null,
    sendingBadge(meeting),
    meeting.keyEpoch !== undefined ? h('span', { class: 'muted' }, `Key #${meeting.keyEpoch}`) : null,
    wallHint(wall),
  );
}

/** A quiet line for developers who opened the page without the kiosk link's key (no video then). */
function wallHint(wall: WallView): HTMLElement | null {
  const text =
    wall.status === 'no-token'
      ? 'Video needs the kiosk link with its key'
      : wall.status === 'refused'
        ? 'The video key was refused: reopen the kiosk link'
        : undefined;
  return text ? h('span', { class: 'muted wall-hint', 'data-testid': 'wall-hint' }, text) : null;
}

function leaderLine(meeting: MeetingView, on: Handlers): HTMLElement {
  return meeting.leaderChanged
    ? h(
        'div',
        { class: 'recheck', role: 'alert', 'data-testid': 'leader-changed' },
        h(
          'span',
          null,
          'The leader changed',
          meeting.leader ? ` to ${meeting.leader.roomName} (${meeting.leader.org})` : '',
          '. Read the new code aloud and compare it with every other room.',
        ),
        h(
          'button',
          {
            class: 'btn btn-primary',
            'data-testid': 'ack-leader',
            onclick: () => on.act('/api/meeting/ack-leader'),
          },
          'Code matches',
        ),
      )
    : h(
        'div',
        { class: 'leader', 'data-testid': 'leader' },
        h('span', { class: 'muted' }, 'Leader (verified): '),
        meeting.leader ? identityLine(meeting.leader) : h('span', null, 'unknown'),
      );
}

function meetingScreen(
  state: DeviceState,
  meeting: MeetingView,
  local: LocalState,
  on: Handlers,
  wall: WallView,
): HTMLElement {
  if (meeting.status !== 'active') return meetingStatusScreen(meeting, local, on);
  const leading = meeting.role === 'leader';
  return h(
    'div',
    { class: 'meeting' },
    meetingHead(meeting, wall),
    codePanel(meeting),
    leaderLine(meeting, on),
    h(
      'div',
      { class: 'meeting-lists' },
      rosterPanel(meeting.roster),
      leading ? waitingPanel(meeting, on) : null,
    ),
    controlBar(state, meeting, local, on),
  );
}

/** Why this room sends nothing right now, if it does not (the media engine was told so too). */
function sendingBadge(meeting: MeetingView): HTMLElement | null {
  if (meeting.leaderLost)
    return h(
      'span',
      { class: 'badge badge-paused', 'data-testid': 'sending-paused', 'data-reason': 'leader-lost' },
      'Lost contact with the meeting leader',
    );
  if (meeting.rekeying)
    return h(
      'span',
      { class: 'badge badge-paused', 'data-testid': 'sending-paused', 'data-reason': 'rekeying' },
      'Rekeying…',
    );
  return null;
}

/** The 40 digits: `perRow` groups a row (4: two rows, full size; 8: one row, the band). */
function codeDigits(code: string, perRow: number): HTMLElement {
  // Spans (styled as blocks) so the code may sit inside a button: the band and the full panel are taps.
  return h(
    'span',
    { class: 'code', 'data-testid': 'security-code' },
    codeRows(securityCodeGroups(code), perRow).map((row) =>
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
  );
}

function codePanel(meeting: MeetingView): HTMLElement {
  if (!meeting.securityCode) {
    return h(
      'section',
      { class: 'code-panel pending' },
      h('p', { class: 'lead' }, 'Waiting for the meeting key…'),
    );
  }
  return h(
    'section',
    { class: 'code-panel', 'aria-label': 'Security code' },
    h('div', { class: 'label' }, 'Security code: read it aloud, every room must see the same digits'),
    codeDigits(meeting.securityCode, 4),
  );
}

function rosterPanel(roster: RosterEntry[]): HTMLElement {
  return h(
    'section',
    { class: 'panel roster', 'aria-label': 'Participants' },
    h('h2', null, `In this meeting (${roster.length})`),
    h(
      'ul',
      // Focusable so the list can be scrolled from a keyboard too (long rosters scroll).
      { class: 'list', 'data-testid': 'roster', tabindex: 0 },
      roster.map((p) =>
        h(
          'li',
          // Names come only from certificates verified on this device; a key holder whose
          // certificate did not verify (the daemon never admits one) is marked, not named.
          {
            class: p.deviceId ? 'list-item' : 'list-item unverified',
            'data-participant': p.participantId,
          },
          identityLine(p),
          p.isLeader ? h('span', { class: 'tag' }, 'leader') : null,
          p.isSelf ? h('span', { class: 'tag' }, 'this room') : null,
        ),
      ),
    ),
  );
}

function waitingPanel(meeting: MeetingView, on: Handlers): HTMLElement {
  return h(
    'section',
    { class: 'panel waiting', 'aria-label': 'Waiting to join' },
    h('h2', null, `Waiting to join (${meeting.waiting.length})`),
    meeting.waiting.length === 0
      ? h('p', { class: 'muted' }, meeting.locked ? 'The meeting is locked.' : 'Nobody is waiting.')
      : h(
          'ul',
          { class: 'list', 'data-testid': 'waiting', tabindex: 0 },
          meeting.waiting.map((p) =>
            h(
              'li',
              { class: 'list-item', 'data-waiting': p.participantId },
              identityLine(p),
              h(
                'span',
                { class: 'actions' },
                h(
                  'button',
                  {
                    class: 'btn btn-primary btn-small',
                    'data-action': 'admit',
                    'aria-label': `Admit ${p.roomName}`,
                    onclick: () => on.act('/api/meeting/admit', { participantId: p.participantId }),
                  },
                  'Admit',
                ),
                h(
                  'button',
                  {
                    class: 'btn btn-small',
                    'data-action': 'deny',
                    'aria-label': `Deny ${p.roomName}`,
                    onclick: () => on.act('/api/meeting/deny', { participantId: p.participantId }),
                  },
                  'Deny',
                ),
              ),
            ),
          ),
        ),
  );
}

function controlBar(state: DeviceState, meeting: MeetingView, local: LocalState, on: Handlers): HTMLElement {
  const { micMuted, cameraOff, volume } = state.media;
  return h(
    'nav',
    { class: 'controls', 'aria-label': 'Room controls' },
    h(
      'button',
      {
        class: micMuted ? 'btn btn-warn' : 'btn',
        'data-testid': 'mute',
        'aria-pressed': micMuted ? 'true' : 'false',
        onclick: () => on.act('/api/media/mute', { muted: !micMuted }),
      },
      micMuted ? 'Microphone muted' : 'Mute',
    ),
    h(
      'button',
      {
        class: cameraOff ? 'btn btn-warn' : 'btn',
        'data-testid': 'camera',
        'aria-pressed': cameraOff ? 'true' : 'false',
        onclick: () => on.act('/api/media/camera', { off: !cameraOff }),
      },
      cameraOff ? 'Camera off' : 'Stop camera',
    ),
    h(
      'span',
      { class: 'volume', role: 'group', 'aria-label': 'Speaker volume' },
      h(
        'button',
        {
          class: 'btn btn-small',
          'aria-label': 'Volume down',
          'data-testid': 'volume-down',
          onclick: () => on.act('/api/media/volume', { volume: Math.max(0, volume - 10) }),
        },
        '−',
      ),
      h('span', { class: 'volume-value', 'data-testid': 'volume' }, `${volume}%`),
      h(
        'button',
        {
          class: 'btn btn-small',
          'aria-label': 'Volume up',
          'data-testid': 'volume-up',
          onclick: () => on.act('/api/media/volume', { volume: Math.min(100, volume + 10) }),
        },
        '+',
      ),
    ),
    meeting.role === 'leader'
      ? h(
          'button',
          {
            class: 'btn',
            'data-testid': 'lock',
            'aria-pressed': meeting.locked ? 'true' : 'false',
            onclick: () => on.act('/api/meeting/lock', { locked: !meeting.locked }),
          },
          meeting.locked ? 'Unlock meeting' : 'Lock meeting',
        )
      : null,
    h(
      'button',
      {
        class: 'btn btn-danger',
        'data-testid': 'leave',
        disabled: local.busy,
        onclick: () => on.act('/api/meeting/leave'),
      },
      'Leave',
    ),
  );
}

function meetingStatusScreen(meeting: MeetingView, local: LocalState, on: Handlers): HTMLElement {
  const text: Record<MeetingView['status'], string> = {
    connecting: 'Connecting to the meeting…',
    waiting: 'Waiting for the leader to admit this room…',
    active: '',
    denied: 'The leader did not admit this room.',
    ended: 'The meeting has ended.',
  };
  const finished = meeting.status === 'denied' || meeting.status === 'ended';
  return h(
    'div',
    { class: 'meeting-status', 'data-testid': 'meeting-status', 'data-status': meeting.status },
    h('h1', { class: 'title' }, text[meeting.status]),
    h('p', { class: 'muted' }, `Meeting ${spacedMeetingId(meeting.meetingId)}`),
    h(
      'button',
      {
        class: finished ? 'btn btn-primary btn-huge' : 'btn btn-danger btn-huge',
        'data-testid': 'leave',
        disabled: local.busy,
        onclick: () => on.act('/api/meeting/leave'),
      },
      finished ? 'Back' : 'Cancel',
    ),
  );
}

// ---- The meeting with video (docs/kiosk.md "Screens"; geometry in layout.ts) ----

/** Places an absolutely positioned element on `r` (viewport px) in vw/vh units. */
function place<E extends HTMLElement>(el: E, r: Rect, origin?: Rect): E {
  const css = rectCss(r, window.innerWidth, window.innerHeight, origin);
  el.style.left = css.left;
  el.style.top = css.top;
  el.style.width = css.width;
  el.style.height = css.height;
  return el;
}

function fontVh(px: number): string {
  return `${((px / window.innerHeight) * 100).toFixed(4)}vh`;
}

function videoMeetingScreen(
  state: DeviceState,
  meeting: MeetingView,
  model: WallModel,
  local: LocalState,
  on: Handlers,
  wall: WallView,
): HTMLElement {
  const mode = codeModeFor(meeting, local);
  const layout = meetingLayout({
    width: window.innerWidth,
    height: window.innerHeight,
    remoteCount: model.remotes.length,
    ...(model.activeIndex !== undefined ? { activeIndex: model.activeIndex } : {}),
    content: model.content !== undefined,
    selfView: model.self !== undefined,
    codeMode: mode,
    recheck: meeting.leaderChanged,
  });
  const stage = layout.stage;
  const alerts = alertsFor(state, local.connected);
  const leading = meeting.role === 'leader';
  return h(
    'div',
    { class: 'meeting meeting-video', 'data-layout': layout.kind, 'data-code': mode },
    place(
      h(
        'section',
        { class: 'stage', 'aria-label': 'Video', 'data-testid': 'stage' },
        model.content && layout.content ? videoTile(model.content, layout.content, stage, wall) : null,
        model.remotes.map((t, i) => videoTile(t, layout.tiles[i]!, stage, wall, layout.tiles[i]!.roomy)),
        model.self && layout.self ? videoTile(model.self, layout.self, stage, wall) : null,
        alerts.length > 0
          ? h(
              'section',
              { class: 'alerts alerts-overlay', 'aria-label': 'Alerts', 'data-testid': 'alerts' },
              alerts.map((a) =>
                h('div', { class: `alert alert-${a.level}`, role: 'alert', 'data-alert': a.id }, a.message),
              ),
            )
          : null,
      ),
      stage,
    ),
    place(
      h(
        'aside',
        { class: 'side-panel' },
        meetingHead(meeting, wall),
        // The leader-change prompt sits with the full-size code (codeRegion); here the leader line.
        leaderLine({ ...meeting, leaderChanged: false }, on),
        rosterPanel(meeting.roster),
        // Over video the waiting room appears only when someone waits (the roster gets the room).
        leading && meeting.waiting.length > 0 ? waitingPanel(meeting, on) : null,
      ),
      layout.side,
    ),
    codeRegion(meeting, mode, layout, on),
    place(h('div', { class: 'controls-slot' }, controlBar(state, meeting, local, on)), layout.controls),
  );
}

/** One video tile: the stream of its m-line (if any), its verified label or "Connecting…". */
function videoTile(
  tile: WallTile,
  box: Rect & { labelFont: number },
  stage: Rect,
  wall: WallView,
  roomy = true,
): HTMLElement {
  const video = wall.video(tile.mid);
  const playing = video !== undefined && video.videoWidth > 0;
  const el = h(
    'div',
    {
      class: `tile tile-${tile.kind}${tile.active ? ' speaking' : ''}${playing ? ' playing' : ''}`,
      'data-testid': 'wall-tile',
      'data-kind': tile.kind,
      'data-mid': tile.mid,
      'data-sender-index': tile.senderIndex,
      'data-speaking': tile.active ? 'true' : undefined,
    },
    video ?? null,
    tileCaption(tile, playing, roomy),
  );
  el.style.fontSize = fontVh(box.labelFont);
  return place(el, box, stage);
}

function tileCaption(tile: WallTile, playing: boolean, roomy: boolean): (HTMLElement | null)[] {
  if (tile.kind === 'self') {
    return [
      h(
        'div',
        { class: 'tile-label', 'data-testid': 'tile-label' },
        h('span', { class: 'tile-name' }, 'This room'),
      ),
    ];
  }
  if (!tile.label) {
    // A sender the roster does not name (not yet, or never): no name from anywhere else.
    return [h('div', { class: 'tile-status', 'data-testid': 'tile-status' }, 'Connecting…')];
  }
  const { label } = tile;
  return [
    playing ? null : h('div', { class: 'tile-status', 'data-testid': 'tile-status' }, 'Waiting for video…'),
    h(
      'div',
      { class: label.verified ? 'tile-label' : 'tile-label unverified', 'data-testid': 'tile-label' },
      h('span', { class: 'tile-name' }, label.roomName),
      roomy && label.org ? h('span', { class: 'tile-org' }, label.org) : null,
      tile.kind === 'content' ? h('span', { class: 'tile-tag' }, 'Screen') : null,
    ),
  ];
}

/** The security code while video plays: a band (tap: full size) or the full two-row panel. */
function codeRegion(meeting: MeetingView, mode: CodeMode, layout: MeetingLayout, on: Handlers): HTMLElement {
  if (!meeting.securityCode) {
    return place(
      h(
        'section',
        { class: 'code-panel code-region pending' },
        h('p', { class: 'lead' }, 'Waiting for the meeting key…'),
      ),
      layout.code,
    );
  }
  const digits = codeDigits(meeting.securityCode, mode === 'full' ? 4 : 8);
  digits.style.fontSize = fontVh(layout.codeFont);
  if (mode === 'band') {
    return place(
      h(
        'button',
        {
          class: 'code-region code-band',
          'data-testid': 'code-band',
          'aria-expanded': 'false',
          onclick: () => on.setLocal({ codeFullUntil: Date.now() + CODE_FULL_MS }),
        },
        h(
          'span',
          { class: 'code-band-label' },
          h('span', null, 'Security code'),
          h('span', { class: 'code-band-hint' }, 'Tap to enlarge'),
        ),
        digits,
      ),
      layout.code,
    );
  }
  const label = h(
    'span',
    { class: 'label' },
    'Security code: read it aloud, every room must see the same digits',
  );
  // Shown full size because of a leader change: it stays until the room confirms the code.
  if (meeting.leaderChanged) {
    return place(
      h(
        'section',
        { class: 'code-panel code-region code-full', 'aria-label': 'Security code' },
        leaderLine(meeting, on),
        digits,
      ),
      layout.code,
    );
  }
  return place(
    h(
      'button',
      {
        class: 'code-panel code-region code-full',
        'data-testid': 'code-full',
        'aria-expanded': 'true',
        onclick: () => on.setLocal({ codeFullUntil: undefined }),
      },
      label,
      digits,
    ),
    layout.code,
  );
}

/** How long the code stays full size after the meeting starts or a tap on the band. */
export const CODE_FULL_MS = 20_000;
