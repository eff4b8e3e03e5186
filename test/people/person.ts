// A person in a browser: opens the join URL, signs in at the dev IdP by filling its real login form,
// and reads what the page shows (status, security code, roster) through the page's data-testid
// marks, and what it receives through the probe (test/people/probe.ts). Written against a small
// driver interface so Chromium (playwright-core) and Firefox (puppeteer-core over WebDriver BiDi) run
// the same steps.
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/chromium.js';
import { PROBE_SCRIPT, type ProbeReport } from './probe.js';
import { poll } from './poll.js';

/** The few things the person steps need from a browser automation library. */
export interface PageDriver {
  goto(url: string): Promise<void>;
  url(): string;
  /** Evaluates a JavaScript expression (string: the same text works in both drivers). */
  evaluate<T>(expression: string): Promise<T>;
  fill(selector: string, value: string): Promise<void>;
  click(selector: string): Promise<void>;
  exists(selector: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface PersonUser {
  login: string;
  password: string;
  name: string;
  email: string;
}

/** The dev IdP's demo users (provisioning/oidc/dev-provider.ts DEV_USERS; password "demo"). */
export const ALICE: PersonUser = {
  login: 'alice',
  password: 'demo',
  name: 'Alice Smith',
  email: 'alice@example.org',
};
export const BOB: PersonUser = {
  login: 'bob',
  password: 'demo',
  name: 'Bob Jones',
  email: 'bob@example.org',
};

/** Chromium for people: fake camera and mic, WebRTC on loopback, no mDNS, autoplay. */
export const PEOPLE_CHROMIUM_ARGS = [...CHROMIUM_ARGS];

export function launchPeopleChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...PEOPLE_CHROMIUM_ARGS, ...extraArgs],
  });
}

/** A fresh context (own cookies and storage: one person) with the probe installed. */
export async function chromiumDriver(
  browser: Browser,
  log?: (line: string) => void,
  contextOptions: Parameters<Browser['newContext']>[0] = {},
): Promise<PageDriver & { page: Page; context: BrowserContext }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 }, ...contextOptions });
  await context.addInitScript(PROBE_SCRIPT);
  const page = await context.newPage();
  if (log) {
    page.on('pageerror', (e) => log(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') log(`console ${m.type()}: ${m.text()}`);
    });
  }
  return {
    page,
    context,
    goto: async (url) => {
      await page.goto(url);
    },
    url: () => page.url(),
    evaluate: <T>(expression: string) => page.evaluate(expression) as Promise<T>,
    fill: (s, v) => page.fill(s, v),
    click: (s) => page.click(s),
    exists: async (s) => (await page.$(s)) !== null,
    close: () => context.close(),
  };
}

export interface PageView {
  status: string;
  statusText: string;
  error: string;
  code: string;
  roster: { participantId: string; kind: string; text: string }[];
}

/** What the page shows, read from its data-testid marks. */
export const VIEW_EXPRESSION = `(() => {
  const q = (s) => document.querySelector(s);
  const st = q('[data-testid=status]');
  const err = q('[data-testid=error]');
  const code = q('[data-testid=security-code]');
  return {
    status: st?.getAttribute('data-status') ?? '',
    statusText: st?.textContent?.trim() ?? '',
    error: err?.textContent?.trim() ?? '',
    code: code?.textContent?.trim() ?? '',
    roster: [...document.querySelectorAll('[data-testid=roster-entry]')].map((e) => ({
      participantId: e.getAttribute('data-participant-id') ?? '',
      kind: e.getAttribute('data-kind') ?? '',
      text: e.textContent?.trim() ?? '',
    })),
  };
})()`;

/** Digits only: rooms show `12345 67890 …`; the page may group differently. */
export const codeDigits = (code: string | undefined) => (code ?? '').replace(/\D/g, '');

export class Person {
  constructor(
    readonly driver: PageDriver,
    readonly user: PersonUser,
  ) {}

  view(): Promise<PageView> {
    return this.driver.evaluate<PageView>(VIEW_EXPRESSION);
  }

  probe(): Promise<ProbeReport> {
    return this.driver.evaluate<ProbeReport>('window.__sealroomProbe.report()');
  }

  /**
   * Opens the join URL, signs in (signIn), and presses "Join meeting". Resolves with the instant
   * (Date.now()) the join was pressed.
   */
  async join(joinUrl: string, opts: { timeoutMs?: number } = {}): Promise<number> {
    await this.open(joinUrl, opts);
    return this.pressJoin();
  }

  /** Opens the join URL and signs in, up to the page's "Join meeting" button. */
  async open(joinUrl: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const origin = new URL(joinUrl).origin;
    await this.driver.goto(joinUrl);
    await this.signIn(origin, opts.timeoutMs ?? 30_000);
  }

  /** Presses "Join meeting" (when the page shows it); returns when it was pressed. */
  async pressJoin(): Promise<number> {
    const at = Date.now();
    if (await this.driver.exists('[data-testid=join]')) await this.driver.click('[data-testid=join]');
    return at;
  }

  /**
   * Clicks the page's sign-in button if it shows one, fills the IdP's login form (login, password)
   * and confirms any further IdP page, until the browser is back on the page's origin, signed in
   * (the page offers "Join meeting" or already shows a meeting status).
   */
  async signIn(origin: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let filled = 0;
    while (Date.now() < deadline) {
      const url = this.driver.url();
      if (url.startsWith(origin)) {
        if (await this.driver.exists('[data-testid=join], [data-testid=status]').catch(() => false)) return;
        if (await this.driver.exists('[data-testid=sign-in]:not([disabled])').catch(() => false)) {
          await this.driver.click('[data-testid=sign-in]').catch(() => undefined);
        }
      } else if (await this.driver.exists('input[name=login]').catch(() => false)) {
        if (filled++ >= 3) throw new Error(`sign-in as ${this.user.login} keeps asking for the login form`);
        await this.driver.fill('input[name=login]', this.user.login);
        if (await this.driver.exists('input[name=password]'))
          await this.driver.fill('input[name=password]', this.user.password);
        await this.driver.click('button[type=submit]').catch(() => undefined);
      } else if (await this.driver.exists('button[type=submit]').catch(() => false)) {
        // The IdP's consent (or any confirmation) page.
        await this.driver.click('button[type=submit]').catch(() => undefined);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    throw new Error(`sign-in as ${this.user.login} did not return to ${origin} (at ${this.driver.url()})`);
  }

  /** Waits until the page's status is `status` (data-status), returning the view. */
  waitForStatus(status: string | string[], timeoutMs = 30_000): Promise<PageView> {
    const want = Array.isArray(status) ? status : [status];
    return poll(
      `${this.user.login}'s page to say ${want.join(' or ')}`,
      async () => {
        const v = await this.view();
        return want.includes(v.status) ? v : undefined;
      },
      timeoutMs,
      200,
    );
  }

  click(testId: string): Promise<void> {
    return this.driver.click(`[data-testid=${testId}]`);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
