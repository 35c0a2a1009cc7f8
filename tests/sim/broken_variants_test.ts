import { equal } from "node:assert/strict";
import type { BrokenVariant } from "../../lib/sim/config.ts";
import { runSimulation } from "../../lib/sim/simulation.ts";

const SEEDS_MAX = 500;

/** Returns the first seed in [1, SEEDS_MAX] on which the simulator reports a violation. */
function firstFailingSeed(broken: BrokenVariant): { seed: number; invariant: string } | undefined {
  for (let seed = 1; seed <= SEEDS_MAX; seed++) {
    const result = runSimulation(seed, { broken });
    if (result.violation) return { seed, invariant: result.violation.invariant };
  }
  return undefined;
}

for (
  const [broken, what] of [
    ["ack-before-fsync", "acknowledging and counting the own log before fsync"],
    ["commit-old-term", "committing an entry of an earlier term by counting replicas"],
    ["no-prevote-checkquorum", "running without PreVote and CheckQuorum"],
    ["vote-without-log-check", "granting votes without the log up-to-date check"],
    ["recovering-votes", "a replica rebuilt after losing its log voting before it caught up"],
  ] as const
) {
  Deno.test(`The simulator detects ${what} within ${SEEDS_MAX} seeds`, () => {
    const found = firstFailingSeed(broken);
    equal(found !== undefined, true, `no violation found for --broken ${broken}`);
  });
}
