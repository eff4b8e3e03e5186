// Helpers of the web participant tests (test/web-e2ee*.test.ts): a person's browser identity (a
// non-extractable WebCrypto Ed25519 key and a person certificate for it), a WebMeeting joined through
// a `ws` WebSocket that records every message it sends to the page and to the transform worker, and
// the assertion that no key ever reached the page.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { expect } from 'vitest';
import WebSocket from 'ws';
import type { CertificateAuthority } from '../src/pki/index.js';
import { issuePersonCertificate } from '../src/pki/person.js';
import { issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { webCryptoSigner } from '../src/web/e2ee/identity.js';
import type { AsyncSigner, WebSocketLike } from '../src/web/e2ee/relay-client.js';
import { WebMeeting } from '../src/web/e2ee/web-meeting.js';
import type {
  E2eeToPage,
  E2eeToTransform,
  MeetingStatus,
  MeetingView,
  TransformKeys,
  TrustAnchorsJson,
} from '../src/web/shared/messages.js';
import { poll, type Room } from './adversary/rooms.js';

export interface WebIdentity {
  kind: 'person' | 'room';
  email: string;
  certificatePem: string;
  signer: AsyncSigner;
  name: string;
}

/**
 * A person's browser key — WebCrypto Ed25519, non-extractable — and a person certificate for it
 * (`kind: 'room'`: a room certificate whose key was moved into WebCrypto, to run the same flow).
 */
export async function webIdentity(
  ca: CertificateAuthority,
  name: string,
  kind: 'person' | 'room' = 'person',
): Promise<WebIdentity> {
  if (kind === 'person') return personIdentity(ca, name);
  const device = await issueDevelopmentDevice(ca, { roomName: name });
  const keyPair = await importKeyPair(device.identityKey);
  return {
    kind,
    email: '',
    certificatePem: device.certificatePem,
    signer: await webCryptoSigner(keyPair),
    name,
  };
}

async function importKeyPair(privateKey: KeyObject): Promise<CryptoKeyPair> {
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return {
    privateKey: await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']),
    publicKey: await crypto.subtle.importKey('spki', spki, { name: 'Ed25519' }, true, ['verify']),
  };
}

async function personIdentity(ca: CertificateAuthority, name: string): Promise<WebIdentity> {
  const keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const signer = await webCryptoSigner(keyPair);
  const email = `${name.split(' ')[0]?.toLowerCase()}@example.org`;
  const issued = await issuePersonCertificate({
    ca,
    publicKeyRaw: signer.publicKey,
    person: { name, email, org: 'Sealroom Demo Org' },
  });
  return { kind: 'person', email, certificatePem: issued.certPem, signer, name };
}

export interface WebParticipant {
  meeting: WebMeeting;
  page: E2eeToPage[];
  transform: E2eeToTransform[];
  status(): MeetingStatus | undefined;
  view(): MeetingView | undefined;
  keys(): TransformKeys | undefined;
}

export function anchors(...caPems: string[]): TrustAnchorsJson {
  return { orgCaPems: caPems, partnerCaPems: [], revokedSerials: [] };
}

/** The WebMeeting class to run: the sources (default) or a browser bundle of them. */
export type WebMeetingClass = typeof WebMeeting;

export async function joinWeb(
  url: string,
  meetingId: string,
  id: WebIdentity,
  trust: TrustAnchorsJson,
  Meeting: WebMeetingClass = WebMeeting,
): Promise<WebParticipant> {
  const page: E2eeToPage[] = [];
  const transform: E2eeToTransform[] = [];
  const meeting = new Meeting({
    toPage: (m) => page.push(structuredClone(m)),
    toTransform: (m) => transform.push(structuredClone(m)),
    openSocket: (u) => new WebSocket(u) as unknown as WebSocketLike,
    tickMs: 100,
  });
  await meeting.start({
    relayUrl: url,
    meetingId,
    certificatePem: id.certificatePem,
    trust,
    signer: id.signer,
  });
  const last = <T extends E2eeToPage['type']>(type: T) =>
    page.filter((m): m is Extract<E2eeToPage, { type: T }> => m.type === type).at(-1);
  return {
    meeting,
    page,
    transform,
    status: () => last('status')?.status,
    view: () => last('view')?.view,
    keys: () => transform.filter((m): m is TransformKeys => m.type === 'keys').at(-1),
  };
}

/** The leader lets the web participant in, once its binding verified on the leader. */
export async function admit(leader: Room, web: WebParticipant): Promise<void> {
  const pid = web.meeting.participantId;
  await poll(
    () => leader.state.get().meeting?.waiting.some((w) => w.participantId === pid),
    10_000,
    'the web participant in the waiting list',
  );
  await leader.client.admit(pid);
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Every byte string a keys message carries, in the encodings a leak could take. */
function keySpellings(k: TransformKeys): string[] {
  const all = [k.sendKey, ...k.receiveKeys.map((r) => r.key), ...k.auth.flatMap((a) => [a.send, a.receive])];
  return all.flatMap((b) => [
    hex(b),
    Buffer.from(b).toString('base64'),
    Buffer.from(b).toString('base64url'),
    b.join(','),
  ]);
}

/** Asserts that nothing sent to the page carries a key: no byte arrays at all, no key spelling. */
export function expectNoKeysOnPage(web: WebParticipant): void {
  const text = JSON.stringify(web.page, (_k, v) =>
    v instanceof Uint8Array ? { __bytes: Array.from(v) } : v,
  );
  expect(text).not.toContain('__bytes');
  expect(web.page.some((m) => (m as { type: string }).type === 'keys')).toBe(false);
  const keys = web.transform.filter((m): m is TransformKeys => m.type === 'keys');
  expect(keys.length).toBeGreaterThan(0);
  for (const k of keys) for (const s of keySpellings(k)) expect(text).not.toContain(s);
}
