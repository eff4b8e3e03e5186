// The web participant page against the real thing, smallest form: one room (a real daemon with its
// media worker) leading a meeting through a real relay and SFU, the provisioning service serving
// /join/ (real E2EE worker, under the page's CSP), the dev IdP (test/people/stack.ts). Alice signs in
// on the IdP's form, joins, is admitted by the room, and the page shows the room's security code,
// the room in the verified roster and the room's camera decoded in a labelled tile; the room decodes
// Alice; her screen share goes out on the content line; leaving takes her out of the room's roster.
// (Two rooms and two people, walls and refusals: test/people-meeting.test.ts.)
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS } from './browser/chromium.js';
import { HEADLESS_ARGS, launchChromium } from './kiosk-browser.js';
import { poll } from './people/poll.js';
import { type PeopleStack, startPeopleStack } from './people/stack.js';

let stack: PeopleStack;
let browser: Browser;
let page: Page;
const errors: string[] = [];

beforeAll(async () => {
  stack = await startPeopleStack({ rooms: 1, wall: () => false });
  browser = await launchChromium([
    ...CHROMIUM_ARGS.filter((a) => !HEADLESS_ARGS.includes(a)),
    '--auto-select-desktop-capture-source=Entire screen',
  ]);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|EvalError/.test(m.text())) errors.push(m.text());
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const room = () => stack.rooms[0]!;
const webStats = () => page.evaluate(() => window.sealroomWebStats());

describe('the page in a real meeting (one room, real relay)', () => {
  it('signs in, waits, is admitted, shows the same code and the room, media both ways, share, leave', async () => {
    await page.goto(stack.joinUrl());
    await page.click('[data-testid=sign-in]');
    await page.waitForURL((u) => u.origin === stack.idp.issuer);
    await page.fill('input[name=login]', 'alice');
    await page.fill('input[name=password]', 'demo');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-screen=ready] [data-testid=person-name]');
    await page.click('[data-testid=join]');
    await page.waitForSelector('[data-testid=status][data-status=waiting]');
    const aliceId = await stack.admitPerson('alice@example.org');

    await page.waitForSelector('[data-screen=meeting] [data-testid=security-code]', { timeout: 30_000 });
    const code = (
      await page.$$eval('[data-testid=security-code] .code-group', (els) => els.map((e) => e.textContent))
    )
      .join(' ')
      .trim();
    const roomCode = await poll('the room’s code to include Alice', () => {
      const m = room().daemon.state.get().meeting;
      return m?.roster.some((r) => r.participantId === aliceId) ? m.securityCode : undefined;
    });
    await poll('the page’s code to match the room’s', async () => {
      const now = (
        await page.$$eval('[data-testid=security-code] .code-group', (els) => els.map((e) => e.textContent))
      )
        .join(' ')
        .trim();
      return now === roomCode.trim() ? now : undefined;
    });
    expect(code.replace(/\D/g, '').length).toBe(40);

    // The roster as the page verified it: the room (leading) and Alice herself.
    const roomPid = room().participantId();
    expect(
      await page.textContent(
        `[data-testid=roster-entry][data-participant-id="${roomPid}"] [data-testid=roster-line]`,
      ),
    ).toBe(`${room().name} · ${room().daemon.state.get().device.org}`);
    expect(
      await page.textContent(
        `[data-testid=roster-entry][data-participant-id="${aliceId}"] [data-testid=roster-line]`,
      ),
    ).toBe('Alice Smith · alice@example.org · Example Corp · signed in');

    // The room's camera, decoded in a tile under the room's verified name.
    await poll(
      'the room’s camera decoded on the page',
      async () =>
        (await webStats()).tiles.some(
          (t) => t.participantId === roomPid && t.kind === 'camera' && t.framesDecoded > 10,
        ),
      40_000,
      500,
    );
    expect(
      await page.textContent(
        `[data-testid=tile][data-participant-id="${roomPid}"][data-kind=camera] figcaption`,
      ),
    ).toBe(`${room().name} · ${room().daemon.state.get().device.org}`);
    // The room decodes Alice (audio and video) with her keys.
    const aliceIndex = room()
      .daemon.state.get()
      .meeting?.roster.find((r) => r.participantId === aliceId)?.senderIndex;
    await poll(
      'the room receiving Alice',
      () => {
        const r = room()
          .stats()
          ?.remotes.find((x) => x.senderIndex === aliceIndex);
        return r && r.videoFrames > 10 && r.audioFrames > 10;
      },
      40_000,
    );

    // Share screen: sent sealed on the content line; the relay marks Alice as the sharer.
    await page.click('[data-testid=share]:not([disabled])');
    await page.waitForSelector('[data-testid=self-screen] video');
    await poll(
      'Alice’s screen going out',
      async () => ((await webStats()).transform.streams['send-content']?.sent ?? 0) > 10,
      20_000,
      500,
    );
    await page.click('[data-testid=share]');
    await page.waitForSelector('[data-testid=self-screen]', { state: 'detached' });

    const stats = await webStats();
    // Frames the transform refused, per stream and code ("EMPTY": Chromium's odd empty audio frame,
    // nothing to open). Listed rather than summed, so a failure says which check refused what.
    const failed = Object.fromEntries(
      Object.entries(stats.transform.streams)
        .map(([stream, s]) => [
          stream,
          Object.fromEntries(Object.entries(s.failed).filter(([code]) => code !== 'EMPTY')),
        ])
        .filter(([, codes]) => Object.keys(codes as object).length > 0),
    );
    expect(failed).toEqual({});
    expect(stats.signallingErrors).toEqual([]);

    await page.click('[data-screen=meeting] [data-testid=leave]');
    await page.waitForSelector('[data-testid=status][data-status=left]');
    await poll(
      'Alice out of the room’s roster',
      () =>
        !room()
          .daemon.state.get()
          .meeting?.roster.some((r) => r.participantId === aliceId),
      20_000,
    );
    expect(errors).toEqual([]);
  }, 240_000);
});
