/**
 * How `PubSubClient` puts publishes on the wire: concurrent publishes
 * coalesce into `publish_batch` frames (a lone one goes out at once as a
 * plain `publish`), and with several bootstrap addresses publishes go
 * straight to the topic's leader. Real peers, proxies that record requests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startPeer } from "../_helpers/peer_process.ts";
import { startCluster, waitFor, waitForLeader } from "../_helpers/cluster_process.ts";
import { PubSubClient } from "../../lib/client/client.ts";
import { type Proxy, startProxy } from "./_proxy.ts";

function published(proxy: Proxy): Record<string, unknown>[] {
  return proxy.requests.filter((request) =>
    request.action === "publish" || request.action === "publish_batch"
  );
}

function messageCount(request: Record<string, unknown>): number {
  return request.action === "publish" ? 1 : (request.messages as unknown[]).length;
}

Deno.test("concurrent publishes coalesce into publish_batch frames with dense offsets in call order", async () => {
  const peer = await startPeer();
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, () => ({ kind: "forward" }));
  const client = await PubSubClient.connect({ peers: [proxy.address] });
  try {
    await client.createTopic("events");
    const messages = Array.from({ length: 500 }, (_, index) => `m${index}`);
    const answers = await Promise.all(messages.map((message) => client.publish("events", message)));
    assert.deepEqual(answers.map(({ offset }) => offset), messages.map((_, index) => index));
    assert.deepEqual(await client.fetchMessages("events"), messages);
    // Closed loops: each worker publishes again as soon as its answer came.
    const looped: string[] = [];
    await Promise.all(Array.from({ length: 50 }, async (_, worker) => {
      for (let round = 0; round < 10; round++) {
        const message = `w${worker}.${round}`;
        const { offset } = await client.publish("events", message);
        looped[offset - 500] = message;
      }
    }));
    assert.deepEqual((await client.fetchMessages("events")).slice(500), looped);
    const requests = published(proxy);
    assert.ok(requests.some((request) => request.action === "publish_batch"));
    assert.ok(requests.length < 200, `${requests.length} requests for 1000 publishes`);
    assert.equal(requests.reduce((sum, request) => sum + messageCount(request), 0), 1000);
    const sequences = requests.map((request) => request.sequence as number);
    assert.deepEqual(sequences, sequences.map((_, index) => index), "one sequence per batch");
    // A publish alone on an idle connection goes out at once, unbatched.
    assert.deepEqual(await client.publish("events", "alone"), { offset: 1000 });
    assert.equal(published(proxy).at(-1)?.action, "publish");
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("a coalesced batch whose answer is lost is resent whole with its sequence and stored once", async () => {
  const peer = await startPeer();
  let lost = false;
  const proxy = startProxy({ hostname: "127.0.0.1", port: peer.port }, (request) => {
    if (request.action === "publish_batch" && !lost) {
      lost = true;
      return { kind: "lose_answer" };
    }
    return { kind: "forward" };
  });
  const client = await PubSubClient.connect({ peers: [proxy.address] });
  try {
    await client.createTopic("events");
    const messages = Array.from({ length: 100 }, (_, index) => `m${index}`);
    const answers = await Promise.all(messages.map((message) => client.publish("events", message)));
    assert.deepEqual(answers.map(({ offset }) => offset), messages.map((_, index) => index));
    assert.deepEqual(await client.fetchMessages("events"), messages);
    const batches = published(proxy).filter((request) => request.action === "publish_batch");
    assert.equal(batches.length, 2, "the batch went out twice");
    assert.deepEqual({ ...batches[1], id: 0 }, { ...batches[0], id: 0 }, "resent as it was");
  } finally {
    await client.close();
    await proxy.close();
    await peer.stop();
    await Deno.remove(peer.dataDir, { recursive: true });
  }
});

Deno.test("PubSubClient sends publishes straight to the topic's leader once it learned it", async () => {
  const cluster = await startCluster(3);
  const proxies = cluster.peers.map((peer) =>
    startProxy({ hostname: "127.0.0.1", port: peer.port }, () => ({ kind: "forward" }))
  );
  const client = await PubSubClient.connect({
    peers: proxies.map((proxy) => proxy.address),
    leaderRefreshMs: 60_000,
  });
  try {
    await client.createTopic("routed");
    const leader = await waitForLeader(client, "routed");
    const leaderProxy = proxies[cluster.peers.findIndex((peer) => peer.id === leader)];
    await client.publish("routed", "first");
    // The first publish asked in the background who leads; later ones go there.
    await waitFor("the leader's connection", async () => {
      await client.publish("routed", "probe");
      return published(leaderProxy).length > 0;
    });
    const before = proxies.map((proxy) => published(proxy).length);
    for (let index = 0; index < 20; index++) await client.publish("routed", `direct ${index}`);
    const after = proxies.map((proxy) => published(proxy).length);
    proxies.forEach((proxy, index) => {
      const expected = proxy === leaderProxy ? 20 : 0;
      assert.equal(after[index] - before[index], expected, `publishes through ${proxy.address}`);
    });
    const stored = await client.fetchMessages("routed");
    assert.deepEqual(
      stored.slice(-20),
      Array.from({ length: 20 }, (_, index) => `direct ${index}`),
    );
    assert.equal(stored[0], "first");
  } finally {
    await client.close();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster.dispose();
  }
});

Deno.test("publishes keep their call order in the topic while the client switches to the leader", async () => {
  const cluster = await startCluster(3);
  const setup = await cluster.client();
  const proxies: Proxy[] = [];
  let client: PubSubClient | undefined;
  try {
    await setup.createTopic("ordered");
    const leader = await waitForLeader(setup, "ordered");
    // The home peer does not lead and is slow: publishes forwarded through it land late. Only
    // the first few are held: the proxy holds every later request of the connection behind a
    // delayed one, so a long run of them would also hold the describe_topic that teaches the
    // client the leader (a client that sends each publish as its own request when the socket is
    // free made that run long enough, on a loaded machine, to time publishes out).
    const peers = [...cluster.peers].sort((a, b) =>
      Number(a.id === leader) - Number(b.id === leader)
    );
    let held = 0;
    for (const [index, peer] of peers.entries()) {
      proxies.push(
        startProxy(
          { hostname: "127.0.0.1", port: peer.port },
          (request) =>
            index === 0 && String(request.action).startsWith("publish") && held++ < 8
              ? { kind: "delay", ms: 150 }
              : { kind: "forward" },
        ),
      );
    }
    // Not idempotent: no producer sequence would restore the order if batches overtook each other.
    client = await PubSubClient.connect({
      peers: proxies.map((proxy) => proxy.address),
      idempotent: false,
      leaderRefreshMs: 50,
    });
    // One publish per millisecond, never awaited: batches go out while the route is learned.
    const answers: Promise<{ offset: number }>[] = [];
    for (let index = 0; index < 300; index++) {
      answers.push(client.publish("ordered", `m${index}`));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const offsets = (await Promise.all(answers)).map(({ offset }) => offset);
    assert.deepEqual(offsets, offsets.map((_, index) => index));
    const leaderProxy = proxies.at(-1)!;
    assert.ok(published(leaderProxy).length > 0, "later publishes went straight to the leader");
  } finally {
    await client?.close();
    await setup.close();
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await cluster.dispose();
  }
});
