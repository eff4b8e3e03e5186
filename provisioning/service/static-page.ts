// A built single-page app (esbuild output: index.html and fixed-name assets) served from a folder
// under a prefix, every file with the page's security headers (its CSP above all).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/**
 * Serves `dir` at `prefix` (e.g. '/console/') with `headers` on every file. index.html is always
 * fetched afresh (a fixed page reaches everyone on the next load); the assets have fixed names, no
 * hashes, so they revalidate by ETag. Returns false, registering nothing, when `dir` holds no
 * index.html (not built): the caller answers for the missing page.
 */
export async function serveBuiltPage(
  app: FastifyInstance,
  page: { dir: string; prefix: string; headers: Record<string, string> },
): Promise<boolean> {
  if (!existsSync(join(page.dir, 'index.html'))) return false;
  await app.register(fastifyStatic, {
    root: page.dir,
    prefix: page.prefix,
    index: 'index.html',
    wildcard: false,
    redirect: true,
    decorateReply: false,
    cacheControl: false,
    schemaHide: true,
    setHeaders(res, path) {
      for (const [k, v] of Object.entries(page.headers)) res.setHeader(k, v);
      res.setHeader('cache-control', path.endsWith('.html') ? 'no-store' : 'no-cache');
    },
  });
  return true;
}
