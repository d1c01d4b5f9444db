import { defineConfig } from "vitest/config";

/**
 * Slow tests (crashes and restarts, two processes on one file, wire fuzzing):
 * `npm run test:soak`, run by .ci/run after `npm test`. Files run one at a
 * time, so each one's timing is its own on a 2-core machine.
 */
export default defineConfig({
  test: {
    include: ["test/soak/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    globalSetup: ["test/support/build.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
