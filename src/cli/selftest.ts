// `sealroom selftest [--vectors FILE]`: the boot-time known-answer test. Prints one line per group,
// each failure by name, then exactly `N passed, M failed`. Exit 0 only if every test passed, 1 on any
// failure, 2 when the vector file is missing or not in the RFC 9605 vector format.
// The crypto core is imported only when the command runs, so registering it costs nothing.

import type { Command } from 'commander';
import type { SelftestReport } from '../core/selftest.js';

export const EXIT_FAILED = 1;
export const EXIT_BAD_VECTOR_FILE = 2;

export function formatSelftestReport(report: SelftestReport): string[] {
  const lines: string[] = [];
  const width = Math.max(...report.groups.map((g) => g.group.length), 0);
  for (const g of report.groups) {
    const total = g.passed + g.failed.length;
    const status = g.failed.length === 0 ? 'ok  ' : 'FAIL';
    lines.push(`${status} ${g.group.padEnd(width)}  ${g.passed}/${total} passed`);
    for (const f of g.failed) lines.push(`     ✗ ${f.name}: ${f.error}`);
  }
  lines.push(`${report.passed} passed, ${report.failed.length} failed`);
  return lines;
}

export async function runSelftestCommand(opts: { vectors?: string }): Promise<number> {
  const selftest = await import('../core/selftest.js');
  let report: SelftestReport;
  if (opts.vectors !== undefined) {
    try {
      report = selftest.runVectorFile(opts.vectors);
    } catch (err) {
      if (!(err instanceof selftest.VectorFileError)) throw err;
      console.error(`sealroom selftest: ${err.message}`);
      return EXIT_BAD_VECTOR_FILE;
    }
  } else {
    report = selftest.runKnownAnswerGroups(selftest.builtInKnownAnswerGroups());
  }
  for (const line of formatSelftestReport(report)) console.log(line);
  return report.failed.length === 0 ? 0 : EXIT_FAILED;
}

export function registerSelftestCommand(program: Command): void {
  program
    .command('selftest')
    .description('run the built-in cryptographic known-answer tests (SFrame, E2EE); exit 0 only if all pass')
    .option('--vectors <file>', 'check every entry of an RFC 9605 test-vector JSON file instead')
    .addHelpText(
      'after',
      '\nPrints one line per group, then "N passed, M failed".\n' +
        'Exit status: 0 all passed, 1 a test failed, 2 the vector file is missing or unparsable.',
    )
    .action(async (opts: { vectors?: string }) => {
      process.exitCode = await runSelftestCommand(opts);
    });
}
