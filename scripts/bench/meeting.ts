// npm run bench:meeting — meetings through a real relay on loopback.
// join_to_first_frame_ms: a room asks to join a running meeting (the leader admits it as soon as the
//   request shows up) → its first decrypted frame from the leader. Synthetic media engine (SFrame
//   frames through real werift PeerConnections and the SFU), median of several joins.
// rekey_after_leave_ms[N]: a meeting of N lightweight participants (meeting clients, no media); one
//   leaves → every remaining participant has switched to the new certified epoch. Median of rounds.
// relay_pps_per_core: the relay as its own process (`sealroom relay`); 1 publisher → 4, 8, 16
//   subscribers; RTP packets forwarded per second (the relay's own counter) divided by the relay's
//   CPU use for forwarding (from /proc, minus its idle baseline with the same connections measured
//   just before), so "packets/s if it had one core to itself". The final figure is the one with the
//   most subscribers that could be measured (16 unless the machine was too loaded to connect them).
// Shared 2-core machine: figures are noisy; run it on a quiet machine for numbers to compare.
// Last line: {"bench":"meeting","join_to_first_frame_ms":..,"rekey_after_leave_ms":{"5":..,"25":..,"50":..},"relay_pps_per_core":..}
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectMedia, LoopbackMediaPeer } from '../../device/daemon/loopback-media-peer.js';
import { MeetingClient } from '../../device/daemon/meeting-client.js';
import { RelayConnection } from '../../device/daemon/relay-connection.js';
import { initialState, StateStore } from '../../device/daemon/state.js';
import { SyntheticMedia } from '../../device/daemon/synthetic-media.js';
import { type CertificateAuthority, TrustStore } from '../../src/pki/index.js';
import { loadOrCreateDevelopmentCa } from '../../src/relay/dev-ca-store.js';
import { type DevelopmentDevice, issueDevelopmentDevice } from '../../src/relay/dev-pki.js';
import { startRelay } from '../../src/relay/server.js';
import { silentLogger } from '../../src/util/log.js';

const JOINS = Number(process.env.MEETING_BENCH_JOINS ?? 5);
const REKEY_ROUNDS = Number(process.env.MEETING_BENCH_REKEY_ROUNDS ?? 3);
const PPS_SECONDS = Number(process.env.MEETING_BENCH_PPS_SECONDS ?? 4);
const PUBLISH_PPS = Number(process.env.MEETING_BENCH_PUBLISH_PPS ?? 1000);

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? Number.NaN;
const round1 = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** The devices' pinned org CA (set once the bench CA is loaded): without it every identity is refused. */
let benchTrust: TrustStore | undefined;

function client(
  url: string,
  device: DevelopmentDevice,
  media?: SyntheticMedia,
): { client: MeetingClient; state: StateStore } {
  const state = new StateStore(initialState('bench'));
  const c = new MeetingClient({
    relayUrl: url,
    credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
    state,
    log: silentLogger,
    trust: benchTrust as TrustStore,
    ...(media ? { media } : {}),
    tickMs: 100,
  });
  return { client: c, state };
}

/** The leader admits every join request as soon as the relay shows it. */
function autoAdmit(leader: MeetingClient, state: StateStore): void {
  const admitted = new Set<string>();
  state.on('change', (s) => {
    for (const w of s.meeting?.waiting ?? []) {
      if (admitted.has(w.participantId)) continue;
      admitted.add(w.participantId);
      void leader.admit(w.participantId).catch(() => undefined);
    }
  });
}

async function joinToFirstFrame(ca: CertificateAuthority): Promise<number> {
  // Many synthetic rooms connect from 127.0.0.1: lift the per-address cap (docs/relay.md).
  const relay = await startRelay({
    log: silentLogger,
    trust: { caPems: [ca.certPem] },
    limits: { maxConnectionsPerAddress: 10_000 },
  });
  const leaderDevice = await issueDevelopmentDevice(ca, { roomName: 'Leader' });
  const leaderMedia = new SyntheticMedia({ roomName: 'Leader', videoIntervalMs: 33, audioIntervalMs: 20 });
  const leader = client(relay.url, leaderDevice, leaderMedia);
  await leader.client.start();
  autoAdmit(leader.client, leader.state);
  const { meetingId } = await leader.client.startMeeting();
  const times: number[] = [];
  for (let i = 0; i < JOINS; i++) {
    const device = await issueDevelopmentDevice(ca, { roomName: `Joiner ${i}` });
    const media = new SyntheticMedia({ roomName: `Joiner ${i}` });
    const joiner = client(relay.url, device, media);
    await joiner.client.start();
    let first = 0;
    media.once('frame', () => {
      first = performance.now();
    });
    const t0 = performance.now();
    await joiner.client.joinMeeting(meetingId);
    await until('the first decrypted frame', () => first > 0);
    times.push(first - t0);
    console.log(`  join ${i + 1}: ${round1(first - t0)} ms to the first decrypted frame`);
    await joiner.client.leaveMeeting();
    await joiner.client.stop();
    await media.close();
    await sleep(200);
  }
  await leader.client.stop();
  await leaderMedia.close();
  await relay.close();
  return median(times);
}

async function rekeyAfterLeave(
  ca: CertificateAuthority,
  n: number,
  devices: DevelopmentDevice[],
): Promise<number> {
  // Many synthetic rooms connect from 127.0.0.1: lift the per-address cap (docs/relay.md).
  const relay = await startRelay({
    log: silentLogger,
    trust: { caPems: [ca.certPem] },
    limits: { maxConnectionsPerAddress: 10_000 },
  });
  const leader = client(relay.url, devices[0] as DevelopmentDevice);
  await leader.client.start();
  autoAdmit(leader.client, leader.state);
  const { meetingId } = await leader.client.startMeeting();
  const members: { client: MeetingClient; state: StateStore }[] = [];
  // N participants besides the leader, plus one per round that will leave.
  for (let i = 1; i <= n + REKEY_ROUNDS; i++) {
    const m = client(relay.url, devices[i] as DevelopmentDevice);
    await m.client.start();
    await m.client.joinMeeting(meetingId);
    members.push(m);
  }
  await until(
    'everyone to hold the same certified epoch',
    () => {
      const epoch = leader.state.get().meeting?.keyEpoch;
      return members.every(
        (m) => m.state.get().meeting?.keyEpoch === epoch && m.state.get().meeting?.status === 'active',
      );
    },
    120_000,
  ).catch((err: Error) => {
    const summary = members
      .map((m) => `${m.state.get().meeting?.status}/${m.state.get().meeting?.keyEpoch}`)
      .join(' ');
    throw new Error(
      `${err.message}: leader epoch ${leader.state.get().meeting?.keyEpoch}, members ${summary}`,
    );
  });
  const times: number[] = [];
  for (let round = 0; round < REKEY_ROUNDS; round++) {
    await sleep(300);
    const leaving = members.pop();
    if (!leaving) break;
    const before = leader.state.get().meeting?.keyEpoch ?? 0;
    const remaining = [leader, ...members];
    const switched = new Set<MeetingClient>();
    for (const m of remaining) {
      m.client.on('keys', function onKeys(e) {
        if (e.epoch > before) {
          switched.add(m.client);
          m.client.off('keys', onKeys);
        }
      });
    }
    const t0 = performance.now();
    await leaving.client.leaveMeeting();
    await until(
      'every remaining participant to switch epochs',
      () => switched.size === remaining.length,
      60_000,
    );
    times.push(performance.now() - t0);
    await leaving.client.stop();
  }
  for (const m of [leader, ...members]) await m.client.stop();
  await relay.close();
  return median(times);
}

function cpuSeconds(pid: number): number {
  // /proc/<pid>/stat fields 14 and 15: utime, stime in clock ticks (100 Hz on Linux).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function startRelayProcess(
  caDir: string,
): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const here = fileURLToPath(import.meta.url);
  const fromSource = here.endsWith('.ts');
  const cli = fromSource
    ? join(here, '../../../src/cli/sealroom.ts')
    : join(here, '../../../src/cli/sealroom.js');
  const child = spawn(
    process.execPath,
    [...(fromSource ? ['--import', 'tsx'] : []), cli, 'relay', '--dev-ca', caDir, '--port', '0'],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn' },
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { relay: string }).relay);
    });
    child.once('exit', (code) => reject(new Error(`relay exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid ?? 0,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function relayForwarding(
  ca: CertificateAuthority,
  caDir: string,
  subscribers: number,
): Promise<{ pps: number; cpu: number; idleCpu: number; perCore: number; deliveredPct: number }> {
  const relay = await startRelayProcess(caDir);
  const connections: RelayConnection[] = [];
  const peers: LoopbackMediaPeer[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    const devices = await Promise.all(
      Array.from({ length: subscribers + 1 }, (_, i) => issueDevelopmentDevice(ca, { roomName: `R${i}` })),
    );
    for (const d of devices)
      connections.push(
        await RelayConnection.connect(relay.url, {
          certificatePem: d.certificatePem,
          identityKey: d.identityKey,
        }),
      );
    const [pubConn, ...subConns] = connections as [RelayConnection, ...RelayConnection[]];
    const created = await pubConn.request({ type: 'create' });
    if (created.type !== 'meeting') throw new Error('no meeting');
    for (const c of subConns) {
      const joined = await c.request({ type: 'join', meetingId: created.meetingId });
      if (joined.type === 'meeting')
        await pubConn.request({ type: 'admit', participantId: joined.participantId });
    }
    let received = 0;
    for (const [i, c] of connections.entries()) {
      const peer = new LoopbackMediaPeer();
      peers.push(peer);
      if (i > 0) peer.on('packet', () => received++);
      connectMedia(c, peer);
    }
    const publisher = peers[0] as LoopbackMediaPeer;
    await until('all media connections', () => peers.every((p) => p.connected), 120_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}: ${peers.map((p) => p.pc.connectionState).join(' ')}`);
      },
    );
    // Baseline in the same run: the relay's CPU with every connection up but no media (ICE
    // keepalives, RTCP timers, WebSockets), subtracted so the figure is the cost of forwarding.
    await sleep(500);
    const i0 = cpuSeconds(relay.pid);
    const it0 = performance.now();
    await sleep(1500);
    const idleCpu = (cpuSeconds(relay.pid) - i0) / ((performance.now() - it0) / 1000);
    const payload = Buffer.alloc(1000, 0x5a);
    let ts = 0;
    const perTick = Math.max(1, Math.round(PUBLISH_PPS / 100));
    timer = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        ts += 900;
        publisher.send('video', payload, ts, { marker: i === perTick - 1 });
      }
    }, 10);
    await until('every subscriber receiving', () => received > subscribers * 50, 30_000);
    // The relay's own counter of copies forwarded (subscribers decrypting SRTP in this one process
    // would otherwise cap the figure) and its CPU time from /proc, over the same window.
    const health = relay.url.replace(/^ws/, 'http').replace(/\/v1\/ws$/, '/healthz');
    const forwarded = async () =>
      ((await (await fetch(health)).json()) as { packetsForwarded: number }).packetsForwarded;
    const f0 = await forwarded();
    const r0 = received;
    const c0 = cpuSeconds(relay.pid);
    const t0 = performance.now();
    await sleep(PPS_SECONDS * 1000);
    const f1 = await forwarded();
    const wall = (performance.now() - t0) / 1000;
    const cpu = (cpuSeconds(relay.pid) - c0) / wall;
    const pps = (f1 - f0) / wall;
    const deliveredPct = f1 > f0 ? (100 * (received - r0)) / (f1 - f0) : 0;
    const forwardingCpu = Math.max(cpu - idleCpu, 0.001);
    return { pps, cpu, idleCpu, perCore: pps / forwardingCpu, deliveredPct };
  } finally {
    if (timer) clearInterval(timer);
    for (const p of peers) await p.close();
    for (const c of connections) c.close();
    await relay.stop();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-bench-meeting-'));
  try {
    const caDir = join(dir, 'ca');
    const ca = await loadOrCreateDevelopmentCa(caDir, 'Bench Org');
    benchTrust = new TrustStore({ orgCaPem: ca.certPem });
    console.log('Sealroom meeting benchmark (loopback, shared machine: noisy figures)');

    console.log(`join → first decrypted frame (${JOINS} joins, leader auto-admits):`);
    const joinMs = await joinToFirstFrame(ca);
    console.log(`  median ${round1(joinMs)} ms (target < 1500 ms)`);

    const devices = await Promise.all(
      Array.from({ length: 50 + REKEY_ROUNDS + 1 }, (_, i) =>
        issueDevelopmentDevice(ca, { roomName: `Room ${i}` }),
      ),
    );
    const rekey: Record<string, number> = {};
    for (const n of [5, 25, 50]) {
      const ms = await rekeyAfterLeave(ca, n, devices);
      rekey[String(n)] = round1(ms);
      console.log(
        `rekey after a leave, ${n} participants: median ${round1(ms)} ms until all switched${n === 25 ? ' (target < 1000 ms)' : ''}`,
      );
    }

    let last = Number.NaN;
    for (const subscribers of [4, 8, 16]) {
      try {
        const r = await relayForwarding(ca, caDir, subscribers);
        console.log(
          `relay forwarding, 1 publisher → ${subscribers} subscribers: ${Math.round(r.pps)} packets/s out at ${round1(r.cpu * 100)} % of a core (${round1(r.idleCpu * 100)} % idle baseline) = ${Math.round(r.perCore)} packets/s per core (${Math.round(r.deliveredPct)} % counted at the subscribers)`,
        );
        last = r.perCore;
      } catch (err) {
        // On a loaded machine 17 PeerConnections in one process may not all connect in time.
        console.log(
          `relay forwarding, 1 publisher → ${subscribers} subscribers: not measured (${(err as Error).message})`,
        );
      }
    }
    console.log('(target ≥ 20 000 packets/s per core)');
    console.log(
      JSON.stringify({
        bench: 'meeting',
        join_to_first_frame_ms: round1(joinMs),
        rekey_after_leave_ms: rekey,
        relay_pps_per_core: Math.round(last),
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:meeting failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
