// The stage for the hostile-* tests: an org CA, a real relay (in-process, src/relay/server.ts) with a
// HostileRelay in front of it, and room devices running the daemon's real MeetingClient (no media
// engine: the keys events say what the media engine would be told). Every E2EE event, keys event
// and state change of each room is recorded so a test can assert what was *ever* shown or keyed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeetingClient, type MeetingClientOptions } from '../../device/daemon/meeting-client.js';
import { type DeviceState, initialState, StateStore } from '../../device/daemon/state.js';
import type { KeysEvent, SessionEvent } from '../../src/core/e2ee/index.js';
import type { CertificateAuthority } from '../../src/pki/index.js';
import { TrustStore } from '../../src/pki/trust-store.js';
import {
  createDevelopmentCa,
  type DevelopmentDevice,
  issueDevelopmentDevice,
} from '../../src/relay/dev-pki.js';
import { type Relay, type RelayOptions, startRelay } from '../../src/relay/server.js';
import { afterAll, beforeAll } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { HostileRelay } from './hostile-relay.js';

export interface Room {
  name: string;
  device: DevelopmentDevice;
  state: StateStore;
  client: MeetingClient;
  /** Every E2EE event with the time it happened. */
  events: { at: number; event: SessionEvent }[];
  keys: { at: number; event: KeysEvent }[];
  /** Every state the wall was given. */
  states: DeviceState[];
}

/** Short timings so freshness, silence and resume happen within a test's seconds. */
export const FAST = {
  tickMs: 100,
  heartbeatIntervalMs: 1000,
  leaderSilentAfterMs: 3000,
  resumeGraceMs: 4000,
};

export class Stage {
  readonly dir = mkdtempSync(join(tmpdir(), 'sealroom-hostile-'));
  ca!: CertificateAuthority;
  relay!: Relay;
  hostile!: HostileRelay;
  readonly rooms: Room[] = [];
  readonly #relayOptions: Partial<RelayOptions>;
  #extraCaPems: string[] = [];

  /** `persistIds`: the relay keeps its id bindings in this stage's directory across restarts. */
  constructor(relayOptions: Partial<RelayOptions> & { persistIds?: boolean } = {}) {
    const { persistIds, ...rest } = relayOptions;
    this.#relayOptions = { ...rest, ...(persistIds ? { stateDir: join(this.dir, 'relay-state') } : {}) };
  }

  /** `relayTrusts`: extra CAs the (hostile) relay accepts devices from, e.g. its own CA. */
  async start(opts: { relayTrusts?: CertificateAuthority[] } = {}): Promise<this> {
    this.ca = await createDevelopmentCa();
    this.#extraCaPems = (opts.relayTrusts ?? []).map((c) => c.certPem);
    await this.startRelay();
    this.hostile = await HostileRelay.start(this.relay.url);
    return this;
  }

  async startRelay(port = 0): Promise<void> {
    this.relay = await startRelay({
      log: silentLogger,
      trust: { caPems: [this.ca.certPem, ...this.#extraCaPems] },
      port,
      ...this.#relayOptions,
    });
  }

  /** The relay process dies and a new one comes up on the same port (same state dir, if any). */
  async restartRelay(between?: () => Promise<void>): Promise<void> {
    const port = this.relay.port;
    await this.relay.close();
    await between?.();
    await this.startRelay(port);
  }

  /**
   * A room with a real MeetingClient connected through the hostile relay. `device` defaults to one
   * of the org CA; `anchors` to the org CA only (what a device pins at enrollment).
   */
  async room(
    name: string,
    opts: { device?: DevelopmentDevice; orgCaPem?: string; partnerCaPems?: string[]; direct?: boolean } = {},
  ): Promise<Room> {
    const device = opts.device ?? (await issueDevelopmentDevice(this.ca, { roomName: name }));
    const state = new StateStore(initialState('test'));
    const room: Room = { name, device, state, client: undefined as never, events: [], keys: [], states: [] };
    state.on('change', (s) => room.states.push(s));
    const options: MeetingClientOptions = {
      relayUrl: opts.direct ? this.relay.url : this.hostile.url,
      credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
      trust: new TrustStore({
        orgCaPem: opts.orgCaPem ?? this.ca.certPem,
        ...(opts.partnerCaPems ? { partnerCaPems: opts.partnerCaPems } : {}),
      }),
      state,
      log: silentLogger,
      reconnectMinMs: 100,
      reconnectMaxMs: 300,
      connectTimeoutMs: 3000,
      resumeGraceMs: FAST.resumeGraceMs,
      tickMs: FAST.tickMs,
      heartbeatIntervalMs: FAST.heartbeatIntervalMs,
      leaderSilentAfterMs: FAST.leaderSilentAfterMs,
    };
    room.client = new MeetingClient(options);
    room.client.on('e2ee', (event) => room.events.push({ at: Date.now(), event }));
    room.client.on('keys', (event) => room.keys.push({ at: Date.now(), event }));
    await room.client.start();
    this.rooms.push(room);
    return room;
  }

  /** Leader `leader` starts a meeting and admits each of `others` (verified, in its waiting list). */
  async meeting(leader: Room, others: Room[]): Promise<string> {
    const { meetingId } = await leader.client.startMeeting();
    for (const r of others) {
      await r.client.joinMeeting(meetingId);
      const pid = r.client.participantId ?? '';
      await poll(() => leader.state.get().meeting?.waiting.some((w) => w.participantId === pid));
      await leader.client.admit(pid);
      await poll(() => sending(r) && r.state.get().meeting?.securityCode !== undefined);
    }
    return meetingId;
  }

  async close(): Promise<void> {
    for (const r of this.rooms) await r.client.stop();
    await this.hostile?.close();
    await this.relay?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The room's last keys event says it may send. */
export function sending(r: Room): boolean {
  const last = r.keys.at(-1)?.event as (KeysEvent & { sending?: boolean }) | undefined;
  return last !== undefined && last.sending !== false;
}

export function currentEpoch(r: Room): number {
  return r.keys.at(-1)?.event.epoch ?? 0;
}

export function eventsOf<T extends SessionEvent['type'] | string>(r: Room, type: T) {
  return r.events.filter((e) => (e.event as { type: string }).type === type);
}

/** Room names on a wall: the roster and the waiting list. */
export function wallNames(s: DeviceState | undefined): string[] {
  const m = s?.meeting;
  if (!m) return [];
  return [...m.roster.map((r) => r.roomName), ...m.waiting.map((w) => w.roomName)];
}

export async function poll(f: () => unknown, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (f()) return;
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Records uncaught exceptions and unhandled rejections while a hostile test runs. */
export function watchProcess(): { errors: unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onError = (err: unknown) => errors.push(err);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    errors,
    stop() {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}

/**
 * One stage per test file: rooms with these names, the first leading a meeting the others joined,
 * and a process watch; torn down after the file. Read `stage`, `rooms` and `watch` inside tests.
 */
export function meetingForFile(names: string[]): {
  stage: Stage;
  rooms: Room[];
  watch: ReturnType<typeof watchProcess>;
} {
  const set = { stage: undefined as unknown as Stage, rooms: [] as Room[], watch: watchProcess() };
  beforeAll(async () => {
    set.stage = await new Stage().start();
    for (const name of names) set.rooms.push(await set.stage.room(name));
    const [leader, ...others] = set.rooms;
    await set.stage.meeting(leader as Room, others);
  });
  afterAll(async () => {
    set.watch.stop();
    await set.stage.close();
  });
  return set;
}
