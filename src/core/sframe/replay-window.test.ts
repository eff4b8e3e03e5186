import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SFrameError } from './errors.js';
import { ReplayWindow } from './replay-window.js';

/** The rules of docs/sframe.md §7, written the obvious way: a set of every counter ever accepted. */
function modelVerdict(accepted: Set<bigint>, highest: bigint | undefined, size: number, ctr: bigint): string {
  if (highest === undefined || ctr > highest) return 'ok';
  if (highest - ctr >= BigInt(size)) return 'TOO_OLD';
  return accepted.has(ctr) ? 'REPLAY' : 'ok';
}

function verdict(window: ReplayWindow, ctr: bigint): string {
  try {
    window.check(ctr);
    return 'ok';
  } catch (err) {
    if (err instanceof SFrameError) return err.code;
    throw err;
  }
}

describe('ReplayWindow', () => {
  it('agrees with the set-of-everything model on random counter sequences', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1000n }),
        fc.array(fc.tuple(fc.integer({ min: -60, max: 60 }), fc.boolean()), { maxLength: 300 }),
        (size, base, steps) => {
          const window = new ReplayWindow(size);
          const accepted = new Set<bigint>();
          let highest: bigint | undefined;
          let cursor = base + 500n;
          for (const [delta, authenticated] of steps) {
            cursor += BigInt(delta);
            if (cursor < 0n) cursor = 0n;
            const expected = modelVerdict(accepted, highest, size, cursor);
            expect(verdict(window, cursor)).toBe(expected);
            // A frame that fails authentication never reaches accept().
            if (expected === 'ok' && authenticated) {
              window.accept(cursor);
              accepted.add(cursor);
              highest = highest === undefined || cursor > highest ? cursor : highest;
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('validates its size', () => {
    expect(() => new ReplayWindow(-1)).toThrow(RangeError);
    expect(() => new ReplayWindow(1.5)).toThrow(RangeError);
    expect(() => new ReplayWindow(65_537)).toThrow(RangeError);
    expect(new ReplayWindow(65_536).size).toBe(65_536);
  });
});
