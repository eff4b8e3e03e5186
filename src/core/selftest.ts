// Boot-time known-answer self-test, as crypto modules in appliances do: every built-in test runs, each
// failure is reported by name, nothing throws out of here. `runVectorFile` checks any file in the
// official RFC 9605 test-vector JSON format (the one file read in src/core, by design of the CLI).

import { readFileSync } from 'node:fs';
import { sframeKnownAnswerTests } from './sframe/kat.js';
import {
  type ParsedEntry,
  VectorFormatError,
  checkAesCtrHmacVector,
  checkHeaderVector,
  checkSFrameVector,
  parseVectorFile,
} from './sframe/vectors.js';
import { e2eeKnownAnswerTests, e2eeV2KnownAnswerTests } from './e2ee/kat.js';

export interface KnownAnswerTest {
  name: string;
  /** Throws on mismatch. */
  run(): void;
}

export interface KnownAnswerFailure {
  name: string;
  error: string;
}

export interface KnownAnswerReport {
  passed: number;
  failed: KnownAnswerFailure[];
}

export interface KnownAnswerGroup {
  group: string;
  tests: KnownAnswerTest[];
}

export interface GroupReport extends KnownAnswerReport {
  group: string;
}

export interface SelftestReport extends KnownAnswerReport {
  groups: GroupReport[];
}

/** The built-in groups, in the order `sealroom selftest` prints them. */
export function builtInKnownAnswerGroups(): KnownAnswerGroup[] {
  return [
    { group: 'sframe', tests: sframeKnownAnswerTests },
    { group: 'e2ee', tests: e2eeKnownAnswerTests },
    { group: 'e2ee-v2', tests: e2eeV2KnownAnswerTests }, // protocol v2: ML-KEM-768 + hybrid wrap
  ];
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs each test once; by default every built-in test. Never throws. */
export function runKnownAnswerTests(
  tests: KnownAnswerTest[] = builtInKnownAnswerGroups().flatMap((g) => g.tests),
): KnownAnswerReport {
  const report: KnownAnswerReport = { passed: 0, failed: [] };
  for (const test of tests) {
    try {
      test.run();
      report.passed++;
    } catch (err) {
      report.failed.push({ name: test.name, error: describe(err) });
    }
  }
  return report;
}

/** Runs groups and adds up their results. */
export function runKnownAnswerGroups(groups: KnownAnswerGroup[]): SelftestReport {
  const reports = groups.map((g) => ({ group: g.group, ...runKnownAnswerTests(g.tests) }));
  return {
    groups: reports,
    passed: reports.reduce((n, r) => n + r.passed, 0),
    failed: reports.flatMap((r) => r.failed),
  };
}

function entryTests<T>(
  group: string,
  entries: ParsedEntry<T>[],
  describeVector: (v: T) => string,
  check: (v: T) => void,
): KnownAnswerTest[] {
  return entries.map((entry, index) => {
    const name = entry.ok ? `${group}[${index}] ${describeVector(entry.vector)}` : `${group}[${index}]`;
    return {
      name,
      run: () => {
        if (!entry.ok) throw new VectorFormatError(entry.error);
        check(entry.vector);
      },
    };
  });
}

/** The groups of tests for a vector file's text. Throws VectorFormatError if it is not in the format. */
export function vectorFileGroups(text: string): KnownAnswerGroup[] {
  const file = parseVectorFile(text);
  const suite = (v: { cipher_suite: number }) => `suite=0x${v.cipher_suite.toString(16).padStart(4, '0')}`;
  return [
    {
      group: 'header',
      tests: entryTests('header', file.header, (v) => `kid=${v.kid} ctr=${v.ctr}`, checkHeaderVector),
    },
    {
      group: 'aes_ctr_hmac',
      tests: entryTests('aes_ctr_hmac', file.aes_ctr_hmac, suite, checkAesCtrHmacVector),
    },
    {
      group: 'sframe',
      tests: entryTests(
        'sframe',
        file.sframe,
        (v) => `${suite(v)} kid=${v.kid} ctr=${v.ctr}`,
        checkSFrameVector,
      ),
    },
  ].filter((g) => g.tests.length > 0);
}

/** A vector file that could not be read or is not in the official format. */
export class VectorFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VectorFileError';
  }
}

/**
 * Checks every entry of a test-vector file (RFC 9605 JSON format). Throws VectorFileError, with the
 * path and the reason, for a file that is missing, unreadable or not in that format.
 */
export function runVectorFile(path: string): SelftestReport {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new VectorFileError(`cannot read vector file ${path}: ${describe(err)}`);
  }
  let groups: KnownAnswerGroup[];
  try {
    groups = vectorFileGroups(text);
  } catch (err) {
    throw new VectorFileError(`${path} is not an SFrame test-vector file: ${describe(err)}`);
  }
  if (groups.length === 0) throw new VectorFileError(`${path} contains no test vectors`);
  return runKnownAnswerGroups(groups);
}
