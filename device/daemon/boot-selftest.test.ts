import { describe, expect, it } from 'vitest';
import { CryptoSelfTestError, runBootSelfTest } from './boot-selftest.js';

describe('boot-time crypto self-test', () => {
  it('passes every built-in known answer (SFrame and E2EE)', () => {
    const result = runBootSelfTest();
    expect(result.ok).toBe(true);
    expect(Number(result.detail.split(' ')[0])).toBeGreaterThanOrEqual(20);
  });

  it('refuses to start when any known answer is wrong, naming it', () => {
    const groups = [
      {
        group: 'test',
        tests: [
          { name: 'good', run: () => {} },
          {
            name: 'broken-aes',
            run: () => {
              throw new Error('ciphertext mismatch');
            },
          },
        ],
      },
    ];
    expect(() => runBootSelfTest(groups)).toThrow(CryptoSelfTestError);
    expect(() => runBootSelfTest(groups)).toThrow(/broken-aes: ciphertext mismatch/);
  });
});
