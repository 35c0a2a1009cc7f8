import assert from "node:assert/strict";
import { runClusterSeed } from "../../lib/sim/cluster/cluster_sim.ts";

/**
 * Seeds of the whole-cluster simulator that once found a bug in lib/cluster,
 * each with what it found. A change of the cluster code changes the
 * histories these seeds produce, so they guard the fix loosely; the
 * explanation says what to look for if one fails again.
 */
const regressions: { seed: number; bug: string }[] = [
  {
    seed: 1610,
    bug:
      "leave() deleted the files of a replica that was still a voter (a lagging voter is not in sync, which #movedAway took for 'moved'); the empty replica then granted a vote to a stale candidate and a committed entry was overwritten (committed_logs_differ)",
  },
  {
    seed: 2759,
    bug:
      "a voter restarted after the placement moved it away did not reopen its replica (only placed nodes did), and the metadata recorded a group's members only after removals, so a learner promoted since was missing from the record; with another voter removed the group lost its quorum for good (placement_not_converged)",
  },
  {
    seed: 100490,
    bug:
      "a node removed and back under its id with a replaced (empty) data directory hosted an empty replica of a group that still listed the id as a member (hosting by membership, bf54da1) and voted with an empty log; a committed entry was overwritten (committed_logs_differ)",
  },
  {
    seed: 106730,
    bug:
      "a new leader reported its group's membership before committing an entry of its term, from an applied membership older than the one its predecessor had committed and recorded; the stale record made members re-host and drop replicas (committed_logs_differ)",
  },
  {
    seed: 101331,
    bug:
      "a removed id back with a replaced (empty) directory joined while groups still counted it; placed again, its empty replica took the old directory's voter slot and a leader without acknowledged publishes was elected (stale_fetch, committed_logs_differ)",
  },
  {
    seed: 100122,
    bug:
      "a replica removed from its group and placed on the same node again started empty, forgot its vote of term 3 and granted a second one to a partitioned candidate still counting it under the old membership (double_vote, two_leaders); dropped replicas of a living group now leave a tombstone (replica_tombstone.ts)",
  },
  {
    seed: 102303,
    bug:
      "a founding replica moved away before its group ever changed membership had no recorded membership to host by; after a restart it never reopened its replica, and with another founder gone the group {1, 4, 5} lost its quorum for good (placement_not_converged); the same cause stalled seeds 101187, 107091 and 108876",
  },
  { seed: 101187, bug: "as seed 102303 (a removed node; a producer never finished)" },
  { seed: 107091, bug: "as seed 102303 (after a replaced disk)" },
  { seed: 108876, bug: "as seed 102303 (after a leave; two producers never finished)" },
  {
    seed: 107299,
    bug:
      "a replaced (empty) directory that rejoined replayed the metadata log from its start and, before applying its own rejoin, acted on the old directory's record: it bootstrapped a founding replica as the bootstrap leader of term 1 with an empty log (two_leaders: the old disk and the new one both led term 1); replicas now wait until the metadata records this directory",
  },
  {
    seed: 104281,
    bug:
      "not a product bug: the nemesis replaced the disk of one of the metadata group's two voters (it was still growing from one voter to three) and the group lost its majority for good (placement_not_converged); the nemesis no longer replaces a disk whose loss takes a group's majority",
  },
  {
    seed: 3854095129,
    bug:
      "a committed conf change was applied before the commit index covering it was fsynced (a commit-only hard state is not); after a crash the replicas came back at voters {1,2,3,4} although the removal of 3 had committed, and waited forever for the removed voter (placement_not_converged); RaftNode now syncs that commit first",
  },
  {
    seed: 3854095179,
    bug:
      "the storage's skipped term-1 hard state (lib/storage/_metadata.ts impliedByLog) lost a bootstrap leader's commit index: after a power loss it applied only the bootstrap conf {1,2,3} and won term 2 with {1,2} beside the leader elected under {1,3,4} (two_leaders); also CI seed 104 (committed_logs_differ)",
  },
  {
    seed: 1914657110,
    bug:
      "not a product bug: the nemesis, from a view a fault old, replaced a disk while the metadata group had two voters and lost its majority (placement_not_converged)",
  },
  {
    seed: 2174181049,
    bug:
      "a node that joined after the topic was created became a voter of its group, was moved away by the placement while the group was stuck, and after a restart never reopened its replica (hosting by membership was for directories older than the topic only); with another voter removed the group had no quorum again (placement_not_converged)",
  },
  {
    seed: 306143,
    bug:
      "a joiner whose join answers were lost kept retrying while it left: a retried join, answered after its removal had committed, added it back (a left member with its own directory may rejoin), so after it stopped the metadata counted a member that never came back and no group moved off it (placement_not_converged); leave() now stops the join loop first",
  },
  {
    seed: 9703731,
    bug:
      "a learner's replica was dropped because the metadata recorded members only before the next change (not after adding a learner) and a newer placement moved it away, while a leader with the older placement promoted it; the voter came back empty and recovering, and four voters with one gone elected no leader (placement_not_converged)",
  },
];

for (const { seed, bug } of regressions) {
  Deno.test(`Whole-cluster seed ${seed} breaks no invariant (it once found: ${bug.slice(0, 60)}...)`, async () => {
    const result = await runClusterSeed(seed);
    assert.deepEqual(result.violations, [], bug);
  });
}
