// A relay cluster on loopback for tests and the bench (docs/relay.md "Several nodes"): one private
// redis-server (LocalRedis), N `sealroom relay --redis` node processes, and device meeting clients
// (MeetingClient, real E2EE; SyntheticMedia when media is wanted) whose entry list is every node.
// Nodes are real processes so that `kill -9` and SIGTERM mean what they mean in production.
// No vitest import: scripts/bench/relay-cluster.ts uses it too (it is part of the build).
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { initialState, StateStore } from '../device/daemon/state.js';
import { SyntheticMedia } from '../device/daemon/synthetic-media.js';
import { parseKid } from '../src/core/e2ee/index.js';
import { type CertificateAuthority, TrustStore } from '../src/pki/index.js';
import { LocalRedis } from '../src/relay/cluster/local-redis.js';
import { loadOrCreateDevelopmentCa } from '../src/relay/dev-ca-store.js';
import { type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { destination, type Logger, pino } from 'pino';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it holds (never a fixed sleep as an assertion); throws with `what` on timeout. */
export async function until(
  what: string | (() => string),
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok = false;
    try {
      ok = await probe();
    } catch {
      ok = false;
    }
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    await sleep(intervalMs);
  }
}

async function retry<T>(what: string, f: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await f();
    } catch (err) {
      if (i >= attempts) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(500 * i);
    }
  }
}

/** The repository root and how to run the CLI: from source (tsx) in development, else the build. */
function cliCommand(): { cwd: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    return {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      args: ['--import', 'tsx', 'src/cli/sealroom.ts'],
    };
  }
  // dist/test/relay-cluster-harness.js → the repository root is two levels up.
  const root = fileURLToPath(new URL('../..', import.meta.url));
  return { cwd: root, args: [join(root, 'dist/src/cli/sealroom.js')] };
}

/** Every child this process spawned: killed if the test process dies without cleaning up. */
const children = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
}

export interface NodeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One `sealroom relay --redis` process. */
export class RelayNode {
  readonly id: string;
  url = '';
  child: ChildProcess | undefined;
  exited: Promise<NodeExit> = Promise.resolve({ code: null, signal: null });
  readonly #logPath: string;
  #log: WriteStream | undefined;

  constructor(
    id: string,
    readonly cluster: RelayCluster,
  ) {
    this.id = id;
    this.#logPath = join(cluster.dir, `node-${id}.log`);
  }

  get alive(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  get httpBase(): string {
    const u = new URL(this.url);
    return `http://${u.host}`;
  }

  async start(): Promise<void> {
    const { cwd, args } = cliCommand();
    const opts = this.cluster.options;
    const child = spawn(
      process.execPath,
      [
        ...args,
        'relay',
        '--dev-ca',
        join(this.cluster.dir, 'ca'),
        '--port',
        '0',
        '--redis',
        this.cluster.redis.url,
        '--node-id',
        this.id,
        '--drain-timeout',
        String(opts.drainTimeoutS ?? 2),
        // Every synthetic room connects from 127.0.0.1.
        '--max-connections-per-address',
        '100000',
        '--max-connections',
        '100000',
        ...(opts.nodeArgs ?? []),
      ],
      {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, SEALROOM_LOG_LEVEL: opts.logLevel ?? 'info' },
      },
    );
    track(child);
    this.child = child;
    this.#log = createWriteStream(this.#logPath, { flags: 'a' });
    child.stderr?.pipe(this.#log);
    this.exited = new Promise<NodeExit>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    this.url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const onData = (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl < 0) return;
        child.stdout?.off('data', onData);
        try {
          const first = JSON.parse(out.slice(0, nl)) as { relay: string; nodeId?: string };
          if (first.nodeId !== undefined && first.nodeId !== this.id)
            reject(new Error(`node ${this.id} says it is ${first.nodeId}`));
          resolve(first.relay);
        } catch (err) {
          reject(err as Error);
        }
      };
      child.stdout?.on('data', onData);
      child.once('exit', (code) =>
        reject(new Error(`relay node ${this.id} exited with ${code}:\n${this.logTail()}`)),
      );
      setTimeout(() => reject(new Error(`relay node ${this.id} did not start:\n${this.logTail()}`)), 60_000);
    });
    // Keep reading stdout so the pipe never fills up.
    child.stdout?.resume();
  }

  /** A crash: no drain, no deregistration; the node key expires in Redis after nodeTtlMs. */
  async kill9(): Promise<NodeExit> {
    if (this.alive) this.child?.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM: a clustered node drains (no new meetings, then moves the rest) and exits. */
  term(): void {
    if (this.alive) this.child?.kill('SIGTERM');
  }

  async healthz(): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.httpBase}/healthz`, { signal: AbortSignal.timeout(3000) });
    return (await res.json()) as Record<string, unknown>;
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.#logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  closeLog(): void {
    this.#log?.end();
  }
}

export interface ClusterRoom {
  name: string;
  device: DevelopmentDevice;
  state: StateStore;
  media: SyntheticMedia | undefined;
  client: MeetingClient;
  /** Times the relay connection went from connected to not connected. */
  drops: number;
  /** Calls `f` on every state change (failover times are read from these listeners). */
  onChange(f: () => void): void;
  /** Decrypted frames by key epoch and sender index (`${epoch}:${senderIndex}` → count). */
  frames: Map<string, number>;
}

export interface ClusterOptions {
  nodes?: number;
  /** `--drain-timeout` of every node (seconds; default 2 so tests see the "move" half of a drain). */
  drainTimeoutS?: number;
  /** SEALROOM_LOG_LEVEL of the node processes (their stderr goes to <dir>/node-<id>.log). */
  logLevel?: string;
  nodeArgs?: string[];
  /** Level of the rooms' log (<dir>/rooms.log; default info). */
  roomLogLevel?: string;
  /** Reconnection backoff and resume grace of the rooms. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  resumeGraceMs?: number;
}

export interface RoomOptions {
  media?: boolean;
  /** Entry list (default: every node's URL, in node order rotated by the room's number). */
  entries?: string[];
}

/** Key prefix of the cluster's Redis entries (the default of RedisCluster). */
export const PREFIX = 'sealroom:relay:';

export class RelayCluster {
  readonly dir: string;
  ca!: CertificateAuthority;
  redis!: LocalRedis;
  readonly nodes: RelayNode[] = [];
  readonly rooms: ClusterRoom[] = [];
  #reader: Redis | undefined;
  #roomCount = 0;
  #nodeCount = 0;
  #closed = false;
  #roomLog: Logger | undefined;

  constructor(readonly options: ClusterOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'sealroom-relay-cluster-'));
  }

  static async start(options: ClusterOptions = {}): Promise<RelayCluster> {
    const cluster = new RelayCluster(options);
    try {
      cluster.ca = await loadOrCreateDevelopmentCa(join(cluster.dir, 'ca'));
      cluster.redis = await LocalRedis.start();
      await Promise.all(Array.from({ length: options.nodes ?? 3 }, () => cluster.addNode()));
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** Starts one more node (ids n1, n2, …). */
  async addNode(): Promise<RelayNode> {
    const node = new RelayNode(`n${++this.#nodeCount}`, this);
    this.nodes.push(node);
    await node.start();
    return node;
  }

  node(id: string): RelayNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Every node's URL (dead ones too: a room's entry list is configured once, like a real one). */
  entries(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** Reads the shared registry directly (ground truth for "where does this meeting live"). */
  get reader(): Redis {
    if (!this.#reader)
      this.#reader = new Redis(this.redis.url, {
        lazyConnect: false,
        maxRetriesPerRequest: 1,
        enableOfflineQueue: true,
        retryStrategy: () => 200,
        commandTimeout: 2000,
      });
    return this.#reader;
  }

  /** The node id Redis maps the meeting to (undefined if none or Redis is unreachable). */
  async hostOf(meetingId: string): Promise<string | undefined> {
    try {
      return (await this.reader.get(`${PREFIX}meeting:${meetingId}`)) ?? undefined;
    } catch {
      return undefined;
    }
  }

  /** The rooms' meeting clients log to <dir>/rooms.log (JSON lines with `room`): read it when a test fails. */
  #roomLogger(): Logger {
    if (!this.#roomLog)
      this.#roomLog = pino(
        { level: this.options.roomLogLevel ?? 'info', base: null },
        destination({ dest: join(this.dir, 'rooms.log'), sync: true }),
      );
    return this.#roomLog;
  }

  /** The last log lines of a room's meeting client. */
  roomLogTail(name: string, lines = 20): string {
    try {
      return readFileSync(join(this.dir, 'rooms.log'), 'utf8')
        .split('\n')
        .filter((l) => l.includes(`"room":${JSON.stringify(name)}`))
        .slice(-lines)
        .join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** A room (device certificate from the cluster's development CA) connected through its entries. */
  async room(name: string, opts: RoomOptions = {}): Promise<ClusterRoom> {
    const n = this.#roomCount++;
    const device = await issueDevelopmentDevice(this.ca, { roomName: name });
    const state = new StateStore(initialState('test'));
    const media = opts.media
      ? new SyntheticMedia({ roomName: name, videoIntervalMs: 100, audioIntervalMs: 60, videoBytes: 300 })
      : undefined;
    const all = this.entries();
    // Rotated so that rooms do not all knock on the first node first.
    const entries = opts.entries ?? [...all.slice(n % all.length), ...all.slice(0, n % all.length)];
    const client = new MeetingClient({
      relayUrl: entries[0] ?? '',
      relayUrls: entries,
      credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
      trust: new TrustStore({ orgCaPem: this.ca.certPem }),
      state,
      log: this.#roomLogger().child({ room: name }),
      ...(media ? { media } : {}),
      reconnectMinMs: this.options.reconnectMinMs ?? 100,
      reconnectMaxMs: this.options.reconnectMaxMs ?? 500,
      resumeGraceMs: this.options.resumeGraceMs ?? 15_000,
      tickMs: 250,
    });
    const listeners: (() => void)[] = [];
    const r: ClusterRoom = {
      name,
      device,
      state,
      media,
      client,
      drops: 0,
      onChange: (f) => listeners.push(f),
      frames: new Map(),
    };
    media?.on('frame', (f) => {
      const k = `${f.epoch}:${f.senderIndex}`;
      r.frames.set(k, (r.frames.get(k) ?? 0) + 1);
    });
    let wasConnected = false;
    state.on('change', (s) => {
      if (wasConnected && !s.relay.connected) r.drops++;
      wasConnected = s.relay.connected;
      for (const f of listeners) f();
    });
    this.rooms.push(r);
    await client.start();
    return r;
  }

  /**
   * A meeting of these rooms: the first starts it and admits every verified request that shows up
   * (the others join), until every room is active with the same security code.
   */
  async meeting(rooms: ClusterRoom[], timeoutMs = 30_000): Promise<ClusterMeeting> {
    const [leader, ...others] = rooms;
    if (!leader) throw new Error('a meeting needs a room');
    // Setting up is not what is measured: a start or join that fails on a starved machine (a
    // redirect target slow to answer) is tried again, as a person would.
    const { meetingId } = await retry(`${leader.name} starting a meeting`, async () => {
      const id = leader.client.meetingId; // a first try that failed late may have started it
      return id ? { meetingId: id } : leader.client.startMeeting();
    });
    const m = new ClusterMeeting(meetingId, leader, others);
    autoAdmit(leader);
    for (const o of others)
      await retry(`${o.name} joining ${meetingId}`, async () => {
        if (o.client.meetingId !== meetingId) await o.client.joinMeeting(meetingId);
      });
    await until(
      () => `meeting ${meetingId} to be active on all ${rooms.length} rooms (${m.describe()})`,
      () => m.settled(),
      timeoutMs,
    );
    m.code = leader.state.get().meeting?.securityCode;
    return m;
  }

  /** Stops rooms, nodes (SIGKILL: nothing to drain at the end of a test), Redis; removes the dir. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const r of this.rooms) {
      await r.client.stop().catch(() => undefined);
      await r.media?.close().catch(() => undefined);
    }
    await Promise.all(this.nodes.map((n) => n.kill9()));
    for (const n of this.nodes) n.closeLog();
    this.#reader?.disconnect();
    await this.redis?.stop().catch(() => undefined);
    if (!process.env.KEEP_CLUSTER_DIR) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The leader admits every verified join request as soon as it shows (the bench's and tests' stand-in for a person). */
export function autoAdmit(leader: ClusterRoom): void {
  const asked = new Set<string>();
  leader.onChange(() => {
    for (const w of leader.state.get().meeting?.waiting ?? []) {
      if (asked.has(w.participantId)) continue;
      asked.add(w.participantId);
      void leader.client.admit(w.participantId).catch(() => asked.delete(w.participantId));
    }
  });
}

export class ClusterMeeting {
  code: string | undefined;
  readonly rooms: ClusterRoom[];

  constructor(
    readonly meetingId: string,
    readonly leader: ClusterRoom,
    readonly others: ClusterRoom[],
  ) {
    this.rooms = [leader, ...others];
  }

  /** The lowest key epoch among the rooms (0 if one has none). */
  epoch(): number {
    return Math.min(...this.rooms.map((r) => r.state.get().meeting?.keyEpoch ?? 0));
  }

  /**
   * Every room connected, in this meeting, active, holding the leader's epoch or newer than
   * `afterEpoch`, with the same security code, and the leader still the leader.
   */
  settled(afterEpoch = -1): boolean {
    const leaderView = this.leader.state.get().meeting;
    if (leaderView?.role !== 'leader' || leaderView.meetingId !== this.meetingId) return false;
    const code = leaderView.securityCode;
    if (code === undefined) return false;
    return this.rooms.every((r) => {
      const s = r.state.get();
      const v = s.meeting;
      return (
        s.relay.connected &&
        v?.meetingId === this.meetingId &&
        v.status === 'active' &&
        !v.rekeying &&
        (v.keyEpoch ?? -1) > afterEpoch &&
        v.securityCode === code
      );
    });
  }

  /** Same participants as at the start: every room's roster names exactly the meeting's rooms. */
  sameParticipants(): boolean {
    const want = this.rooms.map((r) => r.name).sort();
    return this.rooms.every((r) => {
      const names = (r.state.get().meeting?.roster ?? []).map((e) => e.roomName).sort();
      return names.length === want.length && names.every((n, i) => n === want[i]);
    });
  }

  describe(): string {
    return this.rooms
      .map((r) => {
        const s = r.state.get();
        const v = s.meeting;
        const media = r.media
          ? ` media:${r.media.connected ? 'up' : 'down'} sent ${r.media.framesSent} failed ${r.media.decryptFailures} got ${[...r.frames].map(([k, n]) => `${k}=${n}`).join(',')}`
          : '';
        return `${r.name}:${s.relay.connected ? 'up' : 'down'}/${v?.status ?? '-'}/e${v?.keyEpoch ?? '-'}/i${senderIndexOf(r) ?? '-'}${v?.meetingId === this.meetingId ? '' : `/in ${v?.meetingId}`}${media}`;
      })
      .join(' | ');
  }
}

/** Index of the room's sender in the E2EE list, as its current KID carries it. */
export function senderIndexOf(r: ClusterRoom): number | undefined {
  const last = r.client.keyHistory.at(-1);
  return last ? parseKid(last.sendKid).senderIndex : undefined;
}

/** Frames from `sender` that decrypted at `receiver` (SFrame opened with the E2EE keys). */
export function framesFrom(receiver: ClusterRoom, sender: ClusterRoom): number {
  const i = senderIndexOf(sender);
  if (i === undefined) return 0;
  const d = receiver.media?.decoded.get(i);
  return d ? d.audio + d.video : 0;
}

/** Frames from sender index `senderIndex` that decrypted at `receiver` under key epoch ≥ `minEpoch`. */
export function framesAt(receiver: ClusterRoom, senderIndex: number, minEpoch: number): number {
  let n = 0;
  for (const [k, count] of receiver.frames) {
    const [epoch, index] = k.split(':').map(Number);
    if (index === senderIndex && (epoch ?? -1) >= minEpoch) n += count;
  }
  return n;
}

/**
 * Decrypted-frame counts for every ordered pair (receiver, sender) of media rooms, under keys of
 * epoch ≥ `minEpoch`, from each sender's current index: compare two snapshots to see media flow.
 */
export function mediaSnapshot(rooms: ClusterRoom[], minEpoch: number): number[] {
  const out: number[] = [];
  for (const a of rooms)
    for (const b of rooms) {
      if (a === b || !a.media || !b.media) continue;
      const i = senderIndexOf(b);
      out.push(i === undefined ? 0 : framesAt(a, i, minEpoch));
    }
  return out;
}

/** Every receiver decrypted at least `more` frames from every other media room since `before` (epoch ≥ minEpoch). */
export function mediaFlowing(rooms: ClusterRoom[], minEpoch: number, more = 5, before?: number[]): boolean {
  const now = mediaSnapshot(rooms, minEpoch);
  return now.length > 0 && now.every((n, k) => n >= (before?.[k] ?? 0) + more);
}

export const percentile = (v: number[], p: number): number => {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
};

export const repoRoot = (): string => cliCommand().cwd;
