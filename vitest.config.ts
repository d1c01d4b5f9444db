import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Needs Debian packages: `npm run test:interop` (see vitest.interop.config.ts).
    exclude: ["test/interop/**", "**/node_modules/**"],
    pool: "forks",
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
