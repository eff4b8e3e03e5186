// Attack 1 of issue 9, ghost admission: the relay makes its own CA, issues itself "Room C / Example
// Corp" and posts it as a waiting participant with a validly signed key binding (the relay trusts its
// own CA, so the ghost passes relay authentication). The leading room must never show it, never
// admit it, never give it a key. Variant: a joining room is led by a room from a foreign CA.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateAuthority } from '../src/pki/index.js';
import { foreignCa, forgeRoom, RawDevice } from './adversary/identities.js';
import { eventsOf, poll, sleep, Stage, wallNames, watchProcess } from './adversary/rooms.js';

let stage: Stage;
let evil: CertificateAuthority;
const watch = watchProcess();

beforeAll(async () => {
  evil = await foreignCa('Example Corp');
  stage = await new Stage().start({ relayTrusts: [evil] });
});

afterAll(async () => {
  watch.stop();
  await stage.close();
});

const ghostly = (names: string[]) => names.some((n) => n === 'Room C' || n.includes('Example'));

describe('ghost admission (attack 1)', () => {
  it('a relay-made "Room C / Example Corp" with a validly signed binding is never shown, admitted or keyed', async () => {
    const a = await stage.room('Boardroom');
    const b = await stage.room('Huddle');
    const { meetingId } = await a.client.startMeeting();
    const ghost = await RawDevice.connect(stage.relay.url, await forgeRoom(evil));
    const ghostId = await ghost.joinWithBinding(meetingId);
    // The honest joiner is the control: the same path shows and admits a verified room.
    await b.client.joinMeeting(meetingId);
    const bId = b.client.participantId ?? '';
    await poll(
      () => a.state.get().meeting?.waiting.some((w) => w.participantId === bId),
      10_000,
      'B waiting',
    );
    await poll(() => eventsOf(a, 'identity-refused').length > 0, 5000, 'identity-refused for the ghost');
    expect(
      eventsOf(a, 'identity-refused').map((e) => (e.event as { participantId: string }).participantId),
    ).toContain(ghostId);
    // Someone taps Admit anyway (a stale screen, a scripted kiosk): nothing reaches the ghost.
    await a.client.admit(ghostId).catch(() => undefined);
    await a.client.admit(bId);
    await poll(() => b.state.get().meeting?.securityCode !== undefined, 10_000, 'B keyed');
    // It posts its binding again after being "admitted", as a resuming joiner would.
    ghost.session &&
      ghost.connection.send({ type: 'e2ee', payload: ghost.session.bindingMessage() as never });
    await sleep(1500);
    expect(ghost.keyed).toBe(false);
    expect(ghost.events.map((e) => e.type)).not.toContain('security-code');
    // Never on any wall at any moment, and the E2EE roster is exactly the two honest rooms.
    for (const r of [a, b]) for (const s of r.states) expect(ghostly(wallNames(s))).toBe(false);
    expect(
      a.state
        .get()
        .meeting?.roster.map((r) => r.roomName)
        .sort(),
    ).toEqual(['Boardroom', 'Huddle']);
    expect(b.state.get().meeting?.securityCode).toBe(a.state.get().meeting?.securityCode);
    ghost.close();
    await b.client.leaveMeeting();
    await a.client.leaveMeeting();
  });

  it('a joining room led by a room from a foreign CA never shows it as the leader and gets no key', async () => {
    // The relay's own "Room C" leads, with a real meeting client that trusts both CAs (it admits anyone).
    const fake = await stage.room('Room C', {
      device: await forgeRoom(evil),
      orgCaPem: evil.certPem,
      partnerCaPems: [stage.ca.certPem],
    });
    const b = await stage.room('Focus');
    const { meetingId } = await fake.client.startMeeting();
    await b.client.joinMeeting(meetingId);
    const bId = b.client.participantId ?? '';
    await poll(
      () => fake.state.get().meeting?.waiting.some((w) => w.participantId === bId),
      10_000,
      'B waiting',
    );
    await fake.client.admit(bId);
    // The fake leader keys B as far as it can; B must refuse the chain at the creator's add entry.
    await poll(() => eventsOf(b, 'identity-refused').length > 0, 8000, 'B refuses the foreign leader');
    await sleep(1000);
    expect(b.keys).toHaveLength(0);
    expect(b.state.get().meeting?.securityCode).toBeUndefined();
    for (const s of b.states) {
      expect(ghostly(wallNames(s))).toBe(false);
      expect(s.meeting?.leader?.roomName).not.toBe('Room C');
    }
    expect(watch.errors).toEqual([]);
  });
});
