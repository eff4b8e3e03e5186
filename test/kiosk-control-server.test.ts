// The local control API over real HTTP on 127.0.0.1: state, the event stream, every action route
// reaching RoomActions, readable errors, and the loopback/cross-origin guards.
import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DeviceState, initialState, StateStore } from '../device/daemon/state.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import { silentLogger } from '../src/util/log.js';
import { RoomDouble } from './kiosk-room-double.js';

let store: StateStore;
let room: RoomDouble;
let server: ControlServer;

beforeEach(async () => {
  store = new StateStore(initialState('0.1.0-test'));
  store.update((s) => {
    s.phase = 'idle';
    s.device.roomName = 'Boardroom';
  });
  room = new RoomDouble(store);
  server = await createControlServer({ state: store, actions: room, log: silentLogger });
});

afterEach(async () => {
  await server.close();
});

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(server.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** Reads server-sent `state` events until `count` have arrived. */
async function readEvents(count: number, after: () => void): Promise<DeviceState[]> {
  const controller = new AbortController();
  const res = await fetch(`${server.url}/api/events`, { signal: controller.signal });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const states: DeviceState[] = [];
  let buffer = '';
  let triggered = false;
  while (states.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end !== -1) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').find((l) => l.startsWith('data: '));
      const id = event.split('\n').find((l) => l.startsWith('id: '));
      if (data) {
        const state = JSON.parse(data.slice(6)) as DeviceState;
        expect(id).toBe(`id: ${state.revision}`);
        states.push(state);
      }
      end = buffer.indexOf('\n\n');
    }
    if (!triggered && states.length > 0) {
      triggered = true;
      after();
    }
  }
  controller.abort();
  return states;
}

describe('control server', () => {
  it('listens on loopback only and refuses other hosts', async () => {
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    await expect(
      createControlServer({ state: store, actions: room, log: silentLogger, host: '0.0.0.0' }),
    ).rejects.toThrow(/loopback only/);
  });

  it('serves the state and the kiosk page', async () => {
    const res = await fetch(`${server.url}/api/state`);
    expect(res.status).toBe(200);
    const state = (await res.json()) as DeviceState;
    expect(state.phase).toBe('idle');
    expect(state.device.roomName).toBe('Boardroom');
    expect(state.revision).toBe(store.get().revision);
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('kiosk.js');
  });

  it('pushes the full state with its revision on every change', async () => {
    const states = await readEvents(3, () => {
      store.update((s) => {
        s.media.volume = 35;
      });
      store.update((s) => {
        s.relay.connected = true;
      });
    });
    expect(states.map((s) => s.revision)).toEqual([1, 2, 3]);
    expect(states[1]!.media.volume).toBe(35);
    expect(states[2]!.relay.connected).toBe(true);
  });

  it('routes every action to RoomActions', async () => {
    const start = await post('/api/meeting/start', {});
    expect(start.status).toBe(200);
    const { meetingId } = (await start.json()) as { meetingId: string };
    expect(store.get().meeting?.meetingId).toBe(meetingId);
    room.requestToJoin({ participantId: 'p2', deviceId: 'd2', roomName: 'Huddle', org: 'Partner' });
    room.requestToJoin({ participantId: 'p3', deviceId: 'd3', roomName: 'Lab', org: 'Partner' });
    expect((await post('/api/meeting/admit', { participantId: 'p2' })).status).toBe(200);
    expect((await post('/api/meeting/deny', { participantId: 'p3' })).status).toBe(200);
    expect((await post('/api/meeting/lock', { locked: true })).status).toBe(200);
    expect((await post('/api/media/mute', { muted: true })).status).toBe(200);
    expect((await post('/api/media/camera', { off: true })).status).toBe(200);
    expect((await post('/api/media/volume', { volume: 80 })).status).toBe(200);
    expect((await post('/api/meeting/ack-leader', {})).status).toBe(200);
    expect((await post('/api/meeting/leave', {})).status).toBe(200);
    expect((await post('/api/meeting/join', { meetingId: '123456789' })).status).toBe(200);
    expect(room.calls).toEqual([
      { action: 'startMeeting', args: [] },
      { action: 'admit', args: ['p2'] },
      { action: 'deny', args: ['p3'] },
      { action: 'lockMeeting', args: [true] },
      { action: 'setMicMuted', args: [true] },
      { action: 'setCameraOff', args: [true] },
      { action: 'setVolume', args: [80] },
      { action: 'acknowledgeLeaderChange', args: [] },
      { action: 'leaveMeeting', args: [] },
      { action: 'joinMeeting', args: ['123456789'] },
    ]);
    expect(store.get().meeting?.status).toBe('waiting');
  });

  it('answers invalid input with a 400 and a readable message, without calling RoomActions', async () => {
    for (const [path, body] of [
      ['/api/media/volume', { volume: 101 }],
      ['/api/media/volume', { volume: 'loud' }],
      ['/api/media/mute', {}],
      ['/api/meeting/join', { meetingId: "1; DROP TABLE'" }],
      ['/api/meeting/join', { meetingId: '1'.repeat(65) }],
      ['/api/meeting/admit', { participantId: 'p', extra: 1 }],
    ] as const) {
      const res = await post(path, body);
      expect(res.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      const payload = (await res.json()) as { error: string };
      expect(Object.keys(payload)).toEqual(['error']);
      expect(payload.error).toMatch(/^invalid request: body/);
    }
    expect(room.calls).toEqual([]);
  });

  it('turns a refused action into a 409 with the action’s message', async () => {
    const res = await post('/api/meeting/leave', {});
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({ error: 'This room is not in a meeting.' });
    room.failNext = 'The relay refused: meeting is locked';
    const join = await post('/api/meeting/join', { meetingId: '42' });
    expect(join.status).toBe(409);
    expect(await join.json()).toEqual({ error: 'The relay refused: meeting is locked' });
  });

  it('answers unknown routes with a 404 JSON error', async () => {
    const res = await fetch(`${server.url}/api/nothing`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/no such endpoint/);
  });

  it('refuses non-JSON posts, foreign origins and rebinding host names', async () => {
    const form = await fetch(`${server.url}/api/meeting/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
    const foreign = await post('/api/meeting/start', {}, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: string }).error).toMatch(/other origins/);
    const sameOrigin = await post('/api/media/mute', { muted: true }, { origin: server.url });
    expect(sameOrigin.status).toBe(200);
    // fetch() will not let us forge Host; a raw request can, as a DNS-rebinding page would.
    const rebinding = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${server.url}/api/state`);
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          headers: { host: `evil.example:${url.port}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(rebinding).toBe(403);
    expect(room.calls).toEqual([{ action: 'setMicMuted', args: [true] }]);
  });

  it('serves the claim QR code as SVG while a claim is pending', async () => {
    expect((await fetch(`${server.url}/api/enrollment/qr.svg`)).status).toBe(404);
    store.update((s) => {
      s.phase = 'enrolling';
      s.enrollment = {
        status: 'awaiting-claim',
        activationCode: 'K7PX-M3QD',
        claimUrl: 'http://127.0.0.1:9/claim',
      };
    });
    const res = await fetch(`${server.url}/api/enrollment/qr.svg`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('image/svg+xml');
    const svg = await res.text();
    expect(svg).toMatch(/^<svg[^>]*viewBox="0 0 \d+ \d+"/);
    expect(svg).toContain('<path');
  });

  it('closes while event streams are open', async () => {
    const res = await fetch(`${server.url}/api/events`);
    const reader = res.body!.getReader();
    await reader.read();
    await server.close();
    // The stream ends instead of hanging the close.
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    await expect(fetch(`${server.url}/api/state`)).rejects.toThrow();
  });
});
