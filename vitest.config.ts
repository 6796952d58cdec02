import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/support/global-setup.ts"],
    reporters: ["default", "./tests/support/redis-count-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
