// Who is in the meeting, as this browser can tell by itself: the members of the leader's signed
// participant list (the E2EE core's roster event) named from their certificates, each verified here
// with the TrustStore built from the org's anchors. Nothing the relay says about who someone is (its
// roster's roomName/org/email, its `leader`) is read. A member whose certificate does not verify is
// never named (the core has already refused it; this is the second gate).
import { fromBase64Url, type RosterMember } from '../../core/e2ee/index.js';
import type { CertifiedIdentity, TrustAnchors, TrustStore } from '../../pki/trust-store.js';
import type { TrustAnchorsJson, VerifiedMember } from '../shared/messages.js';

/** The TrustStore's verdict, with the person fields H1 adds (read defensively: older stores have none). */
type Certified = CertifiedIdentity & { kind?: 'room' | 'person'; person?: { name: string; email: string } };

export type Verify = TrustStore['verify'];

/** /api/people/trust → TrustStore anchors. Extra org CAs count as partner CAs of the same org. */
export function anchorsFromJson(json: TrustAnchorsJson): TrustAnchors {
  const [orgCaPem, ...moreOrg] = json.orgCaPems;
  if (!orgCaPem) throw new Error('the trust anchors name no org CA');
  return {
    orgCaPem,
    partnerCaPems: [...moreOrg, ...json.partnerCaPems],
    revokedSerials: new Set(json.revokedSerials),
  };
}

/** What may be shown about one verified certificate. */
export function describe(id: Certified): Pick<VerifiedMember, 'kind' | 'name' | 'email' | 'org'> {
  if (id.kind === 'person' && id.person)
    return { kind: 'person', name: id.person.name, email: id.person.email, org: id.org };
  return { kind: 'room', name: id.roomName, email: '', org: id.org };
}

/** The verified members of a roster event; `refused` gets the ids whose certificate did not verify. */
export function verifiedMembers(
  verify: Verify,
  members: readonly RosterMember[],
  selfId: string,
  refused: Set<string>,
): VerifiedMember[] {
  const out: VerifiedMember[] = [];
  for (const m of members) {
    let verdict: ReturnType<Verify>;
    try {
      verdict = verify(fromBase64Url(m.certificate), fromBase64Url(m.identityKey));
    } catch {
      refused.add(m.participantId);
      continue;
    }
    if (!verdict.ok) {
      refused.add(m.participantId);
      continue;
    }
    out.push({
      participantId: m.participantId,
      senderIndex: m.senderIndex,
      ...describe(verdict.identity as Certified),
      leader: m.leader,
      self: m.participantId === selfId,
    });
  }
  return out.sort((a, b) => a.senderIndex - b.senderIndex);
}
