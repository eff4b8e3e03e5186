// Deterministic randomness and clocks for the E2EE tests: a SHA-256 counter-mode byte stream from a
// seed, so every run draws the same keys and a failing fast-check case replays exactly.
import { createHash } from 'node:crypto';
import type { RandomSource } from '../src/core/e2ee/index.js';

export function seededRandom(seed: string | number): RandomSource {
  let counter = 0;
  return (length: number) => {
    const out = new Uint8Array(length);
    for (let offset = 0; offset < length; offset += 32) {
      const block = createHash('sha256').update(`${seed}/${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, length - offset)), offset);
    }
    return out;
  };
}

export class FakeClock {
  now: number;
  constructor(start = 1_800_000_000_000) {
    this.now = start;
  }
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Flip bits of one character of a base64url/ID string, keeping it in the same alphabet. */
export function mutateString(text: string, position: number, delta: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const index = position % text.length;
  const current = alphabet.indexOf(text[index]!);
  const replacement =
    alphabet[(Math.max(current, 0) + 1 + (delta % (alphabet.length - 1))) % alphabet.length]!;
  return text.slice(0, index) + replacement + text.slice(index + 1);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Paths of every string/number leaf, skipping the given top-level keys. */
export function leafPaths(value: Json, skipTopLevel: string[] = []): (string | number)[][] {
  const paths: (string | number)[][] = [];
  const walk = (node: Json, path: (string | number)[]) => {
    if (typeof node === 'string' || typeof node === 'number') paths.push(path);
    else if (Array.isArray(node)) {
      node.forEach((child, i) => {
        walk(child, [...path, i]);
      });
    } else if (node && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        if (path.length === 0 && skipTopLevel.includes(key)) continue;
        walk(child, [...path, key]);
      }
    }
  };
  walk(value, []);
  return paths;
}

/** A deep copy of `value` with the leaf at `path` changed (string: one character; number: ±delta). */
export function mutateAt<T>(value: T, path: (string | number)[], delta: number): T {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  const leaf = node[last];
  if (typeof leaf === 'number') node[last] = leaf + (delta % 2 === 0 ? 1 : -1) * (1 + (delta % 3));
  else if (typeof leaf === 'string') node[last] = mutateString(leaf, delta, delta);
  return copy as T;
}
