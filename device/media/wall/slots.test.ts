import { describe, expect, it } from 'vitest';
import { type SenderActivity, assignSlots, changedLines } from './slots.js';

const never = Number.NEGATIVE_INFINITY;
const sender = (senderIndex: number, firstSeen: number, lastSpoke = never): SenderActivity => ({
  senderIndex,
  firstSeen,
  lastSpoke,
});
const empty = (n = 9) => Array.from({ length: n }, () => undefined);

describe('wall slot assignment', () => {
  it('fills free m-lines in order of arrival and keeps senders where they are', () => {
    const one = assignSlots(empty(), [sender(7, 10)]);
    expect(one).toEqual([7, ...empty(8)]);
    const two = assignSlots(one, [sender(7, 10), sender(3, 20)]);
    expect(two.slice(0, 2)).toEqual([7, 3]);
    // 7 leaves: 3 stays on m-line 1, m-line 0 goes idle, a newcomer takes it.
    const left = assignSlots(two, [sender(3, 20)]);
    expect(left.slice(0, 2)).toEqual([undefined, 3]);
    expect(assignSlots(left, [sender(3, 20), sender(9, 30)]).slice(0, 2)).toEqual([9, 3]);
  });

  it('more senders than m-lines: the most recently active speakers win', () => {
    const ten = Array.from({ length: 10 }, (_, i) => sender(i, i));
    const first = assignSlots(empty(), ten);
    expect(first).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]); // sender 9 arrived last, never spoke
    // Sender 9 speaks: it replaces the one that arrived last among the silent ones (8) on 8's m-line.
    const withNine = ten.map((s) => (s.senderIndex === 9 ? { ...s, lastSpoke: 100 } : s));
    const second = assignSlots(first, withNine);
    expect(second).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 9]);
    expect(changedLines(first, second)).toEqual([8]);
    // Now 8 speaks later than everyone: it is back, in place of the least recent non-speaker (7).
    const withEight = withNine.map((s) => (s.senderIndex === 8 ? { ...s, lastSpoke: 200 } : s));
    expect(assignSlots(second, withEight)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9]);
  });

  it('never shows a sender twice nor more than capacity', () => {
    const many = Array.from({ length: 30 }, (_, i) => sender(i, 30 - i, i % 3 === 0 ? i : never));
    const out = assignSlots(empty(), many);
    const shown = out.filter((s) => s !== undefined);
    expect(shown).toHaveLength(9);
    expect(new Set(shown).size).toBe(9);
    // The 9 most recent speakers: 27, 24, ..., 3.
    expect(new Set(shown)).toEqual(new Set([27, 24, 21, 18, 15, 12, 9, 6, 3]));
  });
});
