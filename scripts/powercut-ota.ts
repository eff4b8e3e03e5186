// npm run powercut:ota / node --import tsx scripts/powercut-ota.ts [--trials N] [--time-budget S]
//   [--scenario a,b] [--naive] [--work-dir DIR]
//
// Power cuts during an over-the-air update. Each trial copies a prepared update root (two slots, the
// `current` symlink, update-state.json, real release bundles built by src/update/bundle.ts) and runs
// one real step of the A/B updater in a child process — apply a bundle, commit, a boot-time rollback
// after too many attempts, a crash-loop rollback, a rollback after a failed health gate, a manual
// rollback — with its file-system layer (device/update/durable-fs.ts) journalling every operation.
// The child is SIGKILLed right before a random one of them (or inside the bundle's extraction), or
// by a timer at a random moment. Then the power cut: from the journal the harness rebuilds the disk
// images a power loss could leave — directory entries (created, renamed, symlinked, removed) not made
// durable by an fsync of their directory may be lost (any prefix of them survives), file data not
// fsynced may be lost or torn, a slot being extracted holds any part of its files — and boots each
// image: bootCheck() from the device's updater, then a real `node <root>/current/dist/app.js` that
// prints its version. Every image must start the old or the new version of that step, never neither.
// --naive drops the updater's fsyncs (a negative control: the harness must then find unbootable
// images). Default 50 trials. Prints figures; the last line is JSON {"powercut_ota": …}.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeUpdateFs, type UpdateFs } from '../device/update/durable-fs.js';
import { Updater } from '../device/update/updater.js';

const HERE = fileURLToPath(import.meta.url);
const ROOT = resolve(dirname(HERE), HERE.includes(`${join('dist', 'scripts')}`) ? '../..' : '..');

// ---------------------------------------------------------------------------------------------
// A tiny but real application tree and its release bundle.

/** An application tree whose `node dist/app.js` prints {"version": …}; `exitCode` ≠ 0 makes it fail. */
export function makeAppTree(
  dir: string,
  version: string,
  o: { exitCode?: number; files?: number } = {},
): void {
  fs.mkdirSync(join(dir, 'dist'), { recursive: true });
  fs.mkdirSync(join(dir, 'pipelines'), { recursive: true });
  fs.mkdirSync(join(dir, 'node_modules', 'dep'), { recursive: true });
  fs.writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'sealroom', version, type: 'module' }));
  fs.writeFileSync(
    join(dir, 'dist', 'app.js'),
    `import { version } from './version.js';\nconsole.log(JSON.stringify({ version }));\nprocess.exit(${o.exitCode ?? 0});\n`,
  );
  fs.writeFileSync(join(dir, 'dist', 'version.js'), `export const version = ${JSON.stringify(version)};\n`);
  fs.writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'export default 1;\n');
  for (let i = 0; i < (o.files ?? 6); i++)
    fs.writeFileSync(join(dir, 'pipelines', `p${i}.txt`), `${version} pipeline ${i}\n`.repeat(50));
}

export async function buildAppBundle(
  work: string,
  version: string,
  o: { exitCode?: number; arch?: 'x64' | 'arm64'; files?: number } = {},
): Promise<string> {
  const { buildBundle } = await import('../src/update/bundle.js');
  const src = join(work, `app-${version}${o.exitCode ? '-broken' : ''}`);
  fs.rmSync(src, { recursive: true, force: true });
  makeAppTree(src, version, o);
  const outFile = join(work, `sealroom-${version}${o.exitCode ? '-broken' : ''}.tar.gz`);
  await buildBundle({ sourceDir: src, outFile, version, arch: o.arch ?? hostArch(), sourceDateEpoch: 0 });
  return outFile;
}

const hostArch = (): 'x64' | 'arm64' => (process.arch === 'arm64' ? 'arm64' : 'x64');

/** What the box runs after a boot: the version printed by <root>/current/dist/app.js, or undefined. */
export function startCurrent(root: string): string | undefined {
  const r = spawnSync(process.execPath, [join(root, 'current', 'dist', 'app.js')], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) return undefined;
  try {
    return (JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The journalling file-system layer (in the child).

interface JournalEntry {
  step: number;
  op: string;
  path?: string;
  to?: string;
  /** rename: what `to` was before (file content base64, a symlink target, or absent). */
  prior?: { kind: 'file'; data: string } | { kind: 'link'; target: string } | { kind: 'absent' };
  /** remove: a copy of what was removed (relative to the stash directory). */
  stash?: string;
}

function priorOf(path: string): JournalEntry['prior'] {
  try {
    const st = fs.lstatSync(path);
    if (st.isSymbolicLink()) return { kind: 'link', target: fs.readlinkSync(path) };
    return { kind: 'file', data: fs.readFileSync(path).toString('base64') };
  } catch {
    return { kind: 'absent' };
  }
}

function journalFs(journal: string, crashAt: number, naive: boolean): UpdateFs {
  const jfd = fs.openSync(journal, 'a');
  const stashDir = `${journal}.stash`;
  let step = 0;
  const point = (e: Omit<JournalEntry, 'step'>) => {
    step++;
    fs.writeSync(jfd, `${JSON.stringify({ step, ...e })}\n`);
    if (step === crashAt) {
      process.kill(process.pid, 'SIGKILL');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
    }
  };
  const base = nodeUpdateFs;
  return {
    ...base,
    async writeNew(path, data, mode) {
      point({ op: 'create', path });
      return base.writeNew(path, data, mode);
    },
    async fsyncFile(path) {
      if (naive) return;
      point({ op: 'fsync-file', path });
      return base.fsyncFile(path);
    },
    async fsyncDir(dir) {
      if (naive) return;
      point({ op: 'fsync-dir', path: dir });
      return base.fsyncDir(dir);
    },
    async rename(from, to) {
      point({ op: 'rename', path: from, to, prior: priorOf(to) });
      return base.rename(from, to);
    },
    async symlink(target, path) {
      point({ op: 'create', path });
      return base.symlink(target, path);
    },
    async mkdir(path, mode) {
      point({ op: 'create', path });
      return base.mkdir(path, mode);
    },
    async remove(path) {
      let stash: string | undefined;
      if (fs.existsSync(path)) {
        stash = String(step + 1);
        fs.cpSync(path, join(stashDir, stash), { recursive: true, verbatimSymlinks: true });
      }
      point({ op: 'remove', path, ...(stash ? { stash } : {}) });
      return base.remove(path);
    },
    async phase(name, path) {
      point({ op: name, path });
    },
    tick() {
      point({ op: 'tick' });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Scenarios: a prepared root (durable), one step of the updater run by the child.

interface Prepared {
  bundles: Record<string, string>;
}

interface Scenario {
  name: string;
  /** Versions the box may start after a cut during this step (old, new). */
  allowed: string[];
  prepare(root: string, p: Prepared, updater: (root: string) => Updater): Promise<void>;
  run(u: Updater, p: Prepared): Promise<void>;
}

const failingCheck = { name: 'failing', run: async () => Promise.reject(new Error('kiosk page not up')) };

const SCENARIOS: Scenario[] = [
  {
    name: 'apply',
    allowed: ['1.0.0', '2.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
    },
    async run(u, p) {
      await u.apply(p.bundles['2.0.0'] as string);
    },
  },
  {
    name: 'apply-over-previous',
    allowed: ['2.0.0', '3.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
      await u(root).apply(p.bundles['2.0.0'] as string);
      await u(root).bootCheck();
      await u(root).commit();
    },
    async run(u, p) {
      await u.apply(p.bundles['3.0.0'] as string);
    },
  },
  {
    name: 'commit',
    allowed: ['2.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
      await u(root).apply(p.bundles['2.0.0'] as string);
      await u(root).bootCheck();
    },
    async run(u) {
      await u.commit();
    },
  },
  {
    name: 'boot-rollback',
    allowed: ['1.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
      await u(root).apply(p.bundles['2.0.0'] as string);
      for (let i = 0; i < 3; i++) await u(root).bootCheck();
    },
    async run(u) {
      await u.bootCheck();
    },
  },
  {
    name: 'crash-loop',
    allowed: ['1.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
      await u(root).apply(p.bundles['2.0.0'] as string);
      await u(root).bootCheck();
      await u(root).commit();
      for (let i = 0; i < 4; i++) await u(root).bootCheck();
    },
    async run(u) {
      await u.bootCheck();
    },
  },
  {
    name: 'gate-fail',
    allowed: ['1.0.0', '2.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
      await u(root).apply(p.bundles['2.0.0'] as string);
      await u(root).bootCheck();
    },
    async run(u) {
      await u.gate([failingCheck], { timeoutMs: 30, retryMs: 10 });
    },
  },
  {
    name: 'manual-rollback',
    allowed: ['1.0.0', '2.0.0'],
    async prepare(root, p, u) {
      await u(root).install(p.bundles['1.0.0'] as string);
      await u(root).apply(p.bundles['2.0.0'] as string);
      await u(root).bootCheck();
      await u(root).commit();
    },
    async run(u) {
      await u.rollback();
    },
  },
];

const VERSIONS = ['1.0.0', '2.0.0', '3.0.0'];

async function child(): Promise<void> {
  const sc = SCENARIOS.find((s) => s.name === arg('child'));
  if (!sc) throw new Error(`unknown scenario ${arg('child')}`);
  const root = arg('root') as string;
  const journal = arg('journal') as string;
  const bundles = JSON.parse(arg('bundles') as string) as Record<string, string>;
  const ufs = journalFs(journal, Number(arg('crash-at') ?? 0), process.argv.includes('--naive'));
  await sc.run(new Updater({ root, fs: ufs }), { bundles });
  fs.appendFileSync(journal, `${JSON.stringify({ step: -1, op: 'exit' })}\n`);
}

// ---------------------------------------------------------------------------------------------
// The power cut: disk images rebuilt from the journal, on a copy of what the killed child left.

function readJournal(path: string): JournalEntry[] {
  return fs
    .readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalEntry];
      } catch {
        return [];
      }
    });
}

interface Image {
  label: string;
  build(live: string, at: string): void;
}

/** Every distinct image a power loss before step `cut` could leave (entries: the journal). */
function powerCutImages(entries: JournalEntry[], cut: number, stashDir: string, liveRoot: string): Image[] {
  const done = entries.filter((e) => e.step > 0 && e.step < cut);
  const pendingEntries: { e: JournalEntry; dir: string }[] = [];
  const unsyncedData = new Set<string>();
  let extracting: string | undefined;
  for (const e of done) {
    const p = e.path as string;
    switch (e.op) {
      case 'create':
        pendingEntries.push({ e, dir: dirname(p) });
        unsyncedData.add(p);
        break;
      case 'rename':
        pendingEntries.push({ e, dir: dirname(e.to as string) });
        if (unsyncedData.delete(p)) unsyncedData.add(e.to as string);
        break;
      case 'remove':
        pendingEntries.push({ e, dir: dirname(p) });
        for (const f of [...unsyncedData]) if (f === p || f.startsWith(`${p}/`)) unsyncedData.delete(f);
        break;
      case 'fsync-file':
        unsyncedData.delete(p);
        break;
      case 'fsync-dir':
        for (let i = pendingEntries.length - 1; i >= 0; i--)
          if (pendingEntries[i]?.dir === p) pendingEntries.splice(i, 1);
        break;
      case 'extract-begin':
        extracting = p;
        break;
      case 'extract-end':
        extracting = undefined;
        break;
    }
  }
  const rel = (p: string) => relative(liveRoot, p);
  const undo = (e: JournalEntry, at: string) => {
    const p = join(at, rel(e.path as string));
    if (e.op === 'create') fs.rmSync(p, { recursive: true, force: true });
    else if (e.op === 'remove') {
      fs.rmSync(p, { recursive: true, force: true });
      if (e.stash) fs.cpSync(join(stashDir, e.stash), p, { recursive: true, verbatimSymlinks: true });
    } else if (e.op === 'rename') {
      const to = join(at, rel(e.to as string));
      fs.rmSync(p, { recursive: true, force: true });
      if (fs.existsSync(to) || isLink(to)) fs.renameSync(to, p);
      const prior = e.prior;
      if (prior?.kind === 'file') fs.writeFileSync(to, Buffer.from(prior.data, 'base64'));
      else if (prior?.kind === 'link') fs.symlinkSync(prior.target, to);
    }
  };
  const images: Image[] = [];
  const n = pendingEntries.length;
  const dataModes = unsyncedData.size ? (['kept', 'lost', 'torn'] as const) : (['kept'] as const);
  for (let k = 0; k <= n; k++)
    for (const mode of dataModes) {
      images.push({
        label: `${k}/${n} unsynced directory changes survive, unsynced data ${mode}${extracting ? ', slot half-extracted' : ''}`,
        build(live, at) {
          fs.rmSync(at, { recursive: true, force: true });
          fs.cpSync(live, at, { recursive: true, verbatimSymlinks: true });
          if (extracting) damageTree(join(at, rel(extracting)));
          for (const { e } of pendingEntries.slice(k).reverse()) undo(e, at);
          if (mode !== 'kept')
            for (const f of unsyncedData) {
              const p = join(at, rel(f));
              if (!fs.existsSync(p) || isLink(p) || !fs.statSync(p).isFile()) continue;
              const data = fs.readFileSync(p);
              fs.writeFileSync(p, mode === 'lost' ? Buffer.alloc(0) : data.subarray(0, data.length >> 1));
            }
        },
      });
    }
  return images;
}

/** A digest of a tree (names, file contents, symlink targets): identical images are booted once. */
function treeKey(dir: string): string {
  const h = createHash('sha256');
  for (const f of (fs.readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const p = join(dir, f);
    h.update(`${f}\0`);
    if (isLink(p)) h.update(`->${fs.readlinkSync(p)}\0`);
    else if (fs.statSync(p).isFile()) h.update(fs.readFileSync(p));
    h.update('\0');
  }
  return h.digest('hex');
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A slot cut during extraction: any of its files may be missing or short. */
function damageTree(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const files = (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((f) => join(dir, f))
    .filter((f) => !isLink(f) && fs.statSync(f).isFile());
  for (const f of files) {
    const r = Math.random();
    if (r < 0.3) fs.rmSync(f);
    else if (r < 0.45) fs.writeFileSync(f, fs.readFileSync(f).subarray(0, fs.statSync(f).size >> 1));
  }
}

// ---------------------------------------------------------------------------------------------
// The parent.

function arg(name: string, argv = process.argv): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** The child runs compiled JS: itself under dist/, else one esbuild bundle of this file. */
async function childEntry(): Promise<{ file: string; cleanup: () => void }> {
  if (HERE.endsWith('.js')) return { file: HERE, cleanup: () => {} };
  const outfile = join(ROOT, 'node_modules', '.cache', 'sealroom-powercut-ota', `child-${process.pid}.mjs`);
  const { build } = await import('esbuild');
  await build({
    entryPoints: [HERE],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
  });
  return { file: outfile, cleanup: () => fs.rmSync(outfile, { force: true }) };
}

function runChild(
  entry: string,
  args: string[],
  killAfterMs?: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((res) => {
    const p = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = killAfterMs !== undefined ? setTimeout(() => p.kill('SIGKILL'), killAfterMs) : undefined;
    p.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      res({ code, signal, stderr, ms: performance.now() - t0 });
    });
  });
}

export interface PowercutOtaOptions {
  trials?: number;
  /** Stop starting new trials after this many seconds (at least one trial per scenario runs). */
  timeBudgetS?: number;
  scenarios?: string[];
  naive?: boolean;
  workDir?: string;
  log?: (line: string) => void;
}

export interface PowercutOtaReport {
  trials: number;
  cuts: number;
  timerKills: number;
  images: number;
  unbootable: number;
  seconds: number;
  scenarios: Record<string, { trials: number; images: number; unbootable: number; steps: number }>;
  firstFailures: { scenario: string; cut: string; image: string; got: string; allowed: string[] }[];
}

export async function runOtaPowercut(o: PowercutOtaOptions = {}): Promise<PowercutOtaReport> {
  const trials = o.trials ?? 50;
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const scenarios = o.scenarios ? SCENARIOS.filter((s) => o.scenarios?.includes(s.name)) : SCENARIOS;
  if (o.scenarios && scenarios.length !== o.scenarios.length)
    throw new Error(`unknown scenario; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const workRoot = o.workDir ?? (fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const work = fs.mkdtempSync(join(workRoot, 'sealroom-powercut-ota-'));
  const entry = await childEntry();
  const t0 = performance.now();
  const report: PowercutOtaReport = {
    trials: 0,
    cuts: 0,
    timerKills: 0,
    images: 0,
    unbootable: 0,
    seconds: 0,
    scenarios: {},
    firstFailures: [],
  };
  try {
    const bundles: Record<string, string> = {};
    for (const v of VERSIONS) bundles[v] = await buildAppBundle(work, v);
    const pristine: Record<string, string> = {};
    const steps: Record<string, { steps: number; ms: number }> = {};
    for (const sc of scenarios) {
      const dir = join(work, `pristine-${sc.name}`, 'app');
      await sc.prepare(dir, { bundles }, (root) => new Updater({ root }));
      pristine[sc.name] = dir;
      // The reference run (no cut) counts the steps.
      const t = join(work, 'ref', 'app');
      fs.rmSync(dirname(t), { recursive: true, force: true });
      fs.mkdirSync(dirname(t), { recursive: true });
      fs.cpSync(dir, t, { recursive: true, verbatimSymlinks: true });
      const journal = join(work, 'ref', 'journal');
      fs.writeFileSync(journal, '');
      const r = await runChild(entry.file, [
        '--child',
        sc.name,
        '--root',
        t,
        '--journal',
        journal,
        '--bundles',
        JSON.stringify(bundles),
        ...(o.naive ? ['--naive'] : []),
      ]);
      const entries = readJournal(journal);
      if (r.code !== 0 || !entries.some((e) => e.op === 'exit'))
        throw new Error(`${sc.name}: the updater failed without a cut (${r.code}): ${r.stderr}`);
      steps[sc.name] = { steps: Math.max(...entries.map((e) => e.step)), ms: r.ms };
      const got = startCurrent(t);
      if (!got || !sc.allowed.includes(got))
        throw new Error(`${sc.name}: without a cut the box starts ${got}`);
      report.scenarios[sc.name] = { trials: 0, images: 0, unbootable: 0, steps: steps[sc.name]?.steps ?? 0 };
    }
    for (let trial = 0; trial < trials; trial++) {
      if (
        o.timeBudgetS !== undefined &&
        trial >= scenarios.length &&
        (performance.now() - t0) / 1000 > o.timeBudgetS
      )
        break;
      const sc = scenarios[trial % scenarios.length] as Scenario;
      const fig = report.scenarios[sc.name] as PowercutOtaReport['scenarios'][string];
      const { steps: n, ms } = steps[sc.name] as { steps: number; ms: number };
      const dir = join(work, `trial-${trial}`);
      const live = join(dir, 'live', 'app');
      const journal = join(dir, 'journal');
      fs.mkdirSync(dirname(live), { recursive: true });
      fs.cpSync(pristine[sc.name] as string, live, { recursive: true, verbatimSymlinks: true });
      fs.writeFileSync(journal, '');
      // Mostly a cut right before a journalled step (power loss); every fifth, a timer SIGKILL.
      const timer = trial % 5 === 4 && fig.trials > 0;
      // A scenario's first cut comes after its last step (the updater returned; was it all durable?).
      const crashAt = timer ? 0 : fig.trials === 0 ? n + 1 : 1 + Math.floor(Math.random() * (n + 1));
      const delay = timer ? Math.random() * ms : undefined;
      const args = [
        '--child',
        sc.name,
        '--root',
        live,
        '--journal',
        journal,
        '--bundles',
        JSON.stringify(bundles),
      ];
      if (crashAt) args.push('--crash-at', String(crashAt));
      if (o.naive) args.push('--naive');
      const r = await runChild(entry.file, args, delay);
      if (!timer && crashAt <= n && r.signal !== 'SIGKILL')
        throw new Error(
          `${sc.name}: the updater was not killed before step ${crashAt} (${r.code}): ${r.stderr}`,
        );
      const entries = readJournal(journal);
      const images: Image[] = timer
        ? [
            {
              label: `SIGKILL after ${delay?.toFixed(0)} ms (no power loss)`,
              build: (l, at) => fs.cpSync(l, at, { recursive: true, verbatimSymlinks: true }),
            },
          ]
        : powerCutImages(entries, crashAt, `${journal}.stash`, live);
      const cutLabel = timer
        ? `timer ${delay?.toFixed(0)} ms`
        : crashAt > n
          ? `after the last step (${n})`
          : `before step ${crashAt}/${n} (${entries.find((e) => e.step === crashAt)?.op})`;
      report.trials++;
      fig.trials++;
      if (timer) report.timerKills++;
      else report.cuts++;
      const seen = new Set<string>();
      for (const img of images) {
        const at = join(dir, 'image', 'app');
        fs.rmSync(dirname(at), { recursive: true, force: true });
        fs.mkdirSync(dirname(at), { recursive: true });
        img.build(live, at);
        const key = treeKey(at);
        if (seen.has(key)) continue;
        seen.add(key);
        let got: string;
        try {
          await new Updater({ root: at }).bootCheck();
          got = startCurrent(at) ?? 'nothing (the app did not start)';
        } catch (err) {
          got = `nothing (${(err as Error).message.split('\n')[0]})`;
        }
        report.images++;
        fig.images++;
        if (!sc.allowed.includes(got)) {
          report.unbootable++;
          fig.unbootable++;
          if (report.firstFailures.length < 10)
            report.firstFailures.push({
              scenario: sc.name,
              cut: cutLabel,
              image: img.label,
              got,
              allowed: sc.allowed,
            });
        }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    entry.cleanup();
  }
  report.seconds = Math.round((performance.now() - t0) / 100) / 10;
  for (const [name, f] of Object.entries(report.scenarios))
    log(
      `${name.padEnd(20)} steps ${String(f.steps).padStart(3)}  trials ${String(f.trials).padStart(3)}  images booted ${String(f.images).padStart(4)}  unbootable ${f.unbootable}`,
    );
  for (const f of report.firstFailures)
    log(
      `  UNBOOTABLE ${f.scenario} cut ${f.cut}, ${f.image}: started ${f.got}, allowed ${f.allowed.join(' | ')}`,
    );
  return report;
}

async function main(): Promise<void> {
  if (arg('child')) return child();
  const { exitWithUsageIfAsked } = await import('./usage.js');
  exitWithUsageIfAsked(import.meta.url);
  const budget = arg('time-budget');
  const report = await runOtaPowercut({
    trials: Number(arg('trials') ?? 50),
    ...(budget ? { timeBudgetS: Number(budget) } : {}),
    ...(arg('scenario') ? { scenarios: (arg('scenario') as string).split(',') } : {}),
    naive: process.argv.includes('--naive'),
    ...(arg('work-dir') ? { workDir: arg('work-dir') as string } : {}),
  });
  console.log(JSON.stringify({ powercut_ota: report }));
  if (report.unbootable) process.exitCode = 1;
}

const invoked = process.argv[1] && resolve(process.argv[1]) === HERE;
if (invoked || process.argv.includes('--child')) {
  main().catch((err) => {
    console.error(err);
    process.exit(2);
  });
}
