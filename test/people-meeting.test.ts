// People join a room meeting from Chromium, end to end (issue 12): the stack of test/people/stack.ts
// (org CA, provisioning service with people sign-in and the /join/ page, the dev OpenID Connect
// provider, the relay with its SFU recording every frame and packet, two room daemons with real
// GStreamer media workers — Boardroom leads and hands far video to a kiosk page, Huddle Room decodes
// in GStreamer) and two people, Alice and Bob, in one headless Chromium (fake camera and mic) who
// sign in by filling the IdP's login form. Asserted on real outcomes: what every screen shows (the
// same security code on both rooms and both pages, names from verified certificates), media decoded
// both ways through the SFU, Alice's shared screen (a captured canvas) on Boardroom's wall, a rekey
// when Bob leaves, the relay's recording free of every key and of plaintext we recover ourselves,
// and the refusals of sign-in (none, another issuer, expired, replayed) and of an expired certificate.
import { generateKeyPairSync, sign } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import { issuePersonCertificate } from '../src/pki/person.js';
import { base64url, personCertRequestBytes, personKeyNonce } from '../src/pki/person-profile.js';
import { nearColour, SHARE_RGB } from './people/probe.js';
import { ALICE, BOB, chromiumDriver, codeDigits, launchPeopleChromium, Person } from './people/person.js';
import { findAny, haystacks, keyNeedles, keysEventNeedles, recoverPlaintext } from './people/scan.js';
import { type PeopleStack, poll, serviceTrusting, startPeopleStack, type StackRoom } from './people/stack.js';
import { openWall, type RoomWall } from './people/wall.js';
import { signInHeadless, startDevOidcProvider } from '../provisioning/oidc/dev-provider.js';

let stack: PeopleStack;
let browser: Browser;
let alice: Person;
let bob: Person;
let wall: RoomWall | undefined;
const log: string[] = [];
/** Participant ids of the people, by email (kept after they leave: the scan needs them). */
const personIds = new Map<string, string>();

beforeAll(async () => {
  stack = await startPeopleStack({ rooms: 2 });
  browser = await launchPeopleChromium();
  alice = new Person(await chromiumDriver(browser, (l) => log.push(`alice ${l}`)), ALICE);
  bob = new Person(await chromiumDriver(browser, (l) => log.push(`bob ${l}`)), BOB);
}, 120_000);

afterAll(async () => {
  if (log.length) console.log(log.slice(-30).join('\n'));
  await wall?.close();
  await browser?.close();
  await stack?.close();
}, 60_000);

const [BOARDROOM, HUDDLE] = [0, 1];
const room = (i: number) => stack.rooms[i] as StackRoom;
const meetingOf = (r: StackRoom) => r.daemon.state.get().meeting;
const rosterEntry = (r: StackRoom, email: string) => meetingOf(r)?.roster.find((e) => e.email === email);

interface WebStats {
  transform?: {
    streams: Record<
      string,
      { sent: number; opened: number; failed: Record<string, number>; dropped: number }
    >;
    epoch: number;
  };
  tiles: { participantId: string; kind: string; mid: string; framesDecoded: number }[];
  connectionState: string;
}
const webStats = (p: Person) => p.driver.evaluate<WebStats>('window.sealroomWebStats()');

/** What every party sees, for a failing assertion's message. */
async function dump(): Promise<string> {
  const lines: string[] = [];
  for (const p of [alice, bob]) {
    lines.push(`${p.user.login} view ${JSON.stringify(await p.view().catch((e) => String(e)))}`);
    lines.push(`${p.user.login} stats ${JSON.stringify(await webStats(p).catch((e) => String(e)))}`);
    const probe = await p.probe().catch(() => undefined);
    lines.push(
      `${p.user.login} probe ${JSON.stringify(probe && { ...probe, videos: probe.videos.map((v) => [v.frames, v.width, v.avg]) })}`,
    );
  }
  for (const r of stack.rooms) {
    const m = meetingOf(r);
    lines.push(
      `${r.name} epoch ${m?.keyEpoch} roster ${JSON.stringify(m?.roster.map((e) => [e.roomName, e.senderIndex, e.participantId]))}`,
    );
    lines.push(
      `${r.name} media ${JSON.stringify(r.stats()?.counters)} remotes ${JSON.stringify(r.stats()?.remotes)} wall ${JSON.stringify(r.daemon.state.get().media.wall)}`,
    );
  }
  return lines.join('\n');
}

/** poll, with everyone's view in the error when it times out. */
const until = <T>(...args: Parameters<typeof poll<T>>): Promise<T> =>
  poll<T>(...args).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await dump()}`);
  });
/** Boardroom's kiosk page, opened once (by whichever test needs it first). */
async function boardroomWall(): Promise<RoomWall> {
  wall ??= await openWall(room(BOARDROOM));
  return wall;
}

/**
 * Frames a page's transform refused for a reason that means forgery or a wrong key: BAD_TAG, an
 * authentication failure, … — not REPLAY (a NACK/RTX duplicate, refused by design), EMPTY (Chromium
 * hands the audio transform the odd empty frame) or UNKNOWN_KEY/NO_KEYS (frames that beat their keys).
 * NO_TAG (a frame whose sender-authentication trailer has no tag for this receiver) is tolerated only
 * a few times per stream: a clean-clone run under load saw one audio and one video frame of it at a
 * membership change (a sender's frame sealed just before its receiver set took the newcomer in; open
 * observation, docs/threat-model.md); a sender that never tags this person fails.
 */
const BENIGN = new Set(['REPLAY', 'EMPTY', 'UNKNOWN_KEY', 'NO_KEYS']);
const AT_MEMBERSHIP_CHANGE = new Map([['NO_TAG', 3]]);
const refusals = (s: WebStats) =>
  Object.fromEntries(
    Object.entries(s.transform?.streams ?? {})
      .filter(([k]) => k.startsWith('receive-'))
      .flatMap(([k, v]) => Object.entries(v.failed).map(([code, n]) => [`${k} ${code}`, n] as const))
      .filter(([key]) => !BENIGN.has(key.split(' ')[1] ?? ''))
      .filter(([key, n]) => n > (AT_MEMBERSHIP_CHANGE.get(key.split(' ')[1] ?? '') ?? 0)),
  );

describe('two rooms and two people', () => {
  it('people sign in, wait, are admitted by the leading room, and every screen shows one code', async () => {
    for (const p of [alice, bob]) {
      await p.join(stack.joinUrl());
      await p.waitForStatus('waiting');
      // The leader names the person from the certificate it verified itself.
      const pid = await poll(`${p.user.name} in Boardroom's waiting list`, () =>
        stack.waitingPerson(p.user.email),
      );
      const waiting = meetingOf(room(BOARDROOM))?.waiting.find((w) => w.participantId === pid);
      expect(waiting).toMatchObject({
        kind: 'person',
        roomName: p.user.name,
        email: p.user.email,
        org: 'Example Corp',
      });
      personIds.set(p.user.email, await stack.admitPerson(p.user.email));
      await p.waitForStatus('admitted');
    }
    const code = await poll('one code on both rooms', () => {
      const codes = stack.rooms.map((r) => meetingOf(r)?.securityCode);
      const epochs = stack.rooms.map((r) => meetingOf(r)?.keyEpoch);
      return codes[0] && codes.every((c) => c === codes[0]) && epochs.every((e) => e === epochs[0])
        ? codes[0]
        : undefined;
    });
    for (const p of [alice, bob])
      await poll(
        `${p.user.login}'s page to show the rooms' code`,
        async () => codeDigits((await p.view()).code) === codeDigits(code),
      );
    expect(codeDigits(code)).toMatch(/^\d{40}$/);
    // Rosters: each room lists both people as verified people; each page lists all four.
    for (const r of stack.rooms)
      for (const p of [ALICE, BOB])
        await poll(
          `${p.name} in ${r.name}'s roster`,
          () => rosterEntry(r, p.email)?.kind === 'person' && rosterEntry(r, p.email)?.roomName === p.name,
        );
    for (const p of [alice, bob]) {
      const v = await p.view();
      const text = v.roster.map((e) => e.text).join('\n');
      expect(v.roster).toHaveLength(4);
      expect(text).toContain('Alice Smith · alice@example.org · Example Corp');
      expect(text).toContain('Bob Jones · bob@example.org · Example Corp');
      expect(text).toContain('Boardroom');
      expect(text).toContain('Huddle Room');
    }
  }, 120_000);

  it('media flows both ways through the SFU: people decode the rooms, rooms decode the people', async () => {
    const roomPids = stack.rooms.map((r) => r.participantId());
    // People: the rooms' cameras decoded (per tile), the rooms' tones heard, nothing refused.
    for (const p of [alice, bob]) {
      await until(
        `${p.user.login} decoding both rooms' video`,
        async () => {
          const s = await webStats(p);
          return roomPids.every((pid) =>
            s.tiles.some((t) => t.participantId === pid && t.kind !== 'content' && t.framesDecoded > 10),
          );
        },
        40_000,
        500,
      );
      // Every received camera painted in the page (2 rooms + the other person).
      await until(
        `${p.user.login} painting three cameras`,
        async () => (await p.probe()).videos.filter((v) => v.frames > 5).length >= 3,
        20_000,
        500,
      );
      const probe = await p.probe();
      expect(probe.inbound.audio.totalAudioEnergy).toBeGreaterThan(0);
      // The rooms' test tones (440 Hz, 660 Hz) are the loudest frequencies of two received tracks.
      await until(
        `${p.user.login} hearing both rooms' tones`,
        async () => {
          const peaks = (await p.probe()).audioPeaksHz;
          return [440, 660].every((f) => peaks.some((h) => Math.abs(h - f) < 25));
        },
        20_000,
        500,
      );
      expect(refusals(await webStats(p)), `${p.user.login}'s refused frames`).toEqual({});
    }
    // Rooms: Huddle Room's worker decrypts both people's audio and video (its GStreamer gallery decodes).
    for (const person of [ALICE, BOB]) {
      const index = rosterEntry(room(HUDDLE), person.email)?.senderIndex;
      expect(index).toBeDefined();
      await until(
        `Huddle Room receiving ${person.name}`,
        () => {
          const r = room(HUDDLE)
            .stats()
            ?.remotes.find((x) => x.senderIndex === index);
          return r && r.videoFrames > 10 && r.audioFrames > 10;
        },
        30_000,
      );
    }
    // Boardroom hands far video to its kiosk page: Alice's camera tile is painted there.
    const w = await boardroomWall();
    const aliceIndex = rosterEntry(room(BOARDROOM), ALICE.email)?.senderIndex;
    await until(
      'Alice on Boardroom’s wall',
      async () => ((await w.tile('remote', aliceIndex))?.painted ?? 0) > 5,
      40_000,
      500,
    );
    for (const r of stack.rooms) {
      const c = r.stats()?.counters;
      expect(c?.authFailures ?? 0, `${r.name}'s authentication failures`).toBe(0);
      // Frames that beat their keys at a join's rekey may fail to open; a steady stream of failures may not.
      expect(c?.decryptFailures ?? 0, `${r.name}'s decryption failures`).toBeLessThan(
        (c?.videoFramesDecrypted ?? 0) / 100 + 10,
      );
    }
  }, 150_000);

  it("a person's shared screen shows in the room's content layout and on the other person's page", async () => {
    const w = await boardroomWall();
    await alice.click('share');
    const aliceId = rosterEntry(room(BOARDROOM), ALICE.email)?.participantId;
    const aliceIndex = rosterEntry(room(BOARDROOM), ALICE.email)?.senderIndex;
    await until('the content slot on Boardroom’s wall to carry Alice', () =>
      room(BOARDROOM)
        .daemon.state.get()
        .media.wall?.slots.some((s) => s.kind === 'content' && s.senderIndex === aliceIndex),
    );
    // The wall page paints the canvas: magenta, moving.
    const tile = await until(
      'Alice’s screen painted on the wall',
      async () => {
        const t = await w.tile('content', aliceIndex);
        return t && t.painted > 10 && nearColour(t.avg, SHARE_RGB, 70) ? t : undefined;
      },
      40_000,
      500,
    );
    expect(tile.width).toBeGreaterThan(0);
    // Bob's page shows it in a content tile, decoded.
    await until(
      'Bob decoding Alice’s screen',
      async () =>
        (await webStats(bob)).tiles.some(
          (t) => t.participantId === aliceId && t.kind === 'content' && t.framesDecoded > 10,
        ),
      30_000,
      500,
    );
    expect((await bob.probe()).videos.some((v) => v.frames > 5 && nearColour(v.avg, SHARE_RGB, 70))).toBe(
      true,
    );
    // Stopping the share empties the content slot.
    await alice.click('share');
    await until(
      'the content slot to be released',
      () =>
        !room(BOARDROOM)
          .daemon.state.get()
          .media.wall?.slots.some((s) => s.kind === 'content' && s.senderIndex === aliceIndex),
    );
  }, 120_000);

  it('a person leaves: everyone rekeys to a new epoch and the code stays one', async () => {
    const epoch = meetingOf(room(BOARDROOM))?.keyEpoch ?? 0;
    const aliceEpoch = (await webStats(alice)).transform?.epoch ?? 0;
    await bob.click('leave');
    await bob.waitForStatus('left');
    await until('both rooms at a new epoch without Bob', () =>
      stack.rooms.every((r) => (meetingOf(r)?.keyEpoch ?? 0) > epoch && !rosterEntry(r, BOB.email)),
    );
    await until(
      'Alice at the new epoch',
      async () => ((await webStats(alice)).transform?.epoch ?? 0) > aliceEpoch,
    );
    const code = meetingOf(room(BOARDROOM))?.securityCode;
    expect(meetingOf(room(HUDDLE))?.securityCode).toBe(code);
    await until(
      'Alice’s code to match',
      async () => codeDigits((await alice.view()).code) === codeDigits(code),
    );
    expect((await alice.view()).roster).toHaveLength(3);
    // Media goes on under the new keys.
    const before =
      (await webStats(alice)).tiles.find((t) => t.participantId === room(BOARDROOM).participantId())
        ?.framesDecoded ?? 0;
    await until(
      'Alice decoding Boardroom after the rekey',
      async () =>
        ((await webStats(alice)).tiles.find((t) => t.participantId === room(BOARDROOM).participantId())
          ?.framesDecoded ?? 0) >
        before + 10,
      30_000,
      500,
    );
  }, 90_000);

  it('nothing that crossed the relay holds a key or plaintext', () => {
    const recorded = stack.recorded;
    expect(recorded.filter((e) => e.kind === 'rtp').length).toBeGreaterThan(500);
    const keys = stack.rooms.flatMap((r) => r.keys);
    const needles = stack.rooms.flatMap((r) => keysEventNeedles(r.name, r.keys));
    for (const r of stack.rooms) {
      const pkcs8 = r.device.identityKey.export({ format: 'der', type: 'pkcs8' });
      needles.push(...keyNeedles(`${r.name} identity private key`, pkcs8.subarray(pkcs8.length - 32)));
    }
    // The keys of both people were among them (rooms receive from them).
    expect(needles.length).toBeGreaterThan(40);
    // Plaintext we recover ourselves from the recording, with the rooms' keys: people and rooms.
    const publishers = new Set(personIds.values());
    for (const r of stack.rooms) publishers.add(r.participantId());
    const people = [...publishers].filter((p) => !stack.rooms.some((r) => r.participantId() === p));
    expect(people).toHaveLength(2);
    const recovered = recoverPlaintext(recorded, keys, publishers);
    for (const p of people) {
      expect(recovered.opened.get(`${p}/video`) ?? 0).toBeGreaterThan(10);
      expect(recovered.opened.get(`${p}/audio`) ?? 0).toBeGreaterThan(10);
    }
    expect(recovered.needles.length).toBeGreaterThan(100);
    const found = findAny(haystacks(recorded), [...needles, ...recovered.needles]);
    expect(found?.needle.what).toBeUndefined();
  }, 120_000);
});

describe('refusals, each with its clear message', () => {
  const postCertificate = (origin: string, body: unknown) =>
    fetch(`${origin}/api/people/certificate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { error?: string; message?: string },
    }));

  it('no sign-in: the page asks to sign in and never reaches the meeting; the service refuses a request without a token', async () => {
    const driver = await chromiumDriver(browser);
    try {
      const p = new Person(driver, ALICE);
      await driver.goto(stack.joinUrl());
      await poll('the sign-in button', () => driver.exists('[data-testid=sign-in]'));
      const v = await p.view();
      expect(['signed-out', 'sign-in', '']).toContain(v.status);
      expect(v.code).toBe('');
      expect(stack.waitingPerson(ALICE.email)).toBeUndefined();
    } finally {
      await driver.close();
    }
    const r = await postCertificate(stack.origin, { publicKey: 'A'.repeat(43), proof: 'A'.repeat(86) });
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('sign-in-required');
    expect(r.body.message).toMatch(/sign in/i);
  }, 60_000);

  it('a token from another issuer, an expired token and a replayed token are refused', async () => {
    const { publicKeyRaw, request } = await personKey();
    const redirectUri = `${stack.origin}/join/`;
    const signIn = (p: { issuer: string; clientId: string }) =>
      signInHeadless({
        issuer: p.issuer,
        clientId: p.clientId,
        redirectUri,
        user: 'alice',
        nonce: personKeyNonce(publicKeyRaw),
      });
    // Another issuer: a second dev IdP (its own keys) the service does not trust. Its tokens live 1 s.
    const other = await startDevOidcProvider({
      host: '127.0.0.1',
      redirectUris: [redirectUri],
      idTokenTtlSeconds: 1,
    });
    // No clock tolerance there, so a 1 s token is expired after 2.5 s.
    const otherService = await serviceTrusting(other, { clockToleranceSeconds: 0 });
    try {
      const foreign = await signIn(other);
      const r = await postCertificate(stack.origin, await request(foreign));
      expect(r.status).toBe(401);
      expect(r.body.error).toBe('wrong-issuer');
      expect(r.body.message).toMatch(/issued by/i);
      // Expired: the same kind of token, at a service that trusts that IdP, after its exp.
      const expiring = await signIn(other);
      await new Promise((res) => setTimeout(res, 2500));
      const late = await postCertificate(otherService.origin, await request(expiring));
      expect(late.status).toBe(401);
      expect(late.body.error).toBe('token-expired');
      expect(late.body.message).toMatch(/expired/i);
    } finally {
      await otherService.close();
      await other.close();
    }
    // Replayed: accepted once, refused the second time.
    const token = await signIn(stack.idp);
    expect((await postCertificate(stack.origin, await request(token))).status).toBe(200);
    const again = await postCertificate(stack.origin, await request(token));
    expect(again.status).toBe(401);
    expect(again.body.error).toBe('token-replayed');
    expect(again.body.message).toMatch(/already|replay|once/i);
  }, 60_000);

  it('an expired person certificate is refused by the relay, with the reason', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
    const issued = await issuePersonCertificate({
      ca: stack.ca,
      publicKeyRaw: raw,
      person: { name: 'Alice Smith', email: 'alice@example.org', org: 'Example Corp' },
      validityMs: 60_000,
      now: new Date(Date.now() - 3600_000),
    });
    const err = await RelayConnection.connect(stack.relay.url, {
      certificatePem: issued.certPem,
      identityKey: privateKey,
    }).then(
      (c) => {
        c.close();
        return undefined;
      },
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/expired/i);
  }, 30_000);
});

/** A person key in Node and the certificate request for a token (the page does this with WebCrypto). */
async function personKey() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicKeyRaw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32));
  return {
    publicKeyRaw,
    request: async (idToken: string) => ({
      idToken,
      publicKey: base64url(publicKeyRaw),
      proof: base64url(new Uint8Array(sign(null, personCertRequestBytes(idToken, publicKeyRaw), privateKey))),
    }),
  };
}
