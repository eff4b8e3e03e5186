// Where the bundled kiosk UI lives: dist/kiosk-ui/ at the package root, found by walking up from this
// module (it runs from device/kiosk/ under tsx, from dist/device/kiosk/ once compiled, and from
// /usr/lib/sealroom/dist/device/kiosk/ when installed from the Debian package).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function isSealroomRoot(dir: string): boolean {
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) return false;
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'sealroom';
  } catch {
    return false;
  }
}

export function findPackageRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (isSealroomRoot(dir)) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no sealroom package.json above ${from}`);
    dir = parent;
  }
}

/** dist/kiosk-ui at the package root, or $SEALROOM_KIOSK_UI_DIR (tests that build a fresh bundle). */
export function defaultKioskUiDir(): string {
  const fromEnv = process.env.SEALROOM_KIOSK_UI_DIR;
  if (fromEnv) return fromEnv;
  return join(findPackageRoot(), 'dist', 'kiosk-ui');
}
