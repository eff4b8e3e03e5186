// People at the relay (issue 12): a person authenticates with a short-lived person certificate from
// the org CA exactly like a room, and joins as kind 'person' — but never creates or takes over a
// meeting, never takes a room's participant id, and is cut when its certificate expires or is
// revoked. A browser's WebSocket must come from an allowed Origin; devices send none.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RelayConnection, RelayRequestError } from '../device/daemon/relay-connection.js';
import type { ServerMessage } from '../src/core/protocol/relay.js';
import type { CertificateAuthority } from '../src/pki/index.js';
import { issuePersonCertificate, type PersonClaims } from '../src/pki/person.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { normalizeOrigin, type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

const HOUR = 3600_000;
const ORG = 'Sealroom Demo Org';
const JOIN_ORIGIN = 'https://provisioning.example:8443';
const alice: PersonClaims = { name: 'Alice Smith', email: 'alice@example.org', org: ORG };

interface Person {
  certificatePem: string;
  identityKey: KeyObject;
  serial: string;
}

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let relay: Relay;
let room: DevelopmentDevice;
let room2: DevelopmentDevice;
/** The relay's clock runs this far ahead of the real one (certificate expiry while connected). */
let clockOffsetMs = 0;
const revoked = new Set<string>();
const open: RelayConnection[] = [];

async function person(
  claims: PersonClaims = alice,
  opts: { ca?: CertificateAuthority; validityMs?: number; now?: Date } = {},
): Promise<Person> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicKeyRaw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
  const issued = await issuePersonCertificate({
    ca: opts.ca ?? ca,
    publicKeyRaw,
    person: claims,
    ...(opts.validityMs !== undefined ? { validityMs: opts.validityMs } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  return { certificatePem: issued.certPem, identityKey: privateKey, serial: issued.serial };
}

async function connect(who: { certificatePem: string; identityKey: KeyObject }, url = relay.url) {
  const c = await RelayConnection.connect(url, who);
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

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RelayRequestError) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** A room leads a meeting; `who` joins and is admitted. */
async function meetingWith(who: RelayConnection) {
  const leader = await connect(room);
  const created = await leader.request({ type: 'create' });
  if (created.type !== 'meeting') throw new Error('no meeting');
  const joined = await who.request({ type: 'join', meetingId: created.meetingId });
  if (joined.type !== 'meeting') throw new Error('no join');
  await leader.request({ type: 'admit', participantId: joined.participantId });
  return { leader, meetingId: created.meetingId, leaderId: created.participantId, id: joined.participantId };
}

beforeAll(async () => {
  ca = await createDevelopmentCa(ORG);
  otherCa = await createDevelopmentCa('Another Org');
  room = await issueDevelopmentDevice(ca, { roomName: 'Boardroom' });
  room2 = await issueDevelopmentDevice(ca, { roomName: 'Huddle' });
  relay = await startRelay({
    log: silentLogger,
    trust: {
      caPems: [ca.certPem],
      isRevoked: (s) => revoked.has(s),
      now: () => new Date(Date.now() + clockOffsetMs),
    },
    allowedOrigins: [JOIN_ORIGIN],
    sessionCheckIntervalMs: 100,
  });
});

afterAll(async () => {
  for (const c of open) c.terminate();
  await relay?.close();
});

describe('person authentication', () => {
  it('accepts a person certificate from the org CA: kind person, id person:<email>, name and email', async () => {
    const c = await connect(await person());
    expect(c.identity).toEqual({
      kind: 'person',
      deviceId: 'person:alice@example.org',
      roomName: 'Alice Smith',
      org: ORG,
      email: 'alice@example.org',
    });
    c.close();
  });

  it('refuses a person certificate of another CA, an expired one, a revoked one, and one without its key', async () => {
    expect(await refusal(connect(await person({ ...alice, org: 'Another Org' }, { ca: otherCa })))).toBe(
      'certificate-bad-chain',
    );
    const expired = await person(alice, { validityMs: HOUR, now: new Date(Date.now() - 3 * HOUR) });
    expect(await refusal(connect(expired))).toBe('certificate-expired');
    const stolen = await person();
    revoked.add(stolen.serial);
    expect(await refusal(connect(stolen))).toBe('certificate-revoked');
    const victim = await person();
    const thief = generateKeyPairSync('ed25519').privateKey;
    expect(await refusal(connect({ certificatePem: victim.certificatePem, identityKey: thief }))).toBe(
      'bad-signature',
    );
    // Every refusal was counted; the relay still serves rooms.
    const rc = await connect(room);
    expect(rc.identity?.kind).toBe('room');
  });

  it('ends a person session when its certificate expires while connected (4403), and the meeting goes on', async () => {
    const p = await connect(await person(alice, { validityMs: HOUR }));
    const { leader, id } = await meetingWith(p);
    const closed = new Promise<number>((r) => p.on('close', (code) => r(code)));
    const error = next(p, 'error');
    const left = next(leader, 'left', (m) => m.participantId === id);
    clockOffsetMs = 2 * HOUR;
    try {
      expect(await closed).toBe(4403);
      expect((await error).code).toBe('certificate-expired');
      await left;
    } finally {
      clockOffsetMs = 0;
    }
    expect(leader.open).toBe(true);
  });
});

describe('people never lead', () => {
  it('a person cannot create a meeting (rooms-only)', async () => {
    const p = await connect(await person());
    const meetings = relay.registry.meetingCount();
    expect(await refusal(p.request({ type: 'create' }))).toBe('rooms-only');
    expect(await refusal(p.request({ type: 'create', meetingId: 'aaaa-bbbb-cccc' }))).toBe('rooms-only');
    expect(relay.registry.meetingCount()).toBe(meetings);
    // Nor may it reclaim a meeting id (the reservation stays free for rooms).
    expect(relay.registry.reservations.holder('aaaa-bbbb-cccc')).toBeUndefined();
  });

  it('joins, is admitted by the room, shows as a person in the roster; a hand-over to it is refused', async () => {
    const p = await connect(await person());
    const leader = await connect(room);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('no meeting');
    const waiting = next(leader, 'roster', (m) => m.waiting.length === 1);
    const joined = await p.request({ type: 'join', meetingId: created.meetingId });
    expect(joined).toMatchObject({ type: 'meeting', status: 'waiting', leader: { kind: 'room' } });
    const roster = await waiting;
    expect(roster.waiting[0]).toMatchObject({
      kind: 'person',
      deviceId: 'person:alice@example.org',
      roomName: 'Alice Smith',
      email: 'alice@example.org',
      org: ORG,
    });
    const personId = roster.waiting[0]?.participantId ?? '';
    const active = next(p, 'roster', (m) => m.participants.length === 2);
    await leader.request({ type: 'admit', participantId: personId });
    const seen = await active;
    expect(seen.sharing).toBeNull();
    expect(seen.participants.map((x) => [x.kind, x.email])).toEqual([
      ['room', ''],
      ['person', 'alice@example.org'],
    ]);
    expect(await refusal(leader.request({ type: 'handover', participantId: personId }))).toBe('rooms-only');
    // Still the leader: the room's lock works, the person's does not.
    await leader.request({ type: 'lock', locked: false });
    expect(await refusal(p.request({ type: 'lock', locked: true }))).toBe('not-leader');
    // A room may still take over.
    const r2 = await connect(room2);
    const j2 = await r2.request({ type: 'join', meetingId: created.meetingId });
    if (j2.type !== 'meeting') throw new Error('no join');
    await leader.request({ type: 'admit', participantId: j2.participantId });
    const promoted = next(r2, 'meeting', (m) => m.role === 'leader');
    await leader.request({ type: 'handover', participantId: j2.participantId });
    await promoted;
  });
});

describe('participant ids', () => {
  it("a person cannot take a room's participant id, nor a room a person's", async () => {
    const leader = await connect(room);
    const created = await leader.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('no meeting');
    const r2 = await connect(room2);
    const roomJoin = await r2.request({ type: 'join', meetingId: created.meetingId });
    if (roomJoin.type !== 'meeting') throw new Error('no join');
    await r2.request({ type: 'leave' });
    const p = await connect(await person());
    expect(
      await refusal(
        p.request({ type: 'join', meetingId: created.meetingId, participantId: roomJoin.participantId }),
      ),
    ).toBe('id-bound');
    expect(
      await refusal(
        p.request({ type: 'join', meetingId: created.meetingId, participantId: created.participantId }),
      ),
    ).toBe('id-bound');
    const personJoin = await p.request({ type: 'join', meetingId: created.meetingId });
    if (personJoin.type !== 'meeting') throw new Error('no join');
    await p.request({ type: 'leave' });
    // Nor can a room claim the person's id.
    expect(
      await refusal(
        r2.request({ type: 'join', meetingId: created.meetingId, participantId: personJoin.participantId }),
      ),
    ).toBe('id-bound');
    // The same person (a new key, a new certificate: a reload) resumes its own id.
    const again = await connect(await person());
    const resumed = await again.request({
      type: 'join',
      meetingId: created.meetingId,
      participantId: personJoin.participantId,
    });
    expect(resumed).toMatchObject({ type: 'meeting', participantId: personJoin.participantId });
  });
});

describe('WebSocket Origin', () => {
  /** Opens a raw WebSocket with an Origin header: the HTTP status of a refusal, or the first message. */
  function tryOrigin(origin: string | undefined): Promise<{ status?: number; first?: ServerMessage }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(relay.url, origin === undefined ? {} : { origin });
      ws.on('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode ?? 0 });
        ws.terminate();
      });
      ws.on('message', (raw: Buffer) => {
        resolve({ first: JSON.parse(raw.toString()) as ServerMessage });
        ws.terminate();
      });
      ws.on('error', (err) => reject(err));
    });
  }

  async function refusalsForOrigin(): Promise<number> {
    const text = await (await fetch(relay.url.replace(/^ws/, 'http').replace('/v1/ws', '/metrics'))).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('sealroom_relay_refusals_total{reason="bad-origin"}'));
    return Number(line?.split(' ')[1] ?? 0);
  }

  it('refuses a page from another origin before any message (HTTP 403); serves the allowed one and devices', async () => {
    const before = await refusalsForOrigin();
    for (const bad of [
      'https://evil.example',
      'null',
      'https://provisioning.example:8444',
      'http://provisioning.example:8443',
    ]) {
      const r = await tryOrigin(bad);
      expect(r.status, bad).toBe(403);
      expect(r.first).toBeUndefined();
    }
    expect(await refusalsForOrigin()).toBe(before + 4);
    expect((await tryOrigin(JOIN_ORIGIN)).first?.type).toBe('challenge');
    expect((await tryOrigin(undefined)).first?.type).toBe('challenge');
  });

  it('a relay without allowed origins refuses every browser; entries must be bare origins', async () => {
    const closed = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] } });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(closed.url, { origin: JOIN_ORIGIN });
        ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        ws.on('open', () => reject(new Error('opened')));
        ws.on('error', reject);
      });
      expect(status).toBe(403);
      // A device (no Origin) is served as before.
      const c = await connect(room, closed.url);
      expect(c.identity?.kind).toBe('room');
    } finally {
      await closed.close();
    }
    expect(normalizeOrigin('https://Provisioning.Example:8443')).toBe('https://provisioning.example:8443');
    expect(normalizeOrigin('https://provisioning.example:443/')).toBe('https://provisioning.example');
    for (const bad of ['provisioning.example', 'https://x.example/join/', 'ftp://x.example', '*'])
      expect(() => normalizeOrigin(bad), bad).toThrow();
  });
});
