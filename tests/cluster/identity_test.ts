import assert from "node:assert/strict";
import { loadNodeIdentity, NodeIdentityError } from "../../lib/cluster/node_identity.ts";
import { startCluster, waitFor, waitForFormation } from "../_helpers/cluster_process.ts";
import type { PeerProcess } from "../_helpers/peer_process.ts";

async function exitWithin(peer: PeerProcess, ms: number): Promise<Deno.CommandStatus | undefined> {
  return await Promise.race([
    peer.status,
    new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms)),
  ]);
}

Deno.test("a data directory remembers its node id and refuses another", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await loadNodeIdentity(dir, 3);
    assert.deepEqual(await loadNodeIdentity(dir, 3), first);
    await assert.rejects(
      loadNodeIdentity(dir, 4),
      (error: Error) =>
        error instanceof NodeIdentityError && /belongs to node 3, not node 4/.test(error.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a peer whose data directory was wiped cannot rejoin under its old id until it is removed", async () => {
  const cluster = await startCluster(3);
  const client = await cluster.client();
  /** Restarts peer `id` on an empty data directory, then puts its own directory back. */
  const restartWiped = async (id: number) => {
    const dataDir = cluster.peer(id).dataDir;
    await cluster.peer(id).stop();
    await Deno.rename(dataDir, `${dataDir}.saved`);
    const wiped = await cluster.start(id).catch((error) => error as Error);
    const status = wiped instanceof Error ? undefined : await exitWithin(wiped, 20_000);
    const output = wiped instanceof Error ? wiped.message : wiped.output();
    if (!(wiped instanceof Error) && status === undefined) await wiped.kill();
    await Deno.remove(dataDir, { recursive: true });
    await Deno.rename(`${dataDir}.saved`, dataDir);
    await cluster.start(id);
    await waitForFormation(cluster.peers, cluster.tls);
    assert.ok(wiped instanceof Error || status?.code === 1, `peer ${id} kept running:\n${output}`);
    return output;
  };
  try {
    await client.createTopic("keep");
    await waitFor(
      "3 in-sync replicas",
      async () => (await client.describeTopic("keep")).inSync.length === 3,
    );
    const stored = Array.from({ length: 20 }, (_, index) => `m${index}`);
    for (const message of stored) await client.publish("keep", message);

    // Peer 3 (a joiner) comes back with an empty data directory: refused, in one line.
    const output = await restartWiped(3);
    assert.match(output, /Node 3 is a member of this cluster with another data directory/);
    assert.match(output, /remove-node 3/);
    // Peer 1 (the first of --peers, which bootstraps a fresh cluster) neither
    // joins nor founds a second cluster beside the first.
    assert.match(
      await restartWiped(1),
      /Node 1 is a member of this cluster with another data directory/,
    );
    // A data directory started under another id is refused at once.
    await cluster.peer(2).stop();
    const stranger = await cluster.start(2, ["--id", "5"]).catch((error) => error as Error);
    assert.ok(stranger instanceof Error, "a peer started on node 2's directory as node 5");
    assert.match(stranger.message, /belongs to node 2, not node 5/);
    await cluster.start(2);
    const { messages } = await client.fetch("keep", { fromOffset: 0 });
    assert.deepEqual(messages.map((item) => item.message), stored);
  } finally {
    await client.close();
    await cluster.dispose();
  }
});

Deno.test("a removed peer may rejoin with a new data directory", async () => {
  const cluster = await startCluster(4);
  const client = await cluster.client();
  try {
    await client.createTopic("again");
    await waitFor(
      "3 in-sync replicas",
      async () => (await client.describeTopic("again")).inSync.length === 3,
    );
    const stored = Array.from({ length: 20 }, (_, index) => `m${index}`);
    for (const message of stored) await client.publish("again", message);
    const removed = (await client.describeTopic("again")).replicas.find((id) => id !== 1)!;
    await cluster.peer(removed).stop();
    await Deno.remove(cluster.peer(removed).dataDir, { recursive: true });
    await client.request({ action: "remove_node", node_id: removed });
    await waitFor(`the topic to move off peer ${removed}`, async () => {
      const info = await client.describeTopic("again");
      return !info.replicas.includes(removed) && info.inSync.length === 3;
    }, 45_000);
    const back = await cluster.start(removed);
    await waitFor(`peer ${removed} to be a live member again`, async () => {
      const status = await client.clusterStatus();
      return status.nodes.some((node) => node.id === removed && node.state === "alive");
    }, 30_000);
    assert.equal(await exitWithin(back, 1000), undefined, `peer ${removed} exited`);
    const { messages } = await client.fetch("again", { fromOffset: 0 });
    assert.deepEqual(messages.map((item) => item.message), stored);
  } finally {
    await client.close();
    await cluster.dispose();
  }
});
