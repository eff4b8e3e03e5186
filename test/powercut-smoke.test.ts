// The power-cut harness's smoke run (npm run powercut runs every cut point, several trials): every
// kind of device state is written by a child process that is killed before a few sampled fs steps
// (and mid-write), the disk images a power cut could leave are rebuilt from its journal, and each
// must read back as the old or the new state. A negative control — a plain fs.writeFile with no
// fsync — must be caught, so the harness is known to be able to fail.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

interface Report {
  powercut: {
    kills: number;
    images: number;
    violations: number;
    scenarios: Record<string, { kills: number; images: number; violations: number }>;
    firstViolations: unknown[];
  };
}

function powercut(args: string[]): Promise<Report> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts', 'powercut.ts'), ...args],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 170_000 },
      (err, out, errOut) => {
        const last = out.trim().split('\n').pop() ?? '';
        if (!last.startsWith('{"powercut"')) reject(new Error(`${err?.message}\n${errOut}\n${out}`));
        else resolve(JSON.parse(last) as Report);
      },
    );
  });
}

describe('power cut smoke', () => {
  it('every kind of device state reads back old or new after cuts at sampled steps', async () => {
    const r = await powercut(['--trials', '1', '--sample', '3', '--random-kills', '1']);
    expect(Object.keys(r.powercut.scenarios).sort()).toEqual(
      ['ca-pin', 'config', 'crl', 'enrollment', 'identity', 'partner-cas', 'renewal'].sort(),
    );
    expect(r.powercut.firstViolations).toEqual([]);
    expect(r.powercut.violations).toBe(0);
    for (const [name, s] of Object.entries(r.powercut.scenarios)) {
      expect(s.kills, name).toBeGreaterThanOrEqual(2);
      expect(s.images, name).toBeGreaterThan(s.kills);
    }
  }, 180_000);

  it('catches a writer that is not durable (negative control)', async () => {
    const r = await powercut(['--trials', '1', '--random-kills', '0', '--scenario', 'naive-control']);
    expect(r.powercut.violations).toBeGreaterThan(0);
  }, 60_000);
});
