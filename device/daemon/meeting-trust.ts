// Who a meeting participant is, as far as this device can tell by itself: the E2EE core asks
// `trustIdentity(participantId, identityKey, certificate)` for every binding the leader receives and
// every `add` entry a participant applies, and this answers from the certificate alone, checked
// against the trust anchors pinned at enrollment (src/pki TrustStore). Nothing the relay says about
// a participant (its roster, its waiting list, its `leader` field) is consulted.
//
// What verified is remembered by (participant id, identity key), so the wall can name roster
// members, the leader and waiting joiners from certificates this device checked — and from nothing else.
import type { CertifiedIdentity, TrustStore } from '../../src/pki/trust-store.js';
import type { Logger } from '../../src/util/log.js';
import type { VerifiedIdentity } from './state.js';

/** Identities remembered per meeting client (a hostile member could post many bindings). */
const MAX_REMEMBERED = 1024;

export class MeetingTrust {
  readonly #store: TrustStore;
  readonly #log: Logger;
  readonly #verified = new Map<string, CertifiedIdentity>();
  /** The last refusal's reason per participant id, for the log line of 'identity-refused'. */
  readonly #refusals = new Map<string, string>();

  constructor(store: TrustStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** Whether the certificate verified (for checks of this device's own certificate and tests). */
  trustIdentity(
    participantId: string,
    identityKey: Uint8Array,
    certificate: Uint8Array | undefined,
  ): boolean {
    return this.verdict(participantId, identityKey, certificate).trusted;
  }

  /**
   * The E2EE trust callback: trusted or not, and whether a room or a person (the core never hands
   * leadership to a person). Never throws, never looks at relay-supplied fields.
   */
  verdict(
    participantId: string,
    identityKey: Uint8Array,
    certificate: Uint8Array | undefined,
  ): { trusted: boolean; kind?: 'room' | 'person' } {
    try {
      const verdict = this.#store.verify(certificate ?? new Uint8Array(0), identityKey);
      if (!verdict.ok) {
        const reason = `${verdict.reason}: ${verdict.detail}`;
        this.#remember(this.#refusals, participantId, reason);
        this.#log.warn(
          { participantId, reason: verdict.reason, detail: verdict.detail },
          'refused an unverified identity',
        );
        return { trusted: false };
      }
      this.#remember(this.#verified, keyOf(participantId, identityKey), verdict.identity);
      return { trusted: true, kind: (verdict.identity as MaybePerson).kind === 'person' ? 'person' : 'room' };
    } catch (err) {
      this.#log.warn({ participantId, err: (err as Error).message }, 'identity check failed');
      return { trusted: false };
    }
  }

  /** Why the last check for this participant failed (for the log), if it did. */
  refusalReason(participantId: string): string | undefined {
    return this.#refusals.get(participantId);
  }

  /**
   * The verified identity behind (participant id, identity key as base64url): from the certificate
   * given (a roster member's, checked here), else from what trustIdentity verified before.
   */
  identityOf(
    participantId: string,
    identityKeyB64: string,
    certificateB64?: string,
  ): VerifiedIdentity | undefined {
    let key: Uint8Array;
    try {
      key = fromBase64Url(identityKeyB64);
    } catch {
      return undefined;
    }
    if (certificateB64) {
      try {
        const verdict = this.#store.verify(fromBase64Url(certificateB64), key);
        if (verdict.ok) {
          this.#remember(this.#verified, keyOf(participantId, key), verdict.identity);
          return toView(participantId, verdict.identity);
        }
      } catch {
        // fall through: unverified
      }
      return undefined;
    }
    const known = this.#verified.get(keyOf(participantId, key));
    return known ? toView(participantId, known) : undefined;
  }

  /** The latest verified identity for a participant id (the leader, before its roster arrives). */
  latestFor(participantId: string): VerifiedIdentity | undefined {
    let found: CertifiedIdentity | undefined;
    for (const [k, v] of this.#verified) if (k.startsWith(`${participantId}|`)) found = v;
    return found ? toView(participantId, found) : undefined;
  }

  forget(): void {
    this.#verified.clear();
    this.#refusals.clear();
  }

  #remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    while (map.size > MAX_REMEMBERED) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  }
}

function keyOf(participantId: string, identityKey: Uint8Array): string {
  return `${participantId}|${Buffer.from(identityKey).toString('base64url')}`;
}

/** The person fields of a verified certificate (issue 12: TrustStore tells rooms from people). */
type MaybePerson = CertifiedIdentity & {
  kind?: 'room' | 'person';
  person?: { name: string; email: string };
};

function toView(participantId: string, id: CertifiedIdentity): VerifiedIdentity {
  const p = id as MaybePerson;
  if (p.kind === 'person') {
    // A person certificate that verified: name and email from its subject/SAN, nothing else.
    return {
      participantId,
      kind: 'person',
      deviceId: id.deviceId,
      roomName: p.person?.name ?? id.roomName,
      org: id.org,
      email: p.person?.email ?? '',
    };
  }
  return {
    participantId,
    kind: 'room',
    deviceId: id.deviceId,
    roomName: id.roomName,
    org: id.org,
    email: '',
  };
}

/** Strict unpadded base64url (what the E2EE wire uses). */
function fromBase64Url(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
  return new Uint8Array(Buffer.from(s, 'base64url'));
}
