// npm run bench:rekey — what a rekey costs.
// leader_ms[N]: the leader produces a new epoch for a meeting of N participants besides itself:
//   a fresh meeting key wrapped for each of them (HKDF + XChaCha20-Poly1305, the X25519 result being
//   cached per participant), every message serialised to JSON, then their N acknowledgements and the
//   signed heartbeat that certifies the epoch. Median over rounds.
// participant_ms: one participant of the 100-participant meeting handles its wrapped key (unwrap,
//   ack) and the heartbeat (verify, switch, derive the SFrame keys of all 100 senders). Median.
// Beside it, one X25519 agreement and one Ed25519 sign/verify on node:crypto vs @noble/curves, same run.
// Last line: {"bench":"rekey","leader_ms":{"2":..,"10":..,"25":..,"100":..},"participant_ms":..}

import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import {
  type E2eeMessage,
  EphemeralKeyPair,
  IdentityKeyPair,
  type LeaderSession,
  parseE2eeMessage,
  type ParticipantSession,
  SimulatedMeeting,
  verifyEd25519,
} from '../../src/core/e2ee/index.js';

const SIZES = [2, 10, 25, 100] as const;
const ROUNDS = Number(process.env.REKEY_BENCH_ROUNDS ?? 25);
const WARMUP = 3;

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

function meetingOf(n: number): SimulatedMeeting {
  const m = new SimulatedMeeting({ meetingId: `bench-${n}`, leaderId: 'leader' });
  const ids = Array.from({ length: n }, (_, i) => `room-${i}`);
  for (const id of ids) m.join(id);
  m.admit(ids);
  return m;
}

function ackFrom(leader: LeaderSession, from: string, epoch: number): E2eeMessage {
  return { v: 1, type: 'e2ee.ack', meetingId: leader.state.meetingId, from, to: leader.participantId, epoch };
}

/** One leader rekey with every ack; returns the leader's time and the messages for `watcher`. */
function leaderRekey(m: SimulatedMeeting, watcher: string): { time: number; forWatcher: string[] } {
  const leader = m.leader;
  const start = process.hrtime.bigint();
  const out = leader.rekey();
  const wire = out.outgoing.map((message) => JSON.stringify(message));
  const epoch = leader.state.keys.highestEpoch;
  for (const id of leader.members) {
    if (id === leader.participantId) continue;
    const certified = leader.handle(ackFrom(leader, id, epoch));
    for (const message of certified.outgoing) wire.push(JSON.stringify(message));
  }
  const time = ms(start);
  if (leader.epoch !== epoch) throw new Error('epoch was not certified');
  const forWatcher = wire.filter((text) => {
    const message = JSON.parse(text) as E2eeMessage;
    return message.type === 'e2ee.heartbeat' || message.to === watcher;
  });
  return { time, forWatcher };
}

function participantHandles(p: ParticipantSession, texts: string[]): number {
  const messages = texts.map(parseE2eeMessage);
  const start = process.hrtime.bigint();
  for (const message of messages) {
    const out = p.handle(message);
    const refused = out.events.find((e) => e.type === 'rejected');
    if (refused) throw new Error(`participant refused: ${JSON.stringify(refused)}`);
  }
  return ms(start);
}

function perOp(count: number, op: () => void): number {
  for (let i = 0; i < Math.min(5, count); i++) op();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) op();
  return ms(start) / count;
}

function primitiveCosts() {
  const a = EphemeralKeyPair.generate();
  const b = EphemeralKeyPair.generate();
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
  return {
    x25519: {
      node: perOp(400, () => diffieHellman({ privateKey: nodeA.privateKey, publicKey: nodeB.publicKey })),
      noble: perOp(40, () => x25519.getSharedSecret(nobleA, nobleB)),
    },
    x25519_raw_peer: {
      // what a first contact costs here: importing the peer's raw 32-byte key, then agreeing
      node: perOp(400, () => a.agree(b.publicKey)),
      noble: perOp(40, () => x25519.getSharedSecret(nobleA, nobleB)),
    },
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

function main(): void {
  console.log(
    `rekey benchmark: median of ${ROUNDS} rounds after ${WARMUP} warm-up (shared machine: figures are noisy)`,
  );
  const leaderMs: Record<string, number> = {};
  let participantMs = 0;
  for (const n of SIZES) {
    const m = meetingOf(n);
    const watcherId = 'room-0';
    const watcher = m.participants.get(watcherId)!;
    const leaderTimes: number[] = [];
    const participantTimes: number[] = [];
    for (let round = 0; round < WARMUP + ROUNDS; round++) {
      const { time, forWatcher } = leaderRekey(m, watcherId);
      const pTime = participantHandles(watcher, forWatcher);
      if (watcher.epoch !== m.leader.epoch) throw new Error('participant did not switch');
      if (round >= WARMUP) {
        leaderTimes.push(time);
        participantTimes.push(pTime);
      }
    }
    leaderMs[n] = round3(median(leaderTimes));
    const pm = round3(median(participantTimes));
    if (n === 100) participantMs = pm;
    console.log(
      `  N=${String(n).padStart(3)}: leader ${leaderMs[n]!.toFixed(3)} ms per epoch ` +
        `(${(leaderMs[n]! / n).toFixed(3)} ms per participant); one participant unwrap+verify ${pm.toFixed(3)} ms`,
    );
  }
  const costs = primitiveCosts();
  console.log('one operation, node:crypto vs @noble/curves (ms):');
  for (const [name, c] of Object.entries(costs)) {
    console.log(
      `  ${name.padEnd(15)} node ${c.node.toFixed(4)}  noble ${c.noble.toFixed(4)}  (noble ${(c.noble / c.node).toFixed(0)}x slower)`,
    );
  }
  console.log(`target: 100 participants under 50 ms — ${leaderMs[100]! < 50 ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify({ bench: 'rekey', leader_ms: leaderMs, participant_ms: participantMs }));
}

main();
