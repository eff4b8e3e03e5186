import { describe, expect, it } from 'vitest';
import { initialState } from '../../device/daemon/state.js';
import {
  alertsFor,
  codeRows,
  keypadPress,
  meetingIdFromKeys,
  screenFor,
  securityCodeGroups,
  spacedMeetingId,
} from './format.js';

describe('kiosk formatting', () => {
  it('splits the security code into 8 groups on two rows of four', () => {
    const code = '12345 67890 11111 22222 33333 44444 55555 66666';
    const groups = securityCodeGroups(code);
    expect(groups).toHaveLength(8);
    expect(codeRows(groups)).toEqual([
      ['12345', '67890', '11111', '22222'],
      ['33333', '44444', '55555', '66666'],
    ]);
    // Never drops digits it does not expect.
    expect(securityCodeGroups(' 1  2 ').join('')).toBe('12');
  });

  it('picks the screen from the phase', () => {
    const s = initialState('t');
    expect(screenFor(s)).toBe('startup');
    expect(screenFor({ ...s, phase: 'enrolling' })).toBe('enrollment');
    expect(screenFor({ ...s, phase: 'idle' })).toBe('idle');
    expect(screenFor({ ...s, phase: 'in-meeting' })).toBe('idle');
    expect(screenFor({ ...s, phase: 'error' })).toBe('startup');
  });

  it('derives alerts from the state and keeps the daemon’s own', () => {
    const s = initialState('t');
    expect(alertsFor(s, true)).toEqual([]);
    const alerts = alertsFor(
      {
        ...s,
        phase: 'idle',
        relay: { connected: false, url: 'wss://relay' },
        media: { ...s.media, camera: 'missing', microphone: 'restarting' },
        alerts: [
          { id: 'camera', level: 'warning', message: 'dup', since: '' },
          { id: 'disk', level: 'warning', message: 'Disk full', since: '' },
        ],
      },
      false,
    );
    expect(alerts.map((a) => a.id)).toEqual(['kiosk-link', 'camera', 'microphone', 'relay', 'disk']);
  });

  it('edits the meeting id on the on-screen keyboard', () => {
    let id = '';
    for (const k of ['k', '7', 'X', 'p', '-', 'x', 'back', 'x', 'm']) id = keypadPress(id, k);
    expect(id).toBe('k7pxm');
    expect(meetingIdFromKeys(id)).toBe('k7px-m');
    expect(meetingIdFromKeys('k7pxm3qda2bc')).toBe('k7px-m3qd-a2bc');
    expect(keypadPress('99', 'clear')).toBe('');
    expect(keypadPress('a'.repeat(24), 'b')).toBe('a'.repeat(24));
    expect(spacedMeetingId('123456789')).toBe('123 456 789');
    expect(spacedMeetingId('k7px-m3qd-a2bc')).toBe('k7px-m3qd-a2bc');
  });
});
