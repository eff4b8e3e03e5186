// Only verified identities, on the device (issue 9, attack 1): real MeetingClients over a real relay
// that is itself the adversary — it trusts a foreign CA ("Example Corp") besides the org's, so a room
// certified by that CA authenticates and posts a correctly signed binding. The devices pin only
// their org CA: the leader refuses the foreign room (no admission request, no name on the wall, an
// alert, admit refused), and a joining room refuses a leader from the foreign CA (never shown).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { type DeviceState, initialState, StateStore } from '../device/daemon/state.js';
import type { SessionEvent } from '../src/core/e2ee/index.js';
import { type CertificateAuthority, TrustStore, type TrustAnchors } from '../src/pki/index.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

interface Room {
  name: string;
  device: DevelopmentDevice;
  state: StateStore;
  client: MeetingClient;
  events: SessionEvent[];
  /** Every state the wall was given. */
  states: DeviceState[];
}

let relay: Relay;
let orgCa: CertificateAuthority;
let foreignCa: CertificateAuthority;
const rooms: Room[] = [];

async function room(name: string, device: DevelopmentDevice, trust: TrustAnchors): Promise<Room> {
  const state = new StateStore(initialState('test'));
  const client = new MeetingClient({
    relayUrl: relay.url,
    credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
    trust: new TrustStore(trust),
    state,
    log: silentLogger,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    tickMs: 100,
  });
  const r: Room = { name, device, state, client, events: [], states: [] };
  client.on('e2ee', (e) => r.events.push(e));
  state.on('change', (s) => r.states.push(s));
  await client.start();
  rooms.push(r);
  return r;
}

/** Every name the wall could show: roster, leader, waiting list. */
function namesOnWall(s: DeviceState): string[] {
  const m = s.meeting;
  if (!m) return [];
  return [
    ...m.roster.flatMap((r) => [r.roomName, r.org]),
    ...m.waiting.flatMap((w) => [w.roomName, w.org]),
    ...(m.leader ? [m.leader.roomName, m.leader.org] : []),
  ];
}
const ghostly = (s: DeviceState) => namesOnWall(s).some((n) => n === 'Room C' || n === 'Example Corp');
const refusals = (r: Room) =>
  r.events.filter((e) => (e as { type: string }).type === 'identity-refused') as unknown as {
    participantId: string;
    reason: string;
  }[];
const waitFor = (f: () => unknown, timeout = 10_000) =>
  expect.poll(() => Boolean(f()), { timeout, interval: 50 }).toBe(true);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  orgCa = await createDevelopmentCa();
  foreignCa = await createDevelopmentCa('Example Corp');
  // The relay is the adversary: it accepts rooms of both CAs.
  relay = await startRelay({ log: silentLogger, trust: { caPems: [orgCa.certPem, foreignCa.certPem] } });
}, 30_000);

afterAll(async () => {
  for (const r of rooms) await r.client.stop();
  await relay?.close();
});

describe('identities verified on the device', () => {
  it('the leader refuses a room certified by a foreign CA: never listed, never admitted, an alert on the wall', async () => {
    const a = await room('Boardroom', await issueDevelopmentDevice(orgCa, { roomName: 'Boardroom' }), {
      orgCaPem: orgCa.certPem,
    });
    const b = await room('Huddle', await issueDevelopmentDevice(orgCa, { roomName: 'Huddle' }), {
      orgCaPem: orgCa.certPem,
    });
    const ghostDevice = await issueDevelopmentDevice(foreignCa, { roomName: 'Room C', org: 'Example Corp' });
    const c = await room('Room C', ghostDevice, {
      orgCaPem: foreignCa.certPem,
      partnerCaPems: [orgCa.certPem],
    });

    const { meetingId } = await a.client.startMeeting();
    await c.client.joinMeeting(meetingId);
    const ghostId = c.client.participantId ?? '';
    await waitFor(() => refusals(a).some((e) => e.participantId === ghostId));
    await waitFor(() =>
      a.state
        .get()
        .alerts.some(
          (al) => al.id === 'identity-refused' && /unverified participant was refused/.test(al.message),
        ),
    );
    expect(a.events.some((e) => e.type === 'admission-request')).toBe(false);
    // Tapping Admit anyway (a stale screen, a script) is refused by the daemon itself.
    await expect(a.client.admit(ghostId)).rejects.toThrow(/no verified join request/);

    // The honest room takes the same path and is listed with the names from its certificate.
    await b.client.joinMeeting(meetingId);
    await waitFor(() => a.state.get().meeting?.waiting.length === 1);
    expect(a.state.get().meeting?.waiting).toEqual([
      {
        participantId: b.client.participantId,
        kind: 'room',
        deviceId: b.device.deviceId,
        roomName: 'Huddle',
        org: 'Sealroom Demo Org',
        email: '',
      },
    ]);
    await a.client.admit(b.client.participantId ?? '');
    await waitFor(() => b.state.get().meeting?.securityCode !== undefined);
    await waitFor(() => b.state.get().meeting?.roster.length === 2);
    await sleep(500);
    expect(
      a.state
        .get()
        .meeting?.roster.map((r) => r.roomName)
        .sort(),
    ).toEqual(['Boardroom', 'Huddle']);
    expect(b.state.get().meeting?.leader).toMatchObject({ roomName: 'Boardroom', org: 'Sealroom Demo Org' });
    // The ghost got nothing, and no wall ever showed it.
    expect(c.client.keyHistory).toHaveLength(0);
    expect(c.state.get().meeting?.securityCode).toBeUndefined();
    for (const r of [a, b]) expect(r.states.some(ghostly)).toBe(false);
    await b.client.leaveMeeting();
    await c.client.leaveMeeting();
    await a.client.leaveMeeting();
  });

  it('a joining room refuses a leader certified by a foreign CA and never shows it as verified', async () => {
    const ghostDevice = await issueDevelopmentDevice(foreignCa, { roomName: 'Room C', org: 'Example Corp' });
    // The ghost leader trusts our org (so it admits us); we pin only our org CA.
    const c = await room('Room C (leader)', ghostDevice, {
      orgCaPem: foreignCa.certPem,
      partnerCaPems: [orgCa.certPem],
    });
    const d = await room('Lobby', await issueDevelopmentDevice(orgCa, { roomName: 'Lobby' }), {
      orgCaPem: orgCa.certPem,
    });
    const { meetingId } = await c.client.startMeeting();
    await d.client.joinMeeting(meetingId);
    await waitFor(() => c.state.get().meeting?.waiting.length === 1);
    await c.client.admit(d.client.participantId ?? '');
    // Admitted by the relay, handed the ghost's chain: the create entry's leader fails trust.
    await waitFor(() => refusals(d).length > 0);
    expect(refusals(d)[0]?.participantId).toBe(c.client.participantId);
    await waitFor(() => d.state.get().alerts.some((al) => al.id === 'identity-refused'));
    await sleep(1000);
    expect(d.client.keyHistory).toHaveLength(0);
    expect(d.state.get().meeting?.securityCode).toBeUndefined();
    expect(d.state.get().meeting?.leader).toBeUndefined();
    expect(d.states.some(ghostly)).toBe(false);
    await d.client.leaveMeeting();
    await c.client.leaveMeeting();
  });
});
