import assert from "node:assert/strict";
import {
  formatNumber,
  formatSummary,
  samplesNeeded,
  statisticLabels,
  summarize,
  supports,
} from "../../lib/bench/statistics.ts";

Deno.test("samplesNeeded asks for one sample above and one below each percentile", () => {
  assert.equal(samplesNeeded(50), 3);
  assert.equal(samplesNeeded(90), 10);
  assert.equal(samplesNeeded(99), 100);
  assert.equal(samplesNeeded(99.9), 1000);
  assert.throws(() => samplesNeeded(100), RangeError);
  assert.throws(() => samplesNeeded(0), RangeError);
});

Deno.test("supports refuses a p99 from 99 samples and a median from 2", () => {
  assert.equal(supports(99, 99), false);
  assert.equal(supports(100, 99), true);
  assert.equal(supports(2, 50), false);
  assert.equal(supports(3, 50), true);
});

Deno.test("summarize of two failover windows gives min, mean and max but no percentile", () => {
  assert.deepEqual(summarize([4360, 1333]), {
    count: 2,
    min: 1333,
    mean: 2846.5,
    p50: undefined,
    p90: undefined,
    p99: undefined,
    p999: undefined,
    max: 4360,
  });
});

Deno.test("summarize takes nearest-rank percentiles once the count supports them", () => {
  const hundred = Array.from({ length: 100 }, (_, index) => 100 - index);
  const summary = summarize(hundred);
  assert.equal(summary.count, 100);
  assert.equal(summary.p50, 50);
  assert.equal(summary.p90, 90);
  assert.equal(summary.p99, 99);
  assert.equal(summary.p999, undefined);
  assert.equal(summary.max, 100);
  assert.equal(summarize([3, 1, 2]).p50, 2);
});

Deno.test("summarize of nothing has a count of 0 and no values", () => {
  const summary = summarize([Number.NaN]);
  assert.equal(summary.count, 0);
  assert.equal(summary.min, undefined);
  assert.equal(summary.mean, undefined);
  assert.equal(summary.max, undefined);
});

Deno.test("formatSummary prints n, the statistics the count supports, the max and what is missing", () => {
  assert.equal(
    formatSummary(summarize([4359.76, 1333.28]), { unit: "ms", noun: "leader kills" }),
    "n=2 leader kills, max 4,360 ms (too few for median, needs 3; p99, needs 100)",
  );
  assert.equal(
    formatSummary(summarize([1, 2, 3, 4, 5]), { unit: "ms" }),
    "n=5 samples, median 3 ms, max 5 ms (too few for p99, needs 100)",
  );
  const thousand = summarize(Array.from({ length: 1000 }, (_, index) => index + 1));
  assert.equal(
    formatSummary(thousand, { unit: "ms", statistics: ["min", "p50", "p99", "p999"] }),
    "n=1,000 samples, min 1 ms, median 500 ms, p99 990 ms, p99.9 999 ms, max 1,000 ms",
  );
  assert.equal(formatSummary(summarize([]), { noun: "kills" }), "n=0 kills, nothing to summarise");
});

Deno.test("formatSummary never labels a maximum as a percentile", () => {
  for (let count = 1; count <= 120; count++) {
    const values = Array.from({ length: count }, (_, index) => index + 1);
    const text = formatSummary(summarize(values), { statistics: ["p50", "p90", "p99", "p999"] });
    for (const label of ["median", "p90", "p99", "p99.9"]) {
      assert.ok(!text.includes(`${label} ${count},`), `${label} equals the max at n=${count}`);
    }
  }
});

Deno.test("statistic labels name p50 the median everywhere", () => {
  assert.equal(statisticLabels.p50, "median");
  assert.equal(statisticLabels.p999, "p99.9");
});

Deno.test("formatNumber groups thousands and keeps 3 significant digits below 1000", () => {
  assert.equal(formatNumber(12_345.6), "12,346");
  assert.equal(formatNumber(3.14159), "3.14");
  assert.equal(formatNumber(0.000123456), "0.000123");
  assert.equal(formatNumber(0), "0");
});
