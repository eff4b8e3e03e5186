// Protocol v2 against a malicious relay, end to end (real relay, real daemons, docs/protocol.md §12.5):
// the relay strips the ML-KEM ciphertext from the wrapped keys of one room, and strips a joiner's v2
// binding down to v1. Neither works: the room accepts no key without its ciphertext (and recovers
// once the relay relents), the leader never shows or admits the stripped joiner.
import { beforeAll, describe, expect, it } from 'vitest';
import { e2eePayload, type Frame } from './adversary/hostile-relay.js';
import {
  currentEpoch,
  eventsOf,
  poll,
  type Room,
  sending,
  sleep,
  type Stage,
  meetingForFile,
} from './adversary/rooms.js';

const set = meetingForFile(['Boardroom', 'Huddle', 'Lab']);
let stage: Stage;
let a: Room;
let b: Room;
let c: Room;
beforeAll(() => {
  stage = set.stage;
  [a, b, c] = set.rooms as [Room, Room, Room];
});

type Json = Record<string, unknown>;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const to = (name: string) => (f: Frame) => f.direction === 'to-device' && f.link === stage.hostile.link(name);

describe('a relay downgrading protocol v2 (end to end)', () => {
  it('the meeting runs v2: every wrapped key carries an ML-KEM ciphertext', () => {
    const keys = stage.hostile.seen.filter((f) => to('Huddle')(f) && e2eePayload(f, 'e2ee.key'));
    expect(keys.length).toBeGreaterThan(0);
    for (const f of keys) expect(typeof (e2eePayload(f, 'e2ee.key') as Json).kemCiphertext).toBe('string');
  });

  it('keys stripped of their ML-KEM ciphertext are refused; the room never switches to them', async () => {
    const before = currentEpoch(b);
    let stripped = 0;
    const stop = stage.hostile.use((f) => {
      const payload = to('Huddle')(f) ? (e2eePayload(f, 'e2ee.key') as Json | undefined) : undefined;
      if (!payload) return undefined;
      const message = clone(f.message) as { payload: Json };
      delete message.payload.kemCiphertext;
      stripped++;
      return { replace: [message] };
    });
    await c.client.leaveMeeting(); // the leader rekeys for A and B
    await poll(() => stripped > 0, 5000, 'a stripped key reached Huddle');
    await poll(
      () => eventsOf(b, 'rejected').some((e) => (e.event as { code?: string }).code === 'downgrade'),
      5000,
      'Huddle refuses the stripped key as a downgrade',
    );
    await sleep(2500);
    // Never keyed with an epoch it could only have opened with X25519 alone; it stopped sending.
    expect(b.keys.every((k) => k.event.epoch <= before)).toBe(true);
    expect(currentEpoch(a)).toBeGreaterThan(before);
    expect(sending(b)).toBe(false);
    // The relay relents: B resyncs and gets the new epoch, hybrid-wrapped.
    stop();
    await poll(() => sending(b) && currentEpoch(b) === currentEpoch(a), 15_000, 'Huddle recovers');
  });

  it('a joiner whose v2 binding the relay strips to v1 is refused, never shown, never admitted', async () => {
    const joiner = await stage.room('Annex');
    let rewritten = 0;
    stage.hostile.use((f) => {
      if (f.direction !== 'to-relay' || f.link !== stage.hostile.link('Annex')) return undefined;
      const payload = e2eePayload(f, 'e2ee.binding') as { binding: Json } | undefined;
      if (!payload) return undefined;
      const message = clone(f.message) as { payload: { v: number; binding: Json } };
      delete message.payload.binding.kemKey;
      delete message.payload.binding.versions;
      message.payload.v = 1;
      rewritten++;
      return { replace: [message] };
    });
    const meetingId = a.state.get().meeting?.meetingId;
    expect(meetingId).toBeDefined();
    await joiner.client.joinMeeting(meetingId!);
    const pid = joiner.client.participantId ?? '';
    await poll(() => rewritten > 0, 5000, 'the binding went through the relay');
    await poll(
      () =>
        eventsOf(a, 'rejected').some((e) => {
          const event = e.event as { code?: string; from?: string };
          return event.code === 'downgrade' && event.from === pid;
        }),
      5000,
      'the leader refuses the stripped binding as a downgrade',
    );
    await sleep(500);
    expect(eventsOf(a, 'admission-request').filter((e) => JSON.stringify(e.event).includes(pid))).toEqual([]);
    expect(eventsOf(a, 'downgrade')).toEqual([]); // not genuinely signed as v1: no one offered v1
    for (const s of a.states) {
      expect(s.meeting?.waiting.some((w) => w.participantId === pid) ?? false).toBe(false);
    }
    expect(joiner.keys).toEqual([]);
    expect(set.watch.errors).toEqual([]);
  });
});
