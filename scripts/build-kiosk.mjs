// Bundles the room-screen web app (kiosk-ui/) into dist/kiosk-ui/ with esbuild: one ES module, one
// stylesheet, the HTML page. Run by scripts/setup.sh; `--watch` rebuilds on change while developing.
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--outdir DIR` builds elsewhere (tests build their own copy so parallel runs never share files).
const outArg = process.argv.indexOf('--outdir');
const outdir = outArg === -1 ? join(root, 'dist', 'kiosk-ui') : resolve(process.argv[outArg + 1] ?? '');
const watch = process.argv.includes('--watch');

await mkdir(outdir, { recursive: true });
await copyFile(join(root, 'kiosk-ui', 'index.html'), join(outdir, 'index.html'));

const options = {
  absWorkingDir: root,
  entryPoints: [
    { in: 'kiosk-ui/src/main.ts', out: 'kiosk' },
    { in: 'kiosk-ui/src/kiosk.css', out: 'kiosk' },
  ],
  entryNames: '[name]',
  outdir,
  bundle: true,
  format: 'esm',
  target: ['chrome110'],
  minify: !watch,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  metafile: true,
};

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
  console.log(`[build-kiosk] watching, output in ${outdir}`);
} else {
  const result = await esbuild.build(options);
  const bytes = Object.entries(result.metafile.outputs)
    .filter(([file]) => !file.endsWith('.map'))
    .map(([file, out]) => `${file.split('/').pop()} ${(out.bytes / 1024).toFixed(1)} KiB`);
  console.log(`[build-kiosk] ${bytes.join(', ')} → ${outdir}`);
}
