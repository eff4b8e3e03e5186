// Bundles the IT console (provisioning/console-ui/) into dist/console/ with esbuild: index.html,
// console.js (ESM, Chart.js tree-shaken to the parts the device page registers) and console.css.
// Served at /console/ by the provisioning service (provisioning/console/routes.ts) under a strict
// CSP: no inline script, no eval, no inline styles. Run by scripts/setup.sh; `--watch` rebuilds
// while developing; `--outdir DIR` builds elsewhere (tests build a private copy).
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
};
const outdir = arg('--outdir') ? resolve(arg('--outdir')) : join(root, 'dist', 'console');
const watch = process.argv.includes('--watch');
const ui = 'provisioning/console-ui';

await mkdir(outdir, { recursive: true });
await copyFile(join(root, ui, 'index.html'), join(outdir, 'index.html'));

const build = {
  absWorkingDir: root,
  entryPoints: [
    { in: `${ui}/src/main.ts`, out: 'console' },
    { in: `${ui}/console.css`, out: 'console' },
  ],
  entryNames: '[name]',
  outdir,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: ['chrome120', 'firefox120', 'safari17'],
  minify: !watch,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
  // Chart.js checks process.env in a few places; browsers have no `process`.
  define: { 'process.env.NODE_ENV': '"production"' },
};

if (watch) {
  await (await esbuild.context(build)).watch();
  console.log(`[build-console] watching, output in ${outdir}`);
} else {
  const result = await esbuild.build(build);
  const sizes = Object.entries(result.metafile.outputs)
    .filter(([file]) => !file.endsWith('.map'))
    .map(([file, out]) => `${file.split('/').pop()} ${(out.bytes / 1024).toFixed(1)} KiB`);
  console.log(`[build-console] ${sizes.join(', ')} → ${outdir}`);
}
