// Assertions over the in-page checks of test/kiosk-browser.ts (kept apart: the kiosk benchmark
// imports kiosk-browser.ts outside vitest).
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { runAxe, WCAG2_AA } from './kiosk-browser.js';

/** Fails the test with each violation (rule, help, elements) when axe-core finds any; `label` names the view. */
export async function expectAxeClean(
  page: Page,
  label: string,
  runOnly: { type: 'tag' | 'rule'; values: string[] } = WCAG2_AA,
): Promise<void> {
  const violations = await runAxe(page, runOnly);
  expect(
    violations.map((v) => `${label}: ${v.id} ${v.help} ${JSON.stringify(v.nodes.map((n) => n.target))}`),
  ).toEqual([]);
}
