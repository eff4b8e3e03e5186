import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/**/*.test.ts',
      'src/**/*.test.ts',
      'device/**/*.test.ts',
      'provisioning/**/*.test.ts',
      'kiosk-ui/**/*.test.ts',
    ],
    pool: 'forks',
    // Two cores: heavy tests (GStreamer, Chromium, PostgreSQL) must not all run at once.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { UV_THREADPOOL_SIZE: '16' },
  },
});
