import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["tests/support/global-setup.ts"],
    reporters: ["default", "./tests/support/redis-count-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      // Two files at a time: most of a test is waiting on sockets, not CPU.
      { extends: true, test: { name: "unit", include: ["tests/*.test.ts"], maxWorkers: 2 } },
      // Real Chromium: one file at a time, generous timeouts (software video on 2 cores).
      { extends: true, test: { name: "e2e", include: ["tests/e2e/*.test.ts"], fileParallelism: false, testTimeout: 120_000, hookTimeout: 60_000 } },
    ],
  },
});
