// Headless Debian Chromium for kiosk tests and the kiosk benchmark (never a downloaded browser), and
// in-page checks shared by them and the console and web tests: layout overflow, digit sizes, axe-core,
// page errors, QR codes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';

export const CHROMIUM_PATH = process.env.SEALROOM_CHROMIUM ?? '/usr/bin/chromium';

export const HEADLESS_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** What the wall connection needs: WebRTC over loopback, real addresses in candidates, autoplay. */
export const WEBRTC_ARGS = [
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...HEADLESS_ARGS, ...extraArgs],
  });
}

/** Builds the kiosk UI into a fresh temporary folder; returns it and a cleanup. */
export function buildKioskUi(): { dir: string; remove(): void } {
  const root = findPackageRoot();
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-kiosk-ui-'));
  execFileSync(process.execPath, [join(root, 'scripts', 'build-kiosk.mjs'), '--outdir', dir], {
    cwd: root,
    stdio: 'pipe',
  });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Overflow {
  selector: string;
  rect: { left: number; top: number; right: number; bottom: number };
  reason: string;
}

/**
 * Every rendered element must lie inside the viewport (elements inside a scrolling list are checked
 * against that list instead), the page itself must not scroll, and no button or code digit may clip
 * its own text.
 */
export function findOverflows(page: Page): Promise<Overflow[]> {
  return page.evaluate(() => {
    const out: {
      selector: string;
      rect: { left: number; top: number; right: number; bottom: number };
      reason: string;
    }[] = [];
    const vw = window.innerWidth;
    const vh = window.innerHeight;
    const describe = (el: Element) =>
      el.tagName.toLowerCase() +
      (el.id ? `#${el.id}` : '') +
      (el.getAttribute('class') ? `.${el.getAttribute('class')!.trim().split(/\s+/).join('.')}` : '') +
      (el.getAttribute('data-testid') ? `[data-testid=${el.getAttribute('data-testid')}]` : '');
    const doc = document.documentElement;
    if (doc.scrollWidth > vw || doc.scrollHeight > vh) {
      out.push({
        selector: 'html',
        rect: { left: 0, top: 0, right: doc.scrollWidth, bottom: doc.scrollHeight },
        reason: 'page scrolls',
      });
    }
    const isScroller = (el: Element) => {
      const style = getComputedStyle(el);
      return /(auto|scroll)/.test(style.overflowY) || /(auto|scroll)/.test(style.overflowX);
    };
    // Inside a scrolling list only the horizontal bounds hold: rows below the fold are reached by scrolling.
    type Bounds = { left: number; top: number; right: number; bottom: number };
    const walk = (el: Element, bounds: Bounds) => {
      const r = el.getBoundingClientRect();
      const visible = r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
      if (visible) {
        const tol = 1;
        if (
          r.left < bounds.left - tol ||
          r.top < bounds.top - tol ||
          r.right > bounds.right + tol ||
          r.bottom > bounds.bottom + tol
        ) {
          out.push({
            selector: describe(el),
            rect: { left: r.left, top: r.top, right: r.right, bottom: r.bottom },
            reason: 'outside its bounds',
          });
        }
        const html = el as HTMLElement;
        if (
          (el.tagName === 'BUTTON' || el.classList.contains('digit')) &&
          (html.scrollWidth > html.clientWidth + 1 || html.scrollHeight > html.clientHeight + 1)
        ) {
          out.push({
            selector: describe(el),
            rect: { left: r.left, top: r.top, right: r.right, bottom: r.bottom },
            reason: 'text clipped',
          });
        }
      }
      const inner: Bounds | null =
        visible && isScroller(el) ? { left: r.left, top: -Infinity, right: r.right, bottom: Infinity } : null;
      for (const child of el.children) walk(child, inner ?? bounds);
    };
    walk(document.body, { left: 0, top: 0, right: vw, bottom: vh });
    return out;
  });
}

/** Ink height of the security-code digits (canvas text metrics of the rendered font), in CSS pixels. */
export function digitInkHeights(page: Page): Promise<{ ink: number; box: number; viewport: number }[]> {
  return page.evaluate(() => {
    const ctx = document.createElement('canvas').getContext('2d')!;
    return [...document.querySelectorAll<HTMLElement>('[data-testid=security-code] .digit')].map((el) => {
      const style = getComputedStyle(el);
      ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const m = ctx.measureText(el.textContent ?? '0');
      return {
        ink: m.actualBoundingBoxAscent + m.actualBoundingBoxDescent,
        box: el.getBoundingClientRect().height,
        viewport: window.innerHeight,
      };
    });
  });
}

const require = createRequire(import.meta.url);

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

let axeSource: string | undefined;

/** WCAG 2 A and AA: the rule set most pages are held to. */
export const WCAG2_AA = { type: 'tag' as const, values: ['wcag2a', 'wcag2aa'] };

/**
 * Runs axe-core (from node_modules) on the page, limited to the given rule tags or ids. Evaluated
 * over the DevTools protocol rather than added as a <script>: pages with a strict CSP (the console,
 * the web participant) rightly refuse an injected script, and the protocol is not governed by it.
 */
export async function runAxe(
  page: Page,
  runOnly: { type: 'tag' | 'rule'; values: string[] },
): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  return page.evaluate(async (only) => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: unknown) => Promise<unknown> } })
      .axe;
    const result = (await axe.run(document, { runOnly: only, resultTypes: ['violations'] })) as {
      violations: AxeViolation[];
    };
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  }, runOnly);
}

/** Collects the page's uncaught errors and console errors (those matching `ignore` aside) into a list. */
export function collectPageErrors(page: Page, ignore?: RegExp): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !ignore?.test(msg.text())) errors.push(msg.text());
  });
  return errors;
}

/** Decodes the QR code drawn by the <img> at `selector` with jsQR (a reader we did not write). */
export async function decodeQrImage(page: Page, selector: string): Promise<string | null> {
  await page.addScriptTag({ path: require.resolve('jsqr/dist/jsQR.js') });
  return page.evaluate((sel) => {
    const img = document.querySelector<HTMLImageElement>(sel)!;
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(img, 0, 0, img.width, img.height);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
    type Reader = (d: Uint8ClampedArray, w: number, h: number) => { data: string } | null;
    const lib = (window as unknown as { jsQR: Reader | { default: Reader } }).jsQR;
    const read = typeof lib === 'function' ? lib : lib.default;
    return read(pixels.data, pixels.width, pixels.height)?.data ?? null;
  }, selector);
}
