// What the browser bundles (scripts/build-kiosk.mjs, build-web.mjs, build-console.mjs) share: the
// command line (`--outdir DIR` builds elsewhere, so tests build their own copy and parallel runs
// never share files; `--watch` rebuilds while developing), esbuild's options, and the run itself.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The value after `name` on the command line, if given. */
export const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
};

export const watch = process.argv.includes('--watch');

/** `--outdir DIR`, or dist/<name> in the package. */
export const outdirOr = (name) => (arg('--outdir') ? resolve(arg('--outdir')) : join(root, 'dist', name));

/** One ES module bundle for current browsers; entryPoints (and any override) are the caller's. */
export const browserBuild = (outdir) => ({
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
});

/** Builds once and prints each output's size, or (`--watch`) keeps rebuilding. */
export async function run(label, builds, outdir) {
  if (watch) {
    for (const b of builds) await (await esbuild.context(b)).watch();
    console.log(`[${label}] watching, output in ${outdir}`);
    return;
  }
  const results = await Promise.all(builds.map((b) => esbuild.build(b)));
  const sizes = results
    .flatMap((r) => Object.entries(r.metafile.outputs))
    .filter(([file]) => !file.endsWith('.map'))
    .map(([file, out]) => `${file.split('/').pop()} ${(out.bytes / 1024).toFixed(1)} KiB`);
  console.log(`[${label}] ${sizes.join(', ')} → ${outdir}`);
}
