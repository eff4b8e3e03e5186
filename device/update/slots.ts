// The device's two application slots under an update root (default /var/lib/sealroom/app):
//
//   <root>/slots/a, <root>/slots/b   one extracted release bundle each (sealroom-release.json first)
//   <root>/current -> slots/a|b      what the service runs: node <root>/current/dist/src/cli/sealroom.js
//   <root>/update-state.json         which slot is committed, which one is on trial, crash-loop starts
//
// The state file is the truth; the `current` symlink follows it (bootCheck repairs it if a power cut
// left it behind). Both are replaced atomically: a new file or symlink under a temporary name, fsync,
// rename(2) over the old one, fsync of the directory. Only node: built-ins (boot logic must stay small).
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { nodeUpdateFs, type UpdateFs } from './durable-fs.js';

export type SlotName = 'a' | 'b';
export const SLOT_NAMES: readonly SlotName[] = ['a', 'b'];
export const DEFAULT_UPDATE_ROOT = '/var/lib/sealroom/app';
export const STATE_FILE = 'update-state.json';
export const MANIFEST_FILE = 'sealroom-release.json';

export interface SlotRelease {
  slot: SlotName;
  version: string;
}

export interface PendingUpdate extends SlotRelease {
  /** Starts of the new version so far (bootCheck counts them). */
  attempts: number;
  /** ISO time: not committed by then → rolled back. */
  deadline: string;
}

export interface UpdateEvent {
  kind: 'installed' | 'applied' | 'committed' | 'rolled-back' | 'crash-loop-rollback' | 'repaired';
  at: string;
  version: string;
  detail?: string;
}

export interface UpdateState {
  format: 1;
  /** The committed slot. */
  current: SlotName;
  committedVersion: string;
  /** The slot the box can go back to (kept after a commit, cleared before the slot is reused). */
  previous?: SlotRelease;
  /** A new version on trial: `current` points at it until it commits or rolls back. */
  pending?: PendingUpdate;
  /** Start times (ms) since the running version last reached healthy: a crash loop detector. */
  starts?: number[];
  /** Versions that were rolled back: not installed again unless forced. */
  rejected?: string[];
  last?: UpdateEvent;
}

export interface ReleaseManifestLike {
  name: string;
  version: string;
  arch: string;
  node?: string;
  files?: number;
}

export class UpdateStateError extends Error {
  override readonly name = 'UpdateStateError';
}

export const otherSlot = (s: SlotName): SlotName => (s === 'a' ? 'b' : 'a');

const isSlot = (v: unknown): v is SlotName => v === 'a' || v === 'b';
const isRelease = (v: unknown): v is SlotRelease =>
  typeof v === 'object' &&
  v !== null &&
  isSlot((v as SlotRelease).slot) &&
  typeof (v as SlotRelease).version === 'string';

/** Parses and checks update-state.json; throws UpdateStateError on anything malformed. */
export function parseUpdateState(text: string): UpdateState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UpdateStateError('update-state.json is not JSON');
  }
  const s = raw as Partial<UpdateState>;
  if (typeof s !== 'object' || s === null || s.format !== 1)
    throw new UpdateStateError('unknown state format');
  if (!isSlot(s.current) || typeof s.committedVersion !== 'string')
    throw new UpdateStateError('state without a committed slot');
  if (s.previous !== undefined && !isRelease(s.previous)) throw new UpdateStateError('bad previous slot');
  if (s.pending !== undefined) {
    const p = s.pending;
    if (!isRelease(p) || typeof p.attempts !== 'number' || typeof p.deadline !== 'string')
      throw new UpdateStateError('bad pending update');
    if (p.slot === s.current) throw new UpdateStateError('pending update in the committed slot');
  }
  return s as UpdateState;
}

export class Slots {
  readonly slotsDir: string;
  readonly currentLink: string;
  readonly stateFile: string;

  constructor(
    readonly root: string,
    readonly fs: UpdateFs = nodeUpdateFs,
  ) {
    this.slotsDir = join(root, 'slots');
    this.currentLink = join(root, 'current');
    this.stateFile = join(root, STATE_FILE);
  }

  slotDir(slot: SlotName): string {
    return join(this.slotsDir, slot);
  }

  /** The state, undefined when the root was never installed; throws UpdateStateError when corrupt. */
  async readState(): Promise<UpdateState | undefined> {
    const text = await this.fs.readText(this.stateFile);
    return text === undefined ? undefined : parseUpdateState(text);
  }

  /** temp file + fsync + rename + fsync of the directory. */
  async writeState(state: UpdateState): Promise<void> {
    parseUpdateState(JSON.stringify(state)); // never write what we could not read back
    const tmp = join(this.root, `.${STATE_FILE}.${randomBytes(4).toString('hex')}.tmp`);
    await this.fs.writeNew(tmp, `${JSON.stringify(state, null, 2)}\n`, 0o644);
    await this.fs.fsyncFile(tmp);
    await this.fs.rename(tmp, this.stateFile);
    await this.fs.fsyncDir(this.root);
  }

  /** Which slot `current` points at (undefined: missing or not one of ours). */
  async linkedSlot(): Promise<SlotName | undefined> {
    const target = await this.fs.readLink(this.currentLink);
    const m = target?.match(/^(?:\.\/)?slots\/([ab])\/?$/);
    return m ? (m[1] as SlotName) : undefined;
  }

  /** Atomic switch: a temporary symlink renamed over `current`, then fsync of the root directory. */
  async switchTo(slot: SlotName): Promise<void> {
    const tmp = join(this.root, `.current.${randomBytes(4).toString('hex')}.tmp`);
    await this.fs.symlink(`slots/${slot}`, tmp);
    await this.fs.rename(tmp, this.currentLink);
    await this.fs.fsyncDir(this.root);
  }

  /** The release manifest in a slot, or undefined when it is missing or unreadable. */
  async readManifest(slot: SlotName): Promise<ReleaseManifestLike | undefined> {
    try {
      const text = await this.fs.readText(join(this.slotDir(slot), MANIFEST_FILE));
      if (text === undefined) return undefined;
      const m = JSON.parse(text) as ReleaseManifestLike;
      return typeof m.version === 'string' && m.name === 'sealroom' ? m : undefined;
    } catch {
      return undefined;
    }
  }

  /** Makes the directories of a fresh root durable. */
  async ensureLayout(): Promise<void> {
    const chain: string[] = [this.slotsDir];
    for (let d = this.root; d !== dirname(d); d = dirname(d)) {
      if ((await this.fs.readText(d).catch(() => '')) !== undefined) break; // exists (EISDIR)
      chain.unshift(d);
    }
    for (const dir of chain) {
      if ((await this.fs.readLink(dir)) !== undefined) throw new UpdateStateError(`${dir} is a symlink`);
      try {
        await this.fs.mkdir(dir, 0o755);
        await this.fs.fsyncDir(join(dir, '..'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  }

  /** Empties a slot (absent afterwards, durably) and creates it again, empty and durable. */
  async resetSlot(slot: SlotName): Promise<void> {
    await this.fs.remove(this.slotDir(slot));
    await this.fs.fsyncDir(this.slotsDir);
    await this.fs.mkdir(this.slotDir(slot), 0o755);
    await this.fs.fsyncDir(this.slotsDir);
  }
}

/** Semantic version order (major.minor.patch, a pre-release sorts before its release). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = v.match(/^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$/);
    if (!m) throw new UpdateStateError(`not a semantic version: ${v}`);
    return { nums: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] as number) - (y.nums[i] as number);
    if (d !== 0) return Math.sign(d);
  }
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  const xs = x.pre.split('.');
  const ys = y.pre.split('.');
  for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
    const p = xs[i];
    const q = ys[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn && Number(p) !== Number(q)) return Math.sign(Number(p) - Number(q));
    if (pn !== qn) return pn ? -1 : 1;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}
