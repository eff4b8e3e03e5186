import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyframeLimiter } from './keyframe-limiter.js';

/** Drives a limiter the way the engine does: forced keyframes at the times returned, timers run on time. */
function simulate(requests: readonly number[], ownForces: readonly number[] = [], interval = 500) {
  const limiter = new KeyframeLimiter(interval);
  const keyframes: number[] = [];
  const timers: number[] = [];
  const events = [
    ...requests.map((t) => ({ t, kind: 'request' as const })),
    ...ownForces.map((t) => ({ t, kind: 'own' as const })),
  ].sort((a, b) => a.t - b.t);
  const force = (t: number) => {
    limiter.forced(t);
    keyframes.push(t);
  };
  const runTimersUpTo = (t: number) => {
    while (timers.length > 0 && (timers[0] as number) <= t) {
      const at = timers.shift() as number;
      if (limiter.fire()) force(at);
    }
  };
  for (const e of events) {
    runTimersUpTo(e.t);
    if (e.kind === 'own') {
      force(e.t);
      continue;
    }
    const d = limiter.request(e.t);
    if (d.action === 'force') force(e.t);
    else if (d.action === 'schedule') timers.push(e.t + d.inMs);
  }
  runTimersUpTo(Number.POSITIVE_INFINITY);
  return keyframes;
}

describe('forced-keyframe rate limit', () => {
  it('answers a lone request at once, and coalesces a PLI storm into one keyframe per interval', () => {
    expect(simulate([1000])).toEqual([1000]);
    // A PLI every 100 ms for 2 s, as a receiver that cannot decode sends them.
    const storm = Array.from({ length: 20 }, (_, i) => 1000 + i * 100);
    expect(simulate(storm)).toEqual([1000, 1500, 2000, 2500, 3000]);
  });

  it('never holds back the engine’s own keyframes (new epoch), which also answer earlier requests', () => {
    // Request at 1000 (forced), request at 1100 (deferred to 1500), new epoch at 1200: the epoch
    // keyframe goes out at once and answers the deferred request.
    expect(simulate([1000, 1100], [1200])).toEqual([1000, 1200]);
    // A new subscriber's request just after an epoch keyframe waits for the interval, then gets one.
    expect(simulate([1300], [1200])).toEqual([1200, 1700]);
  });

  it('a deferred keyframe whose timer never ran does not block later requests', () => {
    const limiter = new KeyframeLimiter(500);
    limiter.forced(0);
    expect(limiter.request(100)).toEqual({ action: 'schedule', inMs: 400 });
    expect(limiter.request(300)).toEqual({ action: 'coalesced' });
    // The engine stopped and its timers were cleared; much later a request arrives.
    expect(limiter.request(5000)).toEqual({ action: 'force' });
  });

  it('for any requests: keyframes at least an interval apart, and every request answered within one interval', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 80 }), (times) => {
        const requests = [...new Set(times)].sort((a, b) => a - b);
        const keyframes = simulate(requests);
        for (let i = 1; i < keyframes.length; i++)
          expect((keyframes[i] as number) - (keyframes[i - 1] as number)).toBeGreaterThanOrEqual(500);
        for (const r of requests) expect(keyframes.some((k) => k >= r && k <= r + 500)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
