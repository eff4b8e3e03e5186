// What the wall shows about a meeting's people, built only from identities this device verified
// (device/daemon/meeting-trust.ts): the roster is the E2EE participant list — who holds the key —
// named from the roster event's certificates; the waiting list is the joiners whose binding and
// certificate verified ('admission-request'), never the relay's raw waiting list.
import type { MeetingTrust } from './meeting-trust.js';
import type { RosterEntry, VerifiedIdentity } from './state.js';

/** A member of the E2EE roster event (certificate: base64url DER; may be absent before core v2). */
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
    deviceId: identity?.deviceId ?? '',
    roomName: identity?.roomName ?? UNVERIFIED_NAME,
    org: identity?.org ?? '',
    isLeader: member.participantId === leaderId,
    isSelf: member.participantId === selfId,
  }));
}

/** Gallery tile labels for the media engine, by sender index. */
export function galleryLabels(named: readonly NamedMember[]): { senderIndex: number; name: string }[] {
  return named.map(({ member, identity }) => ({
    senderIndex: member.senderIndex,
    name: identity?.roomName ?? UNVERIFIED_NAME,
  }));
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
