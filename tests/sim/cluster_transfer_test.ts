import assert from "node:assert/strict";
import { runClusterSeed } from "../../lib/sim/cluster/cluster_sim.ts";

/** A promise that never settles: `drive(never, ms)` lets `ms` of virtual time pass. */
const never = new Promise<void>(() => {});

Deno.test("ClusterBroker.transferLeadership hands a topic group's leadership to the voter named, and only its leader can", async () => {
  let checked = false;
  const result = await runClusterSeed(11, {
    inspect: async (brokers, drive) => {
      const any = brokers.values().next().value!;
      const before = (await drive(any.describeTopic("alpha")))!;
      assert.notEqual(before.leader, null);
      const leader = before.leader!;
      const target = before.replicas.find((id) => id !== leader)!;
      const follower = brokers.get(target)!;
      assert.equal(follower.transferLeadership("t:alpha", leader), false, "a follower cannot");
      const outsider = [...brokers.keys()].find((id) => !before.replicas.includes(id));
      if (outsider !== undefined) {
        assert.equal(
          brokers.get(leader)!.transferLeadership("t:alpha", outsider),
          false,
          "a node outside the group is refused",
        );
      }
      assert.equal(brokers.get(leader)!.transferLeadership("t:alpha", target), true);
      let after = before;
      for (let round = 0; round < 20 && after.leader !== target; round++) {
        await drive(never, 200);
        after = (await drive(any.describeTopic("alpha"))) ?? after;
      }
      assert.equal(after.leader, target, `leadership went to ${after.leader}, not ${target}`);
      checked = true;
    },
  });
  assert.ok(checked);
  assert.deepEqual(result.violations, []);
});

Deno.test("The whole-cluster nemesis injects leader transfers", async () => {
  let transfers = 0;
  for (let seed = 1; seed <= 20 && transfers === 0; seed++) {
    transfers += (await runClusterSeed(seed)).faults.transfer ?? 0;
  }
  assert.ok(transfers > 0, "no transfer in 20 seeds");
});
