import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { failoverWindows, throughputSteps } from "../../lib/bench/timeline.ts";

/** Steps as [from s, to s, acks per second], for short expectations. */
function compact(steps: ReturnType<typeof throughputSteps>): [number, number, number][] {
  return steps.map((step) => [step.fromSeconds, step.toSeconds, step.messagesPerSecond]);
}

Deno.test("throughputSteps counts acknowledgements per second and scales a partial last bucket", () => {
  const steps = throughputSteps([100, 200, 999, 1000, 1500, 2100], { startMs: 0, endMs: 2500 });
  assertEquals(compact(steps), [[0, 1, 3], [1, 2, 2], [2, 2.5, 2]]);
  assertEquals(steps.map((step) => step.acknowledged), [3, 2, 1]);
});

Deno.test("throughputSteps ignores acknowledgements outside the interval", () => {
  assertEquals(compact(throughputSteps([-1, 50, 1000], { startMs: 0, endMs: 1000 })), [[0, 1, 1]]);
});

Deno.test("throughputSteps shows a bucket without acknowledgements as zero", () => {
  assertEquals(
    compact(throughputSteps([10, 2500], { startMs: 0, endMs: 3000 })),
    [[0, 1, 1], [1, 2, 0], [2, 3, 1]],
  );
});

Deno.test("throughputSteps uses 100 ms buckets from 1 s before to 5 s after a kill", () => {
  const steps = throughputSteps([], { startMs: 0, endMs: 10_000 }, { killsMs: [3050] });
  const widths = steps.map((step) => Math.round((step.toSeconds - step.fromSeconds) * 1000));
  // 0-1 s and 1-2 s coarse; 2.0 s (1 s before the kill, on the 100 ms grid) to 8.1 s fine; then coarse.
  assertEquals(widths.slice(0, 2), [1000, 1000]);
  assertEquals(steps[2].fromSeconds, 2);
  const fine = steps.filter((step) => step.fromSeconds >= 2 && step.toSeconds <= 8.1);
  assertEquals(fine.length, 61);
  assertEquals(
    fine.every((step) => Math.abs(step.toSeconds - step.fromSeconds - 0.1) < 1e-9),
    true,
  );
  assertEquals(compact(steps.slice(-2)).map(([from, to]) => [from, to]), [[8.1, 9], [9, 10]]);
});

Deno.test("throughputSteps shows an outage inside a second that 1 s buckets would hide", () => {
  // 1,000 acks per second, none from 3.0 to 3.4 s: a 1 s bucket would still read 600.
  const acks = Array.from({ length: 6000 }, (_, index) => index).filter((at) =>
    at < 3000 || at >= 3400
  );
  const steps = throughputSteps(acks, { startMs: 0, endMs: 6000 }, { killsMs: [3000] });
  const during = steps.filter((step) => step.fromSeconds >= 3 && step.toSeconds <= 3.4);
  assertEquals(during.length, 4);
  assertEquals(during.every((step) => step.messagesPerSecond === 0), true);
});

Deno.test("throughputSteps merges a sliver of a last bucket into the one before it", () => {
  const steps = throughputSteps([5, 1010, 1020], { startMs: 0, endMs: 1020 }, { killsMs: [900] });
  const last = steps.at(-1)!;
  assertEquals([last.fromSeconds, last.toSeconds], [0.9, 1.02]);
  assertEquals(last.acknowledged, 1);
});

Deno.test("throughputSteps rejects an end before the start and a coarse bucket off the fine grid", () => {
  assertThrows(() => throughputSteps([], { startMs: 10, endMs: 5 }), RangeError);
  assertThrows(
    () => throughputSteps([], { startMs: 0, endMs: 5 }, { bucketMs: 1000, fineBucketMs: 300 }),
    RangeError,
  );
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
