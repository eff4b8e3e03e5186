import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  VectorFileError,
  builtInKnownAnswerGroups,
  runKnownAnswerGroups,
  runKnownAnswerTests,
  runVectorFile,
} from './selftest.js';

const OFFICIAL = new URL('./sframe/testdata/rfc9605-test-vectors.json', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sealroom-selftest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeVectors(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('known-answer self-test', () => {
  it('passes every built-in test, SFrame and E2EE groups included', () => {
    const groups = builtInKnownAnswerGroups();
    expect(groups.map((g) => g.group)).toEqual(['sframe', 'e2ee', 'e2ee-v2']);
    // Protocol v2 (docs/protocol.md §12.9): ML-KEM-768, v2 binding and chain, hybrid wrap.
    const v2 = groups.find((g) => g.group === 'e2ee-v2')!.tests.map((t) => t.name);
    for (const what of ['ML-KEM-768', 'binding', 'chain', 'hybrid wrap']) {
      expect(v2.some((name) => name.includes(what))).toBe(true);
    }
    // The E2EE group covers every signed statement and derivation of docs/protocol.md §11.
    const e2ee = groups.find((g) => g.group === 'e2ee')!.tests.map((t) => t.name);
    for (const what of [
      'binding',
      'add list-entry',
      'heartbeat',
      'sample chain',
      'sender base key',
      'frame-auth',
    ]) {
      expect(e2ee.some((name) => name.includes(what))).toBe(true);
    }
    const report = runKnownAnswerGroups(groups);
    expect(report.failed).toEqual([]);
    expect(report.passed).toBe(groups.reduce((n, g) => n + g.tests.length, 0));
    expect(runKnownAnswerTests()).toEqual({ passed: report.passed, failed: [] });
  });

  it('reports failing tests by name with their error and keeps going', () => {
    const report = runKnownAnswerTests([
      { name: 'fine', run: () => {} },
      {
        name: 'broken',
        run: () => {
          throw new Error('mismatch');
        },
      },
      {
        name: 'throws a string',
        run: () => {
          throw 'odd';
        },
      },
      { name: 'also fine', run: () => {} },
    ]);
    expect(report).toEqual({
      passed: 2,
      failed: [
        { name: 'broken', error: 'mismatch' },
        { name: 'throws a string', error: 'odd' },
      ],
    });
  });

  it('checks every entry of the official vector file: 289 + 3 + 5', () => {
    const report = runVectorFile(OFFICIAL);
    expect(report.failed).toEqual([]);
    expect(report.groups.map((g) => [g.group, g.passed])).toEqual([
      ['header', 289],
      ['aes_ctr_hmac', 3],
      ['sframe', 5],
    ]);
    expect(report.passed).toBe(297);
  });

  it('counts a wrong expected value as a failure naming the entry', () => {
    const text = readFileSync(OFFICIAL, 'utf8');
    const doc = text
      .replace('"encoded": "08ff"', '"encoded": "08fe"')
      .replace(
        '"ct": "990123456794f509d36e9beacb0e261d99c7d1e972f1fed787d4049f17ca21353c1cc24d56ceabced279"',
        '"ct": "990123456794f509d36e9beacb0e261d99c7d1e972f1fed787d4049f17ca21353c1cc24d56ceabced278"',
      );
    expect(doc).not.toBe(text);
    const report = runVectorFile(writeVectors('tampered.json', doc));
    expect(report.passed).toBe(295);
    expect(report.failed.map((f) => f.name)).toEqual([
      'header[2] kid=0 ctr=255',
      'sframe[4] suite=0x0005 kid=291 ctr=17767',
    ]);
    expect(report.failed[0]!.error).toContain('expected 08fe, got 08ff');
  });

  it('counts an unreadable entry as a failure and runs the rest', () => {
    const path = writeVectors(
      'entry.json',
      '{"header":[{"kid":1,"ctr":2,"encoded":"12"},{"kid":"1","ctr":2,"encoded":"12"},{"kid":1,"ctr":2,"encoded":"zz"},{"kid":1.5,"ctr":2,"encoded":"12"},{"kid":-1,"ctr":2,"encoded":"12"}]}',
    );
    const report = runVectorFile(path);
    expect(report.passed).toBe(1);
    expect(report.failed.map((f) => f.error)).toEqual([
      'field "kid" must be a non-negative integer',
      'field "encoded" must be a hex string',
      'field "kid" must be a non-negative integer',
      'field "kid" must be a non-negative integer',
    ]);
  });

  it('keeps integers beyond 2^53 exact and leaves digits inside strings alone', () => {
    const path = writeVectors(
      'big.json',
      '{"note":"12345678901234567890 \\" 99","header":[{"kid":18446744073709551615,"ctr":9007199254740993,"encoded":"feffffffffffffffff20000000000001"}]}',
    );
    expect(runVectorFile(path)).toMatchObject({ passed: 1, failed: [] });
  });

  it.each([
    ['a missing file', join(dir, 'does-not-exist.json'), /cannot read vector file .*does-not-exist\.json/],
    ['a file that is not JSON', 'notjson.json', /not an SFrame test-vector file: not valid JSON/],
    ['JSON without any vector group', 'nogroups.json', /none of the groups/],
    ['a group that is not an array', 'notarray.json', /"sframe" must be an array/],
    ['a file with no vectors at all', 'empty.json', /contains no test vectors/],
  ])('refuses %s with a clear VectorFileError', (_what, file, message) => {
    const contents: Record<string, string> = {
      'notjson.json': '{"header": [ {"kid": 0,',
      'nogroups.json': '{"vectors": []}',
      'notarray.json': '{"sframe": {"kid": 1}}',
      'empty.json': '{"header": [], "sframe": []}',
    };
    const path = file.startsWith('/') ? file : writeVectors(file, contents[file]!);
    expect(() => runVectorFile(path)).toThrow(VectorFileError);
    expect(() => runVectorFile(path)).toThrow(message);
  });
});
