import { describe, expect, it } from 'vitest';
import { ActiveSpeakerPicker, dbov } from './speaker.js';

const tone = (amplitude: number, n = 800) => {
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++)
    b.writeInt16LE(Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * i) / 20)), i * 2);
  return b;
};

describe('active speaker', () => {
  it('measures RMS in dBov', () => {
    expect(dbov(tone(1))).toBeCloseTo(-3.01, 1); // a full-scale sine
    expect(dbov(tone(0.01))).toBeCloseTo(-43.0, 0);
    expect(dbov(Buffer.alloc(160))).toBe(Number.NEGATIVE_INFINITY);
  });

  it('needs 1.5 s of dominance above the floor, keeps the speaker through silence', () => {
    const p = new ActiveSpeakerPicker();
    let t = 0;
    const step = (levels: Record<number, number>, ms: number) => {
      let active: number | undefined;
      for (const end = t + ms; t < end; t += 100)
        for (const [s, l] of Object.entries(levels)) active = p.level(Number(s), l, t);
      return active;
    };
    // Below the floor nobody speaks.
    expect(step({ 1: -55, 2: -60 }, 3000)).toBeUndefined();
    // 1 talks: not before 1.5 s.
    expect(step({ 1: -20, 2: -60 }, 1400)).toBeUndefined();
    expect(step({ 1: -20, 2: -60 }, 300)).toBe(1);
    // 2 louder for 1 s, then a pause, then 1 s again: never 1.5 s in a row, 1 stays.
    expect(step({ 1: -30, 2: -15 }, 1000)).toBe(1);
    expect(step({ 1: -70, 2: -70 }, 500)).toBe(1);
    expect(step({ 1: -30, 2: -15 }, 1000)).toBe(1);
    // 2 keeps dominating: switches.
    expect(step({ 1: -30, 2: -15 }, 800)).toBe(2);
    // Silence keeps 2.
    expect(step({ 1: -80, 2: -80 }, 5000)).toBe(2);
    // A sender that stops sending levels counts as silent.
    expect(step({ 1: -10 }, 2000)).toBe(1);
    p.forget(1);
    expect(p.pick(t)).toBeUndefined();
  });
});
