/**
 * The unit suites as `npm run mutate` (StrykerJS) runs them: in one process, so Stryker sees
 * which tests reach each mutant. Left out: suites that run the code in other processes
 * (multiprocess), or whose randomness and length suit a bug hunt rather than a mutant run (fuzz).
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["tests/support/global-setup.ts"],
    // MUTATE_TESTS=tests/limits.test.ts: only those (a quick look at one module's own tests).
    include: process.env.MUTATE_TESTS ? process.env.MUTATE_TESTS.split(",") : ["tests/*.test.ts"],
    // MUTATE_SKIP="1 000 messages|across streams": leave out tests by name (long ones, run once a mutant is known).
    ...(process.env.MUTATE_SKIP ? { testNamePattern: new RegExp(`^(?!.*(${process.env.MUTATE_SKIP}))`) } : {}),
    exclude: ["tests/multiprocess.test.ts", "tests/fuzz.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
