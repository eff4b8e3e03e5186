// People on the room's screen (issue 12), with real person certificates from the org CA
// (src/pki/person.ts): the room verifies each one on the device (TrustStore) and shows
// "Alice Smith · alice@example.org · Example Corp · signed in" in its waiting list and roster —
// from the certificate only. A person certificate for another key, an expired one, or one a partner
// CA issued for another org is refused and never shown. Then the whole way through a real relay: a
// person (a MeetingClient holding a person certificate, as the browser's E2EE worker would) asks to
// join, the leading room's kiosk page (real Chromium) lists the person, a tap on Admit admits them
// through the real meeting client, the roster names them, and a leaving leader never hands the
// meeting to a person.
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { MeetingTrust } from '../device/daemon/meeting-trust.js';
import { meetingView, type NamedMember } from '../device/daemon/meeting-view.js';
import { type DeviceState, initialState, StateStore, type VerifiedIdentity } from '../device/daemon/state.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import type { SessionEvent } from '../src/core/e2ee/index.js';
import { type CertificateAuthority, TrustStore } from '../src/pki/index.js';
import { issuePersonCertificate, type PersonClaims } from '../src/pki/person.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { buildKioskUi, launchChromium } from './kiosk-browser.js';
import { RoomDouble } from './kiosk-room-double.js';

const ORG = 'Example Corp';
const ALICE: PersonClaims = { name: 'Alice Smith', email: 'alice@example.org', org: ORG };
const ALICE_LINE = 'Alice Smith · alice@example.org · Example Corp · signed in';

let orgCa: CertificateAuthority;
let partnerCa: CertificateAuthority;

interface Person {
  key: KeyObject;
  publicKeyRaw: Uint8Array;
  certificatePem: string;
  der: Uint8Array;
}

function ed25519(): { key: KeyObject; publicKeyRaw: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
  return { key: privateKey, publicKeyRaw: raw };
}

async function person(
  claims: PersonClaims = ALICE,
  ca: CertificateAuthority = orgCa,
  opts: { validityMs?: number; now?: Date } = {},
): Promise<Person> {
  const { key, publicKeyRaw } = ed25519();
  const issued = await issuePersonCertificate({ ca, publicKeyRaw, person: claims, ...opts });
  return {
    key,
    publicKeyRaw,
    certificatePem: issued.certPem,
    der: new Uint8Array(new X509Certificate(issued.certPem).raw),
  };
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

beforeAll(async () => {
  orgCa = await createDevelopmentCa(ORG);
  partnerCa = await createDevelopmentCa('Partner GmbH');
}, 30_000);

describe('a person certificate verified on the room', () => {
  it('names the person in the waiting list and the roster: kind person, name, email, org', async () => {
    const alice = await person();
    const trust = new MeetingTrust(new TrustStore({ orgCaPem: orgCa.certPem }), silentLogger);
    expect(trust.trustIdentity('p-alice', alice.publicKeyRaw, alice.der)).toBe(true);
    const shown = trust.identityOf('p-alice', b64(alice.publicKeyRaw));
    expect(shown).toEqual({
      participantId: 'p-alice',
      kind: 'person',
      deviceId: 'person:alice@example.org',
      roomName: 'Alice Smith',
      org: ORG,
      email: 'alice@example.org',
    });
    const self = { participantId: 'p-room', identityKey: 'x', senderIndex: 0, leader: true };
    const named: NamedMember[] = [
      {
        member: self,
        identity: {
          participantId: 'p-room',
          kind: 'room',
          deviceId: 'd',
          roomName: 'Boardroom',
          org: ORG,
          email: '',
        },
      },
    ];
    const facts = {
      meetingId: 'm',
      role: 'leader' as const,
      participantId: 'p-room',
      leaderId: 'p-room',
      named,
      requests: new Map<string, VerifiedIdentity>([['p-alice', shown as VerifiedIdentity]]),
      stillWaiting: ['p-alice'],
      relayPresent: new Set(['p-room', 'p-alice']),
    };
    expect(meetingView(facts, undefined, {}).waiting).toEqual([shown]);
    // Admitted: the roster entry comes from the member's certificate in the signed list.
    const inRoster = meetingView(
      {
        ...facts,
        named: [
          ...named,
          {
            member: {
              participantId: 'p-alice',
              identityKey: b64(alice.publicKeyRaw),
              senderIndex: 3,
              leader: false,
            },
            identity: trust.identityOf('p-alice', b64(alice.publicKeyRaw), b64(alice.der)),
          },
        ],
        stillWaiting: [],
      },
      undefined,
      {},
    );
    expect(inRoster.waiting).toEqual([]);
    expect(inRoster.roster.find((r) => r.participantId === 'p-alice')).toMatchObject({
      kind: 'person',
      roomName: 'Alice Smith',
      email: 'alice@example.org',
      org: ORG,
      senderIndex: 3,
      isLeader: false,
    });
  });

  it('refuses a person certificate for another key, an expired one, and one from a partner CA for another org', async () => {
    const store = new TrustStore({ orgCaPem: orgCa.certPem, partnerCaPems: [partnerCa.certPem] });
    const trust = new MeetingTrust(store, silentLogger);
    const alice = await person();
    const mallory = ed25519();
    // Alice's certificate presented with Mallory's identity key.
    expect(trust.trustIdentity('p-1', mallory.publicKeyRaw, alice.der)).toBe(false);
    expect(trust.refusalReason('p-1')).toMatch(/^key-mismatch/);
    // Expired: a 1-hour certificate issued 2 hours ago.
    const old = await person(ALICE, orgCa, {
      validityMs: 3600_000,
      now: new Date(Date.now() - 2 * 3600_000),
    });
    expect(trust.trustIdentity('p-2', old.publicKeyRaw, old.der)).toBe(false);
    expect(trust.refusalReason('p-2')).toMatch(/^expired/);
    // A partner CA may certify people of its own org only: "Partner GmbH" naming an Example Corp person.
    const forged = await person({ ...ALICE, org: ORG }, partnerCa);
    expect(trust.trustIdentity('p-3', forged.publicKeyRaw, forged.der)).toBe(false);
    expect(trust.refusalReason('p-3')).toMatch(/^org-mismatch/);
    // A CA this room does not pin at all.
    const stranger = await createDevelopmentCa(ORG);
    const unknown = await person(ALICE, stranger);
    expect(trust.trustIdentity('p-4', unknown.publicKeyRaw, unknown.der)).toBe(false);
    expect(trust.refusalReason('p-4')).toMatch(/^unknown-issuer/);
    // None of them is ever named, by the roster path either.
    for (const [id, p] of [
      ['p-1', alice],
      ['p-2', old],
      ['p-3', forged],
      ['p-4', unknown],
    ] as const) {
      const key = id === 'p-1' ? mallory.publicKeyRaw : p.publicKeyRaw;
      expect(trust.identityOf(id, b64(key))).toBeUndefined();
      expect(trust.identityOf(id, b64(key), b64(p.der))).toBeUndefined();
    }
  });
});

// ---- through the relay, with the kiosk page ----

interface Member {
  state: StateStore;
  client: MeetingClient;
  events: SessionEvent[];
  states: DeviceState[];
}

let relay: Relay | undefined;
let browser: Browser | undefined;
let ui: { dir: string; remove(): void } | undefined;
const members: Member[] = [];
const servers: ControlServer[] = [];

afterAll(async () => {
  for (const s of servers) await s.close();
  await browser?.close();
  ui?.remove();
  for (const m of members) await m.client.stop();
  await relay?.close();
});

async function member(credentials: { certificatePem: string; identityKey: KeyObject }): Promise<Member> {
  const state = new StateStore(initialState('test'));
  const client = new MeetingClient({
    relayUrl: (relay as Relay).url,
    credentials,
    trust: new TrustStore({ orgCaPem: orgCa.certPem }),
    state,
    log: silentLogger,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    tickMs: 100,
  });
  const m: Member = { state, client, events: [], states: [] };
  client.on('e2ee', (e) => m.events.push(e));
  state.on('change', (s) => m.states.push(s));
  await client.start();
  members.push(m);
  return m;
}

const waitFor = (f: () => unknown, timeout = 15_000) =>
  expect.poll(() => Boolean(f()), { timeout, interval: 50 }).toBe(true);

describe('a person joins a room’s meeting through the relay', () => {
  beforeAll(async () => {
    relay = await startRelay({ log: silentLogger, trust: { caPems: [orgCa.certPem] } });
  });

  it('the leading room’s screen lists the person, a tap admits them, the roster names them, and the meeting is never handed to them', async () => {
    const device: DevelopmentDevice = await issueDevelopmentDevice(orgCa, {
      roomName: 'Boardroom',
      org: ORG,
    });
    const room = await member({ certificatePem: device.certificatePem, identityKey: device.identityKey });
    const alice = await person();
    const p = await member({ certificatePem: alice.certificatePem, identityKey: alice.key });

    const { meetingId } = await room.client.startMeeting();
    await p.client.joinMeeting(meetingId);
    const aliceId = p.client.participantId ?? '';
    await waitFor(() => room.state.get().meeting?.waiting.length === 1);
    expect(room.state.get().meeting?.waiting).toEqual([
      {
        participantId: aliceId,
        kind: 'person',
        deviceId: 'person:alice@example.org',
        roomName: 'Alice Smith',
        org: ORG,
        email: 'alice@example.org',
      },
    ]);

    // The room's own kiosk page, on the daemon's real state; Admit goes to the real meeting client.
    ui = buildKioskUi();
    browser = await launchChromium();
    const actions = new RoomDouble(room.state);
    actions.admit = (id: string) => room.client.admit(id);
    const server = await createControlServer({
      state: room.state,
      actions,
      log: silentLogger,
      uiDir: ui.dir,
    });
    servers.push(server);
    const page = await (await browser.newContext({ viewport: { width: 1920, height: 1080 } })).newPage();
    await page.goto(server.url);
    const waitingItem = `[data-testid=waiting] [data-waiting="${aliceId}"]`;
    await page.waitForSelector(waitingItem);
    expect(await page.getAttribute(`${waitingItem} .identity`, 'title')).toBe(ALICE_LINE);
    expect(await page.textContent(`${waitingItem} .identity-email`)).toBe('alice@example.org');
    expect(await page.textContent(`${waitingItem} .identity-signed-in`)).toBe('signed in');
    await page.click(`${waitingItem} [data-action=admit]`);

    await waitFor(() => p.state.get().meeting?.securityCode !== undefined);
    expect(p.state.get().meeting?.securityCode).toBe(room.state.get().meeting?.securityCode);
    await waitFor(() => room.state.get().meeting?.roster.length === 2);
    expect(room.state.get().meeting?.roster.find((r) => r.participantId === aliceId)).toMatchObject({
      kind: 'person',
      roomName: 'Alice Smith',
      email: 'alice@example.org',
      org: ORG,
    });
    const rosterItem = `[data-testid=roster] [data-participant="${aliceId}"]`;
    await page.waitForSelector(rosterItem);
    expect(await page.getAttribute(`${rosterItem} .identity`, 'title')).toBe(ALICE_LINE);
    // The person's screen names the room from the room's certificate, as any member's does.
    await waitFor(() => p.state.get().meeting?.leader?.roomName === 'Boardroom');

    // The only other member is a person: the leaving room does not hand over; the meeting ends.
    await room.client.leaveMeeting();
    await waitFor(() => p.state.get().meeting?.status === 'ended');
    expect(p.events.some((e) => e.type === 'leader-changed')).toBe(false);
    expect(p.states.some((s) => s.meeting?.role === 'leader')).toBe(false);
  }, 90_000);

  it('a leaving leader hands the meeting to a room, never to a person who joined before it', async () => {
    const a = await issueDevelopmentDevice(orgCa, { roomName: 'Lobby', org: ORG });
    const b = await issueDevelopmentDevice(orgCa, { roomName: 'Huddle', org: ORG });
    const leader = await member({ certificatePem: a.certificatePem, identityKey: a.identityKey });
    const other = await member({ certificatePem: b.certificatePem, identityKey: b.identityKey });
    const bob = await person({ name: 'Bob Jones', email: 'bob@example.org', org: ORG });
    const p = await member({ certificatePem: bob.certificatePem, identityKey: bob.key });
    const { meetingId } = await leader.client.startMeeting();
    // The person is admitted first: the longest-standing member, yet never a successor.
    for (const m of [p, other]) {
      await m.client.joinMeeting(meetingId);
      const id = m.client.participantId ?? '';
      await waitFor(() => leader.state.get().meeting?.waiting.some((w) => w.participantId === id));
      await leader.client.admit(id);
      await waitFor(() => m.state.get().meeting?.securityCode !== undefined);
    }
    await waitFor(() => leader.state.get().meeting?.roster.length === 3);
    await leader.client.leaveMeeting();
    await waitFor(() => other.state.get().meeting?.role === 'leader');
    await waitFor(() => p.state.get().meeting?.leader?.roomName === 'Huddle');
    expect(p.states.some((s) => s.meeting?.role === 'leader')).toBe(false);
    expect(p.state.get().meeting?.status).toBe('active');
    await p.client.leaveMeeting();
    await other.client.leaveMeeting();
  }, 90_000);
});
