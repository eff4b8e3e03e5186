// Node side of the browser participant: bundles page.ts and transform-worker.ts with esbuild (in
// memory, nothing written to disk) and serves them with the page from a fastify server on 127.0.0.1,
// a secure context for getUserMedia without TLS.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import Fastify from 'fastify';

const here = dirname(fileURLToPath(import.meta.url));

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sealroom browser participant</title>
<style>body{margin:0;background:#111;color:#eee;font:14px sans-serif} video{width:320px;height:240px;background:#000}</style>
</head>
<body>
<h1>Sealroom browser participant</h1>
<video autoplay muted playsinline></video>
<canvas hidden></canvas>
<script src="/page.js"></script>
</body>
</html>`;

/** The page and its worker as two classic scripts (a classic worker needs no module support). */
export async function bundleParticipant(): Promise<Record<'page.js' | 'transform-worker.js', string>> {
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: [
      { in: join(here, 'page.ts'), out: 'page' },
      { in: join(here, 'transform-worker.ts'), out: 'transform-worker' },
    ],
    entryNames: '[name]',
    outdir: 'out',
    bundle: true,
    format: 'iife',
    target: ['chrome120'],
    write: false,
    logLevel: 'warning',
  });
  const text = (name: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(`/${name}`));
    if (!file) throw new Error(`esbuild produced no ${name}`);
    return file.text;
  };
  return { 'page.js': text('page.js'), 'transform-worker.js': text('transform-worker.js') };
}

/** Path → (content type, body) of everything the participant page loads. */
export async function participantFiles(): Promise<Map<string, { type: string; body: string }>> {
  const scripts = await bundleParticipant();
  const js = 'text/javascript; charset=utf-8';
  return new Map([
    ['/', { type: 'text/html; charset=utf-8', body: PAGE_HTML }],
    ['/page.js', { type: js, body: scripts['page.js'] }],
    ['/transform-worker.js', { type: js, body: scripts['transform-worker.js'] }],
  ]);
}

export interface ParticipantServer {
  url: string;
  close(): Promise<void>;
}

export async function startParticipantServer(): Promise<ParticipantServer> {
  const files = await participantFiles();
  const app = Fastify({ logger: false });
  for (const [path, file] of files) app.get(path, (_req, reply) => reply.type(file.type).send(file.body));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, close: () => app.close() };
}
