// The fuzzing suite's smoke run (npm run fuzz runs the long version): every target fuzzes for ~3 s
// in its own process and must execute, grow its coverage beyond the seeds and find nothing; then
// every kept regression input (test/fuzz-regressions/<target>/, inputs that once crashed, hung or
// exhausted memory) is replayed in-process and must pass quickly.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replay } from '../scripts/fuzz/engine.js';
import { TARGETS } from '../scripts/fuzz/targets.js';

const ROOT = join(import.meta.dirname, '..');
const REGRESSIONS = join(ROOT, 'test', 'fuzz-regressions');

interface Stats {
  target: string;
  execs: number;
  features: number;
  seedFeatures: number;
  findings: { kind: string; message: string; file?: string }[];
}

describe('fuzz smoke', () => {
  it('every target runs ~3 s, grows coverage and finds nothing', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'scripts', 'fuzz', 'main.ts'),
          '--seconds',
          '3',
          '--jobs',
          '2',
          '--seed',
          '12345',
        ],
        { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 150_000 },
        (err, out, errOut) => {
          // Exit code 1 means findings: report them through the assertions below.
          if (err && !out.includes('{"fuzz"')) reject(new Error(`${err.message}\n${errOut}`));
          else resolve(out);
        },
      );
    });
    const last = stdout.trim().split('\n').pop() as string;
    const { fuzz } = JSON.parse(last) as { fuzz: { targets: Stats[] } };
    expect(fuzz.targets.map((t) => t.target).sort()).toEqual(TARGETS.map((t) => t.name).sort());
    for (const t of fuzz.targets) {
      expect(t.findings, `${t.target}: ${JSON.stringify(t.findings)}`).toEqual([]);
      expect(t.execs, t.target).toBeGreaterThan(50);
      expect(t.features, `${t.target} coverage grew`).toBeGreaterThan(t.seedFeatures);
    }
  }, 180_000);

  it('replays every kept regression input without a failure', async () => {
    let replayed = 0;
    for (const target of TARGETS) {
      const dir = join(REGRESSIONS, target.name);
      if (!existsSync(dir)) continue;
      const inputs = readdirSync(dir)
        .filter((f) => !f.startsWith('.') && !f.endsWith('.md'))
        .map((name) => ({ name, data: new Uint8Array(readFileSync(join(dir, name))) }));
      await target.setup?.();
      try {
        expect(await replay(target, inputs), target.name).toEqual([]);
      } finally {
        await target.teardown?.();
      }
      replayed += inputs.length;
    }
    expect(replayed).toBeGreaterThan(0);
  }, 60_000);
});
