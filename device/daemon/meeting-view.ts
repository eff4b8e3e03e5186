// What the wall shows about a meeting's people, built only from identities this device verified
// (device/daemon/meeting-trust.ts): the roster is the E2EE participant list — who holds the key —
// named from the roster event's certificates; the waiting list is the joiners whose binding and
// certificate verified ('admission-request'), never the relay's raw waiting list.
import type { KeysEvent } from '../../src/core/e2ee/index.js';
import type { MeetingTrust } from './meeting-trust.js';
import type { MeetingView, RosterEntry, VerifiedIdentity } from './state.js';

/** A member of the E2EE roster event (certificate: base64url DER, "" without one). */
export interface RosterMemberInfo {
  participantId: string;
  identityKey: string;
  senderIndex: number;
  leader: boolean;
  certificate?: string;
}

/** Shown for a key holder whose certificate did not verify here (the core should never admit one). */
export const UNVERIFIED_NAME = 'Unverified participant';

export interface NamedMember {
  member: RosterMemberInfo;
  identity: VerifiedIdentity | undefined;
}

export function nameMembers(trust: MeetingTrust, members: readonly RosterMemberInfo[]): NamedMember[] {
  return members.map((member) => ({
    member,
    identity: trust.identityOf(member.participantId, member.identityKey, member.certificate),
  }));
}

export function rosterEntries(
  named: readonly NamedMember[],
  selfId: string,
  leaderId: string,
): RosterEntry[] {
  return named.map(({ member, identity }) => ({
    participantId: member.participantId,
    kind: identity?.kind ?? 'room',
    deviceId: identity?.deviceId ?? '',
    roomName: identity?.roomName ?? UNVERIFIED_NAME,
    org: identity?.org ?? '',
    email: identity?.email ?? '',
    isLeader: member.participantId === leaderId,
    isSelf: member.participantId === selfId,
    // The wall's slots name senders by index; the page labels a tile only through this entry, so
    // the name it shows is always the verified one (or UNVERIFIED_NAME), never one from elsewhere.
    senderIndex: member.senderIndex,
  }));
}

/** The worker's label limit (device/media/ipc.ts): a person's name may be longer (≤ 128). */
const MAX_LABEL = 64;

/**
 * Gallery tile labels for the media engine, by sender index. `sharing` (the relay's roster: whose
 * screen it forwards) only picks which member's content goes on the wall: the worker shows content
 * of a member marked both verified (certificate checked here) and sharing.
 */
export function galleryLabels(
  named: readonly NamedMember[],
  sharing?: string | null,
): { senderIndex: number; name: string; verified: boolean; sharing?: boolean }[] {
  return named.map(({ member, identity }) => {
    const name = identity?.roomName ?? UNVERIFIED_NAME;
    return {
      senderIndex: member.senderIndex,
      name: name.length > MAX_LABEL ? `${name.slice(0, MAX_LABEL - 1)}…` : name,
      verified: identity !== undefined,
      ...(identity !== undefined && sharing && member.participantId === sharing ? { sharing: true } : {}),
    };
  });
}

/** Waiting joiners: verified requests the leader's session still holds, minus current members. */
export function waitingList(
  requests: ReadonlyMap<string, VerifiedIdentity>,
  stillWaiting: readonly string[],
  roster: readonly RosterEntry[],
): VerifiedIdentity[] {
  const inRoster = new Set(roster.map((r) => r.participantId));
  const waiting = new Set(stillWaiting);
  return [...requests.values()].filter((r) => waiting.has(r.participantId) && !inRoster.has(r.participantId));
}

/** What the meeting client knows when it redraws the meeting (all identities verified here). */
export interface MeetingFacts {
  meetingId: string;
  role: MeetingView['role'];
  participantId: string;
  leaderId: string;
  named: readonly NamedMember[];
  /** Leader: verified join requests, and the ids its E2EE session still holds as waiting. */
  requests: ReadonlyMap<string, VerifiedIdentity>;
  stillWaiting: readonly string[];
  /** Ids the relay lists at all: it may hide a waiting joiner (it left), never add one. */
  relayPresent: ReadonlySet<string>;
  securityCode?: string;
}

export function meetingView(
  facts: MeetingFacts,
  previous: MeetingView | undefined,
  patch: Partial<MeetingView>,
) {
  const roster = rosterEntries(facts.named, facts.participantId, facts.leaderId);
  const leader = facts.named.find((n) => n.member.participantId === facts.leaderId)?.identity;
  const waiting =
    facts.role === 'leader'
      ? waitingList(facts.requests, facts.stillWaiting, roster).filter((w) =>
          facts.relayPresent.has(w.participantId),
        )
      : [];
  const view: MeetingView = {
    meetingId: facts.meetingId,
    role: facts.role,
    status: previous?.status ?? 'connecting',
    roster,
    waiting,
    locked: previous?.locked ?? false,
    rekeying: previous?.rekeying ?? false,
    leaderLost: previous?.leaderLost ?? false,
    leaderChanged: previous?.leaderChanged ?? false,
    ...(previous?.keyEpoch !== undefined ? { keyEpoch: previous.keyEpoch } : {}),
    ...patch,
  };
  // A code (or a leader) is shown only for a leader whose certificate verified on this device.
  delete view.leader;
  delete view.securityCode;
  if (leader) {
    view.leader = leader;
    if (facts.securityCode) view.securityCode = facts.securityCode;
  }
  return view;
}

/** A deep copy of a keys event (the E2EE core wipes retired key buffers in place). */
export function copyKeysEvent(event: KeysEvent): KeysEvent {
  const auth = (
    event as KeysEvent & { auth?: { peerIndex: number; send: Uint8Array; receive: Uint8Array }[] }
  ).auth;
  return {
    ...event,
    sendKey: Uint8Array.from(event.sendKey),
    receiveKeys: event.receiveKeys.map((k) => ({ ...k, key: Uint8Array.from(k.key) })),
    ...(auth
      ? {
          auth: auth.map((a) => ({
            ...a,
            send: Uint8Array.from(a.send),
            receive: Uint8Array.from(a.receive),
          })),
        }
      : {}),
  };
}
