import assert from "node:assert/strict";
import type { PubSubClient } from "../../lib/client/client.ts";
import {
  replicaMessages,
  startCluster,
  type TestCluster,
  waitFor,
  waitForFullReplication,
} from "../_helpers/cluster_process.ts";
import { RawClient } from "../_helpers/raw_client.ts";

async function replicasSettle(
  client: PubSubClient,
  topic: string,
  expected: (replicas: number[]) => boolean,
): Promise<number[]> {
  let last: unknown;
  return await waitFor(
    () => `the replicas of ${topic} to settle (last seen ${JSON.stringify(last)})`,
    async () => {
      const info = await client.describeTopic(topic);
      last = info;
      const settled = expected(info.replicas) &&
        info.inSync.length === info.replicas.length &&
        [...info.inSync].sort().join() === [...info.replicas].sort().join();
      return settled ? info.replicas : false;
    },
    45_000,
  );
}

async function publishAll(client: PubSubClient, topic: string, prefix: string, count: number) {
  const stored: { offset: number; message: string }[] = [];
  for (let index = 0; index < count; index++) {
    const message = `${prefix}-${index}`;
    stored.push({ offset: (await client.publish(topic, message)).offset, message });
  }
  return stored;
}

Deno.test("a topic created under-replicated grows to three replicas when peers join, and a removed peer's replicas move away", async () => {
  const cluster = await startCluster(2, { spare: 2, metrics: true });
  const client = await cluster.client();
  try {
    await client.createTopic("ledger");
    await replicasSettle(client, "ledger", (replicas) => replicas.length === 2);
    const first = await publishAll(client, "ledger", "a", 50);

    await cluster.start(3);
    await replicasSettle(client, "ledger", (replicas) => replicas.length === 3);
    const second = await publishAll(client, "ledger", "b", 50);

    await cluster.start(4);
    await waitFor(
      "peer 4 to be alive",
      async () =>
        (await client.clusterStatus()).nodes.some((node) =>
          node.id === 4 && node.state === "alive"
        ),
    );
    await client.removeNode(1);
    const replicas = await replicasSettle(
      client,
      "ledger",
      (list) => list.length === 3 && !list.includes(1) && list.includes(4),
    );
    const third = await publishAll(client, "ledger", "c", 50);
    const status = await client.clusterStatus();
    assert.equal(status.nodes.find((node) => node.id === 1)?.state, "left");
    // The removed peer still runs, but sends its clients elsewhere.
    const stale = await RawClient.connect(cluster.peer(1).port);
    const refused = await stale.request({
      action: "publish",
      topic_name: "ledger",
      message: "x",
    }) as {
      status: string;
      error: string;
    };
    assert.equal(refused.status, "unavailable");
    assert.match(refused.error, /removed from the cluster/);
    await stale.close();
    await client.close();

    await waitForFullReplication(cluster, "ledger");
    await cluster.stopAll();
    const contents = await Promise.all(
      replicas.map((id) => replicaMessages(cluster.peer(id).dataDir, "ledger")),
    );
    for (const content of contents) assert.deepEqual(content, contents[0]);
    for (const { offset, message } of [...first, ...second, ...third]) {
      assert.equal(contents[0][offset], message);
    }
  } finally {
    await client.close().catch(() => {});
    await cluster.dispose();
  }
});

Deno.test("a dead peer's replicas are re-created on a live peer from the survivors", async () => {
  const cluster = await startCluster(4, { metrics: true });
  const client = await cluster.client();
  try {
    await client.createTopic("events", { replicationFactor: 3 });
    const before = await replicasSettle(client, "events", (replicas) => replicas.length === 3);
    const stored = await publishAll(client, "events", "e", 100);
    const victim = before[before.length - 1];
    await cluster.peer(victim).kill("SIGKILL");
    // --dead-after is 2 s in tests; then the controller moves the replica.
    const after = await replicasSettle(
      client,
      "events",
      (replicas) => replicas.length === 3 && !replicas.includes(victim),
    );
    const spare = after.find((id) => !before.includes(id))!;
    assert.ok(spare !== undefined, `a new replica among ${after}`);
    stored.push(...await publishAll(client, "events", "f", 20));
    await client.close();

    await waitForFullReplication(cluster, "events");
    await cluster.stopAll();
    const contents = await Promise.all(
      after.map((id) => replicaMessages(cluster.peer(id).dataDir, "events")),
    );
    for (const content of contents) assert.deepEqual(content, contents[0]);
    for (const { offset, message } of stored) assert.equal(contents[0][offset], message);
  } finally {
    await client.close().catch(() => {});
    await cluster.dispose();
  }
});

/** What the next engineer needs when a wait of the leave test times out: cluster state and every peer's log. */
async function explained<T>(
  cluster: TestCluster,
  client: PubSubClient,
  wait: Promise<T>,
): Promise<T> {
  try {
    return await wait;
  } catch (error) {
    const status = JSON.stringify(await client.clusterStatus().catch(() => "unavailable"));
    const logs = cluster.peers.map((peer) => `--- peer ${peer.id}\n${peer.output().slice(-4000)}`);
    throw new Error(`${(error as Error).message}\ncluster: ${status}\n${logs.join("\n")}`);
  }
}

Deno.test("a peer stopped with --leave-on-exit moves its replicas away before it exits", async () => {
  const cluster = await startCluster(3, { spare: 1 });
  await cluster.start(4);
  const client = await cluster.client();
  try {
    await waitFor(
      "peer 4 to join",
      async () =>
        (await client.clusterStatus()).nodes.filter((node) => node.state === "alive").length === 4,
    );
    await client.createTopic("handover", { replicationFactor: 3 });
    const before = await replicasSettle(client, "handover", (replicas) => replicas.length === 3);
    const stored = await publishAll(client, "handover", "h", 50);
    const leaving = before[0];
    // Restart the chosen peer with the flag, then stop it gracefully.
    await cluster.peer(leaving).stop();
    await cluster.start(leaving, ["--leave-on-exit"]);
    await explained(
      cluster,
      client,
      replicasSettle(client, "handover", (replicas) => replicas.length === 3),
    );
    // Leaving waits (at most 30 s) until the peer's replicas live elsewhere;
    // on a loaded 2-core machine that can take longer than a plain stop.
    const status = await cluster.peer(leaving).stop(45_000);
    const output = cluster.peer(leaving).output();
    assert.equal(status.code, 0, output);
    assert.ok(!output.includes("leave failed"), output);
    // It waited until the topic's leader showed the move, not until its timeout.
    assert.ok(!output.includes("not yet moved"), output);
    const after = await explained(
      cluster,
      client,
      replicasSettle(
        client,
        "handover",
        (replicas) => replicas.length === 3 && !replicas.includes(leaving),
      ),
    );
    const nodes = (await client.clusterStatus()).nodes;
    assert.equal(nodes.find((node) => node.id === leaving)?.state, "left");
    assert.deepEqual(
      (await client.fetchMessages("handover")).slice(0, stored.length),
      stored.map((item) => item.message),
    );
    assert.equal(after.length, 3);
  } finally {
    await client.close().catch(() => {});
    await cluster.dispose();
  }
});
