import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { buildLogBundle, LogRing, readTar, scrubSecrets } from './log-bundle.js';

describe('log bundle', () => {
  it('packs files into a .tar.gz without keys, tokens or given secrets', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const gz = buildLogBundle(
      [
        { name: 'daemon.log', text: `line 1\nkey=${pem}\ntoken srt_abcdefghijkl code ABCD-2345\nline 4\n` },
        { name: 'state.json', text: '{"a":1, "auth":"Bearer abc.def.ghi.jkl"}' },
      ],
      { secrets: ['ABCD-2345'] },
    );
    expect(gz.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const files = readTar(gunzipSync(gz));
    expect(files.map((f) => f.name)).toEqual(['daemon.log', 'state.json']);
    const all = files.map((f) => f.text).join('\n');
    expect(all).toContain('line 1');
    expect(all).toContain('line 4');
    expect(all).not.toContain('PRIVATE KEY');
    expect(all).not.toContain(pem.split('\n')[1]);
    expect(all).not.toContain('srt_abcdefghijkl');
    expect(all).not.toContain('ABCD-2345');
    expect(all).not.toContain('abc.def.ghi.jkl');
  });

  it('keeps under the cap by cutting the oldest log lines, even with incompressible data', () => {
    const random = Array.from(
      { length: 40_000 },
      (_, i) => `${i} ${Math.random().toString(36).repeat(4)}`,
    ).join('\n');
    const max = 256 * 1024;
    const gz = buildLogBundle([{ name: 'daemon.log', text: random }], { maxBytes: max });
    expect(gz.length).toBeLessThanOrEqual(max);
    const [log] = readTar(gunzipSync(gz));
    expect(log!.text.startsWith('[older lines cut to fit the bundle]\n')).toBe(true);
    expect(log!.text.endsWith('39999 ' + random.split('\n').at(-1)!.split(' ')[1])).toBe(true);
  });

  it('scrubs an unterminated private key to the end', () => {
    expect(scrubSecrets('a -----BEGIN PRIVATE KEY-----\nMC4CAQ')).toBe('a [redacted]');
  });

  it('the ring keeps the newest text within its size and tees a stream', () => {
    const ring = new LogRing(10);
    const seen: string[] = [];
    const stream = new Writable({
      write(chunk, _e, done) {
        seen.push(String(chunk));
        done();
      },
    });
    const undo = ring.capture(stream);
    stream.write('hello ');
    stream.write('world, again');
    undo();
    stream.write('after');
    expect(ring.text()).toBe('rld, again');
    expect(seen).toEqual(['hello ', 'world, again', 'after']);
  });
});
