// The web participant's E2EE worker logic (src/web/e2ee/web-meeting.ts) in Node, no browser: a `ws`
// WebSocket, a WebCrypto Ed25519 key (non-extractable), a real relay (src/relay/server.ts) behind the
// scriptable hostile relay, and rooms running the daemon's real MeetingClient (test/adversary/rooms.ts).
// It joins (never creates), is admitted by the leading room, reaches the rooms' security code and
// their keys; names come only from certificates it verified (a relay-forged roster name is never
// shown), a member whose certificate it cannot verify is refused, and no key ever reaches the page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CertificateAuthority } from '../src/pki/index.js';
import { issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import type { WebSocketLike } from '../src/web/e2ee/relay-client.js';
import { WebMeeting } from '../src/web/e2ee/web-meeting.js';
import type { E2eeToPage } from '../src/web/shared/messages.js';
import { foreignCa } from './adversary/identities.js';
import { poll, type Room, Stage, sending } from './adversary/rooms.js';
import {
  admit,
  anchors,
  expectNoKeysOnPage,
  hex,
  joinWeb,
  type WebParticipant,
  webIdentity,
} from './web-e2ee-helpers.js';

describe('the web participant E2EE worker against a real relay and rooms', () => {
  const stage = new Stage();
  let partner: CertificateAuthority;
  let roomA: Room;
  let roomB: Room;
  let meetingId: string;
  const webs: WebParticipant[] = [];

  beforeAll(async () => {
    partner = await foreignCa('Partner Org');
    await stage.start({ relayTrusts: [partner] });
    roomA = await stage.room('Boardroom', { partnerCaPems: [partner.certPem] });
    roomB = await stage.room('Huddle');
    meetingId = await stage.meeting(roomA, [roomB]);
  }, 60_000);

  afterAll(async () => {
    for (const w of webs) await w.meeting.leave();
    await stage.close();
  });

  it('joins, is admitted by the leading room, shows the same code and verified names, gets the rooms’ keys', async () => {
    const alice = await webIdentity(stage.ca, 'Alice Smith');
    const web = await joinWeb(stage.hostile.url, meetingId, alice, anchors(stage.ca.certPem));
    webs.push(web);
    expect(web.status()).toBe('waiting');
    expect(web.transform.filter((m) => m.type === 'keys')).toHaveLength(0); // nothing before admission
    await admit(roomA, web);
    await poll(() => web.status() === 'admitted', 10_000, 'admitted');
    // Room B's receive keys include our send KID (the leader rekeyed for the three of us).
    await poll(
      () => {
        const k = web.keys();
        return (
          k?.sending === true &&
          roomB.keys.at(-1)?.event.receiveKeys.some((r) => r.kid.toString() === k.sendKid)
        );
      },
      10_000,
      'keys',
    );

    // The same security code as both rooms, shown only once the leader's certificate verified here.
    const code = roomA.state.get().meeting?.securityCode;
    expect(code).toMatch(/^\d{5}( \d{5}){7}$/);
    await poll(() => web.view()?.securityCode === code, 5000, 'the security code');
    expect(roomB.state.get().meeting?.securityCode).toBe(code);

    // The verified roster: names from certificates, the leader marked, ourselves marked.
    const view = web.view()!;
    expect(view.members.map((m) => m.name)).toEqual(['Boardroom', 'Huddle', 'Alice Smith']);
    expect(view.members.find((m) => m.leader)?.name).toBe('Boardroom');
    expect(view.members.find((m) => m.self)?.participantId).toBe(web.meeting.participantId);
    expect(view.members.every((m) => m.org === 'Sealroom Demo Org')).toBe(true);
    expect(view.members.find((m) => m.self)).toMatchObject({
      kind: 'person',
      name: 'Alice Smith',
      email: 'alice@example.org',
    });
    expect(view.members.filter((m) => !m.self).every((m) => m.kind === 'room' && m.email === '')).toBe(true);
    expect(view.refused).toEqual([]);

    // The keys: our send key is what room B decrypts us with; we hold B's send key.
    await poll(
      () => {
        const k = web.keys();
        const b = roomB.keys.at(-1)?.event;
        return k && b && k.epoch === b.epoch;
      },
      10_000,
      'the same epoch',
    );
    const k = web.keys()!;
    const b = roomB.keys.at(-1)!.event;
    const ours = b.receiveKeys.find((r) => r.kid.toString() === k.sendKid);
    expect(ours && hex(ours.key)).toBe(hex(k.sendKey));
    expect(k.receiveKeys.find((r) => r.kid === b.sendKid.toString())?.key).toEqual(
      Uint8Array.from(b.sendKey),
    );
    // Pairwise frame-authentication keys agree with room B's.
    const selfIndex = view.members.find((m) => m.self)!.senderIndex;
    const bIndex = view.members.find((m) => m.name === 'Huddle')!.senderIndex;
    const mine = k.auth.find((a) => a.peerIndex === bIndex)!;
    const theirs = b.auth.find((a) => a.peerIndex === selfIndex)!;
    expect(hex(mine.send)).toBe(hex(theirs.receive));
    expect(hex(mine.receive)).toBe(hex(theirs.send));

    expectNoKeysOnPage(web);
    await poll(() => sending(roomA) && sending(roomB), 10_000, 'rooms sending');
  }, 60_000);

  it('never shows a name the relay forged in its roster, meeting reply or sharing field', async () => {
    const stop = stage.hostile.use((f) => {
      const m = f.message;
      if (f.direction !== 'to-device' || !m || (m.type !== 'roster' && m.type !== 'meeting'))
        return undefined;
      const forge = (p: Record<string, unknown>) => ({
        ...p,
        roomName: 'Mallory Forged',
        org: 'Evil Corp',
        email: 'mallory@evil.example',
      });
      if (m.type === 'meeting') return { replace: [{ ...m, leader: forge(m.leader) }] };
      const ghost = { ...forge(m.participants[0]), participantId: 'ghost-participant' };
      return {
        replace: [
          { ...m, participants: [...m.participants.map(forge), ghost], sharing: 'ghost-participant' },
        ],
      };
    });
    try {
      const bob = await webIdentity(stage.ca, 'Bob Jones');
      const web = await joinWeb(stage.hostile.url, meetingId, bob, anchors(stage.ca.certPem));
      webs.push(web);
      await admit(roomA, web);
      await poll(
        () => web.status() === 'admitted' && web.view()?.securityCode !== undefined,
        10_000,
        'admitted',
      );
      await poll(
        () => web.view()?.members.length === 4 && web.keys()?.sending === true,
        10_000,
        'four members, keys',
      );
      const shown = JSON.stringify(web.page);
      expect(shown).not.toMatch(/Mallory|Evil Corp|evil\.example|ghost-participant/);
      expect(web.view()!.members.map((m) => m.name)).toEqual([
        'Boardroom',
        'Huddle',
        'Alice Smith',
        'Bob Jones',
      ]);
      expect(web.view()!.sharer).toBeNull(); // a relay-named sharer that is no verified member
      expectNoKeysOnPage(web);
    } finally {
      stop();
    }
  }, 60_000);

  it('refuses a member whose certificate it cannot verify: never named, never admitted past it, no keys', async () => {
    // The leader trusts the partner CA; the person's page (org anchors only) does not.
    const partnerRoom = await stage.room('Partner Room', {
      device: await issueDevelopmentDevice(partner, { roomName: 'Partner Room', org: 'Partner Org' }),
      orgCaPem: partner.certPem,
      partnerCaPems: [stage.ca.certPem],
    });
    const leader = await stage.room('Annex', { partnerCaPems: [partner.certPem] });
    const otherMeeting = await stage.meeting(leader, [partnerRoom]);
    const carol = await webIdentity(stage.ca, 'Carol White');
    const web = await joinWeb(stage.hostile.url, otherMeeting, carol, anchors(stage.ca.certPem));
    webs.push(web);
    await admit(leader, web);
    const partnerId = partnerRoom.client.participantId!;
    await poll(() => web.view()?.refused.includes(partnerId), 10_000, 'the partner room refused');
    await new Promise((r) => setTimeout(r, 1500)); // resyncs come and go: still refused
    expect(web.status()).toBe('waiting');
    expect(web.view()!.members.map((m) => m.name)).toEqual(['Annex']);
    expect(JSON.stringify(web.page)).not.toContain('Partner Room');
    expect(web.transform.filter((m) => m.type === 'keys')).toHaveLength(0);
  }, 60_000);

  it('is refused by the relay with a foreign certificate, and refuses its own certificate if the anchors do not cover it', async () => {
    const foreign = await foreignCa('Example Corp');
    const mallory = await webIdentity(foreign, 'Mallory');
    // Its own anchors include the foreign CA, so it gets as far as the relay, which refuses it.
    const web = await joinWeb(stage.relay.url, meetingId, mallory, anchors(foreign.certPem));
    expect(web.status()).toBe('refused');
    expect(web.meeting.participantId).toBe('');
    // With the org's anchors it does not even connect: its certificate does not verify.
    const again = await joinWeb(stage.relay.url, meetingId, mallory, anchors(stage.ca.certPem));
    expect(again.status()).toBe('refused');
    expect(again.page.find((m) => m.type === 'status' && m.status === 'refused')).toMatchObject({
      text: expect.stringContaining('certificate'),
    });
  }, 30_000);

  it('survives whatever the relay sends: garbage, bad E2EE payloads, forged list entries, other meetings’ events', async () => {
    const web = webs[1]!; // Bob, admitted in the forged-names test
    const link = stage.hostile.links.find((l) => l.participantId === web.meeting.participantId && !l.closed)!;
    expect(link).toBeDefined();
    const before = web.keys()!;
    const statusBefore = web.status();
    const leaderId = roomA.client.participantId!;
    const junk = [
      'not json',
      '{"type":"e2ee"}',
      JSON.stringify({ type: 'e2ee', from: leaderId, payload: { v: 2, type: 'e2ee.key', meetingId } }),
      JSON.stringify({
        type: 'e2ee',
        from: leaderId,
        payload: {
          v: 2,
          type: 'e2ee.list',
          meetingId,
          from: leaderId,
          entries: [{ index: 1, body: {}, signature: 'AA' }],
        },
      }),
      JSON.stringify({
        type: 'e2ee',
        from: leaderId,
        payload: {
          v: 2,
          type: 'e2ee.heartbeat',
          meetingId,
          from: leaderId,
          epoch: 99,
          listLength: 99,
          time: Date.now(),
          signature: 'A'.repeat(86),
        },
      }),
      JSON.stringify({ type: 'denied', meetingId: 'other-meeting' }),
      JSON.stringify({ type: 'ended', meetingId: 'other-meeting', reason: 'forged' }),
      JSON.stringify({
        type: 'roster',
        meetingId,
        participants: [],
        waiting: [],
        locked: false,
        sharing: 'x'.repeat(64),
      }),
      JSON.stringify({ type: 'signal', payload: { kind: 'description', type: 'offer', sdp: 'v=0' } }),
      JSON.stringify({ type: 'e2ee', from: 'x', payload: { type: 'x'.repeat(70) } }),
    ];
    for (const m of junk) link.toDevice(m);
    await new Promise((r) => setTimeout(r, 1000));
    expect(web.status()).toBe(statusBefore);
    expect(web.view()!.members.map((m) => m.name)).toEqual([
      'Boardroom',
      'Huddle',
      'Alice Smith',
      'Bob Jones',
    ]);
    expect(web.view()!.sharer).toBeNull();
    const after = web.keys()!;
    expect(after.sendKid).toBe(before.sendKid);
    expect(after.sending).toBe(true);
    expect(web.page.some((m) => m.type === 'status' && /Internal error/.test(m.text))).toBe(false);
    expectNoKeysOnPage(web);
  }, 30_000);

  it('shares its screen through the relay: the verified sharer shows in the view and goes when it stops', async () => {
    const web = webs[0]!; // Alice
    const pid = web.meeting.participantId;
    const replies = () => web.page.filter((m) => m.type === 'share');
    web.meeting.handle({ type: 'share', enabled: true });
    await poll(() => replies().length === 1, 5000, 'the share reply');
    expect(replies()[0]).toMatchObject({ type: 'share', enabled: true, ok: true });
    await poll(() => web.view()?.sharer === pid, 5000, 'sharer in the view');
    web.meeting.handle({ type: 'share', enabled: false });
    await poll(() => replies().length === 2 && web.view()?.sharer === null, 5000, 'sharing stopped');
    expect(replies()[1]).toMatchObject({ enabled: false, ok: true });
  }, 30_000);

  it('denied by the leading room: status denied, never any key', async () => {
    const ivan = await webIdentity(stage.ca, 'Ivan Petrov');
    const web = await joinWeb(stage.hostile.url, meetingId, ivan, anchors(stage.ca.certPem));
    const pid = web.meeting.participantId;
    await poll(
      () => roomA.state.get().meeting?.waiting.some((w) => w.participantId === pid),
      10_000,
      'waiting',
    );
    await roomA.client.deny(pid);
    await poll(() => web.status() === 'denied', 10_000, 'denied');
    expect(web.transform.filter((m) => m.type === 'keys')).toHaveLength(0);
    expect(web.transform.at(-1)).toEqual({ type: 'wipe' });
    expect(web.view()!.members).toEqual([]);
  }, 30_000);

  it('leaving while the join is on its way ends there: no later status, nothing left waiting', async () => {
    const page: E2eeToPage[] = [];
    const meeting = new WebMeeting({
      toPage: (m) => page.push(m),
      toTransform: () => undefined,
      openSocket: (u) => new WebSocket(u) as unknown as WebSocketLike,
    });
    const gina = await webIdentity(stage.ca, 'Gina Gray');
    const started = meeting.start({
      relayUrl: stage.relay.url,
      meetingId,
      certificatePem: gina.certificatePem,
      trust: anchors(stage.ca.certPem),
      signer: gina.signer,
    });
    await meeting.leave();
    await started;
    await new Promise((r) => setTimeout(r, 300));
    const statuses = page.filter((m) => m.type === 'status').map((m) => (m as { status: string }).status);
    expect(statuses.at(-1)).toBe('left');
    expect(statuses.indexOf('waiting')).toBe(-1);
    expect(roomA.state.get().meeting?.waiting.some((w) => w.roomName === 'Gina Gray')).toBe(false);
  }, 30_000);

  it('leaves: the transform worker’s keys are wiped and the leader rekeys without it', async () => {
    const web = webs[0]!;
    const pid = web.meeting.participantId;
    const epoch = web.keys()!.epoch;
    await web.meeting.leave();
    expect(web.status()).toBe('left');
    expect(web.transform.at(-1)).toEqual({ type: 'wipe' });
    await poll(
      () => {
        const last = roomB.keys.at(-1)?.event;
        return last && last.epoch > epoch && sending(roomB);
      },
      15_000,
      'a rekey without the web participant',
    );
    expect(roomA.state.get().meeting?.roster.some((r) => r.participantId === pid)).toBe(false);
  }, 30_000);
});

describe('the web participant across a relay restart', () => {
  const stage = new Stage({ persistIds: true });
  let roomA: Room;
  let roomB: Room;
  let meetingId: string;
  let web: WebParticipant;

  beforeAll(async () => {
    await stage.start();
    roomA = await stage.room('Boardroom');
    roomB = await stage.room('Huddle');
    meetingId = await stage.meeting(roomA, [roomB]);
  }, 60_000);

  afterAll(async () => {
    await web?.meeting.leave();
    await stage.close();
  });

  it('comes back with the same participant id and E2EE session, the same code, and the new epoch’s keys', async () => {
    const hana = await webIdentity(stage.ca, 'Hana Ito');
    web = await joinWeb(stage.hostile.url, meetingId, hana, anchors(stage.ca.certPem));
    await admit(roomA, web);
    await poll(() => web.status() === 'admitted' && web.keys()?.sending === true, 10_000, 'admitted');
    const pid = web.meeting.participantId;
    const code = web.view()!.securityCode;
    const epoch = web.keys()!.epoch;
    await stage.restartRelay();
    await poll(
      () =>
        web.page.some((m) => m.type === 'status' && m.status === 'connecting' && /reconnecting/.test(m.text)),
      10_000,
      'reconnecting',
    );
    await poll(() => web.status() === 'admitted', 20_000, 'back in the meeting');
    expect(web.meeting.participantId).toBe(pid);
    expect(web.view()!.securityCode).toBe(code);
    // The leader rekeys for the members that came back: we get that epoch, and room B decrypts us with it.
    await poll(
      () => {
        const k = web.keys();
        const b = roomB.keys.at(-1)?.event;
        return (
          k && b && k.epoch > epoch && k.sending && b.receiveKeys.some((r) => r.kid.toString() === k.sendKid)
        );
      },
      20_000,
      'the new epoch',
    );
    expect(web.view()!.members.map((m) => m.name)).toEqual(['Boardroom', 'Huddle', 'Hana Ito']);
    expect(
      web.page.filter((m) => m.type === 'status').some((m) => m.status === 'error' || m.status === 'ended'),
    ).toBe(false);
    expectNoKeysOnPage(web);
  }, 60_000);

  it('dropped by the same relay: asks to join again as a new participant and is admitted again', async () => {
    const oldId = web.meeting.participantId;
    const link = stage.hostile.links.find((l) => l.participantId === oldId && !l.closed)!;
    link.close();
    await poll(
      () => web.status() === 'waiting' && web.meeting.participantId !== oldId,
      15_000,
      'waiting as a new participant',
    );
    expect(web.transform.at(-1)).toEqual({ type: 'wipe' }); // the old identity's keys are gone
    await admit(roomA, web);
    await poll(() => web.status() === 'admitted' && web.keys()?.sending === true, 15_000, 'admitted again');
    await poll(
      () => !roomA.state.get().meeting?.roster.some((r) => r.participantId === oldId),
      15_000,
      'old id removed',
    );
    expect(web.view()!.members.map((m) => m.name)).toEqual(['Boardroom', 'Huddle', 'Hana Ito']);
    expect(web.view()!.members.find((m) => m.self)?.participantId).toBe(web.meeting.participantId);
  }, 60_000);
});
