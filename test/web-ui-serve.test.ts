// /join/ as the provisioning service serves it (provisioning/service/routes-join.ts): the built page,
// a strict Content-Security-Policy naming only this origin, the identity provider and the configured
// relays, index.html never cached, and a clear 503 when the page was not built.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { joinCsp, registerJoinRoutes } from '../provisioning/service/routes-join.js';

const root = findPackageRoot();
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealroom-web-'));
  const out = execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs'), '--outdir', dir], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(out).toMatch(/web\.js .* e2ee-worker\.js .* transform-worker\.js/s);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function service(opts: Parameters<typeof registerJoinRoutes>[1]): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await registerJoinRoutes(app, opts);
  await app.ready();
  return app;
}

const people = { issuer: 'http://127.0.0.1:4455/oidc', relayUrl: 'ws://127.0.0.1:7443/v1/ws' };

describe('/join/', () => {
  it('serves the page with a strict CSP and no caching of index.html', async () => {
    const app = await service({
      people,
      web: { dir, relayUrls: ['wss://relay.example.org/v1/ws', 'https://x/'] },
    });
    try {
      const res = await app.inject({ method: 'GET', url: '/join/?code=abc&state=def' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.body).toContain('<script type="module" src="web.js"></script>');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("worker-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      // Only this origin, the IdP and the relays; never a wildcard, never unsafe-*.
      expect(csp).toMatch(
        /connect-src 'self' http:\/\/127\.0\.0\.1:4455 wss:\/\/relay\.example\.org ws:\/\/127\.0\.0\.1:7443(;|$)/,
      );
      expect(csp).not.toMatch(/unsafe|\*|https:\/\/x/);

      for (const file of ['web.js', 'web.css', 'e2ee-worker.js', 'transform-worker.js']) {
        const r = await app.inject({ method: 'GET', url: `/join/${file}` });
        expect(r.statusCode, file).toBe(200);
        expect(r.headers['cache-control'], file).toBe('no-cache');
        // Workers get their CSP from their own response.
        expect(r.headers['content-security-policy'], file).toBe(csp);
      }
      const relays = await app.inject({ method: 'GET', url: '/join/relays.json' });
      expect(relays.json()).toEqual({
        relayUrls: ['wss://relay.example.org/v1/ws', 'ws://127.0.0.1:7443/v1/ws'],
      });

      const bare = await app.inject({ method: 'GET', url: '/join' });
      expect([301, 302]).toContain(bare.statusCode);
      expect(bare.headers.location).toBe('/join/');
      expect((await app.inject({ method: 'GET', url: '/join/../package.json' })).statusCode).toBe(404);
      expect((await app.inject({ method: 'GET', url: '/join/%2e%2e/%2e%2e/package.json' })).statusCode).toBe(
        404,
      );
    } finally {
      await app.close();
    }
  });

  it('is not served when people cannot sign in, and says so when the page is not built', async () => {
    const off = await service({ web: { dir } });
    expect((await off.inject({ method: 'GET', url: '/join/' })).statusCode).toBe(404);
    await off.close();
    const unbuilt = await service({ people, web: { dir: join(dir, 'missing') } });
    const res = await unbuilt.inject({ method: 'GET', url: '/join/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toMatch(/build-web\.mjs/);
    await unbuilt.close();
  });

  it('CSP source list skips malformed URLs', () => {
    const csp = joinCsp({
      issuer: 'javascript:alert(1)',
      relayUrls: ['not a url', 'ftp://x/', 'wss://r.example:8443/p'],
    });
    expect(csp).toMatch(/connect-src 'self' wss:\/\/r\.example:8443;/);
  });
});
