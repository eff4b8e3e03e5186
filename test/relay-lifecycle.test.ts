// The relay's admission and bulletin board over real WebSockets on loopback, with certificates from
// a development org CA: who may enter, when, and what reaches whom.
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { IdentityKeyPair, LeaderSession, ParticipantSession } from '../src/core/e2ee/index.js';
import type { ServerMessage } from '../src/core/protocol/relay.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { RelayConnection, RelayRequestError } from '../device/daemon/relay-connection.js';

let relay: Relay;
let rooms: Record<'a' | 'b' | 'c' | 'revoked' | 'foreign', DevelopmentDevice>;
const revokedSerials = new Set<string>();
const open: RelayConnection[] = [];

async function connect(device: DevelopmentDevice): Promise<RelayConnection> {
  const c = await RelayConnection.connect(relay.url, {
    certificatePem: device.certificatePem,
    identityKey: device.identityKey,
  });
  open.push(c);
  return c;
}

function next<T extends ServerMessage['type']>(
  c: RelayConnection,
  type: T,
  match: (m: Extract<ServerMessage, { type: T }>) => boolean = () => true,
) {
  return new Promise<Extract<ServerMessage, { type: T }>>((resolve) => {
    const on = (m: ServerMessage) => {
      if (m.type === type && match(m as Extract<ServerMessage, { type: T }>)) {
        c.off('message', on);
        resolve(m as Extract<ServerMessage, { type: T }>);
      }
    };
    c.on('message', on);
  });
}

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  const otherCa = await createDevelopmentCa('Another Org');
  rooms = {
    a: await issueDevelopmentDevice(ca, { roomName: 'Boardroom' }),
    b: await issueDevelopmentDevice(ca, { roomName: 'Huddle 2' }),
    c: await issueDevelopmentDevice(ca, { roomName: 'Lab' }),
    revoked: await issueDevelopmentDevice(ca, { roomName: 'Stolen' }),
    foreign: await issueDevelopmentDevice(otherCa, { roomName: 'Elsewhere', org: 'Another Org' }),
  };
  revokedSerials.add(rooms.revoked.serial);
  relay = await startRelay({
    log: silentLogger,
    trust: { caPems: [ca.certPem], isRevoked: (s) => revokedSerials.has(s) },
  });
});

afterAll(async () => {
  for (const c of open) c.terminate();
  await relay?.close();
});

describe('relay authentication', () => {
  it('accepts a device certificate from the trusted CA with a matching challenge signature', async () => {
    const c = await connect(rooms.a);
    expect(c.identity).toEqual({
      kind: 'room',
      deviceId: rooms.a.deviceId,
      roomName: 'Boardroom',
      org: 'Sealroom Demo Org',
      email: '',
    });
    c.close();
  });

  it('refuses a certificate of another org CA', async () => {
    await expect(connect(rooms.foreign)).rejects.toMatchObject({ code: 'certificate-bad-chain' });
  });

  it('refuses a revoked certificate', async () => {
    await expect(connect(rooms.revoked)).rejects.toMatchObject({ code: 'certificate-revoked' });
  });

  it('refuses a valid certificate presented without its private key', async () => {
    const stranger = generateKeyPairSync('ed25519').privateKey;
    await expect(
      RelayConnection.connect(relay.url, { certificatePem: rooms.a.certificatePem, identityKey: stranger }),
    ).rejects.toMatchObject({
      code: 'bad-signature',
    });
  });

  it('answers anything but auth before authentication with an error and closes', async () => {
    const ws = new WebSocket(relay.url);
    const messages: ServerMessage[] = [];
    ws.on('message', (raw: Buffer) => messages.push(JSON.parse(raw.toString())));
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'create', id: 1 }));
    const code = await new Promise<number>((r) => ws.on('close', (c) => r(c)));
    expect(code).toBe(4401);
    expect(messages.map((m) => m.type)).toEqual(['challenge', 'error']);
  });

  it('rejects malformed frames with a clear error', async () => {
    const ws = new WebSocket(relay.url);
    const errors: string[] = [];
    ws.on('message', (raw: Buffer) => {
      const m = JSON.parse(raw.toString()) as ServerMessage;
      if (m.type === 'error') errors.push(m.message);
    });
    await new Promise((r) => ws.on('open', r));
    ws.send('{not json');
    ws.send(JSON.stringify({ type: 'join', meetingId: 'UPPER CASE!' }));
    ws.send(JSON.stringify({ type: 'auth', certificate: 'x', signature: 'y', admin: true }));
    await expect.poll(() => errors.length).toBe(3);
    expect(errors[0]).toBe('not JSON');
    expect(errors[1]).toMatch(/invalid join message at \/meetingId/);
    expect(errors[2]).toMatch(/invalid auth message at \/admin: Unexpected property/);
    ws.terminate();
  });

  it('refuses a frame over the pre-auth limit (1009), and an oversized E2EE payload after auth', async () => {
    const ws = new WebSocket(relay.url);
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'e2ee', payload: { blob: 'x'.repeat(1_030_000) } }));
    expect(await new Promise<number>((r) => ws.on('close', (c) => r(c)))).toBe(1009);

    const c = await connect(rooms.b);
    const errors: string[] = [];
    c.on('message', (m) => {
      if (m.type === 'error') errors.push(m.message);
    });
    c.send({ type: 'e2ee', payload: { blob: 'x'.repeat(1_030_000) } });
    await expect.poll(() => errors.length).toBe(1);
    expect(errors[0]).toMatch(/e2ee payload of \d+ bytes exceeds/);
    c.close();
  });
});

describe('meeting lifecycle', () => {
  it('nobody enters before the leader; joiners wait; admitted and denied as the leader decides', async () => {
    const [leader, joiner, other] = [await connect(rooms.a), await connect(rooms.b), await connect(rooms.c)];
    await expect(joiner.request({ type: 'join', meetingId: 'abcd-efgh-jkmn' })).rejects.toMatchObject({
      code: 'no-meeting',
    });

    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('expected a meeting');
    expect(created).toMatchObject({ role: 'leader', status: 'active' });
    const meetingId = created.meetingId;

    const waitingRoster = next(leader, 'roster', (m) => m.waiting.length === 1);
    const joined = await joiner.request({ type: 'join', meetingId });
    expect(joined).toMatchObject({
      type: 'meeting',
      status: 'waiting',
      role: 'participant',
      leader: { deviceId: rooms.a.deviceId },
    });
    const roster = await waitingRoster;
    expect(roster.waiting).toEqual([
      {
        participantId: joined.type === 'meeting' ? joined.participantId : '',
        deviceId: rooms.b.deviceId,
        roomName: 'Huddle 2',
        org: 'Sealroom Demo Org',
        certificate: rooms.b.certificatePem,
        kind: 'room',
        email: '',
      },
    ]);
    expect(roster.sharing).toBeNull();

    // A waiting participant may post its signed binding to the leader, and nothing else.
    const joinerId = roster.waiting[0]?.participantId ?? '';
    const joinerSession = new ParticipantSession({
      meetingId,
      participantId: joinerId,
      identity: IdentityKeyPair.fromKeyObject(rooms.b.identityKey),
    });
    const bindingAtLeader = next(leader, 'e2ee');
    joiner.send({ type: 'e2ee', payload: joinerSession.bindingMessage() });
    expect(await bindingAtLeader).toMatchObject({
      from: joinerId,
      payload: { type: 'e2ee.binding', from: joinerId },
    });
    const leaderSession = LeaderSession.create({
      meetingId,
      participantId: created.participantId,
      identity: IdentityKeyPair.fromKeyObject(rooms.a.identityKey),
    });
    const heartbeat = leaderSession.output.outgoing.find((m) => m.type === 'e2ee.heartbeat');
    if (!heartbeat) throw new Error('the leader session starts with a heartbeat');
    const notAdmitted = next(joiner, 'error');
    joiner.send({ type: 'e2ee', payload: { ...heartbeat, from: joinerId } });
    expect((await notAdmitted).code).toBe('not-admitted');
    // Forged sender, or not an E2EE message at all: refused.
    const forged = next(leader, 'error');
    leader.send({ type: 'e2ee', payload: { ...heartbeat, from: joinerId } });
    expect((await forged).code).toBe('bad-e2ee');
    const junk = next(leader, 'error');
    leader.send({ type: 'e2ee', payload: { kind: 'wrapped-key', blob: 'AAAA' } });
    expect((await junk).code).toBe('bad-e2ee');

    // Only the leader admits.
    const otherJoin = await other.request({ type: 'join', meetingId });
    const otherId = otherJoin.type === 'meeting' ? otherJoin.participantId : '';
    await expect(other.request({ type: 'admit', participantId: joinerId })).rejects.toMatchObject({
      code: 'not-leader',
    });

    const activeNotice = next(joiner, 'meeting', (m) => m.status === 'active');
    await leader.request({ type: 'admit', participantId: joinerId });
    expect(await activeNotice).toMatchObject({ meetingId, participantId: joinerId });

    const deniedNotice = next(other, 'denied');
    await leader.request({ type: 'deny', participantId: otherId });
    expect(await deniedNotice).toEqual({ type: 'denied', meetingId });

    // Bulletin board: a broadcast reaches the admitted others unchanged; a directed one reaches one.
    const atJoiner = next(joiner, 'e2ee');
    leader.send({ type: 'e2ee', payload: heartbeat });
    expect(await atJoiner).toEqual({ type: 'e2ee', from: created.participantId, payload: heartbeat });
    const atLeader = next(leader, 'e2ee');
    joiner.send({
      type: 'e2ee',
      to: created.participantId,
      payload: {
        type: 'e2ee.ack',
        v: heartbeat.v,
        meetingId,
        from: joinerId,
        to: created.participantId,
        epoch: 1,
      },
    });
    expect((await atLeader).from).toBe(joinerId);

    // Locked: nobody new.
    await leader.request({ type: 'lock', locked: true });
    await expect(other.request({ type: 'join', meetingId })).rejects.toMatchObject({ code: 'locked' });
    await leader.request({ type: 'lock', locked: false });

    // Leave: the others hear it; the leader leaving ends the meeting for everyone.
    const leftNotice = next(leader, 'left');
    await joiner.request({ type: 'leave' });
    expect((await leftNotice).participantId).toBe(joinerId);
    const rejoin = await joiner.request({ type: 'join', meetingId });
    expect(rejoin).toMatchObject({ status: 'waiting' });
    const ended = next(joiner, 'ended');
    leader.close();
    expect((await ended).meetingId).toBe(meetingId);
    await expect(joiner.request({ type: 'join', meetingId })).rejects.toMatchObject({ code: 'no-meeting' });
    joiner.close();
    other.close();
  });

  it('lets a leader reclaim its meeting id after a relay restart, but never take an existing one', async () => {
    const leader = await connect(rooms.a);
    const intruder = await connect(rooms.b);
    await leader.request({ type: 'create', meetingId: 'room-abcd-0001' });
    await expect(intruder.request({ type: 'create', meetingId: 'room-abcd-0001' })).rejects.toBeInstanceOf(
      RelayRequestError,
    );
    leader.close();
    intruder.close();
  });

  it('the leader ends the meeting: everyone is told, and the id is free again', async () => {
    const leader = await connect(rooms.a);
    const member = await connect(rooms.b);
    const created = await leader.request({ type: 'create', meetingId: 'room-abcd-0002' });
    const joined = await member.request({ type: 'join', meetingId: 'room-abcd-0002' });
    if (created.type !== 'meeting' || joined.type !== 'meeting') throw new Error('expected meetings');
    await expect(member.request({ type: 'end' })).rejects.toMatchObject({ code: 'not-leader' });
    await leader.request({ type: 'admit', participantId: joined.participantId });
    const ended = next(member, 'ended');
    await leader.request({ type: 'end' });
    expect(await ended).toMatchObject({
      meetingId: 'room-abcd-0002',
      reason: 'the leader ended the meeting',
    });
    expect(relay.registry.meetingCount()).toBe(0);
    await member.request({ type: 'create', meetingId: 'room-abcd-0002' });
    leader.close();
    member.close();
  });
});

describe('leadership handover', () => {
  it('the leader hands over to an admitted participant, who then leads; others cannot', async () => {
    const leader = await connect(rooms.a);
    const member = await connect(rooms.b);
    await leader.request({ type: 'create', meetingId: 'room-abcd-0003' });
    const joined = await member.request({ type: 'join', meetingId: 'room-abcd-0003' });
    if (joined.type !== 'meeting') throw new Error('expected a meeting');
    await expect(
      leader.request({ type: 'handover', participantId: joined.participantId }),
    ).rejects.toMatchObject({ code: 'not-admitted' });
    await leader.request({ type: 'admit', participantId: joined.participantId });
    await expect(
      member.request({ type: 'handover', participantId: joined.participantId }),
    ).rejects.toMatchObject({ code: 'not-leader' });
    const promoted = next(member, 'meeting', (m) => m.role === 'leader');
    await leader.request({ type: 'handover', participantId: joined.participantId });
    expect(await promoted).toMatchObject({
      participantId: joined.participantId,
      leader: { roomName: 'Huddle 2' },
    });
    // The old leader leaving no longer ends the meeting; the new leader can lock it.
    leader.close();
    await expect.poll(() => relay.registry.meetingCount()).toBe(1);
    await member.request({ type: 'lock', locked: true });
    await member.request({ type: 'end' });
    member.close();
  });
});

describe('relay observability', () => {
  it('exposes health and Prometheus metrics without ids or keys', async () => {
    const base = relay.url.replace(/^ws/, 'http').replace(/\/v1\/ws$/, '');
    const health = (await (await fetch(`${base}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ ok: true, meetings: expect.any(Number), connections: expect.any(Number) });
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/sealroom_relay_authentications_total\{result="ok"\} [1-9]/);
    expect(text).toMatch(/sealroom_relay_authentications_total\{result="refused"\} [1-9]/);
    expect(text).toMatch(/sealroom_relay_meetings \d+/);
    expect(text).not.toContain(rooms.a.deviceId);
  });
});
