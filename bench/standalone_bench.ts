/**
 * The standalone broker against a single-node cluster, in process: the same
 * pipelined publishes (256 in flight, 100 B, one fsync per batch) through
 * `LocalBroker` (`--standalone`) and through a single-node `ClusterBroker`
 * with replication factor 1. No sockets: only the brokers differ.
 *
 * Issue 10 asked whether standalone mode should become a one-voter Raft
 * group; before it did, this measured the separate standalone topic
 * implementation (`LocalTopic`) 2.3-2.5x slower than a one-voter group, so
 * `LocalBroker` now serves every topic as a one-voter group (see
 * bench/RESULTS.md). Today both rows run the same topic code; the
 * difference left is the cluster's metadata group and routing.
 *
 * Run: deno bench -A bench/standalone_bench.ts
 *
 * @module
 */

import { ClusterBroker } from "../lib/cluster/cluster_broker.ts";
import type { Broker } from "../lib/peer/broker.ts";
import { LocalBroker } from "../lib/peer/local_broker.ts";
import type { Topic } from "../lib/peer/topic.ts";

const publishesPerIteration = 2_000;
const inFlight = 256;
const message = "x".repeat(100);

/** Publishes `count` messages with `inFlight` outstanding at a time. */
async function publishPipelined(topic: Topic, count: number): Promise<void> {
  let sent = 0;
  const lane = async () => {
    while (sent < count) {
      sent++;
      await topic.publish([message]);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

async function leading(broker: Broker, name: string): Promise<Topic> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const route = await broker.topic(name).catch(() => undefined);
    if (route !== undefined) return route;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`No leader for ${name}`);
}

const standaloneDir = await Deno.makeTempDir({ prefix: "pubsub-bench-standalone-" });
const standalone = await LocalBroker.open({
  nodeId: 1,
  dataDir: standaloneDir,
  address: "127.0.0.1:1",
});
await standalone.createTopic("bench");
const standaloneTopic = await leading(standalone, "bench");

const clusterDir = await Deno.makeTempDir({ prefix: "pubsub-bench-raft1-" });
const cluster = await ClusterBroker.open({
  nodeId: 1,
  host: "127.0.0.1",
  port: 1,
  dataDir: clusterDir,
  peers: [],
  replicationFactor: 1,
  heartbeatMs: 1000,
  deadAfterMs: 10_000,
  requestTimeoutMs: 5_000,
});
for (let attempt = 0; attempt < 200; attempt++) {
  if (await cluster.createTopic("bench", 1).then(() => true, () => false)) break;
  await new Promise((resolve) => setTimeout(resolve, 25));
}
const clusterTopic = await leading(cluster, "bench");

Deno.bench(
  `standalone LocalBroker: ${publishesPerIteration} publishes, ${inFlight} in flight`,
  { group: "publish", baseline: true, n: 20, warmup: 3 },
  async () => await publishPipelined(standaloneTopic, publishesPerIteration),
);

Deno.bench(
  `one-voter Raft group (ClusterBroker, RF 1): ${publishesPerIteration} publishes, ${inFlight} in flight`,
  { group: "publish", n: 20, warmup: 3 },
  async () => await publishPipelined(clusterTopic, publishesPerIteration),
);

globalThis.addEventListener("unload", () => {
  // Benchmarks end with the process; the stores hold no state worth a clean close.
  try {
    Deno.removeSync(standaloneDir, { recursive: true });
    Deno.removeSync(clusterDir, { recursive: true });
  } catch {
    // Best effort: temp dirs.
  }
});
