// Test double for the meeting client and media supervisor, behind the real RoomActions interface: it
// writes a real StateStore the way those parts will (phase, meeting view, roster, waiting room, media
// flags), and records every call so tests can check that a click reached RoomActions. Used by the
// kiosk and HID tests and by the kiosk benchmark until the daemon's own parts land.
import { randomInt } from 'node:crypto';
import type { RoomActions } from '../device/daemon/actions.js';
import type { MeetingView, StateStore, VerifiedIdentity, WallSlotView } from '../device/daemon/state.js';

export interface RecordedCall {
  action: keyof RoomActions;
  args: unknown[];
}

export const SELF: VerifiedIdentity = {
  participantId: 'p-self',
  kind: 'room',
  deviceId: 'dev-0001',
  roomName: 'Boardroom 4.12',
  org: 'Example Corp',
  email: '',
};

/** A verified identity as tests write it: a room unless `kind` says otherwise. */
export type Who = Omit<VerifiedIdentity, 'kind' | 'email'> &
  Partial<Pick<VerifiedIdentity, 'kind' | 'email'>>;

export function identity(who: Who): VerifiedIdentity {
  return { ...who, kind: who.kind ?? 'room', email: who.email ?? '' };
}

/** 40 decimal digits as 8 groups of 5, like the E2EE core's security code. */
export function randomSecurityCode(): string {
  return Array.from({ length: 8 }, () => String(randomInt(0, 100_000)).padStart(5, '0')).join(' ');
}

/** Shaped like the relay's ids: three groups of four from an alphabet without look-alikes. */
export function randomMeetingId(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const chars = Array.from({ length: 12 }, () => alphabet[randomInt(0, alphabet.length)]!);
  return [chars.slice(0, 4), chars.slice(4, 8), chars.slice(8)].map((g) => g.join('')).join('-');
}

export class RoomDouble implements RoomActions {
  readonly calls: RecordedCall[] = [];
  /** Set to make the next action reject with this message (as the meeting client does on refusal). */
  failNext?: string;

  constructor(readonly store: StateStore) {}

  #record(action: keyof RoomActions, ...args: unknown[]): void {
    this.calls.push({ action, args });
    const failure = this.failNext;
    if (failure !== undefined) {
      this.failNext = undefined;
      throw new Error(failure);
    }
  }

  #meeting(): MeetingView {
    const meeting = this.store.get().meeting;
    if (!meeting || this.store.get().phase !== 'in-meeting')
      throw new Error('This room is not in a meeting.');
    return meeting;
  }

  async startMeeting(): Promise<{ meetingId: string }> {
    this.#record('startMeeting');
    if (this.store.get().phase === 'in-meeting') throw new Error('This room is already in a meeting.');
    const meetingId = randomMeetingId();
    this.store.update((s) => {
      s.phase = 'in-meeting';
      s.meeting = {
        meetingId,
        role: 'leader',
        status: 'active',
        leader: SELF,
        securityCode: randomSecurityCode(),
        keyEpoch: 1,
        roster: [{ ...SELF, isLeader: true, isSelf: true }],
        waiting: [],
        locked: false,
        rekeying: false,
        leaderChanged: false,
      };
    });
    return { meetingId };
  }

  async joinMeeting(meetingId: string): Promise<void> {
    this.#record('joinMeeting', meetingId);
    if (this.store.get().phase === 'in-meeting') throw new Error('This room is already in a meeting.');
    this.store.update((s) => {
      s.phase = 'in-meeting';
      s.meeting = {
        meetingId,
        role: 'participant',
        status: 'waiting',
        roster: [],
        waiting: [],
        locked: false,
        rekeying: false,
        leaderChanged: false,
      };
    });
  }

  async leaveMeeting(): Promise<void> {
    this.#record('leaveMeeting');
    this.#meeting();
    this.store.update((s) => {
      s.phase = 'idle';
      delete s.meeting;
    });
  }

  async admit(participantId: string): Promise<void> {
    this.#record('admit', participantId);
    const meeting = this.#meeting();
    const who = meeting.waiting.find((w) => w.participantId === participantId);
    if (!who) throw new Error('That room is no longer waiting.');
    this.store.update((s) => {
      const m = s.meeting!;
      m.waiting = m.waiting.filter((w) => w.participantId !== participantId);
      m.roster.push({ ...who, isLeader: false, isSelf: false });
      m.keyEpoch = (m.keyEpoch ?? 0) + 1;
    });
  }

  async deny(participantId: string): Promise<void> {
    this.#record('deny', participantId);
    const meeting = this.#meeting();
    if (!meeting.waiting.some((w) => w.participantId === participantId)) {
      throw new Error('That room is no longer waiting.');
    }
    this.store.update((s) => {
      s.meeting!.waiting = s.meeting!.waiting.filter((w) => w.participantId !== participantId);
    });
  }

  async lockMeeting(locked: boolean): Promise<void> {
    this.#record('lockMeeting', locked);
    if (this.#meeting().role !== 'leader') throw new Error('Only the leading room can lock the meeting.');
    this.store.update((s) => {
      s.meeting!.locked = locked;
    });
  }

  async setMicMuted(muted: boolean): Promise<void> {
    this.#record('setMicMuted', muted);
    this.store.update((s) => {
      s.media.micMuted = muted;
    });
  }

  async setCameraOff(off: boolean): Promise<void> {
    this.#record('setCameraOff', off);
    this.store.update((s) => {
      s.media.cameraOff = off;
    });
  }

  async setVolume(volume: number): Promise<void> {
    this.#record('setVolume', volume);
    this.store.update((s) => {
      s.media.volume = Math.max(0, Math.min(100, Math.round(volume)));
    });
  }

  async acknowledgeLeaderChange(): Promise<void> {
    this.#record('acknowledgeLeaderChange');
    this.#meeting();
    this.store.update((s) => {
      s.meeting!.leaderChanged = false;
    });
  }

  // What the relay and the other rooms do, driven by the test:

  /** Another room asks to join this room's meeting. */
  requestToJoin(who: Who): void {
    this.store.update((s) => {
      s.meeting!.waiting.push(identity(who));
    });
  }

  /** The leader admitted this room: it gets the meeting's roster and security code. */
  admittedBy(leaderIn: Who, securityCode: string, others: Who[] = []): void {
    const leader = identity(leaderIn);
    this.store.update((s) => {
      const m = s.meeting!;
      m.status = 'active';
      m.leader = leader;
      m.securityCode = securityCode;
      m.keyEpoch = 1;
      m.roster = [
        { ...leader, isLeader: true, isSelf: false },
        ...others.map((o) => ({ ...identity(o), isLeader: false, isSelf: false })),
        { ...SELF, isLeader: false, isSelf: true },
      ];
    });
  }

  /** The leader left and another room took over: new code, attendees must re-check. */
  leaderChangedTo(leaderIn: Who, securityCode: string): void {
    const leader = identity(leaderIn);
    this.store.update((s) => {
      const m = s.meeting!;
      m.leader = leader;
      m.securityCode = securityCode;
      m.leaderChanged = true;
      m.keyEpoch = (m.keyEpoch ?? 0) + 1;
      m.roster = m.roster.map((r) => ({ ...r, isLeader: r.participantId === leader.participantId }));
    });
  }

  // What the media worker reports (wall-slots) and the E2EE roster's sender indexes:

  /** The wall connection's slots (which m-line carries which sender) and the active speaker. */
  setWall(slots: WallSlotView[], activeSpeaker?: number): void {
    this.store.update((s) => {
      s.media.wall = { slots, ...(activeSpeaker !== undefined ? { activeSpeaker } : {}) };
    });
  }

  /** Only the active speaker changes (the worker's audio levels). */
  setActiveSpeaker(activeSpeaker: number | undefined): void {
    this.store.update((s) => {
      if (!s.media.wall) s.media.wall = { slots: [] };
      if (activeSpeaker === undefined) delete s.media.wall.activeSpeaker;
      else s.media.wall.activeSpeaker = activeSpeaker;
    });
  }

  /** Gives roster members their SFrame sender index (participant id → index). */
  setSenderIndexes(indexes: Record<string, number>): void {
    this.store.update((s) => {
      for (const entry of s.meeting!.roster) {
        const index = indexes[entry.participantId];
        if (index !== undefined) entry.senderIndex = index;
      }
    });
  }

  /** Far rooms joined (already admitted): roster entries with their sender indexes. */
  addMembers(members: (Who & { senderIndex: number })[]): void {
    this.store.update((s) => {
      for (const m of members) s.meeting!.roster.push({ ...identity(m), isLeader: false, isSelf: false });
    });
  }
}
