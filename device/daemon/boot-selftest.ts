// Boot-time known-answer self-test, as crypto modules in appliances do: before the daemon touches a
// key, the SFrame and E2EE primitives must reproduce their known answers. A failure means the crypto
// on this box cannot be trusted, so the daemon refuses to start (systemd logs it and retries).
import {
  builtInKnownAnswerGroups,
  type KnownAnswerGroup,
  runKnownAnswerGroups,
} from '../../src/core/selftest.js';

export interface BootSelfTestResult {
  name: 'crypto self-test';
  ok: true;
  detail: string;
}

export class CryptoSelfTestError extends Error {
  override readonly name = 'CryptoSelfTestError';
}

export function runBootSelfTest(groups: KnownAnswerGroup[] = builtInKnownAnswerGroups()): BootSelfTestResult {
  const started = performance.now();
  const report = runKnownAnswerGroups(groups);
  if (report.failed.length > 0) {
    const names = report.failed.map((f) => `${f.name}: ${f.error}`).join('; ');
    throw new CryptoSelfTestError(
      `crypto self-test failed (${report.failed.length} of ${report.passed + report.failed.length}): ${names}`,
    );
  }
  const ms = (performance.now() - started).toFixed(1);
  return { name: 'crypto self-test', ok: true, detail: `${report.passed} known answers in ${ms} ms` };
}
