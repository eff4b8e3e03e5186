// The web participant's two workers bundle for the browser (esbuild, platform 'browser', the core's
// browser backend via browserCorePlugin, which fails the build on any node builtin), the transform
// worker carries no protocol core, and the bundled E2EE worker logic — @noble primitives, the
// browser-safe TrustStore — joins a real relay's meeting led by node:crypto rooms and agrees with
// them on the security code and the keys.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserCorePlugin } from '../scripts/esbuild-core-browser.mjs';
import { poll, type Room, Stage } from './adversary/rooms.js';
import {
  admit,
  anchors,
  expectNoKeysOnPage,
  hex,
  joinWeb,
  type WebMeetingClass,
  webIdentity,
} from './web-e2ee-helpers.js';

const root = path.resolve(import.meta.dirname, '..');

async function bundle(
  entry: { path: string } | { contents: string },
  format: 'iife' | 'esm' = 'iife',
): Promise<esbuild.BuildResult & { metafile: esbuild.Metafile; outputFiles: esbuild.OutputFile[] }> {
  return esbuild.build({
    ...('path' in entry
      ? { entryPoints: [path.join(root, entry.path)] }
      : { stdin: { contents: entry.contents, resolveDir: root, sourcefile: 'entry.ts', loader: 'ts' } }),
    bundle: true,
    platform: 'browser',
    format,
    target: ['chrome120', 'firefox128'],
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [browserCorePlugin()],
  });
}

describe('the web participant workers as browser bundles', () => {
  it('bundles both workers without node builtins; keys logic stays out of the transform worker', async () => {
    const e2ee = await bundle({ path: 'src/web/e2ee/worker.ts' });
    const transform = await bundle({ path: 'src/web/media/transform-worker.ts' });
    const inputs = (r: { metafile: esbuild.Metafile }) => Object.keys(r.metafile.inputs);
    expect(inputs(e2ee)).toContain('src/core/e2ee/crypto/browser.ts');
    expect(inputs(e2ee)).not.toContain('src/core/e2ee/crypto/node.ts');
    expect(inputs(e2ee)).toContain('src/pki/trust-store.ts');
    // The transform worker gets keys from the E2EE worker; it holds no protocol state or trust logic.
    expect(inputs(transform).filter((f) => /src\/core\/e2ee\/|src\/pki\/|src\/web\/e2ee\//.test(f))).toEqual(
      [],
    );
    for (const r of [e2ee, transform]) {
      expect(inputs(r).some((f) => f.startsWith('node:') || /(^|\/)node_modules\/ws\//.test(f))).toBe(false);
      expect(r.outputFiles[0]!.text).not.toMatch(/require\(["']node:/);
    }
  }, 120_000);
});

describe('the bundled E2EE worker logic in a meeting of node:crypto rooms', () => {
  const stage = new Stage();
  let dir: string;
  let Bundled: WebMeetingClass;
  let backend: string;
  let roomA: Room;
  let roomB: Room;
  let meetingId: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sealroom-web-bundle-'));
    const built = await bundle(
      {
        contents: [
          "export { WebMeeting } from './src/web/e2ee/web-meeting.ts';",
          "export { cryptoBackend } from './src/core/e2ee/index.ts';",
        ].join('\n'),
      },
      'esm',
    );
    const file = path.join(dir, 'web-meeting.mjs');
    writeFileSync(file, built.outputFiles[0]!.contents);
    const mod = (await import(pathToFileURL(file).href)) as {
      WebMeeting: WebMeetingClass;
      cryptoBackend: { name: string };
    };
    Bundled = mod.WebMeeting;
    backend = mod.cryptoBackend.name;
    await stage.start();
    roomA = await stage.room('Boardroom');
    roomB = await stage.room('Huddle');
    meetingId = await stage.meeting(roomA, [roomB]);
  }, 120_000);

  afterAll(async () => {
    await stage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('joins, is admitted, shows the rooms’ code and gets their keys, on the browser backend', async () => {
    expect(backend).toBe('browser');
    const dana = await webIdentity(stage.ca, 'Dana Brown');
    const web = await joinWeb(stage.hostile.url, meetingId, dana, anchors(stage.ca.certPem), Bundled);
    expect(web.status()).toBe('waiting');
    await admit(roomA, web);
    await poll(() => web.status() === 'admitted', 10_000, 'admitted');
    const code = roomA.state.get().meeting?.securityCode;
    await poll(() => code !== undefined && web.view()?.securityCode === code, 10_000, 'the security code');
    await poll(
      () => {
        const k = web.keys();
        return (
          k?.sending === true &&
          roomB.keys.at(-1)?.event.receiveKeys.some((r) => r.kid.toString() === k.sendKid)
        );
      },
      10_000,
      'keys',
    );
    const k = web.keys()!;
    const b = roomB.keys.at(-1)!.event;
    expect(hex(b.receiveKeys.find((r) => r.kid.toString() === k.sendKid)!.key)).toBe(hex(k.sendKey));
    expect(web.view()!.members.map((m) => [m.name, m.kind])).toEqual([
      ['Boardroom', 'room'],
      ['Huddle', 'room'],
      ['Dana Brown', 'person'],
    ]);
    expectNoKeysOnPage(web);
    await web.meeting.leave();
    expect(web.transform.at(-1)).toEqual({ type: 'wipe' });
  }, 60_000);
});
