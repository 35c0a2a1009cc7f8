import assert from "node:assert/strict";
import { runClusterSeed } from "../../lib/sim/cluster/cluster_sim.ts";
import type { ClusterBrokenVariant } from "../../lib/sim/cluster/sim_config.ts";
import { checkClusterShard, shardTestName } from "./_cluster_seeds.ts";
import { type ProgramRun, runPubsub } from "../_helpers/peer_process.ts";

// Shard 1 of the CI seeds here; shards 2 and 3 in cluster_seeds_{2,3}_test.ts (see _cluster_seeds.ts).
Deno.test(shardTestName(1), () => checkClusterShard(1));

Deno.test("Whole-cluster simulation replays a seed exactly: the same hash, events and result", async () => {
  const first = await runClusterSeed(11);
  const second = await runClusterSeed(11);
  assert.equal(second.hash, first.hash);
  assert.deepEqual(second, first);
  const other = await runClusterSeed(12);
  assert.notEqual(other.hash, first.hash, "another seed is another run");
});

/**
 * Runs seeds of `variant` until one breaks one of `expected`; fails when
 * none does within `budget` seeds (the variant's bug went unnoticed).
 */
async function assertCaught(
  variant: ClusterBrokenVariant,
  expected: string[],
  budget: number,
): Promise<void> {
  const seen = new Set<string>();
  for (let seed = 1; seed <= budget; seed++) {
    const result = await runClusterSeed(seed, { broken: variant });
    for (const violation of result.violations) seen.add(violation.invariant);
    if (result.violations.some((violation) => expected.includes(violation.invariant))) return;
  }
  assert.fail(
    `${variant} broke none of ${expected.join(", ")} in ${budget} seeds (it broke: ${
      [...seen].join(", ") || "nothing"
    })`,
  );
}

Deno.test("Whole-cluster simulation catches a disk that acknowledges fsyncs before they are durable", async () => {
  await assertCaught(
    "ack-before-fsync",
    ["committed_logs_differ", "acknowledged_lost", "replicas_diverged", "two_leaders"],
    100,
  );
});

Deno.test("Whole-cluster simulation catches a replica that grants votes before they are durable", async () => {
  await assertCaught("vote-before-fsync", ["two_leaders", "double_vote"], 100);
});

Deno.test("Whole-cluster simulation catches fetches answered from a follower's replica", async () => {
  await assertCaught("fetch-from-follower", ["stale_fetch"], 30);
});

/** Runs `pubsub sim` with `args` to its exit. */
function simCli(args: string[]): Promise<ProgramRun> {
  return runPubsub(["sim", ...args]);
}

Deno.test("pubsub sim --cluster --seed S --json prints the same bytes twice, with the run's hash", async () => {
  const first = await simCli(["--cluster", "--seed", "21", "--json"]);
  const second = await simCli(["--cluster", "--seed", "21", "--json"]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.stdout, first.stdout);
  const summary = JSON.parse(first.stdout);
  assert.equal(summary.mode, "cluster");
  assert.equal(summary.violations, 0);
  assert.match(summary.hash, /^[0-9a-f]{16}$/);
});

Deno.test("pubsub sim --cluster refuses a Raft-core variant and --ticks with one line and exit 2", async () => {
  const variant = await simCli(["--cluster", "--broken", "commit-old-term"]);
  assert.equal(variant.code, 2);
  assert.match(variant.stderr, /'--broken' must be one of ack-before-fsync/);
  const ticks = await simCli(["--cluster", "--ticks", "10"]);
  assert.equal(ticks.code, 2);
  assert.match(ticks.stderr, /'--ticks' applies to the Raft-core simulator only/);
});
