// E2EE meetings end to end over a real relay process (`sealroom relay --record`) on loopback: device
// meeting clients with the synthetic media engine (SFrame-protected frames of known plaintext through
// real werift PeerConnections and the SFU). Everything that crosses the relay is recorded by it and
// searched for plaintext and key material; the relay process is killed and restarted mid-meeting.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { initialState, StateStore } from '../device/daemon/state.js';
import { KNOWN_PLAINTEXT_PREFIX, SyntheticMedia } from '../device/daemon/synthetic-media.js';
import { type KeysEvent, parseKid } from '../src/core/e2ee/index.js';
import { decodeHeader, SFrameReceiver } from '../src/core/sframe/index.js';
import { type CertificateAuthority, TrustStore } from '../src/pki/index.js';
import { loadOrCreateDevelopmentCa } from '../src/relay/dev-ca-store.js';
import { type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { silentLogger } from '../src/util/log.js';

interface Room {
  name: string;
  device: DevelopmentDevice;
  state: StateStore;
  media: SyntheticMedia;
  client: MeetingClient;
}

type Recorded = { kind: 'ws-in' | 'ws-out'; data: string } | { kind: 'rtp'; payload: Buffer };

let ca: CertificateAuthority;
let dir: string;
let relayProcess: ChildProcess | undefined;
let relayUrl = '';
let relayPort = 0;
const rooms: Room[] = [];

/** `sealroom relay` as its own process, recording to a file; the same port on a restart. */
async function startTheRelay(): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/sealroom.ts',
      'relay',
      '--dev-ca',
      join(dir, 'ca'),
      '--port',
      String(relayPort),
      '--record',
      join(dir, 'record.jsonl'),
    ],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn' } },
  );
  relayProcess = child;
  relayUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0] ?? '') as { relay: string }).relay);
    });
    child.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
  relayPort = Number(new URL(relayUrl).port);
}

async function stopTheRelay(signal: NodeJS.Signals): Promise<void> {
  const child = relayProcess;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

function recorded(): Recorded[] {
  const path = join(dir, 'record.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{') && line.endsWith('}'))
    .map((line) => {
      const e = JSON.parse(line) as { kind: string; data?: string; payload?: string };
      return e.kind === 'rtp'
        ? { kind: 'rtp' as const, payload: Buffer.from(e.payload ?? '', 'base64') }
        : { kind: e.kind as 'ws-in' | 'ws-out', data: e.data ?? '' };
    });
}

async function room(name: string): Promise<Room> {
  const device = await issueDevelopmentDevice(ca, { roomName: name });
  const state = new StateStore(initialState('test'));
  const media = new SyntheticMedia({ roomName: name, videoIntervalMs: 50, audioIntervalMs: 40 });
  const client = new MeetingClient({
    relayUrl,
    credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
    // Each room pins the org CA, as enrollment does: every name on its wall is verified against it.
    trust: new TrustStore({ orgCaPem: ca.certPem }),
    state,
    log: silentLogger,
    media,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    resumeGraceMs: 4000,
    tickMs: 250,
  });
  await client.start();
  const r = { name, device, state, media, client };
  rooms.push(r);
  return r;
}

/** Index of the sender in the E2EE list, as the KIDs carry it. */
function senderIndexOf(r: Room): number {
  const last = r.client.keyHistory.at(-1);
  if (!last) throw new Error(`${r.name} has no keys`);
  return parseKid(last.sendKid).senderIndex;
}

function framesFrom(receiver: Room, sender: Room): number {
  const d = receiver.media.decoded.get(senderIndexOf(sender));
  return d ? d.audio + d.video : 0;
}

const waitFor = (f: () => boolean | number, timeout = 15_000) =>
  expect.poll(() => f(), { timeout, interval: 50 }).toBeTruthy();

let a: Room;
let b: Room;
let c: Room;
let d: Room;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealroom-meeting-e2ee-'));
  ca = await loadOrCreateDevelopmentCa(join(dir, 'ca'));
  await startTheRelay();
  a = await room('Boardroom');
  b = await room('Huddle');
  c = await room('Lab');
  d = await room('Lobby');
});

afterAll(async () => {
  for (const r of rooms) {
    await r.client.stop();
    await r.media.close();
  }
  await stopTheRelay('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe('an E2EE meeting through the relay', () => {
  it('two rooms: admitted, same security code on both, media both ways decrypts', async () => {
    const { meetingId } = await a.client.startMeeting();
    await b.client.joinMeeting(meetingId);
    expect(b.state.get().meeting?.status).toBe('waiting');
    await waitFor(() => a.state.get().meeting?.waiting.length === 1);
    const waiting = a.state.get().meeting?.waiting[0];
    expect(waiting).toMatchObject({
      roomName: 'Huddle',
      deviceId: b.device.deviceId,
      org: 'Sealroom Demo Org',
    });
    await a.client.admit(waiting?.participantId ?? '');
    await waitFor(
      () => b.state.get().meeting?.status === 'active' && b.state.get().meeting?.securityCode !== undefined,
    );
    const codeA = a.state.get().meeting?.securityCode;
    expect(codeA).toMatch(/^(\d{5} ){7}\d{5}$/);
    expect(b.state.get().meeting?.securityCode).toBe(codeA);
    await waitFor(() => framesFrom(a, b) > 5 && framesFrom(b, a) > 5);
    // What the screen shows is who holds the key: both rooms, verified names, the leader marked.
    await waitFor(() => b.state.get().meeting?.roster.length === 2);
    expect(
      b.state
        .get()
        .meeting?.roster.map((r) => [r.roomName, r.isLeader])
        .sort(),
    ).toEqual([
      ['Boardroom', true],
      ['Huddle', false],
    ]);
    expect(b.state.get().meeting?.leader?.roomName).toBe('Boardroom');
  });

  it('a third room waits, is admitted and gets media; a denied room gets nothing', async () => {
    const meetingId = a.client.meetingId ?? '';
    await c.client.joinMeeting(meetingId);
    await d.client.joinMeeting(meetingId);
    await waitFor(() => a.state.get().meeting?.waiting.length === 2);
    // Waiting: no keys, no media.
    expect(c.client.keyHistory).toHaveLength(0);
    const byName = (n: string) =>
      a.state.get().meeting?.waiting.find((w) => w.roomName === n)?.participantId ?? '';
    await a.client.deny(byName('Lobby'));
    await a.client.admit(byName('Lab'));
    await waitFor(() => d.state.get().meeting?.status === 'denied');
    await waitFor(
      () => framesFrom(c, a) > 5 && framesFrom(c, b) > 5 && framesFrom(a, c) > 5 && framesFrom(b, c) > 5,
    );
    expect(c.state.get().meeting?.securityCode).toBe(a.state.get().meeting?.securityCode);
    expect(d.client.keyHistory).toHaveLength(0);
    expect(d.media.decoded.size).toBe(0);
    expect(d.state.get().meeting?.securityCode).toBeUndefined();
  });

  it('a room leaves: everyone rekeys, and nothing sent after the leave opens with any key it held', async () => {
    const epochBefore = a.state.get().meeting?.keyEpoch ?? 0;
    const departedKeys: KeysEvent[] = [...c.client.keyHistory];
    await c.client.leaveMeeting();
    const leftAt = recorded().length;
    await waitFor(
      () =>
        (a.state.get().meeting?.keyEpoch ?? 0) > epochBefore &&
        (b.state.get().meeting?.keyEpoch ?? 0) > epochBefore,
    );
    const framesBefore = framesFrom(b, a);
    await waitFor(() => framesFrom(b, a) > framesBefore + 10 && framesFrom(a, b) > 10);
    // Frames recorded at the relay after the new epoch took effect: none opens with the departed keys.
    const newEpoch = a.state.get().meeting?.keyEpoch ?? 0;
    const receiver = new SFrameReceiver({ replayWindow: 1 << 15 });
    for (const k of departedKeys) {
      if (!receiver.hasKey(k.sendKid)) receiver.setKey(k.sendKid, k.sendKey);
      for (const r of k.receiveKeys) if (!receiver.hasKey(r.kid)) receiver.setKey(r.kid, r.key);
    }
    await new Promise((r) => setTimeout(r, 300)); // the relay's record file catches up
    const after = recorded()
      .slice(leftAt)
      .filter((e): e is Extract<Recorded, { kind: 'rtp' }> => e.kind === 'rtp');
    const atNewEpoch = after.filter((e) => parseKid(decodeHeader(e.payload).kid).epoch >= newEpoch);
    expect(atNewEpoch.length).toBeGreaterThan(20);
    let opened = 0;
    for (const e of atNewEpoch) {
      try {
        receiver.decrypt(e.payload);
        opened++;
      } catch {
        // expected: no key for this KID
      }
    }
    expect(opened).toBe(0);
    // The departed room's keys never included the new epoch.
    expect(
      departedKeys.every((k) => k.receiveKeys.every((r) => r.epoch < newEpoch) && k.epoch < newEpoch),
    ).toBe(true);
  });

  it('relay restart mid-meeting: rooms reconnect with the same code, rekey, and media resumes', async () => {
    const code = a.state.get().meeting?.securityCode;
    const epochBefore = a.state.get().meeting?.keyEpoch ?? 0;
    await stopTheRelay('SIGKILL');
    await waitFor(() => !a.state.get().relay.connected && !b.state.get().relay.connected);
    expect(a.state.get().alerts.some((al) => al.id === 'relay')).toBe(true);
    await startTheRelay();
    await waitFor(() => a.state.get().relay.connected && b.state.get().relay.connected);
    await waitFor(
      () =>
        (b.state.get().meeting?.keyEpoch ?? 0) > epochBefore && b.state.get().meeting?.status === 'active',
      20_000,
    );
    const fromA = framesFrom(b, a);
    const fromB = framesFrom(a, b);
    await waitFor(() => framesFrom(b, a) > fromA + 10 && framesFrom(a, b) > fromB + 10, 20_000);
    expect(a.state.get().meeting?.securityCode).toBe(code);
    expect(b.state.get().meeting?.securityCode).toBe(code);
    expect(a.state.get().alerts.some((al) => al.id === 'relay')).toBe(false);
  });

  it('the leader leaves: the other room takes over with a new code and a prompt to re-check it, and admits newcomers', async () => {
    const oldCode = b.state.get().meeting?.securityCode;
    await a.client.leaveMeeting();
    await waitFor(
      () => b.state.get().meeting?.role === 'leader' && b.state.get().meeting?.securityCode !== oldCode,
    );
    expect(b.state.get().meeting?.status).toBe('active');
    expect(b.state.get().meeting?.leaderChanged).toBe(true);
    expect(b.state.get().meeting?.leader?.roomName).toBe('Huddle');
    // The meeting goes on under its new leader: the lobby asks again and is admitted this time.
    await d.client.joinMeeting(b.client.meetingId ?? '');
    await waitFor(() => b.state.get().meeting?.waiting.length === 1);
    await b.client.admit(b.state.get().meeting?.waiting[0]?.participantId ?? '');
    await waitFor(() => framesFrom(d, b) > 5 && framesFrom(b, d) > 5);
    expect(d.state.get().meeting?.securityCode).toBe(b.state.get().meeting?.securityCode);
    await b.client.acknowledgeLeaderChange();
    expect(b.state.get().meeting?.leaderChanged).toBe(false);
  });

  it('nothing that crossed the relay contains a known plaintext or any key material', () => {
    const all = recorded();
    expect(all.filter((e) => e.kind === 'rtp').length).toBeGreaterThan(100);
    expect(all.filter((e) => e.kind === 'ws-in').length).toBeGreaterThan(20);
    const haystacks = all.map((e) => (e.kind === 'rtp' ? e.payload : Buffer.from(e.data)));
    const needles: { what: string; bytes: Buffer[] }[] = [
      { what: 'known plaintext', bytes: [Buffer.from(KNOWN_PLAINTEXT_PREFIX)] },
    ];
    const encodings = (raw: Uint8Array) => {
      const b = Buffer.from(raw);
      if (b.every((x) => x === 0)) throw new Error('an all-zero key was handed out');
      return [
        b,
        Buffer.from(b.toString('base64')),
        Buffer.from(b.toString('base64url')),
        Buffer.from(b.toString('hex')),
      ];
    };
    for (const r of rooms) {
      for (const k of r.client.keyHistory) {
        needles.push({ what: `${r.name} send key`, bytes: encodings(k.sendKey) });
        for (const rk of k.receiveKeys)
          needles.push({ what: `${r.name} receive key`, bytes: encodings(rk.key) });
      }
      const pkcs8 = r.device.identityKey.export({ format: 'der', type: 'pkcs8' });
      needles.push({
        what: `${r.name} identity private key`,
        bytes: encodings(pkcs8.subarray(pkcs8.length - 32)),
      });
    }
    expect(needles.length).toBeGreaterThan(20);
    for (const needle of needles)
      for (const bytes of needle.bytes)
        for (const hay of haystacks)
          if (hay.includes(bytes))
            throw new Error(`${needle.what} crossed the relay: (${bytes.toString().slice(0, 16)}…)`);
  });
});
