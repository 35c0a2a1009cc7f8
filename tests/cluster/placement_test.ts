import assert from "node:assert/strict";
import type { ProgressStatus } from "../../lib/raft/types.ts";
import type { TopicPlacement } from "../../lib/cluster/meta_state.ts";
import {
  caughtUp,
  loadOf,
  nextConfChange,
  placeReplicas,
  repairPlacement,
} from "../../lib/cluster/placement.ts";

function topic(name: string, replicas: number[], replicationFactor = 3): TopicPlacement {
  return { name, replicas, replicationFactor, epoch: 1, generation: 0 };
}

function progress(match: number, state: ProgressStatus["state"] = "replicate"): ProgressStatus {
  return { match, next: match + 1, state, learner: false, inflight: 0 };
}

Deno.test("placeReplicas picks the least loaded peers and leads with the one leading least", () => {
  const load = loadOf([topic("a", [1, 2, 3]), topic("b", [1, 2, 4])]);
  const three = placeReplicas([1, 2, 3, 4], load, 3);
  assert.deepEqual(
    [...three].sort(),
    [1, 3, 4],
    "1 holds as many replicas as 2 but has the lower id",
  );
  assert.ok(three[0] === 3 || three[0] === 4, "a peer leading nothing leads the new topic");
  const chosen = placeReplicas([1, 2, 3, 4], load, 2);
  assert.deepEqual([...chosen].sort(), [3, 4]);
  assert.equal(placeReplicas([5], loadOf([]), 3).length, 1, "fewer peers than the factor");
});

Deno.test("repairPlacement replaces a gone replica only when a live peer can take it", () => {
  const placement = topic("t", [1, 2, 3]);
  const load = loadOf([placement]);
  assert.equal(repairPlacement(placement, new Set([1, 2]), new Set([3]), load), undefined);
  assert.deepEqual(repairPlacement(placement, new Set([1, 2, 4]), new Set([3]), load), [1, 2, 4]);
  assert.deepEqual(repairPlacement(topic("u", [1], 3), new Set([1, 2, 3]), new Set(), load), [
    1,
    2,
    3,
  ]);
  assert.equal(repairPlacement(placement, new Set([1, 2, 3]), new Set(), load), undefined);
});

Deno.test("nextConfChange adds a learner, promotes it once caught up, then removes the extra voter", () => {
  const desired = [1, 2, 4];
  assert.deepEqual(nextConfChange({ voters: [1, 2, 3], learners: [] }, desired, {}, 50), {
    type: "addLearner",
    node: 4,
  });
  const withLearner = { voters: [1, 2, 3], learners: [4] };
  assert.equal(nextConfChange(withLearner, desired, { 4: progress(0, "probe") }, 50), undefined);
  assert.deepEqual(nextConfChange(withLearner, desired, { 4: progress(50) }, 50), {
    type: "promote",
    node: 4,
  });
  assert.deepEqual(nextConfChange({ voters: [1, 2, 3, 4], learners: [] }, desired, {}, 50), {
    type: "remove",
    node: 3,
  });
  assert.equal(nextConfChange({ voters: [1, 2, 4], learners: [] }, desired, {}, 50), undefined);
});

Deno.test("caughtUp never counts a peer that has not answered, however short the log", () => {
  assert.equal(caughtUp(undefined, 3), false);
  assert.equal(caughtUp(progress(0, "probe"), 3), false);
  assert.equal(caughtUp(progress(0, "replicate"), 3), false);
  assert.equal(caughtUp(progress(3, "probe"), 3), true);
  assert.equal(caughtUp(progress(950, "replicate"), 1000), true);
  assert.equal(caughtUp(progress(800, "replicate"), 1000), false);
});
