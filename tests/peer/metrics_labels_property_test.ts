/**
 * Label sets of the metrics registry (lib/peer/metrics.ts), looked up
 * through one map per label: any sequence of increments gives the totals a
 * reference keyed by the JSON of the values gives, and renders each set once.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { MetricsRegistry } from "../../lib/peer/metrics.ts";

const labelValue = fc.oneof(
  fc.constantFrom("", "a", "b", "\u0000", "a\u0000", "\u0000b", "publish"),
  fc.string({ maxLength: 4 }),
);

Deno.test("counters keep one total per label set, as a reference map does", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(labelValue, labelValue, fc.nat({ max: 5 })), { maxLength: 60 }),
      (increments) => {
        const counter = new MetricsRegistry().counter("t_total", "test", ["action", "status"]);
        const reference = new Map<string, number>();
        for (const [action, status, amount] of increments) {
          counter.inc({ status, action }, amount);
          const key = JSON.stringify([action, status]);
          reference.set(key, (reference.get(key) ?? 0) + amount);
        }
        for (const [key, total] of reference) {
          const [action, status] = JSON.parse(key);
          assert.equal(counter.value({ action, status }), total);
        }
        const lines: string[] = [];
        counter.renderSamples(lines);
        assert.equal(lines.length, reference.size);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("a histogram counts each observation in the first bucket at or above it", () => {
  const histogram = new MetricsRegistry().histogram("h_seconds", "test", { buckets: [1, 2, 4] });
  for (const value of [0, 1, 1.5, 2, 3, 4, 5, -1, Infinity]) histogram.observe(value);
  const lines: string[] = [];
  histogram.renderSamples(lines);
  assert.deepStrictEqual(lines.slice(0, 4), [
    'h_seconds_bucket{le="1"} 3',
    'h_seconds_bucket{le="2"} 5',
    'h_seconds_bucket{le="4"} 7',
    'h_seconds_bucket{le="+Inf"} 9',
  ]);
});
