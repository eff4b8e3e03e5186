// Atomic file replacement: write to a temporary file in the same directory, fsync it, rename over
// the target, fsync the directory (and the parents of any directory it had to create). A power cut
// at any moment leaves either the old or the new file; once it returned, the new one. Checked by
// `npm run powercut` (scripts/powercut.ts), which cuts the power before every step.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  await mkdirDurable(dir);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncPath(dir);
}

/** fsyncs a file or a directory (a directory's fsync makes the renames and creations in it durable). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p whose result survives a power cut: a directory it creates exists for sure only once the
 * directory holding it is fsynced, so each new one's parent is (found by npm run powercut: a first-boot
 * identity key written into a fresh state directory was gone after a cut, although
 * writeFileAtomic had returned).
 */
export async function mkdirDurable(dir: string, mode = 0o700): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode });
  if (created === undefined) return;
  const chain: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    chain.unshift(d);
    if (d === resolve(created) || d === dirname(d)) break;
  }
  // Parent of the first new directory, then every new directory but the last (it holds nothing yet).
  for (const d of [dirname(chain[0] as string), ...chain.slice(0, -1)]) await fsyncPath(d);
}

/** Reads a UTF-8 file, or returns undefined when it does not exist. Other errors propagate. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads a JSON file, or returns undefined when it does not exist. Other errors propagate. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  const text = await readTextIfExists(path);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}
