// `sealroom simulate [--participants N] [--rounds R] [--seed S]`: an in-process E2EE meeting of
// simulated participants. It prints each key epoch and why it happened (batched joins, a leave, the
// periodic rekey, a leader hand-over), the security code every participant computed (all equal), and
// proves the keys work by encrypting one SFrame per sender per epoch that every other member
// decrypts — and that a departed participant cannot. Exit 1 if any check fails.
// The E2EE core is imported only when the command runs.

import { createHash } from 'node:crypto';
import type { Command, OptionValues } from 'commander';
import type { RandomSource, SessionEvent, SimulatedMeeting } from '../core/e2ee/index.js';

type KeysEvent = Extract<SessionEvent, { type: 'keys' }>;

export interface SimulateOptions {
  participants: number;
  rounds: number;
  seed?: string;
  log?: (line: string) => void;
}

function seeded(seed: string): RandomSource {
  let counter = 0;
  return (length) => {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 32) {
      const block = createHash('sha256').update(`sealroom-simulate/${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, length - offset)), offset);
    }
    return out;
  };
}

/** Runs the simulation; returns the number of failed checks (0 = everything agreed and decrypted). */
export async function runSimulation(options: SimulateOptions): Promise<number> {
  const e2ee = await import('../core/e2ee/index.js');
  const sframe = await import('../core/sframe/index.js');
  const log = options.log ?? ((line: string) => console.log(line));
  let failures = 0;
  const fail = (what: string) => {
    failures++;
    log(`  ✗ ${what}`);
  };

  let now = Date.UTC(2026, 0, 1, 9, 0, 0);
  const m: SimulatedMeeting = new e2ee.SimulatedMeeting({
    meetingId: 'simulated-meeting',
    leaderId: 'room-1',
    clock: () => now,
    ...(options.seed !== undefined ? { random: seeded(options.seed) } : {}),
  });
  let nextRoom = 2;
  const departed = new Map<string, KeysEvent | undefined>();

  const joinBatch = (count: number): string[] => {
    const ids = Array.from({ length: count }, () => `room-${nextRoom++}`);
    for (const id of ids) m.join(id);
    m.admit(ids);
    return ids;
  };

  const listed = (ids: string[]): string =>
    ids.length <= 12 ? ids.join(', ') : `${ids.slice(0, 5).join(', ')}, … ${ids.slice(-3).join(', ')}`;

  const report = (reason: string) => {
    const leader = m.leader;
    log(`epoch ${leader.epoch} — ${reason}`);
    log(`  leader ${leader.participantId}; members (${leader.members.length}): ${listed(leader.members)}`);
    const codes = m.securityCodes();
    if (codes.size <= 12) {
      for (const [id, code] of codes) log(`  ${id.padEnd(9)} security code ${code ?? '(none)'}`);
    } else {
      const byCode = new Map<string, string[]>();
      for (const [id, code] of codes)
        byCode.set(code ?? '(none)', [...(byCode.get(code ?? '(none)') ?? []), id]);
      for (const [code, ids] of byCode)
        log(`  security code ${code} computed by ${ids.length}: ${listed(ids)}`);
    }
    const distinct = new Set(codes.values());
    if (distinct.size !== 1 || distinct.has(undefined)) fail('participants disagree on the security code');
    else log(`  all ${codes.size} participants show the same security code`);
    checkFrames();
    for (const [id, events] of m.events) {
      for (const e of events) {
        if (e.type === 'rejected' && e.code !== 'locked') fail(`${id} rejected a message: ${e.reason}`);
      }
    }
    m.events.clear(); // each epoch's report looks at that epoch's events only
  };

  // One receiver per member (all its receive keys installed once), then every sender's frame.
  const checkFrames = () => {
    const ids = m.leader.members;
    const frames: { sender: string; frame: Uint8Array }[] = [];
    for (const sender of ids) {
      const keys = keysOf(sender);
      if (!keys || keys.epoch !== m.leader.epoch) {
        fail(`${sender} has not switched to epoch ${m.leader.epoch}`);
        continue;
      }
      if (!keys.sending || keys.meetingId !== m.meetingId) {
        fail(`${sender} may not send (sending: ${keys.sending}) in ${keys.meetingId}`);
        continue;
      }
      const text = new TextEncoder().encode(`hello from ${sender} in epoch ${keys.epoch}`);
      frames.push({
        sender,
        frame: new sframe.SFrameSender({ kid: keys.sendKid, baseKey: keys.sendKey }).encrypt(text),
      });
    }
    let decrypted = 0;
    for (const receiver of ids) {
      const open = receiverFor(keysOf(receiver));
      for (const { sender, frame } of frames) {
        if (sender === receiver) continue;
        if (open(frame)) decrypted++;
        else fail(`${receiver} could not decrypt ${sender}'s frame`);
      }
    }
    let refusedForDeparted = 0;
    for (const [gone, held] of departed) {
      const open = receiverFor(held);
      for (const { sender, frame } of frames) {
        if (open(frame)) fail(`departed ${gone} decrypted ${sender}'s frame`);
        else refusedForDeparted++;
      }
    }
    const kid = keysOf(m.leader.participantId)?.sendKid;
    log(
      `  SFrame (suite 0x0005, KID of ${m.leader.participantId} = 0x${kid?.toString(16)}): ${decrypted} frames ` +
        `decrypted, one per sender for every other member` +
        (departed.size > 0 ? `; ${refusedForDeparted} refused to the ${departed.size} departed` : ''),
    );
  };

  // The latest keys event per participant (events are cleared after each report).
  const latestKeys = new Map<string, KeysEvent>();
  const keysOf = (id: string): KeysEvent | undefined => {
    const fresh = m.lastKeys(id);
    if (fresh) latestKeys.set(id, fresh);
    return latestKeys.get(id);
  };

  const receiverFor = (keys: KeysEvent | undefined) => {
    const receiver = new sframe.SFrameReceiver();
    for (const k of keys?.receiveKeys ?? []) receiver.setKey(k.kid, k.key);
    return (frame: Uint8Array): boolean => {
      try {
        receiver.decrypt(frame);
        return true;
      } catch (error) {
        if (error instanceof sframe.SFrameError) return false;
        throw error;
      }
    };
  };

  const joined = joinBatch(options.participants - 1);
  report(`meeting created by room-1; ${joined.length} joined and were admitted in one batch`);

  for (let round = 1; round <= options.rounds; round++) {
    now += 30_000;
    m.tick();
    const others = m.leader.members.filter((id) => id !== m.leader.participantId);
    switch (round % 4) {
      case 1: {
        const leaving = others.at(-1);
        if (!leaving) {
          report('nobody left to leave');
          break;
        }
        departed.set(leaving, keysOf(leaving));
        m.leave(leaving);
        report(`${leaving} left: fresh key, it holds nothing for this epoch`);
        break;
      }
      case 2: {
        const ids = joinBatch(2);
        report(`${ids.join(' and ')} joined (one batched rekey)`);
        break;
      }
      case 3:
        now += 300_000;
        m.tick();
        report('periodic rekey (5 minutes)');
        break;
      default: {
        const successor = others[0];
        if (!successor) break;
        m.handOver(successor);
        report(`leader hand-over to ${successor}: new leader, new security code`);
      }
    }
  }
  log(failures === 0 ? 'simulation ok' : `simulation FAILED: ${failures} check(s)`);
  return failures;
}

function positiveInt(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer ${min}..${max}`);
    return n;
  };
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description(
      'run an in-process E2EE meeting of simulated participants and print its key epochs and codes',
    )
    .option(
      '--participants <n>',
      'participants at the start, the leader included (2..200)',
      positiveInt('participants', 2, 200),
      4,
    )
    .option(
      '--rounds <n>',
      'membership changes after the start (leave, joins, periodic rekey, hand-over)',
      positiveInt('rounds', 0, 1000),
      4,
    )
    .option('--seed <text>', 'derive every key from this seed (reproducible output; never for real use)')
    .action(async (opts: OptionValues) => {
      const failures = await runSimulation({
        participants: opts.participants as number,
        rounds: opts.rounds as number,
        seed: opts.seed as string | undefined,
      });
      process.exitCode = failures === 0 ? 0 : 1;
    });
}
