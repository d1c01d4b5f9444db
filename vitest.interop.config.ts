import { defineConfig } from "vitest/config";

/** Interop tests against clients from Debian packages (see test/interop); run by .ci/run. */
export default defineConfig({
  test: {
    include: ["test/interop/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
