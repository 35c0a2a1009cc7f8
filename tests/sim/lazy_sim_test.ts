/**
 * The Raft-core simulator runs lazy followers (`RaftOptions.lazyFollowers`)
 * in half of its seeds: leaders mark the appends a commit does not need
 * `lazySync` and hold a lazy follower to one append in flight, and the
 * follower handles a lazy append `lazySyncMs` late, as `ReplicaGroup` does,
 * under the same crashes, power loss, partitions and membership changes.
 */

import assert from "node:assert/strict";
import { runSimulation } from "../../lib/sim/simulation.ts";

Deno.test("Seeds with lazy followers send lazy appends and find no violation; the others send none", () => {
  let lazySeeds = 0;
  let lazyAppends = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const result = runSimulation(seed);
    assert.equal(result.violation, undefined, `seed ${seed}: ${result.violation?.detail}`);
    if (result.config.lazySyncMs > 0) {
      lazySeeds++;
      lazyAppends += result.lazyAppends;
    } else {
      assert.equal(result.lazyAppends, 0, `seed ${seed} has lazy followers off`);
    }
  }
  assert.ok(lazySeeds >= 10, `${lazySeeds} of 40 seeds with lazy followers`);
  assert.ok(lazyAppends >= lazySeeds * 10, `${lazyAppends} lazy appends in ${lazySeeds} seeds`);
});
