// `npm start` for people: `sealroom demo` as a real process (synthetic room media, so it is quick)
// prints `join from a browser: <URL>` and the demo user's sign-in; headless Chromium opens exactly
// that URL (the provisioning service's HTTPS origin, its own CA), signs in at the printed provider
// as alice, waits, is admitted through Boardroom's control API, and shows the code the demo printed —
// so the demo's wiring (provider, people config, the page's allowed relay, the relay's allowed
// origin) is what a person gets.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import { ALICE, chromiumDriver, codeDigits, launchPeopleChromium, Person } from './person.js';
import { poll } from './poll.js';
import { buildWebApp } from './stack.js';

const ROOT = findPackageRoot();
let demo: ChildProcess | undefined;
let exited: Promise<unknown> | undefined;
let out = '';
let web: { dir: string; remove(): void } | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  web = buildWebApp();
  demo = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/sealroom.ts'),
      'demo',
      '--media',
      'synthetic',
      '--duration',
      '300',
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn', SEALROOM_WEB_DIR: web.dir },
    },
  );
  const child = demo;
  exited = new Promise((r) => child.once('exit', r));
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  await poll(
    'the demo to be up',
    () => /Running for \d+ s/.test(out) || child.exitCode !== null,
    180_000,
    250,
  );
  if (child.exitCode !== null) throw new Error(`the demo ended early:\n${out}`);
  browser = await launchPeopleChromium();
}, 240_000);

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null) {
    const kill = setTimeout(() => demo?.kill('SIGKILL'), 20_000);
    demo.kill('SIGTERM');
    await exited;
    clearTimeout(kill);
  }
  web?.remove();
}, 60_000);

describe('npm start: join from a browser', () => {
  it('prints a join URL and a sign-in that get a person into the running meeting, with its code', async () => {
    const url = /join from a browser: (https:\/\/127\.0\.0\.1:\d+\/join\/#meeting=\S+&relay=\S+)/.exec(
      out,
    )?.[1];
    expect(url, out).toBeDefined();
    expect(out).toMatch(
      /sign in as alice \(Alice Smith\) or bob \(Bob Jones\), password "demo", at http:\/\/127\.0\.0\.1:\d+/,
    );
    const code = /security code\s+Boardroom:\s+((?:\d{5} ){7}\d{5})/.exec(out)?.[1];
    const control = /Boardroom kiosk\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] ?? '';
    expect(code).toBeDefined();
    // The service's own TLS CA is not in Chromium's store: as a person who accepted the warning.
    const driver = await chromiumDriver(browser as Browser, undefined, { ignoreHTTPSErrors: true });
    const alice = new Person(driver, ALICE);
    await alice.join(url as string);
    await alice.waitForStatus('waiting');
    const api = (path: string, body?: unknown) =>
      fetch(new URL(path, control), {
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    const waiting = await poll('Alice in Boardroom’s waiting list', async () => {
      const s = (await api('/api/state')) as {
        meeting?: { waiting: { participantId: string; kind?: string; email?: string; roomName: string }[] };
      };
      return s.meeting?.waiting.find((w) => w.email === ALICE.email);
    });
    expect(waiting).toMatchObject({ kind: 'person', roomName: 'Alice Smith' });
    await api('/api/meeting/admit', { participantId: waiting.participantId });
    await alice.waitForStatus('admitted');
    await poll(
      'the printed code on Alice’s page',
      async () => codeDigits((await alice.view()).code) === codeDigits(code),
    );
    await driver.close();
  }, 120_000);
});
