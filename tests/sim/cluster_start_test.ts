import assert from "node:assert/strict";
import { ManualScheduler } from "../../lib/cluster/manual_scheduler.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { SimCluster, simTiming } from "../../lib/sim/cluster/sim_cluster.ts";
import { healthyDisk } from "../../lib/sim/cluster/sim_disk.ts";
import { runUntil } from "../../lib/sim/cluster/sim_loop.ts";
import { calmNetwork, SimNetwork } from "../../lib/sim/cluster/sim_network.ts";

/** Three simulated peers with empty disks on a calm network. */
function newCluster(seed: number) {
  const scheduler = new ManualScheduler();
  const rng = new Prng(seed);
  const network = new SimNetwork(scheduler, rng.fork(), calmNetwork);
  const cluster = new SimCluster({
    scheduler,
    network,
    rng: rng.fork(),
    timing: simTiming,
    founders: [1, 2, 3],
    disk: () => healthyDisk,
  });
  return { scheduler, cluster };
}

/** Resolves `promise` while virtual time runs (at most `budgetMs`). */
async function drive<T>(scheduler: ManualScheduler, promise: Promise<T>, budgetMs: number) {
  let outcome: { value?: T; error?: unknown } | undefined;
  promise.then((value) => outcome = { value }, (error) => outcome = { error });
  const end = scheduler.now() + budgetMs;
  while (outcome === undefined && scheduler.now() < end) {
    await runUntil(scheduler, scheduler.now() + 100);
  }
  return outcome;
}

for (const seed of [1, 2, 3]) {
  Deno.test(`A cluster whose peers all start at once with empty disks forms and takes topics (seed ${seed})`, async () => {
    const { scheduler, cluster } = newCluster(seed);
    for (const id of [1, 2, 3]) cluster.start(id);
    await runUntil(scheduler, 15_000);
    const brokers = cluster.brokers();
    assert.deepEqual([...brokers.keys()], [1, 2, 3], "every peer opened");
    const created = await drive(scheduler, brokers.get(2)!.createTopic("events", 3), 10_000);
    assert.deepEqual(created, { value: true }, "the topic was created");
    for (const broker of brokers.values()) {
      const status = await drive(scheduler, broker.clusterStatus(), 1000);
      assert.deepEqual(status?.value?.meta_voters, [1, 2, 3]);
    }
    const stopping = Promise.all([1, 2, 3].map((id) => cluster.stop(id)));
    await drive(scheduler, stopping, 10_000);
  });
}

Deno.test("A cluster whose first peer starts first forms as the others join it", async () => {
  const { scheduler, cluster } = newCluster(4);
  cluster.start(1);
  await runUntil(scheduler, 3000);
  cluster.start(2);
  cluster.start(3);
  await runUntil(scheduler, 15_000);
  const created = await drive(
    scheduler,
    cluster.brokers().get(3)!.createTopic("events", 3),
    10_000,
  );
  assert.deepEqual(created, { value: true });
  await drive(scheduler, Promise.all([1, 2, 3].map((id) => cluster.stop(id))), 10_000);
});
