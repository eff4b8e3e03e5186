// Bundles the web participant (src/web/) into dist/web/ with esbuild: the page (web.js, web.css,
// index.html), the E2EE worker (e2ee-worker.js: relay connection and the protocol core, with the
// core's node:crypto backend swapped for @noble by scripts/esbuild-core-browser.mjs) and the
// RTCRtpScriptTransform worker (transform-worker.js). Served at /join/ by the provisioning service
// (provisioning/service/routes-join.ts). Run by scripts/setup.sh; `--watch` rebuilds while developing.
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { arg, browserBuild, outdirOr, root, run } from './esbuild-common.mjs';

// `--outdir DIR` builds elsewhere (tests build their own copy so parallel runs never share files).
const outdir = outdirOr('web');
// `--e2ee-entry FILE` (tests only): another E2EE worker, e.g. a scripted one driving the page's states.
const e2eeEntry = arg('--e2ee-entry') ? resolve(arg('--e2ee-entry')) : join(root, 'src/web/e2ee/worker.ts');

// The core's browser backends (H2); without the plugin the core would pull in node:crypto.
const pluginPath = join(root, 'scripts', 'esbuild-core-browser.mjs');
const plugins = [];
if (existsSync(pluginPath)) {
  const { browserCorePlugin } = await import(pathToFileURL(pluginPath).href);
  plugins.push(browserCorePlugin());
}

await mkdir(outdir, { recursive: true });
await copyFile(join(root, 'src/web/app/index.html'), join(outdir, 'index.html'));

const common = { ...browserBuild(outdir), plugins };

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

await run('build-web', builds, outdir);
