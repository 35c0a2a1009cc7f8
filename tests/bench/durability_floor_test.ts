/**
 * `measureDurabilityFloor` (lib/bench/durability_floor.ts) with its three
 * real child processes: every publish it counts is in the histogram, and
 * none of its children or files outlive it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { measureDurabilityFloor } from "../../lib/bench/durability_floor.ts";
import { LatencyHistogram } from "../../lib/bench/histogram.ts";
import { freePort } from "../../lib/bench/local_cluster.ts";

async function floorTempDirs(): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(Deno.env.get("TMPDIR") ?? "/tmp")) {
    if (entry.name.startsWith("pubsub-floor-")) names.push(entry.name);
  }
  return names;
}

Deno.test("the durability floor acknowledges publishes one at a time and stops its processes", async () => {
  const before = new Set(await floorTempDirs());
  const histogram = new LatencyHistogram();
  const ports: [number, number, number] = [freePort(), freePort(), freePort()];
  const acked = await measureDurabilityFloor({
    durationMs: 500,
    messageBytes: 100,
    histogram,
    ports,
  });
  assert.ok(acked > 0, "no publish was acknowledged");
  assert.equal(histogram.count, acked);
  assert.ok(histogram.percentile(50) > 0);
  // The processes are gone: nothing listens on the leader's port any more.
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: ports[0] }));
  const left = (await floorTempDirs()).filter((name) => !before.has(name));
  assert.deepEqual(left, []);
});
