/** Prints how many tests ran on each Redis setup, so a run says so plainly. */
import type { Reporter, TestCase } from "vitest/node";

/** The most specific first: a TCP test inside a "[redis]" suite counts as TCP. */
const SETUPS = {
  "[redis-tcp]": "redis-server over TCP",
  "[redis-cluster]": "a 3-master Redis Cluster over TCP",
  "[redis]": "redis-server through the Upstash REST bridge",
};

export default class RedisCountReporter implements Reporter {
  private readonly counts = new Map<string, { passed: number; failed: number; skipped: number }>();

  onTestCaseResult(test: TestCase) {
    const setup = Object.keys(SETUPS).find((tag) => test.fullName.includes(tag));
    if (!setup) return;
    const count = this.counts.get(setup) ?? { passed: 0, failed: 0, skipped: 0 };
    const state = test.result().state;
    if (state === "passed") count.passed++;
    else if (state === "failed") count.failed++;
    else count.skipped++;
    this.counts.set(setup, count);
  }

  onTestRunEnd() {
    for (const [tag, name] of Object.entries(SETUPS)) {
      const { passed, failed, skipped } = this.counts.get(tag) ?? { passed: 0, failed: 0, skipped: 0 };
      console.log(`${tag === "[redis-tcp]" ? "\n" : ""}Redis suites: ${passed} tests passed against ${name}, ${failed} failed, ${skipped} skipped`);
    }
  }
}
