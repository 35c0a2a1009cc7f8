import assert from "node:assert/strict";
import { LatencyHistogram } from "../../lib/bench/histogram.ts";

/** Relative error HdrHistogram allows with 3 significant digits. */
const relativeErrorMax = 0.001;

function assertClose(actual: number, expected: number, message?: string): void {
  const tolerance = Math.max(Math.abs(expected) * relativeErrorMax, 0.001);
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    message ?? `expected ${actual} to be within ${tolerance} of ${expected}`,
  );
}

function filled(fromMs: number, toMs: number): LatencyHistogram {
  const histogram = new LatencyHistogram();
  for (let ms = fromMs; ms <= toMs; ms++) histogram.recordMilliseconds(ms);
  return histogram;
}

Deno.test("LatencyHistogram summarises 1..1000 ms within 3 significant digits", () => {
  const summary = filled(1, 1000).summary();
  assert.equal(summary.count, 1000);
  assertClose(summary.min!, 1);
  assertClose(summary.mean!, 500.5);
  assertClose(summary.p50!, 500);
  assertClose(summary.p90!, 900);
  assertClose(summary.p99!, 990);
  assertClose(summary.p999!, 999);
  assertClose(summary.max!, 1000);
});

Deno.test("LatencyHistogram keeps sub-millisecond values at microsecond resolution", () => {
  const histogram = new LatencyHistogram();
  histogram.recordMicroseconds(250);
  histogram.recordMilliseconds(0.0004);
  assert.equal(histogram.summary().max, 0.25);
  assert.equal(histogram.summary().min, 0);
});

Deno.test("LatencyHistogram summary of an empty histogram has a count of 0 and no values", () => {
  const summary = new LatencyHistogram().summary();
  assert.deepEqual(summary, {
    count: 0,
    min: undefined,
    mean: undefined,
    p50: undefined,
    p90: undefined,
    p99: undefined,
    p999: undefined,
    max: undefined,
  });
  assert.deepEqual(new LatencyHistogram().percentileSeries(), []);
});

Deno.test("LatencyHistogram summary leaves out the percentiles its count cannot support", () => {
  const two = filled(1, 2).summary();
  assert.equal(two.count, 2);
  assert.equal(two.p50, undefined, "a median of 2 samples would be the minimum");
  assert.equal(two.p99, undefined, "a p99 of 2 samples would be the maximum");
  assertClose(two.max!, 2);
  const ninetyNine = filled(1, 99).summary();
  assertClose(ninetyNine.p90!, 90);
  assert.equal(ninetyNine.p99, undefined);
  const hundred = filled(1, 100).summary();
  assertClose(hundred.p99!, 99);
  assert.equal(hundred.p999, undefined);
});

Deno.test("LatencyHistogram merge adds the counts and widens the range", () => {
  const merged = filled(1, 100);
  merged.merge(filled(901, 1000));
  const summary = merged.summary();
  assert.equal(summary.count, 200);
  assertClose(summary.min!, 1);
  assertClose(summary.max!, 1000);
  assertClose(summary.mean!, (50.5 + 950.5) / 2);
  assertClose(summary.p50!, 100);
});

Deno.test("LatencyHistogram rejects negative and non-finite latencies", () => {
  const histogram = new LatencyHistogram();
  assert.throws(() => histogram.recordMilliseconds(-1), RangeError);
  assert.throws(() => histogram.recordMicroseconds(Number.NaN), RangeError);
  assert.throws(() => histogram.percentile(101), RangeError);
  assert.equal(histogram.count, 0);
});

Deno.test("LatencyHistogram percentileSeries rises monotonically and ends at the maximum", () => {
  const histogram = filled(1, 100_000);
  const series = histogram.percentileSeries();
  assert.equal(series[0].percentile, 0);
  assert.equal(series.at(-1)!.percentile, 99.999);
  assertClose(series.at(-1)!.latencyMs, 100_000);
  for (let index = 1; index < series.length; index++) {
    assert.ok(series[index].percentile > series[index - 1].percentile);
    assert.ok(series[index].latencyMs >= series[index - 1].latencyMs);
  }
  const p90 = series.find((point) => Math.abs(point.percentile - 90) < 1);
  assert.ok(p90 !== undefined, "a level near 90% exists");
});

Deno.test("LatencyHistogram percentileSeries stops at the level the count can resolve", () => {
  const series = filled(1, 100).percentileSeries();
  assert.equal(series.at(-1)!.percentile, 99);
  assert.ok(series.every((point) => point.percentile <= 99));
});
