// A person on Debian's Firefox ESR (driven over WebDriver BiDi by puppeteer-core) joins a room's
// meeting: signs in at the dev IdP, is admitted by the room, shows the room's security code, and media
// decrypts both ways through the SFU — Firefox's RTCRtpScriptTransform opens the room's VP8 and Opus,
// the room's worker opens Firefox's. VP8: Firefox here has no H.264 (its OpenH264 plugin is
// downloaded at run time, never on this box), so the relay negotiates VP8 (docs/interop.md).
// Skipped when firefox-esr is not installed (scripts/apt-packages.txt lists it).
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchFirefox, firefoxDriver, hasFirefox } from './people/firefox.js';
import { ALICE, codeDigits, Person } from './people/person.js';
import { type PeopleStack, poll, startPeopleStack, type StackRoom } from './people/stack.js';

let stack: PeopleStack;
let browser: Browser;
let alice: Person;
const log: string[] = [];

interface WebStats {
  transform?: { streams: Record<string, { sent: number; opened: number; failed: Record<string, number> }> };
  tiles: { participantId: string; kind: string; framesDecoded: number }[];
}

describe.skipIf(!hasFirefox())('a person on Firefox ESR', () => {
  beforeAll(async () => {
    stack = await startPeopleStack({ rooms: 1, wall: () => false });
    browser = await launchFirefox();
    alice = new Person(await firefoxDriver(browser, (l) => log.push(l)), ALICE);
  }, 120_000);

  afterAll(async () => {
    if (log.length) console.log(log.slice(-30).join('\n'));
    await browser?.close();
    await stack?.close();
  }, 60_000);

  it('signs in, is admitted, shows the room’s code, and media decrypts both ways', async () => {
    const room = stack.rooms[0] as StackRoom;
    await alice.join(stack.joinUrl(), { timeoutMs: 60_000 });
    await alice.waitForStatus('waiting', 60_000);
    await stack.admitPerson(ALICE.email);
    await alice.waitForStatus('admitted', 30_000);
    const code = room.daemon.state.get().meeting?.securityCode;
    expect(code).toBeDefined();
    await poll(
      'Firefox to show the room’s code',
      async () => codeDigits((await alice.view()).code) === codeDigits(code),
    );
    const stats = () => alice.driver.evaluate<WebStats>('window.sealroomWebStats()');
    // Firefox decodes the room (its transform opened the frames), and nothing was refused.
    await poll(
      'Firefox decoding the room',
      async () =>
        (await stats()).tiles.some((t) => t.participantId === room.participantId() && t.framesDecoded > 10),
      40_000,
      500,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}\n${JSON.stringify(await stats())}\n${JSON.stringify(await alice.probe())}`,
      );
    });
    const s = await stats();
    expect(s.transform?.streams['receive-video']?.opened ?? 0).toBeGreaterThan(10);
    expect(s.transform?.streams['receive-audio']?.opened ?? 0).toBeGreaterThan(10);
    for (const v of Object.values(s.transform?.streams ?? {})) expect(Object.keys(v.failed)).toHaveLength(0);
    // The room's worker decrypts Firefox's camera and microphone.
    const index = room.daemon.state.get().meeting?.roster.find((e) => e.email === ALICE.email)?.senderIndex;
    await poll(
      'the room receiving Firefox',
      () => {
        const r = room.stats()?.remotes.find((x) => x.senderIndex === index);
        return r && r.videoFrames > 10 && r.audioFrames > 10;
      },
      30_000,
    );
    expect(room.stats()?.counters.decryptFailures ?? 0).toBe(0);
  }, 180_000);
});
