// Bundles the room-screen web app (kiosk-ui/) into dist/kiosk-ui/ with esbuild: one ES module, one
// stylesheet, the HTML page. Run by scripts/setup.sh; `--watch` rebuilds on change while developing.
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { browserBuild, outdirOr, root, run } from './esbuild-common.mjs';

// `--outdir DIR` builds elsewhere (tests build their own copy so parallel runs never share files).
const outdir = outdirOr('kiosk-ui');

await mkdir(outdir, { recursive: true });
await copyFile(join(root, 'kiosk-ui', 'index.html'), join(outdir, 'index.html'));

await run(
  'build-kiosk',
  [
    {
      ...browserBuild(outdir),
      entryPoints: [
        { in: 'kiosk-ui/src/main.ts', out: 'kiosk' },
        { in: 'kiosk-ui/src/kiosk.css', out: 'kiosk' },
      ],
      // The room screen's browser is Chromium alone.
      target: ['chrome110'],
    },
  ],
  outdir,
);
