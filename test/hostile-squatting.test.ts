// Attack 7 of issue 9, squatting: after a relay restart an authenticated device tries to claim the
// meeting id before its leader is back, and an absent member's participant id before that member is
// back. The hostile relay (in front of a real relay, restarted in-process with its state dir) keeps
// the rightful rooms away long enough for the squatter to try. Both claims are refused with
// 'id-bound'; the rightful rooms resume with the same ids and the same security code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { squat } from './adversary/identities.js';
import { currentEpoch, poll, type Room, sending, Stage, wallNames, watchProcess } from './adversary/rooms.js';

let stage: Stage;
let a: Room;
let b: Room;
const watch = watchProcess();

beforeAll(async () => {
  stage = await new Stage({ persistIds: true }).start();
  a = await stage.room('Boardroom');
  b = await stage.room('Huddle');
});

afterAll(async () => {
  watch.stop();
  await stage.close();
});

describe('squatting after a relay restart (attack 7)', () => {
  it('a squatter is refused the meeting id and an absent member’s participant id; the rightful rooms resume', async () => {
    const meetingId = await stage.meeting(a, [b]);
    const code = a.state.get().meeting?.securityCode;
    const aId = a.client.participantId ?? '';
    const bId = b.client.participantId ?? '';
    const squatter = await issueDevelopmentDevice(stage.ca, { roomName: 'Squat' });
    // The rightful rooms are kept away (their connections cut at authentication) until released.
    const away = new Set(['Boardroom', 'Huddle']);
    stage.hostile.use((f) =>
      f.direction === 'to-relay' && f.message?.type === 'auth' && away.has(f.link.roomName ?? '')
        ? 'close'
        : undefined,
    );
    await stage.restartRelay();
    await poll(() => !a.state.get().relay.connected && !b.state.get().relay.connected, 5000, 'rooms cut off');

    expect(await squat(stage.relay.url, squatter, { meetingId, as: 'leader' })).toBe('id-bound');
    expect(await squat(stage.relay.url, squatter, { meetingId, participantId: aId, as: 'leader' })).toBe(
      'id-bound',
    );

    away.delete('Boardroom');
    await poll(() => stage.relay.registry.meetingCount() === 1, 10_000, 'the leader resumes its meeting');
    expect(await squat(stage.relay.url, squatter, { meetingId, participantId: bId, as: 'participant' })).toBe(
      'id-bound',
    );

    away.delete('Huddle');
    await poll(
      () => b.state.get().meeting?.status === 'active' && sending(b) && currentEpoch(b) === currentEpoch(a),
      15_000,
      'the member resumes under the leader’s key',
    );
    expect(b.client.participantId).toBe(bId);
    expect(a.client.meetingId).toBe(meetingId);
    expect(b.state.get().meeting?.securityCode).toBe(code);
    expect(a.state.get().meeting?.securityCode).toBe(code);
    for (const r of [a, b]) for (const s of r.states) expect(wallNames(s)).not.toContain('Squat');
    expect(
      a.state
        .get()
        .meeting?.roster.map((r) => r.roomName)
        .sort(),
    ).toEqual(['Boardroom', 'Huddle']);
    expect(watch.errors).toEqual([]);
  });
});
