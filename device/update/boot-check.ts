// The boot check of sealroom-daemon.service's ExecStartPre, as a standalone script. The .deb installs
// it with the few modules it needs (this file, updater.js, slots.js, durable-fs.js, health-gate.js)
// in /usr/lib/sealroom/boot/, OUTSIDE the slots: a version too broken to start its own CLI is still
// rolled back by the copy that came with the package. Only node: built-ins and ./updater.js.
//
//   node /usr/lib/sealroom/boot/boot-check.js --root /usr/lib/sealroom [--json]
//
// It never stops the service from starting: whatever happens it exits 0 (the unit also marks it
// with '-'), since a room with the old version, or even an unchecked one, beats a dark room.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Updater } from './updater.js';

const STATE_FILE = 'update-state.json';

/** The update root of a package root inside a slot (<root>/slots/a|b), when it has its state file. */
export function updateRootOf(packageRoot: string): string | undefined {
  const slots = dirname(packageRoot);
  if (basename(slots) !== 'slots' || !['a', 'b'].includes(basename(packageRoot))) return undefined;
  const root = dirname(slots);
  return existsSync(join(root, STATE_FILE)) ? root : undefined;
}

/** The version of the code in a package root: its release manifest, else its package.json. */
export function runningVersion(packageRoot: string): string | undefined {
  for (const f of ['sealroom-release.json', 'package.json']) {
    try {
      const v = (JSON.parse(readFileSync(join(packageRoot, f), 'utf8')) as { version?: unknown }).version;
      if (typeof v === 'string' && v.length <= 128) return v;
    } catch {}
  }
  return undefined;
}

export async function bootCheckMain(argv: string[]): Promise<number> {
  const at = argv.indexOf('--root');
  const root = at >= 0 ? argv[at + 1] : undefined;
  const json = argv.includes('--json');
  if (!root) {
    console.error('usage: boot-check.js --root <update root> [--json]');
    return 0;
  }
  if (!existsSync(join(root, STATE_FILE))) {
    console.log(
      json ? JSON.stringify({ action: 'none' }) : `${root}: not installed in A/B slots; nothing to check`,
    );
    return 0;
  }
  try {
    const d = await new Updater({ root }).bootCheck();
    console.log(
      json
        ? JSON.stringify(d)
        : `${d.action}: ${d.version} (slot ${d.slot})${d.reason ? ` — ${d.reason}` : ''}${d.repaired ? ' [symlink repaired]' : ''}`,
    );
  } catch (err) {
    console.error(`boot check failed (starting anyway): ${(err as Error).message}`);
  }
  return 0;
}

// Run only as the script itself: bundled into another entry (esbuild gives every module the bundle's
// import.meta.url), the URL would match that entry's argv[1], hence the file-name check too.
const isEntry =
  process.argv[1] !== undefined &&
  basename(fileURLToPath(import.meta.url)).startsWith('boot-check.') &&
  import.meta.url === pathToFileURL(process.argv[1]).href;
if (isEntry) {
  process.exitCode = await bootCheckMain(process.argv.slice(2));
}

export const BOOT_CHECK_SCRIPT = fileURLToPath(import.meta.url);
