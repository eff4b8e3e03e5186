import { describe, expect, it } from 'vitest';
import { MAX_COUNTER_STEP, plausibleCounter } from './counter-policy.js';
import { SFrameReceiver } from './receiver.js';
import { SFrameSender } from './sender.js';
import { isSFrameError } from './errors.js';

const G = (g: number) => BigInt(g) << 40n;

describe('counter plausibility', () => {
  it('accepts steady counters, small gaps and worker restarts; refuses far jumps', () => {
    expect(plausibleCounter(0n, undefined)).toBe(true);
    expect(plausibleCounter(G(3) + 5n, undefined)).toBe(true); // a restarted sender joined late
    expect(plausibleCounter(2n ** 63n + 2n ** 39n, undefined)).toBe(false);
    expect(plausibleCounter(1000n + MAX_COUNTER_STEP, 1000n)).toBe(true);
    expect(plausibleCounter(1001n + MAX_COUNTER_STEP, 1000n)).toBe(false);
    expect(plausibleCounter(G(1), 50_000n)).toBe(true); // supervisor restart: next generation
    expect(plausibleCounter(G(200) + 10n, G(1) + 7n)).toBe(true);
    expect(plausibleCounter(G(300), G(1))).toBe(false);
    expect(plausibleCounter(G(2) + MAX_COUNTER_STEP, G(1))).toBe(false);
    expect(plausibleCounter(5n, 900n)).toBe(true); // behind: the replay window decides
  });

  it('a far-ahead frame that authenticates is refused without moving the window', () => {
    const key = new Uint8Array(32).fill(4);
    const rx = new SFrameReceiver({ replayWindow: 64, plausibleCounter });
    rx.setKey(7n, key);
    const genuine = new SFrameSender({ kid: 7n, baseKey: key });
    const far = new SFrameSender({ kid: 7n, baseKey: key, initialCounter: 2n ** 62n });
    rx.decrypt(genuine.encrypt(new Uint8Array(10)));
    let code = '';
    try {
      rx.decrypt(far.encrypt(new Uint8Array(10)));
    } catch (err) {
      if (isSFrameError(err)) code = err.code;
    }
    expect(code).toBe('IMPLAUSIBLE_COUNTER');
    for (let i = 0; i < 5; i++)
      expect(rx.decrypt(genuine.encrypt(new Uint8Array(10))).ctr).toBe(BigInt(i + 1));
  });
});
