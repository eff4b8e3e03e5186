// esbuild plugin for bundling the Sealroom E2EE core into a browser page or worker: the core's one
// platform import (src/core/e2ee/crypto/backend.ts → ./node.js, node:crypto) is resolved to the
// @noble backend (./browser.js) instead. Same protocol sources, only the primitives swap.
//
//   import { browserCorePlugin } from '../scripts/esbuild-core-browser.mjs';
//   await esbuild.build({ entryPoints: [...], bundle: true, platform: 'browser', plugins: [browserCorePlugin()] });
//
// `strict` (default true) also fails the build if anything else in the bundle imports a node builtin
// (node:crypto, node:fs, buffer, …), so a stray dependency cannot slip into the page unnoticed.
import { builtinModules } from 'node:module';
import path from 'node:path';

const BACKEND_DIR = `${path.sep}src${path.sep}core${path.sep}e2ee${path.sep}crypto`;
const builtins = new Set(builtinModules);

/** @param {{ strict?: boolean }} [options] @returns {import('esbuild').Plugin} */
export function browserCorePlugin(options = {}) {
  const strict = options.strict ?? true;
  return {
    name: 'sealroom-core-browser',
    setup(build) {
      build.onResolve({ filter: /^\.\/node(\.js|\.ts)?$/ }, (args) => {
        const dir = args.resolveDir;
        if (!dir.endsWith(BACKEND_DIR)) return undefined;
        // The sources (tsx/vitest/esbuild on .ts) or the compiled dist/ tree (.js).
        const ext = args.importer.endsWith('.ts') ? '.ts' : '.js';
        return { path: path.join(dir, `browser${ext}`) };
      });
      if (!strict) return;
      // esbuild drops `import type` before resolving, so every import that gets here is real.
      build.onResolve({ filter: /^(node:|[a-z_]+$|[a-z_]+\/)/ }, (args) => {
        const name = args.path.startsWith('node:') ? args.path.slice(5) : args.path;
        if (!args.path.startsWith('node:') && !builtins.has(name) && !builtins.has(name.split('/')[0])) {
          return undefined;
        }
        return {
          errors: [{ text: `node builtin "${args.path}" imported by ${args.importer} in a browser bundle` }],
        };
      });
    },
  };
}
