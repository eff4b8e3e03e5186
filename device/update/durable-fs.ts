// The few file-system operations the A/B updater makes, behind one small interface, so the power-cut
// harness (scripts/powercut-ota.ts) can journal every one of them and know what was made durable:
// a file's data only after fsyncFile(file), a directory entry (create, rename, symlink, mkdir,
// removal) only after fsyncDir(its directory). The real implementation is node:fs/promises; only
// node: built-ins are used here so the boot logic can run from a standalone bundle.
import { mkdir, open, readFile, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';

export interface UpdateFs {
  /** Creates a new file (fails if it exists) with this content; neither data nor entry durable yet. */
  writeNew(path: string, data: string | Uint8Array, mode?: number): Promise<void>;
  /** fsync(2) of a file's data. */
  fsyncFile(path: string): Promise<void>;
  /** fsync(2) of a directory: the entries created, renamed or removed in it become durable. */
  fsyncDir(dir: string): Promise<void>;
  /** rename(2): atomic replacement of `to` (a file or a symlink). */
  rename(from: string, to: string): Promise<void>;
  /** symlink(2): creates `path` pointing at `target` (relative targets are kept as written). */
  symlink(target: string, path: string): Promise<void>;
  /** mkdir (not recursive: the updater creates its few directories one by one). */
  mkdir(path: string, mode?: number): Promise<void>;
  /** Removes a file, or a directory tree; absent is not an error. */
  remove(path: string): Promise<void>;
  /**
   * Marks a long step made by other code (the bundle's extraction into a slot): the harness treats
   * the directory as possibly half-written from begin until end returns; `tick` lets it cut inside.
   */
  phase(name: 'extract-begin' | 'extract-end', path: string): Promise<void>;
  tick(): void;
  readText(path: string): Promise<string | undefined>;
  readLink(path: string): Promise<string | undefined>;
}

const absent = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

async function syncPath(path: string, flags: string): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The real thing. */
export const nodeUpdateFs: UpdateFs = {
  async writeNew(path, data, mode = 0o644) {
    const fh = await open(path, 'wx', mode);
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
  },
  fsyncFile: (path) => syncPath(path, 'r+'),
  fsyncDir: (dir) => syncPath(dir, 'r'),
  rename: (from, to) => rename(from, to),
  symlink: (target, path) => symlink(target, path),
  async mkdir(path, mode = 0o755) {
    await mkdir(path, { mode });
  },
  async remove(path) {
    try {
      await unlink(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (absent(err)) return;
      if (code === 'EISDIR' || code === 'EPERM') await rm(path, { recursive: true, force: true });
      else throw err;
    }
  },
  async phase() {},
  tick() {},
  async readText(path) {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      if (absent(err)) return undefined;
      throw err;
    }
  },
  async readLink(path) {
    try {
      return await readlink(path);
    } catch (err) {
      if (absent(err) || (err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
      throw err;
    }
  },
};
