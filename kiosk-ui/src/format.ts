// Pure helpers of the kiosk UI (no DOM): what to show for a given daemon state.
import type { Alert, DeviceState } from '../../device/daemon/state.js';

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
