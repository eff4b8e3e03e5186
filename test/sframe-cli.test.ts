// `sealroom selftest` as an operator runs it: the CLI entry compiled to plain JavaScript (esbuild,
// bundling our sources, npm packages left external so they resolve from node_modules like in dist/),
// executed by `node` in a child process. Built fresh per run, so it never tests a stale dist/.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const officialVectors = join(root, 'src/core/sframe/testdata/rfc9605-test-vectors.json');
let workDir = '';
let cli = '';

beforeAll(async () => {
  // Inside the repository so `commander` & co. resolve from its node_modules.
  mkdirSync(join(root, 'test-artifacts'), { recursive: true });
  workDir = mkdtempSync(join(root, 'test-artifacts', 'sframe-cli-'));
  cli = join(workDir, 'sealroom.mjs');
  await build({
    entryPoints: [join(root, 'src/cli/sealroom.ts')],
    outfile: cli,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'silent',
  });
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

function sealroom(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60_000 });
  const lines = result.stdout.trimEnd().split('\n');
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, lastLine: lines.at(-1) };
}

describe('sealroom selftest (built CLI under plain node)', () => {
  it('runs the built-in known-answer tests, prints each group, ends with "N passed, 0 failed", exits 0', () => {
    const run = sealroom('selftest');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^ok +sframe +20\/20 passed$/m);
    expect(run.stdout).toMatch(/^ok +e2ee +12\/12 passed$/m); // docs/protocol.md §11 included
    expect(run.lastLine).toMatch(/^\d+ passed, 0 failed$/);
    expect(Number(run.lastLine!.split(' ')[0])).toBeGreaterThanOrEqual(20);
  });

  it('checks every entry of the official vector file', () => {
    const run = sealroom('selftest', '--vectors', officialVectors);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^ok +header +289\/289 passed$/m);
    expect(run.stdout).toMatch(/^ok +aes_ctr_hmac +3\/3 passed$/m);
    expect(run.stdout).toMatch(/^ok +sframe +5\/5 passed$/m);
    expect(run.lastLine).toBe('297 passed, 0 failed');
  });

  it('exits 1 and names the failing entry when a vector does not match', () => {
    const tampered = readFileSync(officialVectors, 'utf8').replace(
      '"sframe_salt": "75234edefe07819026751816"',
      '"sframe_salt": "75234edefe07819026751817"',
    );
    const path = join(workDir, 'tampered.json');
    writeFileSync(path, tampered);
    const run = sealroom('selftest', '--vectors', path);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^FAIL +sframe +4\/5 passed$/m);
    expect(run.stdout).toContain('sframe[3] suite=0x0004 kid=291 ctr=17767: sframe_salt: expected');
    expect(run.lastLine).toBe('296 passed, 1 failed');
  });

  it('exits 2 with a clear message for a missing file', () => {
    const run = sealroom('selftest', '--vectors', join(workDir, 'missing.json'));
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^sealroom selftest: cannot read vector file .*missing\.json: ENOENT/);
  });

  it('exits 2 with a clear message for a file it cannot parse', () => {
    const path = join(workDir, 'garbage.json');
    writeFileSync(path, 'kid=1 ctr=2\n');
    const run = sealroom('selftest', '--vectors', path);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`${path} is not an SFrame test-vector file: not valid JSON`);
  });

  it('documents itself under --help', () => {
    const run = sealroom('selftest', '--help');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('--vectors <file>');
    expect(run.stdout).toContain('N passed, M failed');
  });
});
