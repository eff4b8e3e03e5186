// npm run fuzz -- [--target name[,name]] [--seconds N] [--jobs N] [--corpus dir] [--seed n] [--list]
// Runs each target in its own child process (a hang or an out-of-memory abort kills only that
// child; the parent reports it) for the time budget, prints figures per target, and ends with one
// JSON line. Exit code 1 when anything was found.
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exitWithUsageIfAsked } from '../usage.js';
import { type FuzzStats, fuzz } from './engine.js';
import { TARGETS } from './targets.js';

exitWithUsageIfAsked(import.meta.url);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const REGRESSIONS_DIR = join(ROOT, 'test', 'fuzz-regressions');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

async function child(): Promise<void> {
  const name = arg('child') as string;
  const target = TARGETS.find((t) => t.name === name);
  if (!target) throw new Error(`unknown target ${name}`);
  const seconds = Number(arg('seconds') ?? 60);
  const corpusRoot = arg('corpus');
  const stats = await fuzz(target, {
    seconds,
    seed: Number(arg('seed') ?? Date.now() % 2 ** 31),
    ...(corpusRoot ? { corpusDir: join(corpusRoot, name) } : {}),
    findingsDir: join(arg('findings') ?? '/tmp/sealroom-fuzz-findings', name),
    extraSeedDirs: [join(REGRESSIONS_DIR, name)],
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${JSON.stringify({ fuzzStats: stats })}\n`);
  process.exit(0);
}

function runChild(name: string, seconds: number): Promise<FuzzStats> {
  const findings = arg('findings') ?? '/tmp/sealroom-fuzz-findings';
  const slow = join(findings, `${name}.slow-input`);
  rmSync(slow, { force: true });
  const args = [
    '--import',
    'tsx',
    '--max-old-space-size=1536',
    fileURLToPath(import.meta.url),
    '--child',
    name,
    '--seconds',
    String(seconds),
    '--findings',
    findings,
  ];
  for (const k of ['corpus', 'seed']) {
    const v = arg(k);
    if (v !== undefined) args.push(`--${k}`, v);
  }
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.on('close', (code, signal) => {
      const lines = out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          try {
            return JSON.parse(l);
          } catch {
            return undefined;
          }
        });
      const stats = lines.find((l) => l?.fuzzStats)?.fuzzStats as FuzzStats | undefined;
      if (stats) return resolve(stats);
      const hang = lines.find((l) => l?.fuzzHang);
      const finding = hang
        ? { kind: 'hang' as const, message: `no progress for ${hang.ms} ms`, file: hang.file }
        : {
            kind: 'crash' as const,
            message: `fuzzer process died (code ${code}, signal ${signal}): out of memory or a native crash`,
            ...(existsSync(slow) ? { file: slow } : {}),
          };
      resolve({
        target: name,
        seconds: 0,
        execs: 0,
        execsPerSecond: 0,
        corpus: 0,
        seedCorpus: 0,
        features: 0,
        seedFeatures: 0,
        growth: [],
        findings: [finding],
      });
    });
  });
}

async function main(): Promise<void> {
  if (arg('child')) return child();
  if (process.argv.includes('--list')) {
    for (const t of TARGETS) console.log(`${t.name.padEnd(14)} ${t.description}`);
    return;
  }
  const seconds = Number(arg('seconds') ?? 60);
  const wanted = arg('target')?.split(',');
  const targets = wanted ? TARGETS.filter((t) => wanted.includes(t.name)) : TARGETS;
  if (wanted && targets.length !== wanted.length)
    throw new Error(`unknown target in ${wanted.join(',')}; known: ${TARGETS.map((t) => t.name).join(', ')}`);
  const results: FuzzStats[] = [];
  // --jobs N: N targets at a time (the smoke test uses 2 on a 2-core box; figures are per target).
  const jobs = Math.max(1, Number(arg('jobs') ?? 1));
  const queue = [...targets];
  const byName = new Map<string, FuzzStats>();
  const report = (s: FuzzStats) => {
    const growth = s.growth.map((g) => `${g.atSeconds}s:${g.features}`).join(' ');
    console.log(
      `${s.target.padEnd(13)} ${String(s.execs).padStart(8)} execs ${String(s.execsPerSecond).padStart(6)}/s  features ${s.seedFeatures} → ${s.features}  corpus ${s.seedCorpus} → ${s.corpus}  findings ${s.findings.length}   [${growth}]`,
    );
    for (const f of s.findings) console.log(`    ${f.kind}: ${f.message}${f.file ? ` (${f.file})` : ''}`);
  };
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        process.stderr.write(`fuzzing ${t.name} for ${seconds} s …\n`);
        const s = await runChild(t.name, seconds);
        byName.set(t.name, s);
        report(s);
      }
    }),
  );
  for (const t of targets) results.push(byName.get(t.name) as FuzzStats);
  const findings = results.reduce((n, r) => n + r.findings.length, 0);
  console.log(JSON.stringify({ fuzz: { seconds, targets: results, findings } }));
  if (findings) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(err);
    process.exit(2);
  });
}
