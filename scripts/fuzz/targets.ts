// The fuzz targets: every parser that faces the network or a device. Each `run` catches the
// parser's own typed refusals and lets anything else escape (a finding), and checks a few
// invariants on what the parser accepted.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import {
  DescriptorError,
  MAX_REPORT_BYTES,
  parseReportDescriptor,
  readBits,
  reportByteLength,
  writeBits,
} from '../../device/hid/report-descriptor.js';
import { parseHexDescriptor } from '../../device/hid/descriptor-files.js';
import {
  decodeInputReport,
  encodeLedReports,
  type InputLevels,
  roomControlLayout,
} from '../../device/hid/room-controls.js';
import { FrameAssembler } from '../../device/media/frame-assembler.js';
import { H264FormatError, splitProtectedNal } from '../../device/media/h264-protect.js';
import { MediaKeyState, type WireKeys } from '../../device/media/key-state.js';
import {
  depacketizeH264,
  depacketizeVp8,
  packetizeH264,
  packetizeVp8,
} from '../../device/media/rtp-payload.js';
import {
  openAuthenticated,
  openH264Authenticated,
  sealAuthenticated,
  sealH264Authenticated,
} from '../../device/media/sender-auth.js';
import { Vp8FormatError } from '../../device/media/vp8-protect.js';
import { splitAnnexB } from '../../device/media/bitstream.js';
import { E2eeError } from '../../src/core/e2ee/errors.js';
import {
  type E2eeMessage,
  type RandomSource,
  type SessionOutput,
  SimulatedMeeting,
} from '../../src/core/e2ee/index.js';
import {
  bindingFromWire,
  heartbeatFromWire,
  listEntryFromWire,
  parseE2eeMessage,
} from '../../src/core/e2ee/messages.js';
import { FrameAuthError } from '../../src/core/frame-auth/index.js';
import { parseClientMessage, parseServerMessage } from '../../src/core/protocol/relay.js';
import { SFrameError } from '../../src/core/sframe/errors.js';
import {
  decodeHeader,
  MAX_UINT64,
  SFrameReceiver,
  SFrameSender,
  SUPPORTED_SUITES,
  plausibleCounter,
} from '../../src/core/sframe/index.js';
import {
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  PkiError,
} from '../../src/pki/index.js';
import { parseAndVerifyCsr } from '../../src/pki/issue.js';
import type { FuzzTarget } from './engine.js';

const enc = (s: string) => new Uint8Array(Buffer.from(s));
const json = (v: unknown) => enc(JSON.stringify(v));
const projectOrEval = (url: string) =>
  url === '' ||
  (url.startsWith('file://') &&
    !url.includes('/node_modules/') &&
    !url.includes('/scripts/fuzz/') &&
    /\/(src|device|provisioning)\//.test(url));
const ROOT = new URL('../../', import.meta.url).pathname;

function seededRandom(seed: string): RandomSource {
  let counter = 0;
  return (length: number) => {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 32) {
      const block = require_sha256(`${seed}/${counter++}`);
      out.set(block.subarray(0, Math.min(32, length - offset)), offset);
    }
    return out;
  };
}
const require_sha256 = (s: string) => createHash('sha256').update(s).digest();

// ---- SFrame ----

function sframeReceiver(): SFrameReceiver {
  const receiver = new SFrameReceiver({ maxFrameBytes: 4096, plausibleCounter });
  for (let kid = 0n; kid < 5n; kid++)
    receiver.setKey(kid, new Uint8Array(16).fill(Number(kid)), SUPPORTED_SUITES[Number(kid)]!);
  receiver.setKey(MAX_UINT64, new Uint8Array(16));
  return receiver;
}

export const sframeTarget: FuzzTarget = {
  name: 'sframe',
  description:
    'SFrame header decoding and decryption (src/core/sframe): byte 0 picks decodeHeader or decrypt and the metadata length',
  maxLen: 4200,
  seeds() {
    const out: Uint8Array[] = [];
    for (const kid of [0n, 1n, 2n, 3n, 4n, MAX_UINT64]) {
      const sender = new SFrameSender({
        kid,
        baseKey: new Uint8Array(16).fill(kid === MAX_UINT64 ? 0 : Number(kid)),
        suite: kid === MAX_UINT64 ? SUPPORTED_SUITES[0]! : SUPPORTED_SUITES[Number(kid)]!,
        ...(kid === 2n ? { initialCounter: 2n ** 40n } : {}),
      });
      for (const len of [0, 1, 33])
        out.push(Uint8Array.from([1, ...sender.encrypt(new Uint8Array(len).fill(7))]));
    }
    out.push(
      Uint8Array.of(0, 0x08, 1),
      Uint8Array.of(0, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
    );
    return out;
  },
  run(data) {
    if (data.length === 0) return;
    const mode = data[0]!;
    const rest = data.subarray(1);
    try {
      if ((mode & 1) === 0) {
        const h = decodeHeader(rest);
        if (h.headerLength > rest.length || h.headerLength < 1)
          throw new Error(`header length ${h.headerLength} of ${rest.length}`);
        return;
      }
      const mdLen = (mode >> 1) & 7;
      const md = mdLen ? rest.subarray(0, mdLen) : undefined;
      const frame = mdLen ? rest.subarray(mdLen) : rest;
      const out = sframeReceiver().decrypt(frame, md);
      if (out.plaintext.length > frame.length) throw new Error('plaintext longer than the frame');
    } catch (err) {
      if (!(err instanceof SFrameError)) throw err;
    }
  },
};

// ---- RTP depacketisers, frame assembly, authenticated open ----

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const MEDIA_KEY = new Uint8Array(32).fill(3);
const MEDIA_PAIR = new Uint8Array(32).fill(5);
const mkid = (s: number) => (1n << 16n) | BigInt(s);
const wireKeys = (self: number): WireKeys => ({
  epoch: 1,
  sendKid: mkid(self).toString(),
  sendKey: b64(MEDIA_KEY),
  receiveKeys: [1, 2].map((m) => ({ kid: mkid(m).toString(), key: b64(MEDIA_KEY) })),
  sending: true,
  auth: [1, 2]
    .filter((m) => m !== self)
    .map((m) => ({ peerIndex: m, send: b64(MEDIA_PAIR), receive: b64(MEDIA_PAIR) })),
});
const mediaState = (self: number) => {
  const s = new MediaKeyState(
    new SFrameReceiver({ replayWindow: 256, plausibleCounter }),
    (kid, baseKey, initialCounter) => new SFrameSender({ kid, baseKey, initialCounter }),
  );
  s.set(wireKeys(self));
  return s;
};

/** Input: [codec][packets: flags, tsDelta, lenHi, lenLo, payload…]. flags: bit0 marker, bits1-4 seq step - 8 … */
function encodeRtp(
  codec: number,
  packets: { seqStep: number; tsDelta: number; marker: boolean; payload: Uint8Array }[],
): Uint8Array {
  const parts: number[] = [codec];
  for (const p of packets) {
    parts.push(
      (p.marker ? 1 : 0) | (((p.seqStep + 8) & 15) << 1),
      p.tsDelta,
      p.payload.length >> 8,
      p.payload.length & 0xff,
      ...p.payload,
    );
  }
  return Uint8Array.from(parts);
}

const MEDIA_ERRORS = [SFrameError, FrameAuthError, H264FormatError, Vp8FormatError];
const isMediaError = (err: unknown) => MEDIA_ERRORS.some((E) => err instanceof E);

export const rtpTarget: FuzzTarget = {
  name: 'rtp',
  description:
    'RTP packets → FrameAssembler → VP8/H.264 depacketisers → authenticated SFrame open (device/media), as engine.ts receives them',
  maxLen: 8192,
  seeds() {
    const tx = mediaState(2).sendKeys()!;
    const out: Uint8Array[] = [];
    // VP8: a keyframe-like and a delta-like frame, 1 and 3 packets.
    for (const [size, first] of [
      [40, 0x10],
      [3000, 0x31],
    ] as const) {
      const frame = Uint8Array.from([first, ...randomBytesDet(size)]);
      const wire = sealAuthenticated('vp8', tx.sender, tx.auth, frame);
      const pkts = packetizeVp8(wire, 7, 1200);
      out.push(
        encodeRtp(
          0,
          pkts.map((payload, i) => ({
            seqStep: 1,
            tsDelta: i === 0 ? 30 : 0,
            marker: i === pkts.length - 1,
            payload,
          })),
        ),
      );
    }
    // H.264: SPS, PPS, IDR slice (one big, FU-A), then a P slice.
    const au = Uint8Array.from([
      0,
      0,
      0,
      1,
      0x67,
      0x42,
      0xc0,
      0x1e,
      0xda,
      0x02,
      0x80,
      0xbf,
      0xe5,
      0x84,
      0,
      0,
      0,
      1,
      0x68,
      0xce,
      0x3c,
      0x80,
      0,
      0,
      0,
      1,
      0x65,
      0x88,
      0x84,
      ...randomBytesDet(1500),
    ]);
    const units = sealH264Authenticated(tx.sender, tx.auth, au);
    const pkts = packetizeH264(units, 1200);
    out.push(
      encodeRtp(
        1,
        pkts.map((payload, i) => ({
          seqStep: 1,
          tsDelta: i === 0 ? 30 : 0,
          marker: i === pkts.length - 1,
          payload,
        })),
      ),
    );
    // STAP-A with two small NAL units.
    out.push(
      encodeRtp(1, [
        {
          seqStep: 1,
          tsDelta: 0,
          marker: true,
          payload: Uint8Array.of(24, 0, 2, 0x09, 0x10, 0, 3, 0x41, 1, 2),
        },
      ]),
    );
    // Opus: one packet.
    out.push(
      encodeRtp(2, [
        {
          seqStep: 1,
          tsDelta: 20,
          marker: true,
          payload: sealAuthenticated('opus', tx.sender, tx.auth, randomBytesDet(60)),
        },
      ]),
    );
    // Reordered and lost packets.
    out.push(
      encodeRtp(0, [
        { seqStep: 2, tsDelta: 10, marker: true, payload: Uint8Array.of(0x90, 0x80, 0x80, 1, 9) },
        { seqStep: -1, tsDelta: 0, marker: false, payload: Uint8Array.of(0x90, 0x80, 0x80, 1, 9) },
        { seqStep: 5, tsDelta: 10, marker: true, payload: Uint8Array.of(0x80, 9) },
      ]),
    );
    return out;
  },
  run(data) {
    if (data.length === 0) return;
    const codec = data[0]! % 3;
    const rx = mediaState(1);
    const assembler = new FrameAssembler({ maxBufferedPackets: 64 });
    let seq = 65530;
    let ts = 0xfffffff0;
    const open = (payloads: Uint8Array[]) => {
      try {
        if (codec === 1) {
          const units = depacketizeH264(payloads);
          if (!units) return;
          for (const u of units)
            if (u.length === 0) throw new Error('depacketizeH264 gave an empty NAL unit');
          try {
            const { frame } = openH264Authenticated(rx.receiver, rx.verifier, units);
            splitAnnexB(frame);
          } catch (err) {
            if (!isMediaError(err)) throw err;
          }
          for (const u of units.slice(0, 4)) {
            try {
              splitProtectedNal(u);
            } catch (err) {
              if (!isMediaError(err)) throw err;
            }
          }
        } else {
          const sealed = codec === 0 ? depacketizeVp8(payloads) : payloads[0];
          if (!sealed) return;
          try {
            openAuthenticated(codec === 0 ? 'vp8' : 'opus', rx.receiver, rx.verifier, sealed);
          } catch (err) {
            if (!isMediaError(err)) throw err;
          }
        }
      } catch (err) {
        if (!isMediaError(err)) throw err;
      }
    };
    let at = 1;
    while (at + 4 <= data.length) {
      const flags = data[at]!;
      const tsDelta = data[at + 1]!;
      const len = Math.min((data[at + 2]! << 8) | data[at + 3]!, data.length - at - 4);
      const payload = data.subarray(at + 4, at + 4 + len);
      at += 4 + len;
      seq = (seq + ((flags >> 1) & 15) - 8 + 0x10000) & 0xffff;
      ts = (ts + tsDelta * 90) >>> 0;
      const frames = assembler.push({
        sequenceNumber: seq,
        timestamp: ts,
        marker: (flags & 1) === 1,
        payload,
      });
      if (assembler.bufferedPackets > 65)
        throw new Error(`assembler holds ${assembler.bufferedPackets} packets (max 64)`);
      for (const f of frames) {
        if (f.payloads.length === 0) throw new Error('assembled an empty frame');
        open(f.payloads);
      }
    }
  },
};

function randomBytesDet(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 131 + 17) & 0xff;
  return out;
}

// ---- relay client messages ----

const CERT_STUB = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
export const relayTarget: FuzzTarget = {
  name: 'relay',
  description:
    'relay frames (parseClientMessage / parseServerMessage in src/core/protocol/relay.ts): JSON + TypeBox schemas + size limits',
  maxLen: 16 * 1024,
  json: true,
  dictionary: [
    'type',
    'auth',
    'create',
    'join',
    'admit',
    'deny',
    'lock',
    'handover',
    'leave',
    'end',
    'e2ee',
    'signal',
    'media',
    'ping',
    'id',
    'meetingId',
    'participantId',
    'payload',
    'to',
    'certificate',
    'signature',
    'kind',
    'description',
    'candidate',
    'sdp',
    'sdpMid',
    'sdpMLineIndex',
    '__proto__',
    'constructor',
  ],
  coverUrl: projectOrEval,
  seeds: () => [
    json({ type: 'auth', certificate: CERT_STUB, signature: 'AAAA' }),
    json({ type: 'create', id: 1 }),
    json({ type: 'create', id: 2, meetingId: 'abcd-1234', participantId: 'p-1' }),
    json({ type: 'join', id: 3, meetingId: 'abcd-1234' }),
    json({ type: 'admit', id: 4, participantId: 'p-2' }),
    json({ type: 'deny', participantId: 'p-2' }),
    json({ type: 'lock', locked: true }),
    json({ type: 'handover', participantId: 'p-2' }),
    json({ type: 'leave' }),
    json({ type: 'end', id: 9 }),
    json({
      type: 'e2ee',
      to: 'p-2',
      payload: { v: 1, type: 'e2ee.ack', meetingId: 'abcd-1234', from: 'p-1', epoch: 1 },
    }),
    json({ type: 'signal', payload: { kind: 'description', type: 'answer', sdp: 'v=0\r\n' } }),
    json({
      type: 'signal',
      payload: {
        kind: 'candidate',
        candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host',
        sdpMid: '0',
        sdpMLineIndex: 0,
      },
    }),
    json({ type: 'ping' }),
  ],
  run(data) {
    const text = Buffer.from(data).toString('utf8');
    for (const raw of [text, Buffer.from(data)]) {
      const r = parseClientMessage(raw);
      if (r.ok) {
        if (typeof r.message !== 'object' || r.message === null) throw new Error('accepted a non-object');
        // Every accepted message round-trips and is accepted again.
        if (!parseClientMessage(JSON.stringify(r.message)).ok)
          throw new Error('accepted message not accepted after a round trip');
      } else if (typeof r.error !== 'string') throw new Error('error without a message');
    }
    const s = parseServerMessage(text);
    if (!s.ok && typeof s.error !== 'string') throw new Error('error without a message');
  },
};

// ---- E2EE messages and sessions ----

let meeting: { m: SimulatedMeeting; runs: number; now: { t: number } } | undefined;
let meetingWire: string[] = [];
function liveMeeting(): { m: SimulatedMeeting; runs: number; now: { t: number } } {
  if (meeting && meeting.runs < 300) return meeting;
  const now = { t: 1_800_000_000_000 };
  const m = new SimulatedMeeting({
    meetingId: 'fuzz-meeting',
    leaderId: 'leader',
    random: seededRandom(`fuzz-${Math.floor(Math.random() * 1e9)}`),
    clock: () => now.t,
    autoAdmit: true,
  });
  for (const id of ['room-a', 'room-b', 'room-c']) m.join(id);
  m.lock();
  m.unlock();
  m.leave('room-c');
  m.rekey();
  now.t += 10_000;
  m.tick();
  meetingWire = [...m.wire];
  meeting = { m, runs: 0, now };
  return meeting;
}

export const e2eeTarget: FuzzTarget = {
  name: 'e2ee',
  description:
    'E2EE messages (parseE2eeMessage, wire conversions) delivered to a live leader and participants (src/core/e2ee sessions)',
  maxLen: 32 * 1024,
  json: true,
  hangMs: 5000,
  dictionary: [
    'e2ee.binding',
    'e2ee.list',
    'e2ee.key',
    'e2ee.heartbeat',
    'e2ee.ack',
    'e2ee.resync',
    'leader',
    'room-a',
    'room-b',
    'room-c',
    'stranger',
    'fuzz-meeting',
    'epoch',
    'from',
    'to',
    'meetingId',
    'fromIndex',
    'listLength',
    'time',
  ],
  coverUrl: projectOrEval,
  seeds() {
    liveMeeting();
    return meetingWire.map(enc);
  },
  run(data) {
    const text = Buffer.from(data).toString('utf8');
    let message: E2eeMessage;
    try {
      message = parseE2eeMessage(text);
    } catch (err) {
      if (err instanceof E2eeError) return;
      throw err;
    }
    // Wire → internal conversions refuse with E2eeError only.
    const conv = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof E2eeError)) throw err;
      }
    };
    const msg = message as Record<string, any>;
    if (msg.type === 'e2ee.binding') conv(() => bindingFromWire(msg.binding, msg.meetingId));
    if (msg.type === 'e2ee.list')
      for (const e of msg.entries ?? []) conv(() => listEntryFromWire(e, msg.meetingId));
    if (msg.type === 'e2ee.heartbeat') conv(() => heartbeatFromWire(msg as never));
    const live = liveMeeting();
    live.runs++;
    const sessions = [live.m.leader, ...live.m.participants.values()];
    const session = sessions[data.length % sessions.length]!;
    const out: SessionOutput = session.handle(structuredClone(message));
    for (const e of out.events)
      if (e.type === 'rejected' && e.code === 'internal')
        throw new Error(`internal error in handle: ${JSON.stringify(e).slice(0, 200)}`);
  },
};

// ---- provisioning request bodies (fastify inject) ----

interface ProvisioningRig {
  app: FastifyInstance;
  dataDir: string;
  adminToken: string;
  device: { deviceId: string; privateKey: import('node:crypto').KeyObject };
  close(): Promise<void>;
}
let rig: ProvisioningRig | undefined;
let lastServiceError = '';

async function provisioningRig(): Promise<ProvisioningRig> {
  if (rig) return rig;
  const { buildService } = await import('../../provisioning/service/app.js');
  const { openStore } = await import('../../provisioning/store/open.js');
  const { generateAdminToken, hashAdminToken } = await import('../../provisioning/tokens.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-fuzz-prov-'));
  const store = await openStore({ dataDir });
  const ca = await createCertificateAuthority({ commonName: 'Fuzz CA', org: 'Fuzz', validityDays: 30 });
  // Errors the service logs (the cause behind a 500) are kept for the finding's message.
  const logger = pino(
    { level: 'error' },
    {
      write(line: string) {
        lastServiceError = line.slice(0, 600);
      },
    },
  );
  const app = await buildService({
    store,
    ca,
    org: 'Fuzz',
    publicUrl: 'https://prov.example',
    logger,
    rateLimits: { enrollmentsPerMinute: 1e9, claimsPerMinute: 1e9 },
  });
  await app.ready();
  const adminToken = generateAdminToken();
  await (store as any).createToken({
    id: 'fuzzadmin',
    name: 'fuzz',
    tokenHash: hashAdminToken(adminToken),
    scope: 'admin',
    actor: 'system',
    now: new Date().toISOString(),
  });
  // One enrolled, claimed device for the signed device routes.
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const csr = await createCsr(key, { deviceId });
  const enrolled = await app.inject({
    method: 'POST',
    url: '/v1/enrollments',
    payload: { csr, softwareVersion: '1.0.0', inventory: {} },
  });
  const code = JSON.parse(enrolled.body).activationCode;
  await app.inject({
    method: 'POST',
    url: '/v1/claims',
    headers: { authorization: `Bearer ${adminToken}` },
    payload: { activationCode: code, roomName: 'Fuzz room', site: 'Lab' },
  });
  rig = {
    app,
    dataDir,
    adminToken,
    device: { deviceId, privateKey: key.privateKey },
    async close() {
      await app.close();
      await store.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
      rig = undefined;
    },
  };
  return rig;
}

let provisioningSeedCsr: string | undefined;
const ROUTES = ['enroll', 'claim', 'config', 'token', 'decommission', 'heartbeat', 'renewal'] as const;

export const provisioningTarget: FuzzTarget = {
  name: 'provisioning',
  description:
    'provisioning request bodies through fastify inject (provisioning/service schemas + handlers): enrollments, claims, config, tokens, device-signed heartbeats and renewals',
  maxLen: 16 * 1024,
  json: true,
  hangMs: 10_000,
  dictionary: [
    'csr',
    'softwareVersion',
    'inventory',
    'activationCode',
    'roomName',
    'site',
    'policy',
    'config',
    'name',
    'scope',
    'admin',
    'read',
    'reason',
    'configVersion',
    'health',
    'loadPercent',
    'temperatureC',
    'memory',
    'usedBytes',
    'totalBytes',
    'peripherals',
    'present',
    'missing',
    'macs',
    'cores',
    '__proto__',
    'constructor',
    'expiresAt',
    'route',
  ],
  coverUrl: projectOrEval,
  async setup() {
    await provisioningRig();
  },
  async teardown() {
    await rig?.close();
  },
  async seeds() {
    const key = generateIdentityKey();
    provisioningSeedCsr ??= await createCsr(key, { deviceId: deviceIdForPublicKey(key.publicKey) });
    return [
      json({
        route: 'enroll',
        body: {
          csr: provisioningSeedCsr,
          softwareVersion: '1.0.0',
          inventory: { model: 'x', macs: ['00:11:22:33:44:55'], cores: 4 },
        },
      }),
      json({
        route: 'claim',
        body: { activationCode: 'ABCD-EFGH', roomName: 'R', site: 'S', config: { volume: 3 } },
      }),
      json({ route: 'config', body: { config: { volume: 40, partnerCas: [] } } }),
      json({ route: 'token', body: { name: 'viewer', scope: 'read' } }),
      json({ route: 'decommission', body: { reason: 'stolen' } }),
      json({
        route: 'heartbeat',
        body: {
          softwareVersion: '1.0.1',
          configVersion: 0,
          health: { loadPercent: 1, temperatureC: null, peripherals: { present: ['cam'], missing: [] } },
        },
      }),
      json({ route: 'renewal', body: { csr: provisioningSeedCsr } }),
    ];
  },
  async run(data) {
    const r = await provisioningRig();
    let route = 'enroll';
    let body = Buffer.from(data).toString('utf8');
    try {
      const doc = JSON.parse(body);
      if (doc && typeof doc === 'object' && typeof doc.route === 'string' && 'body' in doc) {
        route = doc.route;
        body = JSON.stringify(doc.body) ?? '';
      }
    } catch {}
    if (!ROUTES.includes(route as never)) route = ROUTES[data.length % ROUTES.length]!;
    const admin = { authorization: `Bearer ${r.adminToken}`, 'content-type': 'application/json' };
    const dev = r.device.deviceId;
    const spec: Record<string, { method: 'POST' | 'PUT'; url: string; headers: Record<string, string> }> = {
      enroll: { method: 'POST', url: '/v1/enrollments', headers: { 'content-type': 'application/json' } },
      claim: { method: 'POST', url: '/v1/claims', headers: admin },
      config: { method: 'PUT', url: `/v1/devices/${dev}/config`, headers: admin },
      token: { method: 'POST', url: '/v1/tokens', headers: admin },
      decommission: { method: 'POST', url: '/v1/devices/not-a-device-0000/decommission', headers: admin },
      heartbeat: { method: 'POST', url: `/v1/devices/${dev}/heartbeat`, headers: {} },
      renewal: { method: 'POST', url: `/v1/devices/${dev}/certificate/renewal`, headers: {} },
    };
    const s = spec[route]!;
    let headers = s.headers;
    if (route === 'heartbeat' || route === 'renewal') {
      const { signDeviceRequest } = await import('../../provisioning/device-auth.js');
      headers = {
        'content-type': 'application/json',
        ...signDeviceRequest({
          privateKey: r.device.privateKey,
          deviceId: dev,
          method: s.method,
          path: s.url,
          body,
          now: Date.now(),
        }),
      };
    }
    lastServiceError = '';
    const res = await r.app.inject({ method: s.method, url: s.url, headers, payload: body });
    if (res.statusCode >= 500)
      throw new Error(
        `HTTP ${res.statusCode} on ${route}: ${res.body.slice(0, 200)} — logged: ${lastServiceError}`,
      );
    if (res.body.length && !/^[[{]/.test(res.body))
      throw new Error(`non-JSON reply on ${route}: ${res.body.slice(0, 80)}`);
  },
};

// ---- CSRs ----

let csrSeeds: Uint8Array[] | undefined;
function pemOf(der: Uint8Array): string {
  const b = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b}\n-----END CERTIFICATE REQUEST-----\n`;
}

export const csrTarget: FuzzTarget = {
  name: 'csr',
  description:
    'PKCS#10 CSRs (parseAndVerifyCsr in src/pki/issue.ts, @peculiar/x509 + asn1js underneath): byte 0 even = DER wrapped as PEM, odd = the bytes as PEM text',
  maxLen: 4096,
  coverUrl: (url) => projectOrEval(url) || /node_modules\/(@peculiar|asn1js|pvtsutils)/.test(url),
  async seeds() {
    if (!csrSeeds) {
      csrSeeds = [];
      for (let i = 0; i < 2; i++) {
        const key = generateIdentityKey();
        const pem = await createCsr(key, { deviceId: deviceIdForPublicKey(key.publicKey) });
        const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
        csrSeeds.push(Uint8Array.from([0, ...der]), Uint8Array.from([1, ...Buffer.from(pem)]));
      }
    }
    return csrSeeds;
  },
  async run(data) {
    if (data.length === 0) return;
    const text =
      (data[0]! & 1) === 0 ? pemOf(data.subarray(1)) : Buffer.from(data.subarray(1)).toString('latin1');
    try {
      const csr = await parseAndVerifyCsr(text);
      if (!csr.publicKey) throw new Error('accepted without a key');
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
    }
  },
};

// ---- HID report descriptors ----

export const hidTarget: FuzzTarget = {
  name: 'hid',
  description:
    'HID report descriptors from a device (parseReportDescriptor, report sizes, bit fields in device/hid/report-descriptor.ts), then the room-control layout, input reports and LED reports (room-controls.ts)',
  maxLen: 4096,
  dictionary: [
    '\x05\x01',
    '\x05\x0c',
    '\x09\x01',
    '\xa1\x01',
    '\xc0',
    '\x85\x01',
    '\x75\x08',
    '\x95\x10',
    '\x81\x02',
    '\x91\x02',
    '\xb1\x02',
    '\x15\x00',
    '\x26\xff\x00',
    '\x19\x01',
    '\x29\x05',
    '\x0a\x20\x00',
    '\xa4',
    '\xb4',
    '\x75\x20',
    '\x95\xff',
  ].map((s) => Buffer.from(s, 'latin1').toString('latin1')),
  seeds() {
    const dir = join(ROOT, 'device', 'hid', 'descriptors');
    const out = readdirSync(dir)
      .filter((f) => f.endsWith('.rdesc'))
      .map((f) => parseHexDescriptor(readFileSync(join(dir, f), 'utf8')));
    // A small keyboard-like descriptor with report ids.
    out.push(
      Uint8Array.from([
        0x05, 0x0c, 0x09, 0x01, 0xa1, 0x01, 0x85, 0x01, 0x15, 0x00, 0x25, 0x01, 0x75, 0x01, 0x95, 0x08, 0x09,
        0xe9, 0x09, 0xea, 0x81, 0x02, 0x85, 0x02, 0x75, 0x08, 0x95, 0x02, 0x91, 0x02, 0xc0,
      ]),
    );
    return out;
  },
  run(data) {
    let parsed: ReturnType<typeof parseReportDescriptor>;
    try {
      parsed = parseReportDescriptor(data);
    } catch (err) {
      if (err instanceof DescriptorError) return;
      throw err;
    }
    for (const [key, bits] of parsed.reportBits) {
      if (!Number.isSafeInteger(bits) || bits < 0) throw new Error(`report ${key} has ${bits} bits`);
    }
    for (const f of parsed.fields.slice(0, 64)) {
      const bytes = reportByteLength(parsed, f.kind, f.reportId);
      if (bytes > 1 << 16) throw new Error(`report of ${bytes} bytes accepted`);
      const payload = new Uint8Array(bytes).fill(0xa5);
      const v = readBits(payload, f.bitOffset, Math.min(f.bitSize, 32));
      writeBits(payload, f.bitOffset, Math.min(f.bitSize, 32), v);
    }
    // What the room controller does with it: the layout, input reports from the device (here the
    // input's own tail, all ones and all zeros), LED output reports.
    const layout = roomControlLayout(parsed);
    let levels: InputLevels = {};
    for (const report of [
      data.subarray(Math.max(0, data.length - 9)),
      new Uint8Array(9).fill(0xff),
      new Uint8Array(9),
    ]) {
      levels = decodeInputReport(layout, report, levels).levels;
    }
    for (const leds of [
      { muted: true, offHook: true, ring: true },
      { muted: false, offHook: false },
    ]) {
      for (const r of encodeLedReports(layout, leds))
        if (r.length > MAX_REPORT_BYTES + 1) throw new Error(`LED report of ${r.length} bytes`);
    }
  },
};

export const TARGETS: FuzzTarget[] = [
  sframeTarget,
  rtpTarget,
  relayTarget,
  e2eeTarget,
  provisioningTarget,
  csrTarget,
  hidTarget,
];

/** Random bytes helper kept for ad-hoc seeds. */
export const freshBytes = (n: number) => new Uint8Array(randomBytes(n));
