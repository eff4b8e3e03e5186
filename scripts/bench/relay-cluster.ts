// npm run bench:relay-cluster — the relay on three nodes sharing one Redis (docs/relay.md "Several nodes").
// Three `sealroom relay --redis` processes and a private redis-server on loopback; N meetings
// (RELAY_CLUSTER_BENCH_MEETINGS, default 60) of 2, 3 or 4 synthetic rooms in turn: device meeting
// clients with real E2EE (signed lists, certified keys, security codes). Media (SFrame frames through
// werift and the SFU) runs on a sample of meetings only (RELAY_CLUSTER_BENCH_MEDIA, default 6): a
// few hundred PeerConnections would measure this 2-core machine, not the cluster.
// - placement_max_over_mean: meetings per node as the shared registry maps them, max / mean.
// - The node hosting the most meetings is killed (SIGKILL: no drain, its Redis key expires after
//   the node TTL, 2 s). failover_p95_s: per affected meeting, kill → every original room connected,
//   active in the same meeting, with the same security code and a key epoch newer than before; p50
//   and p95 over the affected meetings. lost_meetings: affected meetings not back within 30 s.
// - Also printed (not in the JSON): media back (first frames decrypted at the new epoch both ways in
//   sampled meetings), meetings on other nodes disturbed (a room lost its connection or rekeyed).
// Last line: {"bench":"relay-cluster","nodes":3,"meetings":..,"placement_max_over_mean":..,"failover_p95_s":..,"lost_meetings":..}
import {
  type ClusterMeeting,
  mediaFlowing,
  percentile,
  RelayCluster,
  until,
} from '../../test/relay-cluster-harness.js';

const MEETINGS = Number(process.env.RELAY_CLUSTER_BENCH_MEETINGS ?? 60);
const MEDIA_MEETINGS = Number(process.env.RELAY_CLUSTER_BENCH_MEDIA ?? 6);
/** Meetings set up at once (each waits for its rooms to be admitted and keyed). */
const PARALLEL = Number(process.env.RELAY_CLUSTER_BENCH_PARALLEL ?? 4);
const LOST_AFTER_MS = 30_000;
const NODES = 3;

const round2 = (x: number) => Math.round(x * 100) / 100;
const s = (ms: number) => `${round2(ms / 1000)} s`;

async function main(): Promise<void> {
  const t0 = performance.now();
  console.log(
    `relay cluster bench: ${NODES} nodes, ${MEETINGS} meetings of 2–4 rooms, media in ${Math.min(MEDIA_MEETINGS, MEETINGS)}`,
  );
  // Drain timeout irrelevant here (nodes are killed, not drained); quiet node logs.
  const cluster = await RelayCluster.start({
    nodes: NODES,
    logLevel: process.env.RELAY_CLUSTER_BENCH_VERBOSE ? 'info' : 'warn',
    resumeGraceMs: 20_000,
  });
  let result: Record<string, number | string> | undefined;
  try {
    console.log(
      `  nodes up in ${s(performance.now() - t0)}: ${cluster.nodes.map((n) => `${n.id} ${n.url}`).join(', ')}`,
    );

    // ---- meetings ----
    const meetings: ClusterMeeting[] = new Array(MEETINGS);
    const tSetup = performance.now();
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= MEETINGS) return;
        const size = 2 + (i % 3);
        const media = i < MEDIA_MEETINGS;
        const rooms = [];
        for (let k = 0; k < size; k++) rooms.push(await cluster.room(`M${i} R${k}`, { media }));
        meetings[i] = await cluster.meeting(rooms, 120_000);
        done++;
        if (done % 10 === 0 || done === MEETINGS)
          console.log(`  ${done}/${MEETINGS} meetings active (${s(performance.now() - tSetup)})`);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, PARALLEL) }, worker));
    const rooms = meetings.reduce((n, m) => n + m.rooms.length, 0);
    console.log(`  ${MEETINGS} meetings, ${rooms} rooms set up in ${s(performance.now() - tSetup)}`);

    // ---- placement ----
    const hostOf = new Map<ClusterMeeting, string>();
    await until(
      'every meeting in the registry',
      async () => {
        for (const m of meetings) {
          const h = await cluster.hostOf(m.meetingId);
          if (h === undefined) return false;
          hostOf.set(m, h);
        }
        return true;
      },
      30_000,
      200,
    );
    const perNode = new Map(cluster.nodes.map((n) => [n.id, 0]));
    for (const h of hostOf.values()) perNode.set(h, (perNode.get(h) ?? 0) + 1);
    const counts = [...perNode.values()];
    const mean = MEETINGS / NODES;
    const balance = round2(Math.max(...counts) / mean);
    console.log(
      `  placement: ${[...perNode].map(([id, n]) => `${id} ${n}`).join(', ')} (max/mean ${balance})`,
    );

    // ---- kill -9 the busiest node ----
    const victimId = [...perNode].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] ?? '';
    const victim = cluster.node(victimId);
    const affected = meetings.filter((m) => hostOf.get(m) === victimId);
    const others = meetings.filter((m) => hostOf.get(m) !== victimId);
    const epochBefore = new Map(meetings.map((m) => [m, m.epoch()]));
    const dropsBefore = new Map(meetings.map((m) => [m, m.rooms.reduce((n, r) => n + r.drops, 0)]));
    const backAt = new Map<ClusterMeeting, number>();
    const mediaAt = new Map<ClusterMeeting, number>();
    // Phases, to see where the time goes: the leader re-created the meeting on a live node (it
    // dropped, is connected again and active), then every member was admitted there at the relay,
    // then everyone holds the new epoch (backAt).
    const roomDropsBefore = new Map(affected.flatMap((m) => m.rooms.map((r) => [r, r.drops] as const)));
    const backInMeeting = (r: ClusterMeeting['leader'], m: ClusterMeeting) => {
      const st = r.state.get();
      return (
        r.drops > (roomDropsBefore.get(r) ?? 0) &&
        st.relay.connected &&
        st.meeting?.meetingId === m.meetingId &&
        st.meeting.status === 'active'
      );
    };
    const leaderAt = new Map<ClusterMeeting, number>();
    const admittedAt = new Map<ClusterMeeting, number>();
    const check = (m: ClusterMeeting) => {
      const before = epochBefore.get(m) ?? 0;
      const t = performance.now();
      if (!leaderAt.has(m) && backInMeeting(m.leader, m)) leaderAt.set(m, t);
      if (!admittedAt.has(m) && m.rooms.every((r) => backInMeeting(r, m))) admittedAt.set(m, t);
      if (!backAt.has(m) && m.settled(before)) backAt.set(m, t);
      if (
        backAt.has(m) &&
        !mediaAt.has(m) &&
        m.rooms.some((r) => r.media) &&
        mediaFlowing(m.rooms, before + 1, 1)
      )
        mediaAt.set(m, t);
    };
    // Listen to every state change (exact times), and poll too (media frames change no state).
    for (const m of affected) for (const r of m.rooms) r.onChange(() => check(m));
    console.log(`  kill -9 ${victimId}: ${affected.length} meetings to fail over`);
    const tKill = performance.now();
    await victim.kill9();
    const withMedia = affected.filter((m) => m.rooms.some((r) => r.media));
    await until(
      'the affected meetings',
      () => {
        for (const m of affected) check(m);
        const n = backAt.size;
        return n === affected.length && withMedia.every((m) => mediaAt.has(m));
      },
      LOST_AFTER_MS,
      20,
    ).catch(() => undefined); // the ones not back are counted as lost
    const times = affected.filter((m) => backAt.has(m)).map((m) => ((backAt.get(m) ?? 0) - tKill) / 1000);
    const lost = affected.filter((m) => !backAt.has(m));
    const mediaTimes = withMedia
      .filter((m) => mediaAt.has(m))
      .map((m) => ((mediaAt.get(m) ?? 0) - tKill) / 1000);
    const phase = (at: Map<ClusterMeeting, number>) => {
      const v = affected.filter((m) => at.has(m)).map((m) => ((at.get(m) ?? 0) - tKill) / 1000);
      return `p50 ${round2(percentile(v, 50))} s, p95 ${round2(percentile(v, 95))} s`;
    };
    console.log(`  leader re-created the meeting: ${phase(leaderAt)}`);
    console.log(`  every member admitted again at the relay: ${phase(admittedAt)}`);
    for (const m of lost) {
      console.log(`  LOST ${m.meetingId}: ${m.describe()}`);
      if (process.env.RELAY_CLUSTER_BENCH_VERBOSE)
        for (const r of m.rooms) console.log(cluster.roomLogTail(r.name, 12));
    }
    const disturbed = others.filter(
      (m) =>
        m.epoch() !== epochBefore.get(m) || m.rooms.reduce((n, r) => n + r.drops, 0) !== dropsBefore.get(m),
    );
    const p50 = round2(percentile(times, 50));
    const p95 = round2(percentile(times, 95));
    console.log(
      `  failover (kill → all rooms back, new epoch, same code): p50 ${p50} s, p95 ${p95} s, max ${round2(Math.max(...times))} s over ${times.length} meetings`,
    );
    console.log(
      `  media back at the new epoch (${withMedia.length} sampled meetings): p50 ${round2(percentile(mediaTimes, 50))} s, p95 ${round2(percentile(mediaTimes, 95))} s`,
    );
    console.log(
      `  lost (not back within ${LOST_AFTER_MS / 1000} s): ${lost.length}; meetings on other nodes disturbed: ${disturbed.length}/${others.length}`,
    );
    console.log(
      JSON.stringify({
        failover_p50_s: p50,
        media_back_p95_s: round2(percentile(mediaTimes, 95)),
        rooms,
        affected_meetings: affected.length,
        others_disturbed: disturbed.length,
        per_node: Object.fromEntries(perNode),
      }),
    );
    result = {
      bench: 'relay-cluster',
      nodes: NODES,
      meetings: MEETINGS,
      placement_max_over_mean: balance,
      failover_p95_s: p95,
      lost_meetings: lost.length,
    };
  } finally {
    await cluster.close();
  }
  console.log(`  total ${s(performance.now() - t0)}`);
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  },
);
