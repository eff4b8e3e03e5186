// The relay's meeting lifecycle as a pure state machine: connections (already authenticated) ask to
// create, join, admit, deny, lock, hand over, share, leave and end; every call returns the messages
// to send to which connection. No sockets, no timers — the server wires it to WebSockets and the SFU.
// Rooms and people (issue 12) differ in two rules only: people never create (lead) a meeting nor
// take it over ('rooms-only').
import { randomBytes } from 'node:crypto';
import type { ParticipantInfo, ServerMessage } from '../core/protocol/relay.js';
import {
  type IdHolder,
  MeetingReservations,
  newParticipantIdFor,
  participantIdBoundTo,
} from './id-binding.js';

export type ConnectionId = string;

/** A verified participant: rooms by device certificate, people by person certificate. */
export interface Identity {
  kind: 'room' | 'person';
  /** Rooms: the device id; people: 'person:' + email. */
  deviceId: string;
  /** Rooms: the room name; people: the person's name. */
  roomName: string;
  org: string;
  /** People: their e-mail address; rooms: ''. */
  email: string;
  certificate: string;
}

export interface Outgoing {
  to: ConnectionId;
  message: ServerMessage;
}

/** What the SFU must do after a lifecycle change: drop a peer, or change who shares a screen. */
export type MediaEffect =
  | { kind: 'remove'; connection: ConnectionId; meetingId: string }
  | { kind: 'share'; meetingId: string; sharer: ConnectionId | null };

export interface Result {
  outgoing: Outgoing[];
  media: MediaEffect[];
}

interface Member {
  connection: ConnectionId;
  info: ParticipantInfo;
  status: 'waiting' | 'active';
}

interface Meeting {
  id: string;
  leader: ConnectionId;
  locked: boolean;
  /** The one active member whose screen is shared, if any. */
  sharing: ConnectionId | null;
  /** Insertion-ordered: the roster shows who came first first. */
  members: Map<ConnectionId, Member>;
}

export class MeetingError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A readable meeting id: three groups of four lowercase base32 characters. */
export function newMeetingId(random: (n: number) => Buffer = randomBytes): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = random(12);
  let id = '';
  for (let i = 0; i < 12; i++) {
    if (i > 0 && i % 4 === 0) id += '-';
    id += alphabet[(bytes[i] ?? 0) % alphabet.length];
  }
  return id;
}

export class MeetingRegistry {
  readonly #meetings = new Map<string, Meeting>();
  readonly #byConnection = new Map<ConnectionId, string>();
  readonly #newParticipantId: (holder: IdHolder) => string;
  readonly #newMeetingId: () => string;
  /** Meeting id → the leader device it is bound to (persisted when the relay has a state dir). */
  readonly reservations: MeetingReservations;

  constructor(
    opts: {
      newParticipantId?: (holder: IdHolder) => string;
      newMeetingId?: () => string;
      reservations?: MeetingReservations;
    } = {},
  ) {
    this.#newParticipantId = opts.newParticipantId ?? ((holder) => newParticipantIdFor(holder));
    this.#newMeetingId = opts.newMeetingId ?? (() => newMeetingId());
    this.reservations = opts.reservations ?? new MeetingReservations();
  }

  meetingOf(connection: ConnectionId): string | undefined {
    return this.#byConnection.get(connection);
  }

  /** The participant id of an active member (media and bulletin board need one), else undefined. */
  activeParticipant(connection: ConnectionId): ParticipantInfo | undefined {
    const member = this.#member(connection);
    return member?.status === 'active' ? member.info : undefined;
  }

  /** The member (waiting or active) behind a connection. */
  member(
    connection: ConnectionId,
  ): { info: ParticipantInfo; status: 'waiting' | 'active'; leader: ConnectionId } | undefined {
    const id = this.#byConnection.get(connection);
    const meeting = id === undefined ? undefined : this.#meetings.get(id);
    const member = meeting?.members.get(connection);
    return meeting && member
      ? { info: member.info, status: member.status, leader: meeting.leader }
      : undefined;
  }

  /** Members (waiting and active) of a meeting; 0 when there is none. */
  size(meetingId: string): number {
    return this.#meetings.get(meetingId)?.members.size ?? 0;
  }

  /** Connections of the active members of a meeting, in roster order. */
  activeConnections(meetingId: string): ConnectionId[] {
    const meeting = this.#meetings.get(meetingId);
    if (!meeting) return [];
    return [...meeting.members.values()].filter((m) => m.status === 'active').map((m) => m.connection);
  }

  /** Connection of an active participant of the same meeting, for routing to one recipient. */
  connectionOfParticipant(meetingId: string, participantId: string): ConnectionId | undefined {
    const meeting = this.#meetings.get(meetingId);
    if (!meeting) return undefined;
    for (const m of meeting.members.values())
      if (m.info.participantId === participantId && m.status === 'active') return m.connection;
    return undefined;
  }

  meetingCount(): number {
    return this.#meetings.size;
  }

  /** True while the meeting is live here (a meeting exists only while its leader is in it). */
  has(meetingId: string): boolean {
    return this.#meetings.has(meetingId);
  }

  /** Every live meeting and its leader's device id (a clustered relay publishes these). */
  hosted(): { meetingId: string; leaderDeviceId: string }[] {
    const out: { meetingId: string; leaderDeviceId: string }[] = [];
    for (const meeting of this.#meetings.values()) {
      const leader = meeting.members.get(meeting.leader);
      if (leader) out.push({ meetingId: meeting.id, leaderDeviceId: leader.info.deviceId });
    }
    return out;
  }

  /**
   * The meeting moves to another node (clustered relay: drained, or re-placed while this node was
   * unreachable): it is dropped here without an 'ended' to anyone — its members must resume it
   * elsewhere, not treat it as over. Returns their connections (to close) and the media to drop.
   * The local reservation goes too: the cluster-wide one is authoritative.
   */
  evict(meetingId: string): { connections: ConnectionId[]; media: MediaEffect[] } {
    const meeting = this.#meetings.get(meetingId);
    if (!meeting) return { connections: [], media: [] };
    this.#meetings.delete(meetingId);
    this.reservations.release(meetingId);
    const connections: ConnectionId[] = [];
    const media: MediaEffect[] = [];
    for (const m of meeting.members.values()) {
      this.#byConnection.delete(m.connection);
      connections.push(m.connection);
      if (m.status === 'active') media.push({ kind: 'remove', connection: m.connection, meetingId });
    }
    return { connections, media };
  }

  create(
    connection: ConnectionId,
    identity: Identity,
    requestId: number | undefined,
    meetingId?: string,
    participantId?: string,
  ): Result {
    this.#assertFree(connection);
    if (identity.kind !== 'room')
      throw new MeetingError('rooms-only', 'only rooms create and lead meetings; people join them');
    this.#assertOwnParticipantId(identity, participantId);
    let id = meetingId;
    if (id === undefined) {
      // A fresh id is neither live nor bound to another device (a leader may be about to resume it).
      do id = this.#newMeetingId();
      while (this.#meetings.has(id) || this.reservations.holder(id) !== undefined);
    } else {
      const holder = this.reservations.holder(id);
      if (holder !== undefined && holder !== identity.deviceId)
        throw new MeetingError('id-bound', `meeting id ${id} is bound to another device`);
      if (this.#meetings.has(id)) throw new MeetingError('meeting-exists', `meeting ${id} already exists`);
    }
    const info: ParticipantInfo = {
      participantId: participantId ?? this.#newParticipantId(identity),
      ...identity,
    };
    // Bound (and on disk) before anyone is told the meeting exists.
    this.reservations.bind(id, identity.deviceId);
    const meeting: Meeting = { id, leader: connection, locked: false, sharing: null, members: new Map() };
    meeting.members.set(connection, { connection, info, status: 'active' });
    this.#meetings.set(id, meeting);
    this.#byConnection.set(connection, id);
    return {
      outgoing: [
        {
          to: connection,
          message: {
            type: 'meeting',
            id: requestId,
            meetingId: id,
            participantId: info.participantId,
            role: 'leader',
            status: 'active',
            leader: info,
          },
        },
        ...this.#rosters(meeting),
      ],
      media: [],
    };
  }

  join(
    connection: ConnectionId,
    identity: Identity,
    requestId: number | undefined,
    meetingId: string,
    participantId?: string,
  ): Result {
    this.#assertFree(connection);
    this.#assertOwnParticipantId(identity, participantId);
    const meeting = this.#meetings.get(meetingId);
    // "Nobody enters before the leader": a meeting exists only while its leader is in it.
    if (!meeting)
      throw new MeetingError('no-meeting', `meeting ${meetingId} has not been started by its leader`);
    if (meeting.locked) throw new MeetingError('locked', `meeting ${meetingId} is locked`);
    const leader = this.#leaderInfo(meeting);
    if (
      participantId !== undefined &&
      [...meeting.members.values()].some((m) => m.info.participantId === participantId)
    ) {
      throw new MeetingError('participant-exists', `${participantId} is already in this meeting`);
    }
    const info: ParticipantInfo = {
      participantId: participantId ?? this.#newParticipantId(identity),
      ...identity,
    };
    meeting.members.set(connection, { connection, info, status: 'waiting' });
    this.#byConnection.set(connection, meetingId);
    return {
      outgoing: [
        {
          to: connection,
          message: {
            type: 'meeting',
            id: requestId,
            meetingId,
            participantId: info.participantId,
            role: 'participant',
            status: 'waiting',
            leader,
          },
        },
        ...this.#rosters(meeting, [meeting.leader]),
      ],
      media: [],
    };
  }

  admit(connection: ConnectionId, requestId: number | undefined, participantId: string): Result {
    const { meeting, member } = this.#waitingMemberForLeader(connection, participantId);
    member.status = 'active';
    return {
      outgoing: [
        { to: connection, message: { type: 'ok', id: requestId } },
        {
          to: member.connection,
          message: {
            type: 'meeting',
            meetingId: meeting.id,
            participantId,
            role: 'participant',
            status: 'active',
            leader: this.#leaderInfo(meeting),
          },
        },
        ...this.#rosters(meeting),
      ],
      media: [],
    };
  }

  deny(connection: ConnectionId, requestId: number | undefined, participantId: string): Result {
    const { meeting, member } = this.#waitingMemberForLeader(connection, participantId);
    meeting.members.delete(member.connection);
    this.#byConnection.delete(member.connection);
    return {
      outgoing: [
        { to: connection, message: { type: 'ok', id: requestId } },
        { to: member.connection, message: { type: 'denied', meetingId: meeting.id } },
        ...this.#rosters(meeting, [meeting.leader]),
      ],
      media: [],
    };
  }

  lock(connection: ConnectionId, requestId: number | undefined, locked: boolean): Result {
    const meeting = this.#ledMeeting(connection);
    meeting.locked = locked;
    return {
      outgoing: [{ to: connection, message: { type: 'ok', id: requestId } }, ...this.#rosters(meeting)],
      media: [],
    };
  }

  /** The leader hands leadership to an admitted participant; everyone learns the new leader. */
  handover(connection: ConnectionId, requestId: number | undefined, participantId: string): Result {
    const meeting = this.#ledMeeting(connection);
    const next = [...meeting.members.values()].find((m) => m.info.participantId === participantId);
    if (next?.status !== 'active' || next.connection === connection) {
      throw new MeetingError('not-admitted', `${participantId} is not an admitted participant`);
    }
    if (next.info.kind !== 'room')
      throw new MeetingError('rooms-only', `${participantId} is a person; only rooms lead meetings`);
    this.reservations.bind(meeting.id, next.info.deviceId);
    meeting.leader = next.connection;
    const leader = next.info;
    const outgoing: Outgoing[] = [{ to: connection, message: { type: 'ok', id: requestId } }];
    for (const m of meeting.members.values()) {
      if (m.status !== 'active') continue;
      outgoing.push({
        to: m.connection,
        message: {
          type: 'meeting',
          meetingId: meeting.id,
          participantId: m.info.participantId,
          role: m.connection === next.connection ? 'leader' : 'participant',
          status: 'active',
          leader,
        },
      });
    }
    return { outgoing: [...outgoing, ...this.#rosters(meeting)], media: [] };
  }

  /**
   * An active member starts or stops sharing its screen. One sharer per meeting: a new share ends
   * the one before. Stopping when not the sharer changes nothing. Whether the member can share at
   * all (a person with media) is the server's check; this is only the meeting's state.
   */
  share(connection: ConnectionId, requestId: number | undefined, enabled: boolean): Result {
    const id = this.#byConnection.get(connection);
    const meeting = id === undefined ? undefined : this.#meetings.get(id);
    const member = meeting?.members.get(connection);
    if (!meeting || member?.status !== 'active')
      throw new MeetingError('not-admitted', 'only admitted participants share');
    const ok: Outgoing = { to: connection, message: { type: 'ok', id: requestId } };
    const sharing = enabled ? connection : meeting.sharing === connection ? null : meeting.sharing;
    if (sharing === meeting.sharing) return { outgoing: [ok], media: [] };
    meeting.sharing = sharing;
    return {
      outgoing: [ok, ...this.#rosters(meeting)],
      media: [{ kind: 'share', meetingId: meeting.id, sharer: sharing }],
    };
  }

  /** The connection sharing its screen in this connection's meeting, if any. */
  sharerOf(connection: ConnectionId): ConnectionId | null {
    const id = this.#byConnection.get(connection);
    return (id === undefined ? undefined : this.#meetings.get(id)?.sharing) ?? null;
  }

  /**
   * A participant leaves (or, `closed`, its connection went). The leader leaving ends the meeting; a
   * leader that left on purpose frees the meeting id, one whose connection went keeps it bound for
   * its resume (a relay or network restart).
   */
  leave(connection: ConnectionId, requestId?: number, opts: { closed?: boolean } = {}): Result {
    const meetingId = this.#byConnection.get(connection);
    const meeting = meetingId === undefined ? undefined : this.#meetings.get(meetingId);
    const reply: Outgoing[] =
      requestId === undefined ? [] : [{ to: connection, message: { type: 'ok', id: requestId } }];
    if (!meeting) return { outgoing: reply, media: [] };
    if (meeting.leader === connection) {
      if (opts.closed) this.reservations.orphan(meeting.id);
      else this.reservations.release(meeting.id);
      return this.#end(meeting, 'the leader left', reply);
    }
    const member = meeting.members.get(connection);
    meeting.members.delete(connection);
    this.#byConnection.delete(connection);
    if (!member) return { outgoing: reply, media: [] };
    // The sharer's share ends with it (its SFU peer goes too; the rosters below say nobody shares).
    if (meeting.sharing === connection) meeting.sharing = null;
    const leftNotice: Outgoing[] =
      member.status === 'active'
        ? this.activeConnections(meeting.id).map((to) => ({
            to,
            message: { type: 'left', meetingId: meeting.id, participantId: member.info.participantId },
          }))
        : [];
    return {
      outgoing: [
        ...reply,
        ...leftNotice,
        ...this.#rosters(meeting, member.status === 'active' ? undefined : [meeting.leader]),
      ],
      media: member.status === 'active' ? [{ kind: 'remove', connection, meetingId: meeting.id }] : [],
    };
  }

  end(connection: ConnectionId, requestId: number | undefined): Result {
    const meeting = this.#ledMeeting(connection);
    this.reservations.release(meeting.id);
    return this.#end(meeting, 'the leader ended the meeting', [
      { to: connection, message: { type: 'ok', id: requestId } },
    ]);
  }

  #end(meeting: Meeting, reason: string, reply: Outgoing[]): Result {
    this.#meetings.delete(meeting.id);
    const outgoing: Outgoing[] = [...reply];
    const media: MediaEffect[] = [];
    for (const m of meeting.members.values()) {
      this.#byConnection.delete(m.connection);
      outgoing.push({ to: m.connection, message: { type: 'ended', meetingId: meeting.id, reason } });
      if (m.status === 'active')
        media.push({ kind: 'remove', connection: m.connection, meetingId: meeting.id });
    }
    return { outgoing, media };
  }

  #member(connection: ConnectionId): Member | undefined {
    const id = this.#byConnection.get(connection);
    return id === undefined ? undefined : this.#meetings.get(id)?.members.get(connection);
  }

  /** A participant id asked for (a resume) must be one the relay made for this very device. */
  #assertOwnParticipantId(identity: Identity, participantId: string | undefined): void {
    if (participantId !== undefined && !participantIdBoundTo(participantId, identity))
      throw new MeetingError('id-bound', `participant id ${participantId} is bound to another device`);
  }

  #assertFree(connection: ConnectionId): void {
    if (this.#byConnection.has(connection))
      throw new MeetingError('already-in-meeting', 'leave the current meeting first');
  }

  #ledMeeting(connection: ConnectionId): Meeting {
    const id = this.#byConnection.get(connection);
    const meeting = id === undefined ? undefined : this.#meetings.get(id);
    if (!meeting) throw new MeetingError('not-in-meeting', 'not in a meeting');
    if (meeting.leader !== connection) throw new MeetingError('not-leader', 'only the leader can do this');
    return meeting;
  }

  #waitingMemberForLeader(
    connection: ConnectionId,
    participantId: string,
  ): { meeting: Meeting; member: Member } {
    const meeting = this.#ledMeeting(connection);
    const member = [...meeting.members.values()].find((m) => m.info.participantId === participantId);
    if (member?.status !== 'waiting')
      throw new MeetingError('not-waiting', `${participantId} is not waiting to join`);
    return { meeting, member };
  }

  #leaderInfo(meeting: Meeting): ParticipantInfo {
    const leader = meeting.members.get(meeting.leader);
    if (!leader) throw new MeetingError('internal', 'meeting without leader');
    return leader.info;
  }

  /** The roster for every active member (only the leader sees who waits); or only for `only`. */
  #rosters(meeting: Meeting, only?: ConnectionId[]): Outgoing[] {
    const members = [...meeting.members.values()];
    const participants = members.filter((m) => m.status === 'active').map((m) => m.info);
    const waiting = members.filter((m) => m.status === 'waiting').map((m) => m.info);
    const recipients = only ?? members.filter((m) => m.status === 'active').map((m) => m.connection);
    return recipients.map((to) => ({
      to,
      message: {
        type: 'roster',
        meetingId: meeting.id,
        participants,
        waiting: to === meeting.leader ? waiting : [],
        locked: meeting.locked,
        sharing: (meeting.sharing && meeting.members.get(meeting.sharing)?.info.participantId) ?? null,
      },
    }));
  }
}
