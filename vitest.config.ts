import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['experiments/**/*.test.ts', 'src/**/*.test.ts', 'ascendc/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // The JSON report is what .ci/run reads for its "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'build/vitest-report.json' },
  },
});
