import { describe, expect, it } from 'vitest';
import { initialState } from '../../device/daemon/state.js';
import {
  alertsFor,
  codeRows,
  identityText,
  keypadPress,
  labelFor,
  meetingIdFromKeys,
  screenFor,
  securityCodeGroups,
  spacedMeetingId,
  wallModel,
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

describe('wall tiles', () => {
  const base = () => {
    const state = initialState('t');
    state.phase = 'in-meeting';
    state.meeting = {
      meetingId: 'm',
      role: 'leader',
      status: 'active',
      roster: [
        {
          participantId: 'me',
          kind: 'room',
          email: '',
          deviceId: 'd0',
          roomName: 'Here',
          org: 'Us',
          isLeader: true,
          isSelf: true,
          senderIndex: 0,
        },
        {
          participantId: 'a',
          kind: 'room',
          email: '',
          deviceId: 'd1',
          roomName: 'Lab',
          org: 'Them',
          isLeader: false,
          isSelf: false,
          senderIndex: 4,
        },
        {
          participantId: 'u',
          kind: 'room',
          email: '',
          deviceId: '',
          roomName: 'Unverified participant',
          org: '',
          isLeader: false,
          isSelf: false,
          senderIndex: 5,
        },
        {
          participantId: 'x',
          kind: 'room',
          email: '',
          deviceId: 'd6',
          roomName: 'Twin A',
          org: 'X',
          isLeader: false,
          isSelf: false,
          senderIndex: 6,
        },
        {
          participantId: 'y',
          kind: 'room',
          email: '',
          deviceId: 'd7',
          roomName: 'Twin B',
          org: 'Y',
          isLeader: false,
          isSelf: false,
          senderIndex: 6,
        },
      ],
      waiting: [],
      locked: false,
      rekeying: false,
      leaderChanged: false,
    };
    return state;
  };

  it('names a tile only through the one roster entry with its sender index', () => {
    const { roster } = base().meeting!;
    expect(labelFor(roster, 4)).toEqual({ roomName: 'Lab', org: 'Them', kind: 'room', verified: true });
    expect(labelFor(roster, 5)).toEqual({
      roomName: 'Unverified participant',
      org: '',
      kind: 'room',
      verified: false,
    });
    // Unknown sender, this room's own index, an ambiguous index, no index: no name.
    expect(labelFor(roster, 77)).toBeUndefined();
    expect(labelFor(roster, 0)).toBeUndefined();
    expect(labelFor(roster, 6)).toBeUndefined();
    expect(labelFor(roster, undefined)).toBeUndefined();
  });

  it('shows remote slots with a sender, in slot order, the content and the self-view', () => {
    const state = base();
    state.media.wall = {
      slots: [
        { mid: '0', kind: 'remote', senderIndex: 77 },
        { mid: '1', kind: 'remote' },
        { mid: '2', kind: 'remote', senderIndex: 4 },
        { mid: '3', kind: 'self' },
        { mid: '4', kind: 'content' },
      ],
      activeSpeaker: 4,
    };
    const model = wallModel(state);
    expect(model.remotes.map((t) => [t.mid, t.senderIndex, t.label?.roomName, t.active])).toEqual([
      ['0', 77, undefined, false],
      ['2', 4, 'Lab', true],
    ]);
    expect(model.activeIndex).toBe(1);
    expect(model.content).toBeUndefined();
    expect(model.self?.mid).toBe('3');
    expect(model.hasVideo).toBe(true);
    state.media.cameraOff = true;
    expect(wallModel(state).self).toBeUndefined();
    // No sender on any far slot: the big-code layout.
    state.media.wall.slots = state.media.wall.slots.map(({ senderIndex: _, ...s }) => s);
    expect(wallModel(state).hasVideo).toBe(false);
    // Content alone counts as video.
    state.media.wall.slots[4] = { mid: '4', kind: 'content', senderIndex: 4 };
    expect(wallModel(state)).toMatchObject({
      hasVideo: true,
      content: { mid: '4', label: { roomName: 'Lab' } },
    });
    // Outside an active meeting: nothing.
    state.meeting!.status = 'connecting';
    expect(wallModel(state)).toEqual({ remotes: [], hasVideo: false });
  });
});

describe('people on the room screen', () => {
  const alice = {
    participantId: 'p-alice',
    kind: 'person' as const,
    deviceId: 'person:alice@example.org',
    roomName: 'Alice Smith',
    org: 'Example Corp',
    email: 'alice@example.org',
  };

  it('a person reads "name · email · org · signed in"; a room stays "name · org"', () => {
    expect(identityText(alice)).toBe('Alice Smith · alice@example.org · Example Corp · signed in');
    expect(identityText({ ...alice, kind: 'room', roomName: 'Huddle', email: '' })).toBe(
      'Huddle · Example Corp',
    );
  });

  it('a person’s tile (shared screen or camera) is labelled with the name from the roster', () => {
    const roster = [{ ...alice, isLeader: false, isSelf: false, senderIndex: 7 }];
    expect(labelFor(roster, 7)).toEqual({
      roomName: 'Alice Smith',
      org: 'Example Corp',
      kind: 'person',
      verified: true,
    });
  });
});
