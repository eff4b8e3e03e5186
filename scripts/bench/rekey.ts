// npm run bench:rekey — what a rekey costs, in protocol v2 (hybrid X25519 + ML-KEM-768 wrap; the
// default) and, for comparison, v1 (X25519 only).
// leader_ms[N] (v2; leader_ms_v1[N] for v1): the leader produces a new epoch after a participant leaves a meeting of N
//   participants besides itself: the signed `leave` list entry, a fresh meeting key wrapped for each
//   remaining participant (HKDF + XChaCha20-Poly1305; the X25519 result is cached per participant),
//   every message serialised to JSON, the participants' acknowledgements and the signed heartbeat
//   that certifies the epoch. (The periodic rekey — no list entry — is printed beside it.) Median.
// participant_ms: one participant of the 100-participant meeting handles that epoch: verifies the
//   list entry, unwraps its key, acks, verifies the heartbeat, switches and derives the SFrame keys of
//   all senders. Median.
//   In v2 a rekey does no ML-KEM work: the leader encapsulated once per member when it admitted it
//   (or took over) and repeats that ciphertext; a member decapsulated once and cached the secret.
// admission_ms (v1/v2): the leader admits one newcomer into the 100-participant meeting and certifies
//   the epoch (v2: + one ML-KEM encapsulation); newcomer_ms: the newcomer verifies the whole chain,
//   unwraps (v2: + one decapsulation) and switches.
// handover_ms (v1/v2): a member of the 100-participant meeting takes leadership over: a fresh
//   epoch wrapped for the 99 others (v2: one encapsulation each — the dominant cost).
// Beside them, one X25519 agreement and one Ed25519 sign/verify, node:crypto vs @noble/curves, and
// ML-KEM-768 key generation / encapsulation / decapsulation (@noble/post-quantum).
// Last line: {"bench":"rekey","protocol":2,"leader_ms":{"2":..,"10":..,"25":..,"100":..},"participant_ms":..,
//   "leader_ms_v1":{..},"participant_ms_v1":..,"admission_ms":{"v1":..,"v2":..},"newcomer_ms":{..},"handover_ms":{..}}

import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import {
  type E2eeMessage,
  EphemeralKeyPair,
  IdentityKeyPair,
  KemKeyPair,
  kemEncapsulate,
  LeaderSession,
  ParticipantSession,
  type ProtocolVersion,
  parseE2eeMessage,
  type SessionOutput,
  secureRandom,
  verifyEd25519,
} from '../../src/core/e2ee/index.js';

const SIZES = [2, 10, 25, 100] as const;
const ROUNDS = Number(process.env.REKEY_BENCH_ROUNDS ?? 25);
const WARMUP = 3;
const HANDOVER_ROUNDS = Number(process.env.REKEY_BENCH_HANDOVERS ?? 5);
const WATCHER = 'watcher';

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * A leader with N participants. Only `watcher` is a full participant that receives its messages;
 * the others exist to post real bindings, and their acknowledgements are made up (the leader
 * cannot tell), so the timings are the leader's own work.
 */
class Meeting {
  readonly leader: LeaderSession;
  readonly watcher: ParticipantSession;
  #next = 0;

  constructor(
    readonly n: number,
    readonly version: ProtocolVersion = 2,
  ) {
    this.leader = LeaderSession.create({
      meetingId: `bench-${n}`,
      participantId: 'leader',
      identity: IdentityKeyPair.generate(),
      protocolVersion: version,
      minProtocolVersion: version,
    }).session;
    this.watcher = this.#participant(WATCHER);
    const ids = [WATCHER];
    this.leader.handle(this.watcher.bindingMessage());
    for (let i = 1; i < n; i++) ids.push(this.#join());
    this.deliver(this.certify(this.leader.admit(ids)).forWatcher);
  }

  #participant(id: string): ParticipantSession {
    return new ParticipantSession({
      meetingId: `bench-${this.n}`,
      participantId: id,
      identity: IdentityKeyPair.generate(),
      protocolVersion: this.version,
      minProtocolVersion: this.version,
    });
  }

  #join(): string {
    const id = `room-${this.#next++}`;
    this.leader.handle(this.#participant(id).bindingMessage());
    return id;
  }

  /** A full newcomer is admitted: the leader's time, then the newcomer's (whole chain, unwrap, switch). */
  admitNewcomer(): { leaderMs: number; newcomerMs: number } {
    const id = `newcomer-${this.#next++}`;
    const newcomer = this.#participant(id);
    this.leader.handle(newcomer.bindingMessage());
    const start = process.hrtime.bigint();
    const out = this.leader.admit([id]);
    const wire = out.outgoing.map((message) => JSON.stringify(message));
    const { forWatcher } = this.certify({ outgoing: [], events: [] }, wire);
    const leaderMs = ms(start);
    this.deliver(forWatcher.filter((t) => (JSON.parse(t) as E2eeMessage).to !== id));
    const mine = wire
      .concat(forWatcher)
      .map(parseE2eeMessage)
      .filter((m) => m.to === id || (m.to === undefined && m.type === 'e2ee.heartbeat'));
    const begin = process.hrtime.bigint();
    for (const message of mine) newcomer.handle(message);
    const newcomerMs = ms(begin);
    if (newcomer.epoch !== this.leader.epoch) throw new Error('newcomer did not switch');
    return { leaderMs, newcomerMs };
  }

  /** The watcher takes leadership over: the new leader's time for its first epoch (all wraps). */
  handOver(): number {
    const { output } = this.leader.handOver(WATCHER);
    for (const message of output.outgoing) {
      if (message.to === undefined || message.to === WATCHER)
        this.watcher.handle(parseE2eeMessage(JSON.stringify(message)));
    }
    const start = process.hrtime.bigint();
    const taken = LeaderSession.takeOver(this.watcher);
    for (const message of taken.output.outgoing) JSON.stringify(message);
    return ms(start);
  }

  /** Serialise the leader's output, acknowledge for everyone, serialise the heartbeat. */
  certify(
    out: SessionOutput,
    wire = out.outgoing.map((message) => JSON.stringify(message)),
  ): { forWatcher: string[] } {
    const epoch = this.leader.state.keys.highestEpoch;
    for (const id of this.leader.members) {
      if (id === this.leader.participantId) continue;
      const ack: E2eeMessage = {
        v: this.version,
        type: 'e2ee.ack',
        meetingId: `bench-${this.n}`,
        from: id,
        to: 'leader',
        epoch,
      };
      for (const message of this.leader.handle(ack).outgoing) wire.push(JSON.stringify(message));
    }
    if (this.leader.epoch !== epoch) throw new Error('epoch was not certified');
    return {
      forWatcher: wire.filter((text) => {
        const message = JSON.parse(text) as E2eeMessage;
        return message.to === undefined || message.to === WATCHER;
      }),
    };
  }

  /** Leave of one participant: the leader's time for the whole epoch. Then someone joins (untimed). */
  leave(): { leaderMs: number; forWatcher: string[] } {
    const victim = this.leader.members.find((id) => id !== 'leader' && id !== WATCHER)!;
    const start = process.hrtime.bigint();
    const { forWatcher } = this.certify(this.leader.remove(victim));
    const leaderMs = ms(start);
    return { leaderMs, forWatcher };
  }

  rejoin(): void {
    this.deliver(this.certify(this.leader.admit([this.#join()])).forWatcher);
  }

  periodic(): { leaderMs: number; forWatcher: string[] } {
    const start = process.hrtime.bigint();
    const { forWatcher } = this.certify(this.leader.rekey());
    return { leaderMs: ms(start), forWatcher };
  }

  /** The watcher handles its messages (parsed as from the wire beforehand); returns its time. */
  deliver(texts: string[]): number {
    const messages = texts.map(parseE2eeMessage);
    const start = process.hrtime.bigint();
    for (const message of messages) {
      const out = this.watcher.handle(message);
      const refused = out.events.find((e) => e.type === 'rejected');
      if (refused) throw new Error(`participant refused: ${JSON.stringify(refused)}`);
    }
    const time = ms(start);
    if (this.watcher.epoch !== this.leader.epoch) throw new Error('participant did not switch');
    return time;
  }
}

function perOp(count: number, op: () => void): number {
  for (let i = 0; i < Math.min(5, count); i++) op();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) op();
  return ms(start) / count;
}

function primitiveCosts() {
  const ours = [EphemeralKeyPair.generate(), EphemeralKeyPair.generate()] as const;
  const nodeA = generateKeyPairSync('x25519');
  const nodeB = generateKeyPairSync('x25519');
  const identity = IdentityKeyPair.generate();
  const message = new Uint8Array(200);
  const signature = identity.sign(message);
  const nobleA = x25519.utils.randomSecretKey();
  const nobleB = x25519.getPublicKey(x25519.utils.randomSecretKey());
  const nobleSecret = ed25519.utils.randomSecretKey();
  const noblePublic = ed25519.getPublicKey(nobleSecret);
  const nobleSig = ed25519.sign(message, nobleSecret);
  const nobleX = perOp(40, () => x25519.getSharedSecret(nobleA, nobleB));
  const kem = KemKeyPair.generate(secureRandom);
  const encapsulated = kemEncapsulate(kem.publicKey, secureRandom);
  return {
    mlkem768_keygen: { node: Number.NaN, noble: perOp(40, () => KemKeyPair.generate(secureRandom)) },
    mlkem768_encaps: {
      node: Number.NaN,
      noble: perOp(40, () => kemEncapsulate(kem.publicKey, secureRandom)),
    },
    mlkem768_decaps: { node: Number.NaN, noble: perOp(40, () => kem.decapsulate(encapsulated.ciphertext)) },
    x25519: {
      node: perOp(400, () => diffieHellman({ privateKey: nodeA.privateKey, publicKey: nodeB.publicKey })),
      noble: nobleX,
    },
    // what a first contact costs here: importing the peer's raw 32-byte key, then agreeing
    x25519_raw_peer: { node: perOp(400, () => ours[0].agree(ours[1].publicKey)), noble: nobleX },
    ed25519_sign: {
      node: perOp(400, () => identity.sign(message)),
      noble: perOp(40, () => ed25519.sign(message, nobleSecret)),
    },
    ed25519_verify: {
      node: perOp(400, () => verifyEd25519(identity.publicKey, message, signature)),
      noble: perOp(40, () => ed25519.verify(nobleSig, message, noblePublic)),
    },
  };
}

function rekeyCosts(version: ProtocolVersion): { leaderMs: Record<string, number>; participantMs: number } {
  const leaderMs: Record<string, number> = {};
  let participantMs = 0;
  for (const n of SIZES) {
    const meeting = new Meeting(n, version);
    const leave: number[] = [];
    const periodic: number[] = [];
    const participant: number[] = [];
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      const left = meeting.leave();
      const pTime = meeting.deliver(left.forWatcher);
      meeting.rejoin();
      const rekeyed = meeting.periodic();
      meeting.deliver(rekeyed.forWatcher);
      if (round >= WARMUP) {
        leave.push(left.leaderMs);
        periodic.push(rekeyed.leaderMs);
        participant.push(pTime);
      }
    }
    leaderMs[n] = round3(median(leave));
    const pm = round3(median(participant));
    if (n === 100) participantMs = pm;
    console.log(
      `  v${version} N=${String(n).padStart(3)}: leader, epoch after a leave ${leaderMs[n]!.toFixed(3)} ms ` +
        `(${(leaderMs[n]! / n).toFixed(3)} ms per participant), periodic rekey ${median(periodic).toFixed(3)} ms; ` +
        `one participant ${pm.toFixed(3)} ms`,
    );
  }
  return { leaderMs, participantMs };
}

/** Admission of one newcomer and a hand-over, in the 100-participant meeting (medians). */
function membershipCosts(version: ProtocolVersion): {
  admission: number;
  newcomer: number;
  handOver: number;
} {
  const meeting = new Meeting(100, version);
  const admission: number[] = [];
  const newcomer: number[] = [];
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const costs = meeting.admitNewcomer();
    meeting.deliver(meeting.leave().forWatcher);
    if (round >= WARMUP) {
      admission.push(costs.leaderMs);
      newcomer.push(costs.newcomerMs);
    }
  }
  const handOver: number[] = [];
  for (let round = 0; round < HANDOVER_ROUNDS; round++) handOver.push(new Meeting(100, version).handOver());
  const result = {
    admission: round3(median(admission)),
    newcomer: round3(median(newcomer)),
    handOver: round3(median(handOver)),
  };
  console.log(
    `  v${version} N=100: admit one newcomer ${result.admission.toFixed(3)} ms (leader), ` +
      `${result.newcomer.toFixed(3)} ms (newcomer: chain, unwrap, switch); hand-over ${result.handOver.toFixed(3)} ms (new leader)`,
  );
  return result;
}

function main(): void {
  console.log(
    `rekey benchmark: median of ${ROUNDS} rounds after ${WARMUP} warm-up (shared machine: figures are noisy)`,
  );
  const v2 = rekeyCosts(2);
  const v1 = rekeyCosts(1);
  const m2 = membershipCosts(2);
  const m1 = membershipCosts(1);
  const costs = primitiveCosts();
  console.log('one operation, node:crypto vs @noble (ms):');
  for (const [name, c] of Object.entries(costs)) {
    console.log(
      Number.isNaN(c.node)
        ? `  ${name.padEnd(15)} noble ${c.noble.toFixed(4)}  (@noble/post-quantum; node:crypto has no ML-KEM in Node 20)`
        : `  ${name.padEnd(15)} node ${c.node.toFixed(4)}  noble ${c.noble.toFixed(4)}  (noble ${(c.noble / c.node).toFixed(0)}x slower)`,
    );
  }
  console.log(`target: 100 participants under 50 ms (v2) — ${v2.leaderMs[100]! < 50 ? 'met' : 'NOT met'}`);
  console.log(
    JSON.stringify({
      bench: 'rekey',
      protocol: 2,
      leader_ms: v2.leaderMs,
      participant_ms: v2.participantMs,
      leader_ms_v1: v1.leaderMs,
      participant_ms_v1: v1.participantMs,
      admission_ms: { v1: m1.admission, v2: m2.admission },
      newcomer_ms: { v1: m1.newcomer, v2: m2.newcomer },
      handover_ms: { v1: m1.handOver, v2: m2.handOver },
    }),
  );
}

main();
