import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { failoverWindows, nearestRank, throughputBuckets } from "../../lib/bench/timeline.ts";

Deno.test("throughputBuckets counts acknowledgements per second and scales a partial last bucket", () => {
  const points = throughputBuckets([100, 200, 999, 1000, 1500, 2100], 0, 2500);
  assertEquals(points, [[0, 3], [1, 2], [2, 2]]);
});

Deno.test("throughputBuckets ignores acknowledgements outside the interval", () => {
  assertEquals(throughputBuckets([-1, 50, 1000], 0, 1000), [[0, 1]]);
});

Deno.test("throughputBuckets shows a bucket without acknowledgements as zero", () => {
  assertEquals(throughputBuckets([10, 2500], 0, 3000), [[0, 1], [1, 0], [2, 1]]);
});

Deno.test("throughputBuckets rejects an end before the start", () => {
  assertThrows(() => throughputBuckets([], 10, 5), RangeError);
});

Deno.test("failoverWindows ignores publishes sent before the kill even if acknowledged after it", () => {
  const windows = failoverWindows([1000], [
    { sentMs: 990, ackedMs: 1001 },
    { sentMs: 1005, ackedMs: 2400 },
    { sentMs: 1010, ackedMs: 2300 },
  ]);
  assertEquals(windows, [1300]);
});

Deno.test("failoverWindows attributes each publish to the latest kill before it", () => {
  const windows = failoverWindows([5000, 1000], [
    { sentMs: 1001, ackedMs: 2000 },
    { sentMs: 5001, ackedMs: 5500 },
  ]);
  assertEquals(windows, [1000, 500]);
});

Deno.test("failoverWindows reports a kill without any acknowledged publish as undefined", () => {
  const windows = failoverWindows([1000, 3000], [
    { sentMs: 1001, ackedMs: undefined },
    { sentMs: 3001, ackedMs: 3100 },
  ]);
  assertEquals(windows, [undefined, 100]);
});

Deno.test("nearestRank picks the value at the percentile's rank", () => {
  const values = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
  assertEquals(nearestRank(values, 50), 5);
  assertEquals(nearestRank(values, 99), 10);
  assertEquals(nearestRank(values, 0), 1);
  assertEquals(Number.isNaN(nearestRank([], 50)), true);
  assertThrows(() => nearestRank(values, 101), RangeError);
});
