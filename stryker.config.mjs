/**
 * npm run mutate: how many planted bugs (mutants) the unit suites catch, per module. On demand,
 * not in CI: it runs the suites once per mutant. The Lua inside lib/store/lua.ts is held by
 * the tests built for it instead (every script × forged token, real TTLs, cursor edges).
 * Stryker's TypeScript checker (and its tsconfig rewriting) needs TypeScript's JS API, which
 * TypeScript 7 no longer has: mutants that would not type-check run anyway, and the tests
 * judge them. StrykerJS 9 is the last to run on Node 20.
 */
export default {
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutate.config.ts", related: false },
  mutate: process.env.MUTATE
    ? process.env.MUTATE.split(",")
    : ["lib/signaling.ts", "lib/http/*.ts", "lib/ratelimit.ts", "lib/config.ts", "lib/openai/*.ts", "lib/store/memory.ts"],
  coverageAnalysis: "perTest",
  concurrency: 2,
  timeoutMS: 30_000,
  ignoreStatic: true,
  reporters: ["clear-text", "progress", "json"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  tempDirName: ".stryker-tmp",
  // No tsconfig to rewrite (that takes the TypeScript API): a name that is not there.
  tsconfigFile: "tsconfig.none.json",
  cleanTempDir: "always",
};
