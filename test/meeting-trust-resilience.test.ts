// The meeting client against a scripted relay double (a bare WebSocket server speaking the relay
// protocol): hostile input never ends the daemon — garbage, well-formed but lying relay messages and
// random E2EE payloads leave the process up and the wall naming nobody the device did not verify —
// and a resume the relay refuses because the id is bound to another device is an alert, not silence.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { type DeviceState, initialState, StateStore } from '../device/daemon/state.js';
import { TrustStore } from '../src/pki/index.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { silentLogger } from '../src/util/log.js';

type Handler = (socket: WebSocket, message: Record<string, unknown>, connection: number) => void;

/** Authenticates anyone, then hands every request to `onRequest`. */
class RelayDouble {
  readonly server: WebSocketServer;
  readonly sockets: WebSocket[] = [];
  onRequest: Handler = () => {};
  constructor() {
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.server.on('connection', (socket) => {
      const connection = this.sockets.push(socket);
      socket.send(
        JSON.stringify({
          type: 'challenge',
          nonce: randomBytes(16).toString('base64'),
          relayId: `r${connection}`,
        }),
      );
      socket.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as Record<string, unknown>;
        if (m.type === 'auth') {
          socket.send(
            JSON.stringify({ type: 'authenticated', identity: { deviceId: 'x', roomName: 'x', org: 'x' } }),
          );
        } else if (m.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }));
        } else {
          this.onRequest(socket, m, connection);
        }
      });
    });
  }
  ready(): Promise<this> {
    return new Promise((resolve) => {
      if (this.server.address()) resolve(this);
      else this.server.once('listening', () => resolve(this));
    });
  }
  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/ws`;
  }
}

const liar = (participantId: string) => ({
  participantId,
  deviceId: 'sr-ghost',
  roomName: 'Room C',
  org: 'Example Corp',
  certificate: 'not a certificate',
});

let device: DevelopmentDevice;
let caPem: string;
const relays: RelayDouble[] = [];
const clients: MeetingClient[] = [];

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  caPem = ca.certPem;
  device = await issueDevelopmentDevice(ca, { roomName: 'Boardroom' });
});

afterAll(async () => {
  for (const c of clients) await c.stop();
  for (const r of relays) r.server.close();
});

function client(relay: RelayDouble) {
  const state = new StateStore(initialState('test'));
  const states: DeviceState[] = [];
  state.on('change', (s) => states.push(s));
  const c = new MeetingClient({
    relayUrl: relay.url,
    credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
    trust: new TrustStore({ orgCaPem: caPem }),
    state,
    log: silentLogger,
    reconnectMinMs: 50,
    reconnectMaxMs: 100,
    tickMs: 50,
  });
  clients.push(c);
  return { client: c, state, states };
}

const meetingReply = (id: unknown, meetingId: string, participantId: string) =>
  JSON.stringify({
    type: 'meeting',
    id,
    meetingId,
    participantId,
    role: 'leader',
    status: 'active',
    leader: liar(participantId),
  });

describe('hostile relay input', () => {
  it('garbage, lying rosters and random E2EE payloads: the client stays up and names only itself', async () => {
    const relay = await new RelayDouble().ready();
    relays.push(relay);
    relay.onRequest = (socket, m) => {
      if (m.type === 'create') socket.send(meetingReply(m.id, 'abcd-efgh-ijkl', 'p-self'));
      else if (m.id !== undefined) socket.send(JSON.stringify({ type: 'ok', id: m.id }));
    };
    const { client: c, state, states } = client(relay);
    await c.start();
    await c.startMeeting();
    const socket = relay.sockets[0]!;
    const hostile: unknown[] = [
      'not json',
      {
        type: 'roster',
        meetingId: 'abcd-efgh-ijkl',
        participants: [liar('p-self'), liar('p-c')],
        waiting: [liar('p-w')],
        locked: false,
      },
      {
        type: 'meeting',
        meetingId: 'abcd-efgh-ijkl',
        participantId: 'p-self',
        role: 'leader',
        status: 'active',
        leader: liar('p-c'),
      },
      { type: 'left', meetingId: 'abcd-efgh-ijkl', participantId: 'p-nobody' },
      { type: 'left', meetingId: 'abcd-efgh-ijkl', participantId: 'p-self' },
      { type: 'e2ee', from: 'p-c', payload: {} },
      { type: 'e2ee', from: 'p-c', payload: { type: 'e2ee.binding', v: 1, from: 'p-c', binding: { x: 1 } } },
      { type: 'e2ee', from: 'p-c', payload: { type: 'e2ee.list', v: 1, from: 'p-c', entries: [null] } },
      { type: 'e2ee', from: 'p-c', payload: { type: 'e2ee.heartbeat', v: 1, epoch: -1 } },
      { type: 'signal', payload: { type: 'offer', sdp: 'v=0' } },
    ];
    for (let i = 0; i < 200; i++) {
      hostile.push({
        type: 'e2ee',
        from: `p-${i % 7}`,
        payload: {
          type: ['e2ee.binding', 'e2ee.key', 'e2ee.list', 'e2ee.ack', 'e2ee.resync'][i % 5],
          v: 1,
          from: `p-${i % 7}`,
          data: randomBytes(i).toString('base64url'),
          epoch: i,
          index: i - 3,
        },
      });
    }
    for (const m of hostile) socket.send(typeof m === 'string' ? m : JSON.stringify(m));
    // A ping round trip: everything before it was handled.
    await new Promise((r) => setTimeout(r, 500));
    expect(c.connected).toBe(true);
    const meeting = state.get().meeting;
    expect(meeting?.status).toBe('active');
    expect(meeting?.roster.map((r) => r.roomName)).toEqual(['Boardroom']);
    expect(meeting?.waiting).toEqual([]);
    expect(meeting?.leader?.roomName).toBe('Boardroom');
    for (const s of states) {
      const names = [
        ...(s.meeting?.roster ?? []).map((r) => r.roomName),
        ...(s.meeting?.waiting ?? []).map((w) => w.roomName),
        s.meeting?.leader?.roomName,
      ];
      expect(names).not.toContain('Room C');
    }
    await expect(c.admit('p-w')).rejects.toThrow(/no verified join request/);
    await c.leaveMeeting();
  });

  it('a resume refused because the id is bound to another device raises an alert', async () => {
    const relay = await new RelayDouble().ready();
    relays.push(relay);
    relay.onRequest = (socket, m, connection) => {
      if (m.type === 'create' && connection === 1)
        socket.send(meetingReply(m.id, 'mnop-qrst-uvwx', 'p-self'));
      else if (m.type === 'create')
        socket.send(
          JSON.stringify({ type: 'error', id: m.id, code: 'id-bound', message: 'bound to another device' }),
        );
      else if (m.id !== undefined) socket.send(JSON.stringify({ type: 'ok', id: m.id }));
    };
    const { client: c, state } = client(relay);
    await c.start();
    await c.startMeeting();
    relay.sockets[0]?.terminate(); // a cut: the client reconnects (a "new relay") and resumes
    await expect
      .poll(() => state.get().alerts.find((a) => a.id === 'resume')?.message, { timeout: 5000 })
      .toMatch(/held by another device/);
    expect(state.get().meeting?.status).toBe('ended');
    expect(c.meetingId).toBeUndefined();
  });
});
