import { equal } from "node:assert/strict";
import { type Invariant, INVARIANTS } from "../../lib/sim/checker.ts";
import type { BrokenVariant } from "../../lib/sim/config.ts";
import { formatResult, runSimulation } from "../../lib/sim/simulation.ts";
import { CI_SEEDS } from "./_budget.ts";

/**
 * Each broken variant, what it breaks, and the invariant whose violation
 * must be the first one reported: a variant caught by some other check
 * would mean the checker misses what it should see first.
 */
const VARIANTS: readonly { broken: BrokenVariant; what: string; invariant: Invariant }[] = [
  {
    broken: "ack-before-fsync",
    what: "acknowledging entries and counting the own log before fsync",
    invariant: INVARIANTS.leaderCompleteness,
  },
  {
    broken: "commit-old-term",
    what: "committing an entry of an earlier term by counting replicas",
    invariant: INVARIANTS.leaderCompleteness,
  },
  {
    broken: "no-prevote-checkquorum",
    what: "running without PreVote and CheckQuorum",
    invariant: INVARIANTS.stability,
  },
  {
    broken: "vote-without-log-check",
    what: "granting votes without the log up-to-date check",
    invariant: INVARIANTS.leaderCompleteness,
  },
  {
    broken: "recovering-votes",
    what: "a replica rebuilt after losing its log voting before it caught up",
    invariant: INVARIANTS.leaderCompleteness,
  },
  {
    broken: "vote-not-fsynced",
    what: "answering a vote before it is synced",
    invariant: INVARIANTS.voteDurable,
  },
  {
    broken: "read-index-without-quorum",
    what: "a leader serving ReadIndex without confirming its leadership",
    invariant: INVARIANTS.linearizableReads,
  },
  {
    broken: "apply-before-commit",
    what: "applying entries before they are committed",
    invariant: INVARIANTS.applyCommitted,
  },
  {
    broken: "forget-producer-table-on-restart",
    what: "a replica forgetting its idempotent producers at a restart",
    invariant: INVARIANTS.noDuplicatePublish,
  },
  {
    broken: "restore-without-subscribers",
    what: "a topic state restored from a snapshot without its subscriber positions",
    invariant: INVARIANTS.snapshotMatchesState,
  },
  {
    broken: "skip-subscriber-offset",
    what: "a durable subscriber position that jumps past an offset",
    invariant: INVARIANTS.subscriberNoSkip,
  },
];

for (const { broken, what, invariant } of VARIANTS) {
  Deno.test(`The simulator catches ${what} as "${invariant}" within ${CI_SEEDS} seeds`, () => {
    for (let seed = 1; seed <= CI_SEEDS; seed++) {
      const result = runSimulation(seed, { broken });
      if (!result.violation) continue;
      equal(result.violation.invariant, invariant, formatResult(result));
      return;
    }
    throw new Error(`No violation in seeds 1..${CI_SEEDS} with --broken ${broken}`);
  });
}
