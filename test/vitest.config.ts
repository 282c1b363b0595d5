import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['test/**/*.test.ts'],
    // Native addons (onnxruntime, sharp, better-sqlite3) keep per-process state; forks isolate them.
    pool: 'forks',
    // Every test process refuses TCP connections outside loopback (see the file for why).
    setupFiles: ['test/support/loopback-only.ts'],
    // The staff page is built once before the tests (it is not committed).
    globalSetup: ['test/support/build-web.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // The JSON report is what .ci/run counts; vitest's own last line is only a duration.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
