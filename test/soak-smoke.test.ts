// A 24 s soak (scripts/soak.ts): relay, provisioning, two room daemons with real media workers in a
// meeting; every process is sampled (RSS, CPU) and reported, the meeting holds with one code and
// media keeps crossing the relay. (The < 5 MB/h target is judged on runs of 10 minutes or more.)
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { SoakProcess } from '../scripts/soak.js';

const run = promisify(execFile);

interface Soak {
  error?: string;
  processes: SoakProcess[];
  meeting: { held: boolean; packetsForwarded: number };
  targetJudged: boolean;
  ok: boolean;
}

describe('soak smoke', () => {
  it('samples every process of a two-room meeting and reports a trend', async () => {
    let stdout = '';
    try {
      ({ stdout } = await run(
        process.execPath,
        ['--import', 'tsx', 'scripts/soak.ts', '--minutes', '0.4', '--interval', '1'],
        { timeout: 150_000, maxBuffer: 16 << 20 },
      ));
    } catch (err) {
      stdout = (err as { stdout?: string }).stdout ?? '';
    }
    const last = stdout.trim().split('\n').pop() ?? '';
    const soak = (JSON.parse(last) as { soak: Soak }).soak;
    expect(soak.error).toBeUndefined();
    const names = soak.processes.map((p) => p.name).sort();
    expect(names).toEqual(
      [
        'daemon Boardroom',
        'daemon Huddle',
        'media worker Boardroom',
        'media worker Huddle',
        'provisioning',
        'relay',
      ].sort(),
    );
    for (const p of soak.processes) {
      expect(p.samples).toBeGreaterThanOrEqual(15);
      expect(p.rssEndMb).toBeGreaterThan(10);
      expect(Number.isFinite(p.mbPerHour)).toBe(true);
      expect(p.cpuPercent).toBeGreaterThanOrEqual(0);
    }
    expect(soak.meeting.held).toBe(true);
    expect(soak.meeting.packetsForwarded).toBeGreaterThan(100);
    expect(soak.targetJudged).toBe(false);
    expect(soak.ok).toBe(true);
  }, 180_000);
});
