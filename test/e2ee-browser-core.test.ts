// The E2EE core bundled for a browser (scripts/esbuild-core-browser.mjs): the bundle pulls in no node
// builtin, runs on the @noble backend, passes the same known answers, and a participant running it
// agrees on the security code and every key with node:crypto members of the same meeting.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserCorePlugin } from '../scripts/esbuild-core-browser.mjs';
import * as nodeCore from '../src/core/e2ee/index.js';
import type { E2eeMessage, SessionEvent, SessionOutput } from '../src/core/e2ee/index.js';
import { seededRandom } from './e2ee-helpers.js';

type Core = typeof nodeCore;
type Kat = typeof import('../src/core/e2ee/kat.js');
const root = path.resolve(import.meta.dirname, '..');
let dir: string;
let browserCore: Core;
let browserKat: Kat;

async function bundle(entry: string, plugins: esbuild.Plugin[]): Promise<esbuild.BuildResult> {
  return esbuild.build({
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins,
  });
}

async function load<T>(entry: string, name: string): Promise<T> {
  const result = await bundle(entry, [browserCorePlugin()]);
  const file = path.join(dir, name);
  writeFileSync(file, result.outputFiles![0]!.contents);
  return (await import(pathToFileURL(file).href)) as T;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sealroom-browser-core-'));
  browserCore = await load<Core>('src/core/e2ee/index.ts', 'core.mjs');
  browserKat = await load<Kat>('src/core/e2ee/kat.ts', 'kat.mjs');
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('browser bundle of the E2EE core', () => {
  it('bundles with platform browser and no node builtin; without the plugin the build fails', async () => {
    const result = await bundle('src/core/e2ee/index.ts', [browserCorePlugin()]);
    const inputs = Object.keys(result.metafile!.inputs);
    expect(inputs.some((f) => f.endsWith('src/core/e2ee/crypto/browser.ts'))).toBe(true);
    expect(inputs.some((f) => f.endsWith('src/core/e2ee/crypto/node.ts'))).toBe(false);
    expect(inputs.filter((f) => f.startsWith('node:') || !f.includes('/'))).toEqual([]);
    const text = new TextDecoder().decode(result.outputFiles![0]!.contents);
    expect(text).not.toMatch(/from\s*["']node:|require\(["']node:/);
    // The strict check is real: the node backend alone trips it.
    await expect(bundle('src/core/e2ee/crypto/node.ts', [browserCorePlugin()])).rejects.toThrow(
      /node builtin "node:crypto"/,
    );
  }, 60_000);

  it('runs on the @noble backend and passes every E2EE known answer, v1 and v2', () => {
    expect(browserCore.cryptoBackend.name).toBe('browser');
    expect(nodeCore.cryptoBackend.name).toBe('node');
    const tests = [...browserKat.e2eeKnownAnswerTests, ...browserKat.e2eeV2KnownAnswerTests];
    expect(tests.length).toBeGreaterThan(15);
    for (const test of tests) expect(() => test.run(), test.name).not.toThrow();
  });

  it('both backends give the same bytes for every primitive', () => {
    const b = browserCore.cryptoBackend;
    const n = nodeCore.cryptoBackend;
    const random = seededRandom('backends');
    for (let i = 0; i < 20; i++) {
      const data = random(i * 37);
      expect(b.sha256(data)).toEqual(n.sha256(data));
      expect(b.sha3_256(data)).toEqual(n.sha3_256(data));
      const [salt, info] = [random(3), random(9)];
      expect(b.hkdfSha256(data, salt, info, 42)).toEqual(n.hkdfSha256(data, salt, info, 42));
      expect(b.toBase64Url(data)).toBe(n.toBase64Url(data));
      expect(b.decodeBase64Url(n.toBase64Url(data))).toEqual(data);
      const seed = random(32);
      const [bs, ns] = [b.ed25519FromSeed(seed), n.ed25519FromSeed(seed)];
      expect(bs.publicKey).toEqual(ns.publicKey);
      expect(bs.sign(data)).toEqual(ns.sign(data));
      expect(b.ed25519Verify(ns.publicKey, data, ns.sign(data))).toBe(true);
      const [bx, nx] = [b.x25519FromSeed(seed), n.x25519FromSeed(random(32))];
      expect(bx.agree(nx.publicKey)).toEqual(nx.agree(bx.publicKey));
    }
    // Decoding may be lenient in different ways; the core's canonical check decides alike.
    const verdict = (core: Core, text: string) => {
      try {
        return Array.from(core.fromBase64Url(text));
      } catch {
        return 'refused';
      }
    };
    for (const text of [
      '',
      'A',
      'AB',
      'AB=',
      'A+B',
      'A/B',
      'AB/',
      'Zm9v',
      'Zm9vYg',
      'Zm9vYh',
      'Zm9vYm',
      ' Zm9',
    ]) {
      expect(verdict(browserCore, text), text).toEqual(verdict(nodeCore, text));
    }
  });

  it('a browser-backend participant agrees with node members on the code and every key', () => {
    const sessions = new Map<string, { handle(m: E2eeMessage): SessionOutput }>();
    const events = new Map<string, SessionEvent[]>();
    const leaderId = 'room-a';
    const route = (from: string, output: SessionOutput) => {
      const queue = [{ from, output }];
      while (queue.length > 0) {
        const { from: sender, output: next } = queue.shift()!;
        events.set(sender, [...(events.get(sender) ?? []), ...next.events]);
        for (const message of next.outgoing) {
          const text = JSON.stringify(message, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
          const targets =
            message.to !== undefined
              ? [message.to]
              : message.type === 'e2ee.binding'
                ? [leaderId]
                : [...sessions.keys()].filter((id) => id !== sender);
          for (const to of targets) {
            const session = sessions.get(to);
            // Each side parses the wire text with its own copy of the schema.
            const core = to === 'alice-browser' ? browserCore : nodeCore;
            if (session) queue.push({ from: to, output: session.handle(core.parseE2eeMessage(text)) });
          }
        }
      }
    };
    const meetingId = 'mixed-backends';
    const created = nodeCore.LeaderSession.create({
      meetingId,
      participantId: leaderId,
      identity: nodeCore.IdentityKeyPair.generate(seededRandom('leader-id')),
      random: seededRandom('leader'),
      autoAdmit: true,
    });
    sessions.set(leaderId, created.session);
    route(leaderId, created.output);
    const join = (core: Core, id: string) => {
      const p = new core.ParticipantSession({
        meetingId,
        participantId: id,
        identity: core.IdentityKeyPair.generate(seededRandom(`${id}-id`)),
        random: seededRandom(id),
      });
      sessions.set(id, p);
      route(id, p.start());
      return p;
    };
    const bob = join(nodeCore, 'room-b');
    const alice = join(browserCore, 'alice-browser');
    expect(alice.isMember).toBe(true);
    const code = created.session.securityCode;
    expect(bob.securityCode).toBe(code);
    expect(alice.securityCode).toBe(code);
    const lastKeys = (id: string) =>
      events
        .get(id)!
        .filter((e) => e.type === 'keys')
        .at(-1) as nodeCore.KeysEvent;
    const keys = ['room-a', 'room-b', 'alice-browser'].map(lastKeys);
    expect(new Set(keys.map((k) => k.epoch)).size).toBe(1);
    // Every receiver holds exactly the sender's send key, and the pairwise frame-auth keys match.
    const indexOf = new Map(keys.map((k, i) => [i, Number(k.sendKid & 0xffffn)]));
    for (const [i, sender] of keys.entries()) {
      for (const [j, receiver] of keys.entries()) {
        if (i === j) continue;
        const got = receiver.receiveKeys.find((r) => r.kid === sender.sendKid);
        expect(got?.key).toEqual(sender.sendKey);
        const sendAuth = sender.auth.find((a) => a.peerIndex === indexOf.get(j))!;
        const receiveAuth = receiver.auth.find((a) => a.peerIndex === indexOf.get(i))!;
        expect(receiveAuth.receive).toEqual(sendAuth.send);
      }
    }
    // A leave rekeys; the browser participant follows.
    route(leaderId, created.session.remove('room-b'));
    sessions.delete('room-b');
    expect(lastKeys('alice-browser').epoch).toBe(created.session.epoch);
    expect(lastKeys('alice-browser').sendKey).toEqual(
      lastKeys('room-a').receiveKeys.find((r) => r.kid === lastKeys('alice-browser').sendKid)?.key,
    );
  });
});
