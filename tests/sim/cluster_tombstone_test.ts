import assert from "node:assert/strict";
import { runClusterSeed } from "../../lib/sim/cluster/cluster_sim.ts";
import type { SimCluster } from "../../lib/sim/cluster/sim_cluster.ts";

/** A promise that never settles: `drive(never, ms)` lets `ms` of virtual time pass. */
const never = new Promise<void>(() => {});

/** The tombstones on the disks: empty logs flagged recovering, by node, for `directory`. */
function tombstones(cluster: SimCluster, directory: string): number[] {
  const nodes: number[] = [];
  for (const peer of cluster.peers.values()) {
    const log = peer.disk.logs.get(directory);
    if (log?.recoveringTerm !== undefined && log.medium.lastIndex() === 0) nodes.push(peer.id);
  }
  return nodes;
}

Deno.test("A replica moved away leaves a tombstone at its last term, and deleting the topic removes it", async () => {
  let checked = false;
  // Seed 11 moves alpha's replica away from node 4 (a tombstone stays there at term 3).
  await runClusterSeed(11, {
    inspect: async (brokers, drive, cluster) => {
      assert.deepEqual(tombstones(cluster, "topics/alpha.1"), [4]);
      assert.equal(
        brokers.get(4)?.stats().groups.some((group) => group.group === "t:alpha"),
        false,
      );
      const any = brokers.values().next().value!;
      await drive(any.deleteTopic("alpha"));
      await drive(never, 3000);
      for (const peer of cluster.peers.values()) {
        assert.equal(peer.disk.logs.has("topics/alpha.1"), false, `node ${peer.id} kept alpha.1`);
      }
      checked = true;
    },
  });
  assert.ok(checked);
});
