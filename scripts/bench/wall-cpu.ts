// bench:wall's CPU accounting from /proc/<pid>/stat (utime + stime), so processes the bench does not
// run in-process — the receiving media worker and every Chromium process — are priced the same way.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, ms. */
  cpuMs: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: the fields after it start at the last ')'.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // f[0] = state (field 3); ppid field 4; utime field 14; stime field 15.
    return { pid, ppid: Number(f[1]), comm, cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS };
  } catch {
    return undefined;
  }
}

function allProcs(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** Every descendant of `root` (not root itself). */
export function descendants(root: number): ProcStat[] {
  const procs = allProcs();
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcStat[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      stack.push(c.pid);
    }
  }
  return out;
}

/** CPU ms so far of a set of processes, by pid (a process that is gone reads as absent). */
export type CpuSnapshot = Map<number, number>;

export function snapshot(pids: number[]): CpuSnapshot {
  const m: CpuSnapshot = new Map();
  for (const pid of pids) {
    const s = readStat(pid);
    if (s) m.set(pid, s.cpuMs);
  }
  return m;
}

/** CPU ms used between two snapshots (a process born in between counts from zero). */
export function used(before: CpuSnapshot, after: CpuSnapshot): number {
  let ms = 0;
  for (const [pid, cpu] of after) ms += cpu - (before.get(pid) ?? 0);
  return ms;
}

/** This process's Chromium processes: descendants whose command name says so. */
export function chromiumPids(): number[] {
  return descendants(process.pid)
    .filter((p) => /chrom/i.test(p.comm))
    .map((p) => p.pid);
}
