// Debian's Firefox ESR driven by puppeteer-core over WebDriver BiDi (no geckodriver), as a person's
// browser: fake camera and microphone (media.navigator.streams.fake), no permission prompts, WebRTC
// allowed on loopback with real host addresses (no mDNS obfuscation), autoplay. A PageDriver (one
// private browsing context per person) so test/people/person.ts runs the same steps as in Chromium.
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import type { PageDriver } from './person.js';
import { PROBE_SCRIPT } from './probe.js';

export const FIREFOX_PATH = process.env.SEALROOM_FIREFOX ?? '/usr/bin/firefox-esr';
export const hasFirefox = () => existsSync(FIREFOX_PATH);

export const FIREFOX_PREFS: Record<string, unknown> = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
};

export function launchFirefox(): Promise<Browser> {
  return puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: FIREFOX_PATH,
    headless: true,
    extraPrefsFirefox: FIREFOX_PREFS,
  });
}

export async function firefoxDriver(
  browser: Browser,
  log?: (line: string) => void,
): Promise<PageDriver & { page: Page }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 720 });
  await page.evaluateOnNewDocument(PROBE_SCRIPT);
  if (log) {
    page.on('pageerror', (e) => log(`page error: ${(e as Error).message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') log(`console ${m.type()}: ${m.text()}`);
    });
  }
  return {
    page,
    goto: async (url) => {
      await page.goto(url);
    },
    url: () => page.url(),
    evaluate: <T>(expression: string) => page.evaluate(expression) as Promise<T>,
    fill: async (s, v) => {
      await page.locator(s).fill(v);
    },
    click: async (s) => {
      await page.locator(s).click();
    },
    exists: async (s) => (await page.$(s)) !== null,
    close: () => context.close(),
  };
}
