// Bundles the IT console (provisioning/console-ui/) into dist/console/ with esbuild: index.html,
// console.js (ESM, Chart.js tree-shaken to the parts the device page registers) and console.css.
// Served at /console/ by the provisioning service (provisioning/console/routes.ts) under a strict
// CSP: no inline script, no eval, no inline styles. Run by scripts/setup.sh; `--watch` rebuilds
// while developing; `--outdir DIR` builds elsewhere (tests build a private copy).
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { browserBuild, outdirOr, root, run } from './esbuild-common.mjs';

const outdir = outdirOr('console');
const ui = 'provisioning/console-ui';

await mkdir(outdir, { recursive: true });
await copyFile(join(root, ui, 'index.html'), join(outdir, 'index.html'));

await run(
  'build-console',
  [
    {
      ...browserBuild(outdir),
      entryPoints: [
        { in: `${ui}/src/main.ts`, out: 'console' },
        { in: `${ui}/console.css`, out: 'console' },
      ],
      // Chart.js checks process.env in a few places; browsers have no `process`.
      define: { 'process.env.NODE_ENV': '"production"' },
    },
  ],
  outdir,
);
