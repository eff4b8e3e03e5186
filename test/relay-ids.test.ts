// Squatting (issue 9, attack 7): meeting ids and participant ids a device reclaims after a relay
// restart are bound to the device that held them. A real relay, restarted in-process on the same
// port with the same state dir; devices are raw relay connections (the daemon's resume is covered
// end to end by test/hostile-squatting.test.ts).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import {
  deviceTag,
  MeetingReservations,
  newParticipantIdFor,
  participantIdBoundTo,
  RESERVATIONS_FILE,
} from '../src/relay/id-binding.js';
import { MeetingRegistry } from '../src/relay/meetings.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

let caPem: string;
let rooms: Record<'leader' | 'member' | 'squatter', DevelopmentDevice>;
let dir: string;
let relay: Relay | undefined;
const open: RelayConnection[] = [];

async function start(port = 0, reservationTtlMs?: number): Promise<Relay> {
  relay = await startRelay({
    log: silentLogger,
    trust: { caPems: [caPem] },
    port,
    stateDir: dir,
    ...(reservationTtlMs ? { reservationTtlMs } : {}),
  });
  return relay;
}

/** The relay process dies and comes back on the same port: every connection is gone. */
async function restart(reservationTtlMs?: number): Promise<Relay> {
  const port = relay?.port ?? 0;
  await relay?.close();
  return start(port, reservationTtlMs);
}

async function connect(device: DevelopmentDevice): Promise<RelayConnection> {
  const c = await RelayConnection.connect(relay?.url ?? '', {
    certificatePem: device.certificatePem,
    identityKey: device.identityKey,
  });
  open.push(c);
  return c;
}

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  caPem = ca.certPem;
  rooms = {
    leader: await issueDevelopmentDevice(ca, { roomName: 'Boardroom' }),
    member: await issueDevelopmentDevice(ca, { roomName: 'Huddle' }),
    squatter: await issueDevelopmentDevice(ca, { roomName: 'Squat' }),
  };
});

afterEach(async () => {
  for (const c of open.splice(0)) c.terminate();
  await relay?.close();
  relay = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await relay?.close();
});

const fresh = () => {
  dir = mkdtempSync(join(tmpdir(), 'sealroom-relay-ids-'));
};

describe('participant ids are bound to their device', () => {
  it('embed a tag of the device id that only that device can reclaim', () => {
    const id = newParticipantIdFor(rooms.member.deviceId);
    expect(id).toMatch(/^p-[0-9a-f]{16}-[0-9a-f]{12}$/);
    expect(id.slice(2, 18)).toBe(deviceTag(rooms.member.deviceId));
    expect(participantIdBoundTo(id, rooms.member.deviceId)).toBe(true);
    expect(participantIdBoundTo(id, rooms.squatter.deviceId)).toBe(false);
    expect(participantIdBoundTo('p-self', rooms.member.deviceId)).toBe(false);
    expect(participantIdBoundTo(`${id}0`, rooms.member.deviceId)).toBe(false);
  });

  it('after a restart an absent member’s participant id is refused to another device (id-bound), and its own device gets it back', async () => {
    fresh();
    await start();
    const leader = await connect(rooms.leader);
    const member = await connect(rooms.member);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('expected a meeting');
    const joined = await member.request({ type: 'join', meetingId: created.meetingId });
    if (joined.type !== 'meeting') throw new Error('expected a meeting');
    expect(participantIdBoundTo(joined.participantId, rooms.member.deviceId)).toBe(true);
    expect(participantIdBoundTo(created.participantId, rooms.leader.deviceId)).toBe(true);

    await restart();
    const leader2 = await connect(rooms.leader);
    await leader2.request({
      type: 'create',
      meetingId: created.meetingId,
      participantId: created.participantId,
    });
    const squatter = await connect(rooms.squatter);
    await expect(
      squatter.request({ type: 'join', meetingId: created.meetingId, participantId: joined.participantId }),
    ).rejects.toMatchObject({ code: 'id-bound' });
    // Not even the leader's id, nor an id it made up in the relay's format.
    await expect(
      squatter.request({ type: 'join', meetingId: created.meetingId, participantId: created.participantId }),
    ).rejects.toMatchObject({ code: 'id-bound' });
    await expect(
      squatter.request({ type: 'create', participantId: 'p-0000000000000000-000000000000' }),
    ).rejects.toMatchObject({ code: 'id-bound' });
    const member2 = await connect(rooms.member);
    const back = await member2.request({
      type: 'join',
      meetingId: created.meetingId,
      participantId: joined.participantId,
    });
    expect(back).toMatchObject({ participantId: joined.participantId, status: 'waiting' });
  });
});

describe('meeting ids are bound to their leader device across a restart', () => {
  it('a squatter cannot create a live meeting’s id after the relay restarts; the leader resumes it', async () => {
    fresh();
    await start();
    const leader = await connect(rooms.leader);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('expected a meeting');
    // On disk before the reply: a crash right after the create still binds the id.
    const file = JSON.parse(readFileSync(join(dir, RESERVATIONS_FILE), 'utf8'));
    expect(file.reservations).toEqual([
      { meetingId: created.meetingId, deviceId: rooms.leader.deviceId, expiresAt: expect.any(Number) },
    ]);

    await restart();
    const squatter = await connect(rooms.squatter);
    await expect(squatter.request({ type: 'create', meetingId: created.meetingId })).rejects.toMatchObject({
      code: 'id-bound',
    });
    const leader2 = await connect(rooms.leader);
    await expect(
      leader2.request({ type: 'create', meetingId: created.meetingId, participantId: created.participantId }),
    ).resolves.toMatchObject({ meetingId: created.meetingId, role: 'leader' });
    // Atomic writes: no temporary file is left behind.
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('never hands out a bound id as a fresh meeting id', () => {
    const reservations = new MeetingReservations();
    reservations.bind('aaaa-aaaa-aaaa', rooms.leader.deviceId);
    reservations.orphan('aaaa-aaaa-aaaa');
    const ids = ['aaaa-aaaa-aaaa', 'bbbb-bbbb-bbbb'];
    const registry = new MeetingRegistry({ reservations, newMeetingId: () => ids.shift() ?? 'x' });
    const identity = {
      kind: 'room' as const,
      deviceId: rooms.squatter.deviceId,
      roomName: 'Squat',
      org: 'O',
      email: '',
      certificate: '',
    };
    const result = registry.create('c-1', identity, 1);
    expect(result.outgoing[0]?.message).toMatchObject({ type: 'meeting', meetingId: 'bbbb-bbbb-bbbb' });
    expect(() => registry.create('c-2', identity, 2, 'aaaa-aaaa-aaaa')).toThrow(
      expect.objectContaining({ code: 'id-bound' }),
    );
  });

  it('a hand-over binds the id to the new leader; ending the meeting frees it', async () => {
    fresh();
    await start();
    const leader = await connect(rooms.leader);
    const member = await connect(rooms.member);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('expected a meeting');
    const joined = await member.request({ type: 'join', meetingId: created.meetingId });
    if (joined.type !== 'meeting') throw new Error('expected a meeting');
    await leader.request({ type: 'admit', participantId: joined.participantId });
    await leader.request({ type: 'handover', participantId: joined.participantId });
    await leader.request({ type: 'leave' });

    await restart();
    const oldLeader = await connect(rooms.leader);
    await expect(oldLeader.request({ type: 'create', meetingId: created.meetingId })).rejects.toMatchObject({
      code: 'id-bound',
    });
    const newLeader = await connect(rooms.member);
    await newLeader.request({
      type: 'create',
      meetingId: created.meetingId,
      participantId: joined.participantId,
    });
    await newLeader.request({ type: 'end' });
    await expect(oldLeader.request({ type: 'create', meetingId: created.meetingId })).resolves.toMatchObject({
      meetingId: created.meetingId,
    });
  });

  it('a binding expires a ttl after the meeting was last seen alive', async () => {
    fresh();
    await start(0, 1500);
    const leader = await connect(rooms.leader);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('expected a meeting');
    await restart(1500);
    const squatter = await connect(rooms.squatter);
    await expect(squatter.request({ type: 'create', meetingId: created.meetingId })).rejects.toMatchObject({
      code: 'id-bound',
    });
    await new Promise((r) => setTimeout(r, 1600));
    await expect(squatter.request({ type: 'create', meetingId: created.meetingId })).resolves.toMatchObject({
      meetingId: created.meetingId,
    });
  });

  it('keeps a leader’s id bound when its connection drops at a running relay, frees it on a deliberate leave', async () => {
    fresh();
    await start();
    const leader = await connect(rooms.leader);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('expected a meeting');
    leader.terminate();
    await expect.poll(() => relay?.registry.meetingCount()).toBe(0);
    const squatter = await connect(rooms.squatter);
    await expect(squatter.request({ type: 'create', meetingId: created.meetingId })).rejects.toMatchObject({
      code: 'id-bound',
    });
    const leader2 = await connect(rooms.leader);
    await leader2.request({ type: 'create', meetingId: created.meetingId });
    await leader2.request({ type: 'leave' });
    await expect(squatter.request({ type: 'create', meetingId: created.meetingId })).resolves.toMatchObject({
      meetingId: created.meetingId,
    });
  });

  it('refuses to start on a corrupt binding file rather than forget every binding', async () => {
    fresh();
    writeFileSync(join(dir, RESERVATIONS_FILE), '{"version":1,"reservations":[{"meetingId":"x"}]}');
    expect(() => new MeetingReservations({ stateDir: dir })).toThrow(/malformed reservation/);
    writeFileSync(join(dir, RESERVATIONS_FILE), 'garbage');
    await expect(start()).rejects.toThrow(/not JSON/);
    expect(existsSync(join(dir, RESERVATIONS_FILE))).toBe(true);
  });
});
