/**
 * The simulator's histories include snapshot transfers that carry retained
 * entries (compaction keeps whole segments below its snapshot), installed
 * through the real restore path of `TopicState` (the broken variant
 * restore-without-subscribers shows the checker catches a lossy restore).
 */

import assert from "node:assert/strict";
import { runSimulation } from "../../lib/sim/simulation.ts";

Deno.test("The simulator runs compaction and snapshot transfers with retained entries and finds no violation", () => {
  let installs = 0;
  let retained = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const result = runSimulation(seed);
    assert.equal(result.violation, undefined, `seed ${seed}: ${result.violation?.detail}`);
    installs += result.snapshotsInstalled;
    retained += result.retainedEntriesInstalled;
  }
  assert.ok(installs >= 10, `${installs} snapshots installed`);
  assert.ok(retained >= installs, `${retained} retained entries installed`);
});
