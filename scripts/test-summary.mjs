// Prints the closing line CI reads ("N passed, N failed, N skipped") from vitest's JSON report.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-artifacts/vitest.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.log('0 passed, 1 failed');
  console.error(`[test] no vitest report at ${file}: ${err.message}`);
  process.exit(1);
}
const failedSuites = report.numFailedTestSuites ?? 0;
const failed = (report.numFailedTests ?? 0) + (failedSuites > 0 && !report.numFailedTests ? failedSuites : 0);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`Tests: ${report.numPassedTests ?? 0} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || (report.numPassedTests ?? 0) === 0 ? 1 : 0);
