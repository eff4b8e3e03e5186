// The OTA power-cut harness's smoke run (scripts/powercut-ota.ts runs ≥ 50 trials): a real updater in
// a child process is SIGKILLed after its last step and at a random step of an apply, a failed health
// gate's rollback and a crash-loop rollback; every disk image a power loss could leave must boot the
// old or the new version. A negative control (the updater without its fsyncs) must be caught.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');

interface Report {
  powercut_ota: {
    trials: number;
    cuts: number;
    images: number;
    unbootable: number;
    scenarios: Record<string, { trials: number; images: number; unbootable: number }>;
    firstFailures: unknown[];
  };
}

function harness(args: string[]): Promise<Report> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts', 'powercut-ota.ts'), ...args],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 110_000 },
      (err, out, errOut) => {
        const last = out.trim().split('\n').pop() ?? '';
        if (!last.startsWith('{"powercut_ota"')) reject(new Error(`${err?.message}\n${errOut}\n${out}`));
        else resolve(JSON.parse(last) as Report);
      },
    );
  });
}

describe('OTA power cut smoke', () => {
  it('every image after a cut boots the old or the new version', async () => {
    const r = await harness(['--trials', '6', '--scenario', 'apply,gate-fail,crash-loop']);
    expect(r.powercut_ota.firstFailures).toEqual([]);
    expect(r.powercut_ota.unbootable).toBe(0);
    expect(r.powercut_ota.trials).toBe(6);
    for (const [name, s] of Object.entries(r.powercut_ota.scenarios)) {
      expect(s.trials, name).toBe(2);
      expect(s.images, name).toBeGreaterThanOrEqual(2);
    }
  }, 120_000);

  it('catches an updater that does not fsync (negative control)', async () => {
    const r = await harness(['--trials', '1', '--naive', '--scenario', 'commit']);
    expect(r.powercut_ota.unbootable).toBeGreaterThan(0);
  }, 60_000);
});
