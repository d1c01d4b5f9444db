import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Needs Debian packages: `npm run test:interop` (see vitest.interop.config.ts).
    // Slow: `npm run test:soak` (see vitest.soak.config.ts).
    exclude: ["test/interop/**", "test/soak/**", "**/node_modules/**"],
    pool: "forks",
    // Builds dist/ once, for the tests that run the server as a process.
    globalSetup: ["test/support/build.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
