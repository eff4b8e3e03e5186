// Bundles the web participant (src/web/) into dist/web/ with esbuild: the page (web.js, web.css,
// index.html), the E2EE worker (e2ee-worker.js: relay connection and the protocol core, with the
// core's node:crypto backend swapped for @noble by scripts/esbuild-core-browser.mjs) and the
// RTCRtpScriptTransform worker (transform-worker.js). Served at /join/ by the provisioning service
// (provisioning/service/routes-join.ts). Run by scripts/setup.sh; `--watch` rebuilds while developing.
import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
};
// `--outdir DIR` builds elsewhere (tests build their own copy so parallel runs never share files).
const outdir = arg('--outdir') ? resolve(arg('--outdir')) : join(root, 'dist', 'web');
// `--e2ee-entry FILE` (tests only): another E2EE worker, e.g. a scripted one driving the page's states.
const e2eeEntry = arg('--e2ee-entry') ? resolve(arg('--e2ee-entry')) : join(root, 'src/web/e2ee/worker.ts');
const watch = process.argv.includes('--watch');

// The core's browser backends (H2); without the plugin the core would pull in node:crypto.
const pluginPath = join(root, 'scripts', 'esbuild-core-browser.mjs');
const plugins = [];
if (existsSync(pluginPath)) {
  const { browserCorePlugin } = await import(pathToFileURL(pluginPath).href);
  plugins.push(browserCorePlugin());
}

await mkdir(outdir, { recursive: true });
await copyFile(join(root, 'src/web/app/index.html'), join(outdir, 'index.html'));

const common = {
  absWorkingDir: root,
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
  plugins,
};

const builds = [
  {
    ...common,
    entryPoints: [
      { in: 'src/web/app/main.ts', out: 'web' },
      { in: 'src/web/app/web.css', out: 'web' },
    ],
  },
  { ...common, entryPoints: [{ in: e2eeEntry, out: 'e2ee-worker' }] },
  { ...common, entryPoints: [{ in: 'src/web/media/transform-worker.ts', out: 'transform-worker' }] },
];

if (watch) {
  for (const b of builds) await (await esbuild.context(b)).watch();
  console.log(`[build-web] watching, output in ${outdir}`);
} else {
  const results = await Promise.all(builds.map((b) => esbuild.build(b)));
  const bytes = results
    .flatMap((r) => Object.entries(r.metafile.outputs))
    .filter(([file]) => !file.endsWith('.map'))
    .map(([file, out]) => `${file.split('/').pop()} ${(out.bytes / 1024).toFixed(1)} KiB`);
  console.log(`[build-web] ${bytes.join(', ')} → ${outdir}`);
}
