// Pure helpers of the kiosk UI (no DOM): what to show for a given daemon state.
import type {
  Alert,
  DeviceState,
  RosterEntry,
  VerifiedIdentity,
  WallSlotView,
} from '../../device/daemon/state.js';

/** "12345 67890 …" → ["12345", "67890", …]; anything unexpected comes back as it is, never dropped. */
export function securityCodeGroups(code: string): string[] {
  return code.trim().split(/\s+/).filter(Boolean);
}

/** Groups shown per line: the 8 groups of 5 digits go on two lines of four. */
export function codeRows(groups: string[], perRow = 4): string[][] {
  const rows: string[][] = [];
  for (let i = 0; i < groups.length; i += perRow) rows.push(groups.slice(i, i + perRow));
  return rows;
}

export type ScreenName = 'startup' | 'enrollment' | 'idle' | 'meeting';

export function screenFor(state: DeviceState): ScreenName {
  switch (state.phase) {
    case 'enrolling':
      return 'enrollment';
    case 'idle':
      return 'idle';
    case 'in-meeting':
      return state.meeting ? 'meeting' : 'idle';
    default:
      return 'startup';
  }
}

/** A version as the screen may show it: plain, short semver (from the signed metadata), else none. */
const SHOWN_VERSION = /^\d{1,6}\.\d{1,6}\.\d{1,6}(-[0-9A-Za-z.-]{1,32})?$/;

export interface UpdateNotice {
  text: string;
  /** 0..1 while downloading. */
  progress?: number;
}

/**
 * The room screen's small update indicator. Fixed sentences only: the update server's words never
 * reach the screen (errors go to IT), a version is shown only when it is plain semver. Nothing while
 * the room is in a meeting (the security code is what people look at then); failures and rollbacks
 * are IT's business, the room keeps working.
 */
export function updateNotice(state: DeviceState): UpdateNotice | undefined {
  const u = state.update;
  if (!u || state.phase === 'in-meeting' || screenFor(state) === 'meeting') return undefined;
  const v = typeof u.target === 'string' && SHOWN_VERSION.test(u.target) ? ` ${u.target}` : '';
  switch (u.state) {
    case 'downloading': {
      const p = typeof u.progress === 'number' && u.progress >= 0 ? Math.min(1, u.progress) : 0;
      return { text: `Downloading update${v}: ${Math.floor(p * 100)}%`, progress: p };
    }
    case 'waiting':
      return u.waitingFor === 'window'
        ? { text: `Update${v} ready: it installs in the maintenance window` }
        : undefined;
    case 'installing':
      return { text: `Installing update${v}…` };
    case 'restarting':
      return { text: `Restarting to finish update${v}…` };
    case 'verifying':
      return { text: `Checking update${v}…` };
    default:
      return undefined;
  }
}

export interface ShownAlert {
  id: string;
  level: Alert['level'];
  message: string;
}

/**
 * The daemon's own alerts plus the ones the screen can tell from the state itself, so a missing
 * camera is shown even if no part of the daemon raised an alert for it.
 */
export function alertsFor(state: DeviceState, connected: boolean): ShownAlert[] {
  const shown: ShownAlert[] = [];
  if (!connected) {
    shown.push({
      id: 'kiosk-link',
      level: 'error',
      message: 'Lost contact with the room daemon. Reconnecting…',
    });
  }
  const { media, meeting } = state;
  if (media.camera === 'missing') shown.push({ id: 'camera', level: 'warning', message: 'Camera not found' });
  if (media.camera === 'restarting')
    shown.push({ id: 'camera', level: 'info', message: 'Camera restarting…' });
  if (media.microphone === 'missing') {
    shown.push({ id: 'microphone', level: 'warning', message: 'Microphone not found' });
  }
  if (media.microphone === 'restarting') {
    shown.push({ id: 'microphone', level: 'info', message: 'Microphone restarting…' });
  }
  const relayExpected = state.phase === 'in-meeting' || state.relay.url !== undefined;
  if (relayExpected && !state.relay.connected) {
    shown.push({ id: 'relay', level: 'error', message: 'Meeting server unreachable. Retrying…' });
  }
  // Media stopped: no valid heartbeat from the leader (key freshness cannot be vouched for).
  if (meeting?.leaderLost)
    shown.push({ id: 'leader-lost', level: 'warning', message: 'Lost contact with the meeting leader' });
  // Sending paused until a fresh certified key arrives (at most 2 s after a leave).
  if (meeting?.rekeying) shown.push({ id: 'rekeying', level: 'info', message: 'Rekeying…' });
  for (const alert of state.alerts) {
    if (!shown.some((s) => s.id === alert.id || s.message === alert.message)) {
      shown.push({ id: alert.id, level: alert.level, message: alert.message });
    }
  }
  return shown;
}

export function formatClock(date: Date): string {
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export function formatDate(date: Date): string {
  return date.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long' });
}

/** On-screen keyboard input for a meeting id: letters and digits, bounded length (dashes are added). */
export function keypadPress(current: string, key: string, maxLength = 24): string {
  if (key === 'back') return current.slice(0, -1);
  if (key === 'clear') return '';
  if (/^[a-z0-9]$/.test(key) && current.length < maxLength) return current + key;
  return current;
}

/** Meeting ids are written in groups of four ("k7px-m3qd-a2bc"), as the relay issues them. */
export function meetingIdFromKeys(typed: string): string {
  return (typed.match(/.{1,4}/g) ?? []).join('-');
}

/** Purely numeric ids are read aloud in groups of three: 123 456 789; others stay as issued. */
export function spacedMeetingId(id: string): string {
  return /^\d+$/.test(id) ? (id.match(/.{1,3}/g) ?? []).join(' ') : id;
}

/** What "signed in" people are called after their name, email and org (issue 12). */
export const SIGNED_IN = 'signed in';

/**
 * The parts of a verified identity's line, in order: a room is "name · org"; a person (a short-lived
 * person certificate from the org's sign-in) is "Alice Smith · alice@example.org · Example Corp ·
 * signed in". All of it comes from a certificate this device verified.
 */
export function identityParts(who: Pick<VerifiedIdentity, 'roomName' | 'org'> & Partial<VerifiedIdentity>): {
  name: string;
  email?: string;
  org: string;
  signedIn: boolean;
} {
  if (who.kind === 'person')
    return { name: who.roomName, ...(who.email ? { email: who.email } : {}), org: who.org, signedIn: true };
  return { name: who.roomName, org: who.org, signedIn: false };
}

/** The identity as one line of text (screen readers, titles, tests). */
export function identityText(
  who: Pick<VerifiedIdentity, 'roomName' | 'org'> & Partial<VerifiedIdentity>,
): string {
  const p = identityParts(who);
  return [p.name, p.email, p.org, p.signedIn ? SIGNED_IN : undefined].filter((x) => x).join(' · ');
}

/** A name for a video tile: only ever a roster entry (names from certificates verified here). */
export interface TileLabel {
  /** A room's name or a person's name. */
  roomName: string;
  org: string;
  kind: 'room' | 'person';
  /** False for a key holder whose certificate did not verify (the daemon's "Unverified participant"). */
  verified: boolean;
}

export interface WallTile {
  mid: string;
  kind: WallSlotView['kind'];
  senderIndex?: number;
  label?: TileLabel;
  active: boolean;
}

export interface WallModel {
  /** Far rooms' cameras with a sender, in slot order (at most 9). */
  remotes: WallTile[];
  content?: WallTile;
  self?: WallTile;
  /** Index into `remotes` of the active speaker. */
  activeIndex?: number;
  /** Far video to show (a remote or content slot naming a sender): else the big-code layout. */
  hasVideo: boolean;
}

/**
 * The roster entry a slot's sender index names. Exactly one entry that is not this room must match:
 * none (a sender the roster does not know, however the slot got there) or several means no name.
 */
export function labelFor(
  roster: readonly RosterEntry[],
  senderIndex: number | undefined,
): TileLabel | undefined {
  if (senderIndex === undefined) return undefined;
  const matches = roster.filter((r) => r.senderIndex === senderIndex && !r.isSelf);
  if (matches.length !== 1) return undefined;
  const entry = matches[0]!;
  return {
    roomName: entry.roomName,
    org: entry.org,
    kind: entry.kind === 'person' ? 'person' : 'room',
    verified: entry.deviceId !== '',
  };
}

/** What the wall connection's slots show right now (nothing outside an active meeting). */
export function wallModel(state: DeviceState): WallModel {
  const meeting = state.meeting;
  const wall = state.media.wall;
  if (meeting?.status !== 'active' || !wall) return { remotes: [], hasVideo: false };
  const tile = (slot: WallSlotView): WallTile => {
    const label = labelFor(meeting.roster, slot.senderIndex);
    return {
      mid: slot.mid,
      kind: slot.kind,
      ...(slot.senderIndex !== undefined ? { senderIndex: slot.senderIndex } : {}),
      ...(label ? { label } : {}),
      active: slot.senderIndex !== undefined && slot.senderIndex === wall.activeSpeaker,
    };
  };
  const remotes = wall.slots
    .filter((s) => s.kind === 'remote' && s.senderIndex !== undefined)
    .slice(0, 9)
    .map(tile);
  const contentSlot = wall.slots.find((s) => s.kind === 'content' && s.senderIndex !== undefined);
  const selfSlot = wall.slots.find((s) => s.kind === 'self');
  const activeIndex = remotes.findIndex((t) => t.active);
  return {
    remotes,
    ...(contentSlot ? { content: { ...tile(contentSlot), active: false } } : {}),
    ...(selfSlot && !state.media.cameraOff ? { self: { ...tile(selfSlot), active: false } } : {}),
    ...(activeIndex >= 0 ? { activeIndex } : {}),
    hasVideo: remotes.length > 0 || contentSlot !== undefined,
  };
}
