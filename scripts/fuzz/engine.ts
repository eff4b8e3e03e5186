// A small coverage-guided fuzzer for Node (Jazzer.js cannot run here: see
// /work/shared-issue10/reliability-H6.md). The loop is the classic one: take an input from the
// corpus, mutate it (byte-level mutators, a dictionary, splicing, and JSON-aware mutations for
// JSON targets), run the target, and keep the input when it reached a code block no earlier input
// reached. Coverage comes from V8 itself: precise *binary block* coverage through node:inspector
// (Profiler.startPreciseCoverage { callCount: false, detailed: true }); each takePreciseCoverage
// returns only the functions that ran since the previous one, with their blocks that did NOT run,
// and resets. A block is a feature; a function entry is a feature too.
//
// Failures: any exception the target does not classify as the parser's typed error, a run slower
// than the hang limit (a watchdog worker thread sees the main thread stuck, saves the input and
// kills the process), and a run that grows the RSS by more than the allocation limit.
import { Session } from 'node:inspector';
import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

export interface FuzzTarget {
  name: string;
  description: string;
  /** Starting inputs (valid messages, real descriptors, genuine frames …). */
  seeds(): Uint8Array[] | Promise<Uint8Array[]>;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** Runs one input. Must throw ONLY for a bug: the parser's typed errors are caught inside. */
  run(data: Uint8Array): void | Promise<void>;
  /** Inputs are JSON text: add JSON-aware mutations. */
  json?: boolean;
  maxLen: number;
  dictionary?: string[];
  /** Which script URLs count for coverage (default: project sources, not node_modules). */
  coverUrl?: (url: string) => boolean;
  /** Per-input time limit (hang), ms. */
  hangMs?: number;
}

export interface Finding {
  kind: 'crash' | 'hang' | 'huge-allocation';
  message: string;
  input: Uint8Array;
  file?: string;
}

export interface FuzzStats {
  target: string;
  seconds: number;
  execs: number;
  execsPerSecond: number;
  corpus: number;
  seedCorpus: number;
  features: number;
  seedFeatures: number;
  /** Features after 10 %, 25 %, 50 %, 100 % of the budget. */
  growth: { atSeconds: number; features: number; corpus: number }[];
  findings: { kind: Finding['kind']; message: string; file?: string }[];
}

const defaultCoverUrl = (url: string) =>
  url.startsWith('file://') &&
  !url.includes('/node_modules/') &&
  !url.includes('/scripts/fuzz/') &&
  /\/(src|device|provisioning)\//.test(url);

// ---- coverage ----

export class Coverage {
  readonly #session = new Session();
  readonly #known = new Map<string, Map<string, [number, number]>>();
  readonly #seen = new Set<string>();
  readonly #filter: (url: string) => boolean;

  constructor(filter: (url: string) => boolean) {
    this.#filter = filter;
    this.#session.connect();
    this.#post('Profiler.enable');
    this.#post('Profiler.startPreciseCoverage', { callCount: false, detailed: true });
  }

  // biome-ignore lint/suspicious/noExplicitAny: inspector replies are untyped JSON
  #post(method: string, params?: object): any {
    let result: unknown;
    let error: Error | null = null;
    // Same-thread inspector sessions answer synchronously.
    this.#session.post(method, params ?? {}, (err, res) => {
      error = err;
      result = res;
    });
    if (error) throw error;
    return result;
  }

  /** Features hit since the previous call (and resets V8's counters). */
  take(): string[] {
    const { result } = this.#post('Profiler.takePreciseCoverage') as {
      result: {
        scriptId: string;
        url: string;
        functions: {
          functionName: string;
          ranges: { startOffset: number; endOffset: number; count: number }[];
        }[];
      }[];
    };
    const hit: string[] = [];
    for (const script of result) {
      if (!this.#filter(script.url)) continue;
      for (const fn of script.functions) {
        const [whole, ...blocks] = fn.ranges;
        if (!whole || whole.count === 0) continue;
        const fnKey = `${script.url || `eval:${script.scriptId}`}#${whole.startOffset}`;
        hit.push(fnKey);
        let known = this.#known.get(fnKey);
        if (!known) {
          known = new Map();
          this.#known.set(fnKey, known);
        }
        const zero: [number, number][] = [];
        for (const b of blocks) {
          const k = `${b.startOffset}-${b.endOffset}`;
          if (!known.has(k)) known.set(k, [b.startOffset, b.endOffset]);
          if (b.count === 0) zero.push([b.startOffset, b.endOffset]);
        }
        for (const [k, [s, e]] of known) {
          if (!zero.some(([zs, ze]) => zs <= s && e <= ze)) hit.push(`${fnKey}:${k}`);
        }
      }
    }
    return hit;
  }

  /** Records features; returns how many were new. */
  add(features: string[]): number {
    let n = 0;
    for (const f of features) {
      if (!this.#seen.has(f)) {
        this.#seen.add(f);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.#seen.size;
  }

  close(): void {
    try {
      this.#post('Profiler.stopPreciseCoverage');
      this.#post('Profiler.disable');
    } catch {}
    this.#session.disconnect();
  }
}

// ---- random + mutators ----

export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 1;
  }
  next(): number {
    // xorshift32
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)] as T;
  }
}

const INTERESTING8 = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0xfe, 0x0f];
const INTERESTING_NUMBERS = [
  0,
  -1,
  1,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  1e308,
  -1e308,
  0.5,
  65535,
  65536,
  255,
  256,
  Number.MAX_SAFE_INTEGER + 2,
];

function mutateBytes(
  rng: Rng,
  input: Uint8Array,
  corpus: readonly Uint8Array[],
  dict: readonly Uint8Array[],
  maxLen: number,
): Uint8Array {
  let out: Uint8Array = Uint8Array.from(input);
  const rounds = 1 + rng.below(4);
  for (let r = 0; r < rounds; r++) {
    const op = rng.below(12);
    const len = out.length;
    switch (op) {
      case 0: // bit flip
        if (len) out[rng.below(len)]! ^= 1 << rng.below(8);
        break;
      case 1: // random byte
        if (len) out[rng.below(len)] = rng.below(256);
        break;
      case 2: // interesting byte
        if (len) out[rng.below(len)] = rng.pick(INTERESTING8);
        break;
      case 3: // arithmetic
        if (len) {
          const i = rng.below(len);
          out[i] = (out[i]! + (rng.below(35) - 17)) & 0xff;
        }
        break;
      case 4: {
        // delete a range
        if (len < 2) break;
        const at = rng.below(len);
        const n = 1 + rng.below(Math.min(16, len - at));
        out = concat(out.subarray(0, at), out.subarray(at + n));
        break;
      }
      case 5: {
        // insert random bytes
        const at = rng.below(len + 1);
        const ins = new Uint8Array(1 + rng.below(8)).map(() => rng.below(256));
        out = concat(out.subarray(0, at), ins, out.subarray(at));
        break;
      }
      case 6: {
        // duplicate a chunk
        if (!len) break;
        const from = rng.below(len);
        const n = 1 + rng.below(Math.min(64, len - from));
        const at = rng.below(len + 1);
        out = concat(out.subarray(0, at), out.slice(from, from + n), out.subarray(at));
        break;
      }
      case 7: {
        // dictionary token, insert or overwrite
        if (!dict.length) break;
        const tok = rng.pick(dict);
        const at = rng.below(len + 1);
        out = rng.chance(0.5)
          ? concat(out.subarray(0, at), tok, out.subarray(at))
          : concat(out.subarray(0, at), tok, out.subarray(Math.min(len, at + tok.length)));
        break;
      }
      case 8: {
        // splice with another corpus entry
        const other = rng.pick(corpus);
        if (!other?.length) break;
        const cut = rng.below(len + 1);
        const from = rng.below(other.length);
        out = concat(out.subarray(0, cut), other.subarray(from));
        break;
      }
      case 9: // truncate
        if (len) out = out.slice(0, rng.below(len));
        break;
      case 10: {
        // 16/32-bit interesting value, either endianness
        if (len < 2) break;
        const at = rng.below(len - 1);
        const v = rng.pick([0, 0xffff, 0x8000, 0x7fff, 0xffffffff, 0x80000000, 1, 0x100]);
        const be = rng.chance(0.5);
        const w = Math.min(len - at, rng.chance(0.5) ? 2 : 4);
        for (let i = 0; i < w; i++) {
          const shift = 8 * (be ? w - 1 - i : i);
          out[at + i] = Math.floor(v / 2 ** shift) & 0xff;
        }
        break;
      }
      default: {
        // copy a chunk over another place
        if (len < 2) break;
        const from = rng.below(len);
        const to = rng.below(len);
        const n = 1 + rng.below(Math.min(32, len - Math.max(from, to)));
        out.copyWithin(to, from, from + n);
      }
    }
  }
  return out.length > maxLen ? out.slice(0, maxLen) : out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function jsonPaths(
  value: unknown,
  path: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(path);
  if (out.length > 400) return out;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) jsonPaths(v, [...path, i], out);
  } else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) jsonPaths(v, [...path, k], out);
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let node = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
  return root;
}

function getAt(root: unknown, path: (string | number)[]): unknown {
  let node = root as Record<string | number, unknown> | undefined;
  for (const p of path) node = node?.[p] as Record<string | number, unknown> | undefined;
  return node;
}

/** A structure-aware mutation of a JSON document; undefined when the input is not JSON. */
function mutateJson(
  rng: Rng,
  input: Uint8Array,
  corpus: readonly Uint8Array[],
  dict: readonly string[],
): Uint8Array | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(input).toString('utf8'));
  } catch {
    return undefined;
  }
  const paths = jsonPaths(doc);
  const path = rng.pick(paths);
  const current = getAt(doc, path);
  let replacement: unknown;
  switch (rng.below(11)) {
    case 0:
      replacement = rng.pick(INTERESTING_NUMBERS);
      break;
    case 1:
      replacement = dict.length ? rng.pick(dict) : '';
      break;
    case 2:
      replacement = rng.pick([null, true, false, [], {}, '', 0]);
      break;
    case 3:
      replacement =
        typeof current === 'string' ? current.repeat(1 + rng.below(64)) : 'x'.repeat(rng.below(5000));
      break;
    case 4: // remove a key or an element
      if (path.length) {
        const parent = getAt(doc, path.slice(0, -1));
        const last = path[path.length - 1]!;
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete (parent as Record<string, unknown>)[last];
        return Buffer.from(JSON.stringify(doc));
      }
      replacement = {};
      break;
    case 5: // add a key
      if (current && typeof current === 'object' && !Array.isArray(current)) {
        (current as Record<string, unknown>)[
          dict.length && rng.chance(0.7) ? rng.pick(dict) : `k${rng.below(9)}`
        ] = rng.pick([1, 'x', null, {}, []]);
        return Buffer.from(JSON.stringify(doc));
      }
      replacement = [current];
      break;
    case 6: // value from another corpus document, same path
      try {
        const other = JSON.parse(Buffer.from(rng.pick(corpus)).toString('utf8'));
        const p2 = rng.pick(jsonPaths(other));
        replacement = getAt(other, p2);
      } catch {
        replacement = null;
      }
      break;
    case 7: // array grows
      replacement = Array.isArray(current) ? [...current, ...current, current[0]] : [current, current];
      break;
    case 8: // deep nesting
      replacement = nest(current, 1 + rng.below(100));
      break;
    case 9: // mutate a string's bytes
      if (typeof current === 'string') {
        const b = mutateBytes(rng, Buffer.from(current), [], [], 4096);
        replacement = Buffer.from(b).toString(rng.chance(0.5) ? 'utf8' : 'latin1');
      } else replacement = String(current);
      break;
    default:
      replacement = typeof current === 'number' ? current + rng.below(5) - 2 : rng.below(1000);
  }
  doc = setAt(doc, path, replacement);
  return Buffer.from(JSON.stringify(doc) ?? 'null');
}

function nest(value: unknown, depth: number): unknown {
  let v = value;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

// ---- the loop ----

export interface RunOptions {
  seconds: number;
  seed?: number;
  /** Kept inputs (read at start, new ones written) — a directory per target. */
  corpusDir?: string;
  /** Failing inputs are written here. */
  findingsDir?: string;
  /** Extra inputs to start from (e.g. test/fuzz-regressions/<target>). */
  extraSeedDirs?: string[];
  /** RSS growth in one run counted as a huge allocation. */
  allocationLimitBytes?: number;
  /** Stop at the first finding (default: keep going, up to 20 findings). */
  stopOnFinding?: boolean;
  log?: (line: string) => void;
}

function readDirInputs(dir: string): Uint8Array[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .sort()
    .map((f) => new Uint8Array(readFileSync(join(dir, f))));
}

/** Worker source: watches the main thread's heartbeat and saves + kills on a hang. */
const WATCHDOG = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const state = new Int32Array(workerData.sab, 0, 4); // [execId, busy, length, stop]
const bytes = new Uint8Array(workerData.sab, 16);
let lastId = -1, since = Date.now(), savedSlow = false;
setInterval(() => {
  if (Atomics.load(state, 3) === 1) process.exit(0);
  const id = Atomics.load(state, 0), busy = Atomics.load(state, 1);
  if (id !== lastId || !busy) { lastId = id; since = Date.now(); savedSlow = false; return; }
  const ms = Date.now() - since;
  if (ms > 1000 && !savedSlow && workerData.slowFile) {
    savedSlow = true;
    fs.mkdirSync(require('node:path').dirname(workerData.slowFile), { recursive: true });
    fs.writeFileSync(workerData.slowFile, bytes.slice(0, Atomics.load(state, 2)));
  }
  if (ms > workerData.hangMs) {
    const input = bytes.slice(0, Atomics.load(state, 2));
    fs.mkdirSync(workerData.dir, { recursive: true });
    const file = workerData.dir + '/hang-' + require('node:crypto').createHash('sha256').update(input).digest('hex').slice(0, 16);
    fs.writeFileSync(file, input);
    process.stderr.write('\\nFUZZ HANG (' + ms + ' ms): input saved to ' + file + '\\n');
    process.stdout.write(JSON.stringify({ fuzzHang: true, file, ms }) + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}, 50);
`;

export async function fuzz(target: FuzzTarget, opts: RunOptions): Promise<FuzzStats> {
  const log = opts.log ?? (() => {});
  const rng = new Rng(opts.seed ?? Date.now());
  const hangMs = target.hangMs ?? 3000;
  const findingsDir = opts.findingsDir ?? join('/tmp', 'sealroom-fuzz-findings', target.name);
  const allocationLimit = opts.allocationLimitBytes ?? 512 * 1024 * 1024;
  const sab = new SharedArrayBuffer(16 + target.maxLen + 64);
  const state = new Int32Array(sab, 0, 4);
  const shared = new Uint8Array(sab, 16);
  const watchdog = new Worker(WATCHDOG, {
    eval: true,
    workerData: {
      sab,
      hangMs,
      dir: findingsDir,
      slowFile: join(findingsDir, '..', `${target.name}.slow-input`),
    },
  });
  watchdog.unref();
  await target.setup?.();
  const coverage = new Coverage(target.coverUrl ?? defaultCoverUrl);
  const dict = (target.dictionary ?? []).map((s) => new Uint8Array(Buffer.from(s)));
  const findings: Finding[] = [];
  const seenFindings = new Set<string>();
  let execs = 0;
  let execId = 0;

  const runOne = async (input: Uint8Array): Promise<{ features: string[]; error?: Finding }> => {
    const data = input.length > target.maxLen ? input.subarray(0, target.maxLen) : input;
    shared.set(data.subarray(0, shared.length));
    Atomics.store(state, 2, Math.min(data.length, shared.length));
    Atomics.store(state, 0, ++execId);
    Atomics.store(state, 1, 1);
    const rssBefore = process.memoryUsage.rss();
    let error: Finding | undefined;
    try {
      const r = target.run(data);
      if (r) await r;
    } catch (err) {
      const e = err as Error;
      error = {
        kind: 'crash',
        message: `${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`.slice(0, 300),
        input: data,
      };
      const frame = String(e?.stack ?? '')
        .split('\n')
        .find((l) => l.includes('/work/') || l.includes('file://'));
      if (frame) error.message += ` @ ${frame.trim().replace(/^at /, '').slice(0, 160)}`;
    }
    Atomics.store(state, 1, 0);
    execs++;
    const grew = process.memoryUsage.rss() - rssBefore;
    if (!error && grew > allocationLimit)
      error = {
        kind: 'huge-allocation',
        message: `one run grew RSS by ${(grew / 2 ** 20).toFixed(0)} MiB`,
        input: data,
      };
    return { features: coverage.take(), ...(error ? { error } : {}) };
  };

  const record = (f: Finding) => {
    const sig = `${f.kind}:${f.message.replace(/\d+/g, 'N').slice(0, 200)}`;
    if (seenFindings.has(sig)) return;
    seenFindings.add(sig);
    mkdirSync(findingsDir, { recursive: true });
    f.file = join(
      findingsDir,
      `${f.kind}-${createHash('sha256').update(f.input).digest('hex').slice(0, 16)}`,
    );
    writeFileSync(f.file, f.input);
    findings.push(f);
    log(`  FINDING ${f.kind}: ${f.message}\n    input: ${f.file}`);
  };

  // Seeds: the target's, then kept corpus and regression inputs. Everything seeded is kept.
  const corpus: Uint8Array[] = [];
  const corpusKeys = new Set<string>();
  const keep = (input: Uint8Array, persist: boolean) => {
    const key = createHash('sha256').update(input).digest('hex');
    if (corpusKeys.has(key)) return;
    corpusKeys.add(key);
    corpus.push(input);
    if (persist && opts.corpusDir) {
      mkdirSync(opts.corpusDir, { recursive: true });
      writeFileSync(join(opts.corpusDir, key.slice(0, 20)), input);
    }
  };
  const initial = [
    ...(await target.seeds()),
    ...(opts.corpusDir ? readDirInputs(opts.corpusDir) : []),
    ...(opts.extraSeedDirs ?? []).flatMap(readDirInputs),
  ];
  coverage.take(); // drop what set-up ran
  for (const input of initial) {
    const { features, error } = await runOne(input);
    if (error) record(error);
    coverage.add(features);
    keep(input.length > target.maxLen ? input.slice(0, target.maxLen) : input, false);
  }
  if (corpus.length === 0) keep(new Uint8Array(0), false);
  const seedFeatures = coverage.size;
  const seedCorpus = corpus.length;
  log(`  ${target.name}: ${seedCorpus} seed inputs, ${seedFeatures} features`);

  const t0 = performance.now();
  const budgetMs = opts.seconds * 1000;
  const marks = [0.1, 0.25, 0.5, 1].map((f) => f * budgetMs);
  const growth: FuzzStats['growth'] = [];
  const dictStrings = target.dictionary ?? [];
  let lastLog = t0;
  while (performance.now() - t0 < budgetMs) {
    if (opts.stopOnFinding && findings.length) break;
    if (findings.length >= 20) break;
    const parent = rng.chance(0.5)
      ? corpus[corpus.length - 1 - rng.below(Math.min(corpus.length, 16))]!
      : rng.pick(corpus);
    let input: Uint8Array | undefined;
    if (target.json && rng.chance(0.6)) input = mutateJson(rng, parent, corpus, dictStrings);
    input ??= mutateBytes(rng, parent, corpus, dict, target.maxLen);
    if (input.length > target.maxLen) input = input.slice(0, target.maxLen);
    const { features, error } = await runOne(input);
    if (error) record(error);
    else if (coverage.add(features) > 0) keep(input, true);
    const elapsed = performance.now() - t0;
    while (marks.length && elapsed >= marks[0]!) {
      marks.shift();
      growth.push({
        atSeconds: Math.round(elapsed / 100) / 10,
        features: coverage.size,
        corpus: corpus.length,
      });
    }
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      log(
        `  ${target.name}: ${(elapsed / 1000).toFixed(0)} s, ${execs} execs, ${coverage.size} features, corpus ${corpus.length}`,
      );
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  if (growth.length === 0 || growth[growth.length - 1]!.features !== coverage.size)
    growth.push({ atSeconds: Math.round(seconds * 10) / 10, features: coverage.size, corpus: corpus.length });
  coverage.close();
  Atomics.store(state, 3, 1);
  await watchdog.terminate();
  await target.teardown?.();
  return {
    target: target.name,
    seconds: Math.round(seconds * 10) / 10,
    execs,
    execsPerSecond: Math.round(execs / Math.max(seconds, 0.001)),
    corpus: corpus.length,
    seedCorpus,
    features: coverage.size,
    seedFeatures,
    growth,
    findings: findings.map(({ kind, message, file }) => ({ kind, message, ...(file ? { file } : {}) })),
  };
}

/** Replays inputs (regressions): resolves with the inputs that still fail. */
export async function replay(
  target: FuzzTarget,
  inputs: { name: string; data: Uint8Array }[],
): Promise<{ name: string; error: string }[]> {
  const failed: { name: string; error: string }[] = [];
  for (const { name, data } of inputs) {
    const t0 = performance.now();
    try {
      await target.run(data.length > target.maxLen ? data.subarray(0, target.maxLen) : data);
    } catch (err) {
      failed.push({ name, error: String((err as Error)?.stack ?? err) });
      continue;
    }
    const ms = performance.now() - t0;
    if (ms > (target.hangMs ?? 3000)) failed.push({ name, error: `took ${ms.toFixed(0)} ms` });
  }
  return failed;
}
