// Keys out of order (protocol.md §4.4): a member holding a newer uncertified epoch P may still take the
// key of the older certified epoch C it lacks — once — and never any other older epoch.
import { describe, expect, it } from 'vitest';
import { KeyRing } from './key-ring.js';

const key = (b: number) => new Uint8Array(32).fill(b);
const meeting = () => ({ meetingId: 'm', creationNonce: new Uint8Array(32) });

describe('KeyRing keys out of order', () => {
  it('accepts the missing certified epoch below a newer key, switches to it, then to the newer one', () => {
    const ring = new KeyRing(meeting);
    ring.add(1, key(1), 0);
    ring.certify(1, 0);
    ring.add(3, key(3), 10); // P = 3 arrived, uncertified
    expect(ring.certify(2, 20)).toBe(false); // C = 2 certified, its key was lost
    expect(ring.awaitingEpoch).toBe(2);
    ring.add(2, key(2), 30); // the re-sent box for C
    expect(ring.sendEpoch).toBe(2);
    expect(ring.highestEpoch).toBe(3);
    expect(ring.has(3)).toBe(true);
    expect(() => ring.add(2, key(9), 40)).toThrow(/does not exceed/); // never twice
    expect(ring.certify(3, 50)).toBe(true);
    expect(ring.sendEpoch).toBe(3);
  });

  it('refuses an older epoch nobody certified', () => {
    const ring = new KeyRing(meeting);
    ring.add(1, key(1), 0);
    ring.certify(1, 0);
    ring.add(3, key(3), 10);
    expect(ring.awaitingEpoch).toBe(0);
    expect(() => ring.add(2, key(2), 20)).toThrow(/does not exceed/);
  });
});
