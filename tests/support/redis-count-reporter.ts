/** Prints how many tests ran against the real redis-server, so a run says so plainly. */
import type { Reporter, TestCase } from "vitest/node";

export default class RedisCountReporter implements Reporter {
  private passed = 0;
  private failed = 0;
  private skipped = 0;

  onTestCaseResult(test: TestCase) {
    if (!test.fullName.includes("[redis]")) return;
    const state = test.result().state;
    if (state === "passed") this.passed++;
    else if (state === "failed") this.failed++;
    else this.skipped++;
  }

  onTestRunEnd() {
    console.log(
      `\nRedis suites: ${this.passed} tests passed against redis-server through the Upstash REST bridge` +
        `, ${this.failed} failed, ${this.skipped} skipped\n`,
    );
  }
}
