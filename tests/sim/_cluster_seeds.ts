/**
 * The whole-cluster simulator's CI budget: `ciClusterSeeds` seeds of the
 * correct cluster, split into `ciClusterShards` test files of
 * `ciClusterShardSeeds` each, so `deno test --parallel` runs them side by
 * side and no file runs much longer than a minute and a half on a loaded
 * two-core machine (measured: bench/RESULTS.md, "Whole-cluster simulation").
 * `deno task sim:long` runs 10,000.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runClusterSeed } from "../../lib/sim/cluster/cluster_sim.ts";

/** Seeds per test file. */
export const ciClusterShardSeeds = 100;
/** Test files that run seeds: cluster_sim_test.ts and cluster_seeds_{2,3}_test.ts. */
export const ciClusterShards = 3;
/** Seeds 1..ciClusterSeeds run in CI. */
export const ciClusterSeeds = ciClusterShardSeeds * ciClusterShards;

/**
 * Runs shard `shard` (1-based) of the CI seeds and fails with every
 * violating seed (and how to reproduce it).
 *
 * @example
 * ```ts
 * Deno.test("shard 2", () => checkClusterShard(2));
 * ```
 */
export async function checkClusterShard(shard: number): Promise<void> {
  assert.ok(shard >= 1 && shard <= ciClusterShards, `shard ${shard} of ${ciClusterShards}`);
  const first = (shard - 1) * ciClusterShardSeeds + 1;
  const failures: string[] = [];
  for (let seed = first; seed < first + ciClusterShardSeeds; seed++) {
    const result = await runClusterSeed(seed);
    if (result.violationCount > 0) {
      const violation = result.violations[0];
      failures.push(`seed ${seed}: ${violation.invariant}: ${violation.detail}`);
    }
    assert.ok(result.acknowledged > 0, `seed ${seed} acknowledged no publish at all`);
    assert.ok(result.delivered > 0, `seed ${seed}: SubscriptionPump pushed no message at all`);
  }
  assert.deepEqual(failures, [], `reproduce with: pubsub sim --cluster --seed N`);
}

/** The test name of shard `shard`. */
export function shardTestName(shard: number): string {
  const first = (shard - 1) * ciClusterShardSeeds + 1;
  return `Whole-cluster simulation: seeds ${first}..${
    first + ciClusterShardSeeds - 1
  } of real ClusterBrokers under faults break no invariant`;
}
