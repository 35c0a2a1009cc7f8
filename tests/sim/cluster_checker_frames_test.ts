/**
 * `ClusterChecker.observeFrame` reads the Raft frames the simulated network
 * delivers, in the binary form peers send (raft_binary.ts): two leaders of
 * one term and a vote granted twice in a term are violations.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeBinaryRaftPayload, encodeBinaryRaftFrame } from "../../lib/cluster/raft_binary.ts";
import type { Message } from "../../lib/raft/types.ts";
import { ClusterChecker } from "../../lib/sim/cluster/sim_checker.ts";
import type { SimCluster } from "../../lib/sim/cluster/sim_cluster.ts";
import { History } from "../../lib/sim/cluster/sim_history.ts";
import { blankMessage } from "../raft/_members.ts";

/** A cluster whose disks were never replaced: all the checker asks of it. */
const cluster = { peer: () => ({ disk: { wipes: 0 } }) } as unknown as SimCluster;

const message = blankMessage;

/** The invariants violated so far (a function, so TypeScript does not narrow the list). */
function invariants(history: History): string[] {
  return history.violations.map((violation) => violation.invariant);
}

/** The record the simulated network hands the checker for one delivered frame. */
function delivered(from: number, body: Message): Record<string, unknown> {
  return decodeBinaryRaftPayload(encodeBinaryRaftFrame(from, "i", [["t:a", body]]).subarray(4));
}

Deno.test("the cluster checker finds two leaders of one term in binary Raft frames", () => {
  const history = new History(() => 0);
  const checker = new ClusterChecker(history, cluster);
  checker.observeFrame(1, delivered(1, message("heartbeat", 1, 2, 5)));
  checker.observeFrame(1, delivered(1, message("app", 1, 3, 5)));
  assert.equal(checker.leaderTerms, 1);
  assert.deepEqual(invariants(history), []);
  checker.observeFrame(2, delivered(2, message("app", 2, 3, 5)));
  assert.deepEqual(invariants(history), ["two_leaders"]);
});

Deno.test("the cluster checker finds a vote granted twice in one term in binary Raft frames", () => {
  const history = new History(() => 0);
  const checker = new ClusterChecker(history, cluster);
  checker.observeFrame(3, delivered(3, message("voteResp", 3, 1, 7)));
  checker.observeFrame(3, delivered(3, { ...message("voteResp", 3, 2, 7), reject: true }));
  assert.deepEqual(invariants(history), []);
  checker.observeFrame(3, delivered(3, message("voteResp", 3, 2, 7)));
  assert.deepEqual(invariants(history), ["double_vote"]);
});
